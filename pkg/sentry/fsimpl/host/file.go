package host

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// JobControl is the sandbox kernel's view of a terminal's foreground
// process group (tcgetpgrp/tcsetpgrp): group IDs are the sandbox's, not the
// host's, and the kernel decides who may change them.
type JobControl interface {
	// Foreground returns the foreground process group ID (TIOCGPGRP).
	Foreground(ctx context.Context) (int32, error)
	// SetForeground makes pgid the foreground group (TIOCSPGRP).
	SetForeground(ctx context.Context, pgid int32) error
}

// bounceSize bounds one host read or write; larger requests are served in
// several host calls (regular files) or short (streams, as pipes do).
const bounceSize = 64 << 10

var bouncePool = sync.Pool{New: func() any { b := make([]byte, bounceSize); return &b }}

// termiosSize is the size of the kernel's struct termios that TCGETS and
// TCSETS* copy (c_ispeed/c_ospeed are termios2's).
const termiosSize = 36

// file is an imported host descriptor.
type file struct {
	inode    *inode
	hostFD   int
	isTTY    bool
	seekable bool
	watched  bool
	queue    waiter.Queue
	jc       JobControl
	// fgPGID is the foreground group when no JobControl is set; 0 until
	// a TIOCSPGRP names one.
	fgPGID atomic.Int32

	// ownOffset is set for a reopened regular file: it reads and writes
	// at off, its own position, instead of the host description's.
	ownOffset bool
	// appendMode is set for a reopening with O_APPEND: each write starts
	// at the end of the file.
	appendMode bool
	offMu      sync.Mutex
	off        int64
}

// Release implements vfs.FileDescriptionImpl: it closes the host fd.
func (f *file) Release(context.Context) {
	if f.watched {
		hostNotifier.remove(int32(f.hostFD))
	}
	f.inode.release(f.hostFD)
}

func (f *file) read(ctx context.Context, dst usermem.IOSequence, offset int64) (int64, error) {
	bp := bouncePool.Get().(*[]byte)
	defer bouncePool.Put(bp)
	var total int64
	for dst.NumBytes() > 0 {
		b := (*bp)[:min(int64(len(*bp)), dst.NumBytes())]
		var n int
		var err error
		if offset >= 0 {
			n, err = unix.Pread(f.hostFD, b, offset+total)
		} else {
			n, err = unix.Read(f.hostFD, b)
		}
		if err == unix.EINTR {
			continue
		}
		if n > 0 {
			c, cerr := dst.CopyOut(ctx, b[:n])
			total += int64(c)
			if cerr != nil {
				return total, cerr
			}
			dst = dst.DropFirst(int64(c))
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		// A stream gives what it has; a regular file is read until the
		// request is full or the end.
		if n < len(b) || !f.seekable {
			break
		}
	}
	return total, nil
}

func (f *file) write(ctx context.Context, src usermem.IOSequence, offset int64) (int64, error) {
	bp := bouncePool.Get().(*[]byte)
	defer bouncePool.Put(bp)
	var total int64
	for src.NumBytes() > 0 {
		b := (*bp)[:min(int64(len(*bp)), src.NumBytes())]
		c, err := src.CopyIn(ctx, b)
		if c == 0 {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		b = b[:c]
		for len(b) > 0 {
			var n int
			var werr error
			if offset >= 0 {
				n, werr = unix.Pwrite(f.hostFD, b, offset+total)
			} else {
				n, werr = unix.Write(f.hostFD, b)
			}
			if werr == unix.EINTR {
				continue
			}
			if n > 0 {
				total += int64(n)
				b = b[n:]
			}
			if werr != nil {
				if total > 0 {
					return total, nil
				}
				return 0, werr
			}
		}
		src = src.DropFirst(int64(c))
	}
	return total, nil
}

// Read implements vfs.FileDescriptionImpl.
func (f *file) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	if f.ownOffset {
		f.offMu.Lock()
		defer f.offMu.Unlock()
		n, err := f.read(ctx, dst, f.off)
		f.off += n
		return n, err
	}
	return f.read(ctx, dst, -1)
}

// PRead implements vfs.FileDescriptionImpl.
func (f *file) PRead(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, offset int64, _ vfs.ReadOptions) (int64, error) {
	if !f.seekable {
		return 0, unix.ESPIPE
	}
	return f.read(ctx, dst, offset)
}

// Write implements vfs.FileDescriptionImpl.
func (f *file) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	if f.ownOffset {
		f.offMu.Lock()
		defer f.offMu.Unlock()
		if f.appendMode {
			var st unix.Stat_t
			if err := unix.Fstat(f.hostFD, &st); err != nil {
				return 0, err
			}
			f.off = st.Size
		}
		n, err := f.write(ctx, src, f.off)
		f.off += n
		return n, err
	}
	return f.write(ctx, src, -1)
}

