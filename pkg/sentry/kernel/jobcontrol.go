package kernel

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// Job control: group stops by SIGSTOP, SIGTSTP, SIGTTIN and SIGTTOU (the
// latter three when left at SIG_DFL), ended by SIGCONT, and their reports
// to the parent through SIGCHLD and wait.

// stopSignals are the signals whose default action stops the group.
var stopSignals = linux.MakeSignalSet(linux.SIGSTOP, linux.SIGTSTP, linux.SIGTTIN, linux.SIGTTOU)

// WaitStatusStopped is the status of a process stopped by sig.
func WaitStatusStopped(sig linux.Signal) WaitStatus { return WaitStatus(int(sig)<<8 | 0x7f) }

// WaitStatusContinued is the status of a process resumed by SIGCONT.
const WaitStatusContinued WaitStatus = 0xffff

// Stopped reports whether s is a stop report.
func (s WaitStatus) Stopped() bool { return s&0xff == 0x7f }

// StopSignal is the signal that stopped the process (when Stopped).
func (s WaitStatus) StopSignal() linux.Signal { return linux.Signal(s>>8) & 0xff }

// Continued reports whether s is a continue report.
func (s WaitStatus) Continued() bool { return s == WaitStatusContinued }

// IsStopped reports whether the process is in a group stop.
func (tg *ThreadGroup) IsStopped() bool { return tg.groupStopped.Load() }

// beginGroupStop stops every task of the group for sig and tells the
// parent. Called by the task that dequeued the stop signal.
func (tg *ThreadGroup) beginGroupStop(sig linux.Signal) {
	tg.signalMu.Lock()
	if tg.exiting || tg.groupStopped.Load() {
		tg.signalMu.Unlock()
		return
	}
	tg.contCh = make(chan struct{})
	tg.groupStopped.Store(true)
	for _, t := range tg.tasks {
		t.interrupt()
	}
	tg.signalMu.Unlock()

	k := tg.k
	k.mu.Lock()
	tg.stopReport, tg.continueReport = sig, false
	tg.notifyParentLocked(linux.CLD_STOPPED, int32(sig))
	k.mu.Unlock()
}

// notifyParentLocked sends the parent SIGCHLD for a stop or continue
// (unless it asked not to with SA_NOCLDSTOP) and wakes its waits.
func (tg *ThreadGroup) notifyParentLocked(code int32, status int32) {
	p := tg.parent
	if p == nil {
		return
	}
	act := p.handlers.Load().get(linux.SIGCHLD)
	if act.Flags&linux.SA_NOCLDSTOP == 0 {
		info := linux.SignalInfo{Signo: int32(unix.SIGCHLD), Code: code}
		info.SetPid(int32(tg.pid))
		info.SetStatus(status)
		p.sendSignal(&info, nil)
	}
	p.notifyChildLocked()
}

// continueLocked is SIGCONT's effect at generation: pending stop signals
// are discarded and a stopped group resumes. It reports whether the
// group was stopped; the caller, once signalMu is released, calls
// reportContinued.
func (tg *ThreadGroup) continueLocked() bool {
	tg.discardPendingLocked(stopSignals)
	if !tg.groupStopped.Load() {
		return false
	}
	tg.groupStopped.Store(false)
	close(tg.contCh)
	for _, t := range tg.tasks {
		// Signals that arrived during the stop are delivered now.
		t.sigPending.Store(true)
	}
	return true
}

// discardPendingLocked removes set's signals from every queue of the group.
func (tg *ThreadGroup) discardPendingLocked(set linux.SignalSet) {
	for sig := linux.Signal(1); sig <= linux.SignalMaximum; sig++ {
		if !set.Contains(sig) {
			continue
		}
		tg.pending.discard(sig)
		for _, t := range tg.tasks {
			t.pending.discard(sig)
		}
	}
}

// reportContinued records the continue for WCONTINUED and tells the parent.
func (tg *ThreadGroup) reportContinued() {
	k := tg.k
	k.mu.Lock()
	tg.stopReport, tg.continueReport = 0, true
	tg.notifyParentLocked(linux.CLD_CONTINUED, int32(unix.SIGCONT))
	k.mu.Unlock()
}

// waitWhileStopped parks the task during a group stop, until SIGCONT or
// the end of the group (SIGKILL, exit).
func (t *Task) waitWhileStopped() {
	tg := t.tg
	for !tg.exitingFlag.Load() && !t.killed.Load() {
		tg.signalMu.Lock()
		if !tg.groupStopped.Load() {
			tg.signalMu.Unlock()
			return
		}
		ch := tg.contCh
		tg.signalMu.Unlock()
		select {
		case <-ch:
		case <-t.interruptCh:
		}
	}
}
