package vfs

import (
	"context"
	"strings"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// OpenOptions are open(2)'s flags and mode (umask already applied).
type OpenOptions struct {
	Flags uint32
	Mode  uint32
}

// pathFile is the implementation behind O_PATH descriptors: they name a
// file but permit no I/O.
type pathFile struct{ FileDescriptionDefaults }

// OpenAt is open(2)/openat(2)/openat2(2).
func (vfs *VirtualFilesystem) OpenAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *OpenOptions) (*FileDescription, error) {
	flags := opts.Flags
	if flags&unix.O_PATH != 0 {
		// O_PATH keeps only these (open(2)).
		flags &= unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	}
	if flags&unix.O_TMPFILE == unix.O_TMPFILE {
		return vfs.openTmpfile(ctx, creds, pop, flags, opts.Mode)
	}
	if flags&(unix.O_CREAT|unix.O_DIRECTORY) == unix.O_CREAT|unix.O_DIRECTORY {
		// Linux 6.4 and later refuse the combination.
		return nil, unix.EINVAL
	}
	follow := flags&unix.O_NOFOLLOW == 0
	if flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
		follow = false
	}
	var r resolver
	if err := vfs.initResolver(&r, creds, pop); err != nil {
		return nil, err
	}
	defer r.release(ctx)

	var vd VirtualDentry
	var err error
	created := false
	if flags&unix.O_CREAT != 0 {
		vd, created, err = vfs.openCreate(ctx, &r, flags, opts.Mode, follow)
	} else {
		vd, err = r.resolve(ctx, follow)
	}
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(ctx)
	return vfs.openExisting(ctx, creds, vd, flags, created)
}

// openCreate resolves an O_CREAT path, creating the final regular file if
// it does not exist.
func (vfs *VirtualFilesystem) openCreate(ctx context.Context, r *resolver, flags, mode uint32, follow bool) (VirtualDentry, bool, error) {
	for {
		name, err := r.walkToFinal(ctx)
		if err != nil {
			return VirtualDentry{}, false, err
		}
		if name == "" && !r.cur.dentry.isDir() && !r.mustBeDir {
			// A magic link's target (or an AT_EMPTY_PATH start).
			r.cur.IncRef()
			return r.cur, false, nil
		}
		if name == "" || name == "." || name == ".." || r.mustBeDir {
			// Only a directory could be named so, and O_CREAT does not
			// open directories.
			return VirtualDentry{}, false, unix.EISDIR
		}
		if err := r.mayTraverse(); err != nil {
			return VirtualDentry{}, false, err
		}
		if len(name) > maxNameLen {
			return VirtualDentry{}, false, unix.ENAMETOOLONG
		}
		parent := r.cur
		fs := parent.dentry.fs
		if fs.revalidator != nil {
			r.revalidate(ctx, parent.dentry, name)
		}
		fs.treeMu.Lock()
		child, err := parent.dentry.childLocked(ctx, name)
		if err == nil {
			child.IncRef()
			fs.treeMu.Unlock()
			if flags&unix.O_EXCL != 0 {
				child.DecRef(ctx)
				return VirtualDentry{}, false, unix.EEXIST
			}
			parent.mount.IncRef()
			vd, err := r.crossMounts(ctx, VirtualDentry{parent.mount, child})
			if err != nil {
				return VirtualDentry{}, false, err
			}
			if vd.dentry.isSymlink() && follow {
				err := r.followSymlink(ctx, vd)
				vd.DecRef(ctx)
				if err != nil {
					return VirtualDentry{}, false, err
				}
				continue
			}
			if vd.dentry.isDir() {
				vd.DecRef(ctx)
				return VirtualDentry{}, false, unix.EISDIR
			}
			return vd, false, nil
		}
		if err != unix.ENOENT {
			fs.treeMu.Unlock()
			return VirtualDentry{}, false, err
		}
		c, err := vfs.createLocked(ctx, r.creds, parent, name, &MknodOptions{Mode: unix.S_IFREG | mode&0o7777})
		if err != nil {
			fs.treeMu.Unlock()
			return VirtualDentry{}, false, err
		}
		c.IncRef()
		fs.treeMu.Unlock()
		parent.mount.IncRef()
		return VirtualDentry{parent.mount, c}, true, nil
	}
}

