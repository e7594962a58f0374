package kernel

import (
	"math"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// POSIX per-process timers (timer_create(2) and friends). Each timer is a
// Go timer that, when it expires, queues its signal unless the previous
// one is still pending, in which case the expiration is counted as an
// overrun; delivery of the signal reports and resets the count, as Linux
// does. Timers belong to the process: execve and exit delete them, fork
// does not copy them.

// TimerNotify says how a POSIX timer reports expirations.
type TimerNotify struct {
	// None is SIGEV_NONE: the timer only counts.
	None bool
	// Signo and Value are the signal and its si_value.
	Signo int32
	Value uint64
	// Target, when not nil, is the thread of SIGEV_THREAD_ID; otherwise
	// the signal goes to the process.
	Target *Task
}

// PosixTimer is one timer of a process.
type PosixTimer struct {
	tg     *ThreadGroup
	id     int32
	clock  int32
	notify TimerNotify

	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time // zero: disarmed
	interval time.Duration
	gen      uint64 // invalidates callbacks of earlier settings
	deleted  bool
	// queued: a signal from this timer is pending; further expirations
	// go to overrun until it is delivered.
	queued      bool
	overrun     int64
	overrunLast int32
}

// posixTimers is a process's table of timers.
type posixTimers struct {
	mu     sync.Mutex
	timers map[int32]*PosixTimer
	nextID int32
}

// maxPosixTimers bounds the timers of one process (Linux bounds them by
// RLIMIT_SIGPENDING; this keeps a runaway program's memory in check).
const maxPosixTimers = 1 << 15

// TimerClockMonotonic reports whether clock counts from boot rather than
// the epoch. The caller validated the clock.
func timerClockIsRealtime(clock int32) bool {
	return clock == linux.CLOCK_REALTIME || clock == linux.CLOCK_REALTIME_ALARM
}

// CreateTimer implements timer_create(2) once the arguments are checked.
func (tg *ThreadGroup) CreateTimer(clock int32, n TimerNotify, idIsValue bool) (int32, error) {
	pt := &tg.posixTimers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.timers == nil {
		pt.timers = make(map[int32]*PosixTimer)
	}
	if len(pt.timers) >= maxPosixTimers {
		return 0, unix.EAGAIN
	}
	id := pt.nextID
	for pt.timers[id] != nil {
		id = (id + 1) & math.MaxInt32
	}
	pt.nextID = (id + 1) & math.MaxInt32
	if idIsValue {
		// A NULL sigevent means SIGALRM with the timer ID as value.
		n.Value = uint64(id)
	}
	pt.timers[id] = &PosixTimer{tg: tg, id: id, clock: clock, notify: n}
	return id, nil
}

// Timer returns the process's timer id, or nil.
func (tg *ThreadGroup) Timer(id int32) *PosixTimer {
	pt := &tg.posixTimers
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.timers[id]
}

// DeleteTimer implements timer_delete(2).
func (tg *ThreadGroup) DeleteTimer(id int32) error {
	pt := &tg.posixTimers
	pt.mu.Lock()
	timer := pt.timers[id]
	delete(pt.timers, id)
	pt.mu.Unlock()
	if timer == nil {
		return unix.EINVAL
	}
	timer.stop()
	return nil
}

// deleteAllTimers removes every timer (execve, exit).
func (tg *ThreadGroup) deleteAllTimers() {
	pt := &tg.posixTimers
	pt.mu.Lock()
	timers := pt.timers
	pt.timers = nil
	pt.mu.Unlock()
	for _, timer := range timers {
		timer.stop()
	}
}

func (p *PosixTimer) stop() {
	p.mu.Lock()
	p.deleted = true
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.deadline = time.Time{}
	p.mu.Unlock()
}

// now is the timer's clock as a wall-clock instant: Go's time.Now carries
// a monotonic reading, so durations computed from it are immune to clock
// steps, and absolute times of each clock are converted through it.
func (p *PosixTimer) absToTime(ns int64) time.Time {
	if timerClockIsRealtime(p.clock) {
		return time.Unix(0, ns)
	}
	k := p.tg.k
	return time.Now().Add(time.Duration(ns) - k.MonotonicNow())
}

// leftLocked is the time until the next expiration (0: disarmed).
func (p *PosixTimer) leftLocked() time.Duration {
	if p.deadline.IsZero() {
		return 0
	}
	// An expiration being handled still counts as armed.
	return max(time.Until(p.deadline), 1)
}

// Get implements timer_gettime(2).
func (p *PosixTimer) Get() (value, interval time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leftLocked(), p.interval
}

// Set implements timer_settime(2): value is relative, or with abs an
// absolute time on the timer's clock in nanoseconds; value 0 disarms. It
// returns the previous setting.
func (p *PosixTimer) Set(value int64, abs bool, interval time.Duration) (oldValue, oldInterval time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	oldValue, oldInterval = p.leftLocked(), p.interval
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.deadline, p.interval = time.Time{}, interval
	if value == 0 || p.deleted {
		return oldValue, oldInterval
	}
	var when time.Time
	if abs {
		when = p.absToTime(value)
	} else {
		when = time.Now().Add(time.Duration(value))
	}
	p.armLocked(when)
	return oldValue, oldInterval
}

func (p *PosixTimer) armLocked(when time.Time) {
	gen := p.gen
	p.deadline = when
	p.timer = time.AfterFunc(max(time.Until(when), 0), func() { p.fire(gen) })
}

// fire handles an expiration: it counts the intervals that passed, re-arms
// and queues the signal, or counts overruns while one is pending.
func (p *PosixTimer) fire(gen uint64) {
	p.mu.Lock()
	if p.gen != gen || p.deleted {
		p.mu.Unlock()
		return
	}
	expirations := int64(1)
	if p.interval > 0 {
		if late := time.Since(p.deadline); late > 0 {
			expirations += int64(late / p.interval)
		}
		p.armLocked(p.deadline.Add(time.Duration(expirations) * p.interval))
	} else {
		p.deadline = time.Time{}
		p.timer = nil
	}
	if p.notify.None {
		p.mu.Unlock()
		return
	}
	if p.queued {
		p.overrun += expirations
		p.mu.Unlock()
		return
	}
	p.queued = true
	p.overrun += expirations - 1
	p.mu.Unlock()

	info := linux.SignalInfo{Signo: p.notify.Signo, Code: linux.SI_TIMER}
	info.SetTimerID(p.id)
	info.SetValue(p.notify.Value)
	target := p.notify.Target
	if target != nil && target.exited() {
		target = nil
	}
	if queued, _ := p.tg.send(&info, target); !queued {
		p.mu.Lock()
		p.queued = false
		p.mu.Unlock()
	}
}

// Overrun implements timer_getoverrun(2): the overrun count of the last
// delivered expiration signal.
func (p *PosixTimer) Overrun() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.overrunLast
}

// noteDelivered fixes up a timer signal as it is dequeued: it carries the
// overruns counted since it was queued, and the timer may queue again.
func (tg *ThreadGroup) noteTimerSignalDequeued(info *linux.SignalInfo) {
	if info.Code != linux.SI_TIMER {
		return
	}
	p := tg.Timer(info.TimerID())
	if p == nil {
		return
	}
	p.mu.Lock()
	n := min(p.overrun, math.MaxInt32)
	p.overrunLast = int32(n)
	p.overrun = 0
	p.queued = false
	p.mu.Unlock()
	info.SetOverrun(int32(n))
}

// exited reports whether the task's goroutine has finished.
func (t *Task) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}
