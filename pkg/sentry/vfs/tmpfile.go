package vfs

import (
	"context"
	"strconv"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// TmpfileMaker is implemented by directory inodes that can make an
// unnamed regular file in their filesystem (open(2) O_TMPFILE). The new
// inode has no link; linkat(2) may give it one later.
type TmpfileMaker interface {
	NewTmpfile(ctx context.Context, opts *MknodOptions) (Inode, error)
}

// NewTmpfileAt makes an unnamed regular file (mode: permission bits,
// umask applied) in the filesystem of directory dir and returns it, with
// a reference. linkable says whether linkat(2) may name it (O_TMPFILE
// without O_EXCL). Overlays use it to make the upper half of their own
// unnamed files.
func (vfs *VirtualFilesystem) NewTmpfileAt(ctx context.Context, creds *auth.Credentials, dir VirtualDentry, mode uint32, linkable bool) (VirtualDentry, error) {
	pd := dir.dentry
	if !pd.isDir() {
		return VirtualDentry{}, unix.ENOTDIR
	}
	if err := checkInodePermissions(creds, pd.inode, MayWrite|MayExec); err != nil {
		return VirtualDentry{}, err
	}
	if dir.mount.ReadOnly() {
		return VirtualDentry{}, unix.EROFS
	}
	tm, ok := pd.inode.(TmpfileMaker)
	if !ok {
		return VirtualDentry{}, unix.EOPNOTSUPP
	}
	if pd.dead.Load() {
		return VirtualDentry{}, unix.ENOENT
	}
	opts := &MknodOptions{Mode: unix.S_IFREG | mode&0o7777}
	setCreationOwner(creds, pd.inode, opts)
	ino, err := tm.NewTmpfile(ctx, opts)
	if err != nil {
		return VirtualDentry{}, err
	}
	d := pd.fs.NewDentry(ino)
	// Not in the directory, but named after it as Linux shows such a
	// file in /proc/[pid]/fd: "DIR/#INO (deleted)".
	d.parent = pd
	if st, err := ino.Stat(ctx, unix.STATX_INO); err == nil {
		d.name = "#" + strconv.FormatUint(st.Ino, 10)
	}
	d.dead.Store(true)
	d.removed.Store(true)
	d.linkable.Store(linkable)
	d.IncRef()
	dir.mount.IncRef()
	return VirtualDentry{dir.mount, d}, nil
}

// openTmpfile is open(2) with O_TMPFILE: pop names the directory.
func (vfs *VirtualFilesystem) openTmpfile(ctx context.Context, creds *auth.Credentials, pop *PathOperation, flags, mode uint32) (*FileDescription, error) {
	// O_TMPFILE includes O_DIRECTORY; O_CREAT may not come with it, and
	// the file must be opened for writing.
	if flags&unix.O_CREAT != 0 || flags&unix.O_ACCMODE == unix.O_RDONLY || flags&unix.O_PATH != 0 {
		return nil, unix.EINVAL
	}
	p := *pop
	p.FollowFinalSymlink = true
	dir, err := vfs.GetDentryAt(ctx, creds, &p, &GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return nil, err
	}
	defer dir.DecRef(ctx)
	vd, err := vfs.NewTmpfileAt(ctx, creds, dir, mode, flags&unix.O_EXCL == 0)
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(ctx)
	flags &^= unix.O_TMPFILE | unix.O_EXCL | unix.O_TRUNC
	impl, err := vd.dentry.inode.Open(ctx, vd, flags)
	if err != nil {
		return nil, err
	}
	return NewFileDescription(impl, flags|unix.O_LARGEFILE, vd), nil
}
