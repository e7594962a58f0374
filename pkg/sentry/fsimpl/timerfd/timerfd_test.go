package timerfd_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/fsimpl/timerfd"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// fakeClock moves only when told; Advance runs due callbacks in order.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Duration
	pending []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Duration
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timerfd.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now + d, f: f}
	c.pending = append(c.pending, t)
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now + d
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.pending, func(i, j int) bool { return c.pending[i].at < c.pending[j].at })
		if len(c.pending) == 0 || c.pending[0].at > target {
			c.now = target
			c.mu.Unlock()
			return
		}
		t := c.pending[0]
		c.pending = c.pending[1:]
		if t.at > c.now {
			c.now = t.at
		}
		run := !t.stopped
		t.stopped = true
		c.mu.Unlock()
		if run {
			t.f()
		}
	}
}

func newTimer(t *testing.T, clock timerfd.Clock) (context.Context, *vfs.FileDescription, *timerfd.File) {
	t.Helper()
	ctx := context.Background()
	fd, err := timerfd.New(ctx, vfs.New(), clock, unix.TFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.DecRef(ctx) })
	f, ok := timerfd.FromFile(fd)
	if !ok {
		t.Fatal("FromFile failed")
	}
	return ctx, fd, f
}

func readCount(t *testing.T, ctx context.Context, fd *vfs.FileDescription) uint64 {
	t.Helper()
	b, err := vfstest.Read(ctx, fd, 8)
	if errors.Is(err, unix.EAGAIN) {
		return 0
	}
	if err != nil || len(b) != 8 {
		t.Fatalf("read %v %v", b, err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n == 0 {
		t.Fatal("read returned a zero count")
	}
	return n
}

func TestRelativeOneShot(t *testing.T) {
	c := &fakeClock{now: time.Hour}
	ctx, fd, f := newTimer(t, c)
	if _, err := f.SetTime(0, timerfd.Spec{Value: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c.Advance(99 * time.Millisecond)
	if n := readCount(t, ctx, fd); n != 0 {
		t.Fatalf("early expirations %d", n)
	}
	if got := f.GetTime(); got.Value != time.Millisecond || got.Interval != 0 {
		t.Fatalf("gettime %+v", got)
	}
	c.Advance(time.Millisecond)
	if fd.Readiness(waiter.EventIn) == 0 {
		t.Fatal("not readable after expiry")
	}
	if n := readCount(t, ctx, fd); n != 1 {
		t.Fatalf("expirations %d", n)
	}
	if fd.Readiness(waiter.EventIn) != 0 || readCount(t, ctx, fd) != 0 {
		t.Fatal("count not reset by read")
	}
	if got := f.GetTime(); got != (timerfd.Spec{}) {
		t.Fatalf("one-shot after expiry: %+v", got)
	}
	c.Advance(time.Hour)
	if n := readCount(t, ctx, fd); n != 0 {
		t.Fatalf("one-shot fired again: %d", n)
	}
}

func TestInterval(t *testing.T) {
	c := &fakeClock{}
	ctx, fd, f := newTimer(t, c)
	f.SetTime(0, timerfd.Spec{Value: 10 * time.Millisecond, Interval: 5 * time.Millisecond})
	c.Advance(22 * time.Millisecond) // expiries at 10, 15, 20
	if n := readCount(t, ctx, fd); n != 3 {
		t.Fatalf("expirations %d, want 3", n)
	}
	if got := f.GetTime(); got.Value != 3*time.Millisecond || got.Interval != 5*time.Millisecond {
		t.Fatalf("gettime %+v", got)
	}
	c.Advance(3 * time.Millisecond)
	if n := readCount(t, ctx, fd); n != 1 {
		t.Fatalf("expirations %d, want 1", n)
	}
	// Settime drops unread expirations and returns the old setting.
	c.Advance(5 * time.Millisecond)
	old, err := f.SetTime(0, timerfd.Spec{})
	if err != nil || old.Interval != 5*time.Millisecond || old.Value != 5*time.Millisecond {
		t.Fatalf("old %+v %v", old, err)
	}
	if n := readCount(t, ctx, fd); n != 0 {
		t.Fatalf("expirations after disarm %d", n)
	}
	c.Advance(time.Second)
	if n := readCount(t, ctx, fd); n != 0 {
		t.Fatalf("disarmed timer fired %d", n)
	}
}

func TestAbsolute(t *testing.T) {
	c := &fakeClock{now: 1000 * time.Second}
	ctx, fd, f := newTimer(t, c)
	f.SetTime(unix.TFD_TIMER_ABSTIME, timerfd.Spec{Value: 1000*time.Second + 50*time.Millisecond})
	c.Advance(49 * time.Millisecond)
	if readCount(t, ctx, fd) != 0 {
		t.Fatal("early")
	}
	c.Advance(time.Millisecond)
	if n := readCount(t, ctx, fd); n != 1 {
		t.Fatalf("expirations %d", n)
	}
	// An absolute time in the past expires at once.
	f.SetTime(unix.TFD_TIMER_ABSTIME, timerfd.Spec{Value: time.Second})
	c.Advance(0)
	if n := readCount(t, ctx, fd); n != 1 {
		t.Fatalf("past absolute: %d", n)
	}
}

func TestErrors(t *testing.T) {
	c := &fakeClock{}
	ctx, fd, f := newTimer(t, c)
	if _, err := fd.Read(ctx, vfstest.Seq(make([]byte, 7)), vfs.ReadOptions{}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("short read: %v", err)
	}
	if _, err := f.SetTime(0x100, timerfd.Spec{Value: 1}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad flags: %v", err)
	}
	if _, err := timerfd.SpecFromLinux(unix.ItimerSpec{Value: unix.Timespec{Nsec: 1e9}}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad nsec: %v", err)
	}
	if _, err := timerfd.SpecFromLinux(unix.ItimerSpec{Interval: unix.Timespec{Sec: -1}}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("negative: %v", err)
	}
	s, err := timerfd.SpecFromLinux(unix.ItimerSpec{Value: unix.Timespec{Sec: 2, Nsec: 5}, Interval: unix.Timespec{Nsec: 7}})
	if err != nil || s.Value != 2*time.Second+5 || s.Interval != 7 || s.ToLinux().Value.Sec != 2 {
		t.Fatalf("spec %+v %v", s, err)
	}
	if _, err := timerfd.New(ctx, vfs.New(), c, 0x4000); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad create flags: %v", err)
	}
	for _, id := range []int32{unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME} {
		if _, err := timerfd.HostClock(id); err != nil {
			t.Fatalf("clock %d: %v", id, err)
		}
	}
	if _, err := timerfd.HostClock(unix.CLOCK_PROCESS_CPUTIME_ID); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("cputime clock: %v", err)
	}
}

func TestNotifiesWaiters(t *testing.T) {
	c := &fakeClock{}
	_, fd, f := newTimer(t, c)
	e, ch := waiter.NewChannelEntry(waiter.EventIn)
	fd.EventRegister(e)
	defer fd.EventUnregister(e)
	f.SetTime(0, timerfd.Spec{Value: time.Second})
	c.Advance(time.Second)
	select {
	case <-ch:
	default:
		t.Fatal("no notification on expiry")
	}
}

func TestHostMonotonicClock(t *testing.T) {
	clock, err := timerfd.HostClock(unix.CLOCK_MONOTONIC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, fd, f := newTimer(t, clock)
	e, ch := waiter.NewChannelEntry(waiter.EventIn)
	fd.EventRegister(e)
	defer fd.EventUnregister(e)
	f.SetTime(0, timerfd.Spec{Value: time.Millisecond, Interval: time.Millisecond})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("host-clock timer never fired")
	}
	if n := readCount(t, ctx, fd); n < 1 {
		t.Fatalf("expirations %d", n)
	}
}
