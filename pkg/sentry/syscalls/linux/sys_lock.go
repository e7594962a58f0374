package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Flock implements flock(2).
func Flock(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	op := args[1].Int()
	block := op&unix.LOCK_NB == 0
	switch op &^ unix.LOCK_NB {
	case unix.LOCK_SH:
		return 0, f.LockBSD(t, vfs.ReadLock, block)
	case unix.LOCK_EX:
		return 0, f.LockBSD(t, vfs.WriteLock, block)
	case unix.LOCK_UN:
		f.UnlockBSD(t)
		return 0, nil
	}
	return 0, unix.EINVAL
}

// flockSize is sizeof(struct flock) on amd64.
const flockSize = 32

// fcntlLock serves F_GETLK, F_SETLK, F_SETLKW and their OFD forms.
func fcntlLock(t *kernel.Task, f *vfs.FileDescription, cmd int32, addr hostarch.Addr) (uintptr, error) {
	var b [flockSize]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	ltype, whence := int16(le16(b[0:])), int16(le16(b[2:]))
	start, length, pid := int64(le64(b[8:])), int64(le64(b[16:])), int32(le32(b[24:]))
	ofd := cmd == linux.F_OFD_GETLK || cmd == linux.F_OFD_SETLK || cmd == linux.F_OFD_SETLKW
	if ofd && pid != 0 {
		return 0, unix.EINVAL
	}
	var owner any = t.ThreadGroup()
	if ofd {
		owner = f
	}
	var typ vfs.LockType
	switch ltype {
	case linux.F_RDLCK:
		typ = vfs.ReadLock
	case linux.F_WRLCK:
		typ = vfs.WriteLock
	case linux.F_UNLCK:
		typ = vfs.UnlockType
	default:
		return 0, unix.EINVAL
	}
	r, err := f.ComputeLockRange(t, start, length, whence)
	if err != nil {
		return 0, err
	}
	switch cmd {
	case linux.F_GETLK, linux.F_OFD_GETLK:
		info, err := f.TestPOSIX(t, owner, typ, r)
		if err != nil {
			return 0, err
		}
		out := b
		switch info.Type {
		case vfs.UnlockType:
			putLE16(out[0:], linux.F_UNLCK)
		default:
			lt := uint16(linux.F_RDLCK)
			if info.Type == vfs.WriteLock {
				lt = linux.F_WRLCK
			}
			putLE16(out[0:], lt)
			putLE16(out[2:], linux.SEEK_SET)
			putLE64(out[8:], info.Range.Start)
			l := uint64(0)
			if info.Range.End != vfs.LockEOF {
				l = info.Range.End - info.Range.Start
			}
			putLE64(out[16:], l)
			// Locks record the holder's root PID; the caller sees it
			// in its PID namespace (0 from outside the holder's).
			p := int32(t.IDOf(kernel.ThreadID(info.PID)))
			if ofd {
				p = -1
			}
			putLE32(out[24:], uint32(p))
		}
		if _, err := t.CopyOut(addr, out[:]); err != nil {
			return 0, unix.EFAULT
		}
		return 0, nil
	default:
		if typ == vfs.UnlockType {
			f.UnlockPOSIX(t, owner, r)
			return 0, nil
		}
		block := cmd == linux.F_SETLKW || cmd == linux.F_OFD_SETLKW
		err := f.LockPOSIX(t, owner, int32(t.ThreadGroup().ID()), typ, r, block)
		if err == linux.ERESTARTSYS {
			// fcntl(2): an interrupted F_SETLKW fails with EINTR.
			return 0, unix.EINTR
		}
		return 0, err
	}
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func putLE16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }

func putLE64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}
