package kernel

import (
	"math/bits"
	"runtime"
)

// Scheduling attributes. The Sentry leaves scheduling to the Go runtime
// and the host, so these are recorded and reported with Linux's rules
// but change nothing about when a task runs.

// AllCPUs is the affinity mask of a task that never called
// sched_setaffinity: every CPU the Sentry may use (at most 64).
func AllCPUs() uint64 {
	n := runtime.NumCPU()
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(n) - 1
}

// inheritSched copies the parent's attributes into a new task, as clone
// does (SCHED_RESET_ON_FORK is not kept).
func (t *Task) inheritSched(parent *Task) {
	t.schedPolicy.Store(parent.schedPolicy.Load())
	t.schedPriority.Store(parent.schedPriority.Load())
	t.nice.Store(parent.nice.Load())
	t.cpuMask.Store(parent.cpuMask.Load())
}

// Scheduler returns the policy and real-time priority.
func (t *Task) Scheduler() (policy, priority int32) {
	return t.schedPolicy.Load(), t.schedPriority.Load()
}

// SetScheduler records them (the caller validated them).
func (t *Task) SetScheduler(policy, priority int32) {
	t.schedPolicy.Store(policy)
	t.schedPriority.Store(priority)
}

// Nice returns the nice value, -20..19.
func (t *Task) Nice() int32 { return t.nice.Load() }

// SetNice sets it (the caller clamped it and checked privilege).
func (t *Task) SetNice(n int32) { t.nice.Store(n) }

// CPUMask returns the affinity mask.
func (t *Task) CPUMask() uint64 {
	if m := t.cpuMask.Load(); m != 0 {
		return m
	}
	return AllCPUs()
}

// SetCPUMask sets it; the caller made sure it names a usable CPU.
func (t *Task) SetCPUMask(m uint64) { t.cpuMask.Store(m) }

// CPU is what getcpu reports: the first CPU the task may run on, since
// the Sentry does not know which host CPU runs it.
func (t *Task) CPU() int { return bits.TrailingZeros64(t.CPUMask()) }
