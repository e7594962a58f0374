package linux

import (
	"bytes"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/loader"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// copyInString reads a NUL-terminated string of at most maxLen bytes
// (terminator excluded); tooLong is the errno for a longer one.
func copyInString(t *kernel.Task, addr hostarch.Addr, maxLen int, tooLong unix.Errno) (string, error) {
	var out []byte
	var chunk [256]byte
	for len(out) <= maxLen {
		// Read up to the end of the page so a string ending just before
		// an unmapped page is not a fault.
		n := min(len(chunk), int(hostarch.PageSize-addr.PageOffset()))
		c, err := t.CopyIn(addr, chunk[:n])
		if i := bytes.IndexByte(chunk[:c], 0); i >= 0 {
			out = append(out, chunk[:i]...)
			if len(out) > maxLen {
				return "", tooLong
			}
			return string(out), nil
		}
		if err != nil {
			return "", unix.EFAULT
		}
		out = append(out, chunk[:c]...)
		addr += hostarch.Addr(c)
	}
	return "", tooLong
}

// copyInStringVector reads a NULL-terminated array of string pointers,
// within execve's limits (E2BIG beyond them).
func copyInStringVector(t *kernel.Task, addr hostarch.Addr) ([]string, error) {
	var out []string
	total := 0
	if addr == 0 {
		return nil, nil
	}
	var b [8]byte
	for {
		if _, err := t.CopyIn(addr, b[:]); err != nil {
			return nil, unix.EFAULT
		}
		p := hostarch.Addr(le64(b[:]))
		if p == 0 {
			return out, nil
		}
		s, err := copyInString(t, p, loader.MaxArgStrlen-1, unix.E2BIG)
		if err != nil {
			return nil, err
		}
		total += len(s) + 1 + 8
		if total > loader.MaxArgsTotal {
			return nil, unix.E2BIG
		}
		out = append(out, s)
		addr += 8
	}
}

// Execve implements execve(2).
func Execve(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	filename, err := copyInString(t, args[0].Pointer(), linux.PATH_MAX-1, unix.ENAMETOOLONG)
	if err != nil {
		return 0, err
	}
	if filename == "" {
		return 0, unix.ENOENT
	}
	argv, err := copyInStringVector(t, args[1].Pointer())
	if err != nil {
		return 0, err
	}
	envv, err := copyInStringVector(t, args[2].Pointer())
	if err != nil {
		return 0, err
	}
	if err := t.Exec(t, filename, argv, envv); err != nil {
		return 0, err
	}
	return 0, kernel.ErrNoSyscallReturn
}

// Execveat implements execveat(2).
func Execveat(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	dirfd, flags := args[0].Int(), args[4].Int()
	if flags&^(linux.AT_EMPTY_PATH|linux.AT_SYMLINK_NOFOLLOW) != 0 {
		return 0, unix.EINVAL
	}
	filename, err := copyInString(t, args[1].Pointer(), linux.PATH_MAX-1, unix.ENAMETOOLONG)
	if err != nil {
		return 0, err
	}
	argv, err := copyInStringVector(t, args[2].Pointer())
	if err != nil {
		return 0, err
	}
	envv, err := copyInStringVector(t, args[3].Pointer())
	if err != nil {
		return 0, err
	}
	if filename == "" {
		if flags&linux.AT_EMPTY_PATH == 0 {
			return 0, unix.ENOENT
		}
		f, err := getFile(t, dirfd)
		if err != nil {
			return 0, err
		}
		defer f.DecRef(t)
		if err := t.ExecFile(t, "/dev/fd/"+itoa(dirfd), f, vfs.VirtualDentry{}, argv, envv); err != nil {
			return 0, err
		}
		return 0, kernel.ErrNoSyscallReturn
	}
	if filename[0] == '/' || dirfd == linux.AT_FDCWD {
		if err := t.Exec(t, filename, argv, envv); err != nil {
			return 0, err
		}
		return 0, kernel.ErrNoSyscallReturn
	}
	f, err := getFile(t, dirfd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if err := t.ExecFile(t, filename, nil, f.VirtualDentry(), argv, envv); err != nil {
		return 0, err
	}
	return 0, kernel.ErrNoSyscallReturn
}

func itoa(v int32) string {
	if v == 0 {
		return "0"
	}
	var b [12]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
