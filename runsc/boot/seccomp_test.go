package boot

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/seccomp"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func specCall(nr int32, args ...uint64) *bpf.SeccompData {
	d := &bpf.SeccompData{Nr: nr, Arch: linux.AUDIT_ARCH_X86_64}
	copy(d.Args[:], args)
	return d
}

func TestCompileSpecSeccomp(t *testing.T) {
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "no_such_syscall", "getpid"}, Action: specs.ActAllow},
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EACCES))},
			// Docker's way of allowing a few personality values: the same
			// index several times means any of them.
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo},
				{Index: 0, Value: 8, Op: specs.OpEqualTo},
			}},
			// Different indexes: all must hold.
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo},
				{Index: 1, Value: 0xf, ValueTwo: unix.SOCK_STREAM, Op: specs.OpMaskedEqual},
			}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.CLONE_NEWUSER, ValueTwo: 0, Op: specs.OpMaskedEqual},
			}},
			{Names: []string{"kill"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{
				{Index: 1, Value: 9, Op: specs.OpGreaterEqual},
			}},
			// An unconditional entry listed before a conditional one for
			// the same syscall does not hide it.
			{Names: []string{"kill"}, Action: specs.ActAllow},
			{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
			{Names: []string{"uname"}, Action: specs.ActTrap},
			{Names: []string{"setns"}, Action: specs.ActKill},
			{Names: []string{"getppid"}, Action: specs.ActLog},
		},
	}
	p, opts, err := CompileSpecSeccomp(profile)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.Log || opts.TSync {
		t.Errorf("options %+v, want Log only", opts)
	}
	eperm := uint32(seccomp.Errno(unix.EPERM))
	for _, tc := range []struct {
		name string
		d    *bpf.SeccompData
		want uint32
	}{
		{"read", specCall(unix.SYS_READ), uint32(seccomp.ActionAllow)},
		{"getpid", specCall(unix.SYS_GETPID), uint32(seccomp.ActionAllow)},
		{"default errno", specCall(unix.SYS_CHDIR), eperm},
		{"mkdir", specCall(unix.SYS_MKDIR), uint32(seccomp.Errno(unix.EACCES))},
		{"mkdirat", specCall(unix.SYS_MKDIRAT), uint32(seccomp.Errno(unix.EACCES))},
		{"personality 0", specCall(unix.SYS_PERSONALITY, 0), uint32(seccomp.ActionAllow)},
		{"personality 8", specCall(unix.SYS_PERSONALITY, 8), uint32(seccomp.ActionAllow)},
		{"personality 1", specCall(unix.SYS_PERSONALITY, 1), eperm},
		{"unix stream socket", specCall(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC), uint32(seccomp.ActionAllow)},
		{"unix dgram socket", specCall(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_DGRAM), eperm},
		{"inet stream socket", specCall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM), eperm},
		{"clone", specCall(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_THREAD), uint32(seccomp.ActionAllow)},
		{"clone newuser", specCall(unix.SYS_CLONE, unix.CLONE_NEWUSER), eperm},
		{"kill SIGKILL", specCall(unix.SYS_KILL, 1, 9), uint32(seccomp.ActionKillProcess)},
		{"kill SIGHUP", specCall(unix.SYS_KILL, 1, 1), uint32(seccomp.ActionAllow)},
		{"ptrace", specCall(unix.SYS_PTRACE), uint32(seccomp.Trace(7))},
		{"uname", specCall(unix.SYS_UNAME), uint32(seccomp.ActionTrap)},
		{"setns", specCall(unix.SYS_SETNS), uint32(seccomp.ActionKillThread)},
		{"getppid", specCall(unix.SYS_GETPPID), uint32(seccomp.ActionLog)},
		{"x32", specCall(unix.SYS_READ | 0x40000000), eperm},
	} {
		if got := p.RunSeccomp(tc.d); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestCompileSpecSeccompErrors(t *testing.T) {
	ok := specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow}
	for name, tc := range map[string]struct {
		profile specs.LinuxSeccomp
		want    string
	}{
		"bad default":     {specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_EXPLODE"}, `defaultAction: unknown action "SCMP_ACT_EXPLODE"`},
		"bad action":      {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{ok, {Names: []string{"read"}, Action: "nope"}}}, `syscalls[1]: unknown action "nope"`},
		"bad operator":    {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_SORT_OF"}}}}}, `syscalls[0]: args[0]: unknown operator "SCMP_CMP_SORT_OF"`},
		"bad index":       {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "index 6"},
		"errnoRet":        {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uintp(1)}, "errnoRet is only valid"},
		"errno too large": {specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(1 << 16)}, "16 data bits"},
		"notify":          {specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "user notification"},
		"listener":        {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x"}, "user notification"},
		"flag":            {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_SURPRISE"}}, "unsupported flag"},
		"arch":            {specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, "unknown architecture"},
	} {
		_, _, err := CompileSpecSeccomp(&tc.profile)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "spec linux.seccomp: ") {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// runSpecOnHostRoot runs spec's process on the host root (see
// runOnHostRoot) and returns its stdout and wait status.
func runSpecOnHostRoot(t *testing.T, spec *specs.Spec) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the ptrace platform's stubs need root here")
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	var stdio [3]int
	for i, f := range []*os.File{nil, outW, nil} {
		if f == nil {
			fd, err := unix.Open(os.DevNull, unix.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			stdio[i] = fd
			continue
		}
		stdio[i] = dupFD(t, f)
	}
	outW.Close()
	ws, got := runSandbox(t, config.Default(), spec, stdio, readAllAsync(outR), "stdout was not closed")
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("wait status %v", ws)
	}
	return got
}

// TestSpecSeccompDeniesMkdir runs a shell under a profile that makes mkdir
// fail with EPERM, inherited by the shell's children.
func TestSpecSeccompDeniesMkdir(t *testing.T) {
	spec := specutils.Default([]string{"/bin/sh", "-c",
		"mkdir /tmp/denied 2>/dev/null && echo made || echo denied; echo ok > /tmp/f && cat /tmp/f"}, "/")
	spec.Root = &specs.Root{Path: "/"}
	spec.Mounts = nil
	spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EPERM))},
		},
	}
	if got, want := runSpecOnHostRoot(t, spec), "denied\nok\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	// The same shell without the profile makes the directory.
	spec.Linux.Seccomp = nil
	if got, want := runSpecOnHostRoot(t, spec), "made\nok\n"; got != want {
		t.Errorf("without a profile: output %q, want %q", got, want)
	}
}

