package tmpfs

import (
	"context"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// inode is every kind of tmpfs file. Type-specific state is in the
// fields for that type.
type inode struct {
	fs   *filesystem
	ino  uint64
	refs atomic.Int64

	// mode, uid and gid are atomics so that permission checks during path
	// walks take no lock.
	mode atomic.Uint32
	uid  atomic.Uint32
	gid  atomic.Uint32

	// mu guards the fields below and the type-specific state.
	mu                         sync.Mutex
	nlink                      uint32
	atime, mtime, ctime, btime int64 // ns since the epoch
	xattrs                     map[string]string
	rdevMajor, rdevMinor       uint32
	target                     string // symlink
	dir                        *directory
	data                       *regularData
	fifo                       *pipe.Pipe
	// endpoint is what bind(2) left in a socket file; set at creation.
	endpoint vfs.BoundEndpoint
}

func (fs *filesystem) newInode(opts *vfs.MknodOptions) *inode {
	now := time.Now().UnixNano()
	i := &inode{fs: fs, ino: fs.lastIno.Add(1), nlink: 1,
		atime: now, mtime: now, ctime: now, btime: now}
	i.refs.Store(1)
	i.mode.Store(opts.Mode)
	i.uid.Store(uint32(opts.UID))
	i.gid.Store(uint32(opts.GID))
	switch opts.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		i.dir = &directory{byName: make(map[string]*dirEntry), nextCookie: firstCookie}
		i.nlink = 2
	case unix.S_IFREG:
		i.data = &regularData{pages: make(map[uint64]page), seals: unix.F_SEAL_SEAL}
	case unix.S_IFLNK:
		i.target = opts.Target
	case unix.S_IFCHR, unix.S_IFBLK:
		i.rdevMajor, i.rdevMinor = opts.DevMajor, opts.DevMinor
	case unix.S_IFIFO:
		i.fifo = pipe.NewPipe()
	case unix.S_IFSOCK:
		i.endpoint = opts.Endpoint
	}
	fs.inodes.Add(1)
	return i
}

// IncRef implements vfs.Inode.
func (i *inode) IncRef() { i.refs.Add(1) }

// DecRef implements vfs.Inode: the last reference frees the file's pages.
func (i *inode) DecRef(context.Context) {
	if i.refs.Add(-1) != 0 {
		return
	}
	if i.data != nil {
		i.data.mu.Lock()
		i.data.truncateLocked(i.fs, 0)
		i.data.mu.Unlock()
	}
	i.fs.inodes.Add(-1)
}

// BoundEndpoint implements vfs.BoundEndpointInode.
func (i *inode) BoundEndpoint() vfs.BoundEndpoint { return i.endpoint }

// Mode implements vfs.Inode.
func (i *inode) Mode() uint32 { return i.mode.Load() }

// Owner implements vfs.Inode.
func (i *inode) Owner() (auth.UID, auth.GID) {
	return auth.UID(i.uid.Load()), auth.GID(i.gid.Load())
}

func nsToStatx(ns int64) unix.StatxTimestamp {
	return unix.StatxTimestamp{Sec: ns / 1e9, Nsec: uint32(ns % 1e9)}
}

// Stat implements vfs.Inode.
func (i *inode) Stat(_ context.Context, _ uint32) (vfs.Statx, error) {
	st := vfs.Statx{
		Mask:    unix.STATX_BASIC_STATS | unix.STATX_BTIME,
		Blksize: 4096,
		Mode:    uint16(i.mode.Load()),
		Uid:     i.uid.Load(),
		Gid:     i.gid.Load(),
		Ino:     i.ino,
	}
	i.mu.Lock()
	st.Nlink = i.nlink
	st.Atime, st.Mtime, st.Ctime, st.Btime = nsToStatx(i.atime), nsToStatx(i.mtime), nsToStatx(i.ctime), nsToStatx(i.btime)
	st.Rdev_major, st.Rdev_minor = i.rdevMajor, i.rdevMinor
	switch {
	case i.data != nil:
		i.data.mu.RLock()
		st.Size = uint64(i.data.size)
		st.Blocks = uint64(len(i.data.pages)) * (pageSize / 512)
		i.data.mu.RUnlock()
	case i.dir != nil:
		st.Size = uint64(len(i.dir.entries)+2) * 20 // what tmpfs reports: BOGO_DIRENT_SIZE per entry
	case i.mode.Load()&unix.S_IFMT == unix.S_IFLNK:
		st.Size = uint64(len(i.target))
	}
	i.mu.Unlock()
	return st, nil
}

