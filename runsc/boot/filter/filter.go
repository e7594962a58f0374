// Package filter is the Sentry's seccomp allowlist: every host syscall
// `runsc boot` makes once the sandbox is built, with the arguments it makes
// it with where they matter, and its installation.
//
// The list covers three kinds of caller, because the filter is inherited:
//
//   - the Sentry itself (the Go runtime's part comes from
//     confine.GoRuntimeRules): host descriptors (stdio), the Gofer
//     sockets, the memory file, the tracing of stubs;
//   - ptrace stubs forked after installation, whose setup code
//     (platform/ptrace/stub.go) runs under the inherited filter;
//   - the syscalls the Sentry injects into stubs to map memory and start
//     threads (platform/ptrace/addressspace.go), which are real host
//     syscalls of the stub. Application syscalls are not: PTRACE_SYSEMU
//     stops them before the host's seccomp check and skips them, but a
//     syscall the platform cancels (orig_rax set to -1) still meets the
//     filter as number -1, which is therefore allowed.
//
// The systrap platform forks its stubs from a zygote started before
// installation, so they do not inherit this filter; its Sentry side uses
// calls already listed here (futexes, the zygote socket, kill).
//
// Finding a missing entry: run with --seccomp-log-only (turns every kill
// into a kernel log line) and read `dmesg | grep 'type=1326'`; each line
// names the syscall number (syscall=N) and the process (comm=, pid=).
// Without the flag the Sentry dies by SIGSYS and the same line appears with
// sig=31. The kernel rate-limits these lines (10 per 5 s), so for a full
// census record every syscall of the sandbox's processes instead, e.g.
// `perf record -e raw_syscalls:sys_enter -e sched:sched_process_fork --
// runsc --seccomp-log-only do PROGRAM` and `perf script`, keeping what the
// Sentry (and the stubs it forks) make after its seccomp(2) call; strace
// cannot follow the Sentry, whose stubs must be traced by it. Add the
// syscall below next to the code that makes it, with the narrowest
// arguments that still work and a comment saying who needs it, then run
// this package's tests (TestRealProgramsUnderFilter runs real programs
// under the filter in kill mode; TestPolicy pins what must stay denied).
package filter

import (
	"fmt"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/seccomp"
	"carapace.dev/carapace/runsc/confine"
	"golang.org/x/sys/unix"
)

// Options describe the Sentry the filter is built for.
type Options struct {
	// MemoryFDs are the descriptors of the memory file (pgalloc) and of
	// any copy the platform maps into stubs: the only files the Sentry and
	// its stubs may mmap.
	MemoryFDs []int
	// LogOnly turns kills into kernel log lines (--seccomp-log-only).
	LogOnly bool
	// HostNetwork adds the host socket calls of --network=host
	// (hostNetworkRules).
	HostNetwork bool
}

// ptraceRequests are the requests of platform/ptrace, plus PTRACE_TRACEME
// made by a stub, hottest first: each is one alternative of the ptrace
// rule, tried in order, and every application syscall costs a SYSEMU and
// a register exchange.
var ptraceRequests = []uint64{
	ptraceSysemu, unix.PTRACE_GETREGS, unix.PTRACE_SETREGS,
	unix.PTRACE_GETREGSET, unix.PTRACE_SETREGSET, unix.PTRACE_CONT, unix.PTRACE_GETSIGINFO,
	unix.PTRACE_SYSCALL, unix.PTRACE_GETFPREGS, unix.PTRACE_SETFPREGS,
	unix.PTRACE_SEIZE, unix.PTRACE_INTERRUPT, unix.PTRACE_SETOPTIONS,
	ptraceGetRseqConfiguration, unix.PTRACE_TRACEME,
}

const (
	ptraceSysemu               = 31
	ptraceGetRseqConfiguration = 0x420f
)

// hostIoctls are the ioctls fsimpl/host passes to a host terminal or file.
var hostIoctls = []uint64{
	unix.TIOCINQ, unix.TCGETS, unix.TCSETS, unix.TCSETSW, unix.TCSETSF,
	unix.TIOCGWINSZ, unix.TIOCSWINSZ,
}

// fcntlCommands are those of fsimpl/host (status flags, non-blocking
// stdio), pkg/unet (duplicating sockets) and the platform.
var fcntlCommands = []uint64{
	unix.F_GETFD, unix.F_SETFD, unix.F_GETFL, unix.F_SETFL, unix.F_DUPFD_CLOEXEC,
}

// archSetCPUID is ARCH_SET_CPUID: a stub turns on CPUID faulting.
const archSetCPUID = 0x1012