// PWrite implements vfs.FileDescriptionImpl.
func (f *file) PWrite(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, offset int64, _ vfs.WriteOptions) (int64, error) {
	if !f.seekable {
		return 0, unix.ESPIPE
	}
	return f.write(ctx, src, offset)
}

// Seek implements vfs.FileDescriptionImpl: the host decides (ESPIPE for
// pipes and terminals).
func (f *file) Seek(_ context.Context, _ *vfs.FileDescription, offset int64, whence int32) (int64, error) {
	if !f.ownOffset {
		return unix.Seek(f.hostFD, offset, int(whence))
	}
	f.offMu.Lock()
	defer f.offMu.Unlock()
	var base int64
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		base = f.off
	case unix.SEEK_END:
		var st unix.Stat_t
		if err := unix.Fstat(f.hostFD, &st); err != nil {
			return 0, err
		}
		base = st.Size
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		// Without touching the shared host position: the file is taken
		// as one extent of data, as lseek(2) allows.
		var st unix.Stat_t
		if err := unix.Fstat(f.hostFD, &st); err != nil {
			return 0, err
		}
		if offset < 0 || offset >= st.Size {
			return 0, unix.ENXIO
		}
		if whence == unix.SEEK_HOLE {
			offset = st.Size
		}
		f.off = offset
		return offset, nil
	default:
		return 0, unix.EINVAL
	}
	if offset > 0 && base > (1<<63-1)-offset {
		return 0, unix.EOVERFLOW
	}
	if base+offset < 0 {
		return 0, unix.EINVAL
	}
	f.off = base + offset
	return f.off, nil
}

// IterDirents implements vfs.FileDescriptionImpl.
func (f *file) IterDirents(context.Context, *vfs.FileDescription, func(vfs.Dirent) bool) error {
	return unix.ENOTDIR
}

