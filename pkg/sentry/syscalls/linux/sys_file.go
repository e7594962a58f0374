package linux

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// maxRWCount is the most one read or write transfers (MAX_RW_COUNT).
const maxRWCount = 0x7ffff000

func fdLimit(t *kernel.Task) uint64 {
	return t.ThreadGroup().Limit(linux.RLIMIT_NOFILE).Cur
}

// getFile returns the file at fd with a reference, or EBADF.
func getFile(t *kernel.Task, fd int32) (*vfs.FileDescription, error) {
	f, _, ok := t.FDTable().Get(fd)
	if !ok {
		return nil, unix.EBADF
	}
	return f, nil
}

// isBlocking reports whether operations on f should wait instead of
// returning EAGAIN.
func isBlocking(f *vfs.FileDescription) bool {
	return f.StatusFlags()&linux.O_NONBLOCK == 0
}

// readFile reads from f into dst (at offset, or the file offset when
// offset < 0), waiting while the file has nothing to give if it is
// blocking: the VFS never blocks, so the wait is here.
func readFile(t *kernel.Task, f *vfs.FileDescription, dst usermem.IOSequence, offset int64) (int64, error) {
	n, err := readFileWaiting(t, f, dst, offset)
	t.IOCounts().AccountRead(n) // /proc/[pid]/io rchar, syscr
	return n, err
}

func readFileWaiting(t *kernel.Task, f *vfs.FileDescription, dst usermem.IOSequence, offset int64) (int64, error) {
	n, err := readOnce(t, f, dst, offset)
	if err != unix.EAGAIN || !isBlocking(f) {
		return n, err
	}
	if s, ok := socket.FromFile(f); ok {
		// read(2) on a socket waits as recv(2) does: SO_RCVTIMEO.
		recvTimeout, _ := s.Timeouts()
		var w sockWaiter
		defer w.done()
		for {
			if werr := w.wait(t, f, waiter.ReadableEvents, recvTimeout); werr != nil {
				return 0, werr
			}
			n, err = readOnce(t, f, dst, offset)
			if err != unix.EAGAIN {
				return n, err
			}
		}
	}
	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	if rerr := f.EventRegister(e); rerr != nil {
		return n, err
	}
	defer f.EventUnregister(e)
	for {
		n, err = readOnce(t, f, dst, offset)
		if err != unix.EAGAIN {
			return n, err
		}
		if berr := t.Block(ch); berr != nil {
			return 0, berr
		}
	}
}

func readOnce(t *kernel.Task, f *vfs.FileDescription, dst usermem.IOSequence, offset int64) (int64, error) {
	if offset >= 0 {
		return f.PRead(t, dst, offset, vfs.ReadOptions{})
	}
	return f.Read(t, dst, vfs.ReadOptions{})
}

func writeOnce(t *kernel.Task, f *vfs.FileDescription, src usermem.IOSequence, offset int64) (int64, error) {
	if offset >= 0 {
		return f.PWrite(t, src, offset, vfs.WriteOptions{})
	}
	return f.Write(t, src, vfs.WriteOptions{})
}

// writeFile writes src to f; a blocking file takes all of it, waiting
// for room as needed, unless a signal interrupts after part was written.
func writeFile(t *kernel.Task, f *vfs.FileDescription, src usermem.IOSequence, offset int64) (int64, error) {
	n, err := writeFileWaiting(t, f, src, offset)
	t.IOCounts().AccountWrite(n) // /proc/[pid]/io wchar, syscw
	return n, err
}

