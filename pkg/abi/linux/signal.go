package linux

import "math/bits"

// Signal is a signal number, 1 through SignalMaximum.
type Signal int

// Standard signals, from signal(7) for x86.
const (
	SIGHUP    Signal = 1
	SIGINT    Signal = 2
	SIGQUIT   Signal = 3
	SIGILL    Signal = 4
	SIGTRAP   Signal = 5
	SIGABRT   Signal = 6
	SIGIOT    Signal = 6
	SIGBUS    Signal = 7
	SIGFPE    Signal = 8
	SIGKILL   Signal = 9
	SIGUSR1   Signal = 10
	SIGSEGV   Signal = 11
	SIGUSR2   Signal = 12
	SIGPIPE   Signal = 13
	SIGALRM   Signal = 14
	SIGTERM   Signal = 15
	SIGSTKFLT Signal = 16
	SIGCHLD   Signal = 17
	SIGCONT   Signal = 18
	SIGSTOP   Signal = 19
	SIGTSTP   Signal = 20
	SIGTTIN   Signal = 21
	SIGTTOU   Signal = 22
	SIGURG    Signal = 23
	SIGXCPU   Signal = 24
	SIGXFSZ   Signal = 25
	SIGVTALRM Signal = 26
	SIGPROF   Signal = 27
	SIGWINCH  Signal = 28
	SIGIO     Signal = 29
	SIGPOLL   Signal = 29
	SIGPWR    Signal = 30
	SIGSYS    Signal = 31
)

// Real-time signal range. These are the kernel's bounds; glibc reserves the
// first two or three for itself and reports a higher SIGRTMIN to programs.
const (
	SIGRTMIN Signal = 32
	SIGRTMAX Signal = 64

	// SignalMaximum is the highest signal number (_NSIG).
	SignalMaximum Signal = 64
)

var signalNames = [...]string{
	SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL",
	SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE",
	SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2",
	SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGSTKFLT: "SIGSTKFLT",
	SIGCHLD: "SIGCHLD", SIGCONT: "SIGCONT", SIGSTOP: "SIGSTOP", SIGTSTP: "SIGTSTP",
	SIGTTIN: "SIGTTIN", SIGTTOU: "SIGTTOU", SIGURG: "SIGURG", SIGXCPU: "SIGXCPU",
	SIGXFSZ: "SIGXFSZ", SIGVTALRM: "SIGVTALRM", SIGPROF: "SIGPROF", SIGWINCH: "SIGWINCH",
	SIGIO: "SIGIO", SIGPWR: "SIGPWR", SIGSYS: "SIGSYS",
}

// IsValid reports whether s is a signal number the kernel accepts (1..64).
// Zero, used by kill(2) to probe for a process, is not a signal.
func (s Signal) IsValid() bool {
	return s >= 1 && s <= SignalMaximum
}

// IsStandard reports whether s is one of the 31 classic signals, which are
// not queued: a second one pending is merged with the first.
func (s Signal) IsStandard() bool {
	return s >= 1 && s < SIGRTMIN
}

// IsRealtime reports whether s is a queued real-time signal.
func (s Signal) IsRealtime() bool {
	return s >= SIGRTMIN && s <= SIGRTMAX
}

// String returns "SIGSEGV", "SIGRTMIN+3" (as strace prints them), or
// "signal N" for an invalid number.
func (s Signal) String() string {
	switch {
	case s.IsStandard():
		return signalNames[s]
	case s == SIGRTMIN:
		return "SIGRTMIN"
	case s.IsRealtime():
		return "SIGRTMIN+" + itoa(int(s-SIGRTMIN))
	}
	return "signal " + itoa(int(s))
}

// itoa avoids importing strconv for two call sites.
func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// SignalDefault is what the kernel does with a signal whose disposition is
// SIG_DFL.
type SignalDefault int

// Default dispositions, the "Action" column of signal(7).
const (
	SignalDefaultTerminate SignalDefault = iota // Term
	SignalDefaultCore                           // Core: terminate and dump core
	SignalDefaultStop                           // Stop the thread group
	SignalDefaultContinue                       // Cont: continue if stopped
	SignalDefaultIgnore                         // Ign
)

