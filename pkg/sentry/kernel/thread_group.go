package kernel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/loader"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// WaitStatus is the status wait4 reports, in Linux's encoding.
type WaitStatus uint32

// WaitStatusExited is the status of a process that called exit(code).
func WaitStatusExited(code int) WaitStatus { return WaitStatus((code & 0xff) << 8) }

// WaitStatusSignaled is the status of a process killed by sig.
func WaitStatusSignaled(sig unix.Signal) WaitStatus { return WaitStatus(sig & 0x7f) }

// Exited reports whether the process exited normally.
func (s WaitStatus) Exited() bool { return s&0x7f == 0 }

// ExitStatus is the exit code (when Exited).
func (s WaitStatus) ExitStatus() int { return int(s>>8) & 0xff }

// Signaled reports whether a signal killed the process.
func (s WaitStatus) Signaled() bool { return s&0x7f != 0 && s&0x7f != 0x7f }

// Signal is the signal that killed it (when Signaled).
func (s WaitStatus) Signal() unix.Signal { return unix.Signal(s & 0x7f) }

func (s WaitStatus) String() string {
	if s.Signaled() {
		return fmt.Sprintf("killed by %v", linux.Signal(s.Signal()))
	}
	return fmt.Sprintf("exited %d", s.ExitStatus())
}

// ThreadGroup is a process: the tasks sharing a PID, signal handlers,
// pending process signals and limits.
type ThreadGroup struct {
	k   *Kernel
	pid ThreadID
	// pidns is the PID namespace the process lives in; isNSInit is set
	// when it is a namespace's init (its PID 1 there).
	pidns    *PIDNamespace
	isNSInit atomic.Bool
	// vpid is the PID in pidns, fixed at creation.
	vpid ThreadID

	// signalMu guards the signal state of the group and of its tasks,
	// the task list, and the exit state below.
	signalMu sync.Mutex
	// handlers is replaced by execve, read by anyone signalling.
	handlers    atomic.Pointer[SignalHandlers]
	pending     sigQueue
	tasks       []*Task
	exiting     bool
	exitingFlag atomic.Bool // exiting, readable without the lock
	groupStatus WaitStatus
	limits      [linux.RLIM_NLIMITS]linux.Rlimit
	// fsizeCur mirrors limits[RLIMIT_FSIZE].Cur for the write path, which
	// reads it on every write to a regular file without the lock.
	fsizeCur atomic.Uint64
	// ioCounts feed /proc/[pid]/io (iocount.go).
	ioCounts IOCounts

	// Guarded by k.mu.
	pgid, sid  ThreadID
	parent     *ThreadGroup
	children   map[*ThreadGroup]struct{}
	liveTasks  int
	zombie     bool
	exitStatus WaitStatus
	exitSignal unix.Signal
	childEvent chan struct{}
	// subreaper is PR_SET_CHILD_SUBREAPER.
	subreaper bool
	// childUsage and childMaxRSS sum up reaped children (RUSAGE_CHILDREN);
	// finalUsage is the group's own usage once it is a zombie.
	childUsage  CPUUsage
	childMaxRSS uint64
	finalUsage  CPUUsage
	// stopReport is the stop signal a WUNTRACED wait has yet to see (0:
	// none); continueReport a WCONTINUED one.
	stopReport     linux.Signal
	continueReport bool

	// Job control: groupStopped is set while the group is stopped
	// (written under signalMu, read by the tasks' loops); contCh is
	// closed by SIGCONT.
	groupStopped atomic.Bool
	contCh       chan struct{}

	// dumpable is PR_SET_DUMPABLE (1 by default, again after execve).
	dumpable atomic.Int32

	// realTimer is ITIMER_REAL.
	realTimer realTimer
	// cpuTimers are ITIMER_VIRTUAL and ITIMER_PROF; cpuTimersArmed tells
	// the task loop to check them.
	cpuTimers      cpuTimers
	cpuTimersArmed atomic.Bool
	// exitedUsage is the CPU time of exited threads (signalMu);
	// maxRSS the largest resident set seen, in KiB.
	exitedUsage CPUUsage
	maxRSS      atomic.Uint64
	// posixTimers are the timer_create(2) timers.
	posixTimers posixTimers
	// signalWaiters are told (EventIn) when a signal is queued for the
	// group or one of its tasks (signalfd).
	signalWaiters waiter.Queue

	// exited is closed when the whole group has exited.
	exited chan struct{}
}

