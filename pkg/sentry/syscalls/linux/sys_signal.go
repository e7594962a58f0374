package linux

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

// RtSigaction implements rt_sigaction(2).
func RtSigaction(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	sig := linux.Signal(args[0].Int())
	if args[3].Uint64() != linux.SizeOfSignalSet {
		return 0, unix.EINVAL
	}
	var buf [linux.SizeOfSigaction]byte
	var newAct *linux.Sigaction
	if addr := args[1].Pointer(); addr != 0 {
		if _, err := t.CopyIn(addr, buf[:]); err != nil {
			return 0, unix.EFAULT
		}
		newAct = &linux.Sigaction{}
		newAct.UnmarshalBytes(buf[:])
	}
	old, err := t.SigAction(sig, newAct)
	if err != nil {
		return 0, err
	}
	if addr := args[2].Pointer(); addr != 0 {
		old.MarshalBytes(buf[:])
		if _, err := t.CopyOut(addr, buf[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// RtSigprocmask implements rt_sigprocmask(2).
func RtSigprocmask(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[3].Uint64() != linux.SizeOfSignalSet {
		return 0, unix.EINVAL
	}
	old := t.SignalMask()
	if addr := args[1].Pointer(); addr != 0 {
		var b [8]byte
		if _, err := t.CopyIn(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		set := linux.SignalSet(le64(b[:]))
		switch args[0].Int() {
		case linux.SIG_BLOCK:
			t.SetSignalMask(old | set)
		case linux.SIG_UNBLOCK:
			t.SetSignalMask(old &^ set)
		case linux.SIG_SETMASK:
			t.SetSignalMask(set)
		default:
			return 0, unix.EINVAL
		}
	}
	if addr := args[2].Pointer(); addr != 0 {
		var b [8]byte
		put64(b[:], uint64(old))
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// RtSigreturn implements rt_sigreturn(2).
func RtSigreturn(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return 0, t.SignalReturn()
}

// Sigaltstack implements sigaltstack(2).
func Sigaltstack(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	old := t.AltStack()
	if addr := args[0].Pointer(); addr != 0 {
		var b [linux.SizeOfSignalStack]byte
		if _, err := t.CopyIn(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		var ss linux.SignalStack
		ss.UnmarshalBytes(b[:])
		flags := uint32(ss.Flags)
		mode := flags &^ linux.SS_AUTODISARM
		switch mode {
		case 0, linux.SS_ONSTACK:
			if ss.Size < linux.MINSIGSTKSZ {
				return 0, unix.ENOMEM
			}
			flags &= linux.SS_AUTODISARM
		case linux.SS_DISABLE:
			ss.Addr, ss.Size, flags = 0, 0, arch.SignalStackDisable
		default:
			return 0, unix.EINVAL
		}
		if err := t.SetAltStack(arch.SignalStack{Addr: ss.Addr, Size: ss.Size, Flags: flags}); err != nil {
			return 0, err
		}
	}
	if addr := args[1].Pointer(); addr != 0 {
		flags := old.Flags
		if old.Contains(t.Arch().Stack()) {
			flags |= arch.SignalStackOnStack
		}
		if old.Size == 0 && old.Addr == 0 {
			flags |= arch.SignalStackDisable
		}
		ss := linux.SignalStack{Addr: old.Addr, Flags: int32(flags), Size: old.Size}
		var b [linux.SizeOfSignalStack]byte
		ss.MarshalBytes(b[:])
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// copyInSigset reads a sigset_t whose size argument must be 8.
func copyInSigset(t *kernel.Task, addr hostarch.Addr, size uint64) (linux.SignalSet, error) {
	if size != linux.SizeOfSignalSet {
		return 0, unix.EINVAL
	}
	var b [8]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return linux.SignalSet(le64(b[:])), nil
}

// RtSigtimedwait implements rt_sigtimedwait(2).
func RtSigtimedwait(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	set, err := copyInSigset(t, args[0].Pointer(), args[3].Uint64())
	if err != nil {
		return 0, err
	}
	timeout := time.Duration(-1)
	if addr := args[2].Pointer(); addr != 0 {
		ts, err := copyInTimespec(t, addr)
		if err != nil {
			return 0, err
		}
		if !ts.Valid() {
			return 0, unix.EINVAL
		}
		timeout = ts.ToDuration()
	}
	info, err := t.SigTimedWait(set, timeout)
	if err != nil {
		return 0, err
	}
	if addr := args[1].Pointer(); addr != 0 {
		var b [linux.SizeOfSignalInfo]byte
		info.MarshalBytes(b[:])
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uintptr(info.Signo), nil
}

// copyInQueuedInfo reads the siginfo of rt_sigqueueinfo: a process may
// not forge kernel or kill(2) origins (si_code >= 0) or tkill's for
// another process (EPERM).
func copyInQueuedInfo(t *kernel.Task, addr hostarch.Addr, sig linux.Signal, self bool) (linux.SignalInfo, error) {
	var info linux.SignalInfo
	var b [linux.SizeOfSignalInfo]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return info, unix.EFAULT
	}
	info.UnmarshalBytes(b[:])
	if (info.Code >= 0 || info.Code == linux.SI_TKILL) && !self {
		return info, unix.EPERM
	}
	info.Signo = int32(sig)
	return info, nil
}

// RtSigqueueinfo implements rt_sigqueueinfo(2).
func RtSigqueueinfo(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	pid, sig := args[0].Int(), linux.Signal(args[1].Int())
	if sig != 0 && !sig.IsValid() {
		return 0, unix.EINVAL
	}
	info, err := copyInQueuedInfo(t, args[2].Pointer(), sig, kernel.ThreadID(pid) == t.GetPID())
	if err != nil {
		return 0, err
	}
	if pid <= 0 {
		return 0, unix.ESRCH
	}
	tg := t.LookupThreadGroup(kernel.ThreadID(pid))
	if tg == nil {
		return 0, unix.ESRCH
	}
	if err := t.MaySignalGroup(tg, sig); err != nil {
		return 0, err
	}
	if sig == 0 {
		return 0, nil
	}
	return 0, t.SignalProcess(tg, &info)
}

// RtTgsigqueueinfo implements rt_tgsigqueueinfo(2).
func RtTgsigqueueinfo(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tgid, tid, sig := args[0].Int(), args[1].Int(), linux.Signal(args[2].Int())
	if tgid <= 0 || tid <= 0 {
		return 0, unix.EINVAL
	}
	if sig != 0 && !sig.IsValid() {
		return 0, unix.EINVAL
	}
	info, err := copyInQueuedInfo(t, args[3].Pointer(), sig, kernel.ThreadID(tgid) == t.GetPID())
	if err != nil {
		return 0, err
	}
	o := t.LookupTask(kernel.ThreadID(tid))
	if o == nil || t.IDOf(o.ThreadGroup().ID()) != kernel.ThreadID(tgid) {
		return 0, unix.ESRCH
	}
	if err := t.MaySignal(o, sig); err != nil {
		return 0, err
	}
	if sig == 0 {
		return 0, nil
	}
	return 0, t.SignalThread(o, &info)
}
