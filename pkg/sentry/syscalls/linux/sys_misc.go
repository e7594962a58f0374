package linux

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
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

// rusageOf fills a struct rusage with CPU times and the largest RSS
// (KiB); the other counters are not kept and stay zero.
func rusageOf(u kernel.CPUUsage, maxRSS uint64) [linux.SizeOfRusage]byte {
	ru := linux.Rusage{
		UTime: linux.NsecToTimeval(int64(u.User)), STime: linux.NsecToTimeval(int64(u.Sys)),
		MaxRSS: int64(maxRSS),
	}
	var b [linux.SizeOfRusage]byte
	ru.MarshalBytes(b[:])
	return b
}

// Getrusage implements getrusage(2) with the kernel's CPU accounting
// (see kernel.CPUUsage for what it measures).
func Getrusage(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tg := t.ThreadGroup()
	var u kernel.CPUUsage
	var rss uint64
	switch args[0].Int() {
	case linux.RUSAGE_SELF:
		t.NoteRSS()
		u, rss = tg.CPUUsage(), tg.MaxRSS()
	case linux.RUSAGE_THREAD:
		t.NoteRSS()
		u, rss = t.CPUUsage(), tg.MaxRSS()
	case linux.RUSAGE_CHILDREN:
		u, rss = tg.ChildrenUsage()
	default:
		return 0, unix.EINVAL
	}
	b := rusageOf(u, rss)
	if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Times implements times(2): CPU times of the process and its reaped
// children, and the clock in ticks since boot.
func Times(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if addr := args[0].Pointer(); addr != 0 {
		self := t.ThreadGroup().CPUUsage()
		children, _ := t.ThreadGroup().ChildrenUsage()
		tms := linux.Tms{
			UTime: kernel.ClockTicks(self.User), STime: kernel.ClockTicks(self.Sys),
			CUTime: kernel.ClockTicks(children.User), CSTime: kernel.ClockTicks(children.Sys),
		}
		var b [linux.SizeOfTms]byte
		tms.MarshalBytes(b[:])
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uintptr(kernel.ClockTicks(t.Kernel().MonotonicNow())), nil
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
		return uintptr(t.ThreadGroup().Dumpable()), nil
	case linux.PR_SET_DUMPABLE:
		v := args[1].Uint64()
		if v > 1 {
			return 0, unix.EINVAL
		}
		t.ThreadGroup().SetDumpable(int32(v))
		return 0, nil
	case linux.PR_SET_PDEATHSIG:
		s := linux.Signal(args[1].Int())
		if args[1].Uint64() > uint64(linux.SignalMaximum) || (s != 0 && !s.IsValid()) {
			return 0, unix.EINVAL
		}
		t.SetParentDeathSignal(int32(s))
		return 0, nil
	case linux.PR_GET_PDEATHSIG:
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(t.ParentDeathSignal()))
		if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	case linux.PR_SET_CHILD_SUBREAPER:
		t.ThreadGroup().SetChildSubreaper(args[1].Uint64() != 0)
		return 0, nil
	case linux.PR_GET_CHILD_SUBREAPER:
		var b [4]byte
		if t.ThreadGroup().ChildSubreaper() {
			b[0] = 1
		}
		if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	case linux.PR_SET_NO_NEW_PRIVS:
		if args[1].Uint64() != 1 || args[2].Uint64() != 0 || args[3].Uint64() != 0 || args[4].Uint64() != 0 {
			return 0, unix.EINVAL
		}
		t.SetNoNewPrivs()
		return 0, nil
	case linux.PR_SET_SECCOMP:
		return prctlSeccomp(t, args[1].Uint64(), args[2].Pointer())
	case linux.PR_GET_SECCOMP:
		return uintptr(t.SeccompMode()), nil
	case linux.PR_GET_NO_NEW_PRIVS:
		if args[1].Uint64() != 0 || args[2].Uint64() != 0 || args[3].Uint64() != 0 || args[4].Uint64() != 0 {
			return 0, unix.EINVAL
		}
		if t.NoNewPrivs() {
			return 1, nil
		}
		return 0, nil
	case linux.PR_GET_KEEPCAPS:
		if t.Credentials().KeepCaps {
			return 1, nil
		}
		return 0, nil
	case linux.PR_SET_KEEPCAPS:
		v := args[1].Uint64()
		if v > 1 {
			return 0, unix.EINVAL
		}
		return changeCreds(t, func(c *auth.Credentials) error { c.KeepCaps = v == 1; return nil })
	case linux.PR_CAPBSET_READ:
		cp := args[1].Uint64()
		if cp > uint64(auth.CAP_LAST_CAP) {
			return 0, unix.EINVAL
		}
		if t.Credentials().BoundingCaps.Has(auth.Capability(cp)) {
			return 1, nil
		}
		return 0, nil
	case linux.PR_CAPBSET_DROP:
		cp := args[1].Uint64()
		if cp > uint64(auth.CAP_LAST_CAP) {
			return 0, unix.EINVAL
		}
		return changeCreds(t, func(c *auth.Credentials) error { return c.DropBoundingCap(auth.Capability(cp)) })
	case linux.PR_CAP_AMBIENT:
		return prctlCapAmbient(t, args)
	}
	return 0, unix.EINVAL
}