// createLocked creates name in parent after the checks every creation
// shares. Tree lock held for writing; name known not to exist.
func (vfs *VirtualFilesystem) createLocked(ctx context.Context, creds *auth.Credentials, parent VirtualDentry, name string, opts *MknodOptions) (*Dentry, error) {
	pd := parent.dentry
	if pd.dead.Load() {
		return nil, unix.ENOENT
	}
	if err := checkInodePermissions(creds, pd.inode, MayWrite|MayExec); err != nil {
		return nil, err
	}
	if parent.mount.ReadOnly() {
		return nil, unix.EROFS
	}
	setCreationOwner(creds, pd.inode, opts)
	ino, err := pd.inode.NewChild(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	c := pd.fs.NewDentry(ino)
	pd.insertChildLocked(name, c)
	vfs.notifyDir(ctx, pd, name, ino, unix.IN_CREATE, 0)
	return c, nil
}

// setCreationOwner gives a file about to be made in dir its owner, group
// and mode bits per inode(7): the creator's filesystem IDs, the group
// and (for directories) the setgid bit of a setgid directory, and no
// setgid bit for a group the creator is not in.
func setCreationOwner(creds *auth.Credentials, dir Inode, opts *MknodOptions) {
	opts.UID, opts.GID = creds.FilesystemUID, creds.FilesystemGID
	if pmode := dir.Mode(); pmode&unix.S_ISGID != 0 {
		// A setgid directory gives its group to what is made in it, and
		// its setgid bit to subdirectories.
		_, opts.GID = dir.Owner()
		if opts.Mode&unix.S_IFMT == unix.S_IFDIR {
			opts.Mode |= unix.S_ISGID
		}
	}
	if opts.Mode&unix.S_IFMT != unix.S_IFDIR && opts.Mode&unix.S_ISGID != 0 &&
		!creds.InGroup(opts.GID) && !creds.HasCapability(auth.CAP_FSETID) {
		// A file may not be made set-group-ID for a group its creator
		// is not in (inode(7)).
		opts.Mode &^= unix.S_ISGID
	}
}

func (vfs *VirtualFilesystem) openExisting(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, flags uint32, created bool) (*FileDescription, error) {
	ino := vd.dentry.inode
	mode := ino.Mode()
	ftype := mode & unix.S_IFMT
	if flags&unix.O_DIRECTORY != 0 && ftype != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	if flags&unix.O_PATH != 0 {
		return NewFileDescription(&pathFile{}, flags, vd), nil
	}
	if ftype == unix.S_IFLNK {
		// Reached only when the final symlink was not followed.
		return nil, unix.ELOOP
	}
	ats := accessFromOpenFlags(flags)
	if ftype == unix.S_IFDIR && ats&MayWrite != 0 {
		return nil, unix.EISDIR
	}
	if !created {
		if err := checkInodePermissions(creds, ino, ats); err != nil {
			return nil, err
		}
	}
	if ats&MayWrite != 0 && vd.mount.ReadOnly() && (ftype == unix.S_IFREG || ftype == unix.S_IFDIR) {
		return nil, unix.EROFS
	}
	if ftype == unix.S_IFSOCK {
		return nil, unix.ENXIO
	}
	if (ftype == unix.S_IFCHR || ftype == unix.S_IFBLK) && vd.mount.Flags()&unix.MS_NODEV != 0 {
		// Device nodes on a nodev mount do not open (mount(8)).
		return nil, unix.EACCES
	}
	if flags&unix.O_TRUNC != 0 && ftype == unix.S_IFREG && !created {
		if err := ino.SetStat(ctx, &SetStatOptions{Mask: unix.STATX_SIZE}); err != nil {
			return nil, err
		}
		vfs.notify(ctx, vd.dentry, unix.IN_MODIFY)
	}
	impl, err := ino.Open(ctx, vd, flags)
	if err != nil {
		return nil, err
	}
	fd := NewFileDescription(impl, flags|unix.O_LARGEFILE, vd)
	vfs.notify(ctx, vd.dentry, unix.IN_OPEN)
	return fd, nil
}

// statDentry stats vd's inode and fills in the device number.
func statDentry(ctx context.Context, vd VirtualDentry, mask uint32) (Statx, error) {
	st, err := vd.dentry.inode.Stat(ctx, mask)
	if err != nil {
		return st, err
	}
	st.Dev_major, st.Dev_minor = 0, vd.dentry.fs.devMinor
	if vd.dentry == vd.mount.root {
		st.Attributes |= unix.STATX_ATTR_MOUNT_ROOT
	}
	st.Attributes_mask |= unix.STATX_ATTR_MOUNT_ROOT
	return st, nil
}

// StatAt is stat/lstat/fstatat/statx.
func (vfs *VirtualFilesystem) StatAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *StatOptions) (Statx, error) {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return Statx{}, err
	}
	defer vd.DecRef(ctx)
	return statDentry(ctx, vd, opts.Mask)
}

