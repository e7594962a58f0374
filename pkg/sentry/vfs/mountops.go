package vfs

import (
	"context"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// MountFlagsMask are the per-mount flags (beyond MS_RDONLY) a mount
// keeps: MS_NOSUID, MS_NODEV, MS_NOEXEC. Execve and device opens consult
// them through Mount.Flags.
const MountFlagsMask = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// Flags returns the mount's MS_NOSUID/MS_NODEV/MS_NOEXEC bits.
func (m *Mount) Flags() uint32 { return m.flags.Load() }

// SetFlags replaces the mount's MS_NOSUID/MS_NODEV/MS_NOEXEC bits.
func (m *Mount) SetFlags(f uint32) { m.flags.Store(f & MountFlagsMask) }

// RemountAt is mount(2) with MS_REMOUNT: it changes the flags of the
// mount whose root target names (EINVAL for any other file).
func (vfs *VirtualFilesystem) RemountAt(ctx context.Context, creds *auth.Credentials, target *PathOperation, readOnly bool, flags uint32) error {
	if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	vd, err := vfs.GetDentryAt(ctx, creds, target, nil)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	if vd.dentry != vd.mount.root {
		return unix.EINVAL
	}
	vd.mount.SetReadOnly(readOnly)
	vd.mount.SetFlags(flags)
	return nil
}

// BindTreeAt is BindAt with MS_REC: the mounts below source are bound
// at the same places below target.
func (vfs *VirtualFilesystem) BindTreeAt(ctx context.Context, creds *auth.Credentials, source, target *PathOperation, readOnly bool) (*Mount, error) {
	src, err := vfs.GetDentryAt(ctx, creds, source, nil)
	if err != nil {
		return nil, err
	}
	defer src.DecRef(ctx)
	m, err := vfs.BindAt(ctx, creds, source, target, readOnly)
	if err != nil {
		return nil, err
	}
	vfs.mountMu.Lock()
	defer vfs.mountMu.Unlock()
	if m.detached {
		return m, nil
	}
	vfs.copySubmountsLocked(src.mount, src.dentry, m)
	return m, nil
}

// copySubmountsLocked attaches to dst a copy of each mount of src whose
// mount point is at or below under (a dentry of src), with their own
// submounts. mountMu held for writing.
func (vfs *VirtualFilesystem) copySubmountsLocked(src *Mount, under *Dentry, dst *Mount) {
	for c := range src.children {
		if c.detached {
			continue
		}
		fs := c.point.fs
		fs.treeMu.RLock()
		below := c.point.isDescendantOfLocked(under)
		fs.treeMu.RUnlock()
		if !below {
			continue
		}
		c.fs.IncRef()
		c.root.IncRef()
		nm := vfs.newMount(c.fs, c.root, nil, c.ReadOnly())
		nm.flags.Store(c.flags.Load())
		nm.source = c.source
		vfs.attachLocked(nm, dst, c.point)
		vfs.copySubmountsLocked(c, c.root, nm)
	}
}

// isUnderLocked reports whether vd is top or below it in the mount tree.
// mountMu held.
func isUnderLocked(vd, top VirtualDentry) bool {
	m, d := vd.mount, vd.dentry
	for {
		if m == top.mount {
			d.fs.treeMu.RLock()
			ok := d.isDescendantOfLocked(top.dentry)
			d.fs.treeMu.RUnlock()
			return ok
		}
		if m.parent == nil || m.detached {
			return false
		}
		m, d = m.parent, m.point
	}
}

// PivotRoot is pivot_root(2): the mount whose root newRoot names becomes
// the root of the namespace of root (the caller's root, which must be
// that namespace's root mount), and the old root mount is attached at
// putOld, which must be at or below newRoot. It returns the new root
// with a reference; moving the callers' root and working directories to
// it is the caller's business.
func (vfs *VirtualFilesystem) PivotRoot(ctx context.Context, creds *auth.Credentials, root VirtualDentry, newRoot, putOld *PathOperation) (VirtualDentry, error) {
	if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
		return VirtualDentry{}, unix.EPERM
	}
	nr, err := vfs.GetDentryAt(ctx, creds, newRoot, &GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return VirtualDentry{}, err
	}
	defer nr.DecRef(ctx)
	po, err := vfs.GetDentryAt(ctx, creds, putOld, &GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return VirtualDentry{}, err
	}
	defer po.DecRef(ctx)

	var drop dropList
	defer drop.release(ctx)
	vfs.mountMu.Lock()
	defer vfs.mountMu.Unlock()
	oldRoot := root.mount
	newMnt := nr.mount
	// Linux's order: namespaces, a removed new root, either path on the
	// current root mount (EBUSY, even when new_root is not a mount
	// point), then the mount-point rules.
	switch {
	case oldRoot.ns == nil || newMnt.ns != oldRoot.ns || po.mount.ns != oldRoot.ns:
		return VirtualDentry{}, unix.EINVAL
	case po.dentry.dead.Load() || nr.dentry.dead.Load():
		return VirtualDentry{}, unix.ENOENT
	case newMnt == oldRoot || po.mount == oldRoot:
		return VirtualDentry{}, unix.EBUSY
	case root.dentry != oldRoot.root || oldRoot.parent != nil || oldRoot.ns.root != oldRoot:
		// Only a namespace's root mount, seen from its root, pivots.
		return VirtualDentry{}, unix.EINVAL
	case nr.dentry != newMnt.root || newMnt.parent == nil || newMnt.detached:
		return VirtualDentry{}, unix.EINVAL
	case !isUnderLocked(po, nr):
		return VirtualDentry{}, unix.EINVAL
	}
	// Take newMnt off its mount point, keeping its place-in-the-tree
	// reference: it stays in the tree as the root. The references its
	// attachment held go once the lock is released (deferred above).
	k := mountKey{newMnt.parent, newMnt.point}
	st := vfs.mounts[k]
	for i, x := range st {
		if x == newMnt {
			st = append(st[:i:i], st[i+1:]...)
			break
		}
	}
	if len(st) == 0 {
		delete(vfs.mounts, k)
	} else {
		vfs.mounts[k] = st
	}
	delete(newMnt.parent.children, newMnt)
	newMnt.point.mounts.Add(-1)
	drop.mounts = append(drop.mounts, newMnt.parent)
	drop.dentries = append(drop.dentries, newMnt.point)
	newMnt.parent, newMnt.point = nil, nil

	oldRoot.ns.root = newMnt
	// The old root goes below the new one, at putOld.
	vfs.attachLocked(oldRoot, po.mount, po.dentry)
	vd := VirtualDentry{newMnt, newMnt.root}
	vd.IncRef()
	return vd, nil
}