func writeFileWaiting(t *kernel.Task, f *vfs.FileDescription, src usermem.IOSequence, offset int64) (int64, error) {
	src, err := limitFileWrite(t, f, src, offset)
	if err != nil {
		return 0, err
	}
	n, err := writeOnce(t, f, src, offset)
	if !isBlocking(f) || (err != unix.EAGAIN && (err != nil || n == src.NumBytes() || n == 0)) {
		return n, err
	}
	total := n
	src = src.DropFirst(n)
	if offset >= 0 {
		offset += n
	}
	// wait sleeps until f may take more: a socket as send(2) does
	// (SO_SNDTIMEO, EAGAIN when it passes), other files until writable.
	var wait func() error
	if s, ok := socket.FromFile(f); ok {
		_, sendTimeout := s.Timeouts()
		var w sockWaiter
		defer w.done()
		if rerr := w.wait(t, f, waiter.WritableEvents, sendTimeout); rerr != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		wait = func() error { return w.wait(t, f, waiter.WritableEvents, sendTimeout) }
	} else {
		e, ch := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
		if rerr := f.EventRegister(e); rerr != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		defer f.EventUnregister(e)
		wait = func() error { return t.Block(ch) }
	}
	for src.NumBytes() > 0 {
		n, err = writeOnce(t, f, src, offset)
		total += n
		src = src.DropFirst(n)
		if offset >= 0 {
			offset += n
		}
		if err != nil && err != unix.EAGAIN {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		if err == unix.EAGAIN || n == 0 {
			if berr := wait(); berr != nil {
				if total > 0 {
					return total, nil
				}
				return 0, berr
			}
		}
	}
	return total, nil
}

// isRegular reports whether f is a regular file (the files RLIMIT_FSIZE
// applies to).
func isRegular(f *vfs.FileDescription) bool {
	return f.Dentry() != nil && f.Inode() != nil && f.Inode().Mode()&unix.S_IFMT == unix.S_IFREG
}

// limitFileWrite applies RLIMIT_FSIZE to a write of src to f at offset (the
// file offset, or the end with O_APPEND, when offset < 0): it returns the
// part that may be written, or EFBIG (and SIGXFSZ) when none may.
func limitFileWrite(t *kernel.Task, f *vfs.FileDescription, src usermem.IOSequence, offset int64) (usermem.IOSequence, error) {
	n, err := limitFileCount(t, f, offset, src.NumBytes())
	if err != nil {
		return src, err
	}
	return src.TakeFirst(n), nil
}

// limitFileCount is limitFileWrite for a count of bytes: how many of n
// may be written to f at offset.
func limitFileCount(t *kernel.Task, f *vfs.FileDescription, offset, n int64) (int64, error) {
	if !t.FileSizeLimited() || !f.IsWritable() || !isRegular(f) || n == 0 {
		return n, nil
	}
	if offset < 0 {
		var err error
		if f.StatusFlags()&linux.O_APPEND != 0 {
			var st vfs.Statx
			st, err = f.Stat(t, vfs.StatOptions{Mask: unix.STATX_SIZE})
			offset = int64(st.Size)
		} else {
			offset, err = f.Seek(t, 0, linux.SEEK_CUR)
		}
		if err != nil {
			return n, nil // the write itself will report the problem
		}
	}
	return t.LimitWrite(offset, n)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// ioSequence is the application buffer [addr, addr+n), n clamped.
func ioSequence(t *kernel.Task, addr hostarch.Addr, n uint64) (usermem.IOSequence, error) {
	l := int64(min(n, maxRWCount))
	return usermem.BytesSequence(t.MemoryManager(), addr, l, usermem.IOOpts{})
}

// Read implements read(2).
func Read(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return rw(t, args[0].Int(), args[1].Pointer(), args[2].Uint64(), -1, false)
}

// Write implements write(2).
func Write(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return rw(t, args[0].Int(), args[1].Pointer(), args[2].Uint64(), -1, true)
}

// Pread64 implements pread64(2).
func Pread64(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	off := args[3].Int64()
	if off < 0 {
		return 0, unix.EINVAL
	}
	return rw(t, args[0].Int(), args[1].Pointer(), args[2].Uint64(), off, false)
}

// Pwrite64 implements pwrite64(2).
func Pwrite64(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	off := args[3].Int64()
	if off < 0 {
		return 0, unix.EINVAL
	}
	return rw(t, args[0].Int(), args[1].Pointer(), args[2].Uint64(), off, true)
}

func rw(t *kernel.Task, fd int32, addr hostarch.Addr, n uint64, off int64, write bool) (uintptr, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if int64(n) < 0 {
		return 0, unix.EINVAL
	}
	seq, err := ioSequence(t, addr, n)
	if err != nil {
		return 0, err
	}
	var c int64
	if write {
		c, err = writeFile(t, f, seq, off)
		raiseSIGPIPE(t, err)
	} else {
		c, err = readFile(t, f, seq, off)
		if c > 0 {
			// Linux reports what was read before a fault or a signal;
			// the error is for the next call to find.
			err = nil
		}
	}
	return uintptr(c), err
}

// raiseSIGPIPE sends SIGPIPE to the writer when a write failed with EPIPE
// (a pipe or socket without readers), as Linux does.
func raiseSIGPIPE(t *kernel.Task, err error) {
	if err == unix.EPIPE {
		t.SendSignal(&linux.SignalInfo{Signo: int32(unix.SIGPIPE), Code: linux.SI_USER})
	}
}

// iovecs reads an iovec array and returns it as an IOSequence, clamping
// the total to MAX_RW_COUNT as Linux does.
func iovecs(t *kernel.Task, addr hostarch.Addr, count int32) (usermem.IOSequence, error) {
	if count < 0 || count > linux.UIO_MAXIOV {
		return usermem.IOSequence{}, unix.EINVAL
	}
	if count == 0 {
		return usermem.IOSequence{}, nil
	}
	raw := make([]byte, 16*int(count))
	if _, err := t.CopyIn(addr, raw); err != nil {
		return usermem.IOSequence{}, unix.EFAULT
	}
	ranges := make([]hostarch.AddrRange, 0, count)
	total := uint64(0)
	for i := 0; i < int(count); i++ {
		base := hostarch.Addr(le64(raw[16*i:]))
		l := le64(raw[16*i+8:])
		if int64(l) < 0 {
			return usermem.IOSequence{}, unix.EINVAL
		}
		if total+l > maxRWCount {
			l = maxRWCount - total
		}
		total += l
		r, ok := base.ToRange(l)
		if !ok {
			return usermem.IOSequence{}, unix.EFAULT
		}
		ranges = append(ranges, r)
	}
	return usermem.RangesSequence(t.MemoryManager(), ranges, usermem.IOOpts{}), nil
}

func rwv(t *kernel.Task, fd int32, addr hostarch.Addr, count int32, off int64, write bool) (uintptr, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	seq, err := iovecs(t, addr, count)
	if err != nil {
		return 0, err
	}
	var c int64
	if write {
		c, err = writeFile(t, f, seq, off)
		raiseSIGPIPE(t, err)
	} else {
		c, err = readFile(t, f, seq, off)
		if c > 0 {
			// Linux reports what was read before a fault or a signal;
			// the error is for the next call to find.
			err = nil
		}
	}
	return uintptr(c), err
}

// Readv implements readv(2).
func Readv(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return rwv(t, args[0].Int(), args[1].Pointer(), args[2].Int(), -1, false)
}

// Writev implements writev(2).
func Writev(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return rwv(t, args[0].Int(), args[1].Pointer(), args[2].Int(), -1, true)
}

// Preadv implements preadv(2) (the offset's high half, args[4], is
// unused on 64-bit).
func Preadv(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	off := args[3].Int64()
	if off < 0 {
		return 0, unix.EINVAL
	}
	return rwv(t, args[0].Int(), args[1].Pointer(), args[2].Int(), off, false)
}

// Pwritev implements pwritev(2).
func Pwritev(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	off := args[3].Int64()
	if off < 0 {
		return 0, unix.EINVAL
	}
	return rwv(t, args[0].Int(), args[1].Pointer(), args[2].Int(), off, true)
}

// preadv2(2)/pwritev2(2) flags (include/uapi/linux/fs.h).
const (
	rwfHIPRI     = 0x1
	rwfDSYNC     = 0x2
	rwfSYNC      = 0x4
	rwfNOWAIT    = 0x8
	rwfAPPEND    = 0x10
	rwfNOAPPEND  = 0x20
	rwfSupported = rwfHIPRI | rwfDSYNC | rwfSYNC | rwfNOWAIT | rwfAPPEND | rwfNOAPPEND
)

// Preadv2 implements preadv2(2): an offset of -1 means the file offset.
// RWF_NOWAIT makes one non-blocking attempt (EAGAIN instead of waiting)
// on pipes, sockets and devices and is EOPNOTSUPP on regular files, as
// on Linux's tmpfs (whose files lack FMODE_NOWAIT);
// RWF_HIPRI asks for polling, which has no meaning here; the write-only
// flags are accepted and do nothing, as on Linux. Flags Linux may refuse
// by file system (RWF_ATOMIC, RWF_DONTCACHE) or does not know are
// EOPNOTSUPP.
func Preadv2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fd, addr, count, off, flags := args[0].Int(), args[1].Pointer(), args[2].Int(), args[3].Int64(), args[5].Uint()
	if off < -1 {
		return 0, unix.EINVAL
	}
	if flags&^rwfSupported != 0 {
		return 0, unix.EOPNOTSUPP
	}
	if flags&rwfNOWAIT == 0 {
		return rwv(t, fd, addr, count, off, false)
	}
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if isRegular(f) {
		return 0, unix.EOPNOTSUPP
	}
	seq, err := iovecs(t, addr, count)
	if err != nil {
		return 0, err
	}
	n, err := readOnce(t, f, seq, off)
	if n > 0 {
		err = nil
	}
	return uintptr(n), err
}

// Pwritev2 implements pwritev2(2). RWF_DSYNC and RWF_SYNC sync the file
// after the write, as O_DSYNC/O_SYNC would; RWF_APPEND writes at the end
// of a regular file whatever the offset (the end is read just before the
// write, so unlike O_APPEND it is not atomic against other writers);
// RWF_NOWAIT makes one non-blocking attempt.
func Pwritev2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fd, addr, count, off, flags := args[0].Int(), args[1].Pointer(), args[2].Int(), args[3].Int64(), args[5].Uint()
	if off < -1 {
		return 0, unix.EINVAL
	}
	if flags&^rwfSupported != 0 {
		return 0, unix.EOPNOTSUPP
	}
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	seq, err := iovecs(t, addr, count)
	if err != nil {
		return 0, err
	}
	if flags&rwfNOWAIT != 0 && isRegular(f) {
		return 0, unix.EOPNOTSUPP
	}
	if flags&rwfAPPEND != 0 && f.StatusFlags()&linux.O_APPEND == 0 {
		if st, serr := f.Stat(t, vfs.StatOptions{Mask: unix.STATX_SIZE}); serr == nil && isRegular(f) {
			off = int64(st.Size)
		}
	} else if flags&rwfAPPEND != 0 {
		off = -1 // the file offset path appends atomically
	}
	var n int64
	if flags&rwfNOWAIT != 0 {
		if seq, err = limitFileWrite(t, f, seq, off); err == nil {
			n, err = writeOnce(t, f, seq, off)
		}
	} else {
		n, err = writeFile(t, f, seq, off)
	}
	raiseSIGPIPE(t, err)
	if n > 0 && flags&(rwfDSYNC|rwfSYNC) != 0 {
		if serr := f.Sync(t); serr != nil && serr != unix.EINVAL {
			return 0, serr
		}
	}
	return uintptr(n), err
}