func (d SignalDefault) String() string {
	switch d {
	case SignalDefaultTerminate:
		return "terminate"
	case SignalDefaultCore:
		return "core"
	case SignalDefaultStop:
		return "stop"
	case SignalDefaultContinue:
		return "continue"
	case SignalDefaultIgnore:
		return "ignore"
	}
	return "SignalDefault(" + itoa(int(d)) + ")"
}

var signalDefaults = [SIGRTMIN]SignalDefault{
	SIGHUP: SignalDefaultTerminate, SIGINT: SignalDefaultTerminate,
	SIGQUIT: SignalDefaultCore, SIGILL: SignalDefaultCore, SIGTRAP: SignalDefaultCore,
	SIGABRT: SignalDefaultCore, SIGBUS: SignalDefaultCore, SIGFPE: SignalDefaultCore,
	SIGKILL: SignalDefaultTerminate, SIGUSR1: SignalDefaultTerminate,
	SIGSEGV: SignalDefaultCore, SIGUSR2: SignalDefaultTerminate,
	SIGPIPE: SignalDefaultTerminate, SIGALRM: SignalDefaultTerminate,
	SIGTERM: SignalDefaultTerminate, SIGSTKFLT: SignalDefaultTerminate,
	SIGCHLD: SignalDefaultIgnore, SIGCONT: SignalDefaultContinue,
	SIGSTOP: SignalDefaultStop, SIGTSTP: SignalDefaultStop, SIGTTIN: SignalDefaultStop,
	SIGTTOU: SignalDefaultStop, SIGURG: SignalDefaultIgnore, SIGXCPU: SignalDefaultCore,
	SIGXFSZ: SignalDefaultCore, SIGVTALRM: SignalDefaultTerminate,
	SIGPROF: SignalDefaultTerminate, SIGWINCH: SignalDefaultIgnore,
	SIGIO: SignalDefaultTerminate, SIGPWR: SignalDefaultTerminate, SIGSYS: SignalDefaultCore,
}

// DefaultAction returns the SIG_DFL behaviour of s. Real-time signals
// terminate. The result for an invalid s is SignalDefaultTerminate; callers
// validate signal numbers first.
func DefaultAction(s Signal) SignalDefault {
	if s.IsStandard() {
		return signalDefaults[s]
	}
	return SignalDefaultTerminate
}

// SignalSet is a set of signals in the kernel's sigset_t layout: signal s is
// bit s-1 of a 64-bit word.
type SignalSet uint64

// SizeOfSignalSet is the sigsetsize rt_sigprocmask and friends require.
const SizeOfSignalSet = 8

// SignalSetOf returns the set holding exactly s, or the empty set if s is
// not a valid signal.
func SignalSetOf(s Signal) SignalSet {
	if !s.IsValid() {
		return 0
	}
	return SignalSet(1) << uint(s-1)
}

// MakeSignalSet returns the set of the given signals; invalid ones are
// skipped.
func MakeSignalSet(sigs ...Signal) SignalSet {
	var set SignalSet
	for _, s := range sigs {
		set |= SignalSetOf(s)
	}
	return set
}

// UnblockableSignals can be neither blocked nor caught; masks applied by
// sigprocmask and sigaction have these bits cleared.
var UnblockableSignals = MakeSignalSet(SIGKILL, SIGSTOP)

// Contains reports whether s is in the set.
func (set SignalSet) Contains(s Signal) bool {
	return s.IsValid() && set&SignalSetOf(s) != 0
}

// Add returns the set with s added.
func (set SignalSet) Add(s Signal) SignalSet { return set | SignalSetOf(s) }

// Remove returns the set with s removed.
func (set SignalSet) Remove(s Signal) SignalSet { return set &^ SignalSetOf(s) }

// Len returns the number of signals in the set.
func (set SignalSet) Len() int { return bits.OnesCount64(uint64(set)) }

// Lowest returns the lowest-numbered signal in the set, the one the kernel
// delivers first among those pending (after synchronous faults), or 0 if the
// set is empty.
func (set SignalSet) Lowest() Signal {
	if set == 0 {
		return 0
	}
	return Signal(bits.TrailingZeros64(uint64(set)) + 1)
}

// ForEach calls f for each signal in the set in ascending order.
func (set SignalSet) ForEach(f func(Signal)) {
	for set != 0 {
		s := set.Lowest()
		f(s)
		set = set.Remove(s)
	}
}

