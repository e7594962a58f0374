package sandbox

import (
	"strings"
	"testing"

	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		id, path string
		systemd  bool
		want     string
		wantErr  bool
	}{
		{id: "c1", want: "runsc/c1"},
		{id: "c1", path: "/docker/abc", want: "/docker/abc"},
		{id: "c1", path: "pod/x/../c", want: "pod/c"},
		{id: "c1", path: "system.slice:docker:abc", wantErr: true},
		{id: "c1", path: "/", wantErr: true},
		{id: "c1", path: "../escape", wantErr: true},
		{id: "c1", path: "system.slice:docker:abc", systemd: true, want: "/system.slice/docker-abc.scope"},
		{id: "c1", path: "kubepods-besteffort-pod1.slice:cri-containerd:abc", systemd: true,
			want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"},
		{id: "c1", path: ":runsc:abc", systemd: true, want: "/system.slice/runsc-abc.scope"},
		{id: "c1", path: "-.slice::abc", systemd: true, want: "/abc.scope"},
		{id: "c1", path: "machine.slice::sub.slice", systemd: true, want: "/machine.slice/sub.slice"},
		{id: "c1", systemd: true, want: "/system.slice/runsc-c1.scope"},
		{id: "c1", path: "/abs/path", systemd: true, wantErr: true},
		{id: "c1", path: "bad-.slice:p:n", systemd: true, wantErr: true},
		{id: "c1", path: "noslice:p:n", systemd: true, wantErr: true},
	} {
		got, err := CgroupPath(tc.id, tc.path, tc.systemd)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("CgroupPath(%q, %q, %v) = %q, %v; want %q (error %v)", tc.id, tc.path, tc.systemd, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCPUWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 39, 262144: 10000, 1 << 30: 10000} {
		if got := cpuWeight(shares); got != want {
			t.Errorf("cpuWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestHasResources(t *testing.T) {
	limit := int64(5)
	if HasResources(nil) || HasResources(&specs.LinuxResources{}) || HasResources(&specs.LinuxResources{Pids: &specs.LinuxPids{}}) {
		t.Error("empty resources reported as limits")
	}
	// Docker always sends a device list; it alone needs no cgroup.
	if HasResources(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}) {
		t.Error("devices alone reported as limits")
	}
	if !HasResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}) {
		t.Error("a pids limit not reported")
	}
}

func TestSentryNamespaces(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/run/netns/x"}, {Type: specs.UTSNamespace, Path: "/proc/9/ns/uts"},
	}}}
	flags, joins := sentryNamespaces(&config.Config{Network: config.NetworkSandbox}, spec)
	if flags&unix.CLONE_NEWNET != 0 || flags&unix.CLONE_NEWUTS != 0 || flags&unix.CLONE_NEWIPC == 0 || flags&unix.CLONE_NEWPID == 0 || flags&unix.CLONE_NEWNS == 0 {
		t.Errorf("clone flags %#x", flags)
	}
	if len(joins) != 2 || joins[0] != (nsJoin{unix.CLONE_NEWNET, "/run/netns/x"}) || joins[1] != (nsJoin{unix.CLONE_NEWUTS, "/proc/9/ns/uts"}) {
		t.Errorf("joins %v", joins)
	}
	flags, joins = sentryNamespaces(&config.Config{Network: config.NetworkHost}, &specs.Spec{})
	if flags&unix.CLONE_NEWNET != 0 || len(joins) != 0 {
		t.Errorf("--network=host: flags %#x, joins %v", flags, joins)
	}
}

func FuzzCgroupPath(f *testing.F) {
	for _, s := range []string{"", "/docker/x", "a-b.slice:p:n", "-.slice::n", "..", "a/../../b"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, p string, systemd bool) {
		got, err := CgroupPath("id", p, systemd)
		if err != nil {
			return
		}
		// Whatever the input, the result names a cgroup strictly inside
		// its hierarchy (or runsc's own cgroup).
		if got == "/" || got == "." || got == ".." || strings.HasPrefix(got, "../") || strings.Contains(got, "/../") || strings.HasSuffix(got, "/..") {
			t.Errorf("CgroupPath(%q, %v) = %q", p, systemd, got)
		}
	})
}
