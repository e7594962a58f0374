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

// KillAll is kill(-1) by t: every process visible in t's PID namespace
// but that namespace's init and t's own that t may signal; ESRCH if there
// is none it may signal.
func (t *Task) KillAll(info *linux.SignalInfo) error {
	ns := t.tg.pidns
	return t.killEach(t.k.groupsWhere(func(g *ThreadGroup) bool {
		return g != t.tg && ns.idOfLocked(g.pid) > 1
	}), info, unix.ESRCH)
}

// signalFrom prepares info, sent by t to process tg, for its receiver:
// the sender's PID as tg's namespace sees it (0 from an ancestor
// namespace). It reports false when the signal is to be dropped: SIGKILL
// and SIGSTOP reach a namespace's init only from an ancestor namespace.
func (t *Task) signalFrom(tg *ThreadGroup, info *linux.SignalInfo) (linux.SignalInfo, bool) {
	c := *info
	sender := tg.pidns.IDOf(t.tg.pid)
	if c.Code == linux.SI_USER || c.Code == linux.SI_TKILL {
		c.SetPid(int32(sender))
	}
	sig := linux.Signal(c.Signo)
	if sender != 0 && tg.isProtectedInit() && (sig == linux.SIGKILL || sig == linux.SIGSTOP) {
		return c, false
	}
	return c, true
}

// SignalProcess sends info from t to process tg (kill, rt_sigqueueinfo),
// with the sender's PID filled in for SI_USER signals.
func (t *Task) SignalProcess(tg *ThreadGroup, info *linux.SignalInfo) error {
	c, ok := t.signalFrom(tg, info)
	if !ok {
		return nil
	}
	return tg.SendSignal(&c)
}

// SignalThread sends info from t to thread o (tgkill, tkill,
// rt_tgsigqueueinfo), as SignalProcess does.
func (t *Task) SignalThread(o *Task, info *linux.SignalInfo) error {
	c, ok := t.signalFrom(o.tg, info)
	if !ok {
		return nil
	}
	return o.SendSignal(&c)
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
			t.SignalProcess(g, info)
		}
	}
	if !sent {
		return noneAllowed
	}
	return nil
}
