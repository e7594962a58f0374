package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// nsJoin is an existing host namespace a sandbox process starts in.
type nsJoin struct {
	// flag is the namespace's CLONE_NEW* value, as setns(2) takes it.
	flag int
	path string
}

// nsGetNSType is NS_GET_NSTYPE (_IO(0xb7, 0x3), linux/nsfs.h): it returns
// the CLONE_NEW* type of a namespace file.
const nsGetNSType = 0xb703

// joinableNamespaces are the types whose spec path the Sentry joins. The
// application never sees a host namespace (the Sentry implements its own
// UTS and IPC objects), but the host side matters: a network namespace
// made by CNI or Docker (`--network=container:`) holds the interfaces
// netstack takes over, and a pod's shared UTS and IPC namespaces are given
// to every container of the pod. specutils refuses paths of other types.
var joinableNamespaces = map[specs.LinuxNamespaceType]int{
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
}

// sentryNamespaces returns the clone flags of the Sentry's new namespaces
// and the existing ones it joins instead: new mount and PID namespaces
// always; new UTS and IPC namespaces unless the spec names existing ones;
// for the network, the namespace the spec names, else a new one unless
// --network=host.
func sentryNamespaces(conf *config.Config, spec *specs.Spec) (uintptr, []nsJoin) {
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS)
	if conf.Network != config.NetworkHost {
		flags |= syscall.CLONE_NEWNET
	}
	var joins []nsJoin
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			flag, ok := joinableNamespaces[ns.Type]
			if !ok || ns.Path == "" {
				continue
			}
			if ns.Type == specs.NetworkNamespace && conf.Network == config.NetworkHost {
				log.Infof("--network=host: the Sentry runs in network namespace %s, which the spec names", ns.Path)
			}
			flags &^= uintptr(flag)
			joins = append(joins, nsJoin{flag: flag, path: ns.Path})
		}
	}
	return flags, joins
}

// openNamespace opens a namespace file and checks that it is one of the
// wanted type, so a wrong path fails clearly rather than as EINVAL.
func openNamespace(j nsJoin) (*os.File, error) {
	f, err := os.Open(j.path)
	if err != nil {
		return nil, fmt.Errorf("opening namespace: %w", err)
	}
	t, err := unix.IoctlRetInt(int(f.Fd()), nsGetNSType)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is not a namespace file: %w", j.path, err)
	}
	if t != j.flag {
		f.Close()
		return nil, fmt.Errorf("%s is a namespace of another type (%#x, want %#x)", j.path, t, j.flag)
	}
	return f, nil
}

// inNamespaces runs start, which forks, with the calling thread moved into
// the namespaces joins name, so that the child is born in them; the thread
// then returns to its own. A thread that cannot return is left locked, so
// the Go runtime ends it instead of reusing it.
func inNamespaces(joins []nsJoin, start func() error) error {
	if len(joins) == 0 {
		return start()
	}
	targets := make([]*os.File, 0, len(joins))
	defer func() {
		for _, f := range targets {
			f.Close()
		}
	}()
	for _, j := range joins {
		f, err := openNamespace(j)
		if err != nil {
			return err
		}
		targets = append(targets, f)
	}
	runtime.LockOSThread()
	// The thread's own namespaces, to come back to.
	tid := unix.Gettid()
	var saved []*os.File
	defer func() {
		for _, f := range saved {
			f.Close()
		}
	}()
	for _, j := range joins {
		name := map[int]string{unix.CLONE_NEWNET: "net", unix.CLONE_NEWUTS: "uts", unix.CLONE_NEWIPC: "ipc"}[j.flag]
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, name))
		if err != nil {
			runtime.UnlockOSThread()
			return fmt.Errorf("opening this thread's %s namespace: %w", name, err)
		}
		saved = append(saved, f)
	}
	restore := func() bool {
		ok := true
		for i, f := range saved {
			if err := unix.Setns(int(f.Fd()), joins[i].flag); err != nil {
				log.Warningf("returning to this thread's namespace: %v", err)
				ok = false
			}
		}
		return ok
	}
	for i, f := range targets {
		if err := unix.Setns(int(f.Fd()), joins[i].flag); err != nil {
			if restore() {
				runtime.UnlockOSThread()
			}
			return fmt.Errorf("joining namespace %s: %w", joins[i].path, err)
		}
	}
	err := start()
	if restore() {
		runtime.UnlockOSThread()
	}
	return err
}
