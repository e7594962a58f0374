package gofer

import (
	"context"

	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// NeedsRevalidation implements vfs.Revalidator: only the shared cache
// policy distrusts cached names.
func (fs *filesystem) NeedsRevalidation() bool { return fs.shared }

// RevalidateChild implements vfs.Revalidator: one Twalk of the name (the
// fid it makes is clunked without waiting) tells whether the host still has the
// same file there, by inode number and type. A file removed, or replaced
// by another (rename over it, delete and create), is stale.
func (fs *filesystem) RevalidateChild(ctx context.Context, dir vfs.Inode, name string, child vfs.Inode) bool {
	d, ok := dir.(*inode)
	c, ok2 := child.(*inode)
	if !ok || !ok2 {
		return true
	}
	qids, f, err := d.file.Walk(ctx, []string{name})
	if err != nil {
		// Only a missing name is known to be stale; other failures
		// (an interrupted walk) leave the cache as it is.
		return err != unix.ENOENT
	}
	f.CloseAsync()
	return sameFile(qids[0], c)
}

// DentryCacheLimit implements vfs.DentryCacheLimiter: every name can be
// walked again, so the vfs need keep only a working set cached.
func (fs *filesystem) DentryCacheLimit() int { return fs.dcacheLimit }

// RevalidatePath implements vfs.PathRevalidator: one multi-name Twalk
// checks a whole run of cached names, comparing each QID with the cached
// inode as RevalidateChild does. A walk that stops early (a name gone)
// makes that name the first stale one.
func (fs *filesystem) RevalidatePath(ctx context.Context, dir vfs.Inode, names []string, children []vfs.Inode) int {
	d, ok := dir.(*inode)
	if !ok || len(names) > p9.MaxWalkElements {
		return len(names)
	}
	qids, f, err := d.file.Walk(ctx, names)
	if f != nil {
		f.CloseAsync()
	}
	if err != nil && err != unix.ENOENT {
		// Not a verdict on the names: keep them.
		return len(names)
	}
	for i, q := range qids {
		c, ok := children[i].(*inode)
		if !ok || !sameFile(q, c) {
			return i
		}
	}
	return len(qids)
}

// sameFile reports whether q is the host file c was made for: the same
// inode number and kind.
func sameFile(q p9.QID, c *inode) bool {
	return q.Path == c.ino && (q.Type&p9.QIDTypeDir != 0) == c.isDir() &&
		(q.Type&p9.QIDTypeSymlink != 0) == (c.ftype() == unix.S_IFLNK)
}
