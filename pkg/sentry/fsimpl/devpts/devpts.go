// Package devpts owns the pseudo-terminal filesystem (pts(4)): /dev/pts
// with its ptmx node and one node per pty, each pty a master/replica pair
// joined by a line discipline (canonical and raw input, echo, erase and
// kill editing, ISIG characters reported to the kernel through Hooks,
// termios and window size ioctls, TIOCGPTN/TIOCSPTLCK).
package devpts

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name.
const Name = "devpts"

// devptsMagic is DEVPTS_SUPER_MAGIC.
const devptsMagic = 0x1cd1

// Device numbers: ptmx is 5:2, replicas are major 136 (UNIX98_PTY_SLAVE_MAJOR).
const (
	ptmxMajor, ptmxMinor = 5, 2
	replicaMajor         = 136
)

// maxPTYs bounds the pty numbers of one instance (/proc/sys/kernel/pty/max).
const maxPTYs = 4096

// Options is passed as GetFilesystemOptions.InternalData.
type Options struct {
	// Hooks are given to every new terminal (nil: signals are dropped and
	// the foreground group is kept in the terminal).
	Hooks Hooks
}

// vfsHooks holds, per VirtualFilesystem, the hooks of devpts mounts made
// without Options (the spec's /dev/pts, a mount(2) from the sandbox).
var vfsHooks sync.Map // *vfs.VirtualFilesystem -> Hooks

// SetDefaultHooks gives h to the devpts mounts of v that name no hooks;
// the kernel of v calls it when it is made.
func SetDefaultHooks(v *vfs.VirtualFilesystem, h Hooks) { vfsHooks.Store(v, h) }

// FilesystemType implements vfs.FilesystemType. Every mount is a new
// instance with its own numbering (newinstance).
type FilesystemType struct{}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

type filesystem struct {
	vfsfs *vfs.Filesystem
	hooks Hooks
	born  unix.StatxTimestamp
	opts  mountOptions

	mu   sync.Mutex
	ptys map[uint32]*Terminal
}

// Release implements vfs.FilesystemImpl.
func (fs *filesystem) Release(context.Context) {}

// GetFilesystem implements vfs.FilesystemType.
func (FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	mo, err := parseMountOptions(opts.Data)
	if err != nil {
		return nil, nil, err
	}
	fs := &filesystem{ptys: make(map[uint32]*Terminal), opts: mo}
	if o, ok := opts.InternalData.(*Options); ok && o != nil {
		fs.hooks = o.Hooks
	}
	if fs.hooks == nil {
		if h, ok := vfsHooks.Load(v); ok {
			fs.hooks = h.(Hooks)
		}
	}
	now := time.Now()
	fs.born = unix.StatxTimestamp{Sec: now.Unix(), Nsec: uint32(now.Nanosecond())}
	fs.vfsfs = v.NewFilesystem(fs)
	d := fs.vfsfs.NewDentry(&rootInode{baseInode{fs: fs}})
	d.IncRef()
	return fs.vfsfs, d, nil
}

// mountOptions are devpts' mount options (the kernel's devpts
// documentation): the owner and mode its new ptys get, ptmx's mode and
// the instance's pty limit.
type mountOptions struct {
	// uid and gid, when set, own every new pty; otherwise the opener of
	// ptmx does (its filesystem uid and gid), as grantpt(3) expects.
	uid    auth.UID
	gid    auth.GID
	setUID bool
	setGID bool
	// mode is the permission of new ptys (default 0600), ptmxMode that of
	// /dev/pts/ptmx. Linux defaults ptmxmode to 0000; here it is 0666,
	// what container runtimes mount with, because the sandbox's
	// /dev/ptmx is a symlink to it.
	mode, ptmxMode uint32
	max            uint32
}

// parseMountOptions reads devpts' mount data: uid=, gid=, mode=,
// ptmxmode= (octal), max= and newinstance (every mount is one here).
// Anything else is EINVAL, as on Linux.
func parseMountOptions(data string) (mountOptions, error) {
	mo := mountOptions{mode: 0o600, ptmxMode: 0o666, max: maxPTYs}
	for _, o := range strings.Split(data, ",") {
		if o == "" || o == "newinstance" {
			continue
		}
		k, val, hasVal := strings.Cut(o, "=")
		bad := func() error { return fmt.Errorf("devpts: bad option %q: %w", o, unix.EINVAL) }
		if !hasVal {
			return mo, bad()
		}
		switch k {
		case "uid", "gid", "max":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return mo, bad()
			}
			switch k {
			case "uid":
				mo.uid, mo.setUID = auth.UID(n), true
			case "gid":
				mo.gid, mo.setGID = auth.GID(n), true
			default:
				mo.max = uint32(min(n, maxPTYs))
			}
		case "mode", "ptmxmode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mo, bad()
			}
			// Only permission bits count (S_IALLUGO).
			if k == "mode" {
				mo.mode = uint32(m) & 0o7777
			} else {
				mo.ptmxMode = uint32(m) & 0o7777
			}
		default:
			return mo, bad()
		}
	}
	return mo, nil
}

