package vfs

import (
	"context"
	"strings"
)

// Revalidator is implemented by a FilesystemImpl whose files can change
// under it, such as a host tree that other programs also modify. Before a
// path walk trusts a cached name, the vfs asks the filesystem whether the
// name still names the cached inode; a stale name is dropped (like an
// unlink seen late: open files keep the old inode) and looked up afresh.
type Revalidator interface {
	// NeedsRevalidation is asked once, when the filesystem is made:
	// false (a cache policy that trusts the cache) costs path walks
	// nothing.
	NeedsRevalidation() bool
	// RevalidateChild reports whether name in directory dir still names
	// child. It is called without the tree lock; an error the
	// filesystem cannot judge should answer true (keep the entry).
	RevalidateChild(ctx context.Context, dir Inode, name string, child Inode) bool
}

// PathRevalidator may be implemented by a Revalidator that can check a
// run of cached names in one round trip (a multi-name 9P Twalk): a walk
// through several cached directories then costs one check, not one per
// component.
type PathRevalidator interface {
	// RevalidatePath walks names from dir, where children[i] is the
	// cached inode names[i] leads to, and returns how many leading
	// names are still valid (len(names) when all are, or when it cannot
	// judge). Called without the tree lock.
	RevalidatePath(ctx context.Context, dir Inode, names []string, children []Inode) int
}

// maxBatchRevalidate bounds one PathRevalidator call; 9P walks at most
// 16 names per request.
const maxBatchRevalidate = 16

// prechecked is a cached name a batched revalidation has already checked
// for the walk in progress.
type prechecked struct {
	parent *Dentry
	name   string
	child  *Dentry
}

// revalidate is revalidateChild for a walk: the name is checked together
// with the cached names that follow it in the path still to walk, and
// the later ones are remembered so that reaching them costs nothing.
// Filesystems without PathRevalidator get one check per name.
func (r *resolver) revalidate(ctx context.Context, d *Dentry, name string) {
	if r.preI < r.preN {
		p := r.pre[r.preI]
		if p.parent == d && p.name == name {
			r.preI++
			return
		}
		r.preI, r.preN = 0, 0
	}
	pr, ok := d.fs.revalidator.(PathRevalidator)
	if !ok {
		d.revalidateChild(ctx, name)
		return
	}
	var names [maxBatchRevalidate]string
	var dentries [maxBatchRevalidate]*Dentry
	var inodes [maxBatchRevalidate]Inode
	fs := d.fs
	n := 0
	fs.treeMu.RLock()
	parent, next, rest := d, name, r.rest
	for {
		c, ok := parent.children[next]
		if !ok || c.mounts.Load() > 0 {
			// Uncached names are looked up anyway; mount points stay
			// (see revalidateChild).
			break
		}
		c.IncRef()
		names[n], dentries[n], inodes[n] = next, c, c.inode
		n++
		if n == maxBatchRevalidate || !c.isDir() || rest == "" {
			break
		}
		next, rest, _ = strings.Cut(rest, "/")
		rest = strings.TrimLeft(rest, "/")
		if next == "" || next == "." || next == ".." || len(next) > maxNameLen {
			break
		}
		parent = c
	}
	fs.treeMu.RUnlock()
	if n == 0 {
		return
	}
	valid := pr.RevalidatePath(ctx, d.inode, names[:n], inodes[:n])
	if valid < n {
		// The first stale name goes, with everything cached under it.
		p := d
		if valid > 0 {
			p = dentries[valid-1]
		}
		var release []Inode
		fs.treeMu.Lock()
		if c := dentries[valid]; p.children[names[valid]] == c && c.mounts.Load() == 0 {
			release = c.dropSubtreeLocked(release)
		}
		fs.treeMu.Unlock()
		for _, ino := range release {
			ino.DecRef(ctx)
		}
	}
	// The checked names after the first are remembered for the steps to
	// come; the dentries may be dropped meanwhile, which only makes the
	// walk look them up again.
	r.preI, r.preN = 0, 0
	for i := 1; i < valid; i++ {
		r.pre[r.preN] = prechecked{parent: dentries[i-1], name: names[i], child: dentries[i]}
		r.preN++
	}
	for i := 0; i < n; i++ {
		dentries[i].DecRef(ctx)
	}
}

// revalidateChild drops d's cached child name if the filesystem says the
// name has changed under it. Call without the tree lock.
func (d *Dentry) revalidateChild(ctx context.Context, name string) {
	fs := d.fs
	fs.treeMu.RLock()
	c, ok := d.children[name]
	if !ok || c.mounts.Load() > 0 {
		// Mount points stay: a mount outlives what the host does to
		// the directory it covers.
		fs.treeMu.RUnlock()
		return
	}
	c.IncRef()
	fs.treeMu.RUnlock()
	if !fs.revalidator.RevalidateChild(ctx, d.inode, name, c.inode) {
		var release []Inode
		fs.treeMu.Lock()
		if d.children[name] == c && c.mounts.Load() == 0 {
			release = c.dropSubtreeLocked(release)
		}
		fs.treeMu.Unlock()
		for _, ino := range release {
			ino.DecRef(ctx)
		}
	}
	// Our reference keeps a dropped c alive until here: its last DecRef
	// releases the inode.
	c.DecRef(ctx)
}

// dropSubtreeLocked forgets d and every cached name under it, as when the
// names are gone: each dentry is marked dead, and the inodes of those
// nobody references are appended to release, for the caller to DecRef
// once the tree lock is released. Tree lock held for writing.
func (d *Dentry) dropSubtreeLocked(release []Inode) []Inode {
	for _, c := range d.children {
		release = c.dropSubtreeLocked(release)
	}
	if d.kill() {
		release = append(release, d.inode)
	}
	return release
}
