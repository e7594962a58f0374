package filter

import (
	"testing"

	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/seccomp"
	"golang.org/x/sys/unix"
)

const testMemFD = 7

func compiled(t testing.TB) bpf.Program {
	t.Helper()
	opts := Options{MemoryFDs: []int{testMemFD}}
	p, err := seccomp.Compile(All(opts), SeccompOptions(opts))
	if err != nil {
		t.Fatalf("compiling the Sentry filter: %v", err)
	}
	return p
}

func call(nr int32, args ...uint64) *bpf.SeccompData {
	d := &bpf.SeccompData{Nr: nr, Arch: seccomp.AuditArchX86_64}
	copy(d.Args[:], args)
	return d
}

const (
	allowed = seccomp.ActionAllow
	killed  = seccomp.ActionKillProcess
)

// TestPolicy checks the compiled filter against a table of calls the Sentry
// and its stubs make (allowed) and near misses that must stay forbidden.
func TestPolicy(t *testing.T) {
	p := compiled(t)
	anonRW := uint64(unix.MAP_PRIVATE | unix.MAP_ANONYMOUS)
	rw := uint64(unix.PROT_READ | unix.PROT_WRITE)
	for _, tc := range []struct {
		name string
		d    *bpf.SeccompData
		want seccomp.Action
	}{
		{"anonymous mmap", call(unix.SYS_MMAP, 0, 4096, rw, anonRW, 0xffffffff, 0), allowed},
		{"executable anonymous mmap", call(unix.SYS_MMAP, 0, 4096, rw|unix.PROT_EXEC, anonRW, 0xffffffff, 0), killed},
		{"memory file mmap", call(unix.SYS_MMAP, 0x10000, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_SHARED|unix.MAP_FIXED, testMemFD, 0), allowed},
		{"other file mmap", call(unix.SYS_MMAP, 0, 4096, unix.PROT_READ, unix.MAP_SHARED, testMemFD+1, 0), killed},
		{"memory fd in the high word", call(unix.SYS_MMAP, 0, 4096, unix.PROT_READ, unix.MAP_SHARED, 1<<32|testMemFD, 0), killed},
		{"openat", call(unix.SYS_OPENAT, 3, 0, 0), killed},
		{"execve", call(unix.SYS_EXECVE), killed},
		{"uname", call(unix.SYS_UNAME), killed},
		{"TCGETS", call(unix.SYS_IOCTL, 0, unix.TCGETS), allowed},
		{"TIOCSTI", call(unix.SYS_IOCTL, 0, unix.TIOCSTI), killed},
		{"PTRACE_SYSEMU", call(unix.SYS_PTRACE, ptraceSysemu, 100), allowed},
		{"PTRACE_TRACEME", call(unix.SYS_PTRACE, unix.PTRACE_TRACEME), allowed},
		{"PTRACE_ATTACH", call(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1), killed},
		{"PTRACE_POKEDATA", call(unix.SYS_PTRACE, unix.PTRACE_POKEDATA, 100), killed},
		{"fork of a stub", call(unix.SYS_CLONE, uint64(unix.SIGCHLD)), allowed},
		{"stub thread", call(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD|unix.CLONE_SYSVSEM), allowed},
		{"clone into a new user namespace", call(unix.SYS_CLONE, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), killed},
		{"kill a stub", call(unix.SYS_KILL, 1234, uint64(unix.SIGKILL)), allowed},
		{"SIGTERM to anyone", call(unix.SYS_KILL, 1, uint64(unix.SIGTERM)), killed},
		{"stop a stub thread", call(unix.SYS_TGKILL, 1234, 1235, uint64(unix.SIGSTOP)), allowed},
		{"unix socket pair", call(unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM), allowed},
		{"inet socket pair", call(unix.SYS_SOCKETPAIR, unix.AF_INET, unix.SOCK_STREAM), killed},
		{"socket", call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM), killed},
		{"F_SETFL", call(unix.SYS_FCNTL, 3, unix.F_SETFL), allowed},
		{"F_SETLK", call(unix.SYS_FCNTL, 3, unix.F_SETLK), killed},
		{"stub CPUID faulting", call(unix.SYS_ARCH_PRCTL, archSetCPUID, 0), allowed},
		{"ARCH_SET_FS", call(unix.SYS_ARCH_PRCTL, 0x1002, 0), killed},
		{"PR_SET_PDEATHSIG", call(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uint64(unix.SIGKILL)), allowed},
		{"PR_SET_DUMPABLE", call(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1), killed},
		{"Go runtime naming its memory", call(unix.SYS_PRCTL, unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME, 0x10000, 4096), allowed},
		{"cancelled syscall", call(-1), allowed},
		{"x32 syscall", call(unix.SYS_READ | 0x40000000), killed},
		{"i386 syscall", &bpf.SeccompData{Nr: unix.SYS_READ, Arch: 0x40000003}, killed},
		{"futex", call(unix.SYS_FUTEX), allowed},
	} {
		if got := seccomp.Action(p.RunSeccomp(tc.d)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLogOnly checks that --seccomp-log-only leaves no kill in the filter.
func TestLogOnly(t *testing.T) {
	opts := Options{MemoryFDs: []int{testMemFD}, LogOnly: true}
	p, err := seccomp.Compile(All(opts), SeccompOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	for _, ins := range p.Instructions() {
		if ins.IsReturn() && seccomp.Action(ins.K).Kind() != seccomp.ActionAllow && seccomp.Action(ins.K).Kind() != seccomp.ActionLog {
			t.Errorf("log-only filter returns %v", seccomp.Action(ins.K))
		}
	}
	if got := seccomp.Action(p.RunSeccomp(call(unix.SYS_UNAME))); got != seccomp.ActionLog {
		t.Errorf("uname in log-only mode: %v, want log", got)
	}
}

// pathLengths runs every syscall number (with arguments the rules accept,
// so argument checks run to the end) and returns the longest and the mean
// number of instructions executed.
func pathLengths(p bpf.Program, s *seccomp.RuleSet) (longest int, mean float64) {
	total, n := 0, 0
	for nr := int32(0); nr < 512; nr++ {
		d := call(nr)
		if rules := s.Rules(uint32(nr)); len(rules) > 0 {
			// The last alternative is the one reached after every other
			// has been tried.
			last := rules[len(rules)-1]
			for i, m := range last.Args {
				d.Args[i] = satisfying(m)
			}
		}
		_, k := p.RunSeccompCounting(d)
		longest = max(longest, k)
		total += k
		n++
	}
	return longest, float64(total) / float64(n)
}

// satisfying returns a value m accepts, found among a few candidates.
func satisfying(m seccomp.ArgMatcher) uint64 {
	for _, v := range []uint64{0, 1, 2, 3, 7, 8, 9, 16, 19, 0x20, 0x22, 0x1012, 0x4200, 0x420f, testMemFD, 0xffffffff} {
		if m.Matches(v) {
			return v
		}
	}
	return 0
}

func TestFilterSize(t *testing.T) {
	opts := Options{MemoryFDs: []int{testMemFD}}
	p := compiled(t)
	longest, mean := pathLengths(p, All(opts))
	t.Logf("Sentry filter: %d instructions, %d syscalls; longest path %d, mean %.1f", p.Len(), len(All(opts).Syscalls()), longest, mean)
	// The kernel runs the filter on every host syscall of the Sentry:
	// keep the binary search shallow and the per-application-syscall
	// calls (futex wakeups, SYSEMU, the register exchange) short.
	if longest > 96 {
		t.Errorf("longest path %d instructions: the filter has grown a slow path", longest)
	}
	for _, d := range []*bpf.SeccompData{
		call(unix.SYS_FUTEX), call(unix.SYS_WAIT4),
		call(unix.SYS_PTRACE, ptraceSysemu), call(unix.SYS_PTRACE, unix.PTRACE_GETREGS), call(unix.SYS_PTRACE, unix.PTRACE_SETREGS),
	} {
		if _, k := p.RunSeccompCounting(d); k > 24 {
			t.Errorf("syscall %d request %d: %d instructions, want at most 24", d.Nr, d.Args[0], k)
		}
	}
}

func BenchmarkSentryFilter(b *testing.B) {
	p := compiled(b)
	for _, bc := range []struct {
		name string
		d    *bpf.SeccompData
	}{
		{"futex", call(unix.SYS_FUTEX)},
		{"ptrace-sysemu", call(unix.SYS_PTRACE, ptraceSysemu, 100)},
		{"mmap-memfd", call(unix.SYS_MMAP, 0x10000, 4096, 3, unix.MAP_SHARED|unix.MAP_FIXED, testMemFD, 0)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				p.RunSeccomp(bc.d)
			}
			_, k := p.RunSeccompCounting(bc.d)
			b.ReportMetric(float64(k), "insns/op")
		})
	}
}