// Sync implements sync(2). File data reaches the Gofer as it is written,
// and memory file systems have nothing under them, so there is nothing
// buffered to flush.
func Sync(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, nil
}

// Syncfs implements syncfs(2): it checks the descriptor and, as sync(2),
// has nothing buffered to flush.
func Syncfs(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	f.DecRef(t)
	return 0, nil
}

// Lseek implements lseek(2).
func Lseek(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	whence := args[2].Int()
	if whence < linux.SEEK_SET || whence > linux.SEEK_HOLE {
		return 0, unix.EINVAL
	}
	off, err := f.Seek(t, args[1].Int64(), whence)
	return uintptr(off), err
}

// Close implements close(2).
func Close(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, t.FDTable().Remove(t, args[0].Int())
}

// CloseRange implements close_range(2). CLOSE_RANGE_UNSHARE is honoured
// by its result only: the table is not unshared first.
func CloseRange(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	first, last, flags := args[0].Uint(), args[1].Uint(), args[2].Uint()
	if flags&^uint32(unix.CLOSE_RANGE_CLOEXEC|unix.CLOSE_RANGE_UNSHARE) != 0 || first > last {
		return 0, unix.EINVAL
	}
	t.FDTable().RemoveRange(t, first, last, flags&unix.CLOSE_RANGE_CLOEXEC != 0)
	return 0, nil
}