// StatFSAt is statfs(2).
func (vfs *VirtualFilesystem) StatFSAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation) (Statfs, error) {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return Statfs{}, err
	}
	defer vd.DecRef(ctx)
	st, err := vd.dentry.inode.StatFS(ctx)
	if err == nil && vd.mount.ReadOnly() {
		st.Flags |= unix.ST_RDONLY
	}
	return st, err
}

// withParent resolves all but the last component of pop and calls fn with
// the parent directory (search permission checked) and the final name.
func (vfs *VirtualFilesystem) withParent(ctx context.Context, creds *auth.Credentials, pop *PathOperation, fn func(r *resolver, name string) error) error {
	var r resolver
	if err := vfs.initResolver(&r, creds, pop); err != nil {
		return err
	}
	defer r.release(ctx)
	name, err := r.walkToFinal(ctx)
	if err != nil {
		return err
	}
	if err := r.mayTraverse(); err != nil {
		return err
	}
	if len(name) > maxNameLen {
		return unix.ENAMETOOLONG
	}
	if d := r.cur.dentry; d.fs.revalidator != nil && name != "" && name != "." && name != ".." {
		r.revalidate(ctx, d, name)
	}
	return fn(&r, name)
}

// mknodCommon creates the final component of pop.
func (vfs *VirtualFilesystem) mknodCommon(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *MknodOptions) error {
	isDir := opts.Mode&unix.S_IFMT == unix.S_IFDIR
	return vfs.withParent(ctx, creds, pop, func(r *resolver, name string) error {
		if name == "" || name == "." || name == ".." {
			return unix.EEXIST
		}
		fs := r.cur.dentry.fs
		fs.treeMu.Lock()
		defer fs.treeMu.Unlock()
		if _, err := r.cur.dentry.childLocked(ctx, name); err == nil {
			return unix.EEXIST
		} else if err != unix.ENOENT {
			return err
		}
		if r.mustBeDir && !isDir {
			return unix.ENOENT
		}
		_, err := vfs.createLocked(ctx, creds, r.cur, name, opts)
		return err
	})
}

// MkdirOptions are mkdir(2)'s mode (umask applied).
type MkdirOptions struct{ Mode uint32 }

// MkdirAt is mkdir(2).
func (vfs *VirtualFilesystem) MkdirAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *MkdirOptions) error {
	return vfs.mknodCommon(ctx, creds, pop, &MknodOptions{Mode: unix.S_IFDIR | opts.Mode&0o7777})
}

// MknodAt is mknod(2): regular files, FIFOs, sockets and devices.
func (vfs *VirtualFilesystem) MknodAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *MknodOptions) error {
	switch opts.Mode & unix.S_IFMT {
	case 0:
		opts.Mode |= unix.S_IFREG
	case unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK:
	case unix.S_IFCHR, unix.S_IFBLK:
		if !creds.HasCapability(auth.CAP_MKNOD) {
			return unix.EPERM
		}
	case unix.S_IFDIR:
		return unix.EPERM
	default:
		return unix.EINVAL
	}
	if opts.Endpoint != nil && opts.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return unix.EINVAL
	}
	o := *opts
	return vfs.mknodCommon(ctx, creds, pop, &o)
}

// SymlinkAt is symlink(2): target is stored as given.
func (vfs *VirtualFilesystem) SymlinkAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, target string) error {
	if target == "" {
		return unix.ENOENT
	}
	if len(target) >= maxPathLen {
		return unix.ENAMETOOLONG
	}
	return vfs.mknodCommon(ctx, creds, pop, &MknodOptions{Mode: unix.S_IFLNK | 0o777, Target: target})
}

