package e2e

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The spec's seccomp profile confines init and, as with runc, every
// process exec'd into the container.
func TestSeccompProfileOnExec(t *testing.T) {
	e := newEnv(t)
	errno := uint(1) // EPERM
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno},
			},
		}
	})
	e.must("run", "--detach", "--bundle", bundle, "confined")
	out, _, code := e.runsc("exec", "confined", "/bin/sh", "-c", "mkdir /tmp/d 2>&1; echo rc=$?; echo alive")
	if code != 0 || !strings.Contains(out, "Operation not permitted") || !strings.Contains(out, "alive") {
		t.Errorf("exec under the profile: exit %d, output %q; want mkdir refused with EPERM", code, out)
	}
	// A container without the rule lets the same exec through, so the
	// refusal above came from the profile.
	e.must("run", "--detach", "--bundle", e.bundle([]string{"/bin/sleep", "1000"}, nil), "free")
	if out := e.must("exec", "free", "/bin/sh", "-c", "mkdir /tmp/d && echo made"); !strings.Contains(out, "made") {
		t.Errorf("exec without a profile: %q", out)
	}
	e.must("delete", "--force", "confined")
	e.must("delete", "--force", "free")
}
