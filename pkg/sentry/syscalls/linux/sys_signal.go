package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
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