// LinkAt is link(2)/linkat(2); oldpop.FollowFinalSymlink is
// AT_SYMLINK_FOLLOW.
func (vfs *VirtualFilesystem) LinkAt(ctx context.Context, creds *auth.Credentials, oldpop, newpop *PathOperation) error {
	old, err := vfs.GetDentryAt(ctx, creds, oldpop, nil)
	if err != nil {
		return err
	}
	defer old.DecRef(ctx)
	if old.dentry.isDir() {
		return unix.EPERM
	}
	return vfs.withParent(ctx, creds, newpop, func(r *resolver, name string) error {
		if name == "" || name == "." || name == ".." {
			return unix.EEXIST
		}
		if r.cur.mount != old.mount {
			return unix.EXDEV
		}
		pd := r.cur.dentry
		fs := pd.fs
		fs.treeMu.Lock()
		defer fs.treeMu.Unlock()
		if _, err := pd.childLocked(ctx, name); err == nil {
			return unix.EEXIST
		} else if err != unix.ENOENT {
			return err
		}
		if r.mustBeDir {
			return unix.ENOENT
		}
		if pd.dead.Load() {
			return unix.ENOENT
		}
		if err := checkInodePermissions(creds, pd.inode, MayWrite|MayExec); err != nil {
			return err
		}
		if r.cur.mount.ReadOnly() {
			return unix.EROFS
		}
		// An unlinked file gets a name again only if it is an O_TMPFILE
		// file made without O_EXCL, and only once (open(2)).
		if old.dentry.dead.Load() && !old.dentry.linkable.CompareAndSwap(true, false) {
			return unix.ENOENT
		}
		ino := old.dentry.inode
		if err := pd.inode.Link(ctx, name, ino, false); err != nil {
			return err
		}
		ino.IncRef()
		pd.insertChildLocked(name, fs.NewDentry(ino))
		vfs.notifyDir(ctx, pd, name, ino, unix.IN_CREATE, 0)
		vfs.deliver(ctx, ino, unix.IN_ATTRIB, 0, "", false)
		return nil
	})
}

// isMountPoint reports whether anything is mounted on d anywhere.
func isMountPoint(d *Dentry) bool { return d.mounts.Load() != 0 }

// removeCommon implements unlink and rmdir.
func (vfs *VirtualFilesystem) removeCommon(ctx context.Context, creds *auth.Credentials, pop *PathOperation, dir bool) error {
	return vfs.withParent(ctx, creds, pop, func(r *resolver, name string) error {
		switch name {
		case ".":
			if dir {
				return unix.EINVAL
			}
			return unix.EISDIR
		case "..":
			if dir {
				return unix.ENOTEMPTY
			}
			return unix.EISDIR
		case "":
			if dir {
				return unix.EBUSY
			}
			return unix.EISDIR
		}
		pd := r.cur.dentry
		fs := pd.fs
		fs.treeMu.Lock()
		c, err := pd.childLocked(ctx, name)
		if err != nil {
			fs.treeMu.Unlock()
			return err
		}
		if dir && !c.isDir() {
			fs.treeMu.Unlock()
			return unix.ENOTDIR
		}
		if !dir && c.isDir() {
			fs.treeMu.Unlock()
			return unix.EISDIR
		}
		if !dir && r.mustBeDir {
			fs.treeMu.Unlock()
			return unix.ENOTDIR
		}
		if err := mayDelete(creds, pd.inode, c.inode); err != nil {
			fs.treeMu.Unlock()
			return err
		}
		if isMountPoint(c) {
			fs.treeMu.Unlock()
			return unix.EBUSY
		}
		if dir && len(c.children) > 0 {
			fs.treeMu.Unlock()
			return unix.ENOTEMPTY
		}
		if r.cur.mount.ReadOnly() {
			fs.treeMu.Unlock()
			return unix.EROFS
		}
		if err := pd.inode.Unlink(ctx, name, c.inode, false); err != nil {
			fs.treeMu.Unlock()
			return err
		}
		c.removed.Store(true)
		release := c.kill()
		fs.treeMu.Unlock()
		// Linux's order: the file's IN_ATTRIB (unlink only), its
		// IN_DELETE_SELF if nothing holds the name, then the directory's
		// IN_DELETE.
		if !dir {
			vfs.notifyLinkCount(ctx, c.inode)
		}
		if release {
			vfs.notifyReleased(ctx, c)
		}
		vfs.notifyDir(ctx, pd, name, c.inode, unix.IN_DELETE, 0)
		if release {
			c.inode.DecRef(ctx)
		}
		return nil
	})
}

