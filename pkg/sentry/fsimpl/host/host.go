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

	// nonblock remembers, per host file imported, whether it was
	// O_NONBLOCK before its first import made it so: stdio descriptors
	// often share one open file description (a terminal's 0, 1 and 2),
	// and the second import must not take the Sentry's O_NONBLOCK for
	// the application's.
	nonblockMu sync.Mutex
	nonblock   map[[2]uint64]int
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
	hostFlags = fs.originalNonblock(st, hostFlags)
	flags := opts.Flags
	if flags == 0 {
		flags = uint32(hostFlags) & (unix.O_ACCMODE | unix.O_APPEND | unix.O_NONBLOCK)
	}
	if err := unix.SetNonblock(hostFD, true); err != nil {
		return nil, fmt.Errorf("host: making fd %d non-blocking: %w", hostFD, err)
	}
	ino := &inode{hostFD: hostFD, mode: st.Mode, jc: opts.JobControl, live: []int{hostFD}}
	f, err := ino.newFile(hostFD)
	if err != nil {
		return nil, err
	}
	d := fs.vfsfs.NewDentry(ino)
	vd := vfs.MakeVirtualDentry(fs.mount, d)
	return vfs.NewFileDescription(f, flags, vd), nil
}

// originalNonblock returns hostFlags with O_NONBLOCK as it was before the
// file's first import.
func (fs *Filesystem) originalNonblock(st unix.Stat_t, hostFlags int) int {
	key := [2]uint64{st.Dev, st.Ino}
	fs.nonblockMu.Lock()
	defer fs.nonblockMu.Unlock()
	if fs.nonblock == nil {
		fs.nonblock = make(map[[2]uint64]int)
	}
	orig, seen := fs.nonblock[key]
	if !seen {
		fs.nonblock[key] = hostFlags & unix.O_NONBLOCK
		return hostFlags
	}
	return hostFlags&^unix.O_NONBLOCK | orig
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// newFile makes the file implementation over host descriptor fd (the
// imported one or a reopening's dup).
func (i *inode) newFile(fd int) (*file, error) {
	f := &file{inode: i, hostFD: fd, jc: i.jc}
	f.isTTY = isTerminal(fd)
	f.seekable = i.mode&unix.S_IFMT == unix.S_IFREG || i.mode&unix.S_IFMT == unix.S_IFBLK
	if err := hostNotifier.add(int32(fd), &f.queue); err == nil {
		f.watched = true
	} else if err != unix.EPERM {
		return nil, fmt.Errorf("host: watching fd %d: %w", fd, err)
	}
	return f, nil
}

// inode describes a host file by its host descriptors: the imported one
// and the dups made by reopenings (open of /proc/self/fd/N).
type inode struct {
	vfs.InodeDefaults
	mode uint32
	jc   JobControl

	mu sync.Mutex
	// hostFD is one of live, used for metadata; -1 once every file is
	// closed (and for the filesystem root).
	hostFD int
	// live are the host descriptors of the files still open.
	live []int
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
	if i.hostFD < 0 {
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
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.hostFD < 0 {
		return vfs.Statfs{}, unix.EBADF
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(i.hostFD, &st); err != nil {
		return vfs.Statfs{}, err
	}
	return st, nil
}

// Open implements vfs.Inode: reopening an imported file through
// /proc/[pid]/fd/N (or /dev/stdin…). Linux makes a new open file
// description of the same file with the requested access; the Sentry has
// no path to the host file, so the new file is a dup of the host
// descriptor. It differs from Linux in that (1) the host open file
// description, hence its status flags and (for streams) its position, is
// shared with the original; a regular file's reopening keeps its own
// offset in the Sentry, as Linux's would; (2) the access asked for must be
// one the host descriptor has (EACCES otherwise), where Linux checks only
// the file's permissions: a read-only stdin cannot be reopened for writing;
// (3) a regular file whose host descriptor has O_APPEND is appended to
// by every reopening (pwrite(2) on such a descriptor appends), and
// F_SETFL of O_APPEND on a reopening does not change where it writes.
func (i *inode) Open(_ context.Context, _ vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.hostFD < 0 {
		return nil, unix.ENXIO
	}
	hostFlags, err := unix.FcntlInt(uintptr(i.hostFD), unix.F_GETFL, 0)
	if err != nil {
		return nil, err
	}
	if !hostAccessAllows(uint32(hostFlags), flags) {
		return nil, unix.EACCES
	}
	fd, err := unix.FcntlInt(uintptr(i.hostFD), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f, err := i.newFile(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	f.ownOffset = f.seekable
	f.appendMode = flags&unix.O_APPEND != 0
	i.live = append(i.live, fd)
	return f, nil
}

// hostAccessAllows reports whether a host descriptor opened with
// hostFlags can serve an open with flags.
func hostAccessAllows(hostFlags, flags uint32) bool {
	hostRead := hostFlags&unix.O_ACCMODE != unix.O_WRONLY
	hostWrite := hostFlags&unix.O_ACCMODE != unix.O_RDONLY
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		return hostRead
	case unix.O_WRONLY:
		return hostWrite
	default:
		return hostRead && hostWrite
	}
}

// SetStat implements vfs.Inode: only truncation (open with O_TRUNC,
// truncate(2) of /proc/self/fd/N) reaches the host; the Sentry does not
// change a host file's owner, mode or times.
func (i *inode) SetStat(_ context.Context, opts *vfs.SetStatOptions) error {
	if opts.Mask&^unix.STATX_SIZE != 0 {
		return unix.EPERM
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.hostFD < 0 {
		return unix.EBADF
	}
	if i.mode&unix.S_IFMT != unix.S_IFREG {
		return unix.EINVAL
	}
	return unix.Ftruncate(i.hostFD, int64(opts.Size))
}

// release closes the host descriptor of a file being released; metadata
// then comes from another open one, if any.
func (i *inode) release(fd int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for k, l := range i.live {
		if l == fd {
			i.live = append(i.live[:k], i.live[k+1:]...)
			break
		}
	}
	if i.hostFD == fd {
		i.hostFD = -1
		if len(i.live) > 0 {
			i.hostFD = i.live[0]
		}
	}
	_ = unix.Close(fd)
}
