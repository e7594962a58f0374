package kernel

import (
	"slices"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/vfs"

	"golang.org/x/sys/unix"
)

// PID namespaces (pid_namespaces(7)).
//
// Inside the kernel every process-related ID (TID, TGID, process group
// and session ID) is the number in the sandbox's root namespace: that is
// what runsc, `runsc ps` and the root /proc show, and what the kernel's
// maps are keyed by. A child namespace keeps a two-way map between its
// own numbers and those root IDs, for every ID allocated to a task in it
// or below it; syscalls translate at their edge. An ID stays allocated
// (in every namespace) while a task, a process (zombies too), a process
// group or a session uses it, as Linux keeps a struct pid alive.

// MaxPIDNamespaceLevel is how deep namespaces may nest below the root
// (Linux's MAX_PID_NS_LEVEL).
const MaxPIDNamespaceLevel = 32

// rootPIDNamespaceInode is the root namespace's inode number, as
// /proc/[pid]/ns/pid shows it ("pid:[4026531836]", Linux's PROC_PID_INIT_INO).
const rootPIDNamespaceInode = 4026531836

// nextPIDNamespaceInode numbers the namespaces created later.
var nextPIDNamespaceInode atomic.Uint64

func init() { nextPIDNamespaceInode.Store(4026532200) }

// PIDNamespace is one PID namespace.
type PIDNamespace struct {
	k      *Kernel
	parent *PIDNamespace
	level  int
	ino    uint64

	// Guarded by k.mu. The root namespace's numbers are the root IDs, so
	// its maps stay nil.
	toRoot   map[ThreadID]ThreadID
	fromRoot map[ThreadID]ThreadID
	lastID   ThreadID
	// init is the namespace's first process (its PID 1), nil until then.
	init *ThreadGroup
	// dead is set once init has exited: no process may enter any more.
	dead bool
	// groups counts the processes not yet reaped in the namespace and
	// below; groupReaped is closed (and replaced) when one is reaped.
	groups      int
	groupReaped chan struct{}

	// dentry is the namespace's nsfs file (nsfs.go), made on first use.
	dentryOnce sync.Once
	dentry     *vfs.Dentry
}

func newRootPIDNamespace(k *Kernel) *PIDNamespace {
	return &PIDNamespace{k: k, ino: rootPIDNamespaceInode, groupReaped: make(chan struct{})}
}

// newChild returns a namespace below ns (ENOSPC past the nesting limit).
func (ns *PIDNamespace) newChild() (*PIDNamespace, error) {
	if ns.level+1 > MaxPIDNamespaceLevel {
		return nil, unix.ENOSPC
	}
	return &PIDNamespace{
		k: ns.k, parent: ns, level: ns.level + 1, ino: nextPIDNamespaceInode.Add(1),
		toRoot: make(map[ThreadID]ThreadID), fromRoot: make(map[ThreadID]ThreadID),
		groupReaped: make(chan struct{}),
	}, nil
}

// Parent returns the namespace ns was created in, nil for the root.
func (ns *PIDNamespace) Parent() *PIDNamespace { return ns.parent }

// Level is the nesting depth: 0 for the sandbox's root namespace.
func (ns *PIDNamespace) Level() int { return ns.level }

// Inode is the namespace's inode number (/proc/[pid]/ns/pid).
func (ns *PIDNamespace) Inode() uint64 { return ns.ino }

// IsRoot reports whether ns is the sandbox's root namespace.
func (ns *PIDNamespace) IsRoot() bool { return ns.parent == nil }

// Contains reports whether o is ns or a namespace below it: the
// processes of o are visible in ns.
func (ns *PIDNamespace) Contains(o *PIDNamespace) bool {
	for ; o != nil && o.level >= ns.level; o = o.parent {
		if o == ns {
			return true
		}
	}
	return false
}

// idOfLocked translates a root ID into ns, 0 if it is not visible there.
func (ns *PIDNamespace) idOfLocked(root ThreadID) ThreadID {
	if ns.parent == nil || root <= 0 {
		return root
	}
	return ns.fromRoot[root]
}