// UnlinkAt is unlink(2).
func (vfs *VirtualFilesystem) UnlinkAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation) error {
	return vfs.removeCommon(ctx, creds, pop, false)
}

// RmdirAt is rmdir(2).
func (vfs *VirtualFilesystem) RmdirAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation) error {
	return vfs.removeCommon(ctx, creds, pop, true)
}

// RenameOptions are renameat2(2)'s flags.
type RenameOptions struct{ Flags uint32 }

const (
	renameNoReplace = 1
	renameExchange  = 2
	renameWhiteout  = 4
)

// Renamer is implemented by directory inodes that must carry out a rename
// as one operation rather than as the Unlink and Link halves (an overlay,
// whose upper layer renames atomically and must decide whiteouts and EXDEV
// before anything changes). The vfs calls it on the old parent, with the
// tree lock held for writing, after its own checks; repl is nil when no
// name is replaced. flags are renameat2(2)'s.
type Renamer interface {
	Rename(ctx context.Context, oldName string, old Inode, newParent Inode, newName string, repl Inode, flags uint32) error
}

// RenameAt is rename(2)/renameat2(2).
func (vfs *VirtualFilesystem) RenameAt(ctx context.Context, creds *auth.Credentials, oldpop, newpop *PathOperation, opts *RenameOptions) error {
	if opts.Flags&^(renameNoReplace|renameExchange|renameWhiteout) != 0 ||
		opts.Flags&(renameNoReplace|renameExchange) == renameNoReplace|renameExchange {
		return unix.EINVAL
	}
	if opts.Flags&renameWhiteout != 0 {
		return unix.EINVAL
	}
	return vfs.withParent(ctx, creds, oldpop, func(or *resolver, oldName string) error {
		if oldName == "" || oldName == "." || oldName == ".." {
			return unix.EBUSY
		}
		return vfs.withParent(ctx, creds, newpop, func(nr *resolver, newName string) error {
			if newName == "" || newName == "." || newName == ".." {
				return unix.EBUSY
			}
			if or.cur.mount != nr.cur.mount {
				return unix.EXDEV
			}
			return vfs.renameLocked(ctx, creds, or, oldName, nr, newName, opts.Flags)
		})
	})
}

