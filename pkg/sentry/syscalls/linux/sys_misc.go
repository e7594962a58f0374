package linux

import (
	"runtime"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

// RtSigsuspend implements rt_sigsuspend(2).
func RtSigsuspend(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[1].Uint64() != linux.SizeOfSignalSet {
		return 0, unix.EINVAL
	}
	var b [8]byte
	if _, err := t.CopyIn(args[0].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, t.SigSuspend(linux.SignalSet(le64(b[:])))
}

// Pause implements pause(2).
func Pause(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return 0, t.Pause()
}

// RtSigpending implements rt_sigpending(2).
func RtSigpending(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[1].Uint64() > linux.SizeOfSignalSet {
		return 0, unix.EINVAL
	}
	var b [8]byte
	put64(b[:], uint64(t.PendingSignals()))
	if _, err := t.CopyOut(args[0].Pointer(), b[:args[1].Uint64()]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Getrusage implements getrusage(2). CPU accounting is not kept yet, so
// the figures are zero; the arguments are checked as Linux does.
func Getrusage(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	switch args[0].Int() {
	case linux.RUSAGE_SELF, linux.RUSAGE_CHILDREN, linux.RUSAGE_THREAD:
	default:
		return 0, unix.EINVAL
	}
	var ru linux.Rusage
	var b [linux.SizeOfRusage]byte
	ru.MarshalBytes(b[:])
	if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Times implements times(2): it returns the clock in ticks since boot;
// the CPU times are zero until accounting exists.
func Times(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if addr := args[0].Pointer(); addr != 0 {
		var tms linux.Tms
		var b [linux.SizeOfTms]byte
		tms.MarshalBytes(b[:])
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uintptr(t.Kernel().MonotonicNow() / (time.Second / 100)), nil
}

// Prctl implements the prctl(2) options programs commonly use.
func Prctl(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	switch args[0].Int() {
	case linux.PR_SET_NAME:
		name, err := copyInString(t, args[1].Pointer(), linux.TASK_COMM_LEN*4, unix.EINVAL)
		if err != nil && err != unix.EINVAL {
			return 0, err
		}
		t.SetName(name)
		return 0, nil
	case linux.PR_GET_NAME:
		var b [linux.TASK_COMM_LEN]byte
		copy(b[:linux.TASK_COMM_LEN-1], t.Name())
		if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	case linux.PR_GET_DUMPABLE:
		return 1, nil
	case linux.PR_SET_DUMPABLE:
		if v := args[1].Uint64(); v > 1 {
			return 0, unix.EINVAL
		}
		return 0, nil
	case linux.PR_SET_PDEATHSIG:
		if s := linux.Signal(args[1].Int()); s != 0 && !s.IsValid() {
			return 0, unix.EINVAL
		}
		// Recorded once the parent-death notification exists.
		return 0, nil
	case linux.PR_GET_PDEATHSIG:
		var b [4]byte
		if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	}
	return 0, unix.EINVAL
}

// SchedGetaffinity implements sched_getaffinity(2): every CPU the
// Sentry may use.
func SchedGetaffinity(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	size := args[1].Uint64()
	if size < 8 || size%8 != 0 {
		return 0, unix.EINVAL
	}
	if pid := args[0].Int(); pid != 0 && t.Kernel().TaskWithID(kernel.ThreadID(pid)) == nil {
		return 0, unix.ESRCH
	}
	n := min(runtime.NumCPU(), 64)
	var b [8]byte
	put64(b[:], uint64(1)<<n-1)
	if n == 64 {
		put64(b[:], ^uint64(0))
	}
	if _, err := t.CopyOut(args[2].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 8, nil
}

// Getcpu implements getcpu(2); the Sentry does not pin tasks, so CPU 0
// and node 0 are as true as any answer.
func Getcpu(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	var b [4]byte
	for _, a := range []arch.SyscallArgument{args[0], args[1]} {
		if addr := a.Pointer(); addr != 0 {
			if _, err := t.CopyOut(addr, b[:]); err != nil {
				return 0, unix.EFAULT
			}
		}
	}
	return 0, nil
}
