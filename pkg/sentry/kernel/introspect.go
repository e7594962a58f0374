package kernel

// Read-only views of the process tree for /proc (pkg/sentry/fsimpl/proc).
// Everything here takes a snapshot under the kernel's locks and hands back
// copies or counted references, so a reader never holds a lock while it
// formats text and never sees a half-torn-down task.

import (
	"context"
	"slices"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/loader"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/vfs"
)

// ThreadGroups returns every process, zombies included, in PID order.
func (k *Kernel) ThreadGroups() []*ThreadGroup {
	k.mu.Lock()
	out := make([]*ThreadGroup, 0, len(k.groups))
	for _, tg := range k.groups {
		out = append(out, tg)
	}
	k.mu.Unlock()
	slices.SortFunc(out, func(a, b *ThreadGroup) int { return int(a.pid - b.pid) })
	return out
}

// BootTimeNanos is the realtime clock at boot, in nanoseconds since the
// epoch (/proc/stat's btime, process start times).
func (k *Kernel) BootTimeNanos() int64 { return k.bootTime.UnixNano() }

// Tasks returns the live threads of the process, leader first when alive.
func (tg *ThreadGroup) Tasks() []*Task {
	tg.signalMu.Lock()
	out := append([]*Task(nil), tg.tasks...)
	tg.signalMu.Unlock()
	slices.SortFunc(out, func(a, b *Task) int { return int(a.tid - b.tid) })
	return out
}

// IsZombie reports whether every thread has exited and the process waits
// to be reaped.
func (tg *ThreadGroup) IsZombie() bool {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.zombie
}

// IsReaped reports whether the process is gone from the PID table.
func (tg *ThreadGroup) IsReaped() bool {
	tg.k.mu.Lock()
	defer tg.k.mu.Unlock()
	return tg.k.groups[tg.pid] != tg
}

// SharedPendingSignals returns the signals pending for the whole process.
func (tg *ThreadGroup) SharedPendingSignals() linux.SignalSet {
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	return tg.pending.set
}

// SignalDispositions returns the signals the process ignores (SIG_IGN)
// and those it catches with a handler.
func (tg *ThreadGroup) SignalDispositions() (ignored, caught linux.SignalSet) {
	sh := tg.handlers.Load()
	if sh == nil {
		return 0, 0
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for s := linux.Signal(1); s <= linux.SignalMaximum; s++ {
		switch sh.actions[s].Handler {
		case linux.SIG_DFL:
		case linux.SIG_IGN:
			ignored = ignored.Add(s)
		default:
			caught = caught.Add(s)
		}
	}
	return ignored, caught
}

// ThreadPendingSignals returns the signals pending for this thread only.
func (t *Task) ThreadPendingSignals() linux.SignalSet {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	return t.pending.set
}

// BlockedSignals returns the thread's signal mask.
func (t *Task) BlockedSignals() linux.SignalSet {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	return t.sigMask
}

// withLive runs fn with the kernel lock and the signal lock held if t is
// still a live thread: a listed task still holds its mm, files and fs
// context, and the kernel lock keeps execve from swapping them.
func (t *Task) withLive(fn func()) bool {
	t.k.mu.Lock()
	defer t.k.mu.Unlock()
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	if !slices.Contains(t.tg.tasks, t) {
		return false
	}
	fn()
	return true
}

// MemoryManagerRef returns the thread's address space with a user
// reference (release with DecUsers), or nil once the thread has exited.
func (t *Task) MemoryManagerRef() *mm.MemoryManager {
	var m *mm.MemoryManager
	t.withLive(func() {
		if t.mm != nil {
			m = t.mm
			m.IncUsers()
		}
	})
	return m
}

// FDTableRef returns the thread's descriptor table with a reference
// (release with DecRef), or nil once the thread has exited.
func (t *Task) FDTableRef() *FDTable {
	var f *FDTable
	t.withLive(func() {
		if t.fdTable != nil {
			f = t.fdTable
			f.IncRef()
		}
	})
	return f
}

// FSContextRef returns the thread's root/cwd context with a reference
// (release with DecRef), or nil once the thread has exited.
func (t *Task) FSContextRef() *FSContext {
	var f *FSContext
	t.withLive(func() {
		if t.fsContext != nil {
			f = t.fsContext
			f.IncRef()
		}
	})
	return f
}

// Executable returns the file the thread's program was loaded from, with a
// reference the caller releases, and false if there is none (the thread
// has exited, or the image did not come from the VFS).
func (t *Task) Executable(ctx context.Context) (vfs.VirtualDentry, bool) {
	m := t.MemoryManagerRef()
	if m == nil {
		return vfs.VirtualDentry{}, false
	}
	e := m.ExecutableRef()
	m.DecUsers(ctx)
	if e == nil {
		return vfs.VirtualDentry{}, false
	}
	vd, ok := e.(vfs.VirtualDentry)
	if !ok {
		e.DecRef(ctx)
		return vfs.VirtualDentry{}, false
	}
	return vd, true
}

// ImageSnapshot returns what the loader reported for the thread's current
// program, or nil once the thread has exited.
func (t *Task) ImageSnapshot() *loader.Result {
	var r *loader.Result
	t.withLive(func() { r = t.image.Load() })
	return r
}

// Descriptors returns the open descriptor numbers in increasing order.
func (t *FDTable) Descriptors() []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int32
	for i, e := range t.fds {
		if e.file != nil {
			out = append(out, int32(i))
		}
	}
	return out
}

// HasFD reports whether the thread's descriptor fd is open. It takes no
// reference, so callers holding filesystem locks can never end up
// releasing a file.
func (t *Task) HasFD(fd int32) bool {
	open := false
	t.withLive(func() {
		if f := t.fdTable; f != nil && fd >= 0 {
			f.mu.Lock()
			open = int(fd) < len(f.fds) && f.fds[fd].file != nil
			f.mu.Unlock()
		}
	})
	return open
}
