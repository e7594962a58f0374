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

// mount(2) flags handled here. Propagation types (MS_SHARED, MS_SLAVE,
// MS_PRIVATE, MS_UNBINDABLE) are accepted and change nothing: every mount
// in the sandbox is private (mount events never propagate).
const (
	msMgcMask       = 0xffff0000
	msMgcVal        = 0xc0ed0000
	msPropagation   = unix.MS_SHARED | unix.MS_SLAVE | unix.MS_PRIVATE | unix.MS_UNBINDABLE
	msIgnored       = unix.MS_SILENT | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_LAZYTIME | unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_MANDLOCK
	msKnown         = unix.MS_RDONLY | vfs.MountFlagsMask | unix.MS_REMOUNT | unix.MS_BIND | unix.MS_REC | unix.MS_MOVE | msPropagation | msIgnored
	mountDataMaxLen = hostarch.PageSize
)

// optionalString reads a NUL-terminated string at addr, or "" for NULL.
func optionalString(t *kernel.Task, addr hostarch.Addr, max int) (string, error) {
	if addr == 0 {
		return "", nil
	}
	return copyInString(t, addr, max, unix.EINVAL)
}

// Mount implements mount(2): new mounts of registered filesystem types
// (tmpfs; proc and sysfs where registered), bind mounts (MS_BIND, with
// MS_REC), remounts changing MS_RDONLY/NOSUID/NODEV/NOEXEC, and
// moves (MS_MOVE), and propagation changes, which are accepted as no-ops
// (all mounts are private).
func Mount(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	flags := args[3].Uint64()
	if flags&msMgcMask == msMgcVal {
		flags &^= msMgcMask
	}
	if !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	if flags&^uint64(msKnown) != 0 {
		return 0, unix.EINVAL
	}
	source, err := optionalString(t, args[0].Pointer(), linux.PATH_MAX-1)
	if err != nil {
		return 0, err
	}
	fstype, err := optionalString(t, args[2].Pointer(), linux.PATH_MAX-1)
	if err != nil {
		return 0, err
	}
	// data is a page of options; tmpfs and friends take a string.
	data, err := optionalString(t, args[4].Pointer(), mountDataMaxLen-1)
	if err != nil {
		return 0, err
	}
	tp, err := pathArg(t, linux.AT_FDCWD, args[1].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	v, creds := vfsOf(t), t.Credentials()
	readOnly := flags&unix.MS_RDONLY != 0
	perMount := uint32(flags) & vfs.MountFlagsMask
	switch {
	case flags&unix.MS_REMOUNT != 0:
		return 0, v.RemountAt(t, creds, &tp.pop, readOnly, perMount)
	case flags&unix.MS_BIND != 0:
		src, err := newTaskPath(t, linux.AT_FDCWD, source, true, false)
		if err != nil {
			return 0, err
		}
		defer src.release(t)
		var m *vfs.Mount
		if flags&unix.MS_REC != 0 {
			m, err = v.BindTreeAt(t, creds, &src.pop, &tp.pop, readOnly)
		} else {
			m, err = v.BindAt(t, creds, &src.pop, &tp.pop, readOnly)
		}
		if err != nil {
			return 0, err
		}
		m.SetFlags(perMount)
		return 0, nil
	case flags&msPropagation != 0:
		// The target must exist and be a mount; nothing propagates.
		vd, err := v.GetDentryAt(t, creds, &tp.pop, nil)
		if err != nil {
			return 0, err
		}
		defer vd.DecRef(t)
		if vd.Dentry() != vd.Mount().Root() {
			return 0, unix.EINVAL
		}
		return 0, nil
	case flags&unix.MS_MOVE != 0:
		src, err := newTaskPath(t, linux.AT_FDCWD, source, true, false)
		if err != nil {
			return 0, err
		}
		defer src.release(t)
		return 0, v.MoveMountAt(t, creds, &src.pop, &tp.pop)
	}
	if fstype == "" {
		return 0, unix.EINVAL
	}
	m, err := v.MountAt(t, creds, source, &tp.pop, fstype, &vfs.MountOptions{
		ReadOnly:             readOnly,
		GetFilesystemOptions: vfs.GetFilesystemOptions{Flags: flags, Data: data},
	})
	if err != nil {
		return 0, err
	}
	m.SetFlags(perMount)
	return 0, nil
}

// Umount2 implements umount2(2): MNT_DETACH unmounts a busy mount lazily;
// MNT_FORCE is accepted (nothing here can hang); MNT_EXPIRE is not
// supported (EINVAL).
func Umount2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	flags := args[1].Int()
	if flags&^(unix.MNT_FORCE|unix.MNT_DETACH|unix.MNT_EXPIRE|unix.UMOUNT_NOFOLLOW) != 0 || flags&unix.MNT_EXPIRE != 0 {
		return 0, unix.EINVAL
	}
	if !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	tp, err := pathArg(t, linux.AT_FDCWD, args[0].Pointer(), flags&unix.UMOUNT_NOFOLLOW == 0, false)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	return 0, vfsOf(t).UmountAt(t, t.Credentials(), &tp.pop, &vfs.UmountOptions{Detach: flags&unix.MNT_DETACH != 0})
}

// PivotRoot implements pivot_root(2) for the caller: its root and, if it
// was there, its working directory move to the new root. (Linux moves
// every process whose root or cwd was the old root; other processes keep
// theirs here.)
func PivotRoot(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	nr, err := pathArg(t, linux.AT_FDCWD, args[0].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer nr.release(t)
	po, err := pathArg(t, linux.AT_FDCWD, args[1].Pointer(), true, false)
	if err != nil {
		return 0, err
	}
	defer po.release(t)
	fsc := t.FSContext()
	root := fsc.Root()
	defer root.DecRef(t)
	newRoot, err := vfsOf(t).PivotRoot(t, t.Credentials(), root, &nr.pop, &po.pop)
	if err != nil {
		return 0, err
	}
	defer newRoot.DecRef(t)
	cwd := fsc.WorkingDirectory()
	if cwd.Mount() == root.Mount() && cwd.Dentry() == root.Dentry() {
		fsc.SetWorkingDirectory(t, newRoot)
	}
	cwd.DecRef(t)
	fsc.SetRoot(t, newRoot)
	return 0, nil
}