// rootIDLocked translates a number of ns into the root ID, false if no
// process of ns or below has it.
func (ns *PIDNamespace) rootIDLocked(id ThreadID) (ThreadID, bool) {
	if id <= 0 {
		return 0, false
	}
	if ns.parent == nil {
		return id, true
	}
	r, ok := ns.toRoot[id]
	return r, ok
}

// IDOf translates a root ID (a TID, PID, process group or session ID as
// the kernel keeps it) into ns: 0 when it is not visible from ns.
func (ns *PIDNamespace) IDOf(root ThreadID) ThreadID {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.idOfLocked(root)
}

// RootID translates a number in ns into the kernel's root ID; false if
// it names nothing visible in ns.
func (ns *PIDNamespace) RootID(id ThreadID) (ThreadID, bool) {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.rootIDLocked(id)
}

// IDOfTask is t's TID in ns (0 if not visible).
func (ns *PIDNamespace) IDOfTask(t *Task) ThreadID { return ns.IDOf(t.tid) }

// IDOfThreadGroup is tg's PID in ns (0 if not visible).
func (ns *PIDNamespace) IDOfThreadGroup(tg *ThreadGroup) ThreadID { return ns.IDOf(tg.pid) }

// TaskWithID returns the live task whose TID in ns is id, or nil.
func (ns *PIDNamespace) TaskWithID(id ThreadID) *Task {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	r, ok := ns.rootIDLocked(id)
	if !ok {
		return nil
	}
	return ns.k.tasks[r]
}

// ThreadGroupWithID returns the process (live or zombie) whose PID in ns
// is id, or nil.
func (ns *PIDNamespace) ThreadGroupWithID(id ThreadID) *ThreadGroup {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	r, ok := ns.rootIDLocked(id)
	if !ok {
		return nil
	}
	return ns.k.groups[r]
}

// ThreadGroups returns the processes visible in ns, zombies included,
// ordered by their PID in ns.
func (ns *PIDNamespace) ThreadGroups() []*ThreadGroup {
	k := ns.k
	k.mu.Lock()
	type entry struct {
		id ThreadID
		tg *ThreadGroup
	}
	out := make([]entry, 0, len(k.groups))
	for _, tg := range k.groups {
		if id := ns.idOfLocked(tg.pid); id > 0 && ns.Contains(tg.pidns) {
			out = append(out, entry{id, tg})
		}
	}
	k.mu.Unlock()
	slices.SortFunc(out, func(a, b entry) int { return int(a.id - b.id) })
	tgs := make([]*ThreadGroup, len(out))
	for i, e := range out {
		tgs[i] = e.tg
	}
	return tgs
}

// IDs returns root's numbers from ns down to the namespace it was
// allocated in (/proc/[pid]/status's NSpid), nil if not visible in ns.
func (ns *PIDNamespace) IDs(root ThreadID) []ThreadID {
	k := ns.k
	k.mu.Lock()
	defer k.mu.Unlock()
	owner := k.idOwner[root]
	if owner == nil || !ns.Contains(owner) {
		return nil
	}
	ids := make([]ThreadID, owner.level-ns.level+1)
	for n := owner; n != nil && n.level >= ns.level; n = n.parent {
		ids[n.level-ns.level] = n.idOfLocked(root)
	}
	return ids
}

// InitProcess returns the namespace's init, nil before it exists.
func (ns *PIDNamespace) InitProcess() *ThreadGroup {
	ns.k.mu.Lock()
	defer ns.k.mu.Unlock()
	return ns.init
}

// allocLocked takes the next free number of a child namespace: 1 for its
// first process, then counting up and wrapping like the root's.
func (ns *PIDNamespace) allocLocked(root ThreadID) error {
	for range maxPID {
		ns.lastID++
		if ns.lastID >= maxPID {
			ns.lastID = 2
		}
		if _, used := ns.toRoot[ns.lastID]; used {
			continue
		}
		ns.toRoot[ns.lastID] = root
		ns.fromRoot[root] = ns.lastID
		return nil
	}
	return unix.EAGAIN
}

