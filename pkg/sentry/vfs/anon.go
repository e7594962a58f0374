package vfs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// anonFS holds anonymous files (eventfd, epoll, timerfd, signalfd): each
// gets its own unlinked dentry in a filesystem that is mounted nowhere.
type anonFS struct {
	once  sync.Once
	fs    *Filesystem
	mount *Mount
	ino   atomic.Uint64
}

type anonFSImpl struct{}

func (anonFSImpl) Release(context.Context) {}

// anonInode is the inode of an anonymous file: mode 0600 without a file
// type, owned by root, as Linux's anon_inode shows in fstat.
type anonInode struct {
	InodeDefaults
	ino  uint64
	born unix.StatxTimestamp
}

func (*anonInode) IncRef()                     {}
func (*anonInode) DecRef(context.Context)      {}
func (*anonInode) Mode() uint32                { return 0o600 }
func (*anonInode) Owner() (auth.UID, auth.GID) { return auth.RootUID, auth.RootGID }
func (*anonInode) Open(context.Context, VirtualDentry, uint32) (FileDescriptionImpl, error) {
	return nil, unix.ENXIO
}

func (i *anonInode) Stat(context.Context, uint32) (Statx, error) {
	return Statx{Mask: unix.STATX_BASIC_STATS, Blksize: 4096, Nlink: 1, Mode: 0o600, Ino: i.ino,
		Atime: i.born, Mtime: i.born, Ctime: i.born}, nil
}

func (i *anonInode) StatFS(context.Context) (Statfs, error) {
	return Statfs{Type: 0x09041934 /* ANON_INODE_FS_MAGIC */, Bsize: 4096, Frsize: 4096, Namelen: 255}, nil
}

// NewAnonVirtualDentry returns a new anonymous file's VirtualDentry, with
// a reference, for files that have no path (eventfd, epoll …). name is
// informational ("[eventfd]").
func (vfs *VirtualFilesystem) NewAnonVirtualDentry(name string) VirtualDentry {
	a := &vfs.anon
	a.once.Do(func() {
		a.fs = vfs.NewFilesystem(anonFSImpl{})
		root := a.fs.NewDentry(&anonInode{ino: a.ino.Add(1)})
		root.IncRef()
		a.mount = vfs.NewDisconnectedMount(a.fs, root)
	})
	now := time.Now()
	d := a.fs.NewDentry(&anonInode{ino: a.ino.Add(1), born: unix.StatxTimestamp{Sec: now.Unix(), Nsec: uint32(now.Nanosecond())}})
	d.name = name
	vd := VirtualDentry{a.mount, d}
	vd.IncRef()
	return vd
}
