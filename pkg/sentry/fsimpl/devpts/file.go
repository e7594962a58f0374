package devpts

import (
	"context"
	"encoding/binary"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// termiosSize is the kernel struct termios that TCGETS/TCSETS* copy.
const termiosSize = 36

// end is an open master or replica.
type end struct {
	vfs.FileDescriptionDefaults
	t      *Terminal
	master bool
}

// TerminalFromFile returns the terminal behind a master or replica file.
func TerminalFromFile(fd *vfs.FileDescription) (*Terminal, bool) {
	e, ok := fd.Impl().(*end)
	if !ok {
		return nil, false
	}
	return e.t, true
}

// Release implements vfs.FileDescriptionImpl.
func (e *end) Release(context.Context) {
	t := e.t
	t.mu.Lock()
	if e.master {
		t.masterOpen = false
	} else {
		t.replicaOpens--
	}
	gone := !t.masterOpen && t.replicaOpens == 0
	t.mu.Unlock()
	t.notify()
	if gone || e.master {
		// The number is free once the master goes (Linux drops the pts
		// entry then too).
		t.fs.release(t)
	}
}

// Read implements vfs.FileDescriptionImpl.
func (e *end) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	t := e.t
	if !e.master {
		if sh := t.sessionHooks(); sh != nil {
			if err := sh.CheckAccess(ctx, t, true); err != nil {
				return 0, err
			}
		}
	}
	if dst.NumBytes() == 0 {
		return 0, nil
	}
	t.mu.Lock()
	var b []byte
	if e.master {
		if len(t.out) == 0 {
			hung := t.hadReplica && t.replicaOpens == 0
			t.mu.Unlock()
			if hung {
				return 0, unix.EIO
			}
			return 0, unix.EAGAIN
		}
		k := min(int(dst.NumBytes()), len(t.out))
		b = append([]byte(nil), t.out[:k]...)
		t.out = append(t.out[:0], t.out[k:]...)
	} else {
		var ok bool
		b, ok = t.readReplicaLocked(int(min(dst.NumBytes(), bufSize)))
		if !ok {
			hung := !t.masterOpen
			rawPoll := !t.lflag(unix.ICANON) && t.termios.Cc[unix.VMIN] == 0
			t.mu.Unlock()
			if hung || rawPoll {
				return 0, nil // hang-up reads as end of file; VMIN=0 polls
			}
			return 0, unix.EAGAIN
		}
	}
	t.mu.Unlock()
	t.notify()
	if len(b) == 0 {
		return 0, nil // an end-of-file mark (VEOF on an empty line)
	}
	n, err := dst.CopyOut(ctx, b)
	return int64(n), err
}

// Write implements vfs.FileDescriptionImpl.
func (e *end) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	t := e.t
	if !e.master && t.lflagLocked(unix.TOSTOP) {
		if sh := t.sessionHooks(); sh != nil {
			if err := sh.CheckAccess(ctx, t, false); err != nil {
				return 0, err
			}
		}
	}
	b := make([]byte, min(src.NumBytes(), bufSize))
	n, err := src.CopyIn(ctx, b)
	if n == 0 {
		return 0, err
	}
	b = b[:n]
	t.mu.Lock()
	var took int
	var sigs []unix.Signal
	if e.master {
		took, sigs = t.inputLocked(b)
	} else {
		if !t.masterOpen {
			t.mu.Unlock()
			return 0, unix.EIO
		}
		took = t.outputLocked(b)
	}
	t.mu.Unlock()
	t.notify()
	t.raise(sigs)
	if took == 0 {
		return 0, unix.EAGAIN
	}
	return int64(took), nil
}

// Readiness implements waiter.Waitable.
func (e *end) Readiness(mask waiter.EventMask) waiter.EventMask {
	t := e.t
	t.mu.Lock()
	defer t.mu.Unlock()
	var r waiter.EventMask
	if e.master {
		if len(t.out) > 0 {
			r |= waiter.ReadableEvents
		}
		if t.roomLocked() > 0 || t.lflag(unix.ICANON) {
			r |= waiter.WritableEvents
		}
		if t.hadReplica && t.replicaOpens == 0 {
			r |= waiter.EventHUp
		}
	} else {
		if t.replicaReadableLocked() {
			r |= waiter.ReadableEvents
		}
		if len(t.out) < bufSize {
			r |= waiter.WritableEvents
		}
		if !t.masterOpen {
			r |= waiter.ReadableEvents | waiter.EventHUp
		}
	}
	return r & (mask | waiter.EventErr | waiter.EventHUp)
}

// EventRegister implements waiter.Waitable.
func (e *end) EventRegister(w *waiter.Entry) error {
	if e.master {
		e.t.masterQ.EventRegister(w)
	} else {
		e.t.replicaQ.EventRegister(w)
	}
	return nil
}

// EventUnregister implements waiter.Waitable.
func (e *end) EventUnregister(w *waiter.Entry) {
	if e.master {
		e.t.masterQ.EventUnregister(w)
	} else {
		e.t.replicaQ.EventUnregister(w)
	}
}

