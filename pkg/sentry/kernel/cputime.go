package kernel

import (
	"sync"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
)

// CPU-time accounting. The application runs in a platform process the
// Sentry cannot read CPU counters of, so a task's user time is the time
// its goroutine spends in Context.Switch (application code running, as
// measured on the monotonic clock), and its system time the time spent
// handling what Switch returned. On an unloaded host these match what
// Linux would charge; under contention they include waiting to run.

// CPUUsage is user and system time.
type CPUUsage struct {
	User, Sys time.Duration
}

// Add returns u + o.
func (u CPUUsage) Add(o CPUUsage) CPUUsage { return CPUUsage{u.User + o.User, u.Sys + o.Sys} }

// Total is user plus system time.
func (u CPUUsage) Total() time.Duration { return u.User + u.Sys }

// CPUUsage returns the task's own usage.
func (t *Task) CPUUsage() CPUUsage {
	return CPUUsage{User: time.Duration(t.userNS.Load()), Sys: time.Duration(t.sysNS.Load())}
}

// CPUUsage returns the usage of every thread of the process, live or
// exited.
func (tg *ThreadGroup) CPUUsage() CPUUsage {
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	u := tg.exitedUsage
	for _, t := range tg.tasks {
		u = u.Add(t.CPUUsage())
	}
	return u
}

// ChildrenUsage returns the usage of reaped children and their own
// reaped descendants (RUSAGE_CHILDREN), and their largest RSS in KiB.
func (tg *ThreadGroup) ChildrenUsage() (CPUUsage, uint64) {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.childUsage, tg.childMaxRSS
}

// MaxRSS returns the largest resident set the process was seen with, in
// KiB (sampled at getrusage and exit).
func (tg *ThreadGroup) MaxRSS() uint64 { return tg.maxRSS.Load() }

// NoteRSS samples the resident set of the task's address space.
func (t *Task) NoteRSS() {
	kb := uint64(t.mm.ResidentPages()) * 4
	for {
		old := t.tg.maxRSS.Load()
		if kb <= old || t.tg.maxRSS.CompareAndSwap(old, kb) {
			return
		}
	}
}

// reapUsageLocked adds a reaped child's usage to tg's children's
// (k.mu held).
func (tg *ThreadGroup) reapUsageLocked(c *ThreadGroup) {
	tg.childUsage = tg.childUsage.Add(c.finalUsage).Add(c.childUsage)
	tg.childMaxRSS = max(tg.childMaxRSS, c.maxRSS.Load(), c.childMaxRSS)
}

// cpuTimer is ITIMER_VIRTUAL (user time) or ITIMER_PROF (user and
// system time) of a process: it fires when the process's CPU time
// reaches deadline, then every interval.
type cpuTimer struct {
	deadline time.Duration // in process CPU time; 0: disarmed
	interval time.Duration
}

// cpuTimers are a process's CPU-time interval timers, guarded by mu.
type cpuTimers struct {
	mu      sync.Mutex
	virtual cpuTimer
	prof    cpuTimer
	// wake interrupts the group's tasks when an expiry may be due, so
	// that a thread spinning in application code is charged and checked.
	wake *time.Timer
}

// CPUTimer returns ITIMER_VIRTUAL's or ITIMER_PROF's time left and
// interval.
func (tg *ThreadGroup) CPUTimer(which int32) (value, interval time.Duration) {
	ct := &tg.cpuTimers
	ct.mu.Lock()
	defer ct.mu.Unlock()
	timer, now := tg.cpuTimerLocked(which)
	if timer.deadline == 0 {
		return 0, timer.interval
	}
	return max(timer.deadline-now, time.Microsecond), timer.interval
}

// cpuTimerLocked returns the timer and the CPU clock it runs on.
func (tg *ThreadGroup) cpuTimerLocked(which int32) (*cpuTimer, time.Duration) {
	u := tg.CPUUsage()
	if which == linux.ITIMER_VIRTUAL {
		return &tg.cpuTimers.virtual, u.User
	}
	return &tg.cpuTimers.prof, u.Total()
}

