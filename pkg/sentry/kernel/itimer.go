package kernel

import (
	"sync"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// realTimer is a process's ITIMER_REAL (alarm(2), setitimer(2)): it sends
// SIGALRM to the process when it expires, then re-arms with its interval.
type realTimer struct {
	mu       sync.Mutex
	timer    *time.Timer
	deadline time.Time // zero: disarmed
	interval time.Duration
	// gen tells the callback of a superseded setting to do nothing.
	gen uint64
}

// RealTimer returns the time left before ITIMER_REAL expires (0:
// disarmed) and its interval.
func (tg *ThreadGroup) RealTimer() (value, interval time.Duration) {
	rt := &tg.realTimer
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.leftLocked(), rt.interval
}

func (rt *realTimer) leftLocked() time.Duration {
	if rt.deadline.IsZero() {
		return 0
	}
	// An expired timer not yet re-armed still counts as armed.
	return max(time.Until(rt.deadline), time.Microsecond)
}

// SetRealTimer arms ITIMER_REAL to expire after value (0 disarms), then
// every interval, and returns the previous setting.
func (tg *ThreadGroup) SetRealTimer(value, interval time.Duration) (oldValue, oldInterval time.Duration) {
	rt := &tg.realTimer
	rt.mu.Lock()
	defer rt.mu.Unlock()
	oldValue, oldInterval = rt.leftLocked(), rt.interval
	rt.gen++
	if rt.timer != nil {
		rt.timer.Stop()
		rt.timer = nil
	}
	rt.deadline, rt.interval = time.Time{}, interval
	if value > 0 {
		rt.armLocked(tg, value)
	}
	return oldValue, oldInterval
}

func (rt *realTimer) armLocked(tg *ThreadGroup, d time.Duration) {
	gen := rt.gen
	rt.deadline = time.Now().Add(d)
	rt.timer = time.AfterFunc(d, func() { rt.fire(tg, gen) })
}

func (rt *realTimer) fire(tg *ThreadGroup, gen uint64) {
	rt.mu.Lock()
	if rt.gen != gen {
		rt.mu.Unlock()
		return
	}
	rt.deadline = time.Time{}
	rt.timer = nil
	if rt.interval > 0 {
		rt.armLocked(tg, rt.interval)
	}
	rt.mu.Unlock()
	if tg.exitingFlag.Load() {
		return
	}
	tg.SendSignal(&linux.SignalInfo{Signo: int32(unix.SIGALRM), Code: linux.SI_KERNEL})
}

// stopRealTimer disarms ITIMER_REAL when the process exits.
func (tg *ThreadGroup) stopRealTimer() { tg.SetRealTimer(0, 0) }