func (vfs *VirtualFilesystem) renameLocked(ctx context.Context, creds *auth.Credentials, or *resolver, oldName string, nr *resolver, newName string, flags uint32) error {
	op, np := or.cur.dentry, nr.cur.dentry
	fs := op.fs
	fs.treeMu.Lock()
	var release []*Dentry
	// movedIno and replacedIno are what a rename that happens moves and
	// replaces, for inotify.
	var movedIno, replacedIno Inode
	err := func() error {
		if op.dead.Load() || np.dead.Load() {
			return unix.ENOENT
		}
		old, err := op.childLocked(ctx, oldName)
		if err != nil {
			return err
		}
		repl, err := np.childLocked(ctx, newName)
		if err != nil && err != unix.ENOENT {
			return err
		}
		exchange := flags&renameExchange != 0
		if repl == nil && exchange {
			return unix.ENOENT
		}
		if repl != nil && flags&renameNoReplace != 0 {
			return unix.EEXIST
		}
		if (or.mustBeDir || nr.mustBeDir) && !old.isDir() {
			return unix.ENOTDIR
		}
		if repl == old || (repl != nil && repl.inode == old.inode && !exchange) {
			// Two names of one file: rename(2) does nothing.
			return nil
		}
		// A directory cannot move into its own subtree.
		if old.isDir() && np.isDescendantOfLocked(old) {
			return unix.EINVAL
		}
		if repl != nil {
			if exchange {
				if repl.isDir() && op.isDescendantOfLocked(repl) {
					return unix.EINVAL
				}
			} else if old.isDir() && !repl.isDir() {
				return unix.ENOTDIR
			} else if !old.isDir() && repl.isDir() {
				return unix.EISDIR
			} else if repl.isDir() && len(repl.children) > 0 {
				return unix.ENOTEMPTY
			}
		}
		if err := mayDelete(creds, op.inode, old.inode); err != nil {
			return err
		}
		if repl != nil {
			if err := mayDelete(creds, np.inode, repl.inode); err != nil {
				return err
			}
		} else if err := checkInodePermissions(creds, np.inode, MayWrite|MayExec); err != nil {
			return err
		}
		// Moving a directory rewrites its "..": that needs write access
		// to it.
		if op != np {
			if old.isDir() {
				if err := checkInodePermissions(creds, old.inode, MayWrite); err != nil {
					return err
				}
			}
			if exchange && repl.isDir() {
				if err := checkInodePermissions(creds, repl.inode, MayWrite); err != nil {
					return err
				}
			}
		}
		if isMountPoint(old) || (repl != nil && isMountPoint(repl)) {
			return unix.EBUSY
		}
		if or.cur.mount.ReadOnly() {
			return unix.EROFS
		}
		movedIno = old.inode
		if repl != nil {
			replacedIno = repl.inode
		}
		if rn, ok := op.inode.(Renamer); ok {
			var replIno Inode
			if repl != nil {
				replIno = repl.inode
			}
			if err := rn.Rename(ctx, oldName, old.inode, np.inode, newName, replIno, flags); err != nil {
				return err
			}
			delete(op.children, oldName)
			if exchange {
				delete(np.children, newName)
				np.insertChildLocked(newName, old)
				op.insertChildLocked(oldName, repl)
				return nil
			}
			if repl != nil {
				repl.removed.Store(true)
				if repl.kill() {
					release = append(release, repl)
				}
			}
			np.insertChildLocked(newName, old)
			return nil
		}
		if exchange {
			if err := op.inode.Unlink(ctx, oldName, old.inode, true); err != nil {
				return err
			}
			if err := np.inode.Unlink(ctx, newName, repl.inode, true); err != nil {
				return err
			}
			if err := np.inode.Link(ctx, newName, old.inode, true); err != nil {
				return err
			}
			if err := op.inode.Link(ctx, oldName, repl.inode, true); err != nil {
				return err
			}
			delete(op.children, oldName)
			delete(np.children, newName)
			np.insertChildLocked(newName, old)
			op.insertChildLocked(oldName, repl)
			return nil
		}
		if repl != nil {
			if err := np.inode.Unlink(ctx, newName, repl.inode, false); err != nil {
				return err
			}
			repl.removed.Store(true)
			if repl.kill() {
				release = append(release, repl)
			}
		}
		if err := op.inode.Unlink(ctx, oldName, old.inode, true); err != nil {
			return err
		}
		if err := np.inode.Link(ctx, newName, old.inode, true); err != nil {
			return err
		}
		delete(op.children, oldName)
		np.insertChildLocked(newName, old)
		return nil
	}()
	fs.treeMu.Unlock()
	if err == nil && movedIno != nil {
		vfs.notifyRename(ctx, op, oldName, np, newName, movedIno, replacedIno, flags&renameExchange != 0)
	}
	for _, d := range release {
		vfs.notifyReleased(ctx, d)
		d.inode.DecRef(ctx)
	}
	return err
}

// ReadlinkAt is readlink(2).
func (vfs *VirtualFilesystem) ReadlinkAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation) (string, error) {
	p := *pop
	p.FollowFinalSymlink = false
	vd, err := vfs.GetDentryAt(ctx, creds, &p, nil)
	if err != nil {
		return "", err
	}
	defer vd.DecRef(ctx)
	if !vd.dentry.isSymlink() {
		return "", unix.EINVAL
	}
	return vd.dentry.inode.Readlink(ctx)
}

// SetStatAt is chmod/chown/truncate/utimensat by path.
func (vfs *VirtualFilesystem) SetStatAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *SetStatOptions) error {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	if opts.Mask&unix.STATX_SIZE != 0 {
		if vd.dentry.isDir() {
			return unix.EISDIR
		}
		if err := checkInodePermissions(creds, vd.dentry.inode, MayWrite); err != nil {
			return err
		}
	}
	return vfs.setStat(ctx, creds, vd, opts)
}