// Namespace returns the mount namespace m belongs to (nil for a
// disconnected mount).
func (m *Mount) Namespace() *MountNamespace { return m.ns }

// CloneMountNamespace copies the mount tree of ns, as unshare(2) and
// clone(2) with CLONE_NEWNS do (mount_namespaces(7)): the copy has the
// same filesystems mounted at the same places, and mounts and unmounts in
// one tree do not show in the other. For each of vds (a task's root and
// working directory) it returns the same place in the copy, with a
// reference; a VirtualDentry outside ns is returned as it is, with a new
// reference. The copy holds its own references; release it by dropping
// those of the returned VirtualDentries and calling DecRef on the
// namespace.
func (vfs *VirtualFilesystem) CloneMountNamespace(ctx context.Context, ns *MountNamespace, vds []VirtualDentry) (*MountNamespace, []VirtualDentry) {
	vfs.mountMu.Lock()
	defer vfs.mountMu.Unlock()
	nns := &MountNamespace{}
	nns.refs.Store(1)
	copies := make(map[*Mount]*Mount)
	var copyTree func(old *Mount, parent *Mount) *Mount
	copyTree = func(old *Mount, parent *Mount) *Mount {
		old.fs.IncRef()
		old.root.IncRef()
		nm := vfs.newMount(old.fs, old.root, nns, old.ReadOnly())
		nm.flags.Store(old.flags.Load())
		nm.source = old.source
		if parent != nil {
			vfs.attachLocked(nm, parent, old.point)
		}
		copies[old] = nm
		// Stacks of mounts on one point are copied bottom first, so the
		// visible one stays on top.
		for k, st := range vfs.mounts {
			if k.parent != old {
				continue
			}
			for _, c := range st {
				if !c.detached {
					copyTree(c, nm)
				}
			}
		}
		return nm
	}
	nns.root = copyTree(ns.root, nil)
	out := make([]VirtualDentry, len(vds))
	for i, vd := range vds {
		if nm, ok := copies[vd.mount]; ok {
			out[i] = VirtualDentry{nm, vd.dentry}
		} else {
			out[i] = vd
		}
		out[i].IncRef()
	}
	return nns, out
}

// DecRef releases a namespace made by CloneMountNamespace when its last
// user goes: its whole tree is detached, and each mount goes when
// nothing else holds it.
func (mns *MountNamespace) DecRef(ctx context.Context) {
	if mns.refs.Add(-1) != 0 {
		return
	}
	vfs := mns.root.vfs
	var drop dropList
	vfs.mountMu.Lock()
	for c := range mns.root.children {
		vfs.detachTreeLocked(c, &drop)
	}
	mns.root.detached = true
	drop.mounts = append(drop.mounts, mns.root)
	vfs.mountMu.Unlock()
	drop.release(ctx)
}

// IncRef adds a user (a task) of the namespace.
func (mns *MountNamespace) IncRef() { mns.refs.Add(1) }

// MoveMountAt is mount(2) with MS_MOVE: the mount whose root source
// names is detached from where it is and attached at target, with its
// submounts. A mount cannot move below itself (ELOOP) and the namespace
// root does not move (EINVAL).
func (vfs *VirtualFilesystem) MoveMountAt(ctx context.Context, creds *auth.Credentials, source, target *PathOperation) error {
	if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	src, err := vfs.GetDentryAt(ctx, creds, source, nil)
	if err != nil {
		return err
	}
	defer src.DecRef(ctx)
	dst, err := vfs.GetDentryAt(ctx, creds, target, &GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return err
	}
	defer dst.DecRef(ctx)
	var drop dropList
	defer drop.release(ctx)
	vfs.mountMu.Lock()
	defer vfs.mountMu.Unlock()
	m := src.mount
	switch {
	case src.dentry != m.root || m.parent == nil || m.detached:
		return unix.EINVAL
	case dst.mount.detached || dst.mount.ns != m.ns || dst.dentry.dead.Load():
		return unix.EINVAL
	case isUnderLocked(dst, src):
		return unix.ELOOP
	}
	k := mountKey{m.parent, m.point}
	st := vfs.mounts[k]
	for i, x := range st {
		if x == m {
			st = append(st[:i:i], st[i+1:]...)
			break
		}
	}
	if len(st) == 0 {
		delete(vfs.mounts, k)
	} else {
		vfs.mounts[k] = st
	}
	delete(m.parent.children, m)
	m.point.mounts.Add(-1)
	drop.mounts = append(drop.mounts, m.parent)
	drop.dentries = append(drop.dentries, m.point)
	vfs.attachLocked(m, dst.mount, dst.dentry)
	return nil
}
