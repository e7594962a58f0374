package linux

// clone(2) and clone3(2) flags. The low byte of clone(2)'s flags is the exit
// signal (CSIGNAL); clone3 carries it in CloneArgs.ExitSignal instead, which
// is why CLONE_NEWTIME can live there for clone3 and unshare only.
const (
	CSIGNAL              = 0x000000ff
	CLONE_NEWTIME        = 0x00000080
	CLONE_VM             = 0x00000100
	CLONE_FS             = 0x00000200
	CLONE_FILES          = 0x00000400
	CLONE_SIGHAND        = 0x00000800
	CLONE_PIDFD          = 0x00001000
	CLONE_PTRACE         = 0x00002000
	CLONE_VFORK          = 0x00004000
	CLONE_PARENT         = 0x00008000
	CLONE_THREAD         = 0x00010000
	CLONE_NEWNS          = 0x00020000
	CLONE_SYSVSEM        = 0x00040000
	CLONE_SETTLS         = 0x00080000
	CLONE_PARENT_SETTID  = 0x00100000
	CLONE_CHILD_CLEARTID = 0x00200000
	CLONE_DETACHED       = 0x00400000
	CLONE_UNTRACED       = 0x00800000
	CLONE_CHILD_SETTID   = 0x01000000
	CLONE_NEWCGROUP      = 0x02000000
	CLONE_NEWUTS         = 0x04000000
	CLONE_NEWIPC         = 0x08000000
	CLONE_NEWUSER        = 0x10000000
	CLONE_NEWPID         = 0x20000000
	CLONE_NEWNET         = 0x40000000
	CLONE_IO             = 0x80000000
	CLONE_CLEAR_SIGHAND  = 0x100000000
	CLONE_INTO_CGROUP    = 0x200000000

	// Sizes of the successive versions of struct clone_args; clone3 accepts
	// any of them and zero-extends.
	CLONE_ARGS_SIZE_VER0 = 64
	CLONE_ARGS_SIZE_VER1 = 80
	CLONE_ARGS_SIZE_VER2 = 88
)

// wait4(2) and waitid(2) options.
const (
	WNOHANG    = 0x1
	WUNTRACED  = 0x2
	WSTOPPED   = WUNTRACED
	WEXITED    = 0x4
	WCONTINUED = 0x8
	WNOWAIT    = 0x01000000
	WNOTHREAD  = 0x20000000
	WALL       = 0x40000000
	WCLONE     = 0x80000000
)

// waitid(2) idtype values.
const (
	P_ALL   = 0
	P_PID   = 1
	P_PGID  = 2
	P_PIDFD = 3
)

// Resource numbers for getrlimit(2) and prlimit64(2).
const (
	RLIMIT_CPU        = 0
	RLIMIT_FSIZE      = 1
	RLIMIT_DATA       = 2
	RLIMIT_STACK      = 3
	RLIMIT_CORE       = 4
	RLIMIT_RSS        = 5
	RLIMIT_NPROC      = 6
	RLIMIT_NOFILE     = 7
	RLIMIT_MEMLOCK    = 8
	RLIMIT_AS         = 9
	RLIMIT_LOCKS      = 10
	RLIMIT_SIGPENDING = 11
	RLIMIT_MSGQUEUE   = 12
	RLIMIT_NICE       = 13
	RLIMIT_RTPRIO     = 14
	RLIMIT_RTTIME     = 15
	RLIM_NLIMITS      = 16
)

// RLIM_INFINITY means "no limit" in Rlimit.Cur and Rlimit.Max.
const RLIM_INFINITY = ^uint64(0)

// getrusage(2) who values.
const (
	RUSAGE_SELF     = 0
	RUSAGE_CHILDREN = -1
	RUSAGE_THREAD   = 1
)

