package gofer

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// inode is one file of the 9P tree, named by its own (never opened) fid.
type inode struct {
	fs   *filesystem
	file *p9.ClientFile
	ino  uint64 // QID.Path: the host inode number
	refs atomic.Int64

	// mode, uid and gid are read without locks by path walks.
	mode atomic.Uint32
	uid  atomic.Uint32
	gid  atomic.Uint32

	// mu guards the cached attributes and the fields below them.
	mu                  sync.Mutex
	attrValid           bool // false: refetch before trusting
	nlink               uint64
	rdev                uint64
	blksize, blocks     uint64
	atime, mtime, ctime timestamp
	size                uint64 // non-regular files (regular: data.size)
	target              string // symlink target, once read (exclusive mode)
	haveTarget          bool
	negative            map[string]struct{} // failed lookups (exclusive mode)
	fifo                *pipe.Pipe          // S_IFIFO: the sandbox-local pipe

	// dirMu guards the open directory handle and the inode-level readdir
	// state.
	dirMu     sync.Mutex
	dirHandle *p9.ClientFile
	dirState  dirState

	// Regular files: open handles and the page cache.
	data *regularData
}

func (fs *filesystem) newInode(f *p9.ClientFile, qid p9.QID, valid p9.AttrMask, attr *p9.Attr) *inode {
	i := &inode{fs: fs, file: f, ino: qid.Path}
	i.refs.Store(1)
	i.setAttrLocked(valid, attr)
	switch attr.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		i.data = &regularData{size: int64(attr.Size)}
		i.data.rh.fd, i.data.wh.fd = -1, -1
	case unix.S_IFIFO:
		i.fifo = pipe.NewPipe()
	}
	fs.register(i)
	return i
}

// inodeFor returns the inode for a freshly walked fid: an existing one if
// the file is a regular file with several names that another name already
// brought in (so hard links share one page cache), else a new one.
func (fs *filesystem) inodeFor(f *p9.ClientFile, qid p9.QID, valid p9.AttrMask, attr *p9.Attr) *inode {
	if attr.Mode&unix.S_IFMT != unix.S_IFREG || attr.NLink < 2 {
		return fs.newInode(f, qid, valid, attr)
	}
	fs.liveMu.Lock()
	if ex := fs.byIno[qid.Path]; ex != nil && ex.tryIncRef() {
		fs.liveMu.Unlock()
		f.Close(context.Background())
		ex.mu.Lock()
		ex.setAttrLocked(valid, attr)
		ex.mu.Unlock()
		return ex
	}
	fs.liveMu.Unlock()
	i := fs.newInode(f, qid, valid, attr)
	fs.liveMu.Lock()
	if fs.byIno != nil {
		if _, ok := fs.byIno[qid.Path]; !ok {
			fs.byIno[qid.Path] = i
		}
	}
	fs.liveMu.Unlock()
	return i
}