// allocateIDLocked allocates a root ID and a number in every namespace
// from ns up to the root. The ID starts with one reference.
func (k *Kernel) allocateIDLocked(ns *PIDNamespace, firstInit bool) (ThreadID, error) {
	var root ThreadID
	if firstInit && ns.parent == nil {
		root = 1
		k.lastPID = max(k.lastPID, 1)
		if k.idRefs[1] > 0 {
			return 0, unix.EAGAIN
		}
	} else {
		var err error
		if root, err = k.allocatePIDLocked(); err != nil {
			return 0, err
		}
	}
	for n := ns; n.parent != nil; n = n.parent {
		if err := n.allocLocked(root); err != nil {
			for m := ns; m != n; m = m.parent {
				delete(m.toRoot, m.fromRoot[root])
				delete(m.fromRoot, root)
			}
			return 0, err
		}
	}
	k.idRefs[root] = 1
	k.idOwner[root] = ns
	return root, nil
}

// holdIDLocked adds a user of a root ID (a process group or session).
func (k *Kernel) holdIDLocked(id ThreadID) {
	if id > 0 {
		k.idRefs[id]++
	}
}

// releaseIDLocked drops a user of a root ID; the last frees its numbers.
func (k *Kernel) releaseIDLocked(id ThreadID) {
	if id <= 0 {
		return
	}
	if k.idRefs[id]--; k.idRefs[id] > 0 {
		return
	}
	delete(k.idRefs, id)
	for n := k.idOwner[id]; n != nil && n.parent != nil; n = n.parent {
		delete(n.toRoot, n.fromRoot[id])
		delete(n.fromRoot, id)
	}
	delete(k.idOwner, id)
}

// setProcessGroupLocked moves tg to group pgid (a root ID).
func (k *Kernel) setProcessGroupLocked(tg *ThreadGroup, pgid ThreadID) {
	k.holdIDLocked(pgid)
	k.releaseIDLocked(tg.pgid)
	tg.pgid = pgid
}

// setSessionLocked moves tg to session sid.
func (k *Kernel) setSessionLocked(tg *ThreadGroup, sid ThreadID) {
	k.holdIDLocked(sid)
	k.releaseIDLocked(tg.sid)
	tg.sid = sid
}

// removeGroupLocked takes a reaped (or never waited for) process out of
// the PID table.
func (k *Kernel) removeGroupLocked(tg *ThreadGroup) {
	if k.groups[tg.pid] != tg {
		return
	}
	delete(k.groups, tg.pid)
	k.releaseIDLocked(tg.pid)
	k.releaseIDLocked(tg.pgid)
	k.releaseIDLocked(tg.sid)
	for n := tg.pidns; n != nil; n = n.parent {
		n.groups--
		close(n.groupReaped)
		n.groupReaped = make(chan struct{})
	}
}

// isProtectedInit reports whether tg is the init of a child namespace,
// which signals from inside the namespace cannot kill (SIGNAL_UNKILLABLE).
// The sandbox's own init keeps the root namespace's behaviour.
func (tg *ThreadGroup) isProtectedInit() bool {
	ns := tg.pidns
	return ns != nil && ns.parent != nil && tg.isNSInit.Load()
}