// ID returns the process's PID.
func (tg *ThreadGroup) ID() ThreadID { return tg.pid }

// Leader returns the thread group leader (the first task), or nil once
// every task has exited.
func (tg *ThreadGroup) Leader() *Task {
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	for _, t := range tg.tasks {
		if t.tid == tg.pid {
			return t
		}
	}
	return nil
}

// Exited is closed once every task of the group has exited.
func (tg *ThreadGroup) Exited() <-chan struct{} { return tg.exited }

// ExitStatus is the wait status, valid once Exited is closed.
func (tg *ThreadGroup) ExitStatus() WaitStatus {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.exitStatus
}

// Limit returns the resource limit r.
func (tg *ThreadGroup) Limit(r int) linux.Rlimit {
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	return tg.limits[r]
}

// SetLimit changes the resource limit r (the caller checked privileges).
func (tg *ThreadGroup) SetLimit(r int, l linux.Rlimit) {
	tg.signalMu.Lock()
	tg.limits[r] = l
	if r == linux.RLIMIT_FSIZE {
		tg.fsizeCur.Store(l.Cur)
	}
	var mms []*mm.MemoryManager
	if r == linux.RLIMIT_AS || r == linux.RLIMIT_DATA {
		for _, t := range tg.tasks {
			mms = append(mms, t.mm)
		}
	}
	as, data := tg.limits[linux.RLIMIT_AS].Cur, tg.limits[linux.RLIMIT_DATA].Cur
	tg.signalMu.Unlock()
	// The memory manager enforces the address-space limits itself.
	for _, m := range mms {
		m.SetLimits(as, data)
	}
}

// applyMemoryLimits gives m the process's RLIMIT_AS and RLIMIT_DATA.
func (tg *ThreadGroup) applyMemoryLimits(m *mm.MemoryManager) {
	tg.signalMu.Lock()
	as, data := tg.limits[linux.RLIMIT_AS].Cur, tg.limits[linux.RLIMIT_DATA].Cur
	tg.signalMu.Unlock()
	m.SetLimits(as, data)
}

// defaultLimits are the rlimits of the first process (Linux's defaults
// for init, with the open-file limit container runtimes use).
func defaultLimits() [linux.RLIM_NLIMITS]linux.Rlimit {
	var l [linux.RLIM_NLIMITS]linux.Rlimit
	for i := range l {
		l[i] = linux.Rlimit{Cur: linux.RLIM_INFINITY, Max: linux.RLIM_INFINITY}
	}
	l[linux.RLIMIT_STACK] = linux.Rlimit{Cur: 8 << 20, Max: linux.RLIM_INFINITY}
	l[linux.RLIMIT_CORE] = linux.Rlimit{Cur: 0, Max: linux.RLIM_INFINITY}
	l[linux.RLIMIT_NOFILE] = linux.Rlimit{Cur: 1024, Max: 1 << 20}
	l[linux.RLIMIT_MEMLOCK] = linux.Rlimit{Cur: 8 << 20, Max: 8 << 20}
	l[linux.RLIMIT_SIGPENDING] = linux.Rlimit{Cur: 63432, Max: 63432}
	l[linux.RLIMIT_MSGQUEUE] = linux.Rlimit{Cur: 819200, Max: 819200}
	l[linux.RLIMIT_NICE] = linux.Rlimit{}
	l[linux.RLIMIT_RTPRIO] = linux.Rlimit{}
	return l
}

