package e2e

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerMaskedPaths and dockerReadonlyPaths are Docker's defaults (moby's
// oci/defaults.go), several of which the Sentry's /proc and /sys lack.
var (
	dockerMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap"}
	dockerReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func TestMaskedAndReadonlyPaths(t *testing.T) {
	e := newEnv(t)
	script := `
cat /proc/meminfo | wc -c
ls -A /usr/share/doc | wc -l
touch /usr/share/doc/x 2>/dev/null && echo masked-dir-writable
echo 1 > /tmp/data/f 2>/dev/null && echo data-writable
cat /tmp/data/f
echo 1 > /tmp/other/f && echo other-writable
ls /etc/hostname >/dev/null && echo hostname-visible
cat /etc/hostname | wc -c
`
	if entries, err := os.ReadDir("/usr/share/doc"); err != nil || len(entries) == 0 {
		t.Skip("needs a non-empty /usr/share/doc to mask")
	}
	bundle := e.bundle([]string{"/bin/sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"},
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"ro"}},
			specs.Mount{Destination: "/tmp/data", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/tmp/other", Type: "tmpfs", Source: "tmpfs"},
		)
		s.Linux.MaskedPaths = append([]string{"/proc/meminfo", "/usr/share/doc", "/etc/hostname", "/nonexistent/x", "/etc/hostname/below"}, dockerMaskedPaths...)
		s.Linux.ReadonlyPaths = append([]string{"/tmp/data", "/nonexistent"}, dockerReadonlyPaths...)
	})
	out, stderr, code := e.runsc("run", "--bundle", bundle, "masked")
	if code != 0 {
		t.Fatalf("run: exit %d: %s%s", code, out, stderr)
	}
	lines := strings.Fields(out)
	want := []string{"0", "0", "other-writable", "hostname-visible", "0"}
	if strings.Join(lines, " ") != strings.Join(want, " ") {
		t.Errorf("output %q, want %q (stderr %s)", lines, want, stderr)
	}
}
