package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// copyInPath reads a path argument (ENAMETOOLONG beyond PATH_MAX).
func copyInPath(t *kernel.Task, addr hostarch.Addr) (string, error) {
	return copyInString(t, addr, linux.PATH_MAX-1, unix.ENAMETOOLONG)
}

// taskPath is a path operation from a task's root and a dirfd or cwd;
// release drops the references it holds.
type taskPath struct {
	pop vfs.PathOperation
	// file is the dirfd's file when the walk starts there.
	file *vfs.FileDescription
}

// newTaskPath prepares the walk of path from dirfd (AT_FDCWD: the cwd)
// under the task's root. With emptyPath (AT_EMPTY_PATH) an empty path
// names dirfd itself, whatever its type.
func newTaskPath(t *kernel.Task, dirfd int32, path string, follow, emptyPath bool) (*taskPath, error) {
	tp := &taskPath{pop: vfs.PathOperation{Path: path, FollowFinalSymlink: follow, AllowEmptyPath: emptyPath}}
	fsc := t.FSContext()
	if fsc == nil {
		return nil, unix.ENOENT
	}
	if path == "" && !emptyPath {
		return nil, unix.ENOENT
	}
	tp.pop.Root = fsc.Root()
	switch {
	case len(path) > 0 && path[0] == '/':
		tp.pop.Start = tp.pop.Root
		tp.pop.Start.IncRef()
	case dirfd == linux.AT_FDCWD:
		tp.pop.Start = fsc.WorkingDirectory()
	default:
		f, err := getFile(t, dirfd)
		if err != nil {
			tp.pop.Root.DecRef(t)
			return nil, err
		}
		vd := f.VirtualDentry()
		if path != "" && vd.Dentry().Inode().Mode()&unix.S_IFMT != unix.S_IFDIR {
			f.DecRef(t)
			tp.pop.Root.DecRef(t)
			return nil, unix.ENOTDIR
		}
		vd.IncRef()
		tp.pop.Start = vd
		tp.file = f
	}
	return tp, nil
}

func (tp *taskPath) release(t *kernel.Task) {
	tp.pop.Root.DecRef(t)
	tp.pop.Start.DecRef(t)
	if tp.file != nil {
		tp.file.DecRef(t)
	}
}

// pathArg reads the path at addr and prepares its walk.
func pathArg(t *kernel.Task, dirfd int32, addr hostarch.Addr, follow, emptyPath bool) (*taskPath, error) {
	path, err := copyInPath(t, addr)
	if err != nil {
		return nil, err
	}
	return newTaskPath(t, dirfd, path, follow, emptyPath)
}

func vfsOf(t *kernel.Task) *vfs.VirtualFilesystem { return t.Kernel().VFS() }

// Open implements open(2).
func Open(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return openat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Uint(), args[2].Uint())
}

// Openat implements openat(2).
func Openat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return openat(t, args[0].Int(), args[1].Pointer(), args[2].Uint(), args[3].Uint())
}

// Creat implements creat(2).
func Creat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return openat(t, linux.AT_FDCWD, args[0].Pointer(), linux.O_WRONLY|linux.O_CREAT|linux.O_TRUNC, args[1].Uint())
}

