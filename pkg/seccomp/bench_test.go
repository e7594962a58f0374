package seccomp

import (
	"testing"

	"carapace.dev/carapace/pkg/bpf"
	"golang.org/x/sys/unix"
)

// sentryLikeRuleSet is a realistic allowlist of about 100 syscalls, some
// with argument rules, shaped like what the Sentry will need.
func sentryLikeRuleSet() *RuleSet {
	s := NewRuleSet().Allow(
		unix.SYS_READ, unix.SYS_WRITE, unix.SYS_CLOSE, unix.SYS_FSTAT, unix.SYS_LSEEK, unix.SYS_MUNMAP,
		unix.SYS_BRK, unix.SYS_RT_SIGACTION, unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGRETURN, unix.SYS_PREAD64,
		unix.SYS_PWRITE64, unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_SCHED_YIELD, unix.SYS_MREMAP, unix.SYS_MSYNC,
		unix.SYS_MINCORE, unix.SYS_MADVISE, unix.SYS_DUP, unix.SYS_DUP2, unix.SYS_NANOSLEEP, unix.SYS_GETPID,
		unix.SYS_SENDFILE, unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SHUTDOWN, unix.SYS_GETSOCKNAME,
		unix.SYS_GETPEERNAME, unix.SYS_SOCKETPAIR, unix.SYS_SETSOCKOPT, unix.SYS_GETSOCKOPT, unix.SYS_EXIT,
		unix.SYS_WAIT4, unix.SYS_KILL, unix.SYS_UNAME, unix.SYS_FCNTL, unix.SYS_FLOCK, unix.SYS_FSYNC,
		unix.SYS_FDATASYNC, unix.SYS_FTRUNCATE, unix.SYS_GETDENTS64, unix.SYS_FCHMOD, unix.SYS_FCHOWN,
		unix.SYS_GETTIMEOFDAY, unix.SYS_GETRLIMIT, unix.SYS_GETRUSAGE, unix.SYS_SYSINFO, unix.SYS_GETUID,
		unix.SYS_GETGID, unix.SYS_GETEUID, unix.SYS_GETEGID, unix.SYS_GETPPID, unix.SYS_SIGALTSTACK,
		unix.SYS_STATFS, unix.SYS_FSTATFS, unix.SYS_PRCTL, unix.SYS_ARCH_PRCTL, unix.SYS_GETTID, unix.SYS_TKILL,
		unix.SYS_TIME, unix.SYS_SCHED_GETAFFINITY, unix.SYS_EPOLL_CREATE1, unix.SYS_EPOLL_CTL,
		unix.SYS_EPOLL_PWAIT, unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_NANOSLEEP, unix.SYS_EXIT_GROUP,
		unix.SYS_TGKILL, unix.SYS_WAITID, unix.SYS_OPENAT, unix.SYS_MKDIRAT, unix.SYS_FCHOWNAT,
		unix.SYS_NEWFSTATAT, unix.SYS_UNLINKAT, unix.SYS_RENAMEAT, unix.SYS_LINKAT, unix.SYS_SYMLINKAT,
		unix.SYS_READLINKAT, unix.SYS_FCHMODAT, unix.SYS_PPOLL, unix.SYS_SET_ROBUST_LIST, unix.SYS_SPLICE,
		unix.SYS_TEE, unix.SYS_UTIMENSAT, unix.SYS_EVENTFD2, unix.SYS_FALLOCATE, unix.SYS_TIMERFD_CREATE,
		unix.SYS_TIMERFD_SETTIME, unix.SYS_DUP3, unix.SYS_PIPE2, unix.SYS_PREADV, unix.SYS_PWRITEV,
		unix.SYS_GETRANDOM, unix.SYS_MEMFD_CREATE, unix.SYS_STATX, unix.SYS_RSEQ,
	)
	s.Add(unix.SYS_MMAP, ActionAllow, AnyValue(), AnyValue(), AnyValue(), MaskedEqual(unix.MAP_SHARED|unix.MAP_PRIVATE, unix.MAP_SHARED))
	s.Add(unix.SYS_MMAP, ActionAllow, AnyValue(), AnyValue(), MaskedEqual(unix.PROT_EXEC, 0), MaskedEqual(unix.MAP_ANONYMOUS, unix.MAP_ANONYMOUS))
	s.Add(unix.SYS_MPROTECT, ActionAllow, AnyValue(), AnyValue(), MaskedEqual(unix.PROT_EXEC, 0))
	s.Add(unix.SYS_IOCTL, ActionAllow, AnyValue(), EqualTo(unix.TCGETS))
	s.Add(unix.SYS_IOCTL, ActionAllow, AnyValue(), EqualTo(unix.TIOCINQ))
	s.Add(unix.SYS_FUTEX, ActionAllow, AnyValue(), EqualTo(futexWaitPrivate))
	s.Add(unix.SYS_FUTEX, ActionAllow, AnyValue(), EqualTo(futexWakePrivate))
	s.Add(unix.SYS_CLONE, ActionAllow, EqualTo(unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_SYSVSEM|unix.CLONE_THREAD))
	s.Add(unix.SYS_SOCKET, ActionAllow, EqualTo(unix.AF_UNIX))
	s.Add(unix.SYS_ACCEPT4, ActionAllow, AnyValue(), AnyValue(), AnyValue(), LessThanOrEqual(unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK))
	s.Add(unix.SYS_GETCPU, ActionAllow, AnyValue(), EqualTo(0), EqualTo(0))
	return s
}

