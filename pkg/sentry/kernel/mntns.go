package kernel

import (
	"context"

	"carapace.dev/carapace/pkg/sentry/vfs"
)

// Mount namespaces (CLONE_NEWNS). A task is in the namespace its root is
// mounted in; mntns is the namespace it entered with unshare or clone
// (nil: the sandbox's initial one, which the kernel does not own). Each
// task holds a reference on its non-initial namespace.

// newMountNamespaceFSContext copies the task's mount namespace and
// returns a filesystem context whose root and working directory are the
// same places in the copy, and the copy (holding one reference).
func (t *Task) newMountNamespaceFSContext(ctx context.Context) (*FSContext, *vfs.MountNamespace) {
	root, cwd := t.fsContext.Root(), t.fsContext.WorkingDirectory()
	defer root.DecRef(ctx)
	defer cwd.DecRef(ctx)
	ns := root.Mount().Namespace()
	nns, vds := t.k.vfs.CloneMountNamespace(ctx, ns, []vfs.VirtualDentry{root, cwd})
	fsc := NewFSContext(vds[0], vds[1], t.fsContext.Umask())
	vds[0].DecRef(ctx)
	vds[1].DecRef(ctx)
	return fsc, nns
}

// unshareMountNamespace moves the task into a copy of its mount namespace
// (unshare(CLONE_NEWNS), which also unshares the filesystem context).
func (t *Task) unshareMountNamespace(ctx context.Context) {
	fsc, nns := t.newMountNamespaceFSContext(ctx)
	t.k.mu.Lock()
	oldFS, oldNS := t.fsContext, t.mntns
	t.fsContext, t.mntns = fsc, nns
	t.k.mu.Unlock()
	oldFS.DecRef(ctx)
	if oldNS != nil {
		oldNS.DecRef(ctx)
	}
}

// releaseMountNamespace drops the task's reference at exit.
func (t *Task) releaseMountNamespace(ctx context.Context) {
	if t.mntns != nil {
		t.mntns.DecRef(ctx)
		t.mntns = nil
	}
}