// Openat2 implements openat2(2).
func Openat2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	size := args[3].Uint64()
	if size < linux.SizeOfOpenHow {
		return 0, unix.EINVAL
	}
	if size > hostarch.PageSize {
		return 0, unix.E2BIG
	}
	raw := make([]byte, size)
	if _, err := t.CopyIn(args[2].Pointer(), raw); err != nil {
		return 0, unix.EFAULT
	}
	// A larger struct from a newer ABI is fine only if the extra is zero.
	for _, b := range raw[linux.SizeOfOpenHow:] {
		if b != 0 {
			return 0, unix.E2BIG
		}
	}
	var how linux.OpenHow
	how.UnmarshalBytes(raw)
	const knownResolve = linux.RESOLVE_NO_XDEV | linux.RESOLVE_NO_MAGICLINKS | linux.RESOLVE_NO_SYMLINKS |
		linux.RESOLVE_BENEATH | linux.RESOLVE_IN_ROOT | linux.RESOLVE_CACHED
	const knownFlags = linux.O_ACCMODE | linux.O_CREAT | linux.O_EXCL | linux.O_NOCTTY | linux.O_TRUNC |
		linux.O_APPEND | linux.O_NONBLOCK | linux.O_DSYNC | linux.O_ASYNC | linux.O_DIRECT | linux.O_LARGEFILE |
		linux.O_DIRECTORY | linux.O_NOFOLLOW | linux.O_NOATIME | linux.O_CLOEXEC | linux.O_SYNC | linux.O_PATH | linux.O_TMPFILE
	if how.Flags&^uint64(knownFlags) != 0 || how.Resolve&^knownResolve != 0 || how.Mode&^0o7777 != 0 {
		return 0, unix.EINVAL
	}
	if how.Mode != 0 && how.Flags&linux.O_CREAT == 0 && how.Flags&linux.O_TMPFILE != linux.O_TMPFILE {
		return 0, unix.EINVAL
	}
	if how.Resolve&linux.RESOLVE_CACHED != 0 {
		// Nothing is known to be cached without I/O here.
		return 0, unix.EAGAIN
	}
	return openatResolve(t, args[0].Int(), args[1].Pointer(), uint32(how.Flags), uint32(how.Mode), how.Resolve)
}

func openat(t *kernel.Task, dirfd int32, addr hostarch.Addr, flags, mode uint32) (uintptr, error) {
	return openatResolve(t, dirfd, addr, flags, mode, 0)
}

func openatResolve(t *kernel.Task, dirfd int32, addr hostarch.Addr, flags, mode uint32, resolve uint64) (uintptr, error) {
	tp, err := pathArg(t, dirfd, addr, flags&linux.O_NOFOLLOW == 0, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	tp.pop.Resolve = resolve
	if resolve&(linux.RESOLVE_IN_ROOT|linux.RESOLVE_BENEATH) != 0 && tp.file == nil && dirfd != linux.AT_FDCWD {
		// An absolute path still starts at dirfd, which bounds the walk.
		f, err := getFile(t, dirfd)
		if err != nil {
			return 0, err
		}
		tp.file = f
		tp.pop.Start.DecRef(t)
		tp.pop.Start = f.VirtualDentry()
		tp.pop.Start.IncRef()
	}
	if flags&linux.O_CREAT != 0 || flags&linux.O_TMPFILE == linux.O_TMPFILE {
		mode = mode &^ t.FSContext().Umask() & 0o7777
	} else {
		mode = 0
	}
	f, err := vfsOf(t).OpenAt(t, t.Credentials(), &tp.pop, &vfs.OpenOptions{Flags: flags, Mode: mode})
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	fd, err := t.FDTable().NewFD(0, fdLimit(t), f, kernel.FDFlags{CloseOnExec: flags&linux.O_CLOEXEC != 0})
	return uintptr(fd), err
}

// statToLinux converts a statx result to struct stat.
func statToLinux(sx *vfs.Statx, st *linux.Stat) {
	*st = linux.Stat{
		Dev: unix.Mkdev(sx.Dev_major, sx.Dev_minor), Ino: sx.Ino, Nlink: uint64(sx.Nlink),
		Mode: uint32(sx.Mode), UID: sx.Uid, GID: sx.Gid,
		Rdev: unix.Mkdev(sx.Rdev_major, sx.Rdev_minor), Size: int64(sx.Size),
		Blksize: int64(sx.Blksize), Blocks: int64(sx.Blocks),
		ATime: linux.Timespec{Sec: sx.Atime.Sec, Nsec: int64(sx.Atime.Nsec)},
		MTime: linux.Timespec{Sec: sx.Mtime.Sec, Nsec: int64(sx.Mtime.Nsec)},
		CTime: linux.Timespec{Sec: sx.Ctime.Sec, Nsec: int64(sx.Ctime.Nsec)},
	}
}

func copyOutStat(t *kernel.Task, addr hostarch.Addr, sx *vfs.Statx) error {
	var st linux.Stat
	statToLinux(sx, &st)
	var buf [linux.SizeOfStat]byte
	st.MarshalBytes(buf[:])
	if _, err := t.CopyOut(addr, buf[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

const basicStatMask = unix.STATX_BASIC_STATS

// Fstat implements fstat(2).
func Fstat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	sx, err := f.Stat(t, vfs.StatOptions{Mask: basicStatMask})
	if err != nil {
		return 0, err
	}
	return 0, copyOutStat(t, args[1].Pointer(), &sx)
}

// Stat implements stat(2).
func Stat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return fstatat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Pointer(), 0)
}

// Lstat implements lstat(2).
func Lstat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return fstatat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Pointer(), linux.AT_SYMLINK_NOFOLLOW)
}