// SetCPUTimer arms ITIMER_VIRTUAL or ITIMER_PROF (value 0 disarms) and
// returns the previous setting.
func (tg *ThreadGroup) SetCPUTimer(which int32, value, interval time.Duration) (oldValue, oldInterval time.Duration) {
	ct := &tg.cpuTimers
	ct.mu.Lock()
	timer, now := tg.cpuTimerLocked(which)
	if timer.deadline != 0 {
		oldValue = max(timer.deadline-now, time.Microsecond)
	}
	oldInterval = timer.interval
	timer.deadline, timer.interval = 0, interval
	if value > 0 {
		timer.deadline = now + value
	}
	armed := ct.virtual.deadline != 0 || ct.prof.deadline != 0
	tg.cpuTimersArmed.Store(armed)
	ct.mu.Unlock()
	if armed {
		tg.checkCPUTimers()
	}
	return oldValue, oldInterval
}

// checkCPUTimers fires expired CPU-time timers and schedules the next
// check. The task loop calls it after charging time while one is armed.
func (tg *ThreadGroup) checkCPUTimers() {
	ct := &tg.cpuTimers
	ct.mu.Lock()
	u := tg.CPUUsage()
	var fire []linux.Signal
	next := time.Duration(-1)
	for _, c := range []struct {
		timer *cpuTimer
		now   time.Duration
		sig   linux.Signal
	}{{&ct.virtual, u.User, linux.SIGVTALRM}, {&ct.prof, u.Total(), linux.SIGPROF}} {
		timer := c.timer
		if timer.deadline == 0 {
			continue
		}
		if c.now >= timer.deadline {
			fire = append(fire, c.sig)
			if timer.interval > 0 {
				// Expirations missed while no check ran collapse into one.
				for timer.deadline <= c.now {
					timer.deadline += timer.interval
				}
			} else {
				timer.deadline = 0
			}
		}
		if timer.deadline != 0 {
			if left := timer.deadline - c.now; next < 0 || left < next {
				next = left
			}
		}
	}
	tg.cpuTimersArmed.Store(ct.virtual.deadline != 0 || ct.prof.deadline != 0)
	if ct.wake != nil {
		ct.wake.Stop()
		ct.wake = nil
	}
	if next >= 0 {
		// CPU time cannot pass faster than wall time on one thread: look
		// again no earlier than that (threads running in parallel only
		// make the check come later than due, by at most this span).
		ct.wake = time.AfterFunc(max(next, time.Millisecond), tg.interruptForCPUTimers)
	}
	ct.mu.Unlock()
	for _, sig := range fire {
		tg.SendSignal(&linux.SignalInfo{Signo: int32(sig), Code: linux.SI_KERNEL})
	}
}

// interruptForCPUTimers makes the group's tasks leave application code so
// their time is charged and the timers checked.
func (tg *ThreadGroup) interruptForCPUTimers() {
	if tg.exitingFlag.Load() || !tg.cpuTimersArmed.Load() {
		return
	}
	tg.signalMu.Lock()
	tasks := len(tg.tasks)
	for _, t := range tg.tasks {
		if t.pctx != nil {
			t.pctx.Interrupt()
		}
	}
	tg.signalMu.Unlock()
	if tasks == 0 {
		return
	}
	// A task that is blocked rather than running will not come back to
	// check; the next check is armed from here too.
	tg.checkCPUTimers()
}

// stopCPUTimers disarms the CPU-time timers at exit.
func (tg *ThreadGroup) stopCPUTimers() {
	ct := &tg.cpuTimers
	ct.mu.Lock()
	ct.virtual, ct.prof = cpuTimer{}, cpuTimer{}
	tg.cpuTimersArmed.Store(false)
	if ct.wake != nil {
		ct.wake.Stop()
		ct.wake = nil
	}
	ct.mu.Unlock()
}

// ClockTicks converts d to clock ticks (USER_HZ, 100 a second).
func ClockTicks(d time.Duration) int64 { return int64(d / (time.Second / 100)) }
