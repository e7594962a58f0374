// Package vfs owns the Sentry's virtual filesystem: filesystem types and
// mount trees, dentries and path resolution (path_resolution(7), openat2(2)
// RESOLVE_* rules), permission checks, and open file descriptions. Concrete
// filesystems (pkg/sentry/fsimpl/...) supply inodes and file
// implementations through the interfaces defined here; this package never
// imports them.
//
// Locking: each Filesystem has a tree lock. Lookups hold it for reading one
// step at a time; operations that change names (create, link, unlink,
// rename) hold it for writing, so they are atomic with respect to every
// lookup on that filesystem. The mount table has its own lock, taken only
// when a walk reaches a dentry that something is mounted on.
package vfs

import (
	"context"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// Statx is the statx(2) result (struct statx layout).
type Statx = unix.Statx_t

// Statfs is the statfs(2) result.
type Statfs = unix.Statfs_t

// MknodOptions describe a new inode.
type MknodOptions struct {
	// Mode holds the file type (S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO,
	// S_IFSOCK, S_IFCHR, S_IFBLK) and permission bits, umask applied.
	Mode uint32
	// UID and GID own the new inode (the vfs applies setgid-directory
	// inheritance before calling).
	UID auth.UID
	GID auth.GID
	// DevMajor and DevMinor are the device number of S_IFCHR/S_IFBLK.
	DevMajor, DevMinor uint32
	// Target is a symlink's target.
	Target string
	// Endpoint is set for the S_IFSOCK file that bind(2) of an AF_UNIX
	// socket creates: the socket inode keeps it for BoundEndpointAt.
	Endpoint BoundEndpoint
}

// Inode is what a filesystem implements for each of its files. The vfs
// calls the directory methods (Lookup, NewChild, Link, Unlink) with the
// filesystem's tree lock held for writing (Lookup: at least for reading),
// after it has checked permissions, existence and file types; the inode
// enforces only what it alone knows (space limits, its own errors).
type Inode interface {
	// IncRef and DecRef count the dentries that refer to the inode; the
	// last DecRef releases the inode's data.
	IncRef()
	DecRef(ctx context.Context)

	// Mode returns the file type and permission bits; Owner its owner.
	// Both are read without the tree lock and must be cheap and safe.
	Mode() uint32
	Owner() (auth.UID, auth.GID)

	// Stat returns the inode's attributes.
	Stat(ctx context.Context, mask uint32) (Statx, error)
	// SetStat changes attributes; the vfs has checked permissions.
	SetStat(ctx context.Context, opts *SetStatOptions) error

	// Open returns the file implementation for a new file description on
	// vd (which names this inode). flags are the open(2) flags.
	Open(ctx context.Context, vd VirtualDentry, flags uint32) (FileDescriptionImpl, error)

	// Readlink returns a symlink's target (EINVAL for other inodes).
	Readlink(ctx context.Context) (string, error)

	// Lookup finds a child that the dentry cache does not hold (ENOENT if
	// there is none). Filesystems whose tree is entirely in memory return
	// ENOENT.
	Lookup(ctx context.Context, name string) (Inode, error)
	// NewChild creates a new inode named name in this directory.
	NewChild(ctx context.Context, name string, opts *MknodOptions) (Inode, error)
	// Link adds the name name for child in this directory (link(2) or the
	// arriving half of a rename).
	Link(ctx context.Context, name string, child Inode, rename bool) error
	// Unlink removes the name name for child (unlink, rmdir or the
	// departing half of a rename).
	Unlink(ctx context.Context, name string, child Inode, rename bool) error
	// IterDirents calls cb for the entries of this directory from the
	// position offset ("." and ".." included, with parentIno for ".."),
	// stopping when cb returns false, which means cb did not take that
	// entry (a full getdents buffer); it returns the offset to continue
	// from, that entry's. Offsets stay valid across concurrent creates and removes.
	IterDirents(ctx context.Context, offset int64, parentIno uint64, cb func(d Dirent) bool) (int64, error)

	// Extended attributes (xattr(7)); the vfs checks namespaces and
	// permissions.
	GetXattr(ctx context.Context, name string) (string, error)
	SetXattr(ctx context.Context, name, value string, flags uint32) error
	ListXattr(ctx context.Context) ([]string, error)
	RemoveXattr(ctx context.Context, name string) error

	// StatFS returns the statfs of the filesystem holding the inode.
	StatFS(ctx context.Context) (Statfs, error)
}

// Dirent is one directory entry as getdents64 reports it.
type Dirent struct {
	Name string
	Ino  uint64
	// Type is the DT_* value.
	Type uint8
	// NextOff is the offset of the entry after this one (d_off).
	NextOff int64
}

// DirentType returns the DT_* value for a file mode.
func DirentType(mode uint32) uint8 {
	return uint8((mode & unix.S_IFMT) >> 12)
}

// SetStatOptions carry a setattr: chmod, chown, truncate, utimes.
type SetStatOptions struct {
	// Mask says which fields are set: unix.STATX_MODE, STATX_UID,
	// STATX_GID, STATX_SIZE, STATX_ATIME, STATX_MTIME.
	Mask uint32
	Mode uint32
	UID  auth.UID
	GID  auth.GID
	Size uint64
	// Atime and Mtime may hold Nsec UTIME_NOW (the vfs resolves it to the
	// current time before calling Inode.SetStat) or UTIME_OMIT.
	Atime, Mtime unix.Timespec
}

// InodeDefaults gives the answers of an inode that is not a directory, not a
// symlink and has no xattrs; embed it and override what applies.
type InodeDefaults struct{}

// Readlink implements Inode.
func (InodeDefaults) Readlink(context.Context) (string, error) { return "", unix.EINVAL }

// Lookup implements Inode.
func (InodeDefaults) Lookup(context.Context, string) (Inode, error) { return nil, unix.ENOTDIR }

// NewChild implements Inode.
func (InodeDefaults) NewChild(context.Context, string, *MknodOptions) (Inode, error) {
	return nil, unix.ENOTDIR
}

// Link implements Inode.
func (InodeDefaults) Link(context.Context, string, Inode, bool) error { return unix.ENOTDIR }

// Unlink implements Inode.
func (InodeDefaults) Unlink(context.Context, string, Inode, bool) error { return unix.ENOTDIR }

// IterDirents implements Inode.
func (InodeDefaults) IterDirents(context.Context, int64, uint64, func(Dirent) bool) (int64, error) {
	return 0, unix.ENOTDIR
}

// GetXattr implements Inode.
func (InodeDefaults) GetXattr(context.Context, string) (string, error) { return "", unix.ENODATA }

// SetXattr implements Inode.
func (InodeDefaults) SetXattr(context.Context, string, string, uint32) error { return unix.EOPNOTSUPP }

// ListXattr implements Inode.
func (InodeDefaults) ListXattr(context.Context) ([]string, error) { return nil, nil }

// RemoveXattr implements Inode.
func (InodeDefaults) RemoveXattr(context.Context, string) error { return unix.ENODATA }

// StatFS implements Inode.
func (InodeDefaults) StatFS(context.Context) (Statfs, error) { return Statfs{}, unix.ENOSYS }

// SetStat implements Inode.
func (InodeDefaults) SetStat(context.Context, *SetStatOptions) error { return unix.EPERM }