// Newfstatat implements newfstatat(2).
func Newfstatat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return fstatat(t, args[0].Int(), args[1].Pointer(), args[2].Pointer(), args[3].Int())
}

func fstatat(t *kernel.Task, dirfd int32, pathAddr, statAddr hostarch.Addr, flags int32) (uintptr, error) {
	if flags&^(linux.AT_SYMLINK_NOFOLLOW|linux.AT_EMPTY_PATH|linux.AT_NO_AUTOMOUNT) != 0 {
		return 0, unix.EINVAL
	}
	sx, err := statPath(t, dirfd, pathAddr, flags, basicStatMask)
	if err != nil {
		return 0, err
	}
	return 0, copyOutStat(t, statAddr, &sx)
}

func statPath(t *kernel.Task, dirfd int32, pathAddr hostarch.Addr, flags int32, mask uint32) (vfs.Statx, error) {
	tp, err := pathArg(t, dirfd, pathAddr, flags&linux.AT_SYMLINK_NOFOLLOW == 0, flags&linux.AT_EMPTY_PATH != 0)
	if err != nil {
		return vfs.Statx{}, err
	}
	defer tp.release(t)
	if tp.pop.Path == "" && tp.file != nil {
		return tp.file.Stat(t, vfs.StatOptions{Mask: mask})
	}
	if tp.pop.Path == "" && dirfd == linux.AT_FDCWD {
		tp.pop.Path = "."
	}
	return vfsOf(t).StatAt(t, t.Credentials(), &tp.pop, &vfs.StatOptions{Mask: mask})
}

// Statx implements statx(2).
func Statx(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	dirfd, flags, mask := args[0].Int(), args[2].Int(), args[3].Uint()
	if flags&^(linux.AT_SYMLINK_NOFOLLOW|linux.AT_EMPTY_PATH|linux.AT_NO_AUTOMOUNT|linux.AT_STATX_SYNC_TYPE) != 0 ||
		flags&linux.AT_STATX_SYNC_TYPE == linux.AT_STATX_SYNC_TYPE || mask&unix.STATX__RESERVED != 0 {
		return 0, unix.EINVAL
	}
	sx, err := statPath(t, dirfd, args[1].Pointer(), flags, mask)
	if err != nil {
		return 0, err
	}
	out := linux.Statx{
		Mask: sx.Mask, Blksize: sx.Blksize, Attributes: sx.Attributes, Nlink: sx.Nlink,
		UID: sx.Uid, GID: sx.Gid, Mode: sx.Mode, Ino: sx.Ino, Size: sx.Size, Blocks: sx.Blocks,
		AttributesMask: sx.Attributes_mask,
		ATime:          linux.StatxTimestamp{Sec: sx.Atime.Sec, Nsec: sx.Atime.Nsec},
		BTime:          linux.StatxTimestamp{Sec: sx.Btime.Sec, Nsec: sx.Btime.Nsec},
		CTime:          linux.StatxTimestamp{Sec: sx.Ctime.Sec, Nsec: sx.Ctime.Nsec},
		MTime:          linux.StatxTimestamp{Sec: sx.Mtime.Sec, Nsec: sx.Mtime.Nsec},
		RdevMajor:      sx.Rdev_major, RdevMinor: sx.Rdev_minor,
		DevMajor: sx.Dev_major, DevMinor: sx.Dev_minor, MntID: sx.Mnt_id,
	}
	var buf [linux.SizeOfStatx]byte
	out.MarshalBytes(buf[:])
	if _, err := t.CopyOut(args[4].Pointer(), buf[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Access implements access(2).
func Access(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return faccessat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Uint(), 0)
}

// Faccessat implements faccessat(2).
func Faccessat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return faccessat(t, args[0].Int(), args[1].Pointer(), args[2].Uint(), 0)
}

// Faccessat2 implements faccessat2(2).
func Faccessat2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return faccessat(t, args[0].Int(), args[1].Pointer(), args[2].Uint(), args[3].Int())
}