// MountData keeps, of an OCI mount's options, those devpts reads, as the
// mount's data string.
func MountData(options []string) string {
	var keep []string
	for _, o := range options {
		k, _, _ := strings.Cut(o, "=")
		switch k {
		case "uid", "gid", "mode", "ptmxmode", "max", "newinstance":
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ",")
}

// newTerminal allocates the lowest free pty number, owned as the mount
// options say or by creds (the opener of ptmx).
func (fs *filesystem) newTerminal(creds *auth.Credentials) (*Terminal, error) {
	uid, gid := auth.RootUID, auth.RootGID
	if creds != nil {
		uid, gid = creds.FilesystemUID, creds.FilesystemGID
	}
	if fs.opts.setUID {
		uid = fs.opts.uid
	}
	if fs.opts.setGID {
		gid = fs.opts.gid
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := uint32(0); i < fs.opts.max; i++ {
		if _, used := fs.ptys[i]; !used {
			t := newTerminal(fs, i, fs.hooks)
			t.uid, t.gid, t.mode = uid, gid, fs.opts.mode
			fs.ptys[i] = t
			return t, nil
		}
	}
	return nil, unix.ENOSPC
}

func (fs *filesystem) release(t *Terminal) {
	fs.mu.Lock()
	if fs.ptys[t.index] == t {
		delete(fs.ptys, t.index)
	}
	fs.mu.Unlock()
}

func (fs *filesystem) lookup(index uint32) *Terminal {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.ptys[index]
}

// baseInode has what devpts inodes share.
type baseInode struct {
	vfs.InodeDefaults
	fs *filesystem
}

func (baseInode) IncRef()                {}
func (baseInode) DecRef(context.Context) {}

func (b baseInode) StatFS(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: devptsMagic, Bsize: 4096, Frsize: 4096, Namelen: 255}, nil
}

func (b baseInode) Owner() (auth.UID, auth.GID) { return auth.RootUID, auth.RootGID }

func (b baseInode) stat(ino uint64, mode uint32, major, minor uint32) vfs.Statx {
	return vfs.Statx{Mask: unix.STATX_BASIC_STATS, Blksize: 1024, Nlink: 1, Mode: uint16(mode), Ino: ino,
		Rdev_major: major, Rdev_minor: minor, Atime: b.fs.born, Mtime: b.fs.born, Ctime: b.fs.born}
}

// rootInode is /dev/pts: ptmx and the numbers of live ptys.
type rootInode struct{ baseInode }

func (r *rootInode) Mode() uint32 { return unix.S_IFDIR | 0o755 }

func (r *rootInode) Stat(context.Context, uint32) (vfs.Statx, error) {
	st := r.stat(1, r.Mode(), 0, 0)
	st.Nlink = 2
	return st, nil
}

func (r *rootInode) Open(ctx context.Context, vd vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	return &dirFile{fs: r.fs, vd: vd}, nil
}

// Lookup implements vfs.Inode. A pts inode names a number, not a
// terminal: the vfs may keep it after the pty goes and the number is
// reused.
func (r *rootInode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if name == "ptmx" {
		return &ptmxInode{baseInode{fs: r.fs}}, nil
	}
	n, err := strconv.ParseUint(name, 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != name || r.fs.lookup(uint32(n)) == nil {
		return nil, unix.ENOENT
	}
	return &replicaInode{baseInode{fs: r.fs}, uint32(n)}, nil
}

func (r *rootInode) IterDirents(_ context.Context, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	ents := []vfs.Dirent{{Name: ".", Ino: 1, Type: unix.DT_DIR}, {Name: "..", Ino: parentIno, Type: unix.DT_DIR}, {Name: "ptmx", Ino: 2, Type: unix.DT_CHR}}
	r.fs.mu.Lock()
	var idx []uint32
	for i := range r.fs.ptys {
		idx = append(idx, i)
	}
	r.fs.mu.Unlock()
	slices.Sort(idx)
	for _, i := range idx {
		// Offsets of pty entries are their number + 3: stable however
		// others come and go.
		ents = append(ents, vfs.Dirent{Name: strconv.FormatUint(uint64(i), 10), Ino: uint64(i) + 3, Type: unix.DT_CHR})
	}
	for _, d := range ents {
		off := int64(d.Ino)
		if d.Name == "." {
			off = 0
		} else if d.Name == ".." {
			off = 1
		}
		if off < offset {
			continue
		}
		d.NextOff = off + 1
		if !cb(d) {
			return off, nil
		}
		offset = off + 1
	}
	return offset, nil
}

func (r *rootInode) StatFS(ctx context.Context) (vfs.Statfs, error) { return r.baseInode.StatFS(ctx) }

type dirFile struct {
	vfs.FileDescriptionDefaults
	fs  *filesystem
	vd  vfs.VirtualDentry
	mu  sync.Mutex
	off int64
}

func (f *dirFile) IterDirents(ctx context.Context, fd *vfs.FileDescription, cb func(vfs.Dirent) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, err := fd.Inode().IterDirents(ctx, f.off, vfs.ParentIno(ctx, fd.VirtualDentry()), cb)
	f.off = off
	return err
}

// ptmxInode opens a new pty's master.
type ptmxInode struct{ baseInode }

func (p *ptmxInode) Mode() uint32 { return unix.S_IFCHR | p.fs.opts.ptmxMode }

func (p *ptmxInode) Stat(context.Context, uint32) (vfs.Statx, error) {
	return p.stat(2, p.Mode(), ptmxMajor, ptmxMinor), nil
}

func (p *ptmxInode) Open(ctx context.Context, _ vfs.VirtualDentry, _ uint32) (vfs.FileDescriptionImpl, error) {
	t, err := p.fs.newTerminal(auth.CredentialsFromContext(ctx))
	if err != nil {
		return nil, err
	}
	return &end{t: t, master: true}, nil
}

// replicaInode is /dev/pts/N.
type replicaInode struct {
	baseInode
	index uint32
}

// Mode implements vfs.Inode: the pty's, which chmod changes.
func (r *replicaInode) Mode() uint32 {
	if t := r.fs.lookup(r.index); t != nil {
		_, _, mode := t.owner()
		return unix.S_IFCHR | mode
	}
	return unix.S_IFCHR
}

// Owner implements vfs.Inode: the pty's owner, which chown changes.
func (r *replicaInode) Owner() (auth.UID, auth.GID) {
	if t := r.fs.lookup(r.index); t != nil {
		uid, gid, _ := t.owner()
		return uid, gid
	}
	return auth.RootUID, auth.RootGID
}

func (r *replicaInode) Stat(context.Context, uint32) (vfs.Statx, error) {
	t := r.fs.lookup(r.index)
	if t == nil {
		return vfs.Statx{}, unix.ENOENT
	}
	uid, gid, mode := t.owner()
	st := r.stat(uint64(r.index)+3, unix.S_IFCHR|mode, replicaMajor, r.index)
	st.Uid, st.Gid = uint32(uid), uint32(gid)
	return st, nil
}

// SetStat implements vfs.Inode: chmod and chown of the pty (the vfs has
// checked the caller's right); times are accepted and not kept.
func (r *replicaInode) SetStat(_ context.Context, opts *vfs.SetStatOptions) error {
	t := r.fs.lookup(r.index)
	if t == nil {
		return unix.ENOENT
	}
	if opts.Mask&unix.STATX_SIZE != 0 {
		return unix.EINVAL
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if opts.Mask&unix.STATX_MODE != 0 {
		t.mode = opts.Mode & 0o7777
	}
	if opts.Mask&unix.STATX_UID != 0 {
		t.uid = opts.UID
	}
	if opts.Mask&unix.STATX_GID != 0 {
		t.gid = opts.GID
	}
	return nil
}

// Open implements vfs.Inode: EIO while the master keeps the pty locked.
// Without O_NOCTTY a session leader may acquire it as its controlling
// terminal (SessionHooks.Opened).
func (r *replicaInode) Open(ctx context.Context, _ vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	t := r.fs.lookup(r.index)
	if t == nil {
		return nil, unix.ENOENT
	}
	t.mu.Lock()
	if t.locked || !t.masterOpen {
		t.mu.Unlock()
		return nil, unix.EIO
	}
	t.replicaOpens++
	t.hadReplica = true
	t.mu.Unlock()
	if flags&unix.O_NOCTTY == 0 {
		if sh := t.sessionHooks(); sh != nil {
			sh.Opened(ctx, t)
		}
	}
	return &end{t: t}, nil
}

// ptmxDevice opens masters of one devpts instance through a /dev/ptmx
// device node of another filesystem (devtmpfs, tmpfs).
type ptmxDevice struct{ fs *filesystem }

// Open implements vfs.Device.
func (d ptmxDevice) Open(ctx context.Context, vd vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	return (&ptmxInode{baseInode{fs: d.fs}}).Open(ctx, vd, flags)
}

// PtmxDevice returns the driver for character device 5:2 (/dev/ptmx)
// that allocates ptys in the devpts instance fs, for
// VirtualFilesystem.RegisterDevice. EINVAL if fs is not a devpts.
func PtmxDevice(fs *vfs.Filesystem) (vfs.Device, error) {
	d, ok := fs.Impl().(*filesystem)
	if !ok {
		return nil, unix.EINVAL
	}
	return ptmxDevice{d}, nil
}

// Device numbers of /dev/ptmx, for registering PtmxDevice.
const (
	PtmxMajor = ptmxMajor
	PtmxMinor = ptmxMinor
)

// OpenReplica opens t's replica end for whoever opens a name for it other
// than /dev/pts/N (the kernel's /dev/tty, the caller's controlling
// terminal): EIO once the master is gone, as for the replica itself.
func OpenReplica(t *Terminal) (vfs.FileDescriptionImpl, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.masterOpen {
		return nil, unix.EIO
	}
	t.replicaOpens++
	t.hadReplica = true
	return &end{t: t}, nil
}
