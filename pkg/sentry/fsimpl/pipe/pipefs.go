package pipe

import (
	"context"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// pipefsMagic is PIPEFS_MAGIC (statfs f_type).
const pipefsMagic = 0x50495045

// Filesystem holds anonymous pipes (pipe(2)); one per VirtualFilesystem.
type Filesystem struct {
	fs    *vfs.Filesystem
	mount *vfs.Mount
	root  *vfs.Dentry
	ino   atomic.Uint64
}

type fsImpl struct{}

func (fsImpl) Release(context.Context) {}

// NewFilesystem creates the anonymous pipe filesystem.
func NewFilesystem(v *vfs.VirtualFilesystem) *Filesystem {
	p := &Filesystem{}
	p.fs = v.NewFilesystem(fsImpl{})
	p.root = p.fs.NewDentry(p.newInode(unix.S_IFDIR|0o700, auth.RootUID, auth.RootGID, nil))
	p.root.IncRef()
	p.mount = v.NewDisconnectedMount(p.fs, p.root)
	return p
}

// NewPipe returns the read and write ends of a new pipe; flags may hold
// O_NONBLOCK and O_DIRECT (pipe2(2)), applied to both ends.
func (p *Filesystem) NewPipe(ctx context.Context, creds *auth.Credentials, flags uint32) (r, w *vfs.FileDescription, err error) {
	if flags&^uint32(unix.O_NONBLOCK|unix.O_DIRECT|unix.O_CLOEXEC) != 0 {
		return nil, nil, unix.EINVAL
	}
	pp := NewPipe()
	d := p.fs.NewDentry(p.newInode(unix.S_IFIFO|0o600, creds.EffectiveUID, creds.EffectiveGID, pp))
	vd := vfs.MakeVirtualDentry(p.mount, d)
	flags &^= unix.O_CLOEXEC
	r = vfs.NewFileDescription(pp.newEnd(true, false), flags|unix.O_RDONLY, vd)
	w = vfs.NewFileDescription(pp.newEnd(false, true), flags|unix.O_WRONLY, vd)
	return r, w, nil
}

// inode is an anonymous pipe's inode.
type inode struct {
	vfs.InodeDefaults
	ino     uint64
	mode    uint32
	uid     auth.UID
	gid     auth.GID
	created unix.StatxTimestamp
	pipe    *Pipe
	refs    atomic.Int64
}

func (p *Filesystem) newInode(mode uint32, uid auth.UID, gid auth.GID, pp *Pipe) *inode {
	now := time.Now()
	i := &inode{ino: p.ino.Add(1), mode: mode, uid: uid, gid: gid, pipe: pp,
		created: unix.StatxTimestamp{Sec: now.Unix(), Nsec: uint32(now.Nanosecond())}}
	i.refs.Store(1)
	return i
}

func (i *inode) IncRef()                     { i.refs.Add(1) }
func (i *inode) DecRef(context.Context)      { i.refs.Add(-1) }
func (i *inode) Mode() uint32                { return i.mode }
func (i *inode) Owner() (auth.UID, auth.GID) { return i.uid, i.gid }

// Stat implements vfs.Inode.
func (i *inode) Stat(context.Context, uint32) (vfs.Statx, error) {
	return vfs.Statx{
		Mask:    unix.STATX_BASIC_STATS,
		Blksize: 4096,
		Nlink:   1,
		Uid:     uint32(i.uid),
		Gid:     uint32(i.gid),
		Mode:    uint16(i.mode),
		Ino:     i.ino,
		Atime:   i.created, Mtime: i.created, Ctime: i.created,
	}, nil
}

// Open implements vfs.Inode: /proc/[pid]/fd/N reopening of a pipe, which
// does not wait for a peer (see OpenAnonymous).
func (i *inode) Open(ctx context.Context, _ vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	if i.pipe == nil {
		return nil, unix.EISDIR
	}
	return i.pipe.OpenAnonymous(flags)
}

// StatFS implements vfs.Inode.
func (i *inode) StatFS(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: pipefsMagic, Bsize: 4096, Namelen: 255, Frsize: 4096}, nil
}
