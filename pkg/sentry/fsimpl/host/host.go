// Package host owns files the Sentry imports from the host: the stdio
// descriptors the runtime hands in (pipes, regular files, /dev/null,
// terminals). Each becomes a vfs.FileDescription whose I/O is done with the
// host's system calls on the host descriptor, set non-blocking so that the
// Sentry never blocks in the host: an empty pipe reads EAGAIN and a host
// epoll notifier wakes waiters (the VFS convention). Terminal ioctls pass
// through to the host terminal, except the foreground process group, which
// is the sandbox kernel's business (see JobControl).
package host

import (
	"context"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Filesystem holds the imported files of one VirtualFilesystem: they live
// on a mount that is in no namespace (they have no path).
type Filesystem struct {
	vfsfs *vfs.Filesystem
	mount *vfs.Mount
}

type fsImpl struct{}

func (fsImpl) Release(context.Context) {}

// NewFilesystem returns the filesystem imported files of v live on.
func NewFilesystem(v *vfs.VirtualFilesystem) *Filesystem {
	fs := &Filesystem{vfsfs: v.NewFilesystem(fsImpl{})}
	root := fs.vfsfs.NewDentry(&inode{hostFD: -1, mode: unix.S_IFDIR | 0o555})
	root.IncRef()
	fs.mount = v.NewDisconnectedMount(fs.vfsfs, root)
	return fs
}

// Release drops the filesystem; files still open keep it alive.
func (fs *Filesystem) Release(ctx context.Context) { fs.mount.DecRef(ctx) }

// ImportOptions modify ImportFD.
type ImportOptions struct {
	// Flags are the status flags the file shows (O_ACCMODE, O_APPEND…);
	// zero means those of the host descriptor.
	Flags uint32
	// JobControl answers TIOCGPGRP/TIOCSPGRP for a terminal; nil keeps
	// the foreground group in the file itself.
	JobControl JobControl
}

// ImportFD makes hostFD a file of the sandbox. The file owns hostFD from
// then on (closing it with its last reference), and hostFD is made
// non-blocking.
func (fs *Filesystem) ImportFD(ctx context.Context, hostFD int, opts ImportOptions) (*vfs.FileDescription, error) {
	var st unix.Stat_t
	if err := unix.Fstat(hostFD, &st); err != nil {
		return nil, fmt.Errorf("host: fstat of fd %d: %w", hostFD, err)
	}
	hostFlags, err := unix.FcntlInt(uintptr(hostFD), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Errorf("host: F_GETFL of fd %d: %w", hostFD, err)
	}
	flags := opts.Flags
	if flags == 0 {
		flags = uint32(hostFlags) & (unix.O_ACCMODE | unix.O_APPEND | unix.O_NONBLOCK)
	}
	if err := unix.SetNonblock(hostFD, true); err != nil {
		return nil, fmt.Errorf("host: making fd %d non-blocking: %w", hostFD, err)
	}
	ino := &inode{hostFD: hostFD, mode: st.Mode}
	f := &file{inode: ino, hostFD: hostFD, jc: opts.JobControl}
	f.isTTY = isTerminal(hostFD)
	f.seekable = st.Mode&unix.S_IFMT == unix.S_IFREG || st.Mode&unix.S_IFMT == unix.S_IFBLK
	if err := hostNotifier.add(int32(hostFD), &f.queue); err == nil {
		f.watched = true
	} else if err != unix.EPERM {
		return nil, fmt.Errorf("host: watching fd %d: %w", hostFD, err)
	}
	d := fs.vfsfs.NewDentry(ino)
	vd := vfs.MakeVirtualDentry(fs.mount, d)
	return vfs.NewFileDescription(f, flags, vd), nil
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// inode describes a host file by its host descriptor.
type inode struct {
	vfs.InodeDefaults
	hostFD int
	mode   uint32

	mu     sync.Mutex
	closed bool
}

func (*inode) IncRef()                {}
func (*inode) DecRef(context.Context) {}

// Mode implements vfs.Inode: the type and permissions at import.
func (i *inode) Mode() uint32 { return i.mode }

// Owner implements vfs.Inode.
func (i *inode) Owner() (auth.UID, auth.GID) {
	st, err := i.Stat(context.Background(), unix.STATX_UID|unix.STATX_GID)
	if err != nil {
		return auth.RootUID, auth.RootGID
	}
	return auth.UID(st.Uid), auth.GID(st.Gid)
}

// Stat implements vfs.Inode: what the host reports, ownership included.
func (i *inode) Stat(_ context.Context, mask uint32) (vfs.Statx, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.hostFD < 0 {
		return vfs.Statx{Mode: uint16(i.mode), Nlink: 1, Mask: unix.STATX_TYPE | unix.STATX_MODE}, nil
	}
	var st vfs.Statx
	if err := unix.Statx(i.hostFD, "", unix.AT_EMPTY_PATH, int(mask|unix.STATX_BASIC_STATS), &st); err != nil {
		return vfs.Statx{}, err
	}
	return st, nil
}

// StatFS implements vfs.Inode.
func (i *inode) StatFS(context.Context) (vfs.Statfs, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(i.hostFD, &st); err != nil {
		return vfs.Statfs{}, err
	}
	return st, nil
}

// Open implements vfs.Inode: imported files have no path to open.
func (*inode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return nil, unix.ENXIO
}

func (i *inode) markClosed() {
	i.mu.Lock()
	i.closed = true
	i.mu.Unlock()
}
