package confine

import (
	"fmt"
	"os"

	"carapace.dev/carapace/pkg/seccomp"
	"golang.org/x/sys/unix"
)

// goThreadCloneFlags are the flags the Go runtime passes to clone(2) to
// start an OS thread; a clone with any other flags (a new process) is not
// part of running Go code and is refused.
const goThreadCloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD

// GoRuntimeRules are the host syscalls the Go runtime itself makes in a
// running program: scheduling and futexes, memory management, the network
// poller, signals (async preemption is tgkill of SIGURG to its own
// threads), thread creation and exit. Measured with strace -f on runsc and
// read from the runtime's behaviour; an addition must say why.
func GoRuntimeRules() *seccomp.RuleSet {
	s := seccomp.NewRuleSet()
	s.Allow(
		unix.SYS_FUTEX, unix.SYS_NANOSLEEP, unix.SYS_SCHED_YIELD, unix.SYS_CLOCK_GETTIME,
		unix.SYS_MUNMAP, unix.SYS_MADVISE, unix.SYS_MPROTECT,
		unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_CTL, unix.SYS_READ, unix.SYS_WRITE,
		// The network poller starts lazily, at the first pollable descriptor.
		unix.SYS_EPOLL_CREATE1, unix.SYS_EVENTFD2,
		unix.SYS_RT_SIGRETURN, unix.SYS_RT_SIGPROCMASK, unix.SYS_SIGALTSTACK,
		unix.SYS_GETPID, unix.SYS_GETTID, unix.SYS_EXIT, unix.SYS_EXIT_GROUP,
		unix.SYS_SCHED_GETAFFINITY, unix.SYS_GETRANDOM, unix.SYS_RESTART_SYSCALL,
	)
	// The runtime maps only anonymous memory, never executable; a process
	// that maps files adds its own rule naming the descriptor.
	s.Add(unix.SYS_MMAP, seccomp.ActionAllow, seccomp.AnyValue(),
		seccomp.AnyValue(), seccomp.MaskedEqual(unix.PROT_EXEC, 0),
		seccomp.MaskedEqual(unix.MAP_ANONYMOUS, unix.MAP_ANONYMOUS))
	// Signals only to this process's own threads (preemption, crashes).
	s.Add(unix.SYS_TGKILL, seccomp.ActionAllow, seccomp.EqualTo(uint64(unix.Getpid())))
	// Since Go 1.25 the runtime names its anonymous mappings (prctl
	// PR_SET_VMA_ANON_NAME) whenever it maps memory, on kernels built
	// with CONFIG_ANON_VMA_NAME; it stops after the first EINVAL on others,
	// so a filter measured on such a kernel never sees the call.
	s.Add(unix.SYS_PRCTL, seccomp.ActionAllow, seccomp.EqualTo(unix.PR_SET_VMA), seccomp.EqualTo(unix.PR_SET_VMA_ANON_NAME))
	// rt_sigaction is needed by the runtime for late signal setup and by
	// os/signal; it cannot widen what the filter allows.
	s.Allow(unix.SYS_RT_SIGACTION)
	s.Add(unix.SYS_CLONE, seccomp.ActionAllow, seccomp.EqualTo(goThreadCloneFlags))
	// runtime.clone (sys_linux_amd64.s) ORs in CLONE_SETTLS for every
	// thread started once the runtime is up, which is every thread a
	// confined process starts.
	s.Add(unix.SYS_CLONE, seccomp.ActionAllow, seccomp.EqualTo(goThreadCloneFlags|unix.CLONE_SETTLS))
	return s
}

// InstallSeccomp installs rules, plus the Go runtime's, on every thread:
// any other syscall kills the whole process (SIGSYS), or with logOnly is
// logged by the kernel and allowed, to find what a filter is missing.
func InstallSeccomp(rules *seccomp.RuleSet, logOnly bool) error {
	all := GoRuntimeRules().Merge(rules)
	err := seccomp.Install(all, seccomp.Options{
		DefaultAction:    seccomp.ActionKillProcess,
		BadArchAction:    seccomp.ActionKillProcess,
		LogInsteadOfKill: logOnly,
	})
	if err != nil {
		return fmt.Errorf("installing the seccomp filter: %w", err)
	}
	return nil
}

// TestOnlyForbiddenSyscallEnv, set in a sandbox process's environment,
// makes TestForbiddenSyscall make a syscall outside every allowlist, so
// tests can check that the installed filter kills the process.
const TestOnlyForbiddenSyscallEnv = "CARAPACE_TESTONLY_FORBIDDEN_SYSCALL"

// TestForbiddenSyscall does nothing unless TestOnlyForbiddenSyscallEnv is
// set; then it makes a forbidden syscall, and returns an error only if the
// filter let it through.
func TestForbiddenSyscall() error {
	return forbiddenSyscallIf(TestOnlyForbiddenSyscallEnv)
}

// TestOnlySentryForbiddenSyscallEnv is TestOnlyForbiddenSyscallEnv for the
// Sentry alone, so a test can tell its death from the Gofer's.
const TestOnlySentryForbiddenSyscallEnv = "CARAPACE_TESTONLY_SENTRY_FORBIDDEN_SYSCALL"

// TestSentryForbiddenSyscall is TestForbiddenSyscall, triggered by
// TestOnlySentryForbiddenSyscallEnv.
func TestSentryForbiddenSyscall() error {
	return forbiddenSyscallIf(TestOnlySentryForbiddenSyscallEnv)
}

func forbiddenSyscallIf(env string) error {
	if os.Getenv(env) == "" {
		return nil
	}
	unix.Syscall(unix.SYS_UNAME, 0, 0, 0)
	return fmt.Errorf("the seccomp filter allowed a forbidden syscall (uname)")
}
