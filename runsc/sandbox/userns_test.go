package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCheckRootless(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}, {Type: specs.PIDNamespace}}}}
	joining := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}}}}
	for _, c := range []struct {
		name     string
		rootless bool
		network  config.Network
		spec     *specs.Spec
		want     string // "" for success
	}{
		{"root mode is not checked", false, config.NetworkSandbox, joining, ""},
		{"none", true, config.NetworkNone, spec, ""},
		{"host", true, config.NetworkHost, spec, ""},
		{"sandbox", true, config.NetworkSandbox, spec, "--network=sandbox needs host root"},
		{"join by path", true, config.NetworkNone, joining, "cannot join the network namespace /var/run/netns/x"},
		{"no linux section", true, config.NetworkNone, &specs.Spec{}, ""},
		{"user namespace in root mode", false, config.NetworkNone, withUserNS(nil, nil), "user namespaces are not supported without --rootless"},
		{"user namespace", true, config.NetworkNone, withUserNS(nil, nil), ""},
		{"runc spec --rootless mappings", true, config.NetworkNone, withUserNS(
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}), ""},
		{"subuid ranges too", true, config.NetworkNone, withUserNS(
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}), ""},
		{"0 mapped elsewhere", true, config.NetworkNone, withUserNS(
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()) + 1, Size: 1}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}), "maps uid 0 to host uid"},
		{"0 unmapped", true, config.NetworkNone, withUserNS(
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}},
			[]specs.LinuxIDMapping{{ContainerID: 1, HostID: uint32(os.Getgid()), Size: 1}}), "does not map gid 0"},
		{"join a user namespace", true, config.NetworkNone, &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: "/proc/1/ns/user"}}}}, "cannot join the user namespace"},
	} {
		conf := config.Default()
		conf.Rootless, conf.Network = c.rootless, c.network
		err := CheckRootless(conf, c.spec)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func withUserNS(uids, gids []specs.LinuxIDMapping) *specs.Spec {
	return &specs.Spec{Linux: &specs.Linux{
		Namespaces:  []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.PIDNamespace}},
		UIDMappings: uids, GIDMappings: gids,
	}}
}

func TestCgroupDenied(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("creating cgroup x: %w", &fs.PathError{Op: "mkdir", Path: "x", Err: unix.EACCES}), true},
		{fmt.Errorf("writing: %w", &fs.PathError{Op: "open", Path: "x", Err: unix.EPERM}), true},
		{fmt.Errorf("creating cgroup x: %w", &fs.PathError{Op: "mkdir", Path: "x", Err: unix.EROFS}), true},
		{fmt.Errorf("creating cgroup x: %w", &fs.PathError{Op: "mkdir", Path: "x", Err: unix.ENOSPC}), false},
		{fmt.Errorf("linux.resources: %w", unix.EINVAL), false},
	} {
		if got := CgroupDenied(c.err); got != c.want {
			t.Errorf("CgroupDenied(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRootlessUserNSMaps starts a process as useRootlessUserNS sets it up
// and reads its maps back: the caller's ids alone, at 0, and setgroups
// denied (as an unprivileged writer of gid_map must).
func TestRootlessUserNSMaps(t *testing.T) {
	if data, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("user namespaces are disabled")
	}
	cmd := exec.Command("/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	useRootlessUserNS(cmd.SysProcAttr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 {
		t.Fatalf("output %q", out)
	}
	field := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if got, want := field(lines[0]), fmt.Sprintf("0 %d 1", os.Getuid()); got != want {
		t.Errorf("uid_map %q, want %q", got, want)
	}
	if got, want := field(lines[1]), fmt.Sprintf("0 %d 1", os.Getgid()); got != want {
		t.Errorf("gid_map %q, want %q", got, want)
	}
	if lines[2] != "deny" || lines[3] != "0" {
		t.Errorf("setgroups %q, uid %q; want deny and 0", lines[2], lines[3])
	}
}
