package kernel

import (
	"sync"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// SignalHandlers are the sigactions of one or more processes (shared by
// CLONE_SIGHAND).
type SignalHandlers struct {
	mu      sync.Mutex
	actions [linux.SignalMaximum + 1]linux.Sigaction
}

// NewSignalHandlers returns handlers with every signal at SIG_DFL.
func NewSignalHandlers() *SignalHandlers { return &SignalHandlers{} }

// Fork returns an unshared copy (fork without CLONE_SIGHAND).
func (sh *SignalHandlers) Fork() *SignalHandlers {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return &SignalHandlers{actions: sh.actions}
}

// ResetForExec returns handlers after execve: caught signals revert to
// SIG_DFL, ignored ones stay ignored.
func (sh *SignalHandlers) ResetForExec() *SignalHandlers {
	n := sh.Fork()
	for i := range n.actions {
		if n.actions[i].Handler != linux.SIG_IGN {
			n.actions[i] = linux.Sigaction{}
		}
	}
	return n
}

func (sh *SignalHandlers) get(sig linux.Signal) linux.Sigaction {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.actions[sig]
}

// sigQueue holds pending signals: standard signals at most once each,
// real-time ones queued.
type sigQueue struct {
	set   linux.SignalSet
	infos [linux.SignalMaximum + 1][]linux.SignalInfo
}

// maxQueuedRT bounds each real-time signal's queue (RLIMIT_SIGPENDING in
// spirit).
const maxQueuedRT = 1024

func (q *sigQueue) enqueue(info *linux.SignalInfo) bool {
	sig := linux.Signal(info.Signo)
	if q.set.Contains(sig) && (!sig.IsRealtime() || len(q.infos[sig]) >= maxQueuedRT) {
		return false
	}
	q.set = q.set.Add(sig)
	q.infos[sig] = append(q.infos[sig], *info)
	return true
}

// synchronousSignals are delivered before others (Linux's SYNCHRONOUS_MASK).
var synchronousSignals = linux.MakeSignalSet(linux.SIGSEGV, linux.SIGBUS, linux.SIGILL, linux.SIGTRAP, linux.SIGFPE, linux.SIGSYS)

func (q *sigQueue) dequeue(mask linux.SignalSet) (linux.SignalInfo, bool) {
	avail := q.set &^ mask
	if avail == 0 {
		return linux.SignalInfo{}, false
	}
	sig := (avail & synchronousSignals).Lowest()
	if sig == 0 {
		sig = avail.Lowest()
	}
	info := q.infos[sig][0]
	q.infos[sig] = q.infos[sig][1:]
	if len(q.infos[sig]) == 0 {
		q.infos[sig] = nil
		q.set = q.set.Remove(sig)
	}
	return info, true
}

func (q *sigQueue) discard(sig linux.Signal) {
	q.set = q.set.Remove(sig)
	q.infos[sig] = nil
}

// isIgnored reports whether act ignores sig (explicitly or by default).
// SIGCONT at SIG_DFL counts as ignored, as in Linux (sig_kernel_ignore):
// its effect, resuming a stopped group, happens at generation, and what
// is left of it must neither stay pending nor interrupt a blocked task.
func isIgnored(sig linux.Signal, act linux.Sigaction) bool {
	if sig == linux.SIGKILL || sig == linux.SIGSTOP {
		return false
	}
	if act.Handler == linux.SIG_IGN {
		return true
	}
	if act.Handler != linux.SIG_DFL {
		return false
	}
	d := linux.DefaultAction(sig)
	return d == linux.SignalDefaultIgnore || d == linux.SignalDefaultContinue
}

// sendSignal queues info for the group (target nil) or for one of its
// tasks. Must not be called with tg.signalMu held.
func (tg *ThreadGroup) sendSignal(info *linux.SignalInfo, target *Task) error {
	_, err := tg.send(info, target)
	return err
}

// send is sendSignal that also reports whether info was queued (not
// dropped as ignored or as a duplicate of a pending standard signal).
func (tg *ThreadGroup) send(info *linux.SignalInfo, target *Task) (bool, error) {
	sig := linux.Signal(info.Signo)
	if !sig.IsValid() {
		return false, unix.EINVAL
	}
	if sig == linux.SIGKILL {
		tg.exitGroup(WaitStatusSignaled(unix.SIGKILL))
		return true, nil
	}
	act := tg.handlers.Load().get(sig)
	tg.signalMu.Lock()
	continued := false
	if !tg.exiting {
		switch {
		case sig == linux.SIGCONT:
			continued = tg.continueLocked()
		case stopSignals.Contains(sig):
			tg.discardPendingLocked(linux.MakeSignalSet(linux.SIGCONT))
		}
	}
	queued := tg.sendLocked(info, target, sig, act)
	tg.signalMu.Unlock()
	if continued {
		tg.reportContinued()
	}
	if queued {
		// signalfd readers poll for pending signals.
		tg.signalWaiters.Notify(waiter.EventIn)
	}
	return queued, nil
}

func (tg *ThreadGroup) sendLocked(info *linux.SignalInfo, target *Task, sig linux.Signal, act linux.Sigaction) bool {
	if tg.exiting {
		return false
	}
	if act.Handler == linux.SIG_DFL && sig != linux.SIGSTOP && tg.isProtectedInit() {
		// A namespace's init gets only the signals it handles (SIGKILL
		// and SIGSTOP were filtered by sender before).
		return false
	}
	if isIgnored(sig, act) {
		// Ignored signals are dropped at generation unless blocked by
		// the target (sigwait may still want them).
		blocked := target != nil && (target.sigMask | target.sigWaitSet).Contains(sig)
		if target == nil {
			for _, t := range tg.tasks {
				if (t.sigMask | t.sigWaitSet).Contains(sig) {
					blocked = true
					break
				}
			}
		}
		if !blocked {
			return false
		}
	}
	// Only a task that will take the signal is woken (interrupt's rule):
	// one that blocks it keeps sleeping, and an ignored signal queued
	// because some task blocks it wakes nobody who would only drop it.
	if target != nil {
		queued := target.pending.enqueue(info)
		if !target.sigMask.Contains(sig) {
			target.sigPending.Store(true)
			target.interrupt()
		}
		return queued
	}
	queued := tg.pending.enqueue(info)
	if isIgnored(sig, act) {
		// Kept for a task that blocks it: wake the one waiting for it
		// in sigtimedwait, if any; others would only drop it.
		for _, t := range tg.tasks {
			if t.sigWaitSet.Contains(sig) && !t.sigMask.Contains(sig) {
				t.sigPending.Store(true)
				t.interrupt()
				break
			}
		}
		return queued
	}
	// Wake one task that can take it (the first not blocking it).
	for _, t := range tg.tasks {
		if !t.sigMask.Contains(sig) {
			t.sigPending.Store(true)
			t.interrupt()
			break
		}
	}
	return queued
}

// SendSignal sends info to the process (kill(2)).
func (tg *ThreadGroup) SendSignal(info *linux.SignalInfo) error { return tg.sendSignal(info, nil) }

// SendSignal sends info to this thread (tgkill(2)).
func (t *Task) SendSignal(info *linux.SignalInfo) error { return t.tg.sendSignal(info, t) }

// forceSignal delivers a synchronous signal caused by the task itself
// (a fault): if it is blocked or ignored, the default action (death)
// applies, as Linux's force_sig does.
func (t *Task) forceSignal(info *linux.SignalInfo) {
	sig := linux.Signal(info.Signo)
	tg := t.tg
	sh := tg.handlers.Load()
	sh.mu.Lock()
	if sh.actions[sig].Handler == linux.SIG_IGN {
		sh.actions[sig] = linux.Sigaction{}
	}
	sh.mu.Unlock()
	tg.signalMu.Lock()
	if t.sigMask.Contains(sig) {
		t.sigMask = t.sigMask.Remove(sig)
		sh := tg.handlers.Load()
		sh.mu.Lock()
		sh.actions[sig] = linux.Sigaction{}
		sh.mu.Unlock()
	}
	t.pending.enqueue(info)
	t.sigPending.Store(true)
	tg.signalMu.Unlock()
}

// SignalMask returns the task's blocked set.
func (t *Task) SignalMask() linux.SignalSet {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	return t.sigMask
}

// SetSignalMask replaces the blocked set (SIGKILL and SIGSTOP are never
// blocked) and looks again for deliverable signals.
func (t *Task) SetSignalMask(mask linux.SignalSet) {
	t.tg.signalMu.Lock()
	t.sigMask = mask &^ linux.UnblockableSignals
	t.tg.signalMu.Unlock()
	t.sigPending.Store(true)
}

// SigAction reads and/or replaces the action for sig (rt_sigaction).
func (t *Task) SigAction(sig linux.Signal, act *linux.Sigaction) (linux.Sigaction, error) {
	if !sig.IsValid() {
		return linux.Sigaction{}, unix.EINVAL
	}
	if act != nil && (sig == linux.SIGKILL || sig == linux.SIGSTOP) {
		return linux.Sigaction{}, unix.EINVAL
	}
	sh := t.tg.handlers.Load()
	sh.mu.Lock()
	old := sh.actions[sig]
	if act != nil {
		a := *act
		a.Mask &^= linux.UnblockableSignals
		sh.actions[sig] = a
	}
	sh.mu.Unlock()
	if act != nil && isIgnored(sig, *act) {
		// Setting a signal to be ignored discards it where pending.
		t.tg.signalMu.Lock()
		t.tg.pending.discard(sig)
		for _, o := range t.tg.tasks {
			o.pending.discard(sig)
		}
		t.tg.signalMu.Unlock()
	}
	return old, nil
}

// AltStack returns the task's alternate signal stack.
func (t *Task) AltStack() arch.SignalStack {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	return t.altStack
}

// SetAltStack sets it (sigaltstack); EPERM while running on it.
func (t *Task) SetAltStack(st arch.SignalStack) error {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	if t.altStack.Contains(t.ac.Stack()) {
		return unix.EPERM
	}
	t.altStack = st
	return nil
}

// deliverSignals runs on the task goroutine between application runs: it
// delivers the next unblocked pending signal (a handler frame, or its
// default action) and settles an interrupted syscall's restart.
func (t *Task) deliverSignals() {
	tg := t.tg
	for {
		tg.signalMu.Lock()
		info, ok := t.pending.dequeue(t.sigMask)
		if !ok {
			info, ok = tg.pending.dequeue(t.sigMask)
		}
		if !ok {
			t.sigPending.Store(false)
			tg.signalMu.Unlock()
			break
		}
		tg.noteTimerSignalDequeued(&info)
		tg.signalMu.Unlock()
		sig := linux.Signal(info.Signo)
		act := tg.handlers.Load().get(sig)
		switch {
		case act.Handler == linux.SIG_IGN:
			continue
		case act.Handler == linux.SIG_DFL && sig != linux.SIGSTOP && tg.isProtectedInit():
			continue
		case act.Handler == linux.SIG_DFL:
			switch linux.DefaultAction(sig) {
			case linux.SignalDefaultIgnore, linux.SignalDefaultContinue:
				continue
			case linux.SignalDefaultStop:
				// The job control stops do nothing in an orphaned
				// process group; SIGSTOP always stops.
				if sig != linux.SIGSTOP && tg.inOrphanedPgrp() {
					continue
				}
				// The run loop parks the task until SIGCONT; an
				// interrupted syscall is settled after that.
				tg.beginGroupStop(sig)
				return
			default:
				tg.exitGroup(WaitStatusSignaled(unix.Signal(sig)))
				t.restartErrno = 0
				return
			}
		}
		t.setupHandler(&info, act)
		return
	}
	if t.haveSavedMask {
		t.haveSavedMask = false
		t.SetSignalMask(t.savedMask)
	}
	// No handler ran: an interrupted syscall restarts transparently.
	if e := t.restartErrno; e != 0 {
		t.restartErrno = 0
		if e == linux.ERESTART_RESTARTBLOCK {
			t.ac.RestartSyscallWithRestartBlock()
		} else {
			t.ac.RestartSyscall()
		}
	}
}

// setupHandler builds the signal frame for a caught signal.
func (t *Task) setupHandler(info *linux.SignalInfo, act linux.Sigaction) {
	sig := linux.Signal(info.Signo)
	if e := t.restartErrno; e != 0 {
		t.restartErrno = 0
		switch {
		case e == linux.ERESTARTNOINTR, e == linux.ERESTARTSYS && act.Flags&linux.SA_RESTART != 0:
			t.ac.RestartSyscall()
		default:
			t.ac.SetReturn(negErrno(unix.EINTR))
		}
	}
	tg := t.tg
	tg.signalMu.Lock()
	oldMask := t.sigMask
	if t.haveSavedMask {
		// sigsuspend: the handler returns to the mask before the call.
		oldMask = t.savedMask
		t.haveSavedMask = false
	}
	alt := t.altStack
	newMask := oldMask | act.Mask
	if act.Flags&linux.SA_NODEFER == 0 {
		newMask = newMask.Add(sig)
	}
	t.sigMask = newMask &^ linux.UnblockableSignals
	tg.signalMu.Unlock()
	if act.Flags&linux.SA_RESETHAND != 0 {
		sh := tg.handlers.Load()
		sh.mu.Lock()
		sh.actions[sig] = linux.Sigaction{}
		sh.mu.Unlock()
	}
	var buf [linux.SizeOfSignalInfo]byte
	info.MarshalBytes(buf[:])
	// SA_ONSTACK asks for the alternate stack only if one is set up
	// (sigaltstack(2)): a thread that never made one, or disabled it,
	// takes the handler on its current stack.
	onAlt := act.Flags&linux.SA_ONSTACK != 0 && alt.Flags&arch.SignalStackDisable == 0 && alt.Size != 0
	err := t.ac.SignalSetup(t, t.mm, hostarch.Addr(act.Handler), hostarch.Addr(act.Restorer), uint64(oldMask),
		buf[:], alt, onAlt, act.Flags&linux.SA_SIGINFO != 0)
	if err != nil {
		// The frame could not be written: Linux kills with SIGSEGV.
		log.Debugf("%v: signal frame for %v: %v", t, sig, err)
		tg.exitGroup(WaitStatusSignaled(unix.SIGSEGV))
		return
	}
	// SS_AUTODISARM: the stack is cleared for the handler's run, whatever
	// stack it runs on; the frame holds the setting sigreturn restores.
	if alt.Flags&arch.SignalStackAutoDisarm != 0 {
		tg.signalMu.Lock()
		t.altStack = arch.SignalStack{Flags: arch.SignalStackDisable}
		tg.signalMu.Unlock()
	}
}

// SignalReturn implements rt_sigreturn: restore the state saved by
// setupHandler from the frame on the stack.
func (t *Task) SignalReturn() error {
	mask, alt, err := t.ac.SignalRestore(t, t.mm)
	if err != nil {
		info := linux.SignalInfo{Signo: int32(unix.SIGSEGV), Code: linux.SI_KERNEL}
		t.forceSignal(&info)
		return ErrNoSyscallReturn
	}
	t.SetSignalMask(linux.SignalSet(mask))
	tg := t.tg
	tg.signalMu.Lock()
	alt.Flags &^= arch.SignalStackOnStack
	t.altStack = alt
	tg.signalMu.Unlock()
	return ErrNoSyscallReturn
}

// SigSuspend implements rt_sigsuspend: wait with mask in force until a
// signal is delivered; the old mask comes back once it has been handled.
func (t *Task) SigSuspend(mask linux.SignalSet) error {
	t.savedMask = t.SignalMask()
	t.haveSavedMask = true
	t.SetSignalMask(mask)
	// SetSignalMask leaves a hint to look for signals; clear it if
	// nothing is deliverable so that Block sleeps.
	t.tg.signalMu.Lock()
	avail := (t.pending.set | t.tg.pending.set) &^ t.sigMask
	if avail == 0 {
		t.sigPending.Store(false)
	}
	t.tg.signalMu.Unlock()
	t.Block(nil)
	return linux.ERESTARTNOHAND
}

// SetTemporarySignalMask puts mask in force for the rest of a syscall
// (ppoll, pselect6, epoll_pwait): a handler run for a signal that
// interrupts it returns to the mask from before; a syscall that returns
// without being interrupted calls RestoreTemporarySignalMask.
func (t *Task) SetTemporarySignalMask(mask linux.SignalSet) {
	t.savedMask = t.SignalMask()
	t.haveSavedMask = true
	t.SetSignalMask(mask)
	t.tg.signalMu.Lock()
	if (t.pending.set|t.tg.pending.set)&^t.sigMask == 0 {
		t.sigPending.Store(false)
	}
	t.tg.signalMu.Unlock()
}

// RestoreTemporarySignalMask undoes SetTemporarySignalMask, if in force.
func (t *Task) RestoreTemporarySignalMask() {
	if t.haveSavedMask {
		t.haveSavedMask = false
		t.SetSignalMask(t.savedMask)
	}
}

// Pause implements pause(2).
func (t *Task) Pause() error {
	t.Block(nil)
	return linux.ERESTARTNOHAND
}

// PendingSignals returns the signals pending for the task or its process
// (rt_sigpending).
func (t *Task) PendingSignals() linux.SignalSet {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	return t.pending.set | t.tg.pending.set
}