// prctl(2) options.
const (
	PR_SET_PDEATHSIG             = 1
	PR_GET_PDEATHSIG             = 2
	PR_GET_DUMPABLE              = 3
	PR_SET_DUMPABLE              = 4
	PR_GET_UNALIGN               = 5
	PR_SET_UNALIGN               = 6
	PR_GET_KEEPCAPS              = 7
	PR_SET_KEEPCAPS              = 8
	PR_GET_FPEMU                 = 9
	PR_SET_FPEMU                 = 10
	PR_GET_FPEXC                 = 11
	PR_SET_FPEXC                 = 12
	PR_GET_TIMING                = 13
	PR_SET_TIMING                = 14
	PR_SET_NAME                  = 15
	PR_GET_NAME                  = 16
	PR_GET_ENDIAN                = 19
	PR_SET_ENDIAN                = 20
	PR_GET_SECCOMP               = 21
	PR_SET_SECCOMP               = 22
	PR_CAPBSET_READ              = 23
	PR_CAPBSET_DROP              = 24
	PR_GET_TSC                   = 25
	PR_SET_TSC                   = 26
	PR_GET_SECUREBITS            = 27
	PR_SET_SECUREBITS            = 28
	PR_SET_TIMERSLACK            = 29
	PR_GET_TIMERSLACK            = 30
	PR_TASK_PERF_EVENTS_DISABLE  = 31
	PR_TASK_PERF_EVENTS_ENABLE   = 32
	PR_MCE_KILL                  = 33
	PR_MCE_KILL_GET              = 34
	PR_SET_MM                    = 35
	PR_SET_CHILD_SUBREAPER       = 36
	PR_GET_CHILD_SUBREAPER       = 37
	PR_SET_NO_NEW_PRIVS          = 38
	PR_GET_NO_NEW_PRIVS          = 39
	PR_GET_TID_ADDRESS           = 40
	PR_SET_THP_DISABLE           = 41
	PR_GET_THP_DISABLE           = 42
	PR_MPX_ENABLE_MANAGEMENT     = 43
	PR_MPX_DISABLE_MANAGEMENT    = 44
	PR_SET_FP_MODE               = 45
	PR_GET_FP_MODE               = 46
	PR_CAP_AMBIENT               = 47
	PR_GET_SPECULATION_CTRL      = 52
	PR_SET_SPECULATION_CTRL      = 53
	PR_SET_TAGGED_ADDR_CTRL      = 55
	PR_GET_TAGGED_ADDR_CTRL      = 56
	PR_SET_IO_FLUSHER            = 57
	PR_GET_IO_FLUSHER            = 58
	PR_SET_SYSCALL_USER_DISPATCH = 59
	PR_SCHED_CORE                = 62
	PR_SET_PTRACER               = 0x59616d61
	PR_SET_VMA                   = 0x53564d41

	// PR_SET_PTRACER_ANY lets any process ptrace the caller.
	PR_SET_PTRACER_ANY = ^uint64(0)

	// PR_SET_MM sub-options.
	PR_SET_MM_START_CODE  = 1
	PR_SET_MM_END_CODE    = 2
	PR_SET_MM_START_DATA  = 3
	PR_SET_MM_END_DATA    = 4
	PR_SET_MM_START_STACK = 5
	PR_SET_MM_START_BRK   = 6
	PR_SET_MM_BRK         = 7
	PR_SET_MM_ARG_START   = 8
	PR_SET_MM_ARG_END     = 9
	PR_SET_MM_ENV_START   = 10
	PR_SET_MM_ENV_END     = 11
	PR_SET_MM_AUXV        = 12
	PR_SET_MM_EXE_FILE    = 13
	PR_SET_MM_MAP         = 14
	PR_SET_MM_MAP_SIZE    = 15

	// PR_CAP_AMBIENT sub-options.
	PR_CAP_AMBIENT_IS_SET    = 1
	PR_CAP_AMBIENT_RAISE     = 2
	PR_CAP_AMBIENT_LOWER     = 3
	PR_CAP_AMBIENT_CLEAR_ALL = 4

	// PR_SET_TSC values.
	PR_TSC_ENABLE  = 1
	PR_TSC_SIGSEGV = 2

	// PR_SET_VMA sub-option.
	PR_SET_VMA_ANON_NAME = 0

	// TASK_COMM_LEN is the size of the PR_SET_NAME buffer, NUL included.
	TASK_COMM_LEN = 16
)

