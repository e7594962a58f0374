package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// FilesystemImpl is what a filesystem instance implements beyond its inodes.
type FilesystemImpl interface {
	// Release is called when the last mount of the filesystem goes away.
	Release(ctx context.Context)
}

// Filesystem is one instance of a filesystem (one tmpfs, one /dev).
type Filesystem struct {
	vfs  *VirtualFilesystem
	impl FilesystemImpl
	// treeMu is the tree lock (see the package comment).
	treeMu sync.RWMutex
	// refs counts mounts of the filesystem plus disconnected users.
	refs atomic.Int64
	// dev is the device number statx reports as st_dev.
	devMinor uint32
	// revalidator is the impl when it asks for revalidation (set once,
	// by NewFilesystem), else nil.
	revalidator Revalidator
	// lru holds unreferenced dentries when the impl limits the cache
	// (lru.limit > 0).
	lru dentryLRU
}

// Impl returns the filesystem's implementation.
func (fs *Filesystem) Impl() FilesystemImpl { return fs.impl }

// DevMinor returns the anonymous device minor number assigned to fs.
func (fs *Filesystem) DevMinor() uint32 { return fs.devMinor }

// IncRef adds a reference.
func (fs *Filesystem) IncRef() { fs.refs.Add(1) }

// DecRef drops a reference; the last one releases the filesystem.
func (fs *Filesystem) DecRef(ctx context.Context) {
	if fs.refs.Add(-1) == 0 {
		fs.impl.Release(ctx)
	}
}

// Dentry is a name in a filesystem tree bound to an inode. Dentries of one
// filesystem form a tree through parent/children, guarded by the tree lock.
// A dentry lives while it is linked into its parent or referenced (by a
// VirtualDentry, an open file, a cwd); it holds one reference on its inode.
type Dentry struct {
	fs    *Filesystem
	inode Inode

	// Guarded by fs.treeMu.
	parent   *Dentry
	name     string
	children map[string]*Dentry
	// dead is set when the dentry has been unlinked or replaced; a dead
	// dentry is never found by lookup again.
	dead     atomic.Bool
	released bool
	// removed is set when a syscall took the name away (unlink, rmdir, a
	// rename over it) or never gave one (O_TMPFILE), as opposed to the
	// cache forgetting it: the release of such a dentry may be the
	// deletion of its inode, which inotify reports (notifyReleased).
	removed atomic.Bool

	refs atomic.Int64
	// mounts counts mounts whose mount point is this dentry, so that
	// walks take the mount table lock only at mount points.
	mounts atomic.Int32

	lru lruLinks
	// linkable marks an unnamed O_TMPFILE file that linkat(2) may still
	// give a name.
	linkable atomic.Bool
	// watchers counts inotify watches made through this dentry; a watched
	// dentry is not evicted (its inode must stay the watched one).
	watchers atomic.Int32
}

// NewDentry returns a new unlinked dentry for inode in fs, taking over the
// caller's reference on inode. Filesystems call it for their roots and the
// vfs for new children.
func (fs *Filesystem) NewDentry(inode Inode) *Dentry {
	return &Dentry{fs: fs, inode: inode}
}

// Inode returns the dentry's inode.
func (d *Dentry) Inode() Inode { return d.inode }

// Filesystem returns the filesystem holding d.
func (d *Dentry) Filesystem() *Filesystem { return d.fs }

// IsDead reports whether d has been unlinked.
func (d *Dentry) IsDead() bool { return d.dead.Load() }

// Name returns d's current name (empty for a root).
func (d *Dentry) Name() string {
	d.fs.treeMu.RLock()
	defer d.fs.treeMu.RUnlock()
	return d.name
}

// IncRef adds a reference.
func (d *Dentry) IncRef() { d.refs.Add(1) }

// DecRef drops a reference. An unlinked dentry is released with its last
// reference.
func (d *Dentry) DecRef(ctx context.Context) {
	if d.refs.Add(-1) != 0 {
		return
	}
	if !d.dead.Load() {
		if d.fs.lru.limit > 0 {
			d.fs.noteUnused(ctx, d)
		}
		return
	}
	d.fs.treeMu.Lock()
	release := d.refs.Load() == 0 && !d.released
	if release {
		d.released = true
	}
	d.fs.treeMu.Unlock()
	if release {
		d.fs.vfs.notifyReleased(ctx, d)
		d.inode.DecRef(ctx)
	}
}

// kill marks d unlinked and releases it if nobody references it. Call with
// fs.treeMu held for writing; it returns whether the inode reference must be
// dropped once the lock is released.
func (d *Dentry) kill() bool {
	d.dead.Store(true)
	if d.parent != nil {
		delete(d.parent.children, d.name)
	}
	if d.refs.Load() == 0 && !d.released {
		d.released = true
		return true
	}
	return false
}

func (d *Dentry) isDir() bool     { return d.inode.Mode()&unix.S_IFMT == unix.S_IFDIR }
func (d *Dentry) isSymlink() bool { return d.inode.Mode()&unix.S_IFMT == unix.S_IFLNK }

// childLocked returns the child called name, looking it up in the inode if
// the cache misses. Call with the tree lock held for writing, or for
// reading when the filesystem keeps every child cached (a miss is then
// answered by an inode Lookup that creates nothing).
func (d *Dentry) childLocked(ctx context.Context, name string) (*Dentry, error) {
	if c, ok := d.children[name]; ok {
		return c, nil
	}
	if d.dead.Load() {
		return nil, unix.ENOENT
	}
	ino, err := d.inode.Lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	c := d.fs.NewDentry(ino)
	d.insertChildLocked(name, c)
	return c, nil
}

// insertChildLocked links c into d as name. Tree lock held for writing.
func (d *Dentry) insertChildLocked(name string, c *Dentry) {
	if d.children == nil {
		d.children = make(map[string]*Dentry)
	}
	c.parent, c.name = d, name
	d.children[name] = c
}

// isDescendantOfLocked reports whether a is d or one of d's ancestors
// within the same filesystem. Tree lock held.
func (d *Dentry) isDescendantOfLocked(a *Dentry) bool {
	for x := d; x != nil; x = x.parent {
		if x == a {
			return true
		}
	}
	return false
}

// VFS returns the VirtualFilesystem fs belongs to.
func (fs *Filesystem) VFS() *VirtualFilesystem { return fs.vfs }

// ParentIno returns the inode number ".." of vd has, for readdir: the
// parent directory's, across a mount root to the mount point's parent, or
// vd's own at the top.
func ParentIno(ctx context.Context, vd VirtualDentry) uint64 {
	m, d := vd.mount, vd.dentry
	v := d.fs.vfs
	v.mountMu.RLock()
	for d == m.root && m.parent != nil && !m.detached {
		m, d = m.parent, m.point
	}
	v.mountMu.RUnlock()
	d.fs.treeMu.RLock()
	p := d.parent
	d.fs.treeMu.RUnlock()
	if p == nil || d == m.root {
		p = d
	}
	st, err := p.inode.Stat(ctx, unix.STATX_INO)
	if err != nil {
		return 0
	}
	return st.Ino
}