// Dup implements dup(2).
func Dup(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	fd, err := t.FDTable().NewFD(0, fdLimit(t), f, kernel.FDFlags{})
	return uintptr(fd), err
}

// Dup2 implements dup2(2).
func Dup2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	oldfd, newfd := args[0].Int(), args[1].Int()
	if oldfd == newfd {
		f, err := getFile(t, oldfd)
		if err != nil {
			return 0, err
		}
		f.DecRef(t)
		return uintptr(newfd), nil
	}
	return dup3(t, oldfd, newfd, 0)
}

// Dup3 implements dup3(2).
func Dup3(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	oldfd, newfd, flags := args[0].Int(), args[1].Int(), args[2].Int()
	if oldfd == newfd || flags&^linux.O_CLOEXEC != 0 {
		return 0, unix.EINVAL
	}
	return dup3(t, oldfd, newfd, flags)
}

func dup3(t *kernel.Task, oldfd, newfd, flags int32) (uintptr, error) {
	f, err := getFile(t, oldfd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if err := t.FDTable().SetFD(t, newfd, fdLimit(t), f, kernel.FDFlags{CloseOnExec: flags&linux.O_CLOEXEC != 0}); err != nil {
		return 0, err
	}
	return uintptr(newfd), nil
}

// Fcntl implements fcntl(2) for descriptor and status flags and dup.
func Fcntl(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fd, cmd := args[0].Int(), args[1].Int()
	f, flags, ok := t.FDTable().Get(fd)
	if !ok {
		return 0, unix.EBADF
	}
	defer f.DecRef(t)
	switch cmd {
	case linux.F_DUPFD, linux.F_DUPFD_CLOEXEC:
		min := args[2].Int()
		if min < 0 || uint64(min) >= fdLimit(t) {
			return 0, unix.EINVAL
		}
		nfd, err := t.FDTable().NewFD(min, fdLimit(t), f, kernel.FDFlags{CloseOnExec: cmd == linux.F_DUPFD_CLOEXEC})
		return uintptr(nfd), err
	case linux.F_GETFD:
		if flags.CloseOnExec {
			return linux.FD_CLOEXEC, nil
		}
		return 0, nil
	case linux.F_SETFD:
		return 0, t.FDTable().SetFlags(fd, kernel.FDFlags{CloseOnExec: args[2].Int()&linux.FD_CLOEXEC != 0})
	case linux.F_GETFL:
		return uintptr(f.StatusFlags()), nil
	case linux.F_SETFL:
		f.SetStatusFlags(args[2].Uint())
		return 0, nil
	case linux.F_GETLK, linux.F_SETLK, linux.F_SETLKW, linux.F_OFD_GETLK, linux.F_OFD_SETLK, linux.F_OFD_SETLKW:
		return fcntlLock(t, f, cmd, args[2].Pointer())
	case linux.F_GETPIPE_SZ:
		p := pipe.FromFile(f)
		if p == nil {
			return 0, unix.EBADF
		}
		return uintptr(p.Size()), nil
	case linux.F_SETPIPE_SZ:
		p := pipe.FromFile(f)
		if p == nil {
			return 0, unix.EBADF
		}
		n, err := p.SetSize(int64(args[2].Int()))
		return uintptr(n), err
	case linux.F_ADD_SEALS:
		return 0, tmpfs.AddSeals(f, args[2].Uint())
	case linux.F_GET_SEALS:
		seals, err := tmpfs.GetSeals(f)
		return uintptr(seals), err
	default:
		return 0, unix.EINVAL
	}
}

// Ioctl implements ioctl(2): the generic requests here, the rest by the
// file (ENOTTY where it has none).
func Ioctl(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	fd, req := args[0].Int(), args[1].Uint()
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	switch req {
	case linux.FIOCLEX:
		return 0, t.FDTable().SetFlags(fd, kernel.FDFlags{CloseOnExec: true})
	case linux.FIONCLEX:
		return 0, t.FDTable().SetFlags(fd, kernel.FDFlags{})
	case linux.FIONBIO:
		var b [4]byte
		if _, err := t.CopyIn(args[2].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
		fl := f.StatusFlags()
		if le32(b[:]) != 0 {
			fl |= linux.O_NONBLOCK
		} else {
			fl &^= linux.O_NONBLOCK
		}
		f.SetStatusFlags(fl)
		return 0, nil
	}
	var raw [6]uintptr
	for i, a := range args {
		raw[i] = a.Value
	}
	return f.Ioctl(t, t.MemoryManager(), uintptr(linux.SYS_IOCTL), raw)
}

// Pipe implements pipe(2).
func Pipe(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, pipe2(t, args[0].Pointer(), 0)
}

// Pipe2 implements pipe2(2).
func Pipe2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, pipe2(t, args[0].Pointer(), args[1].Uint())
}

func pipe2(t *kernel.Task, addr hostarch.Addr, flags uint32) error {
	if flags&^(linux.O_CLOEXEC|linux.O_NONBLOCK|linux.O_DIRECT) != 0 {
		return unix.EINVAL
	}
	r, w, err := t.Kernel().PipeFS().NewPipe(t, t.Credentials(), flags&^linux.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer r.DecRef(t)
	defer w.DecRef(t)
	fds, err := t.FDTable().NewFDs(t, fdLimit(t), []*vfs.FileDescription{r, w}, kernel.FDFlags{CloseOnExec: flags&linux.O_CLOEXEC != 0})
	if err != nil {
		return err
	}
	var b [8]byte
	putLE32(b[0:], uint32(fds[0]))
	putLE32(b[4:], uint32(fds[1]))
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		t.FDTable().Remove(t, fds[0])
		t.FDTable().Remove(t, fds[1])
		return unix.EFAULT
	}
	return nil
}

// Fsync implements fsync(2) and fdatasync(2).
func Fsync(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	return 0, f.Sync(t)
}

// Fadvise64 implements fadvise64(2): advice is accepted and ignored.
func Fadvise64(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if args[2].Int64() < 0 || args[3].Int() < 0 || args[3].Int() > 5 {
		return 0, unix.EINVAL
	}
	if f.Inode().Mode()&unix.S_IFMT == unix.S_IFIFO {
		return 0, unix.ESPIPE
	}
	return 0, nil
}

// fallocate(2) mode bits (linux/falloc.h).
const (
	fallocKeepSize      = 0x01
	fallocPunchHole     = 0x02
	fallocCollapseRange = 0x08
	fallocZeroRange     = 0x10
	fallocInsertRange   = 0x20
	fallocUnshareRange  = 0x40
	fallocKnown         = fallocKeepSize | fallocPunchHole | fallocCollapseRange | fallocZeroRange | fallocInsertRange | fallocUnshareRange
)

// Fallocate implements fallocate(2), with Linux's checks in Linux's order:
// the arguments, then the mode's combinations, then the file.
func Fallocate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	mode := args[1].Uint64()
	off, l := args[2].Int64(), args[3].Int64()
	switch {
	case off < 0 || l <= 0:
		return 0, unix.EINVAL
	case mode&^fallocKnown != 0:
		return 0, unix.EOPNOTSUPP
	case mode&(fallocPunchHole|fallocZeroRange) == fallocPunchHole|fallocZeroRange:
		return 0, unix.EOPNOTSUPP
	case mode&fallocPunchHole != 0 && mode&fallocKeepSize == 0:
		return 0, unix.EOPNOTSUPP
	case mode&fallocCollapseRange != 0 && mode != fallocCollapseRange,
		mode&fallocInsertRange != 0 && mode != fallocInsertRange,
		mode&fallocUnshareRange != 0 && mode&^(fallocUnshareRange|fallocKeepSize) != 0:
		return 0, unix.EINVAL
	case !f.IsWritable():
		return 0, unix.EBADF
	}
	switch f.Inode().Mode() & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFIFO:
		return 0, unix.ESPIPE
	case unix.S_IFDIR:
		return 0, unix.EISDIR
	default:
		return 0, unix.ENODEV
	}
	if off+l < 0 {
		return 0, unix.EFBIG
	}
	if mode&(fallocKeepSize|fallocPunchHole|fallocCollapseRange) == 0 {
		if err := t.LimitSize(off + l); err != nil {
			return 0, err
		}
	}
	return 0, f.Allocate(t, mode, uint64(off), uint64(l))
}