func faccessat(t *kernel.Task, dirfd int32, addr hostarch.Addr, mode uint32, flags int32) (uintptr, error) {
	if mode&^(linux.R_OK|linux.W_OK|linux.X_OK) != 0 {
		return 0, unix.EINVAL
	}
	if flags&^(linux.AT_EACCESS|linux.AT_SYMLINK_NOFOLLOW|linux.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	tp, err := pathArg(t, dirfd, addr, flags&linux.AT_SYMLINK_NOFOLLOW == 0, flags&linux.AT_EMPTY_PATH != 0)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	creds := t.Credentials()
	if flags&linux.AT_EACCESS == 0 {
		// access(2) checks with the real IDs, and root's capabilities
		// only if the real UID is root.
		c := creds.Fork()
		c.EffectiveUID, c.FilesystemUID = c.RealUID, c.RealUID
		c.EffectiveGID, c.FilesystemGID = c.RealGID, c.RealGID
		if c.RealUID != auth.RootUID {
			c.EffectiveCaps = 0
		}
		creds = c
	}
	if tp.pop.Path == "" && tp.file != nil {
		sx, err := tp.file.Stat(t, vfs.StatOptions{Mask: basicStatMask})
		if err != nil {
			return 0, err
		}
		return 0, vfs.GenericCheckPermissions(creds, vfs.AccessTypes(mode), uint32(sx.Mode), auth.UID(sx.Uid), auth.GID(sx.Gid))
	}
	return 0, vfsOf(t).AccessAt(t, creds, &tp.pop, vfs.AccessTypes(mode))
}

// Readlink implements readlink(2).
func Readlink(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return readlinkat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Pointer(), args[2].Int())
}

// Readlinkat implements readlinkat(2).
func Readlinkat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return readlinkat(t, args[0].Int(), args[1].Pointer(), args[2].Pointer(), args[3].Int())
}

func readlinkat(t *kernel.Task, dirfd int32, addr, buf hostarch.Addr, size int32) (uintptr, error) {
	if size <= 0 {
		return 0, unix.EINVAL
	}
	tp, err := pathArg(t, dirfd, addr, false, true)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	if tp.pop.Path == "" {
		// An empty path names dirfd, which must be a symlink (O_PATH).
		if tp.file == nil || tp.file.Inode().Mode()&unix.S_IFMT != unix.S_IFLNK {
			return 0, unix.ENOENT
		}
		target, err := tp.file.Inode().Readlink(t)
		if err != nil {
			return 0, err
		}
		return copyOutTrunc(t, buf, target, size)
	}
	target, err := vfsOf(t).ReadlinkAt(t, t.Credentials(), &tp.pop)
	if err != nil {
		return 0, err
	}
	return copyOutTrunc(t, buf, target, size)
}

func copyOutTrunc(t *kernel.Task, addr hostarch.Addr, s string, size int32) (uintptr, error) {
	if len(s) > int(size) {
		s = s[:size]
	}
	n, err := t.CopyOut(addr, []byte(s))
	if err != nil {
		return 0, unix.EFAULT
	}
	return uintptr(n), nil
}

// Getcwd implements getcwd(2).
func Getcwd(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fsc := t.FSContext()
	root, cwd := fsc.Root(), fsc.WorkingDirectory()
	defer root.DecRef(t)
	defer cwd.DecRef(t)
	p, err := vfsOf(t).PathnameForGetcwd(t, root, cwd)
	if err != nil {
		return 0, err
	}
	size := args[1].Uint64()
	if uint64(len(p))+1 > size {
		return 0, unix.ERANGE
	}
	b := append([]byte(p), 0)
	if _, err := t.CopyOut(args[0].Pointer(), b); err != nil {
		return 0, unix.EFAULT
	}
	return uintptr(len(b)), nil
}

