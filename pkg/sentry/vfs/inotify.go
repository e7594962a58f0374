package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Watch is one inotify(7) watch: an owner's (an inotify instance's)
// interest in an inode. The vfs reports the events of its operations on
// the inode, and on the children of a watched directory, to the watches
// there. A watch keeps its inode alive and its dentry out of the dentry
// cache's eviction, as Linux's watch pins its inode.
type Watch struct {
	owner WatchOwner
	wd    int32
	mask  atomic.Uint32

	inode  Inode
	dentry *Dentry
	// removed is set once, by whoever takes the watch off its inode.
	removed atomic.Bool
}

// WD returns the watch descriptor the owner gave the watch.
func (w *Watch) WD() int32 { return w.wd }

// Mask returns the IN_* events (and flags) the watch asks for.
func (w *Watch) Mask() uint32 { return w.mask.Load() }

// SetMask replaces the watch's mask (inotify_add_watch on a watched
// inode).
func (w *Watch) SetMask(m uint32) { w.mask.Store(m) }

// Inode returns the watched inode.
func (w *Watch) Inode() Inode { return w.inode }

// WatchOwner receives a watch's events: an inotify instance.
type WatchOwner interface {
	// QueueEvent records an event for w. name is the child's name for
	// events on a watched directory's children, else empty. It is called
	// with filesystem locks held and must not call back into the vfs.
	QueueEvent(w *Watch, mask, cookie uint32, name string)
	// WatchRemoved tells the owner that the vfs took w away (its inode
	// was deleted, or an IN_ONESHOT watch fired): the owner reports
	// IN_IGNORED and forgets w.
	WatchRemoved(w *Watch)
}

// inotifyState is the VirtualFilesystem's table of watches by inode.
type inotifyState struct {
	mu      sync.RWMutex
	watches map[Inode][]*Watch
	// count is the number of watched inodes, read without mu so that
	// operations skip event reporting when nothing is watched.
	count atomic.Int64
	// cookies numbers rename events (IN_MOVED_FROM/IN_MOVED_TO pairs).
	cookies atomic.Uint32
}

// AddWatch starts a watch by owner, numbered wd, on the file vd names.
// The owner keeps one watch per inode (Watch.Inode tells it which).
func (vfs *VirtualFilesystem) AddWatch(vd VirtualDentry, owner WatchOwner, wd int32, mask uint32) *Watch {
	w := &Watch{owner: owner, wd: wd, inode: vd.dentry.inode, dentry: vd.dentry}
	w.mask.Store(mask)
	w.inode.IncRef()
	w.dentry.watchers.Add(1)
	s := &vfs.inotify
	s.mu.Lock()
	if s.watches == nil {
		s.watches = make(map[Inode][]*Watch)
	}
	if len(s.watches[w.inode]) == 0 {
		s.count.Add(1)
	}
	s.watches[w.inode] = append(s.watches[w.inode], w)
	s.mu.Unlock()
	return w
}

// RemoveWatch takes w off its inode; false if it was already gone. The
// owner calls it for inotify_rm_watch and when it is released.
func (vfs *VirtualFilesystem) RemoveWatch(ctx context.Context, w *Watch) bool {
	if w.removed.Swap(true) {
		return false
	}
	s := &vfs.inotify
	s.mu.Lock()
	ws := s.watches[w.inode]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.watches, w.inode)
		s.count.Add(-1)
	} else {
		s.watches[w.inode] = ws
	}
	s.mu.Unlock()
	w.dentry.watchers.Add(-1)
	w.inode.DecRef(ctx)
	return true
}

// watchesOf returns a snapshot of ino's watches (nil if none).
func (vfs *VirtualFilesystem) watchesOf(ino Inode) []*Watch {
	s := &vfs.inotify
	s.mu.RLock()
	ws := s.watches[ino]
	s.mu.RUnlock()
	return ws
}

// deliver reports an event to ino's watches that want it.
func (vfs *VirtualFilesystem) deliver(ctx context.Context, ino Inode, mask, cookie uint32, name string, unlinked bool) {
	for _, w := range vfs.watchesOf(ino) {
		wm := w.mask.Load()
		if mask&wm&unix.IN_ALL_EVENTS == 0 || w.removed.Load() {
			continue
		}
		if unlinked && name != "" && wm&unix.IN_EXCL_UNLINK != 0 {
			continue
		}
		w.owner.QueueEvent(w, mask, cookie, name)
		if wm&unix.IN_ONESHOT != 0 && vfs.RemoveWatch(ctx, w) {
			w.owner.WatchRemoved(w)
		}
	}
}

// notify reports event mask on d's inode and, for d's parent directory's
// watches, as an event on the child named d's name. IN_ISDIR is added
// for directories.
func (vfs *VirtualFilesystem) notify(ctx context.Context, d *Dentry, mask uint32) {
	if vfs.inotify.count.Load() == 0 {
		return
	}
	if d.isDir() {
		mask |= unix.IN_ISDIR
	}
	vfs.deliver(ctx, d.inode, mask, 0, "", false)
	d.fs.treeMu.RLock()
	p, name := d.parent, d.name
	d.fs.treeMu.RUnlock()
	if p != nil && name != "" {
		vfs.deliver(ctx, p.inode, mask, 0, name, d.dead.Load())
	}
}