// Rules returns the Sentry's own rules, beyond confine.GoRuntimeRules.
func Rules(opts Options) *seccomp.RuleSet {
	s := seccomp.NewRuleSet()
	allow := seccomp.ActionAllow
	eq := seccomp.EqualTo
	anyArg := seccomp.AnyValue()

	// Host descriptors (fsimpl/host: stdio; fsimpl/gofer: files the Gofer
	// donates) and the memory file (pgalloc: fstat, ftruncate to grow,
	// fallocate to punch out freed pages). read and write are the Go
	// runtime's already.
	s.Allow(
		unix.SYS_CLOSE, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_LSEEK,
		unix.SYS_FSTAT, unix.SYS_STATX, unix.SYS_FSTATFS, unix.SYS_FSYNC,
		unix.SYS_FTRUNCATE, unix.SYS_FALLOCATE,
		unix.SYS_PPOLL, // unix.Poll: readiness of a host file
	)
	for _, cmd := range fcntlCommands {
		s.Add(unix.SYS_FCNTL, allow, anyArg, eq(cmd))
	}
	for _, req := range hostIoctls {
		s.Add(unix.SYS_IOCTL, allow, anyArg, eq(req))
	}
	// The memory file is the only file mapped; anonymous mappings are the
	// Go runtime's (confine.GoRuntimeRules).
	for _, fd := range opts.MemoryFDs {
		s.Add(unix.SYS_MMAP, allow, anyArg, anyArg, anyArg, anyArg, eq(uint64(fd)))
	}

	// The Gofer sockets (pkg/unet, pkg/p9) and the sandbox's own unix
	// socket pairs: only AF_UNIX exists for the Sentry.
	s.Allow(unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SHUTDOWN)
	s.Add(unix.SYS_GETSOCKOPT, allow, anyArg, eq(unix.SOL_SOCKET), eq(unix.SO_TYPE))
	s.Add(unix.SYS_SOCKETPAIR, allow, eq(unix.AF_UNIX))
	// The control socket of a created container (runsc/control): the
	// listener was made before installation; connections are accepted.
	s.Add(unix.SYS_ACCEPT4, allow, anyArg, anyArg, anyArg, eq(unix.SOCK_CLOEXEC))
	// --network=sandbox: netstack's link over the AF_PACKET socket opened
	// before installation (pkg/tcpip/link/fdbased), in non-blocking batches.
	s.Add(unix.SYS_RECVMMSG, allow, anyArg, anyArg, anyArg, eq(unix.MSG_DONTWAIT))
	s.Add(unix.SYS_SENDMMSG, allow, anyArg, anyArg, anyArg, eq(unix.MSG_DONTWAIT))
	s.Add(unix.SYS_SETSOCKOPT, allow, anyArg, eq(unix.SOL_PACKET), eq(unix.PACKET_AUXDATA)) // fdbased.New on a link runsc start hands over
	// The control server (runsc/control) accepting runsc's connections.
	s.Add(unix.SYS_ACCEPT4, allow, anyArg, anyArg, anyArg, eq(unix.SOCK_CLOEXEC))

	// The ptrace platform: tracing stubs, pinning them to the tracer's
	// CPU, stopping (Interrupt) and killing them (Release), forking new
	// ones (rawFork: a bare clone with SIGCHLD as exit signal).
	for _, req := range ptraceRequests {
		s.Add(unix.SYS_PTRACE, allow, eq(req))
	}
	s.Allow(unix.SYS_WAIT4, unix.SYS_SCHED_SETAFFINITY, unix.SYS_GETCPU)
	s.Add(unix.SYS_TGKILL, allow, anyArg, anyArg, eq(uint64(unix.SIGSTOP)))
	s.Add(unix.SYS_KILL, allow, anyArg, eq(uint64(unix.SIGKILL)))
	s.Add(unix.SYS_CLONE, allow, eq(uint64(unix.SIGCHLD)))

	// A stub's setup (stub.go), run under the inherited filter.
	s.Add(unix.SYS_PRCTL, allow, eq(unix.PR_SET_PDEATHSIG), eq(uint64(unix.SIGKILL)))
	s.Add(unix.SYS_KILL, allow, anyArg, eq(uint64(unix.SIGSTOP)))
	s.Add(unix.SYS_ARCH_PRCTL, allow, eq(archSetCPUID), eq(0))
	s.Allow(unix.SYS_GETPPID, unix.SYS_CLOSE_RANGE, unix.SYS_PAUSE)

	// Injected into stubs (addressspace.go): unregistering the rseq area
	// inherited from the Sentry. Thread clones, munmap, sigaltstack and
	// anonymous mmaps are the same calls the Go runtime makes.
	const rseqFlagUnregister = 1
	s.Add(unix.SYS_RSEQ, allow, anyArg, anyArg, eq(rseqFlagUnregister))
	if opts.HostNetwork {
		s.Merge(hostNetworkRules())
	}
	return s
}

// All returns the complete rule set the Sentry runs under: the Go
// runtime's and the Sentry's own.
func All(opts Options) *seccomp.RuleSet {
	return confine.GoRuntimeRules().Merge(Rules(opts))
}

// SeccompOptions are the compile options of the Sentry's filter.
func SeccompOptions(opts Options) seccomp.Options {
	return seccomp.Options{
		DefaultAction:    seccomp.ActionKillProcess,
		BadArchAction:    seccomp.ActionKillProcess,
		LogInsteadOfKill: opts.LogOnly,
		// The ptrace platform cancels a stub thread's syscall by
		// resuming it with orig_rax -1, which the stub's inherited
		// filter then sees.
		AllowCancelledSyscall: true,
	}
}

// Install confines the Sentry (and every stub forked from it later) to its
// allowlist; any other syscall kills the process with SIGSYS, or with
// opts.LogOnly is logged by the kernel. Call it once the sandbox is built
// and before the first application instruction runs.
func Install(opts Options) error {
	if testing.Testing() {
		// runsc/boot's tests run the Sentry inside the test binary;
		// confining it would kill the test runner. This package's own
		// tests run the real runsc binary instead.
		return nil
	}
	// The time package opens the zone file the first time a time is
	// formatted in local time (the log does so); do it now, while opening
	// is still allowed. It finds nothing in the Sentry's empty root, and
	// UTC is what the Sentry logs in from then on.
	time.Now().Zone()
	if err := seccomp.Install(All(opts), SeccompOptions(opts)); err != nil {
		return fmt.Errorf("sentry: installing the seccomp filter: %w", err)
	}
	// Tests set confine.TestOnlySentryForbiddenSyscallEnv to check that
	// the filter is live.
	return confine.TestSentryForbiddenSyscall()
}
