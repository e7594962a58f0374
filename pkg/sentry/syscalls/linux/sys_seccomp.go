package linux

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// seccomp(2) operations.
const (
	seccompSetModeStrict   = 0
	seccompSetModeFilter   = 1
	seccompGetActionAvail  = 2
	seccompGetNotifSizes   = 3
	seccompFlagTSync       = 1 << 0
	seccompFlagLog         = 1 << 1
	seccompFlagSpecAllow   = 1 << 2
	seccompFlagNewListener = 1 << 3
	seccompFlagTSyncESRCH  = 1 << 4
	seccompFlagKnown       = seccompFlagTSync | seccompFlagLog | seccompFlagSpecAllow | seccompFlagNewListener | seccompFlagTSyncESRCH | 1<<5
)

// Sizes SECCOMP_GET_NOTIF_SIZES reports: struct seccomp_notif,
// seccomp_notif_resp and seccomp_data.
const (
	sizeofSeccompNotif     = 80
	sizeofSeccompNotifResp = 24
	sizeofSeccompData      = 64
)

// Seccomp implements seccomp(2).
func Seccomp(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return seccomp(t, args[0].Uint(), args[1].Uint(), args[2].Pointer())
}

func seccomp(t *kernel.Task, op, flags uint32, addr hostarch.Addr) (uintptr, error) {
	switch op {
	case seccompSetModeStrict:
		if flags != 0 || addr != 0 {
			return 0, unix.EINVAL
		}
		return 0, t.SetSeccompStrict()
	case seccompSetModeFilter:
		return setSeccompFilter(t, flags, addr)
	case seccompGetActionAvail:
		if flags != 0 {
			return 0, unix.EINVAL
		}
		var b [4]byte
		if _, err := t.CopyIn(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		if !kernel.SeccompActionAvailable(binary.LittleEndian.Uint32(b[:])) {
			return 0, unix.EOPNOTSUPP
		}
		return 0, nil
	case seccompGetNotifSizes:
		if flags != 0 {
			return 0, unix.EINVAL
		}
		var b [6]byte
		binary.LittleEndian.PutUint16(b[0:], sizeofSeccompNotif)
		binary.LittleEndian.PutUint16(b[2:], sizeofSeccompNotifResp)
		binary.LittleEndian.PutUint16(b[4:], sizeofSeccompData)
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	}
	return 0, unix.EINVAL
}

// setSeccompFilter is SECCOMP_SET_MODE_FILTER, its checks in Linux's order.
func setSeccompFilter(t *kernel.Task, flags uint32, addr hostarch.Addr) (uintptr, error) {
	if flags&^seccompFlagKnown != 0 {
		return 0, unix.EINVAL
	}
	// A user-notification listener cannot be made (GET_ACTION_AVAIL says
	// so too), nor WAIT_KILLABLE_RECV, which needs one.
	if flags&(seccompFlagNewListener|1<<5) != 0 {
		return 0, unix.EINVAL
	}
	// struct sock_fprog: unsigned short len, then (aligned) the pointer.
	var fprog [16]byte
	if _, err := t.CopyIn(addr, fprog[:]); err != nil {
		return 0, unix.EFAULT
	}
	n := int(binary.LittleEndian.Uint16(fprog[0:]))
	insnsAddr := hostarch.Addr(binary.LittleEndian.Uint64(fprog[8:]))
	if n == 0 || n > bpf.MaxInstructions {
		return 0, unix.EINVAL
	}
	if !t.NoNewPrivs() && !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EACCES
	}
	raw := make([]byte, n*bpf.InstructionSize)
	if _, err := t.CopyIn(insnsAddr, raw); err != nil {
		return 0, unix.EFAULT
	}
	insns, err := bpf.Decode(raw)
	if err != nil {
		return 0, unix.EINVAL
	}
	p, err := bpf.Validate(insns, bpf.SeccompFilter)
	if err != nil {
		return 0, unix.EINVAL
	}
	tid, err := t.AppendSeccompFilter(p, kernel.SeccompFilterOptions{
		TSync: flags&seccompFlagTSync != 0,
		Log:   flags&seccompFlagLog != 0,
	})
	if err != nil {
		return 0, err
	}
	if tid != 0 {
		if flags&seccompFlagTSyncESRCH != 0 {
			return 0, unix.ESRCH
		}
		return uintptr(tid), nil
	}
	return 0, nil
}

// prctlSeccomp implements prctl(PR_SET_SECCOMP, mode, filter).
func prctlSeccomp(t *kernel.Task, mode uint64, addr hostarch.Addr) (uintptr, error) {
	switch mode {
	case kernel.SeccompModeStrict:
		return seccomp(t, seccompSetModeStrict, 0, 0)
	case kernel.SeccompModeFilter:
		return seccomp(t, seccompSetModeFilter, 0, addr)
	}
	return 0, unix.EINVAL
}