// Chdir implements chdir(2).
func Chdir(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tp, err := pathArg(t, linux.AT_FDCWD, args[0].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	vd, err := vfsOf(t).GetDentryAt(t, t.Credentials(), &tp.pop, &vfs.GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return 0, err
	}
	defer vd.DecRef(t)
	t.FSContext().SetWorkingDirectory(t, vd)
	return 0, nil
}

// Fchdir implements fchdir(2).
func Fchdir(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	vd := f.VirtualDentry()
	ino := vd.Dentry().Inode()
	if ino.Mode()&unix.S_IFMT != unix.S_IFDIR {
		return 0, unix.ENOTDIR
	}
	uid, gid := ino.Owner()
	if err := vfs.GenericCheckPermissions(t.Credentials(), vfs.MayExec, ino.Mode(), uid, gid); err != nil {
		return 0, err
	}
	t.FSContext().SetWorkingDirectory(t, vd)
	return 0, nil
}

// Chroot implements chroot(2).
func Chroot(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if !t.Credentials().HasCapability(auth.CAP_SYS_CHROOT) {
		return 0, unix.EPERM
	}
	tp, err := pathArg(t, linux.AT_FDCWD, args[0].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	vd, err := vfsOf(t).GetDentryAt(t, t.Credentials(), &tp.pop, &vfs.GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return 0, err
	}
	defer vd.DecRef(t)
	t.FSContext().SetRoot(t, vd)
	return 0, nil
}

// Umask implements umask(2).
func Umask(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.FSContext().SwapUmask(args[0].Uint())), nil
}

// Getdents64 implements getdents64(2).
func Getdents64(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	// A removed directory has no entries left, not even "." and "..":
	// Linux reports ENOENT rather than an empty listing.
	if d := f.Dentry(); d != nil && d.IsDead() && f.Inode().Mode()&unix.S_IFMT == unix.S_IFDIR {
		return 0, unix.ENOENT
	}
	size := int(min(args[2].Uint64(), maxRWCount))
	buf := make([]byte, 0, min(size, 64<<10))
	tooSmall := false
	err = f.IterDirents(t, func(d vfs.Dirent) bool {
		reclen := linux.Dirent64RecordLen(len(d.Name))
		if len(buf)+reclen > size {
			tooSmall = len(buf) == 0
			return false
		}
		start := len(buf)
		buf = append(buf, make([]byte, reclen)...)
		rec := buf[start:]
		hdr := linux.Dirent64{Ino: d.Ino, Off: d.NextOff, Reclen: uint16(reclen), Type: d.Type}
		hdr.MarshalBytes(rec)
		copy(rec[linux.SizeOfDirent64Header:], d.Name)
		return true
	})
	if tooSmall {
		return 0, unix.EINVAL
	}
	if err != nil && len(buf) == 0 {
		return 0, err
	}
	if _, err := t.CopyOut(args[1].Pointer(), buf); err != nil {
		return 0, unix.EFAULT
	}
	return uintptr(len(buf)), nil
}

// Mkdir implements mkdir(2).
func Mkdir(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return mkdirat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Uint())
}

// Mkdirat implements mkdirat(2).
func Mkdirat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return mkdirat(t, args[0].Int(), args[1].Pointer(), args[2].Uint())
}

func mkdirat(t *kernel.Task, dirfd int32, addr hostarch.Addr, mode uint32) (uintptr, error) {
	tp, err := pathArg(t, dirfd, addr, false, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	mode = mode &^ t.FSContext().Umask() & 0o1777
	return 0, vfsOf(t).MkdirAt(t, t.Credentials(), &tp.pop, &vfs.MkdirOptions{Mode: mode})
}

// Mknodat implements mknodat(2).
func Mknodat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return mknodat(t, args[0].Int(), args[1].Pointer(), args[2].Uint(), args[3].Uint())
}

// Mknod implements mknod(2).
func Mknod(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return mknodat(t, linux.AT_FDCWD, args[0].Pointer(), args[1].Uint(), args[2].Uint())
}