var sentryLikeOptions = Options{DefaultAction: ActionKillProcess, BadArchAction: ActionKillProcess}

// pathStats runs the filter for every syscall number up to 500 with typical
// arguments and returns the longest and average executed path, over all
// numbers and over the allowed ones.
func pathStats(p bpf.Program, s *RuleSet) (longest int, average, averageAllowed float64) {
	total, allowedTotal, allowed := 0, 0, 0
	for nr := range int32(500) {
		d := &bpf.SeccompData{Nr: nr, Arch: AuditArchX86_64, Args: [6]uint64{0, futexWakePrivate, 0, unix.MAP_ANONYMOUS | unix.MAP_PRIVATE}}
		ret, n := p.RunSeccompCounting(d)
		longest = max(longest, n)
		total += n
		if Action(ret) == ActionAllow {
			allowed++
			allowedTotal += n
		}
	}
	return longest, float64(total) / 500, float64(allowedTotal) / float64(allowed)
}

func TestSentryLikeFilterShape(t *testing.T) {
	s := sentryLikeRuleSet()
	p := mustCompile(t, s, sentryLikeOptions)
	longest, avg, avgAllowed := pathStats(p, s)
	t.Logf("%d syscalls -> %d instructions; executed path: longest %d, average %.1f (allowed syscalls %.1f)",
		len(s.Syscalls()), p.Len(), longest, avg, avgAllowed)
	// A binary search over ~100 numbers is ~7 levels deep; with the two
	// ABI checks and the deepest argument rules the path stays short.
	if longest > 40 {
		t.Errorf("longest path %d instructions", longest)
	}
	if got := Action(p.RunSeccomp(&bpf.SeccompData{Nr: unix.SYS_EXECVE, Arch: AuditArchX86_64})); got != ActionKillProcess {
		t.Errorf("execve: %v", got)
	}
}

func BenchmarkInterpretSentryLike(b *testing.B) {
	s := sentryLikeRuleSet()
	p := mustCompile(b, s, sentryLikeOptions)
	inputs := make([]bpf.SeccompData, 0, 64)
	for _, nr := range s.Syscalls() {
		inputs = append(inputs, bpf.SeccompData{Nr: int32(nr), Arch: AuditArchX86_64, Args: [6]uint64{0, futexWakePrivate}})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.RunSeccomp(&inputs[i%len(inputs)])
		i++
	}
	// Reported after the loop: b.Loop resets user metrics when it starts.
	longest, avg, _ := pathStats(p, s)
	b.ReportMetric(float64(p.Len()), "insns")
	b.ReportMetric(float64(longest), "longest-path")
	b.ReportMetric(avg, "avg-path")
}

func BenchmarkCompileSentryLike(b *testing.B) {
	s := sentryLikeRuleSet()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(s, sentryLikeOptions); err != nil {
			b.Fatal(err)
		}
	}
}

// FUTEX_WAIT and FUTEX_WAKE with FUTEX_PRIVATE_FLAG (linux/futex.h).
const (
	futexWaitPrivate = 0 | 128
	futexWakePrivate = 1 | 128
)