// Special sa_handler values.
const (
	SIG_DFL = 0
	SIG_IGN = 1
)

// sigprocmask(2) "how" values.
const (
	SIG_BLOCK   = 0
	SIG_UNBLOCK = 1
	SIG_SETMASK = 2
)

// sigaction(2) sa_flags bits.
const (
	SA_NOCLDSTOP      = 0x00000001
	SA_NOCLDWAIT      = 0x00000002
	SA_SIGINFO        = 0x00000004
	SA_UNSUPPORTED    = 0x00000400
	SA_EXPOSE_TAGBITS = 0x00000800
	SA_RESTORER       = 0x04000000
	SA_ONSTACK        = 0x08000000
	SA_RESTART        = 0x10000000
	SA_NODEFER        = 0x40000000
	SA_RESETHAND      = 0x80000000
	SA_NOMASK         = SA_NODEFER
	SA_ONESHOT        = SA_RESETHAND
)

// sigaltstack(2) ss_flags values.
const (
	SS_ONSTACK    = 1
	SS_DISABLE    = 2
	SS_AUTODISARM = 1 << 31
	MINSIGSTKSZ   = 2048
	SIGSTKSZ      = 8192
)

// si_code values common to all signals: who sent it. Values <= 0 come from
// user space and cannot be forged by rt_sigqueueinfo to look like SI_KERNEL.
const (
	SI_USER     = 0
	SI_KERNEL   = 0x80
	SI_QUEUE    = -1
	SI_TIMER    = -2
	SI_MESGQ    = -3
	SI_ASYNCIO  = -4
	SI_SIGIO    = -5
	SI_TKILL    = -6
	SI_DETHREAD = -7
	SI_ASYNCNL  = -60
)

// si_code values for SIGILL.
const (
	ILL_ILLOPC   = 1
	ILL_ILLOPN   = 2
	ILL_ILLADR   = 3
	ILL_ILLTRP   = 4
	ILL_PRVOPC   = 5
	ILL_PRVREG   = 6
	ILL_COPROC   = 7
	ILL_BADSTK   = 8
	ILL_BADIADDR = 9
)

// si_code values for SIGFPE.
const (
	FPE_INTDIV   = 1
	FPE_INTOVF   = 2
	FPE_FLTDIV   = 3
	FPE_FLTOVF   = 4
	FPE_FLTUND   = 5
	FPE_FLTRES   = 6
	FPE_FLTINV   = 7
	FPE_FLTSUB   = 8
	FPE_FLTUNK   = 14
	FPE_CONDTRAP = 15
)

// si_code values for SIGSEGV.
const (
	SEGV_MAPERR = 1
	SEGV_ACCERR = 2
	SEGV_BNDERR = 3
	SEGV_PKUERR = 4
)

// si_code values for SIGBUS.
const (
	BUS_ADRALN    = 1
	BUS_ADRERR    = 2
	BUS_OBJERR    = 3
	BUS_MCEERR_AR = 4
	BUS_MCEERR_AO = 5
)

// si_code values for SIGTRAP.
const (
	TRAP_BRKPT  = 1
	TRAP_TRACE  = 2
	TRAP_BRANCH = 3
	TRAP_HWBKPT = 4
	TRAP_UNK    = 5
)

// si_code values for SIGCHLD.
const (
	CLD_EXITED    = 1
	CLD_KILLED    = 2
	CLD_DUMPED    = 3
	CLD_TRAPPED   = 4
	CLD_STOPPED   = 5
	CLD_CONTINUED = 6
)

// si_code values for SIGIO/SIGPOLL.
const (
	POLL_IN  = 1
	POLL_OUT = 2
	POLL_MSG = 3
	POLL_ERR = 4
	POLL_PRI = 5
	POLL_HUP = 6
)

// si_code values for SIGSYS. The kernel spells these SYS_SECCOMP and
// SYS_USER_DISPATCH, names this package already uses for syscall numbers.
const (
	SIGSYS_SECCOMP       = 1
	SIGSYS_USER_DISPATCH = 2
)

// sigev_notify values for timer_create(2) and mq_notify(3).
const (
	SIGEV_SIGNAL    = 0
	SIGEV_NONE      = 1
	SIGEV_THREAD    = 2
	SIGEV_THREAD_ID = 4
)