// newTaskArgs say how a task is made.
type newTaskArgs struct {
	mm        *mm.MemoryManager // a reference the task takes over
	fdTable   *FDTable          // likewise
	fsContext *FSContext        // likewise
	creds     *auth.Credentials
	ac        *arch.Context64 // nil: fresh registers
	// newGroup makes a new process; otherwise the task joins group.
	newGroup   bool
	group      *ThreadGroup
	parent     *ThreadGroup
	exitSignal unix.Signal
	handlers   *SignalHandlers
	limits     *[linux.RLIM_NLIMITS]linux.Rlimit
	sigMask    linux.SignalSet
	image      *loader.Result
	// pidns is where a new process goes (newGroup); nil means the
	// parent's namespace for children.
	pidns *PIDNamespace
}

// newTask creates a task (and, with newGroup, its process) and registers
// it in the PID table. It does not start it.
func (k *Kernel) newTask(ctx context.Context, a newTaskArgs) (*Task, error) {
	if a.ac == nil {
		a.ac = arch.New()
	}
	as := a.mm.AddressSpace()
	if as == nil && k.platform != nil {
		var err error
		if as, err = k.platform.NewAddressSpace(); err != nil {
			return nil, fmt.Errorf("creating address space: %w", err)
		}
		a.mm.SetAddressSpace(as)
	}
	t := &Task{
		k: k, ac: a.ac, as: as, mm: a.mm, fdTable: a.fdTable, fsContext: a.fsContext,
		sigMask: a.sigMask, interruptCh: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if k.platform != nil {
		// Made here, before the task is visible, so that interrupt()
		// from other goroutines never races with its creation.
		pctx, err := k.platform.NewContext()
		if err != nil {
			return nil, fmt.Errorf("creating platform context: %w", err)
		}
		t.pctx = pctx
	}
	t.creds.Store(a.creds)
	t.image.Store(a.image)

	k.mu.Lock()
	defer k.mu.Unlock()
	ns := a.pidns
	switch {
	case !a.newGroup:
		ns = a.group.pidns
	case ns == nil && a.parent != nil:
		ns = a.parent.pidns
	case ns == nil:
		ns = k.rootPIDNS
	}
	if ns.dead {
		// Its init has exited (pid_namespaces(7)).
		t.releaseContext()
		return nil, unix.ENOMEM
	}
	firstInit := a.newGroup && ns.init == nil && (ns.parent != nil || k.init == nil)
	tid, err := k.allocateIDLocked(ns, firstInit)
	if err != nil {
		t.releaseContext()
		return nil, err
	}
	t.tid = tid
	tg := a.group
	if a.newGroup {
		tg = &ThreadGroup{
			k: k, pid: tid, parent: a.parent, pidns: ns,
			children: make(map[*ThreadGroup]struct{}), exitSignal: a.exitSignal,
			childEvent: make(chan struct{}), exited: make(chan struct{}),
		}
		tg.handlers.Store(a.handlers)
		tg.dumpable.Store(1)
		if a.limits != nil {
			tg.limits = *a.limits
		} else {
			tg.limits = defaultLimits()
		}
		tg.fsizeCur.Store(tg.limits[linux.RLIMIT_FSIZE].Cur)
		if a.parent != nil {
			tg.pgid, tg.sid = a.parent.pgid, a.parent.sid
		} else {
			tg.pgid, tg.sid = tid, tid
		}
	} else if tg.zombie {
		k.releaseIDLocked(tid)
		t.releaseContext()
		return nil, fmt.Errorf("process %d has exited: %w", tg.pid, unix.ESRCH)
	}
	tg.signalMu.Lock()
	if !a.newGroup && tg.exiting {
		tg.signalMu.Unlock()
		k.releaseIDLocked(tid)
		t.releaseContext()
		return nil, fmt.Errorf("process %d is exiting: %w", tg.pid, unix.EAGAIN)
	}
	tg.tasks = append(tg.tasks, t)
	tg.signalMu.Unlock()
	if a.newGroup {
		// Registered only now that nothing can fail: the task's ID
		// reference doubles as the process's, plus its group's and
		// session's.
		k.holdIDLocked(tid)
		k.holdIDLocked(tg.pgid)
		k.holdIDLocked(tg.sid)
		if a.parent != nil {
			a.parent.children[tg] = struct{}{}
		}
		if firstInit {
			ns.init = tg
			if ns.parent != nil {
				tg.isNSInit.Store(true)
			} else {
				k.init = tg
			}
		}
		for n := ns; n != nil; n = n.parent {
			n.groups++
		}
		k.groups[tid] = tg
	}
	tg.liveTasks++
	t.tg = tg
	t.vtid = ns.idOfLocked(tid)
	if a.newGroup {
		tg.vpid = t.vtid
	}
	if a.newGroup {
		tg.applyMemoryLimits(t.mm)
	}
	k.tasks[tid] = t
	return t, nil
}

// releaseContext frees the platform context of a task that never ran.
func (t *Task) releaseContext() {
	if t.pctx != nil {
		t.pctx.Release()
		t.pctx = nil
	}
}

// exitGroup makes every task of the group exit with status (exit_group,
// a fatal signal). The first caller's status wins.
func (tg *ThreadGroup) exitGroup(status WaitStatus) {
	tg.signalMu.Lock()
	if tg.exiting {
		tg.signalMu.Unlock()
		return
	}
	tg.exiting = true
	tg.exitingFlag.Store(true)
	tg.groupStatus = status
	for _, t := range tg.tasks {
		t.interrupt()
	}
	tg.signalMu.Unlock()
}

// exit tears the task down after its loop ended: it releases what it
// held and, for the group's last task, turns the group into a zombie and
// tells the parent.
func (t *Task) exit() {
	ctx := context.Background()
	t.exitRobustList()
	if t.clearChildTID != 0 {
		// CLONE_CHILD_CLEARTID: zero the TID word and wake a joiner.
		var zero [4]byte
		if _, err := t.mm.CopyOut(t, t.clearChildTID, zero[:], usermem.IOOpts{}); err == nil {
			t.wakeClearChildTID(t.clearChildTID)
		}
	}
	if t.vforkDone != nil {
		close(t.vforkDone)
		t.vforkDone = nil
	}
	// Leave the task list first: interrupt() is only called on listed
	// tasks, under signalMu, so nobody touches the context once released.
	t.NoteRSS()
	t.tg.signalMu.Lock()
	for i, o := range t.tg.tasks {
		if o == t {
			t.tg.tasks = append(t.tg.tasks[:i], t.tg.tasks[i+1:]...)
			t.tg.exitedUsage = t.tg.exitedUsage.Add(t.CPUUsage())
			t.tg.foldExitedIO(t) // iocount.go
			break
		}
	}
	if t.pctx != nil {
		t.pctx.Release()
		t.pctx = nil
	}
	t.tg.signalMu.Unlock()
	t.mm.DecUsers(ctx)
	t.fdTable.DecRef(ctx)
	if t.fsContext != nil {
		t.fsContext.DecRef(ctx)
	}
	t.releaseMountNamespace(ctx)

	tg := t.tg
	k := t.k
	// Parent-death signals go out once k.mu is released (deferred calls
	// run last-in first-out): sending SIGCONT takes it.
	var orphans []*ThreadGroup
	var hangUp ThreadID
	var orphanedPgrps []ThreadID
	defer func() {
		for _, c := range orphans {
			c.sendParentDeathSignal()
		}
		k.hangUp(hangUp)
		for _, pgid := range orphanedPgrps {
			k.hangUp(pgid)
		}
	}()
	k.mu.Lock()
	defer k.mu.Unlock()
	tg.signalMu.Lock()
	groupExit, groupStatus := tg.exiting, tg.groupStatus
	tg.signalMu.Unlock()
	delete(k.tasks, t.tid)
	k.releaseIDLocked(t.tid)
	tg.liveTasks--
	if tg.liveTasks > 0 {
		return
	}
	if tg.isNSInit.Load() {
		// A namespace's init takes the namespace down with it before it
		// becomes a zombie its parent can see.
		k.mu.Unlock()
		k.zapNamespace(tg.pidns, tg)
		k.mu.Lock()
	}
	status := t.exitStatus
	if groupExit {
		status = groupStatus
	}
	tg.exitStatus = status
	tg.zombie = true
	tg.finalUsage = tg.CPUUsage()
	tg.stopCPUTimers()
	hangUp = k.sessionLeaderExitedLocked(tg)
	log.Debugf("process %d %v", tg.pid, status)

	reaper := k.reaperLocked(tg)
	for c := range tg.children {
		delete(tg.children, c)
		orphans = append(orphans, c)
		if reaper != nil && reaper != tg && !reaper.zombie {
			c.parent = reaper
			reaper.children[c] = struct{}{}
			if c.zombie {
				reaper.notifyChildLocked()
			}
		} else {
			c.parent = nil
			if c.zombie {
				k.removeGroupLocked(c)
			}
		}
	}
	orphanedPgrps = k.orphanedByExitLocked(tg, orphans)
	if tg == k.init {
		k.killAllLocked()
	}
	tg.stopRealTimer()
	tg.deleteAllTimers()
	close(tg.exited)
	p := tg.parent
	if p == nil {
		if tg != k.init {
			k.removeGroupLocked(tg)
		}
		return
	}
	// A parent ignoring SIGCHLD (or with SA_NOCLDWAIT) does not keep
	// zombies.
	act := p.handlers.Load().get(linux.SIGCHLD)
	if act.Handler == linux.SIG_IGN || act.Flags&linux.SA_NOCLDWAIT != 0 {
		delete(p.children, tg)
		k.removeGroupLocked(tg)
		p.notifyChildLocked()
		return
	}
	if tg.exitSignal != 0 {
		info := linux.SignalInfo{Signo: int32(tg.exitSignal), Code: linux.CLD_EXITED}
		info.SetPid(int32(p.pidns.idOfLocked(tg.pid)))
		info.SetUTime(ClockTicks(tg.finalUsage.User + tg.childUsage.User))
		info.SetSTime(ClockTicks(tg.finalUsage.Sys + tg.childUsage.Sys))
		if status.Signaled() {
			info.Code = linux.CLD_KILLED
			info.SetStatus(int32(status.Signal()))
		} else {
			info.SetStatus(int32(status.ExitStatus()))
		}
		p.sendSignal(&info, nil)
	}
	p.notifyChildLocked()
}

// sendParentDeathSignal sends each task's PR_SET_PDEATHSIG signal, its
// parent having exited.
func (tg *ThreadGroup) sendParentDeathSignal() {
	tg.signalMu.Lock()
	var sigs []int32
	for _, t := range tg.tasks {
		if s := t.parentDeathSignal.Load(); s != 0 {
			sigs = append(sigs, s)
		}
	}
	tg.signalMu.Unlock()
	for _, s := range sigs {
		info := linux.SignalInfo{Signo: s, Code: linux.SI_USER}
		tg.sendSignal(&info, nil)
	}
}

// notifyChildLocked wakes waiters in wait4.
func (tg *ThreadGroup) notifyChildLocked() {
	close(tg.childEvent)
	tg.childEvent = make(chan struct{})
}

// WaitOptions select what Wait waits for.
type WaitOptions struct {
	// PID > 0: that child; -1: any child; 0: any child in the caller's
	// process group; < -1: any child in group -PID.
	PID ThreadID
	// InGroup makes PID a process group ID (waitid's P_PGID), whatever
	// its value.
	InGroup bool
	NoHang  bool // WNOHANG
	Clone   bool // __WCLONE: only children with a non-SIGCHLD exit signal
	All     bool // __WALL: any child
	NoReap  bool // WNOWAIT
	// Exited, Stopped and Continued select the events to report
	// (WEXITED, WUNTRACED/WSTOPPED, WCONTINUED); with none set, exits
	// are reported, as wait4 always does.
	Exited, Stopped, Continued bool
	// Usage and MaxRSS, when not nil, receive a reaped child's resource
	// use (wait4's rusage): its own and its reaped descendants'.
	Usage   *CPUUsage
	MaxRSS  *uint64
	Blocker interface{ Block(<-chan struct{}) error }
}

// Wait waits for a child of tg to exit, as wait4 does: it returns its PID
// and status, or pid 0 with WNOHANG when none has exited, ECHILD if there
// is no matching child, or the blocker's error. PIDs, in o and in the
// result, are numbers in tg's PID namespace.
func (tg *ThreadGroup) Wait(o WaitOptions) (ThreadID, WaitStatus, error) {
	k := tg.k
	if !o.Stopped && !o.Continued {
		o.Exited = true
	}
	ns := tg.pidns
	for {
		k.mu.Lock()
		// The ID asked for, as a root ID (a PID or a process group).
		var want ThreadID
		switch {
		case o.InGroup || o.PID > 0:
			want, _ = ns.rootIDLocked(o.PID)
		case o.PID < -1:
			want, _ = ns.rootIDLocked(-o.PID)
		}
		any := false
		for c := range tg.children {
			switch {
			case o.InGroup:
				if c.pgid != want {
					continue
				}
			case o.PID > 0 && c.pid != want:
				continue
			case o.PID == 0 && c.pgid != tg.pgid:
				continue
			case o.PID < -1 && c.pgid != want:
				continue
			}
			if !o.All && (c.exitSignal != unix.SIGCHLD) != o.Clone {
				continue
			}
			any = true
			if o.Stopped && c.stopReport != 0 && !c.zombie {
				pid, st := ns.idOfLocked(c.pid), WaitStatusStopped(c.stopReport)
				if !o.NoReap {
					c.stopReport = 0
				}
				k.mu.Unlock()
				return pid, st, nil
			}
			if o.Continued && c.continueReport && !c.zombie {
				if !o.NoReap {
					c.continueReport = false
				}
				pid := ns.idOfLocked(c.pid)
				k.mu.Unlock()
				return pid, WaitStatusContinued, nil
			}
			if c.zombie && o.Exited {
				pid, st := ns.idOfLocked(c.pid), c.exitStatus
				if o.Usage != nil {
					*o.Usage = c.finalUsage.Add(c.childUsage)
					*o.MaxRSS = max(c.maxRSS.Load(), c.childMaxRSS)
				}
				if !o.NoReap {
					tg.reapUsageLocked(c)
					tg.ioCounts.addReaped(&c.ioCounts) // iocount.go
					delete(tg.children, c)
					k.removeGroupLocked(c)
				}
				k.mu.Unlock()
				return pid, st, nil
			}
		}
		ch := tg.childEvent
		k.mu.Unlock()
		if !any {
			return 0, 0, unix.ECHILD
		}
		if o.NoHang {
			return 0, 0, nil
		}
		if o.Blocker == nil {
			<-ch
			continue
		}
		if err := o.Blocker.Block(ch); err != nil {
			return 0, 0, err
		}
	}
}

// ProcessCount returns the number of thread groups, zombies included.
func (k *Kernel) ProcessCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.groups)
}

