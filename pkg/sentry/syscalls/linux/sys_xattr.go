package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

const (
	xattrNameMax = 255      // XATTR_NAME_MAX
	xattrSizeMax = 64 << 10 // XATTR_SIZE_MAX
	xattrListMax = 64 << 10 // XATTR_LIST_MAX
)

// xattrTarget prepares the walk for the path variants (follow: getxattr,
// not lgetxattr) or, with pathAddr 0 and fd >= 0, for the f* variants:
// the open file itself.
func xattrTarget(t *kernel.Task, fd int32, pathAddr hostarch.Addr, follow bool) (*taskPath, error) {
	if fd >= 0 {
		return newTaskPath(t, fd, "", true, true)
	}
	return pathArg(t, linux.AT_FDCWD, pathAddr, follow, false)
}

func copyInXattrName(t *kernel.Task, addr hostarch.Addr) (string, error) {
	name, err := copyInString(t, addr, xattrNameMax, unix.ERANGE)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", unix.ERANGE
	}
	return name, nil
}

func getxattr(t *kernel.Task, fd int32, args arch.SyscallArguments, follow bool) (uintptr, error) {
	tp, err := xattrTarget(t, fd, args[0].Pointer(), follow)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	name, err := copyInXattrName(t, args[1].Pointer())
	if err != nil {
		return 0, err
	}
	v, err := vfsOf(t).GetXattrAt(t, t.Credentials(), &tp.pop, name)
	if err != nil {
		return 0, err
	}
	return copyOutXattrValue(t, args[2].Pointer(), args[3].Uint64(), []byte(v))
}

// copyOutXattrValue answers getxattr(2) and listxattr(2) alike: a zero
// size asks only for the length, a buffer too small is ERANGE.
func copyOutXattrValue(t *kernel.Task, addr hostarch.Addr, size uint64, v []byte) (uintptr, error) {
	if size == 0 {
		return uintptr(len(v)), nil
	}
	if uint64(len(v)) > size {
		return 0, unix.ERANGE
	}
	if _, err := t.CopyOut(addr, v); err != nil {
		return 0, unix.EFAULT
	}
	return uintptr(len(v)), nil
}

// Getxattr implements getxattr(2).
func Getxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return getxattr(t, -1, args, true)
}

// Lgetxattr implements lgetxattr(2).
func Lgetxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return getxattr(t, -1, args, false)
}

// Fgetxattr implements fgetxattr(2).
func Fgetxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[0].Int() < 0 {
		return 0, unix.EBADF
	}
	return getxattr(t, args[0].Int(), args, true)
}

func setxattr(t *kernel.Task, fd int32, args arch.SyscallArguments, follow bool) (uintptr, error) {
	flags := args[4].Uint()
	if flags&^(unix.XATTR_CREATE|unix.XATTR_REPLACE) != 0 {
		return 0, unix.EINVAL
	}
	size := args[3].Uint64()
	if size > xattrSizeMax {
		return 0, unix.E2BIG
	}
	tp, err := xattrTarget(t, fd, args[0].Pointer(), follow)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	name, err := copyInXattrName(t, args[1].Pointer())
	if err != nil {
		return 0, err
	}
	v := make([]byte, size)
	if _, err := t.CopyIn(args[2].Pointer(), v); err != nil {
		return 0, unix.EFAULT
	}
	return 0, vfsOf(t).SetXattrAt(t, t.Credentials(), &tp.pop, name, string(v), flags)
}

// Setxattr implements setxattr(2).
func Setxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return setxattr(t, -1, args, true)
}

// Lsetxattr implements lsetxattr(2).
func Lsetxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return setxattr(t, -1, args, false)
}

// Fsetxattr implements fsetxattr(2).
func Fsetxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[0].Int() < 0 {
		return 0, unix.EBADF
	}
	return setxattr(t, args[0].Int(), args, true)
}

func listxattr(t *kernel.Task, fd int32, args arch.SyscallArguments, follow bool) (uintptr, error) {
	tp, err := xattrTarget(t, fd, args[0].Pointer(), follow)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	names, err := vfsOf(t).ListXattrAt(t, t.Credentials(), &tp.pop)
	if err != nil {
		return 0, err
	}
	var buf []byte
	for _, n := range names {
		buf = append(buf, n...)
		buf = append(buf, 0)
	}
	if len(buf) > xattrListMax {
		return 0, unix.E2BIG
	}
	return copyOutXattrValue(t, args[1].Pointer(), args[2].Uint64(), buf)
}

// Listxattr implements listxattr(2).
func Listxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return listxattr(t, -1, args, true)
}

// Llistxattr implements llistxattr(2).
func Llistxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return listxattr(t, -1, args, false)
}

// Flistxattr implements flistxattr(2).
func Flistxattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[0].Int() < 0 {
		return 0, unix.EBADF
	}
	return listxattr(t, args[0].Int(), args, true)
}

func removexattr(t *kernel.Task, fd int32, args arch.SyscallArguments, follow bool) (uintptr, error) {
	tp, err := xattrTarget(t, fd, args[0].Pointer(), follow)
	if err != nil {
		return 0, err
	}
	defer tp.release(t)
	name, err := copyInXattrName(t, args[1].Pointer())
	if err != nil {
		return 0, err
	}
	return 0, vfsOf(t).RemoveXattrAt(t, t.Credentials(), &tp.pop, name)
}

// Removexattr implements removexattr(2).
func Removexattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return removexattr(t, -1, args, true)
}

// Lremovexattr implements lremovexattr(2).
func Lremovexattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return removexattr(t, -1, args, false)
}

// Fremovexattr implements fremovexattr(2).
func Fremovexattr(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[0].Int() < 0 {
		return 0, unix.EBADF
	}
	return removexattr(t, args[0].Int(), args, true)
}
