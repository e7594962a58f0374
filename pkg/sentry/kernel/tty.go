package kernel

import (
	"context"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Controlling terminals (credentials(7), termios(3) "job control"): a
// session may have one terminal, whose foreground process group receives
// the terminal's signals and may read and write it; background groups
// get SIGTTIN and SIGTTOU. The terminals are devpts's; this file is the
// kernel's side of devpts.Hooks and devpts.SessionHooks.

// ttyState is what the kernel knows of a terminal, guarded by k.mu.
type ttyState struct {
	sid ThreadID // the session it controls, 0 for none
	fg  ThreadID // its foreground process group
}

// terminalHooks implement devpts.Hooks and devpts.SessionHooks.
type terminalHooks struct{ k *Kernel }

var (
	_ devpts.Hooks        = terminalHooks{}
	_ devpts.SessionHooks = terminalHooks{}
)

// ttyLocked returns the state of term, creating it.
func (k *Kernel) ttyLocked(term *devpts.Terminal) *ttyState {
	if k.ttys == nil {
		k.ttys = make(map[*devpts.Terminal]*ttyState)
		k.sessionTTYs = make(map[ThreadID]*devpts.Terminal)
	}
	st := k.ttys[term]
	if st == nil {
		st = &ttyState{}
		k.ttys[term] = st
	}
	return st
}

// callerOf returns the task a devpts call runs for, or nil.
func callerOf(ctx context.Context) *Task {
	t, _ := ctx.(*Task)
	return t
}

// isCTTYLocked reports whether term is the controlling terminal of tg's
// session.
func (k *Kernel) isCTTYLocked(tg *ThreadGroup, term *devpts.Terminal) bool {
	return k.sessionTTYs != nil && k.sessionTTYs[tg.sid] == term
}

// Signal implements devpts.Hooks: an ISIG character goes to the
// foreground process group.
func (h terminalHooks) Signal(term *devpts.Terminal, sig unix.Signal) {
	k := h.k
	k.mu.Lock()
	var fg ThreadID
	if st := k.ttys[term]; st != nil && st.sid != 0 {
		fg = st.fg
	}
	k.mu.Unlock()
	if fg != 0 {
		k.SignalProcessGroup(fg, &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_KERNEL})
	}
}

// Foreground implements devpts.Hooks (TIOCGPGRP): ENOTTY unless term is
// the caller's controlling terminal.
func (h terminalHooks) Foreground(ctx context.Context, term *devpts.Terminal) (int32, error) {
	t := callerOf(ctx)
	if t == nil {
		return 0, unix.ENOTTY
	}
	k := h.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.isCTTYLocked(t.tg, term) {
		return 0, unix.ENOTTY
	}
	return int32(t.tg.pidns.idOfLocked(k.ttyLocked(term).fg)), nil
}

// SetForeground implements devpts.Hooks (TIOCSPGRP).
func (h terminalHooks) SetForeground(ctx context.Context, term *devpts.Terminal, pgid int32) error {
	t := callerOf(ctx)
	if t == nil {
		return unix.ENOTTY
	}
	if err := h.CheckAccess(ctx, term, false); err != nil {
		return err
	}
	k := h.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.isCTTYLocked(t.tg, term) {
		return unix.ENOTTY
	}
	root, ok := t.tg.pidns.rootIDLocked(ThreadID(pgid))
	if !ok {
		return unix.ESRCH
	}
	var found, sameSession bool
	for _, g := range k.groups {
		if g.pgid == root && !g.zombie {
			found = true
			if g.sid == t.tg.sid {
				sameSession = true
			}
		}
	}
	switch {
	case !found:
		return unix.ESRCH
	case !sameSession:
		return unix.EPERM
	}
	k.ttyLocked(term).fg = root
	return nil
}

// Opened implements devpts.SessionHooks: a session leader without a
// controlling terminal acquires a free one it opens.
func (h terminalHooks) Opened(ctx context.Context, term *devpts.Terminal) {
	t := callerOf(ctx)
	if t == nil {
		return
	}
	k := h.k
	k.mu.Lock()
	defer k.mu.Unlock()
	tg := t.tg
	st := k.ttyLocked(term)
	if tg.sid != tg.pid || st.sid != 0 || k.sessionTTYs[tg.sid] != nil {
		return
	}
	k.attachLocked(term, st, tg)
}

func (k *Kernel) attachLocked(term *devpts.Terminal, st *ttyState, leader *ThreadGroup) {
	st.sid, st.fg = leader.sid, leader.pgid
	k.sessionTTYs[leader.sid] = term
}

// SetControlling implements devpts.SessionHooks (TIOCSCTTY).
func (h terminalHooks) SetControlling(ctx context.Context, term *devpts.Terminal, steal bool) error {
	t := callerOf(ctx)
	if t == nil {
		return unix.ENOTTY
	}
	k := h.k
	k.mu.Lock()
	defer k.mu.Unlock()
	tg := t.tg
	st := k.ttyLocked(term)
	if tg.sid != tg.pid {
		return unix.EPERM
	}
	if k.sessionTTYs[tg.sid] == term {
		return nil
	}
	if k.sessionTTYs[tg.sid] != nil {
		return unix.EPERM
	}
	if st.sid != 0 {
		if !steal || !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
			return unix.EPERM
		}
		delete(k.sessionTTYs, st.sid)
	}
	k.attachLocked(term, st, tg)
	return nil
}