// TestCompileSpecSeccompLargeProfile builds a profile shaped like Docker's
// default: an errno default, one long allowlist of names (some unknown on
// amd64), and a few entries with argument conditions. It must compile
// within the kernel's instruction limit and decide each listed syscall.
func TestCompileSpecSeccompLargeProfile(t *testing.T) {
	var names []string
	for nr := uintptr(0); nr < 460; nr++ {
		if n := linux.SyscallName(nr); n != "" && n != "ptrace" && n != "personality" && n != "clone3" {
			names = append(names, n)
		}
	}
	names = append(names, "arm_fadvise64_64", "s390_pci_mmio_read", "ugetrlimit")
	profile := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.EPERM)),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo},
			}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0x20000, Op: specs.OpEqualTo},
			}},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSYS))},
		},
	}
	p, _, err := CompileSpecSeccomp(profile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d names: %d instructions", len(names), p.Len())
	for _, tc := range []struct {
		d    *bpf.SeccompData
		want uint32
	}{
		{specCall(unix.SYS_OPENAT), uint32(seccomp.ActionAllow)},
		{specCall(unix.SYS_PTRACE), uint32(seccomp.Errno(unix.EPERM))},
		{specCall(unix.SYS_PERSONALITY, 0x20000), uint32(seccomp.ActionAllow)},
		{specCall(unix.SYS_PERSONALITY, 1), uint32(seccomp.Errno(unix.EPERM))},
		{specCall(unix.SYS_CLONE3), uint32(seccomp.Errno(unix.ENOSYS))},
	} {
		if got := p.RunSeccomp(tc.d); got != tc.want {
			t.Errorf("syscall %d args %v: %#x, want %#x", tc.d.Nr, tc.d.Args, got, tc.want)
		}
	}
}

// FuzzCompileSpecSeccomp feeds profiles from untrusted specs to the
// converter: it must return a valid filter or an error, never panic.
func FuzzCompileSpecSeccomp(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","mkdir"],"action":"SCMP_ACT_ALLOW"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":1,"value":9,"op":"SCMP_CMP_EQ"},{"index":1,"value":15,"op":"SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"names":["socket"],"action":"SCMP_ACT_TRACE","errnoRet":70000,"args":[{"index":7,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s specs.LinuxSeccomp
		if json.Unmarshal(b, &s) != nil {
			return
		}
		p, _, err := CompileSpecSeccomp(&s)
		if err != nil {
			return
		}
		if p.Kind() != bpf.SeccompFilter || p.Len() == 0 {
			t.Fatalf("compiled %d instructions of kind %v without error", p.Len(), p.Kind())
		}
		p.RunSeccomp(specCall(unix.SYS_READ, 1, 2, 3))
	})
}
