package linux

import (
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/inotify"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// InotifyInit implements inotify_init(2).
func InotifyInit(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return inotifyInit1(t, 0)
}

// InotifyInit1 implements inotify_init1(2).
func InotifyInit1(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return inotifyInit1(t, args[0].Uint())
}

func inotifyInit1(t *kernel.Task, flags uint32) (uintptr, error) {
	f, err := inotify.New(t, vfsOf(t), flags)
	if err != nil {
		return 0, err
	}
	return installFD(t, f, flags&unix.IN_CLOEXEC != 0)
}

// inotifyFile returns the inotify instance at fd: EBADF for no file,
// EINVAL for another kind of file.
func inotifyFile(t *kernel.Task, fd int32) (*vfs.FileDescription, *inotify.Instance, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return nil, nil, err
	}
	in := inotify.FromFile(f)
	if in == nil {
		f.DecRef(t)
		return nil, nil, unix.EINVAL
	}
	return f, in, nil
}

// InotifyAddWatch implements inotify_add_watch(2).
func InotifyAddWatch(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fd, addr, mask := args[0].Int(), args[1].Pointer(), args[2].Uint()
	f, in, err := inotifyFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if mask&unix.IN_ALL_EVENTS == 0 {
		return 0, unix.EINVAL
	}
	tp, err := pathArg(t, unix.AT_FDCWD, addr, mask&unix.IN_DONT_FOLLOW == 0, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	creds := t.Credentials()
	vd, err := vfsOf(t).GetDentryAt(t, creds, &tp.pop, nil)
	if err != nil {
		return 0, err
	}
	defer vd.DecRef(t)
	// Watching needs read permission on the file (inotify(7)).
	ino := vd.Dentry().Inode()
	uid, gid := ino.Owner()
	if err := vfs.GenericCheckPermissions(creds, vfs.MayRead, ino.Mode(), uid, gid); err != nil {
		return 0, err
	}
	wd, err := in.AddWatch(vd, mask)
	return uintptr(wd), err
}

// InotifyRmWatch implements inotify_rm_watch(2).
func InotifyRmWatch(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, in, err := inotifyFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	return 0, in.RmWatch(t, args[1].Int())
}
