package kernel

import (
	"slices"

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
		info.SetPid(int32(p.pidns.idOfLocked(tg.pid)))
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

// Orphaned process groups (POSIX; credentials(7)): a group none of whose
// members has a parent in another group of the same session. Job control
// stops make no sense there, since no shell is left to continue them.

// pgrpOrphanedLocked reports whether group pgid is orphaned, ignoring
// ignore (a process about to exit) and zombies. The sandbox's init counts
// as any parent: it is a container's init (an interactive shell run as
// `runsc do bash` or `docker run -it`, whose jobs must stop on ^Z), not
// Linux's global init, the one parent Linux leaves out.
func (k *Kernel) pgrpOrphanedLocked(pgid ThreadID, ignore *ThreadGroup) bool {
	for _, g := range k.groups {
		if g.pgid != pgid || g == ignore || g.zombie {
			continue
		}
		p := g.parent
		if p == nil {
			continue
		}
		if p.pgid != pgid && p.sid == g.sid {
			return false
		}
	}
	return true
}

// pgrpHasStoppedLocked reports whether a live member of pgid is stopped.
func (k *Kernel) pgrpHasStoppedLocked(pgid ThreadID) bool {
	for _, g := range k.groups {
		if g.pgid == pgid && !g.zombie && g.groupStopped.Load() {
			return true
		}
	}
	return false
}

// orphanedByExitLocked returns the process groups that tg's exit leaves
// orphaned with a stopped member, to be sent SIGHUP then SIGCONT: tg's
// own group, when its parent was the group's link to the session, and
// each child's group, when tg was (the children are already reparented).
func (k *Kernel) orphanedByExitLocked(tg *ThreadGroup, children []*ThreadGroup) []ThreadID {
	var out []ThreadID
	add := func(pgid ThreadID) {
		if k.pgrpHasStoppedLocked(pgid) && !slices.Contains(out, pgid) {
			out = append(out, pgid)
		}
	}
	if p := tg.parent; p != nil && p.pgid != tg.pgid && p.sid == tg.sid && k.pgrpOrphanedLocked(tg.pgid, tg) {
		add(tg.pgid)
	}
	for _, c := range children {
		if !c.zombie && c.pgid != tg.pgid && c.sid == tg.sid && k.pgrpOrphanedLocked(c.pgid, nil) {
			add(c.pgid)
		}
	}
	return out
}

// inOrphanedPgrp reports whether tg's process group is orphaned.
func (tg *ThreadGroup) inOrphanedPgrp() bool {
	k := tg.k
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pgrpOrphanedLocked(tg.pgid, nil)
}