// sendfileChunk is how much sendfile moves per read/write pair.
const sendfileChunk = 64 << 10

// copyBetween moves up to count bytes from in (at *inOff when not nil,
// advancing it; else the file offset) to out (at outOff likewise), as
// sendfile(2) and copy_file_range(2) do, through a kernel buffer.
func copyBetween(t *kernel.Task, in, out *vfs.FileDescription, inOff, outOff *int64, count int64) (int64, error) {
	n, err := copyChunks(t, in, out, inOff, outOff, count)
	// Linux counts the whole copy as one read and one write of the
	// bytes moved, however many chunks it took.
	c := t.IOCounts()
	c.AccountRead(n)
	c.AccountWrite(n)
	return n, err
}

func copyChunks(t *kernel.Task, in, out *vfs.FileDescription, inOff, outOff *int64, count int64) (int64, error) {
	// RLIMIT_FSIZE cuts the copy before anything is read, so that no
	// input is consumed that cannot be written.
	woff := int64(-1)
	if outOff != nil {
		woff = *outOff
	}
	count, err := limitFileCount(t, out, woff, count)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, min(count, sendfileChunk))
	var done int64
	for done < count {
		chunk := buf[:min(int64(len(buf)), count-done)]
		dst, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: chunk}, 0, int64(len(chunk)), usermem.IOOpts{})
		off := int64(-1)
		if inOff != nil {
			off = *inOff
		}
		// Only the first read may block: after that, return what moved.
		var n int64
		var err error
		if done == 0 {
			n, err = readFileWaiting(t, in, dst, off)
		} else {
			n, err = readOnce(t, in, dst, off)
		}
		if n == 0 || (err != nil && n == 0) {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		if inOff != nil {
			*inOff += n
		}
		src, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: chunk[:n]}, 0, n, usermem.IOOpts{})
		woff := int64(-1)
		if outOff != nil {
			woff = *outOff
		}
		w, werr := writeFileWaiting(t, out, src, woff)
		if outOff != nil {
			*outOff += w
		}
		done += w
		if werr != nil || w < n {
			if done > 0 {
				return done, nil
			}
			return 0, werr
		}
	}
	return done, nil
}

