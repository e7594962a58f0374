package kernel

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Synchronous acceptance of signals: sigtimedwait(2) and signalfd(2).

// DequeueSignal takes the first pending signal in set, from the task's
// own queue before its process's, as sigtimedwait and signalfd read
// them. It reports false when none is pending.
func (t *Task) DequeueSignal(set linux.SignalSet) (linux.SignalInfo, bool) {
	tg := t.tg
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	return t.dequeueLocked(set)
}

func (t *Task) dequeueLocked(set linux.SignalSet) (linux.SignalInfo, bool) {
	info, ok := t.pending.dequeue(^set)
	if !ok {
		info, ok = t.tg.pending.dequeue(^set)
	}
	if ok {
		t.tg.noteTimerSignalDequeued(&info)
	}
	return info, ok
}

// PendingIn reports whether a signal in set is pending for the task.
func (t *Task) PendingIn(set linux.SignalSet) bool {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	return (t.pending.set|t.tg.pending.set)&set != 0
}

// SignalWaiters is the queue told when a signal is queued for the task's
// process or one of its threads (signalfd readiness).
func (t *Task) SignalWaiters() *waiter.Queue { return &t.tg.signalWaiters }

// SigTimedWait implements rt_sigtimedwait(2): it returns a pending signal
// of set, waiting up to timeout (negative: forever). While it waits the
// signals of set are unblocked, so their arrival wakes it; another signal
// that interrupts the wait makes it fail with EINTR, and the timeout with
// EAGAIN.
func (t *Task) SigTimedWait(set linux.SignalSet, timeout time.Duration) (linux.SignalInfo, error) {
	set &^= linux.UnblockableSignals
	tg := t.tg
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		// A wake-up left over from an earlier interruption must not end
		// this wait: drop it, then look at the queues under the lock
		// (senders queue, then interrupt, both under it).
		select {
		case <-t.interruptCh:
		default:
		}
		tg.signalMu.Lock()
		if info, ok := t.dequeueLocked(set); ok {
			tg.signalMu.Unlock()
			return info, nil
		}
		if timeout == 0 {
			tg.signalMu.Unlock()
			return linux.SignalInfo{}, unix.EAGAIN
		}
		oldMask := t.sigMask
		t.sigMask = oldMask &^ set
		t.sigWaitSet = set
		// Sleep unless something is deliverable under the narrowed mask.
		interrupted := (t.pending.set|tg.pending.set)&^t.sigMask != 0
		if !interrupted {
			t.sigPending.Store(false)
		}
		tg.signalMu.Unlock()

		var err error
		switch {
		case interrupted:
			err = linux.ERESTARTSYS
		case timeout < 0:
			err = t.Block(nil)
		default:
			_, err = t.BlockTimeout(nil, time.Until(deadline))
		}

		tg.signalMu.Lock()
		t.sigMask = oldMask
		t.sigWaitSet = 0
		info, ok := t.dequeueLocked(set)
		deliverable := (t.pending.set|tg.pending.set)&^t.sigMask != 0
		if deliverable {
			t.sigPending.Store(true)
		}
		tg.signalMu.Unlock()
		switch {
		case ok:
			return info, nil
		case err == unix.ETIMEDOUT:
			return linux.SignalInfo{}, unix.EAGAIN
		case deliverable || tg.exitingFlag.Load() || t.killed.Load() || tg.groupStopped.Load():
			// Another signal (or the end of the process) interrupts.
			return linux.SignalInfo{}, unix.EINTR
		}
		// A spurious wake-up: wait again for what is left.
	}
}