// zapNamespace runs when init of a child namespace has exited: no process
// may enter it any more, and every other process in it (and below) is
// killed; it returns once they have all been reaped, as Linux's init does
// not become a zombie before then. Init reaps its own children meanwhile;
// those of parents outside the namespace wait for them. Called without
// k.mu.
func (k *Kernel) zapNamespace(ns *PIDNamespace, init *ThreadGroup) {
	k.mu.Lock()
	ns.dead = true
	var victims []*ThreadGroup
	for _, g := range k.groups {
		if g != init && !g.zombie && ns.Contains(g.pidns) {
			victims = append(victims, g)
		}
	}
	k.mu.Unlock()
	for _, g := range victims {
		g.exitGroup(WaitStatusSignaled(unix.SIGKILL))
	}
	for {
		k.mu.Lock()
		for c := range init.children {
			if c.zombie {
				delete(init.children, c)
				k.removeGroupLocked(c)
			}
		}
		// init itself is still counted.
		if ns.groups <= 1 {
			k.mu.Unlock()
			return
		}
		reaped, child := ns.groupReaped, init.childEvent
		k.mu.Unlock()
		select {
		case <-reaped:
		case <-child:
		}
	}
}

// PIDNamespace returns the namespace the task's process lives in.
func (t *Task) PIDNamespace() *PIDNamespace { return t.tg.pidns }

// PIDNamespace returns the namespace the process lives in.
func (tg *ThreadGroup) PIDNamespace() *PIDNamespace { return tg.pidns }

// PIDNamespaceForChildren returns where the task's new processes go
// (/proc/[pid]/ns/pid_for_children): its own namespace unless it called
// unshare(CLONE_NEWPID) or setns.
func (t *Task) PIDNamespaceForChildren() *PIDNamespace {
	if ns := t.childPIDNS.Load(); ns != nil {
		return ns
	}
	return t.tg.pidns
}

// RootPIDNamespace returns the sandbox's root PID namespace.
func (k *Kernel) RootPIDNamespace() *PIDNamespace { return k.rootPIDNS }

// unsharePIDNamespace is unshare(CLONE_NEWPID): the caller stays where it
// is; its next child becomes init of a new namespace below its own.
func (t *Task) unsharePIDNamespace() error {
	if t.PIDNamespaceForChildren() != t.tg.pidns {
		// Linux: a namespace for children exists and is not yet used.
		return unix.EINVAL
	}
	ns, err := t.tg.pidns.newChild()
	if err != nil {
		return err
	}
	t.childPIDNS.Store(ns)
	return nil
}

// SetPIDNamespaceForChildren is setns(fd, CLONE_NEWPID): ns must be the
// caller's own namespace or one below it (EINVAL otherwise).
func (t *Task) SetPIDNamespaceForChildren(ns *PIDNamespace) error {
	if ns == nil || !t.tg.pidns.Contains(ns) {
		return unix.EINVAL
	}
	if ns == t.tg.pidns {
		t.childPIDNS.Store(nil)
	} else {
		t.childPIDNS.Store(ns)
	}
	return nil
}

// The task's view of IDs: syscalls take and return numbers in the
// caller's own PID namespace.

// GetTID is the task's TID in its own namespace (gettid).
func (t *Task) GetTID() ThreadID { return t.vtid }

// GetPID is the task's PID in its own namespace (getpid).
func (t *Task) GetPID() ThreadID { return t.tg.vpid }

// GetPPID is the parent's PID in the task's namespace: 0 when the parent
// lives outside it (getppid).
func (t *Task) GetPPID() ThreadID { return t.tg.pidns.IDOf(t.tg.parentPID()) }

// IDOf translates a root ID (TID, PID, PGID, SID) into the task's
// namespace, 0 when it is not visible there.
func (t *Task) IDOf(root ThreadID) ThreadID { return t.tg.pidns.IDOf(root) }

// LookupTask returns the live task whose TID in t's namespace is tid.
func (t *Task) LookupTask(tid ThreadID) *Task { return t.tg.pidns.TaskWithID(tid) }

// LookupThreadGroup returns the process (zombies too) whose PID in t's
// namespace is pid.
func (t *Task) LookupThreadGroup(pid ThreadID) *ThreadGroup {
	return t.tg.pidns.ThreadGroupWithID(pid)
}

// RootIDOf translates an ID in t's namespace to the kernel's root ID.
func (t *Task) RootIDOf(id ThreadID) (ThreadID, bool) { return t.tg.pidns.RootID(id) }