// Ioctl implements vfs.FileDescriptionImpl: terminal ioctls go to the host
// terminal, the foreground group to JobControl; other files say ENOTTY.
func (f *file) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error) {
	cmd := uint(args[1])
	addr := hostarch.Addr(args[2])
	if cmd == unix.TIOCINQ {
		n, err := unix.IoctlGetInt(f.hostFD, unix.TIOCINQ)
		if err != nil {
			return 0, err
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(n))
		_, err = io.CopyOut(ctx, addr, b[:], usermem.IOOpts{})
		return 0, err
	}
	if !f.isTTY {
		return 0, unix.ENOTTY
	}
	switch cmd {
	case unix.TCGETS:
		t, err := unix.IoctlGetTermios(f.hostFD, unix.TCGETS)
		if err != nil {
			return 0, err
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(t)), termiosSize)
		_, err = io.CopyOut(ctx, addr, b, usermem.IOOpts{})
		return 0, err
	case unix.TCSETS, unix.TCSETSW, unix.TCSETSF:
		var t unix.Termios
		b := unsafe.Slice((*byte)(unsafe.Pointer(&t)), termiosSize)
		if _, err := io.CopyIn(ctx, addr, b, usermem.IOOpts{}); err != nil {
			return 0, err
		}
		// TCSETSW/TCSETSF wait for output to drain in the host; a
		// terminal drains quickly and the Sentry has no better choice.
		return 0, unix.IoctlSetTermios(f.hostFD, cmd, &t)
	case unix.TIOCGWINSZ:
		ws, err := unix.IoctlGetWinsize(f.hostFD, unix.TIOCGWINSZ)
		if err != nil {
			return 0, err
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(ws)), unsafe.Sizeof(*ws))
		_, err = io.CopyOut(ctx, addr, b, usermem.IOOpts{})
		return 0, err
	case unix.TIOCSWINSZ:
		var ws unix.Winsize
		b := unsafe.Slice((*byte)(unsafe.Pointer(&ws)), unsafe.Sizeof(ws))
		if _, err := io.CopyIn(ctx, addr, b, usermem.IOOpts{}); err != nil {
			return 0, err
		}
		return 0, unix.IoctlSetWinsize(f.hostFD, unix.TIOCSWINSZ, &ws)
	case unix.TIOCGPGRP:
		var pgid int32
		if f.jc != nil {
			var err error
			if pgid, err = f.jc.Foreground(ctx); err != nil {
				return 0, err
			}
		} else if pgid = f.fgPGID.Load(); pgid == 0 {
			// No sandbox process has this terminal as its
			// controlling terminal: Linux answers ENOTTY, and a
			// shell then runs without job control instead of
			// stopping itself with SIGTTIN to wait for a
			// foreground group that never comes.
			return 0, unix.ENOTTY
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(pgid))
		_, err := io.CopyOut(ctx, addr, b[:], usermem.IOOpts{})
		return 0, err
	case unix.TIOCSPGRP:
		var b [4]byte
		if _, err := io.CopyIn(ctx, addr, b[:], usermem.IOOpts{}); err != nil {
			return 0, err
		}
		pgid := int32(binary.LittleEndian.Uint32(b[:]))
		if pgid < 0 {
			return 0, unix.EINVAL
		}
		if f.jc != nil {
			return 0, f.jc.SetForeground(ctx, pgid)
		}
		f.fgPGID.Store(pgid)
		return 0, nil
	default:
		return 0, unix.ENOTTY
	}
}

// ConfigureMMap implements vfs.FileDescriptionImpl. Host files are not
// mapped into the sandbox.
func (f *file) ConfigureMMap(context.Context, *vfs.FileDescription, *memmap.MMapOpts) error {
	return unix.ENODEV
}

// Sync implements vfs.FileDescriptionImpl.
func (f *file) Sync(context.Context) error {
	if err := unix.Fsync(f.hostFD); err != nil && err != unix.EINVAL && err != unix.EROFS {
		return err
	}
	return nil
}

// Allocate implements vfs.FileDescriptionImpl.
func (f *file) Allocate(_ context.Context, mode, offset, length uint64) error {
	return unix.Fallocate(f.hostFD, uint32(mode), int64(offset), int64(length))
}

// Readiness implements waiter.Waitable by polling the host fd.
func (f *file) Readiness(mask waiter.EventMask) waiter.EventMask {
	if !f.watched {
		// What epoll cannot watch never blocks.
		return mask & (waiter.ReadableEvents | waiter.WritableEvents)
	}
	pfd := []unix.PollFd{{Fd: int32(f.hostFD), Events: int16(mask.ToLinux())}}
	for {
		_, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return mask & waiter.EventErr
		}
		return waiter.EventMaskFromLinux(uint32(uint16(pfd[0].Revents))) & (mask | waiter.EventErr | waiter.EventHUp)
	}
}

// EventRegister implements waiter.Waitable.
func (f *file) EventRegister(e *waiter.Entry) error {
	f.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (f *file) EventUnregister(e *waiter.Entry) { f.queue.EventUnregister(e) }

var _ vfs.FileDescriptionImpl = (*file)(nil)
