package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// netnsAdd makes a named network namespace with iproute2 and removes it
// when the test ends.
func netnsAdd(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	name := "e2e-runsc-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return "/var/run/netns/" + name
}

// nsIdentity is the device and inode that identify a namespace.
func nsIdentity(t *testing.T, path string) [2]uint64 {
	t.Helper()
	var st statT
	if err := stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
}

func TestNetworkNamespacePath(t *testing.T) {
	e := newEnv(t)
	nsPath := netnsAdd(t)
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Namespaces = []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: nsPath},
		}
	})
	e.must("create", "--bundle", bundle, "netns")
	st := e.state("netns")
	want := nsIdentity(t, nsPath)
	if got := nsIdentity(t, "/proc/"+strconv.Itoa(st.Pid)+"/ns/net"); got != want {
		t.Errorf("the Sentry's network namespace is %v, want %v (%s)", got, want, nsPath)
	}
	// Only the Sentry moved: this process (and runsc's other threads)
	// stay in their own.
	if self := nsIdentity(t, "/proc/self/ns/net"); self == want {
		t.Errorf("the caller ended up in %s", nsPath)
	}
	// The UTS namespace was not given by path: the Sentry has a new one.
	if got, host := nsIdentity(t, "/proc/"+strconv.Itoa(st.Pid)+"/ns/uts"), nsIdentity(t, "/proc/self/ns/uts"); got == host {
		t.Errorf("the Sentry shares the host's UTS namespace")
	}
	e.must("delete", "--force", "netns")
}

func TestUTSAndIPCNamespacePaths(t *testing.T) {
	e := newEnv(t)
	// A long-lived host process whose UTS and IPC namespaces play the
	// pod's (what a Kubernetes pause container provides).
	holder := exec.Command("unshare", "--uts", "--ipc", "sleep", "1000")
	if err := holder.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	pidDir := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/"
	// unshare execs sleep once the namespaces exist.
	for i := 0; i < 500 && nsIdentity(t, pidDir+"uts") == nsIdentity(t, "/proc/self/ns/uts"); i++ {
		sleepMs(2)
	}
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Namespaces = []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			{Type: specs.IPCNamespace, Path: pidDir + "ipc"}, {Type: specs.UTSNamespace, Path: pidDir + "uts"},
		}
	})
	e.must("create", "--bundle", bundle, "podns")
	sentry := "/proc/" + strconv.Itoa(e.state("podns").Pid) + "/ns/"
	for _, ns := range []string{"uts", "ipc"} {
		if got, want := nsIdentity(t, sentry+ns), nsIdentity(t, pidDir+ns); got != want {
			t.Errorf("the Sentry's %s namespace is %v, want the holder's %v", ns, got, want)
		}
	}
	e.must("delete", "--force", "podns")
}

func TestUnsupportedNamespaces(t *testing.T) {
	e := newEnv(t)
	nsPath := netnsAdd(t)
	for _, tc := range []struct {
		ns   specs.LinuxNamespace
		want string
	}{
		{specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/1/ns/pid"}, "joining an existing pid namespace"},
		{specs.LinuxNamespace{Type: specs.MountNamespace, Path: "/proc/1/ns/mnt"}, "joining an existing mount namespace"},
		{specs.LinuxNamespace{Type: specs.UserNamespace}, "user namespaces are not supported"},
		// A path of the wrong kind is caught before anything starts.
		{specs.LinuxNamespace{Type: specs.UTSNamespace, Path: nsPath}, "namespace of another type"},
		{specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/etc/hostname"}, "not a namespace file"},
		{specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/nonexistent/netns"}, "no such file"},
	} {
		bundle := e.bundle([]string{"/bin/true"}, func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, tc.ns}
			if tc.ns.Type == specs.PIDNamespace || tc.ns.Type == specs.MountNamespace {
				s.Linux.Namespaces = []specs.LinuxNamespace{tc.ns}
			}
			s.Hostname = ""
		})
		e.fails(tc.want, "create", "--bundle", bundle, "badns")
	}
	if left := e.processes(); len(left) != 0 {
		t.Errorf("failed creates left processes: %v", left)
	}
}

type statT = syscall.Stat_t

func stat(path string, st *statT) error { return syscall.Stat(path, st) }
