package vfs

import (
	"context"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// ReadOptions modify a read (preadv2 flags).
type ReadOptions struct{ Flags uint32 }

// WriteOptions modify a write (pwritev2 flags).
type WriteOptions struct{ Flags uint32 }

// StatOptions are statx(2)'s mask and sync flags.
type StatOptions struct {
	Mask uint32
	Sync uint32
}

// FileDescriptionImpl is what a filesystem implements for an open file.
// Read and Write use and advance the file's own offset where it has one;
// PRead/PWrite take an explicit offset (ESPIPE where that makes no sense).
// Operations never block: they return EAGAIN and the caller waits through
// the waiter.Waitable methods.
type FileDescriptionImpl interface {
	Release(ctx context.Context)
	Read(ctx context.Context, fd *FileDescription, dst usermem.IOSequence, opts ReadOptions) (int64, error)
	PRead(ctx context.Context, fd *FileDescription, dst usermem.IOSequence, offset int64, opts ReadOptions) (int64, error)
	Write(ctx context.Context, fd *FileDescription, src usermem.IOSequence, opts WriteOptions) (int64, error)
	PWrite(ctx context.Context, fd *FileDescription, src usermem.IOSequence, offset int64, opts WriteOptions) (int64, error)
	Seek(ctx context.Context, fd *FileDescription, offset int64, whence int32) (int64, error)
	IterDirents(ctx context.Context, fd *FileDescription, cb func(Dirent) bool) error
	Ioctl(ctx context.Context, fd *FileDescription, io usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error)
	// ConfigureMMap sets opts.Mappable (and MappingIdentity) for mmap(2).
	ConfigureMMap(ctx context.Context, fd *FileDescription, opts *memmap.MMapOpts) error
	Sync(ctx context.Context) error
	Allocate(ctx context.Context, mode, offset, length uint64) error
	waiter.Waitable
}

// FileDescriptionDefaults gives the answers of a file that supports none of
// the optional operations; embed it and override.
type FileDescriptionDefaults struct{}

// Release implements FileDescriptionImpl.
func (FileDescriptionDefaults) Release(context.Context) {}

// Read implements FileDescriptionImpl.
func (FileDescriptionDefaults) Read(context.Context, *FileDescription, usermem.IOSequence, ReadOptions) (int64, error) {
	return 0, unix.EINVAL
}

// PRead implements FileDescriptionImpl.
func (FileDescriptionDefaults) PRead(context.Context, *FileDescription, usermem.IOSequence, int64, ReadOptions) (int64, error) {
	return 0, unix.ESPIPE
}

// Write implements FileDescriptionImpl.
func (FileDescriptionDefaults) Write(context.Context, *FileDescription, usermem.IOSequence, WriteOptions) (int64, error) {
	return 0, unix.EINVAL
}

// PWrite implements FileDescriptionImpl.
func (FileDescriptionDefaults) PWrite(context.Context, *FileDescription, usermem.IOSequence, int64, WriteOptions) (int64, error) {
	return 0, unix.ESPIPE
}

// Seek implements FileDescriptionImpl.
func (FileDescriptionDefaults) Seek(context.Context, *FileDescription, int64, int32) (int64, error) {
	return 0, unix.ESPIPE
}

// IterDirents implements FileDescriptionImpl.
func (FileDescriptionDefaults) IterDirents(context.Context, *FileDescription, func(Dirent) bool) error {
	return unix.ENOTDIR
}

// Ioctl implements FileDescriptionImpl.
func (FileDescriptionDefaults) Ioctl(context.Context, *FileDescription, usermem.IO, uintptr, [6]uintptr) (uintptr, error) {
	return 0, unix.ENOTTY
}

// ConfigureMMap implements FileDescriptionImpl.
func (FileDescriptionDefaults) ConfigureMMap(context.Context, *FileDescription, *memmap.MMapOpts) error {
	return unix.ENODEV
}

// Sync implements FileDescriptionImpl.
func (FileDescriptionDefaults) Sync(context.Context) error { return nil }

// Allocate implements FileDescriptionImpl.
func (FileDescriptionDefaults) Allocate(context.Context, uint64, uint64, uint64) error {
	return unix.ENODEV
}

// Readiness implements waiter.Waitable: always readable and writable, as
// poll(2) reports regular files.
func (FileDescriptionDefaults) Readiness(mask waiter.EventMask) waiter.EventMask {
	return mask & (waiter.ReadableEvents | waiter.WritableEvents)
}

// EventRegister implements waiter.Waitable.
func (FileDescriptionDefaults) EventRegister(*waiter.Entry) error { return nil }

// EventUnregister implements waiter.Waitable.
func (FileDescriptionDefaults) EventUnregister(*waiter.Entry) {}

// statusFlagsSettable are the flags F_SETFL may change.
const statusFlagsSettable = unix.O_APPEND | unix.O_NONBLOCK | unix.O_DIRECT | unix.O_ASYNC | unix.O_NOATIME

// FileDescription is an open file description (open(2)): shared by every
// FD that dup or fork made from it.
type FileDescription struct {
	refs  atomic.Int64
	flags atomic.Uint32
	vd    VirtualDentry
	impl  FileDescriptionImpl

	readable, writable, pathOnly bool
	// hasLocks is set once the file has taken a lock, so closing files
	// that never did skips the lock table.
	hasLocks atomic.Bool

	// Release hooks (OnRelease); hasHooks lets DecRef skip the lock.
	hasHooks atomic.Bool
	hooksMu  sync.Mutex
	nextHook uint64
	hooks    map[uint64]func(context.Context)
}

// OnRelease arranges for fn to run when the file's last reference goes,
// before the filesystem releases it: epoll drops its interest in the file
// then (epoll(7): a file leaves an epoll set when all its descriptors are
// closed). The returned function cancels the hook.
func (fd *FileDescription) OnRelease(fn func(context.Context)) (cancel func()) {
	fd.hooksMu.Lock()
	defer fd.hooksMu.Unlock()
	if fd.hooks == nil {
		fd.hooks = make(map[uint64]func(context.Context))
	}
	fd.nextHook++
	id := fd.nextHook
	fd.hooks[id] = fn
	fd.hasHooks.Store(true)
	return func() {
		fd.hooksMu.Lock()
		delete(fd.hooks, id)
		fd.hooksMu.Unlock()
	}
}

func (fd *FileDescription) runReleaseHooks(ctx context.Context) {
	fd.hooksMu.Lock()
	hooks := fd.hooks
	fd.hooks = nil
	fd.hooksMu.Unlock()
	for _, fn := range hooks {
		fn(ctx)
	}
}

// NewFileDescription returns a file description with one reference on vd
// (taking a new reference on it) for impl; flags are the open flags.
// Filesystems that make anonymous files (pipe(2)) call it directly.
func NewFileDescription(impl FileDescriptionImpl, flags uint32, vd VirtualDentry) *FileDescription {
	fd := &FileDescription{vd: vd, impl: impl}
	fd.refs.Store(1)
	vd.IncRef()
	fd.flags.Store(flags &^ (unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC | unix.O_CLOEXEC))
	acc := flags & unix.O_ACCMODE
	fd.pathOnly = flags&unix.O_PATH != 0
	fd.readable = !fd.pathOnly && (acc == unix.O_RDONLY || acc == unix.O_RDWR)
	fd.writable = !fd.pathOnly && (acc == unix.O_WRONLY || acc == unix.O_RDWR)
	return fd
}

// IncRef adds a reference.
func (fd *FileDescription) IncRef() { fd.refs.Add(1) }

// DecRef drops a reference; the last releases the file.
func (fd *FileDescription) DecRef(ctx context.Context) {
	if fd.refs.Add(-1) == 0 {
		if fd.hasHooks.Load() {
			fd.runReleaseHooks(ctx)
		}
		fd.releaseLocks(ctx)
		if !fd.pathOnly {
			if fd.writable {
				fd.NotifyFile(ctx, unix.IN_CLOSE_WRITE)
			} else {
				fd.NotifyFile(ctx, unix.IN_CLOSE_NOWRITE)
			}
		}
		fd.impl.Release(ctx)
		fd.vd.DecRef(ctx)
	}
}

// Impl returns the filesystem's implementation.
func (fd *FileDescription) Impl() FileDescriptionImpl { return fd.impl }

// VirtualDentry returns the file's path, without a new reference.
func (fd *FileDescription) VirtualDentry() VirtualDentry { return fd.vd }

// Mount returns the file's mount.
func (fd *FileDescription) Mount() *Mount { return fd.vd.mount }

// Dentry returns the file's dentry.
func (fd *FileDescription) Dentry() *Dentry { return fd.vd.dentry }

// Inode returns the file's inode.
func (fd *FileDescription) Inode() Inode { return fd.vd.dentry.inode }

// StatusFlags returns the status flags (F_GETFL), access mode included.
func (fd *FileDescription) StatusFlags() uint32 { return fd.flags.Load() }

// SetStatusFlags changes the settable flags (F_SETFL); others are kept.
func (fd *FileDescription) SetStatusFlags(flags uint32) {
	for {
		old := fd.flags.Load()
		n := old&^statusFlagsSettable | flags&statusFlagsSettable
		if fd.flags.CompareAndSwap(old, n) {
			return
		}
	}
}

// IsReadable and IsWritable report the access mode.
func (fd *FileDescription) IsReadable() bool { return fd.readable }

// IsWritable reports whether the file was opened for writing.
func (fd *FileDescription) IsWritable() bool { return fd.writable }

// Read reads at the file offset.
func (fd *FileDescription) Read(ctx context.Context, dst usermem.IOSequence, opts ReadOptions) (int64, error) {
	if !fd.readable {
		return 0, unix.EBADF
	}
	n, err := fd.impl.Read(ctx, fd, dst, opts)
	if n > 0 {
		fd.NotifyFile(ctx, unix.IN_ACCESS)
	}
	return n, err
}

// PRead reads at offset.
func (fd *FileDescription) PRead(ctx context.Context, dst usermem.IOSequence, offset int64, opts ReadOptions) (int64, error) {
	if !fd.readable {
		return 0, unix.EBADF
	}
	if offset < 0 {
		return 0, unix.EINVAL
	}
	n, err := fd.impl.PRead(ctx, fd, dst, offset, opts)
	if n > 0 {
		fd.NotifyFile(ctx, unix.IN_ACCESS)
	}
	if err == unix.ESPIPE && fd.Inode().Mode()&unix.S_IFMT == unix.S_IFDIR {
		// A directory is positioned but not readable: Linux answers
		// pread(2) as read(2), whatever the filesystem's directory file.
		err = unix.EISDIR
	}
	return n, err
}

// Write writes at the file offset (at the end with O_APPEND).
func (fd *FileDescription) Write(ctx context.Context, src usermem.IOSequence, opts WriteOptions) (int64, error) {
	if !fd.writable {
		return 0, unix.EBADF
	}
	n, err := fd.impl.Write(ctx, fd, src, opts)
	if n > 0 {
		fd.NotifyFile(ctx, unix.IN_MODIFY)
	}
	return n, err
}

// PWrite writes at offset.
func (fd *FileDescription) PWrite(ctx context.Context, src usermem.IOSequence, offset int64, opts WriteOptions) (int64, error) {
	if !fd.writable {
		return 0, unix.EBADF
	}
	if offset < 0 {
		return 0, unix.EINVAL
	}
	n, err := fd.impl.PWrite(ctx, fd, src, offset, opts)
	if n > 0 {
		fd.NotifyFile(ctx, unix.IN_MODIFY)
	}
	return n, err
}

// Seek is lseek(2).
func (fd *FileDescription) Seek(ctx context.Context, offset int64, whence int32) (int64, error) {
	if fd.pathOnly {
		return 0, unix.EBADF
	}
	return fd.impl.Seek(ctx, fd, offset, whence)
}

// Stat returns the file's attributes (fstat).
func (fd *FileDescription) Stat(ctx context.Context, opts StatOptions) (Statx, error) {
	return statDentry(ctx, fd.vd, opts.Mask)
}

// SetStat changes attributes (fchmod, fchown, ftruncate, futimens) with
// the permission checks of the credentials ctx carries (a Task's own).
func (fd *FileDescription) SetStat(ctx context.Context, opts *SetStatOptions) error {
	if fd.pathOnly {
		return unix.EBADF
	}
	creds := auth.CredentialsFromContext(ctx)
	if creds == nil {
		return unix.EPERM
	}
	if opts.Mask&unix.STATX_SIZE != 0 && !fd.writable {
		return unix.EINVAL
	}
	return fd.vd.mount.vfs.setStat(ctx, creds, fd.vd, opts)
}

// IterDirents calls cb for each directory entry from the file offset.
func (fd *FileDescription) IterDirents(ctx context.Context, cb func(Dirent) bool) error {
	if fd.pathOnly {
		return unix.EBADF
	}
	return fd.impl.IterDirents(ctx, fd, cb)
}

// Ioctl is ioctl(2).
func (fd *FileDescription) Ioctl(ctx context.Context, io usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error) {
	if fd.pathOnly {
		return 0, unix.EBADF
	}
	return fd.impl.Ioctl(ctx, fd, io, sysno, args)
}

// ConfigureMMap fills in opts.Mappable for mmap(2). The caller has checked
// the requested protection against the access mode. A file on a noexec
// mount may not be mapped executable, now (EPERM, mmap(2)) or later by
// mprotect (MaxPerms loses Execute).
func (fd *FileDescription) ConfigureMMap(ctx context.Context, opts *memmap.MMapOpts) error {
	if fd.pathOnly {
		return unix.EBADF
	}
	if fd.vd.mount != nil && fd.vd.mount.Flags()&unix.MS_NOEXEC != 0 {
		if opts.Perms.Execute {
			return unix.EPERM
		}
		opts.MaxPerms.Execute = false
	}
	return fd.impl.ConfigureMMap(ctx, fd, opts)
}

// CheckExecMount is execve(2)'s check of the mount of a program or of its
// interpreter: EACCES on a noexec mount (MS_NOEXEC).
func (fd *FileDescription) CheckExecMount() error {
	if fd.vd.mount != nil && fd.vd.mount.Flags()&unix.MS_NOEXEC != 0 {
		return unix.EACCES
	}
	return nil
}

// SetIDAllowed reports whether executing fd may apply the file's
// set-user-ID and set-group-ID bits: not from a nosuid mount (MS_NOSUID).
func (fd *FileDescription) SetIDAllowed() bool {
	return fd.vd.mount == nil || fd.vd.mount.Flags()&unix.MS_NOSUID == 0
}

// Readiness implements waiter.Waitable.
func (fd *FileDescription) Readiness(mask waiter.EventMask) waiter.EventMask {
	return fd.impl.Readiness(mask)
}

// EventRegister implements waiter.Waitable.
func (fd *FileDescription) EventRegister(e *waiter.Entry) error { return fd.impl.EventRegister(e) }

// EventUnregister implements waiter.Waitable.
func (fd *FileDescription) EventUnregister(e *waiter.Entry) { fd.impl.EventUnregister(e) }

// Sync is fsync(2).
func (fd *FileDescription) Sync(ctx context.Context) error { return fd.impl.Sync(ctx) }

// Allocate is fallocate(2).
func (fd *FileDescription) Allocate(ctx context.Context, mode, offset, length uint64) error {
	if !fd.writable {
		return unix.EBADF
	}
	return fd.impl.Allocate(ctx, mode, offset, length)
}
