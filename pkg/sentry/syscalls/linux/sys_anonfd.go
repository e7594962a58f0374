package linux

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/eventfd"
	"carapace.dev/carapace/pkg/sentry/fsimpl/timerfd"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// installFD puts a new file at the lowest free descriptor.
func installFD(t *kernel.Task, f *vfs.FileDescription, cloexec bool) (uintptr, error) {
	defer f.DecRef(t)
	fd, err := t.FDTable().NewFD(0, fdLimit(t), f, kernel.FDFlags{CloseOnExec: cloexec})
	return uintptr(fd), err
}

// Eventfd implements eventfd(2).
func Eventfd(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return eventfd2(t, args[0].Uint(), 0)
}

// Eventfd2 implements eventfd2(2).
func Eventfd2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return eventfd2(t, args[0].Uint(), args[1].Uint())
}

func eventfd2(t *kernel.Task, initval, flags uint32) (uintptr, error) {
	f, err := eventfd.New(t, vfsOf(t), uint64(initval), flags)
	if err != nil {
		return 0, err
	}
	return installFD(t, f, flags&unix.EFD_CLOEXEC != 0)
}

// MemfdCreate implements memfd_create(2).
func MemfdCreate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	name, err := copyInString(t, args[0].Pointer(), 249, unix.EINVAL)
	if err != nil {
		return 0, err
	}
	flags := args[1].Uint()
	if flags&unix.MFD_HUGETLB != 0 {
		return 0, unix.EINVAL
	}
	mfs, err := t.Kernel().MemfdFS(t)
	if err != nil {
		return 0, err
	}
	f, err := mfs.Create(t, t.Credentials(), name, flags)
	if err != nil {
		return 0, err
	}
	return installFD(t, f, flags&unix.MFD_CLOEXEC != 0)
}

// sandboxClock is a timerfd clock reading the sandbox's CLOCK_MONOTONIC
// (time since the kernel booted), so that absolute timers agree with
// what clock_gettime(2) tells the application.
type sandboxClock struct{ k *kernel.Kernel }

// Now implements timerfd.Clock.
func (c sandboxClock) Now() time.Duration { return c.k.MonotonicNow() }

// AfterFunc implements timerfd.Clock.
func (c sandboxClock) AfterFunc(d time.Duration, f func()) timerfd.Timer { return time.AfterFunc(d, f) }

// TimerfdCreate implements timerfd_create(2).
func TimerfdCreate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	clockID, flags := args[0].Int(), int(args[1].Int())
	var clock timerfd.Clock
	switch clockID {
	case linux.CLOCK_MONOTONIC, linux.CLOCK_BOOTTIME:
		clock = sandboxClock{t.Kernel()}
	default:
		c, err := timerfd.HostClock(clockID)
		if err != nil {
			return 0, err
		}
		clock = c
	}
	f, err := timerfd.New(t, vfsOf(t), clock, flags)
	if err != nil {
		return 0, err
	}
	return installFD(t, f, flags&unix.TFD_CLOEXEC != 0)
}

func getTimerfd(t *kernel.Task, fd int32) (*vfs.FileDescription, *timerfd.File, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return nil, nil, err
	}
	tf, ok := timerfd.FromFile(f)
	if !ok {
		f.DecRef(t)
		return nil, nil, unix.EINVAL
	}
	return f, tf, nil
}

func copyOutItimerspec(t *kernel.Task, addr hostarch.Addr, s timerfd.Spec) error {
	its := s.ToLinux()
	var b [32]byte
	for i, v := range []int64{its.Interval.Sec, its.Interval.Nsec, its.Value.Sec, its.Value.Nsec} {
		for j := 0; j < 8; j++ {
			b[8*i+j] = byte(uint64(v) >> (8 * j))
		}
	}
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// TimerfdSettime implements timerfd_settime(2).
func TimerfdSettime(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, tf, err := getTimerfd(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	var b [32]byte
	if _, err := t.CopyIn(args[2].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	its := unix.ItimerSpec{
		Interval: unix.Timespec{Sec: int64(le64(b[0:])), Nsec: int64(le64(b[8:]))},
		Value:    unix.Timespec{Sec: int64(le64(b[16:])), Nsec: int64(le64(b[24:]))},
	}
	spec, err := timerfd.SpecFromLinux(its)
	if err != nil {
		return 0, err
	}
	old, err := tf.SetTime(int(args[1].Int()), spec)
	if err != nil {
		return 0, err
	}
	if a := args[3].Pointer(); a != 0 {
		return 0, copyOutItimerspec(t, a, old)
	}
	return 0, nil
}

// TimerfdGettime implements timerfd_gettime(2).
func TimerfdGettime(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, tf, err := getTimerfd(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	return 0, copyOutItimerspec(t, args[1].Pointer(), tf.GetTime())
}