// touch sets timestamps to now. Call with mu held.
func (i *inode) touchLocked(atime, mtime, ctime bool) {
	now := time.Now().UnixNano()
	if atime {
		i.atime = now
	}
	if mtime {
		i.mtime = now
	}
	if ctime {
		i.ctime = now
	}
}

func (i *inode) touch(atime, mtime, ctime bool) {
	i.mu.Lock()
	i.touchLocked(atime, mtime, ctime)
	i.mu.Unlock()
}

// SetStat implements vfs.Inode.
func (i *inode) SetStat(_ context.Context, o *vfs.SetStatOptions) error {
	if o.Mask&unix.STATX_SIZE != 0 {
		if i.data == nil {
			return unix.EINVAL
		}
		if o.Size > uint64(maxFileSize) {
			return unix.EFBIG
		}
		i.data.mu.Lock()
		if err := i.data.sealsAllowSizeLocked(int64(o.Size)); err != nil {
			i.data.mu.Unlock()
			return err
		}
		i.data.truncateLocked(i.fs, int64(o.Size))
		i.data.mu.Unlock()
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if o.Mask&unix.STATX_MODE != 0 {
		i.mode.Store(i.mode.Load()&unix.S_IFMT | o.Mode&0o7777)
	}
	if o.Mask&unix.STATX_UID != 0 {
		i.uid.Store(uint32(o.UID))
	}
	if o.Mask&unix.STATX_GID != 0 {
		i.gid.Store(uint32(o.GID))
	}
	if o.Mask&unix.STATX_ATIME != 0 {
		i.atime = o.Atime.Nano()
	}
	if o.Mask&unix.STATX_MTIME != 0 {
		i.mtime = o.Mtime.Nano()
	}
	if o.Mask&unix.STATX_SIZE != 0 {
		i.touchLocked(false, true, false)
	}
	if o.Mask != 0 {
		i.touchLocked(false, false, true)
	}
	return nil
}

// Readlink implements vfs.Inode.
func (i *inode) Readlink(context.Context) (string, error) {
	if i.mode.Load()&unix.S_IFMT != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	i.touch(true, false, false)
	return i.target, nil
}

// Open implements vfs.Inode.
func (i *inode) Open(ctx context.Context, vd vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	switch i.mode.Load() & unix.S_IFMT {
	case unix.S_IFREG:
		return &regularFile{inode: i}, nil
	case unix.S_IFDIR:
		return vfs.NewDirectoryFile(i), nil
	case unix.S_IFIFO:
		return i.fifo.OpenFIFO(ctx, flags)
	case unix.S_IFCHR:
		return vd.Mount().Filesystem().VFS().OpenDeviceSpecialFile(ctx, vd, vfs.CharDevice, i.rdevMajor, i.rdevMinor, flags)
	case unix.S_IFBLK:
		return vd.Mount().Filesystem().VFS().OpenDeviceSpecialFile(ctx, vd, vfs.BlockDevice, i.rdevMajor, i.rdevMinor, flags)
	default:
		return nil, unix.ENXIO
	}
}

// Extended attributes: the vfs has checked namespace and permission.

// GetXattr implements vfs.Inode.
func (i *inode) GetXattr(_ context.Context, name string) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	v, ok := i.xattrs[name]
	if !ok {
		return "", unix.ENODATA
	}
	return v, nil
}

// SetXattr implements vfs.Inode.
func (i *inode) SetXattr(_ context.Context, name, value string, flags uint32) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	_, exists := i.xattrs[name]
	if flags&unix.XATTR_CREATE != 0 && exists {
		return unix.EEXIST
	}
	if flags&unix.XATTR_REPLACE != 0 && !exists {
		return unix.ENODATA
	}
	if i.xattrs == nil {
		i.xattrs = make(map[string]string)
	}
	i.xattrs[name] = value
	i.touchLocked(false, false, true)
	return nil
}