// prctlCapAmbient implements prctl(PR_CAP_AMBIENT, op, cap, 0, 0).
func prctlCapAmbient(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	op, cp := args[1].Uint64(), args[2].Uint64()
	if args[3].Uint64() != 0 || args[4].Uint64() != 0 {
		return 0, unix.EINVAL
	}
	if op == linux.PR_CAP_AMBIENT_CLEAR_ALL {
		if cp != 0 {
			return 0, unix.EINVAL
		}
		return changeCreds(t, func(c *auth.Credentials) error { c.AmbientCaps = 0; return nil })
	}
	if cp > uint64(auth.CAP_LAST_CAP) {
		return 0, unix.EINVAL
	}
	c := auth.Capability(cp)
	switch op {
	case linux.PR_CAP_AMBIENT_IS_SET:
		if t.Credentials().AmbientCaps.Has(c) {
			return 1, nil
		}
		return 0, nil
	case linux.PR_CAP_AMBIENT_RAISE:
		return changeCreds(t, func(cr *auth.Credentials) error { return cr.RaiseAmbientCap(c) })
	case linux.PR_CAP_AMBIENT_LOWER:
		return changeCreds(t, func(cr *auth.Credentials) error {
			cr.AmbientCaps &^= auth.CapabilitySetOf(c)
			return nil
		})
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
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	var b [8]byte
	put64(b[:], o.CPUMask())
	if _, err := t.CopyOut(args[2].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 8, nil
}

// Getcpu implements getcpu(2): the first CPU the task's affinity allows
// (the Sentry does not know which host CPU runs it) and node 0.
func Getcpu(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(t.CPU()))
	if addr := args[0].Pointer(); addr != 0 {
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	if addr := args[1].Pointer(); addr != 0 {
		var zero [4]byte
		if _, err := t.CopyOut(addr, zero[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// syslog(2) actions.
const (
	syslogActionClose        = 0
	syslogActionOpen         = 1
	syslogActionRead         = 2
	syslogActionReadAll      = 3
	syslogActionReadClear    = 4
	syslogActionClear        = 5
	syslogActionConsoleOff   = 6
	syslogActionConsoleOn    = 7
	syslogActionConsoleLvl   = 8
	syslogActionSizeUnread   = 9
	syslogActionSizeBuffer   = 10
	capSyslog                = auth.Capability(34)
	syslogMaxConsoleLoglevel = 8
)

// Syslog implements syslog(2) over the Sentry's kernel log. As with
// dmesg_restrict=0, anyone may read the whole log and ask its size; the
// other actions need CAP_SYSLOG (or CAP_SYS_ADMIN).
func Syslog(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	action := args[0].Int()
	addr, n := args[1].Pointer(), args[2].Int()
	k := t.Kernel()
	switch action {
	case syslogActionReadAll, syslogActionSizeBuffer:
	case syslogActionClose, syslogActionOpen, syslogActionRead, syslogActionReadClear, syslogActionClear,
		syslogActionConsoleOff, syslogActionConsoleOn, syslogActionConsoleLvl, syslogActionSizeUnread:
		c := t.Credentials()
		if !c.HasCapability(capSyslog) && !c.HasCapability(auth.CAP_SYS_ADMIN) {
			return 0, unix.EPERM
		}
	default:
		return 0, unix.EINVAL
	}
	switch action {
	case syslogActionRead, syslogActionReadAll, syslogActionReadClear:
		if addr == 0 || n < 0 {
			return 0, unix.EINVAL
		}
		if n == 0 {
			return 0, nil
		}
		var b []byte
		if action == syslogActionRead {
			b = k.SyslogRead(int(n))
		} else {
			b = k.SyslogReadAll(int(n), action == syslogActionReadClear)
		}
		if _, err := t.CopyOut(addr, b); err != nil {
			return 0, unix.EFAULT
		}
		return uintptr(len(b)), nil
	case syslogActionClear:
		k.SyslogClear()
	case syslogActionConsoleLvl:
		if n < 1 || n > syslogMaxConsoleLoglevel {
			return 0, unix.EINVAL
		}
	case syslogActionSizeUnread:
		return uintptr(k.SyslogUnread()), nil
	case syslogActionSizeBuffer:
		return uintptr(k.SyslogBufferSize()), nil
	}
	return 0, nil
}