func mknodat(t *kernel.Task, dirfd int32, addr hostarch.Addr, mode, dev uint32) (uintptr, error) {
	tp, err := pathArg(t, dirfd, addr, false, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	if mode&unix.S_IFMT == 0 {
		mode |= unix.S_IFREG
	}
	perm := mode & 0o7777 &^ t.FSContext().Umask()
	creds := t.Credentials()
	return 0, vfsOf(t).MknodAt(t, creds, &tp.pop, &vfs.MknodOptions{
		Mode: mode&unix.S_IFMT | perm, UID: creds.EffectiveUID, GID: creds.EffectiveGID,
		DevMajor: unix.Major(uint64(dev)), DevMinor: unix.Minor(uint64(dev)),
	})
}

// Unlink implements unlink(2).
func Unlink(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return unlinkat(t, linux.AT_FDCWD, args[0].Pointer(), 0)
}

// Rmdir implements rmdir(2).
func Rmdir(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return unlinkat(t, linux.AT_FDCWD, args[0].Pointer(), linux.AT_REMOVEDIR)
}

// Unlinkat implements unlinkat(2).
func Unlinkat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return unlinkat(t, args[0].Int(), args[1].Pointer(), args[2].Int())
}

func unlinkat(t *kernel.Task, dirfd int32, addr hostarch.Addr, flags int32) (uintptr, error) {
	if flags&^linux.AT_REMOVEDIR != 0 {
		return 0, unix.EINVAL
	}
	tp, err := pathArg(t, dirfd, addr, false, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	if flags&linux.AT_REMOVEDIR != 0 {
		return 0, vfsOf(t).RmdirAt(t, t.Credentials(), &tp.pop)
	}
	return 0, vfsOf(t).UnlinkAt(t, t.Credentials(), &tp.pop)
}

// Rename implements rename(2).
func Rename(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return renameat(t, linux.AT_FDCWD, args[0].Pointer(), linux.AT_FDCWD, args[1].Pointer(), 0)
}

// Renameat implements renameat(2).
func Renameat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return renameat(t, args[0].Int(), args[1].Pointer(), args[2].Int(), args[3].Pointer(), 0)
}

// Renameat2 implements renameat2(2).
func Renameat2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return renameat(t, args[0].Int(), args[1].Pointer(), args[2].Int(), args[3].Pointer(), args[4].Uint())
}

func renameat(t *kernel.Task, olddirfd int32, oldAddr hostarch.Addr, newdirfd int32, newAddr hostarch.Addr, flags uint32) (uintptr, error) {
	if flags&^(linux.RENAME_NOREPLACE|linux.RENAME_EXCHANGE|linux.RENAME_WHITEOUT) != 0 {
		return 0, unix.EINVAL
	}
	otp, err := pathArg(t, olddirfd, oldAddr, false, false)
	if err != nil {
		return 0, err
	}
	defer otp.release(t)
	ntp, err := pathArg(t, newdirfd, newAddr, false, false)
	if err != nil {
		return 0, err
	}
	defer ntp.release(t)
	return 0, vfsOf(t).RenameAt(t, t.Credentials(), &otp.pop, &ntp.pop, &vfs.RenameOptions{Flags: flags})
}

// Symlink implements symlink(2).
func Symlink(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return symlinkat(t, args[0].Pointer(), linux.AT_FDCWD, args[1].Pointer())
}

// Symlinkat implements symlinkat(2).
func Symlinkat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return symlinkat(t, args[0].Pointer(), args[1].Int(), args[2].Pointer())
}

func symlinkat(t *kernel.Task, targetAddr hostarch.Addr, dirfd int32, addr hostarch.Addr) (uintptr, error) {
	target, err := copyInPath(t, targetAddr)
	if err != nil {
		return 0, err
	}
	if target == "" {
		return 0, unix.ENOENT
	}
	tp, err := pathArg(t, dirfd, addr, false, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	return 0, vfsOf(t).SymlinkAt(t, t.Credentials(), &tp.pop, target)
}

// Link implements link(2).
func Link(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return linkat(t, linux.AT_FDCWD, args[0].Pointer(), linux.AT_FDCWD, args[1].Pointer(), 0)
}

// Linkat implements linkat(2).
func Linkat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return linkat(t, args[0].Int(), args[1].Pointer(), args[2].Int(), args[3].Pointer(), args[4].Int())
}

