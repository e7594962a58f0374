package tcpip

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the stack's only source of time. Production uses StdClock;
// tests use a ManualClock so retransmission and timeout behaviour is
// deterministic and needs no real sleeping.
type Clock interface {
	// Now returns monotonic time as a duration since an arbitrary origin.
	Now() time.Duration
	// AfterFunc runs f (on some goroutine, never under the caller's locks)
	// once d has elapsed, unless the timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a one-shot timer from a Clock.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it was pending.
	Stop() bool
	// Reset re-arms the timer to fire d from now.
	Reset(d time.Duration)
}

// StdClock is the real monotonic clock.
type StdClock struct{ origin time.Time }

// NewStdClock returns a real clock.
func NewStdClock() *StdClock { return &StdClock{origin: time.Now()} }

// Now implements Clock.
func (c *StdClock) Now() time.Duration { return time.Since(c.origin) }

// AfterFunc implements Clock.
func (c *StdClock) AfterFunc(d time.Duration, f func()) Timer { return stdTimer{time.AfterFunc(d, f)} }

type stdTimer struct{ t *time.Timer }

func (s stdTimer) Stop() bool            { return s.t.Stop() }
func (s stdTimer) Reset(d time.Duration) { s.t.Reset(d) }

// ManualClock only moves when Advance is called; due timers then run, in
// deadline order, on the goroutine calling Advance.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Duration
	seq    uint64
	timers manualHeap
}

// NewManualClock returns a clock at time zero.
func NewManualClock() *ManualClock { return &ManualClock{} }

// Now implements Clock.
func (c *ManualClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements Clock.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	t := &manualTimer{clock: c, f: f, index: -1}
	t.Reset(d)
	return t
}

// Advance moves time forward by d, firing every timer that falls due.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now + d
	for {
		if len(c.timers) == 0 || c.timers[0].when > target {
			break
		}
		t := heap.Pop(&c.timers).(*manualTimer)
		if t.when > c.now {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = target
	c.mu.Unlock()
}

// NextDeadline returns how long until the earliest pending timer, and
// whether there is one.
func (c *ManualClock) NextDeadline() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	return c.timers[0].when - c.now, true
}

type manualTimer struct {
	clock *ManualClock
	f     func()
	when  time.Duration
	seq   uint64
	index int
}

func (t *manualTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

func (t *manualTimer) Reset(d time.Duration) {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index >= 0 {
		heap.Remove(&c.timers, t.index)
	}
	if d < 0 {
		d = 0
	}
	t.when = c.now + d
	c.seq++
	t.seq = c.seq
	heap.Push(&c.timers, t)
}

type manualHeap []*manualTimer

func (h manualHeap) Len() int { return len(h) }
func (h manualHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}
func (h manualHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *manualHeap) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *manualHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