// ReleaseControlling implements devpts.SessionHooks (TIOCNOTTY): the
// session leader gives the terminal up, and its foreground group gets
// SIGHUP and SIGCONT.
func (h terminalHooks) ReleaseControlling(ctx context.Context, term *devpts.Terminal) error {
	t := callerOf(ctx)
	if t == nil {
		return unix.ENOTTY
	}
	k := h.k
	k.mu.Lock()
	if !k.isCTTYLocked(t.tg, term) {
		k.mu.Unlock()
		return unix.ENOTTY
	}
	if t.tg.sid != t.tg.pid {
		k.mu.Unlock()
		return nil
	}
	fg := k.detachLocked(term)
	k.mu.Unlock()
	k.hangUp(fg)
	return nil
}

// detachLocked ends term's association with its session and returns the
// foreground group to hang up.
func (k *Kernel) detachLocked(term *devpts.Terminal) ThreadID {
	st := k.ttys[term]
	if st == nil {
		return 0
	}
	delete(k.sessionTTYs, st.sid)
	fg := st.fg
	st.sid, st.fg = 0, 0
	// Nothing is left to remember, and keeping the entry would keep the
	// terminal (an `exec --tty` pty) alive with the kernel.
	delete(k.ttys, term)
	return fg
}

// hangUp sends SIGHUP then SIGCONT to group pgid (0: none).
func (k *Kernel) hangUp(pgid ThreadID) {
	if pgid == 0 {
		return
	}
	k.SignalProcessGroup(pgid, &linux.SignalInfo{Signo: int32(unix.SIGHUP), Code: linux.SI_KERNEL})
	k.SignalProcessGroup(pgid, &linux.SignalInfo{Signo: int32(unix.SIGCONT), Code: linux.SI_KERNEL})
}

// sessionLeaderExitedLocked releases the controlling terminal of the
// session tg leads; it returns the foreground group to hang up once k.mu
// is released.
func (k *Kernel) sessionLeaderExitedLocked(tg *ThreadGroup) ThreadID {
	if tg.sid != tg.pid || k.sessionTTYs == nil {
		return 0
	}
	term := k.sessionTTYs[tg.sid]
	if term == nil {
		return 0
	}
	return k.detachLocked(term)
}

// Session implements devpts.SessionHooks (TIOCGSID).
func (h terminalHooks) Session(ctx context.Context, term *devpts.Terminal) (int32, error) {
	t := callerOf(ctx)
	if t == nil {
		return 0, unix.ENOTTY
	}
	k := h.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.isCTTYLocked(t.tg, term) {
		return 0, unix.ENOTTY
	}
	return int32(t.tg.pidns.idOfLocked(t.tg.sid)), nil
}

// CheckAccess implements devpts.SessionHooks: a process in a background
// group of the terminal's session that reads it gets SIGTTIN (EIO if it
// blocks or ignores the signal); one that writes with TOSTOP set, or
// changes the foreground group, gets SIGTTOU (and may proceed if it
// blocks or ignores it).
func (h terminalHooks) CheckAccess(ctx context.Context, term *devpts.Terminal, read bool) error {
	t := callerOf(ctx)
	if t == nil {
		return nil
	}
	k := h.k
	k.mu.Lock()
	tg := t.tg
	st := k.ttys[term]
	if st == nil || !k.isCTTYLocked(tg, term) || tg.pgid == st.fg {
		k.mu.Unlock()
		return nil
	}
	pgid := tg.pgid
	orphaned := k.pgrpOrphanedLocked(pgid, nil)
	k.mu.Unlock()
	sig := linux.SIGTTOU
	if read {
		sig = linux.SIGTTIN
	}
	act := tg.handlers.Load().get(sig)
	blocked := t.SignalMask().Contains(sig)
	if act.Handler == linux.SIG_IGN || blocked {
		if read {
			return unix.EIO
		}
		return nil
	}
	if orphaned {
		// No one would continue a stopped orphaned group.
		return unix.EIO
	}
	k.SignalProcessGroup(pgid, &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_KERNEL})
	return linux.ERESTARTSYS
}

// TTY device numbers: /dev/tty is (TTYAUX_MAJOR, 0).
const (
	ttyAuxMajor = 5
	ttyMinor    = 0
)

// ttyDevice is /dev/tty: the caller's controlling terminal.
type ttyDevice struct{ k *Kernel }

// Open implements vfs.Device: ENXIO without a controlling terminal.
func (d ttyDevice) Open(ctx context.Context, _ vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	t := callerOf(ctx)
	if t == nil {
		return nil, unix.ENXIO
	}
	k := d.k
	k.mu.Lock()
	var term *devpts.Terminal
	if k.sessionTTYs != nil {
		term = k.sessionTTYs[t.tg.sid]
	}
	k.mu.Unlock()
	if term == nil {
		return nil, unix.ENXIO
	}
	return devpts.OpenReplica(term)
}
