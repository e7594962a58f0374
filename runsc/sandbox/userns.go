package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// With --rootless, every sandbox process (the Gofer, the Sentry and,
// through it, the platform's stubs) is born in a user namespace of its own
// in which the caller's uid and gid are 0 and no other id exists. Root in
// that namespace owns the new mount, PID, IPC, UTS and network namespaces
// created with it, so the Gofer's and the Sentry's pivot to an empty root,
// their capability drop and their seccomp filters work as in root mode,
// while on the host every one of these processes is only the caller: its
// files are opened, created and owned as the caller's, and nothing reaches
// an id the caller does not hold.
//
// The single-id maps are written by runsc, the new namespace's parent,
// which an unprivileged process may do for its own ids (user_namespaces(7)),
// after writing "deny" to the child's setgroups file as gid_map requires of
// an unprivileged writer; setgroups(2) then fails in the namespace, which
// only the sandbox's host processes could call, and none does.

// ErrRootlessSandboxNetwork is why --rootless refuses --network=sandbox:
// netstack's link is one end of a veth pair whose other end lives in the
// host's network namespace, and only host root can make one there.
var ErrRootlessSandboxNetwork = errors.New("--network=sandbox needs host root (a veth pair into the host's network namespace); " +
	"with --rootless use --network=none (loopback only, the default) or --network=host (the host's sockets)")

// useRootlessUserNS makes attr's child start in a new user namespace that
// maps the caller's uid and gid, alone, to 0.
func useRootlessUserNS(attr *syscall.SysProcAttr) {
	attr.Cloneflags |= syscall.CLONE_NEWUSER
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	// An unprivileged writer of gid_map must deny setgroups first.
	attr.GidMappingsEnableSetgroups = false
}

// CheckRootless refuses, before anything starts, what a --rootless sandbox
// cannot do without host root: the veth of --network=sandbox, joining a
// namespace the spec names by path (setns(2) needs CAP_SYS_ADMIN over it,
// which an unprivileged caller never has over the host's namespaces), and
// id mappings other than the one it makes. Without --rootless it refuses
// a spec asking for a user namespace: root mode makes none.
func CheckRootless(conf *config.Config, spec *specs.Spec) error {
	var linux *specs.Linux
	if spec != nil {
		linux = spec.Linux
	}
	wantsUserNS := false
	if linux != nil {
		for _, ns := range linux.Namespaces {
			wantsUserNS = wantsUserNS || ns.Type == specs.UserNamespace
		}
	}
	if !conf.Rootless {
		if wantsUserNS {
			return errors.New("linux.namespaces: user namespaces are not supported without --rootless: the sandbox's ids are the Sentry's own")
		}
		return nil
	}
	if conf.Network == config.NetworkSandbox {
		return ErrRootlessSandboxNetwork
	}
	if linux == nil {
		return nil
	}
	for _, ns := range linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		if _, joinable := joinableNamespaces[ns.Type]; joinable || ns.Type == specs.UserNamespace {
			return fmt.Errorf("--rootless cannot join the %s namespace %s: setns(2) needs CAP_SYS_ADMIN over it; remove its path from the spec", ns.Type, ns.Path)
		}
	}
	if err := checkRootlessMapping("uid", linux.UIDMappings, os.Getuid()); err != nil {
		return err
	}
	return checkRootlessMapping("gid", linux.GIDMappings, os.Getgid())
}

// checkRootlessMapping accepts the spec's mappings of one kind (as `runc
// spec --rootless` writes them) if they agree with the one runsc makes:
// the caller's id, hostID, as 0. Other ranges (from /etc/subuid) are not
// made, since runsc does not use newuidmap(1); ids in them appear as the
// overflow id, so that is only a warning.
func checkRootlessMapping(kind string, mappings []specs.LinuxIDMapping, hostID int) error {
	if len(mappings) == 0 {
		return nil
	}
	found := false
	for _, m := range mappings {
		// Validate has checked that every range has a size.
		if m.ContainerID == 0 {
			if int64(m.HostID) != int64(hostID) {
				return fmt.Errorf("linux.%sMappings maps %s 0 to host %s %d, but --rootless maps it to the caller's, %d", kind, kind, kind, m.HostID, hostID)
			}
			found = true
		}
	}
	if !found {
		return fmt.Errorf("linux.%sMappings does not map %s 0; --rootless maps the caller's %s %d to 0", kind, kind, kind, hostID)
	}
	if len(mappings) > 1 || mappings[0].Size != 1 {
		log.Warningf("--rootless maps only the caller's %s (%d) to 0; the other ranges of linux.%sMappings are not mapped (ids in them appear as the overflow id)", kind, hostID, kind)
	}
	return nil
}

// CgroupDenied reports whether err, from making, configuring or entering
// a cgroup, means the caller may not write that part of the cgroup tree:
// the case of an unprivileged user without a delegated cgroup.
func CgroupDenied(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)
}