// arch_prctl(2) codes.
const (
	ARCH_SET_GS         = 0x1001
	ARCH_SET_FS         = 0x1002
	ARCH_GET_FS         = 0x1003
	ARCH_GET_GS         = 0x1004
	ARCH_GET_CPUID      = 0x1011
	ARCH_SET_CPUID      = 0x1012
	ARCH_GET_XCOMP_SUPP = 0x1021
	ARCH_GET_XCOMP_PERM = 0x1022
	ARCH_REQ_XCOMP_PERM = 0x1023
	ARCH_MAP_VDSO_X32   = 0x2001
	ARCH_MAP_VDSO_32    = 0x2002
	ARCH_MAP_VDSO_64    = 0x2003
)

// futex(2) operations. The op argument is one of the commands, possibly
// ORed with FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME.
const (
	FUTEX_WAIT            = 0
	FUTEX_WAKE            = 1
	FUTEX_FD              = 2
	FUTEX_REQUEUE         = 3
	FUTEX_CMP_REQUEUE     = 4
	FUTEX_WAKE_OP         = 5
	FUTEX_LOCK_PI         = 6
	FUTEX_UNLOCK_PI       = 7
	FUTEX_TRYLOCK_PI      = 8
	FUTEX_WAIT_BITSET     = 9
	FUTEX_WAKE_BITSET     = 10
	FUTEX_WAIT_REQUEUE_PI = 11
	FUTEX_CMP_REQUEUE_PI  = 12
	FUTEX_LOCK_PI2        = 13

	FUTEX_PRIVATE_FLAG   = 128
	FUTEX_CLOCK_REALTIME = 256
	FUTEX_CMD_MASK       = ^(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)

	FUTEX_WAIT_PRIVATE        = FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	FUTEX_WAKE_PRIVATE        = FUTEX_WAKE | FUTEX_PRIVATE_FLAG
	FUTEX_WAIT_BITSET_PRIVATE = FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG
	FUTEX_WAKE_BITSET_PRIVATE = FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG

	// Bits of a PI or robust futex word.
	FUTEX_WAITERS    = 0x80000000
	FUTEX_OWNER_DIED = 0x40000000
	FUTEX_TID_MASK   = 0x3fffffff

	FUTEX_BITSET_MATCH_ANY = 0xffffffff

	// FUTEX_WAKE_OP encoding: op in bits 28-31 (bit 31 = FUTEX_OP_OPARG_SHIFT
	// flag), cmp in 24-27, oparg in 12-23, cmparg in 0-11.
	FUTEX_OP_SET         = 0
	FUTEX_OP_ADD         = 1
	FUTEX_OP_OR          = 2
	FUTEX_OP_ANDN        = 3
	FUTEX_OP_XOR         = 4
	FUTEX_OP_OPARG_SHIFT = 8
	FUTEX_OP_CMP_EQ      = 0
	FUTEX_OP_CMP_NE      = 1
	FUTEX_OP_CMP_LT      = 2
	FUTEX_OP_CMP_LE      = 3
	FUTEX_OP_CMP_GT      = 4
	FUTEX_OP_CMP_GE      = 5

	// ROBUST_LIST_LIMIT bounds the robust list walk at exit, so a cyclic
	// list cannot hang the kernel.
	ROBUST_LIST_LIMIT = 2048
)

// sched_setscheduler(2) policies.
const (
	SCHED_NORMAL        = 0
	SCHED_FIFO          = 1
	SCHED_RR            = 2
	SCHED_BATCH         = 3
	SCHED_IDLE          = 5
	SCHED_DEADLINE      = 6
	SCHED_RESET_ON_FORK = 0x40000000
	PRIO_PROCESS        = 0
	PRIO_PGRP           = 1
	PRIO_USER           = 2
)
