package kernel

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Namespace files (nsfs): what /proc/[pid]/ns/pid and pid_for_children
// open, so that a descriptor can name a PID namespace to setns(2). Each
// namespace has one dentry, made on first use, in a filesystem mounted
// nowhere; it lives as long as the kernel.

// nsfsMagic is NSFS_MAGIC (statfs f_type).
const nsfsMagic = 0x6e736673

type nsfs struct {
	once  sync.Once
	fs    *vfs.Filesystem
	mount *vfs.Mount
}

type nsfsImpl struct{}

// Release implements vfs.FilesystemImpl.
func (nsfsImpl) Release(context.Context) {}

// pidNSInode is a PID namespace's file: read-only and empty, its inode
// number the namespace's.
type pidNSInode struct {
	vfs.InodeDefaults
	ns *PIDNamespace
}

func (*pidNSInode) IncRef()                     {}
func (*pidNSInode) DecRef(context.Context)      {}
func (*pidNSInode) Mode() uint32                { return unix.S_IFREG | 0o444 }
func (*pidNSInode) Owner() (auth.UID, auth.GID) { return auth.RootUID, auth.RootGID }

// Stat implements vfs.Inode.
func (i *pidNSInode) Stat(context.Context, uint32) (vfs.Statx, error) {
	return vfs.Statx{Mask: unix.STATX_BASIC_STATS, Blksize: 4096, Nlink: 1, Mode: unix.S_IFREG | 0o444, Ino: i.ns.ino}, nil
}

// StatFS implements vfs.Inode.
func (*pidNSInode) StatFS(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: nsfsMagic, Bsize: 4096, Frsize: 4096, Namelen: 255}, nil
}

// Open implements vfs.Inode.
func (*pidNSInode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return &nsFile{}, nil
}

// nsFile is an open namespace file: it can only be passed to setns.
type nsFile struct{ vfs.FileDescriptionDefaults }

// VirtualDentry returns the namespace's file, with a reference (the
// target of /proc/[pid]/ns/pid).
func (ns *PIDNamespace) VirtualDentry() vfs.VirtualDentry {
	k := ns.k
	k.nsfs.once.Do(func() {
		k.nsfs.fs = k.vfs.NewFilesystem(nsfsImpl{})
		root := k.nsfs.fs.NewDentry(&pidNSInode{ns: k.rootPIDNS})
		root.IncRef()
		k.nsfs.mount = k.vfs.NewDisconnectedMount(k.nsfs.fs, root)
	})
	ns.dentryOnce.Do(func() {
		ns.dentry = k.nsfs.fs.NewDentry(&pidNSInode{ns: ns})
		// The namespace keeps its dentry for good.
		ns.dentry.IncRef()
	})
	vd := vfs.MakeVirtualDentry(k.nsfs.mount, ns.dentry)
	vd.IncRef()
	return vd
}

// PIDNamespaceOfFile returns the PID namespace whose file fd is open on.
func PIDNamespaceOfFile(fd *vfs.FileDescription) (*PIDNamespace, bool) {
	d := fd.VirtualDentry().Dentry()
	if d == nil {
		return nil, false
	}
	i, ok := d.Inode().(*pidNSInode)
	if !ok {
		return nil, false
	}
	return i.ns, true
}