// ListXattr implements vfs.Inode.
func (i *inode) ListXattr(context.Context) ([]string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	names := make([]string, 0, len(i.xattrs))
	for n := range i.xattrs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// RemoveXattr implements vfs.Inode.
func (i *inode) RemoveXattr(_ context.Context, name string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.xattrs[name]; !ok {
		return unix.ENODATA
	}
	delete(i.xattrs, name)
	i.touchLocked(false, false, true)
	return nil
}

// StatFS implements vfs.Inode.
func (i *inode) StatFS(context.Context) (vfs.Statfs, error) { return i.fs.statFS(), nil }

// Directories.

// Cookies 0 and 1 are "." and ".."; entries get increasing cookies from 2
// that are never reused, so a readdir offset stays meaningful whatever is
// created or removed meanwhile.
const firstCookie = 2

type dirEntry struct {
	name   string
	child  *inode
	cookie int64
}

type directory struct {
	// Guarded by the owning inode's mu.
	byName     map[string]*dirEntry
	entries    []*dirEntry // sorted by cookie
	nextCookie int64
}

func (d *directory) insert(name string, child *inode) {
	e := &dirEntry{name: name, child: child, cookie: d.nextCookie}
	d.nextCookie++
	d.byName[name] = e
	d.entries = append(d.entries, e)
}

func (d *directory) remove(name string) {
	e, ok := d.byName[name]
	if !ok {
		return
	}
	delete(d.byName, name)
	k := sort.Search(len(d.entries), func(j int) bool { return d.entries[j].cookie >= e.cookie })
	d.entries = slices.Delete(d.entries, k, k+1)
}

func (i *inode) isDir() bool { return i.mode.Load()&unix.S_IFMT == unix.S_IFDIR }

// Lookup implements vfs.Inode: the dentry cache holds every tmpfs name.
func (i *inode) Lookup(context.Context, string) (vfs.Inode, error) {
	if i.dir == nil {
		return nil, unix.ENOTDIR
	}
	return nil, unix.ENOENT
}

// NewChild implements vfs.Inode.
func (i *inode) NewChild(_ context.Context, name string, opts *vfs.MknodOptions) (vfs.Inode, error) {
	if i.dir == nil {
		return nil, unix.ENOTDIR
	}
	c := i.fs.newInode(opts)
	c.nlink = 0
	if c.dir != nil {
		c.nlink = 1 // "."; Link adds the name
	}
	i.linkChild(name, c, false)
	return c, nil
}

// NewTmpfile implements vfs.TmpfileMaker: a regular file with no name.
func (i *inode) NewTmpfile(_ context.Context, opts *vfs.MknodOptions) (vfs.Inode, error) {
	if i.dir == nil {
		return nil, unix.ENOTDIR
	}
	c := i.fs.newInode(opts)
	c.nlink = 0
	return c, nil
}

// linkChild adds name → c and does the link-count bookkeeping.
func (i *inode) linkChild(name string, c *inode, rename bool) {
	if c != i {
		c.mu.Lock()
		if !rename {
			c.nlink++
		}
		c.touchLocked(false, false, true)
		c.mu.Unlock()
	}
	i.mu.Lock()
	i.dir.insert(name, c)
	if c.isDir() {
		i.nlink++ // the child's ".."
	}
	i.touchLocked(false, true, true)
	i.mu.Unlock()
}

// Link implements vfs.Inode.
func (i *inode) Link(_ context.Context, name string, child vfs.Inode, rename bool) error {
	c, ok := child.(*inode)
	if !ok || c.fs != i.fs {
		return unix.EXDEV
	}
	if i.dir == nil {
		return unix.ENOTDIR
	}
	if !rename && c.nlink >= 0xffff_fffe {
		return unix.EMLINK
	}
	i.linkChild(name, c, rename)
	return nil
}

// Unlink implements vfs.Inode.
func (i *inode) Unlink(_ context.Context, name string, child vfs.Inode, rename bool) error {
	c := child.(*inode)
	if i.dir == nil {
		return unix.ENOTDIR
	}
	i.mu.Lock()
	i.dir.remove(name)
	if c.isDir() {
		i.nlink--
	}
	i.touchLocked(false, true, true)
	i.mu.Unlock()
	c.mu.Lock()
	if !rename {
		if c.dir != nil {
			c.nlink = 0 // its name and its "." both go
		} else {
			c.nlink--
		}
	}
	c.touchLocked(false, false, true)
	c.mu.Unlock()
	return nil
}

// IterDirents implements vfs.Inode.
func (i *inode) IterDirents(_ context.Context, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	if i.dir == nil {
		return offset, unix.ENOTDIR
	}
	i.mu.Lock()
	removed := i.nlink == 0
	i.mu.Unlock()
	if removed {
		// A removed directory lists nothing, not even "." and "..".
		return offset, nil
	}
	if !vfs.IterDots(&offset, i.ino, parentIno, firstCookie, cb) {
		return offset, nil
	}
	// Copy one entry at a time under the lock and call cb without it, so
	// that cb may take other locks (copy to user memory).
	for {
		i.mu.Lock()
		es := i.dir.entries
		k := sort.Search(len(es), func(j int) bool { return es[j].cookie >= offset })
		if k == len(es) {
			i.touchLocked(true, false, false)
			i.mu.Unlock()
			return offset, nil
		}
		e := es[k]
		d := vfs.Dirent{Name: e.name, Ino: e.child.ino, Type: vfs.DirentType(e.child.mode.Load()), NextOff: e.cookie + 1}
		i.mu.Unlock()
		if !cb(d) {
			return offset, nil
		}
		offset = d.NextOff
	}
}