// Sendfile implements sendfile(2).
func Sendfile(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	out, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t)
	in, err := getFile(t, args[1].Int())
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t)
	if !in.IsReadable() || !out.IsWritable() {
		return 0, unix.EBADF
	}
	if out.StatusFlags()&linux.O_APPEND != 0 {
		return 0, unix.EINVAL
	}
	count := args[3].Int64()
	if count < 0 {
		return 0, unix.EINVAL
	}
	count = min(count, maxRWCount)
	offAddr := args[2].Pointer()
	if offAddr == 0 {
		n, err := copyBetween(t, in, out, nil, nil, count)
		return uintptr(n), err
	}
	var b [8]byte
	if _, err := t.CopyIn(offAddr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	off := int64(le64(b[:]))
	if off < 0 {
		return 0, unix.EINVAL
	}
	n, err := copyBetween(t, in, out, &off, nil, count)
	for i := range b {
		b[i] = byte(uint64(off) >> (8 * i))
	}
	if _, cerr := t.CopyOut(offAddr, b[:]); cerr != nil {
		return 0, unix.EFAULT
	}
	return uintptr(n), err
}

// CopyFileRange implements copy_file_range(2) between regular files.
func CopyFileRange(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[5].Uint() != 0 {
		return 0, unix.EINVAL
	}
	in, err := getFile(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer in.DecRef(t)
	out, err := getFile(t, args[2].Int())
	if err != nil {
		return 0, err
	}
	defer out.DecRef(t)
	if !in.IsReadable() || !out.IsWritable() || out.StatusFlags()&linux.O_APPEND != 0 {
		return 0, unix.EBADF
	}
	for _, f := range []*vfs.FileDescription{in, out} {
		switch f.Inode().Mode() & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFDIR:
			return 0, unix.EISDIR
		default:
			return 0, unix.EINVAL
		}
	}
	count := min(args[4].Int64(), maxRWCount)
	if count < 0 {
		return 0, unix.EINVAL
	}
	offs := [2]*int64{}
	addrs := [2]hostarch.Addr{args[1].Pointer(), args[3].Pointer()}
	for i, a := range addrs {
		if a == 0 {
			continue
		}
		var b [8]byte
		if _, err := t.CopyIn(a, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		o := int64(le64(b[:]))
		if o < 0 {
			return 0, unix.EINVAL
		}
		offs[i] = &o
	}
	// With no explicit offsets, the file offsets are used and advanced.
	if offs[0] == nil {
		o, err := in.Seek(t, 0, linux.SEEK_CUR)
		if err != nil {
			return 0, err
		}
		offs[0] = &o
		defer func() { in.Seek(t, o, linux.SEEK_SET) }()
	}
	if offs[1] == nil {
		o, err := out.Seek(t, 0, linux.SEEK_CUR)
		if err != nil {
			return 0, err
		}
		offs[1] = &o
		defer func() { out.Seek(t, o, linux.SEEK_SET) }()
	}
	n, err := copyBetween(t, in, out, offs[0], offs[1], count)
	for i, a := range addrs {
		if a == 0 {
			continue
		}
		var b [8]byte
		for j := range b {
			b[j] = byte(uint64(*offs[i]) >> (8 * j))
		}
		if _, err := t.CopyOut(a, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uintptr(n), err
}