// setStat checks the permission rules of chmod(2), chown(2), truncate(2)
// and utimensat(2) and applies opts.
func (vfs *VirtualFilesystem) setStat(ctx context.Context, creds *auth.Credentials, vd VirtualDentry, opts *SetStatOptions) error {
	ino := vd.dentry.inode
	o := *opts
	mode := ino.Mode()
	uid, gid := ino.Owner()
	if vd.mount.ReadOnly() {
		return unix.EROFS
	}
	if o.Mask&unix.STATX_SIZE != 0 {
		switch mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFDIR:
			return unix.EISDIR
		default:
			return unix.EINVAL
		}
	}
	if o.Mask&(unix.STATX_UID|unix.STATX_GID) != 0 {
		newUID, newGID := uid, gid
		if o.Mask&unix.STATX_UID != 0 {
			newUID = o.UID
		}
		if o.Mask&unix.STATX_GID != 0 {
			newGID = o.GID
		}
		if !creds.HasCapability(auth.CAP_CHOWN) {
			if newUID != uid {
				return unix.EPERM
			}
			if newGID != gid && (creds.FilesystemUID != uid || !creds.InGroup(newGID)) {
				return unix.EPERM
			}
			if newUID == uid && newGID == gid && creds.FilesystemUID != uid {
				return unix.EPERM
			}
		}
		// chown clears set-user-ID and (group-executable) set-group-ID on
		// non-directories, so a changed owner cannot inherit privilege.
		if mode&unix.S_IFMT != unix.S_IFDIR && o.Mask&unix.STATX_MODE == 0 {
			m := mode &^ unix.S_ISUID
			if m&0o010 != 0 {
				m &^= unix.S_ISGID
			}
			if m != mode {
				o.Mask |= unix.STATX_MODE
				o.Mode = m
			}
		}
		gid = newGID
	}
	if opts.Mask&unix.STATX_MODE != 0 {
		if !canActAsOwner(creds, uid) {
			return unix.EPERM
		}
		o.Mode = mode&unix.S_IFMT | o.Mode&0o7777
		if !creds.InGroup(gid) && !creds.HasCapability(auth.CAP_FSETID) {
			o.Mode &^= unix.S_ISGID
		}
	}
	if o.Mask&(unix.STATX_ATIME|unix.STATX_MTIME) != 0 {
		now := time.Now()
		explicit := false
		for _, ts := range []*unix.Timespec{&o.Atime, &o.Mtime} {
			switch ts.Nsec {
			case unix.UTIME_NOW:
				*ts = unix.NsecToTimespec(now.UnixNano())
			case unix.UTIME_OMIT:
			default:
				explicit = true
			}
		}
		if o.Atime.Nsec == unix.UTIME_OMIT {
			o.Mask &^= unix.STATX_ATIME
		}
		if o.Mtime.Nsec == unix.UTIME_OMIT {
			o.Mask &^= unix.STATX_MTIME
		}
		if !canActAsOwner(creds, uid) {
			if explicit {
				return unix.EPERM
			}
			if err := checkInodePermissions(creds, ino, MayWrite); err != nil {
				return err
			}
		}
	}
	if err := ino.SetStat(ctx, &o); err != nil {
		return err
	}
	vfs.notifySetStat(ctx, vd.dentry, o.Mask)
	return nil
}

// AccessAt is access(2)/faccessat(2); creds are those the check uses
// (real IDs unless AT_EACCESS).
func (vfs *VirtualFilesystem) AccessAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, ats AccessTypes) error {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	ino := vd.dentry.inode
	if ats&MayWrite != 0 && vd.mount.ReadOnly() {
		switch ino.Mode() & unix.S_IFMT {
		case unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK:
			return unix.EROFS
		}
	}
	return checkInodePermissions(creds, ino, ats)
}

// Extended attribute limits (xattr(7)).
const (
	xattrNameMax = 255
	xattrSizeMax = 65536
)

// xattrAllowed decides whether creds may see (write=false) or change an
// attribute called name on ino. Returns the errno for denial.
func xattrAllowed(creds *auth.Credentials, ino Inode, name string, write bool) error {
	if name == "" || len(name) > xattrNameMax {
		return unix.ERANGE
	}
	switch {
	case strings.HasPrefix(name, "user."):
		// user.* lives only on regular files and directories.
		switch ino.Mode() & unix.S_IFMT {
		case unix.S_IFREG, unix.S_IFDIR:
		default:
			if write {
				return unix.EPERM
			}
			return unix.ENODATA
		}
		ats := MayRead
		if write {
			ats = MayWrite
		}
		return checkInodePermissions(creds, ino, ats)
	case strings.HasPrefix(name, "trusted."):
		if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
			if write {
				return unix.EPERM
			}
			return unix.ENODATA
		}
		return nil
	default:
		return unix.EOPNOTSUPP
	}
}

