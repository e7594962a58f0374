package kernel

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// Process groups and sessions: enough for shells to put jobs in groups
// and signal them. Job control (stops, terminal ownership) comes later.

// ProcessGroupID returns the process's group ID.
func (tg *ThreadGroup) ProcessGroupID() ThreadID {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.pgid
}

// SessionID returns the process's session ID.
func (tg *ThreadGroup) SessionID() ThreadID {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.sid
}

// GroupWithID returns the live or zombie process with PID pid, or nil.
func (k *Kernel) GroupWithID(pid ThreadID) *ThreadGroup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.groups[pid]
}

// SetProcessGroup implements setpgid(2) as called by tg on target: target
// must be tg or a child of it in the same session, not a session leader,
// and pgid must be target's own PID or an existing group of the session.
func (tg *ThreadGroup) SetProcessGroup(target *ThreadGroup, pgid ThreadID) error {
	k := tg.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if target != tg && target.parent != tg {
		return unix.ESRCH
	}
	if target.sid != tg.sid {
		return unix.EPERM
	}
	if target.sid == target.pid {
		return unix.EPERM
	}
	if pgid == 0 {
		pgid = target.pid
	}
	if pgid != target.pid {
		found := false
		for _, g := range k.groups {
			if g.pgid == pgid && g.sid == tg.sid && !g.zombie {
				found = true
				break
			}
		}
		if !found {
			return unix.EPERM
		}
	}
	k.setProcessGroupLocked(target, pgid)
	return nil
}

// CreateSession implements setsid(2).
func (tg *ThreadGroup) CreateSession() (ThreadID, error) {
	k := tg.k
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, g := range k.groups {
		if g.pgid == tg.pid && !g.zombie {
			return 0, unix.EPERM // already a group leader
		}
	}
	k.setSessionLocked(tg, tg.pid)
	k.setProcessGroupLocked(tg, tg.pid)
	return tg.sid, nil
}

// SignalProcessGroup sends info to every live process in group pgid
// (kill with a negative pid); ESRCH if there is none.
func (k *Kernel) SignalProcessGroup(pgid ThreadID, info *linux.SignalInfo) error {
	k.mu.Lock()
	var targets []*ThreadGroup
	for _, g := range k.groups {
		if g.pgid == pgid && !g.zombie {
			targets = append(targets, g)
		}
	}
	k.mu.Unlock()
	if len(targets) == 0 {
		return unix.ESRCH
	}
	for _, g := range targets {
		if info.Signo != 0 {
			g.SendSignal(info)
		}
	}
	return nil
}

// SignalAll sends info to every live process but init and except
// (kill(-1, sig)); ESRCH if there is none.
func (k *Kernel) SignalAll(except *ThreadGroup, info *linux.SignalInfo) error {
	k.mu.Lock()
	var targets []*ThreadGroup
	for pid, g := range k.groups {
		if pid > 1 && g != except && !g.zombie {
			targets = append(targets, g)
		}
	}
	k.mu.Unlock()
	if len(targets) == 0 {
		return unix.ESRCH
	}
	for _, g := range targets {
		if info.Signo != 0 {
			g.SendSignal(info)
		}
	}
	return nil
}
