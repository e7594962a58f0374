package linux

import (
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/signalfd"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

// Signalfd implements signalfd(2).
func Signalfd(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return signalfd4(t, args[0].Int(), args, 0)
}

// Signalfd4 implements signalfd4(2).
func Signalfd4(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return signalfd4(t, args[0].Int(), args, args[3].Uint())
}

func signalfd4(t *kernel.Task, fd int32, args arch.SyscallArguments, flags uint32) (uintptr, error) {
	if flags&^uint32(unix.SFD_NONBLOCK|unix.SFD_CLOEXEC) != 0 {
		return 0, unix.EINVAL
	}
	mask, err := copyInSigset(t, args[1].Pointer(), args[2].Uint64())
	if err != nil {
		return 0, err
	}
	if fd != -1 {
		f, err := getFile(t, fd)
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t)
		sf, ok := signalfd.FromFile(f)
		if !ok {
			return 0, unix.EINVAL
		}
		sf.SetMask(mask)
		return uintptr(fd), nil
	}
	f, err := signalfd.New(t, vfsOf(t), t, mask, flags)
	if err != nil {
		return 0, err
	}
	return installFD(t, f, flags&unix.SFD_CLOEXEC != 0)
}