// GetXattrAt is getxattr(2).
func (vfs *VirtualFilesystem) GetXattrAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, name string) (string, error) {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return "", err
	}
	defer vd.DecRef(ctx)
	if err := xattrAllowed(creds, vd.dentry.inode, name, false); err != nil {
		return "", err
	}
	return vd.dentry.inode.GetXattr(ctx, name)
}

// SetXattrAt is setxattr(2); flags are XATTR_CREATE/XATTR_REPLACE.
func (vfs *VirtualFilesystem) SetXattrAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, name, value string, flags uint32) error {
	if len(value) > xattrSizeMax {
		return unix.E2BIG
	}
	if flags&^uint32(unix.XATTR_CREATE|unix.XATTR_REPLACE) != 0 {
		return unix.EINVAL
	}
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	if err := xattrAllowed(creds, vd.dentry.inode, name, true); err != nil {
		return err
	}
	if vd.mount.ReadOnly() {
		return unix.EROFS
	}
	if err := vd.dentry.inode.SetXattr(ctx, name, value, flags); err != nil {
		return err
	}
	vfs.notify(ctx, vd.dentry, unix.IN_ATTRIB)
	return nil
}

// RemoveXattrAt is removexattr(2).
func (vfs *VirtualFilesystem) RemoveXattrAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, name string) error {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return err
	}
	defer vd.DecRef(ctx)
	if err := xattrAllowed(creds, vd.dentry.inode, name, true); err != nil {
		return err
	}
	if vd.mount.ReadOnly() {
		return unix.EROFS
	}
	if err := vd.dentry.inode.RemoveXattr(ctx, name); err != nil {
		return err
	}
	vfs.notify(ctx, vd.dentry, unix.IN_ATTRIB)
	return nil
}

// ListXattrAt is listxattr(2): names the caller may see.
func (vfs *VirtualFilesystem) ListXattrAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation) ([]string, error) {
	vd, err := vfs.GetDentryAt(ctx, creds, pop, nil)
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(ctx)
	names, err := vd.dentry.inode.ListXattr(ctx)
	if err != nil {
		return nil, err
	}
	out := names[:0:0]
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.") && !creds.HasCapability(auth.CAP_SYS_ADMIN) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// pathname builds the path of vd as seen from root; reachable is false if
// the walk up ended at a namespace root other than root.
func (vfs *VirtualFilesystem) pathname(root, vd VirtualDentry) (string, bool) {
	var elems []string
	m, d := vd.mount, vd.dentry
	vfs.mountMu.RLock()
	defer vfs.mountMu.RUnlock()
	reachable := true
	for !(m == root.mount && d == root.dentry) {
		if d == m.root {
			if m.parent == nil || m.detached {
				reachable = false
				break
			}
			m, d = m.parent, m.point
			continue
		}
		d.fs.treeMu.RLock()
		p, name := d.parent, d.name
		d.fs.treeMu.RUnlock()
		if p == nil {
			reachable = false
			break
		}
		elems = append(elems, name)
		d = p
	}
	var b strings.Builder
	for i := len(elems) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(elems[i])
	}
	if b.Len() == 0 {
		return "/", reachable
	}
	return b.String(), reachable
}

// PathnameWithDeleted returns vd's path from root, with " (deleted)"
// appended for an unlinked file, as /proc/[pid]/fd links show.
func (vfs *VirtualFilesystem) PathnameWithDeleted(ctx context.Context, root, vd VirtualDentry) (string, error) {
	p, _ := vfs.pathname(root, vd)
	if vd.dentry.dead.Load() {
		p += " (deleted)"
	}
	return p, nil
}

// PathnameForGetcwd returns the path getcwd(2) reports: ENOENT for a
// removed directory, "(unreachable)" prefixed when outside root.
func (vfs *VirtualFilesystem) PathnameForGetcwd(ctx context.Context, root, vd VirtualDentry) (string, error) {
	if vd.dentry.dead.Load() {
		return "", unix.ENOENT
	}
	p, reachable := vfs.pathname(root, vd)
	if !reachable {
		p = "(unreachable)" + p
	}
	if len(p) >= maxPathLen {
		return "", unix.ENAMETOOLONG
	}
	return p, nil
}
