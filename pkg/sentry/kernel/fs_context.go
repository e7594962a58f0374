package kernel

import (
	"context"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/vfs"
)

// FSContext is a task's filesystem context: its root (chroot), working
// directory and umask. CLONE_FS tasks share one; fork copies it.
type FSContext struct {
	refs atomic.Int64

	mu    sync.Mutex
	root  vfs.VirtualDentry
	cwd   vfs.VirtualDentry
	umask uint32
}

// NewFSContext returns a context with one reference, taking references on
// root and cwd.
func NewFSContext(root, cwd vfs.VirtualDentry, umask uint32) *FSContext {
	root.IncRef()
	cwd.IncRef()
	f := &FSContext{root: root, cwd: cwd, umask: umask & 0o777}
	f.refs.Store(1)
	return f
}

// IncRef adds a sharer.
func (f *FSContext) IncRef() { f.refs.Add(1) }

// DecRef drops a sharer; the last releases root and cwd.
func (f *FSContext) DecRef(ctx context.Context) {
	if f.refs.Add(-1) != 0 {
		return
	}
	f.mu.Lock()
	root, cwd := f.root, f.cwd
	f.root, f.cwd = vfs.VirtualDentry{}, vfs.VirtualDentry{}
	f.mu.Unlock()
	if root.Ok() {
		root.DecRef(ctx)
	}
	if cwd.Ok() {
		cwd.DecRef(ctx)
	}
}

// Fork returns an unshared copy (fork without CLONE_FS).
func (f *FSContext) Fork() *FSContext {
	f.mu.Lock()
	defer f.mu.Unlock()
	return NewFSContext(f.root, f.cwd, f.umask)
}

// Root returns the root with a reference the caller must drop.
func (f *FSContext) Root() vfs.VirtualDentry {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root.Ok() {
		f.root.IncRef()
	}
	return f.root
}

// WorkingDirectory returns the cwd with a reference the caller must drop.
func (f *FSContext) WorkingDirectory() vfs.VirtualDentry {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cwd.Ok() {
		f.cwd.IncRef()
	}
	return f.cwd
}

// SetWorkingDirectory changes the cwd (chdir), taking a reference on vd.
func (f *FSContext) SetWorkingDirectory(ctx context.Context, vd vfs.VirtualDentry) {
	vd.IncRef()
	f.mu.Lock()
	old := f.cwd
	f.cwd = vd
	f.mu.Unlock()
	if old.Ok() {
		old.DecRef(ctx)
	}
}

// SetRoot changes the root (chroot), taking a reference on vd.
func (f *FSContext) SetRoot(ctx context.Context, vd vfs.VirtualDentry) {
	vd.IncRef()
	f.mu.Lock()
	old := f.root
	f.root = vd
	f.mu.Unlock()
	if old.Ok() {
		old.DecRef(ctx)
	}
}

// Umask returns the file mode creation mask.
func (f *FSContext) Umask() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.umask
}

// SwapUmask sets the mask and returns the old one (umask(2)).
func (f *FSContext) SwapUmask(mask uint32) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.umask
	f.umask = mask & 0o777
	return old
}