// notifyDir reports an event about child name of directory dir (create,
// delete, moves), with IN_ISDIR if the child is a directory.
func (vfs *VirtualFilesystem) notifyDir(ctx context.Context, dir *Dentry, name string, child Inode, mask, cookie uint32) {
	if vfs.inotify.count.Load() == 0 {
		return
	}
	if child != nil && child.Mode()&unix.S_IFMT == unix.S_IFDIR {
		mask |= unix.IN_ISDIR
	}
	vfs.deliver(ctx, dir.inode, mask, cookie, name, false)
}

// notifyLinkCount reports that ino lost a name: IN_ATTRIB on the inode
// alone (its link count changed), as Linux reports for unlink(2) and for
// the file a rename replaces, even when it was the last name. Whether
// the inode is gone is only known when the name's last user lets go
// (notifyReleased).
func (vfs *VirtualFilesystem) notifyLinkCount(ctx context.Context, ino Inode) {
	if vfs.inotify.count.Load() == 0 {
		return
	}
	mask := uint32(unix.IN_ATTRIB)
	if ino.Mode()&unix.S_IFMT == unix.S_IFDIR {
		mask |= unix.IN_ISDIR
	}
	vfs.deliver(ctx, ino, mask, 0, "", false)
}

// notifyReleased is called when the last reference to dentry d goes
// after the dentry lost its name. If that name was removed by a syscall
// and the inode has no name left (a directory has only the one), the
// inode is deleted for good: its watches get IN_DELETE_SELF, then end
// (IN_IGNORED). This is Linux's rule: the event waits for the last open
// file, mapping or working directory that holds the removed name, and
// comes per name, so a file still open under another name that was
// removed later is reported when that later name is released.
func (vfs *VirtualFilesystem) notifyReleased(ctx context.Context, d *Dentry) {
	if !d.removed.Load() || vfs.inotify.count.Load() == 0 || len(vfs.watchesOf(d.inode)) == 0 {
		return
	}
	if !d.isDir() {
		// A name left means the inode lives on; a file that can no longer
		// be stat'ed (a remote one whose name was its last) is taken as
		// gone.
		if st, err := d.inode.Stat(ctx, unix.STATX_NLINK); err == nil && st.Nlink > 0 {
			return
		}
	}
	vfs.deliver(ctx, d.inode, unix.IN_DELETE_SELF, 0, "", false)
	for _, w := range vfs.watchesOf(d.inode) {
		if vfs.RemoveWatch(ctx, w) {
			w.owner.WatchRemoved(w)
		}
	}
}

// NewRenameCookie returns a fresh, nonzero IN_MOVED_* cookie.
func (vfs *VirtualFilesystem) newRenameCookie() uint32 {
	for {
		if c := vfs.inotify.cookies.Add(1); c != 0 {
			return c
		}
	}
}

// NotifyFile reports an event on the file fd names; filesystems and
// syscalls that change a file behind the vfs's operations use it.
func (fd *FileDescription) NotifyFile(ctx context.Context, mask uint32) {
	fd.vd.mount.vfs.notify(ctx, fd.vd.dentry, mask)
}

// notifyRename reports a rename: IN_MOVED_FROM and IN_MOVED_TO with one
// cookie on the directories, IN_MOVE_SELF on the moved file, and the loss
// of its name for a replaced file (or the reverse move for an exchange).
func (vfs *VirtualFilesystem) notifyRename(ctx context.Context, op *Dentry, oldName string, np *Dentry, newName string, moved, replaced Inode, exchange bool) {
	if vfs.inotify.count.Load() == 0 {
		return
	}
	cookie := vfs.newRenameCookie()
	vfs.notifyDir(ctx, op, oldName, moved, unix.IN_MOVED_FROM, cookie)
	vfs.notifyDir(ctx, np, newName, moved, unix.IN_MOVED_TO, cookie)
	vfs.deliver(ctx, moved, unix.IN_MOVE_SELF, 0, "", false)
	if replaced == nil {
		return
	}
	if exchange {
		cookie = vfs.newRenameCookie()
		vfs.notifyDir(ctx, np, newName, replaced, unix.IN_MOVED_FROM, cookie)
		vfs.notifyDir(ctx, op, oldName, replaced, unix.IN_MOVED_TO, cookie)
		vfs.deliver(ctx, replaced, unix.IN_MOVE_SELF, 0, "", false)
		return
	}
	vfs.notifyLinkCount(ctx, replaced)
}

// notifySetStat reports a setattr: IN_MODIFY for a size change,
// IN_ATTRIB for the rest.
func (vfs *VirtualFilesystem) notifySetStat(ctx context.Context, d *Dentry, mask uint32) {
	if mask&unix.STATX_SIZE != 0 {
		vfs.notify(ctx, d, unix.IN_MODIFY)
	}
	if mask&^uint32(unix.STATX_SIZE) != 0 {
		vfs.notify(ctx, d, unix.IN_ATTRIB)
	}
}
