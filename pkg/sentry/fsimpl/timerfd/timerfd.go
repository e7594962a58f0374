// Package timerfd owns timerfd files (timerfd_create(2)): a timer on a
// clock (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME) that counts
// expirations, armed relative or absolute with an optional interval, read
// as an 8-byte count, readable when the count is non-zero. Clocks are an
// interface so that tests (and a virtualised kernel clock) can drive time.
package timerfd

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Timer is a scheduled callback that can be cancelled.
type Timer interface {
	// Stop cancels the callback if it has not run.
	Stop() bool
}

// Clock is a time source timers run on.
type Clock interface {
	// Now is the clock's reading, as the clock_gettime(2) of its clock
	// would give it.
	Now() time.Duration
	// AfterFunc runs f in its own goroutine once d has passed on the
	// clock (or later).
	AfterFunc(d time.Duration, f func()) Timer
}

// hostClock reads a host clock; its timers are Go's (monotonic) timers,
// re-checked against the clock when they fire.
type hostClock struct{ id int32 }

func (c hostClock) Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(c.id, &ts); err != nil {
		panic("timerfd: clock_gettime: " + err.Error())
	}
	return time.Duration(ts.Nano())
}

func (c hostClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// HostClock returns the host clock timerfd_create's clockid names:
// CLOCK_REALTIME, CLOCK_MONOTONIC or CLOCK_BOOTTIME; EINVAL for others
// (the *_ALARM clocks need wakeup hardware the sandbox does not offer).
func HostClock(clockid int32) (Clock, error) {
	switch clockid {
	case unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME:
		return hostClock{clockid}, nil
	default:
		return nil, unix.EINVAL
	}
}

// Spec is struct itimerspec as durations.
type Spec struct {
	Value, Interval time.Duration
}

// SpecFromLinux converts a struct itimerspec, EINVAL if a field is not a
// valid timespec.
func SpecFromLinux(its unix.ItimerSpec) (Spec, error) {
	for _, ts := range []unix.Timespec{its.Value, its.Interval} {
		if ts.Sec < 0 || ts.Nsec < 0 || ts.Nsec >= 1e9 {
			return Spec{}, unix.EINVAL
		}
	}
	return Spec{Value: time.Duration(its.Value.Nano()), Interval: time.Duration(its.Interval.Nano())}, nil
}

// ToLinux converts s to a struct itimerspec.
func (s Spec) ToLinux() unix.ItimerSpec {
	return unix.ItimerSpec{Value: unix.NsecToTimespec(int64(s.Value)), Interval: unix.NsecToTimespec(int64(s.Interval))}
}

// File is a timerfd.
type File struct {
	vfs.FileDescriptionDefaults
	clock Clock
	queue waiter.Queue

	mu       sync.Mutex
	expiry   time.Duration // clock reading of the next expiry; 0: disarmed
	interval time.Duration
	count    uint64 // expirations not yet read
	timer    Timer
	// gen tells a callback of a superseded setting to do nothing.
	gen uint64
}

// New returns a disarmed timerfd on clock; flags may hold TFD_NONBLOCK and
// TFD_CLOEXEC (the caller applies close-on-exec to the descriptor).
func New(ctx context.Context, v *vfs.VirtualFilesystem, clock Clock, flags int) (*vfs.FileDescription, error) {
	if flags&^(unix.TFD_NONBLOCK|unix.TFD_CLOEXEC) != 0 {
		return nil, unix.EINVAL
	}
	f := &File{clock: clock}
	vd := v.NewAnonVirtualDentry("[timerfd]")
	defer vd.DecRef(ctx)
	status := uint32(unix.O_RDWR)
	if flags&unix.TFD_NONBLOCK != 0 {
		status |= unix.O_NONBLOCK
	}
	return vfs.NewFileDescription(f, status, vd), nil
}

// FromFile returns the timerfd behind fd, if it is one.
func FromFile(fd *vfs.FileDescription) (*File, bool) {
	f, ok := fd.Impl().(*File)
	return f, ok
}

// getLocked is timerfd_gettime's answer.
func (f *File) getLocked() Spec {
	if f.expiry == 0 {
		return Spec{Interval: f.interval}
	}
	left := f.expiry - f.clock.Now()
	if left <= 0 {
		left = 1 // due: the callback is on its way
	}
	return Spec{Value: left, Interval: f.interval}
}

// GetTime is timerfd_gettime(2).
func (f *File) GetTime() Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getLocked()
}

// SetTime is timerfd_settime(2): flags may hold TFD_TIMER_ABSTIME (and
// TFD_TIMER_CANCEL_ON_SET, accepted: the sandbox's realtime clock is never
// set). A zero Value disarms. It returns the previous setting and drops
// expirations not yet read.
func (f *File) SetTime(flags int, s Spec) (Spec, error) {
	if flags&^(unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET) != 0 {
		return Spec{}, unix.EINVAL
	}
	if s.Value < 0 || s.Interval < 0 {
		return Spec{}, unix.EINVAL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.getLocked()
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.gen++
	f.count = 0
	f.expiry, f.interval = 0, s.Interval
	if s.Value == 0 {
		return old, nil
	}
	now := f.clock.Now()
	f.expiry = s.Value
	if flags&unix.TFD_TIMER_ABSTIME == 0 {
		f.expiry = now + s.Value
	}
	if f.expiry <= 0 {
		f.expiry = 1 // an absolute time at or before the clock's origin
	}
	f.scheduleLocked(now)
	return old, nil
}

// scheduleLocked arms the callback for f.expiry.
func (f *File) scheduleLocked(now time.Duration) {
	gen := f.gen
	f.timer = f.clock.AfterFunc(max(f.expiry-now, 0), func() { f.fire(gen) })
}

// fire counts the expirations due and re-arms an interval timer.
func (f *File) fire(gen uint64) {
	f.mu.Lock()
	if gen != f.gen || f.expiry == 0 {
		f.mu.Unlock()
		return
	}
	now := f.clock.Now()
	if now < f.expiry {
		// Early (a clock that moved differently from the timer): wait
		// for the rest.
		f.scheduleLocked(now)
		f.mu.Unlock()
		return
	}
	n := uint64(1)
	if f.interval > 0 {
		n += uint64((now - f.expiry) / f.interval)
		f.expiry += time.Duration(n) * f.interval
		f.scheduleLocked(now)
	} else {
		f.expiry = 0
		f.timer = nil
	}
	f.count += n
	f.mu.Unlock()
	f.queue.Notify(waiter.ReadableEvents)
}

// Read implements vfs.FileDescriptionImpl: the expiration count since the
// last read, EAGAIN if none.
func (f *File) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	if dst.NumBytes() < 8 {
		return 0, unix.EINVAL
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count == 0 {
		return 0, unix.EAGAIN
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], f.count)
	if _, err := dst.CopyOut(ctx, b[:]); err != nil {
		return 0, err
	}
	f.count = 0
	return 8, nil
}

// Release implements vfs.FileDescriptionImpl.
func (f *File) Release(context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
}

// Readiness implements waiter.Waitable.
func (f *File) Readiness(mask waiter.EventMask) waiter.EventMask {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count > 0 {
		return mask & waiter.ReadableEvents
	}
	return 0
}

// EventRegister implements waiter.Waitable.
func (f *File) EventRegister(e *waiter.Entry) error {
	f.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (f *File) EventUnregister(e *waiter.Entry) { f.queue.EventUnregister(e) }

var _ vfs.FileDescriptionImpl = (*File)(nil)