func (tg *ThreadGroup) parentPID() ThreadID {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	if tg.parent == nil {
		return 0
	}
	return tg.parent.pid
}

// Parent returns the parent process, nil for an orphan of a dead
// namespace or the sandbox's init.
func (tg *ThreadGroup) Parent() *ThreadGroup {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.parent
}

// reaperLocked returns who adopts tg's children when it exits: the
// nearest live subreaper among its ancestors in its own namespace, else
// the namespace's init; nil when tg is that init (its orphans are reaped
// as they exit).
func (k *Kernel) reaperLocked(tg *ThreadGroup) *ThreadGroup {
	ns := tg.pidns
	if ns.init == tg {
		if ns.parent == nil {
			return tg // the sandbox's init: the caller sees it is tg
		}
		return nil
	}
	for a := tg.parent; a != nil && a.pidns == ns && a != ns.init; a = a.parent {
		if a.subreaper && !a.zombie {
			return a
		}
	}
	return ns.init
}

// ParentPID returns the PID of the parent process, 0 for init.
func (tg *ThreadGroup) ParentPID() ThreadID { return tg.parentPID() }

// Kill sends SIGKILL to the process (from outside the sandbox: runsc kill,
// test timeouts).
func (tg *ThreadGroup) Kill() { tg.exitGroup(WaitStatusSignaled(unix.SIGKILL)) }