func copyOutU32(ctx context.Context, io usermem.IO, addr hostarch.Addr, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	_, err := io.CopyOut(ctx, addr, b[:], usermem.IOOpts{})
	return err
}

func copyInU32(ctx context.Context, io usermem.IO, addr hostarch.Addr) (uint32, error) {
	var b [4]byte
	if _, err := io.CopyIn(ctx, addr, b[:], usermem.IOOpts{}); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// Ioctl implements vfs.FileDescriptionImpl.
func (e *end) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, _ uintptr, args [6]uintptr) (uintptr, error) {
	t := e.t
	cmd := uint(args[1])
	addr := hostarch.Addr(args[2])
	switch cmd {
	case unix.TIOCGPTN:
		if !e.master {
			return 0, unix.ENOTTY
		}
		return 0, copyOutU32(ctx, io, addr, t.index)
	case unix.TIOCSPTLCK:
		if !e.master {
			return 0, unix.ENOTTY
		}
		v, err := copyInU32(ctx, io, addr)
		if err != nil {
			return 0, err
		}
		t.mu.Lock()
		t.locked = v != 0
		t.mu.Unlock()
		return 0, nil
	case unix.TIOCGPTLCK:
		if !e.master {
			return 0, unix.ENOTTY
		}
		t.mu.Lock()
		l := t.locked
		t.mu.Unlock()
		v := uint32(0)
		if l {
			v = 1
		}
		return 0, copyOutU32(ctx, io, addr, v)
	case unix.TCGETS:
		t.mu.Lock()
		tm := t.termios
		t.mu.Unlock()
		_, err := io.CopyOut(ctx, addr, unsafe.Slice((*byte)(unsafe.Pointer(&tm)), termiosSize), usermem.IOOpts{})
		return 0, err
	case unix.TCSETS, unix.TCSETSW, unix.TCSETSF:
		t.mu.Lock()
		tm := t.termios
		t.mu.Unlock()
		if _, err := io.CopyIn(ctx, addr, unsafe.Slice((*byte)(unsafe.Pointer(&tm)), termiosSize), usermem.IOOpts{}); err != nil {
			return 0, err
		}
		t.mu.Lock()
		if cmd == unix.TCSETSF {
			t.ready, t.lineLens, t.line = t.ready[:0], t.lineLens[:0], t.line[:0]
		}
		t.setTermiosLocked(tm)
		t.mu.Unlock()
		t.notify()
		return 0, nil
	case unix.TIOCGWINSZ:
		t.mu.Lock()
		ws := t.winsize
		t.mu.Unlock()
		_, err := io.CopyOut(ctx, addr, unsafe.Slice((*byte)(unsafe.Pointer(&ws)), unsafe.Sizeof(ws)), usermem.IOOpts{})
		return 0, err
	case unix.TIOCSWINSZ:
		var ws unix.Winsize
		if _, err := io.CopyIn(ctx, addr, unsafe.Slice((*byte)(unsafe.Pointer(&ws)), unsafe.Sizeof(ws)), usermem.IOOpts{}); err != nil {
			return 0, err
		}
		t.mu.Lock()
		changed := ws != t.winsize
		t.winsize = ws
		t.mu.Unlock()
		if changed {
			t.raise([]unix.Signal{unix.SIGWINCH})
		}
		return 0, nil
	case unix.TIOCINQ:
		t.mu.Lock()
		n := len(t.out)
		if !e.master {
			n = len(t.ready)
			if t.lflag(unix.ICANON) && len(t.lineLens) == 0 {
				n = 0
			}
		}
		t.mu.Unlock()
		return 0, copyOutU32(ctx, io, addr, uint32(n))
	case unix.TIOCSCTTY, unix.TIOCNOTTY, unix.TIOCGSID:
		sh := t.sessionHooks()
		if sh == nil {
			return 0, unix.ENOTTY
		}
		switch cmd {
		case unix.TIOCSCTTY:
			return 0, sh.SetControlling(ctx, t, args[2] == 1)
		case unix.TIOCNOTTY:
			return 0, sh.ReleaseControlling(ctx, t)
		}
		sid, err := sh.Session(ctx, t)
		if err != nil {
			return 0, err
		}
		return 0, copyOutU32(ctx, io, addr, uint32(sid))
	case unix.TIOCGPGRP:
		t.mu.Lock()
		h, pg := t.hooks, t.fgPGID
		t.mu.Unlock()
		if h != nil {
			var err error
			if pg, err = h.Foreground(ctx, t); err != nil {
				return 0, err
			}
		}
		return 0, copyOutU32(ctx, io, addr, uint32(pg))
	case unix.TIOCSPGRP:
		v, err := copyInU32(ctx, io, addr)
		if err != nil {
			return 0, err
		}
		pg := int32(v)
		if pg < 0 {
			return 0, unix.EINVAL
		}
		t.mu.Lock()
		h := t.hooks
		if h == nil {
			t.fgPGID = pg
		}
		t.mu.Unlock()
		if h != nil {
			return 0, h.SetForeground(ctx, t, pg)
		}
		return 0, nil
	default:
		return 0, unix.ENOTTY
	}
}
