package kernel

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// MaySignal implements kill(2)'s permission rule: the sender's real or
// effective UID must match the target's real or saved set-user-ID, or the
// sender holds CAP_KILL; SIGCONT may always be sent within a session.
// It returns EPERM when sig may not be sent to target.
func (t *Task) MaySignal(target *Task, sig linux.Signal) error {
	c, tc := t.Credentials(), target.Credentials()
	if c.HasCapability(auth.CAP_KILL) {
		return nil
	}
	if c.EffectiveUID == tc.RealUID || c.EffectiveUID == tc.SavedUID ||
		c.RealUID == tc.RealUID || c.RealUID == tc.SavedUID {
		return nil
	}
	if sig == linux.SIGCONT && t.tg.SessionID() == target.tg.SessionID() {
		return nil
	}
	return unix.EPERM
}

// MaySignalGroup is MaySignal against a process (its leader, or any live
// thread once the leader has exited).
func (t *Task) MaySignalGroup(tg *ThreadGroup, sig linux.Signal) error {
	target := tg.Leader()
	if target == nil {
		tg.signalMu.Lock()
		if len(tg.tasks) > 0 {
			target = tg.tasks[0]
		}
		tg.signalMu.Unlock()
	}
	if target == nil {
		// A zombie: Linux checks the credentials it died with; the
		// signal is dropped either way.
		return nil
	}
	return t.MaySignal(target, sig)
}

// KillProcessGroup is kill(-pgid) by t: info goes to every process of the
// group t may signal; EPERM if it may signal none, ESRCH if there is none.
func (t *Task) KillProcessGroup(pgid ThreadID, info *linux.SignalInfo) error {
	return t.killEach(t.k.groupsWhere(func(g *ThreadGroup) bool { return g.pgid == pgid }), info, unix.EPERM)
}

// KillAll is kill(-1) by t: every process but init and t's own that t
// may signal; ESRCH if there is none it may signal.
func (t *Task) KillAll(info *linux.SignalInfo) error {
	return t.killEach(t.k.groupsWhere(func(g *ThreadGroup) bool { return g.pid > 1 && g != t.tg }), info, unix.ESRCH)
}

// groupsWhere returns the live processes matching keep.
func (k *Kernel) groupsWhere(keep func(*ThreadGroup) bool) []*ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*ThreadGroup
	for _, g := range k.groups {
		if !g.zombie && keep(g) {
			out = append(out, g)
		}
	}
	return out
}

func (t *Task) killEach(targets []*ThreadGroup, info *linux.SignalInfo, noneAllowed unix.Errno) error {
	if len(targets) == 0 {
		return unix.ESRCH
	}
	sig := linux.Signal(info.Signo)
	sent := false
	for _, g := range targets {
		if t.MaySignalGroup(g, sig) != nil {
			continue
		}
		sent = true
		if sig != 0 {
			g.SendSignal(info)
		}
	}
	if !sent {
		return noneAllowed
	}
	return nil
}
