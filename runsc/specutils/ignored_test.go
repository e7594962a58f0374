package specutils

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestIgnoredNamesEachUnappliedField(t *testing.T) {
	adj := 100
	spec := Default([]string{"/bin/true"}, "/")
	spec.Process.ApparmorProfile = "docker-default"
	spec.Process.OOMScoreAdj = &adj
	spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	spec.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"}
	spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "9"}
	spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null"}, {Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	spec.Linux.RootfsPropagation = "rshared"
	got := strings.Join(Ignored(spec), "\n")
	for _, want := range []string{
		"process.apparmorProfile", "process.oomScoreAdj", `linux.personality: execution domain "LINUX32"`,
		"linux.intelRdt", "linux.sysctl: [kernel.msgmax net.ipv4.ip_forward]",
		"linux.devices: /dev/fuse", "linux.rootfsPropagation",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Ignored lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "/dev/null") {
		t.Errorf("a device the sandbox supplies is reported:\n%s", got)
	}
}

func TestIgnoredQuietForPlainSpec(t *testing.T) {
	if got := Ignored(Default([]string{"/bin/true"}, "/")); len(got) != 0 {
		t.Fatalf("default spec reported as ignoring %q", got)
	}
}