func linkat(t *kernel.Task, olddirfd int32, oldAddr hostarch.Addr, newdirfd int32, newAddr hostarch.Addr, flags int32) (uintptr, error) {
	if flags&^(linux.AT_SYMLINK_FOLLOW|linux.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	if flags&linux.AT_EMPTY_PATH != 0 && !t.Credentials().HasCapability(auth.CAP_DAC_READ_SEARCH) {
		return 0, unix.ENOENT
	}
	otp, err := pathArg(t, olddirfd, oldAddr, flags&linux.AT_SYMLINK_FOLLOW != 0, flags&linux.AT_EMPTY_PATH != 0)
	if err != nil {
		return 0, err
	}
	defer otp.release(t)
	ntp, err := pathArg(t, newdirfd, newAddr, false, false)
	if err != nil {
		return 0, err
	}
	defer ntp.release(t)
	return 0, vfsOf(t).LinkAt(t, t.Credentials(), &otp.pop, &ntp.pop)
}

// setStatPath applies opts to the file a path names (or dirfd itself
// with AT_EMPTY_PATH).
func setStatPath(t *kernel.Task, dirfd int32, addr hostarch.Addr, follow, emptyPath bool, opts *vfs.SetStatOptions) error {
	tp, err := pathArg(t, dirfd, addr, follow, emptyPath)
	if err != nil {
		return err
	}
	defer tp.release(t)
	if tp.pop.Path == "" && tp.file != nil {
		return tp.file.SetStat(t, opts)
	}
	return vfsOf(t).SetStatAt(t, t.Credentials(), &tp.pop, opts)
}

func setStatFD(t *kernel.Task, fd int32, opts *vfs.SetStatOptions) error {
	f, err := getFile(t, fd)
	if err != nil {
		return err
	}
	defer f.DecRef(t)
	return f.SetStat(t, opts)
}

// Chmod implements chmod(2).
func Chmod(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, setStatPath(t, linux.AT_FDCWD, args[0].Pointer(), true, false,
		&vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: args[1].Uint() & 0o7777})
}

// Fchmod implements fchmod(2).
func Fchmod(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, setStatFD(t, args[0].Int(), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: args[1].Uint() & 0o7777})
}

// Fchmodat implements fchmodat(2) (flags must be 0, as Linux's syscall
// takes none).
func Fchmodat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, setStatPath(t, args[0].Int(), args[1].Pointer(), true, false,
		&vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: args[2].Uint() & 0o7777})
}

func chownOpts(uid, gid uint32) *vfs.SetStatOptions {
	o := &vfs.SetStatOptions{}
	if int32(uid) != -1 {
		o.Mask |= unix.STATX_UID
		o.UID = auth.UID(uid)
	}
	if int32(gid) != -1 {
		o.Mask |= unix.STATX_GID
		o.GID = auth.GID(gid)
	}
	return o
}

// Chown implements chown(2).
func Chown(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, setStatPath(t, linux.AT_FDCWD, args[0].Pointer(), true, false, chownOpts(args[1].Uint(), args[2].Uint()))
}

// Lchown implements lchown(2).
func Lchown(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, setStatPath(t, linux.AT_FDCWD, args[0].Pointer(), false, false, chownOpts(args[1].Uint(), args[2].Uint()))
}

// Fchown implements fchown(2).
func Fchown(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, setStatFD(t, args[0].Int(), chownOpts(args[1].Uint(), args[2].Uint()))
}

// Fchownat implements fchownat(2).
func Fchownat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	flags := args[4].Int()
	if flags&^(linux.AT_SYMLINK_NOFOLLOW|linux.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	return 0, setStatPath(t, args[0].Int(), args[1].Pointer(), flags&linux.AT_SYMLINK_NOFOLLOW == 0,
		flags&linux.AT_EMPTY_PATH != 0, chownOpts(args[2].Uint(), args[3].Uint()))
}

// Truncate implements truncate(2).
func Truncate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	l := args[1].Int64()
	if l < 0 {
		return 0, unix.EINVAL
	}
	tp, err := pathArg(t, linux.AT_FDCWD, args[0].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	// RLIMIT_FSIZE bounds growing a regular file, not shrinking it.
	if st, err := vfsOf(t).StatAt(t, t.Credentials(), &tp.pop, &vfs.StatOptions{Mask: unix.STATX_TYPE | unix.STATX_SIZE}); err == nil {
		if err := limitTruncate(t, st, l); err != nil {
			return 0, err
		}
	}
	return 0, vfsOf(t).SetStatAt(t, t.Credentials(), &tp.pop, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: uint64(l)})
}