// tryIncRef takes a reference unless the inode is already being released.
func (i *inode) tryIncRef() bool {
	for {
		r := i.refs.Load()
		if r <= 0 {
			return false
		}
		if i.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// setAttrLocked caches attr (mu held, or i not yet shared). A regular
// file's size lives in data (see applyAttr): the lock order is data.mu
// before mu.
func (i *inode) setAttrLocked(valid p9.AttrMask, a *p9.Attr) {
	if valid&p9.AttrMode != 0 {
		i.mode.Store(a.Mode)
	}
	if valid&p9.AttrUID != 0 {
		i.uid.Store(uint32(a.UID))
	}
	if valid&p9.AttrGID != 0 {
		i.gid.Store(uint32(a.GID))
	}
	i.nlink, i.rdev, i.blksize, i.blocks = a.NLink, a.RDev, a.BlockSize, a.Blocks
	i.atime = timestamp{a.ATimeSec, a.ATimeNsec}
	i.mtime = timestamp{a.MTimeSec, a.MTimeNsec}
	i.ctime = timestamp{a.CTimeSec, a.CTimeNsec}
	i.size = a.Size
	i.attrValid = true
}

func (i *inode) ftype() uint32 { return i.mode.Load() & unix.S_IFMT }
func (i *inode) isDir() bool   { return i.ftype() == unix.S_IFDIR }

// invalidateAttrs makes the next stat refetch attributes.
func (i *inode) invalidateAttrs() {
	i.mu.Lock()
	i.attrValid = false
	i.mu.Unlock()
}

// refresh refetches attributes from the Gofer.
func (i *inode) refresh(ctx context.Context) error {
	_, valid, attr, err := i.file.GetAttr(ctx, p9.AttrBasic)
	if err != nil {
		return err
	}
	i.mu.Lock()
	changed := i.mtime != timestamp{attr.MTimeSec, attr.MTimeNsec}
	i.setAttrLocked(valid, &attr)
	i.mu.Unlock()
	if d := i.data; d != nil {
		if valid&p9.AttrSize != 0 {
			d.mu.Lock()
			// A write racing with this getattr may have grown the file
			// past what the host reported; dirty pages are newer too.
			if int64(attr.Size) > d.size || !d.hasDirtyLocked() {
				d.size = int64(attr.Size)
			}
			d.mu.Unlock()
		}
		if changed && i.fs.shared {
			// Someone else changed the file: cached pages may be stale.
			d.dropClean(i.fs.mf)
		}
	}
	return nil
}

// IncRef implements vfs.Inode.
func (i *inode) IncRef() { i.refs.Add(1) }

// DecRef implements vfs.Inode: the last reference writes back and frees
// the cache and clunks the fids.
func (i *inode) DecRef(ctx context.Context) {
	if i.refs.Add(-1) != 0 {
		return
	}
	if i.fs.unregister(i) {
		i.destroy(ctx)
	}
}

// destroy releases everything i holds on the Gofer and in the memory file.
func (i *inode) destroy(ctx context.Context) {
	if i.data != nil {
		i.data.release(ctx, i)
	}
	i.dirMu.Lock()
	if i.dirHandle != nil {
		i.dirHandle.CloseAsync()
		i.dirHandle = nil
	}
	i.dirMu.Unlock()
	// Nothing is done with a clunk's error: don't wait for it (eviction
	// of cached dentries destroys inodes on the path-walk path).
	i.file.CloseAsync()
}

// Mode implements vfs.Inode.
func (i *inode) Mode() uint32 { return i.mode.Load() }

// Owner implements vfs.Inode.
func (i *inode) Owner() (auth.UID, auth.GID) {
	return auth.UID(i.uid.Load()), auth.GID(i.gid.Load())
}

// timestamp is a time as 9P carries it.
type timestamp struct{ sec, nsec uint64 }

func (t timestamp) statx() unix.StatxTimestamp {
	return unix.StatxTimestamp{Sec: int64(t.sec), Nsec: uint32(t.nsec)}
}

// Stat implements vfs.Inode.
func (i *inode) Stat(ctx context.Context, _ uint32) (vfs.Statx, error) {
	i.mu.Lock()
	fresh := i.attrValid && !i.fs.shared
	i.mu.Unlock()
	if !fresh {
		if err := i.refresh(ctx); err != nil {
			return vfs.Statx{}, err
		}
	}
	st := vfs.Statx{
		Mask: unix.STATX_BASIC_STATS,
		Mode: uint16(i.mode.Load()),
		Uid:  i.uid.Load(),
		Gid:  i.gid.Load(),
		Ino:  i.ino,
	}
	i.mu.Lock()
	st.Nlink = uint32(i.nlink)
	st.Blksize = uint32(i.blksize)
	st.Blocks = i.blocks
	st.Rdev_major, st.Rdev_minor = unix.Major(i.rdev), unix.Minor(i.rdev)
	st.Atime, st.Mtime, st.Ctime = i.atime.statx(), i.mtime.statx(), i.ctime.statx()
	st.Size = i.size
	i.mu.Unlock()
	if i.data != nil {
		i.data.mu.Lock()
		st.Size = uint64(i.data.size)
		i.data.mu.Unlock()
	}
	return st, nil
}

// SetStat implements vfs.Inode.
func (i *inode) SetStat(ctx context.Context, o *vfs.SetStatOptions) error {
	var valid p9.SetAttrMask
	var a p9.SetAttr
	if o.Mask&unix.STATX_MODE != 0 {
		valid |= p9.SetAttrMode
		a.Mode = o.Mode & 0o7777
	}
	if o.Mask&unix.STATX_UID != 0 {
		valid |= p9.SetAttrUID
		a.UID = p9.UID(o.UID)
	}
	if o.Mask&unix.STATX_GID != 0 {
		valid |= p9.SetAttrGID
		a.GID = p9.GID(o.GID)
	}
	if o.Mask&unix.STATX_ATIME != 0 {
		valid |= p9.SetAttrATime | p9.SetAttrATimeSet
		a.ATimeSec, a.ATimeNsec = uint64(o.Atime.Sec), uint64(o.Atime.Nsec)
	}
	if o.Mask&unix.STATX_MTIME != 0 {
		valid |= p9.SetAttrMTime | p9.SetAttrMTimeSet
		a.MTimeSec, a.MTimeNsec = uint64(o.Mtime.Sec), uint64(o.Mtime.Nsec)
	}
	if o.Mask&unix.STATX_SIZE != 0 {
		if i.data == nil {
			return unix.EINVAL
		}
		if o.Size > 1<<63-1 {
			return unix.EFBIG
		}
		return i.data.truncate(ctx, i, int64(o.Size), valid, a)
	}
	if valid == 0 {
		return nil
	}
	err := i.file.SetAttr(ctx, valid, a)
	if err == nil {
		if valid&p9.SetAttrMode != 0 {
			i.mode.Store(i.mode.Load()&unix.S_IFMT | a.Mode)
		}
		if valid&p9.SetAttrUID != 0 {
			i.uid.Store(uint32(a.UID))
		}
		if valid&p9.SetAttrGID != 0 {
			i.gid.Store(uint32(a.GID))
		}
	}
	i.invalidateAttrs()
	return err
}

// Readlink implements vfs.Inode.
func (i *inode) Readlink(ctx context.Context) (string, error) {
	if i.ftype() != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	i.mu.Lock()
	if i.haveTarget && !i.fs.shared {
		t := i.target
		i.mu.Unlock()
		return t, nil
	}
	i.mu.Unlock()
	t, err := i.file.Readlink(ctx)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	i.target, i.haveTarget = t, true
	i.mu.Unlock()
	return t, nil
}

// Open implements vfs.Inode.
func (i *inode) Open(ctx context.Context, vd vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	switch i.ftype() {
	case unix.S_IFREG:
		if err := i.data.ensureHandle(ctx, i, flags); err != nil {
			return nil, err
		}
		i.data.openFiles.Add(1)
		return &regularFile{inode: i}, nil
	case unix.S_IFDIR:
		if err := i.ensureDirHandle(ctx); err != nil {
			return nil, err
		}
		return &dirFile{inode: i}, nil
	case unix.S_IFLNK:
		return nil, unix.ELOOP
	case unix.S_IFIFO:
		return i.fifo.OpenFIFO(ctx, flags)
	case unix.S_IFCHR:
		i.mu.Lock()
		rdev := i.rdev
		i.mu.Unlock()
		return vd.Mount().Filesystem().VFS().OpenDeviceSpecialFile(ctx, vd, vfs.CharDevice, unix.Major(rdev), unix.Minor(rdev), flags)
	case unix.S_IFBLK:
		i.mu.Lock()
		rdev := i.rdev
		i.mu.Unlock()
		return vd.Mount().Filesystem().VFS().OpenDeviceSpecialFile(ctx, vd, vfs.BlockDevice, unix.Major(rdev), unix.Minor(rdev), flags)
	default:
		return nil, unix.ENXIO
	}
}

// Lookup implements vfs.Inode: one Twalk and one Tgetattr per miss.
func (i *inode) Lookup(ctx context.Context, name string) (vfs.Inode, error) {
	if !i.isDir() {
		return nil, unix.ENOTDIR
	}
	if !i.fs.shared {
		i.mu.Lock()
		_, neg := i.negative[name]
		i.mu.Unlock()
		if neg {
			return nil, unix.ENOENT
		}
	}
	f, qid, valid, attr, err := i.file.WalkGetAttr(ctx, []string{name}, p9.AttrBasic)
	if err != nil {
		if err == unix.ENOENT && !i.fs.shared {
			i.mu.Lock()
			if i.negative == nil || len(i.negative) >= maxNegative {
				i.negative = make(map[string]struct{})
			}
			i.negative[name] = struct{}{}
			i.mu.Unlock()
		}
		return nil, err
	}
	return i.fs.inodeFor(f, qid, valid, &attr), nil
}

// positive forgets a negative entry for name and marks the directory's
// attributes stale (its mtime and link count change).
func (i *inode) positive(name string) {
	i.mu.Lock()
	delete(i.negative, name)
	i.attrValid = false
	i.mu.Unlock()
}

// walkChild returns a new inode for name, just created in i.
func (i *inode) walkChild(ctx context.Context, name string) (*inode, error) {
	f, qid, valid, attr, err := i.file.WalkGetAttr(ctx, []string{name}, p9.AttrBasic)
	if err != nil {
		return nil, err
	}
	return i.fs.inodeFor(f, qid, valid, &attr), nil
}

// fixOwner gives a new file the owner the vfs asked for when the Gofer
// made it with other ids.
func (i *inode) fixOwner(ctx context.Context, c *inode, opts *vfs.MknodOptions) {
	var valid p9.SetAttrMask
	if c.uid.Load() != uint32(opts.UID) {
		valid |= p9.SetAttrUID
	}
	if c.gid.Load() != uint32(opts.GID) {
		valid |= p9.SetAttrGID
	}
	if valid == 0 || c.ftype() == unix.S_IFLNK {
		return
	}
	if err := c.file.SetAttr(ctx, valid, p9.SetAttr{UID: p9.UID(opts.UID), GID: p9.GID(opts.GID)}); err == nil {
		c.uid.Store(uint32(opts.UID))
		c.gid.Store(uint32(opts.GID))
		c.invalidateAttrs()
	}
}

// NewChild implements vfs.Inode.
func (i *inode) NewChild(ctx context.Context, name string, opts *vfs.MknodOptions) (vfs.Inode, error) {
	if !i.isDir() {
		return nil, unix.ENOTDIR
	}
	gid := p9.GID(opts.GID)
	perm := opts.Mode & 0o7777
	var c *inode
	var err error
	switch opts.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		c, err = i.createRegular(ctx, name, perm, gid)
	case unix.S_IFDIR:
		if _, err = i.file.Mkdir(ctx, name, perm, gid); err == nil {
			c, err = i.walkChild(ctx, name)
		}
	case unix.S_IFLNK:
		if _, err = i.file.Symlink(ctx, name, opts.Target, gid); err == nil {
			c, err = i.walkChild(ctx, name)
		}
	default:
		if _, err = i.file.Mknod(ctx, name, opts.Mode, opts.DevMajor, opts.DevMinor, gid); err == nil {
			c, err = i.walkChild(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	i.positive(name)
	i.fixOwner(ctx, c, opts)
	return c, nil
}

// createRegular makes a regular file with Tlcreate on a clone of the
// directory's fid; the opened clone becomes the new file's read-write
// handle, so the open(O_CREAT) that follows costs no round trip.
func (i *inode) createRegular(ctx context.Context, name string, perm uint32, gid p9.GID) (*inode, error) {
	h, err := i.file.Clone(ctx)
	if err != nil {
		return nil, err
	}
	_, _, host, err := h.Create(ctx, name, p9.OpenFlags(unix.O_RDWR|unix.O_EXCL), perm, gid)
	if err != nil {
		h.Close(context.Background())
		return nil, err
	}
	c, err := i.walkChild(ctx, name)
	if err != nil {
		h.Close(context.Background())
		if host != nil {
			host.Close()
		}
		return nil, err
	}
	c.data.mu.Lock()
	c.data.setHandleLocked(handle{file: h, host: host}, true, true)
	c.data.mu.Unlock()
	return c, nil
}

// Link implements vfs.Inode: a hard link. Renames go through Rename.
func (i *inode) Link(ctx context.Context, name string, child vfs.Inode, rename bool) error {
	c, ok := child.(*inode)
	if !ok || c.fs != i.fs || rename {
		return unix.EXDEV
	}
	if !i.isDir() {
		return unix.ENOTDIR
	}
	if err := i.file.Link(ctx, c.file, name); err != nil {
		return err
	}
	i.positive(name)
	c.invalidateAttrs()
	return nil
}

// Rename implements vfs.Renamer: one Trenameat, which the Gofer carries out
// with renameat(2), so a name that is replaced never stops existing (a
// reader of newName sees the old file or the new one, never ENOENT).
// RENAME_EXCHANGE and RENAME_NOREPLACE have no 9P2000.L form; the vfs has
// checked NOREPLACE against its cache, and EXCHANGE is refused before
// anything changes.
func (i *inode) Rename(ctx context.Context, oldName string, old vfs.Inode, newParent vfs.Inode, newName string, repl vfs.Inode, flags uint32) error {
	c, ok := old.(*inode)
	np, ok2 := newParent.(*inode)
	if !ok || !ok2 || c.fs != i.fs || np.fs != i.fs {
		return unix.EXDEV
	}
	if flags&unix.RENAME_EXCHANGE != 0 {
		return unix.EINVAL
	}
	if err := i.file.RenameAt(ctx, oldName, np.file, newName); err != nil {
		return err
	}
	i.gone(oldName)
	np.positive(newName)
	c.invalidateAttrs()
	if r, ok := repl.(*inode); ok {
		// Its link count dropped; an open file still stats it.
		r.invalidateAttrs()
	}
	return nil
}

// Unlink implements vfs.Inode (unlink and rmdir; renames go through
// Rename).
func (i *inode) Unlink(ctx context.Context, name string, child vfs.Inode, rename bool) error {
	c, ok := child.(*inode)
	if !ok || rename {
		return unix.EXDEV
	}
	if !i.isDir() {
		return unix.ENOTDIR
	}
	var flags uint32
	if c.isDir() {
		flags = unix.AT_REMOVEDIR
	}
	if err := i.file.UnlinkAt(ctx, name, flags); err != nil {
		return err
	}
	i.gone(name)
	c.invalidateAttrs()
	return nil
}

// gone records that name no longer exists in i (a negative entry in
// exclusive mode) and marks i's attributes stale.
func (i *inode) gone(name string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.attrValid = false
	if i.fs.shared {
		return
	}
	if i.negative == nil || len(i.negative) >= maxNegative {
		i.negative = make(map[string]struct{})
	}
	i.negative[name] = struct{}{}
}

// ensureDirHandle opens the directory for reading once.
func (i *inode) ensureDirHandle(ctx context.Context) error {
	i.dirMu.Lock()
	defer i.dirMu.Unlock()
	if i.dirHandle != nil {
		return nil
	}
	h, _, _, host, err := i.file.CloneOpen(ctx, p9.OpenFlags(unix.O_RDONLY|unix.O_DIRECTORY))
	if err != nil {
		return err
	}
	if host != nil {
		host.Close()
	}
	i.dirHandle = h
	return nil
}

// readdirBatch is the byte budget of one Treaddir.
const readdirBatch = 64 << 10

// dirState is a readdir position's memory: the 9P cookie from which each
// listed entry can be resumed, and the entries of the last Treaddir not
// yet consumed (a small getdents buffer must not cost a round trip per
// call).
type dirState struct {
	// cookies[k] resumes the listing at its kth entry.
	cookies []uint64
	// buf holds entries buf[0] = entry bufStart onwards.
	buf      []p9.Dirent
	bufStart int64
	// atEnd says that the listing ends at entry end: a Treaddir there
	// returned nothing, or the reply before it was known to be the last
	// (p9.ClientFile.ReaddirEnd). The listing's end is remembered until it is restarted from 0 (rewinddir):
	// whether entries added after opendir appear is unspecified (POSIX
	// readdir), and asking again costs a round trip each time a reader,
	// or the overlay after it, probes the end.
	atEnd bool
	end   int64
}

// iterDirentsLocked lists i from offset. Offsets 0 and 1 are "." and "..";
// an offset n >= 2 is the (n-2)th entry of the host listing, resumed from
// its 9P cookie, so an offset stays valid across creates and removes.
// Listing from 0 again (rewinddir) refetches. Call with dirMu held.
func (i *inode) iterDirentsLocked(ctx context.Context, st *dirState, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	if offset == 0 {
		st.buf = st.buf[:0]
		st.atEnd = false
		if !cb(vfs.Dirent{Name: ".", Ino: i.ino, Type: unix.DT_DIR, NextOff: 1}) {
			return 0, nil
		}
		offset = 1
	}
	if offset == 1 {
		if !cb(vfs.Dirent{Name: "..", Ino: parentIno, Type: unix.DT_DIR, NextOff: 2}) {
			return 1, nil
		}
		offset = 2
	}
	if len(st.cookies) == 0 {
		st.cookies = append(st.cookies, 0)
	}
	for {
		idx := offset - 2
		if idx >= int64(len(st.cookies)) {
			return offset, nil // past what was listed: the end
		}
		if idx < st.bufStart || idx >= st.bufStart+int64(len(st.buf)) {
			if st.atEnd && idx == st.end {
				return offset, nil
			}
			ents, end, err := i.dirHandle.ReaddirEnd(ctx, st.cookies[idx], readdirBatch)
			if err != nil {
				return offset, err
			}
			st.atEnd, st.end = end, idx+int64(len(ents))
			if len(ents) == 0 {
				return offset, nil
			}
			st.buf, st.bufStart = ents, idx
			st.cookies = st.cookies[:idx+1]
		}
		e := &st.buf[idx-st.bufStart]
		if !cb(vfs.Dirent{Name: e.Name, Ino: e.QID.Path, Type: e.Type, NextOff: offset + 1}) {
			return offset, nil
		}
		if int64(len(st.cookies)) == idx+1 {
			st.cookies = append(st.cookies, e.Offset)
		} else {
			st.cookies[idx+1] = e.Offset
		}
		offset++
	}
}

// IterDirents implements vfs.Inode (for callers without an open file,
// such as an overlay merging directories).
func (i *inode) IterDirents(ctx context.Context, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	if !i.isDir() {
		return offset, unix.ENOTDIR
	}
	if err := i.ensureDirHandle(ctx); err != nil {
		return offset, err
	}
	i.dirMu.Lock()
	defer i.dirMu.Unlock()
	return i.iterDirentsLocked(ctx, &i.dirState, offset, parentIno, cb)
}

// GetXattr implements vfs.Inode.
func (i *inode) GetXattr(ctx context.Context, name string) (string, error) {
	v, err := i.file.GetXattr(ctx, name)
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// SetXattr implements vfs.Inode.
func (i *inode) SetXattr(ctx context.Context, name, value string, flags uint32) error {
	err := i.file.SetXattr(ctx, name, []byte(value), flags)
	i.invalidateAttrs()
	return err
}

// ListXattr implements vfs.Inode.
func (i *inode) ListXattr(ctx context.Context) ([]string, error) {
	v, err := i.file.GetXattr(ctx, "")
	if err != nil {
		if err == unix.EOPNOTSUPP || err == unix.ENODATA {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, n := range strings.Split(string(v), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

// RemoveXattr implements vfs.Inode (p9.XattrRemove: 9P2000.L itself has
// no removal).
func (i *inode) RemoveXattr(ctx context.Context, name string) error {
	err := i.file.RemoveXattr(ctx, name)
	i.invalidateAttrs()
	return err
}

// StatFS implements vfs.Inode.
func (i *inode) StatFS(ctx context.Context) (vfs.Statfs, error) {
	s, err := i.file.StatFS(ctx)
	if err != nil {
		return vfs.Statfs{}, err
	}
	return vfs.Statfs{
		Type:    int64(s.Type),
		Bsize:   int64(s.BlockSize),
		Frsize:  int64(s.BlockSize),
		Blocks:  s.Blocks,
		Bfree:   s.BlocksFree,
		Bavail:  s.BlocksAvailable,
		Files:   s.Files,
		Ffree:   s.FilesFree,
		Namelen: int64(s.NameLength),
		Fsid:    unix.Fsid{Val: [2]int32{int32(uint32(s.FSID)), int32(uint32(s.FSID >> 32))}},
	}, nil
}

// dirFile is an open directory with its own readdir position.
type dirFile struct {
	vfs.FileDescriptionDefaults
	inode *inode
	mu    sync.Mutex
	off   int64
	state dirState
}

// IterDirents implements vfs.FileDescriptionImpl.
func (f *dirFile) IterDirents(ctx context.Context, fd *vfs.FileDescription, cb func(vfs.Dirent) bool) error {
	parent := vfs.ParentIno(ctx, fd.VirtualDentry())
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.inode
	i.dirMu.Lock()
	off, err := i.iterDirentsLocked(ctx, &f.state, f.off, parent, cb)
	i.dirMu.Unlock()
	f.off = off
	return err
}

// Seek implements vfs.FileDescriptionImpl.
func (f *dirFile) Seek(_ context.Context, _ *vfs.FileDescription, offset int64, whence int32) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		offset += f.off
	default:
		return 0, unix.EINVAL
	}
	if offset < 0 {
		return 0, unix.EINVAL
	}
	f.off = offset
	return offset, nil
}
