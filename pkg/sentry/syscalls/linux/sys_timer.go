package linux

import (
	"encoding/binary"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// sizeOfSigevent is sizeof(struct sigevent) on amd64.
const sizeOfSigevent = 64

// timerClock checks the clock of timer_create: the clocks Linux can arm
// timers on, EOPNOTSUPP for those it cannot (raw, coarse), EINVAL for
// the rest. CPU-time clocks run on elapsed time, as clock_gettime reports
// them, because the Sentry keeps no CPU accounting yet.
func timerClock(t *kernel.Task, clock int32) error {
	switch clock {
	case linux.CLOCK_REALTIME, linux.CLOCK_MONOTONIC, linux.CLOCK_BOOTTIME,
		linux.CLOCK_PROCESS_CPUTIME_ID, linux.CLOCK_THREAD_CPUTIME_ID:
		return nil
	case linux.CLOCK_REALTIME_ALARM, linux.CLOCK_BOOTTIME_ALARM:
		if !t.Credentials().HasCapability(auth.Capability(35) /* CAP_WAKE_ALARM */) {
			return unix.EPERM
		}
		return nil
	case linux.CLOCK_MONOTONIC_RAW, linux.CLOCK_REALTIME_COARSE, linux.CLOCK_MONOTONIC_COARSE:
		return unix.EOPNOTSUPP
	}
	return unix.EINVAL
}

// TimerCreate implements timer_create(2).
func TimerCreate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	clock := args[0].Int()
	if err := timerClock(t, clock); err != nil {
		return 0, err
	}
	n := kernel.TimerNotify{Signo: int32(unix.SIGALRM)}
	idIsValue := true
	if addr := args[1].Pointer(); addr != 0 {
		idIsValue = false
		var b [sizeOfSigevent]byte
		if _, err := t.CopyIn(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		n.Value = binary.LittleEndian.Uint64(b[0:])
		n.Signo = int32(binary.LittleEndian.Uint32(b[8:]))
		notify := int32(binary.LittleEndian.Uint32(b[12:]))
		switch notify {
		case linux.SIGEV_NONE:
			n.None = true
		case linux.SIGEV_SIGNAL, linux.SIGEV_THREAD, linux.SIGEV_THREAD_ID:
			if notify == linux.SIGEV_THREAD_ID {
				tid := kernel.ThreadID(int32(binary.LittleEndian.Uint32(b[16:])))
				o := t.LookupTask(tid)
				if o == nil || o.ThreadGroup() != t.ThreadGroup() {
					return 0, unix.EINVAL
				}
				n.Target = o
			}
			if !linux.Signal(n.Signo).IsValid() {
				return 0, unix.EINVAL
			}
		default:
			return 0, unix.EINVAL
		}
	}
	id, err := t.ThreadGroup().CreateTimer(clock, n, idIsValue)
	if err != nil {
		return 0, err
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(id))
	if _, err := t.CopyOut(args[2].Pointer(), b[:]); err != nil {
		t.ThreadGroup().DeleteTimer(id)
		return 0, unix.EFAULT
	}
	return 0, nil
}

func timerArg(t *kernel.Task, a arch.SyscallArgument) (*kernel.PosixTimer, error) {
	id := a.Int()
	if id < 0 {
		return nil, unix.EINVAL
	}
	p := t.ThreadGroup().Timer(id)
	if p == nil {
		return nil, unix.EINVAL
	}
	return p, nil
}

func copyOutTimerSpec(t *kernel.Task, addr hostarch.Addr, value, interval time.Duration) error {
	its := linux.Itimerspec{Value: linux.NsecToTimespec(int64(value)), Interval: linux.NsecToTimespec(int64(interval))}
	var b [linux.SizeOfItimerspec]byte
	its.MarshalBytes(b[:])
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// TimerSettime implements timer_settime(2).
func TimerSettime(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	p, err := timerArg(t, args[0])
	if err != nil {
		return 0, err
	}
	addr := args[2].Pointer()
	if addr == 0 {
		return 0, unix.EINVAL
	}
	var b [linux.SizeOfItimerspec]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	var its linux.Itimerspec
	its.UnmarshalBytes(b[:])
	if !its.Value.Valid() || !its.Interval.Valid() {
		return 0, unix.EINVAL
	}
	abs := args[1].Int()&linux.TIMER_ABSTIME != 0
	oldValue, oldInterval := p.Set(its.Value.ToNsec(), abs, its.Interval.ToDuration())
	if old := args[3].Pointer(); old != 0 {
		return 0, copyOutTimerSpec(t, old, oldValue, oldInterval)
	}
	return 0, nil
}

// TimerGettime implements timer_gettime(2).
func TimerGettime(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	p, err := timerArg(t, args[0])
	if err != nil {
		return 0, err
	}
	value, interval := p.Get()
	return 0, copyOutTimerSpec(t, args[1].Pointer(), value, interval)
}

// TimerGetoverrun implements timer_getoverrun(2).
func TimerGetoverrun(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	p, err := timerArg(t, args[0])
	if err != nil {
		return 0, err
	}
	return uintptr(p.Overrun()), nil
}

// TimerDelete implements timer_delete(2).
func TimerDelete(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	id := args[0].Int()
	if id < 0 {
		return 0, unix.EINVAL
	}
	return 0, t.ThreadGroup().DeleteTimer(id)
}