// limitTruncate applies RLIMIT_FSIZE to truncating a file whose
// attributes are st to size bytes.
func limitTruncate(t *kernel.Task, st vfs.Statx, size int64) error {
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFREG || uint64(size) <= st.Size {
		return nil
	}
	return t.LimitSize(size)
}

// Ftruncate implements ftruncate(2).
func Ftruncate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	l := args[1].Int64()
	if l < 0 {
		return 0, unix.EINVAL
	}
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if f.IsWritable() {
		if st, err := f.Stat(t, vfs.StatOptions{Mask: unix.STATX_TYPE | unix.STATX_SIZE}); err == nil {
			if err := limitTruncate(t, st, l); err != nil {
				return 0, err
			}
		}
	}
	return 0, f.SetStat(t, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: uint64(l)})
}

// Utimensat implements utimensat(2).
func Utimensat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	dirfd, pathAddr, timesAddr, flags := args[0].Int(), args[1].Pointer(), args[2].Pointer(), args[3].Int()
	if flags&^(linux.AT_SYMLINK_NOFOLLOW|linux.AT_EMPTY_PATH) != 0 {
		return 0, unix.EINVAL
	}
	opts := &vfs.SetStatOptions{Mask: unix.STATX_ATIME | unix.STATX_MTIME}
	if timesAddr == 0 {
		opts.Atime = unix.Timespec{Nsec: unix.UTIME_NOW}
		opts.Mtime = unix.Timespec{Nsec: unix.UTIME_NOW}
	} else {
		var b [32]byte
		if _, err := t.CopyIn(timesAddr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		opts.Atime = unix.Timespec{Sec: int64(le64(b[0:])), Nsec: int64(le64(b[8:]))}
		opts.Mtime = unix.Timespec{Sec: int64(le64(b[16:])), Nsec: int64(le64(b[24:]))}
		for _, ts := range []unix.Timespec{opts.Atime, opts.Mtime} {
			if ts.Nsec != unix.UTIME_NOW && ts.Nsec != unix.UTIME_OMIT && (ts.Nsec < 0 || ts.Nsec >= 1e9) {
				return 0, unix.EINVAL
			}
		}
	}
	if pathAddr == 0 {
		// futimens(3): the file itself.
		return 0, setStatFD(t, dirfd, opts)
	}
	return 0, setStatPath(t, dirfd, pathAddr, flags&linux.AT_SYMLINK_NOFOLLOW == 0, flags&linux.AT_EMPTY_PATH != 0, opts)
}

func copyOutStatfs(t *kernel.Task, addr hostarch.Addr, s *vfs.Statfs) error {
	var b [120]byte
	put := func(off int, v uint64) {
		for i := 0; i < 8; i++ {
			b[off+i] = byte(v >> (8 * i))
		}
	}
	put(0, uint64(s.Type))
	put(8, uint64(s.Bsize))
	put(16, s.Blocks)
	put(24, s.Bfree)
	put(32, s.Bavail)
	put(40, s.Files)
	put(48, s.Ffree)
	putLE32(b[56:], uint32(s.Fsid.Val[0]))
	putLE32(b[60:], uint32(s.Fsid.Val[1]))
	put(64, uint64(s.Namelen))
	put(72, uint64(s.Frsize))
	put(80, uint64(s.Flags))
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// Statfs implements statfs(2).
func Statfs(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tp, err := pathArg(t, linux.AT_FDCWD, args[0].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	s, err := vfsOf(t).StatFSAt(t, t.Credentials(), &tp.pop)
	if err != nil {
		return 0, err
	}
	return 0, copyOutStatfs(t, args[1].Pointer(), &s)
}

// Fstatfs implements fstatfs(2).
func Fstatfs(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	s, err := f.Inode().StatFS(t)
	if err != nil {
		return 0, err
	}
	return 0, copyOutStatfs(t, args[1].Pointer(), &s)
}
