package pipe

import (
	"context"
	"encoding/binary"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// fileImpl is one open end (or both, for O_RDWR FIFOs) of a pipe.
type fileImpl struct {
	vfs.FileDescriptionDefaults
	p              *Pipe
	reader, writer bool
}

// Pipe returns the pipe behind fd, or nil if fd is not a pipe; for
// F_SETPIPE_SZ/F_GETPIPE_SZ.
func FromFile(fd *vfs.FileDescription) *Pipe {
	if f, ok := fd.Impl().(*fileImpl); ok {
		return f.p
	}
	return nil
}

// Release implements vfs.FileDescriptionImpl.
func (f *fileImpl) Release(context.Context) { f.p.dropEnds(f.reader, f.writer) }

// Read implements vfs.FileDescriptionImpl.
func (f *fileImpl) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	return f.p.read(ctx, dst)
}

// Write implements vfs.FileDescriptionImpl.
func (f *fileImpl) Write(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	return f.p.write(ctx, src, fd.StatusFlags()&unix.O_DIRECT != 0)
}

// Ioctl implements vfs.FileDescriptionImpl: FIONREAD.
func (f *fileImpl) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error) {
	if args[1] != linux.FIONREAD {
		return 0, unix.ENOTTY
	}
	var b [4]byte
	n := f.p.Queued()
	binary.LittleEndian.PutUint32(b[:], uint32(n))
	if _, err := io.CopyOut(ctx, hostarch.Addr(args[2]), b[:], usermem.IOOpts{}); err != nil {
		return 0, err
	}
	return 0, nil
}

// Readiness implements waiter.Waitable.
func (f *fileImpl) Readiness(mask waiter.EventMask) waiter.EventMask {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return f.p.readinessLocked(f.reader, f.writer, mask)
}

// EventRegister implements waiter.Waitable.
func (f *fileImpl) EventRegister(e *waiter.Entry) error {
	f.p.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (f *fileImpl) EventUnregister(e *waiter.Entry) { f.p.queue.EventUnregister(e) }

// newEnd registers an end and returns its implementation.
func (p *Pipe) newEnd(reader, writer bool) *fileImpl {
	p.addEnds(reader, writer)
	return &fileImpl{p: p, reader: reader, writer: writer}
}

// OpenFIFO opens a named pipe per fifo(7) and open(2): O_RDWR opens at
// once; O_RDONLY waits for a writer unless O_NONBLOCK; O_WRONLY waits for a
// reader, or fails with ENXIO under O_NONBLOCK. Waiting uses the context's
// waiter.Blocker; if it is interrupted the open is undone and its error
// returned.
func (p *Pipe) OpenFIFO(ctx context.Context, flags uint32) (vfs.FileDescriptionImpl, error) {
	nonblock := flags&unix.O_NONBLOCK != 0
	switch flags & unix.O_ACCMODE {
	case unix.O_RDWR:
		return p.newEnd(true, true), nil
	case unix.O_RDONLY:
		p.mu.Lock()
		seen := p.wOpens
		p.mu.Unlock()
		f := p.newEnd(true, false)
		if nonblock {
			return f, nil
		}
		if err := p.waitFor(ctx, func() bool { return p.writers > 0 || p.wOpens != seen }); err != nil {
			f.Release(ctx)
			return nil, err
		}
		return f, nil
	case unix.O_WRONLY:
		p.mu.Lock()
		if nonblock && p.readers == 0 {
			p.mu.Unlock()
			return nil, unix.ENXIO
		}
		seen := p.rOpens
		p.mu.Unlock()
		f := p.newEnd(false, true)
		if nonblock {
			return f, nil
		}
		if err := p.waitFor(ctx, func() bool { return p.readers > 0 || p.rOpens != seen }); err != nil {
			f.Release(ctx)
			return nil, err
		}
		return f, nil
	default:
		return nil, unix.EINVAL
	}
}

// OpenAnonymous reopens an anonymous pipe (pipe(2), reached through
// /proc/[pid]/fd/N) with the access mode of flags. Unlike a FIFO's open
// it never waits for a peer nor fails with ENXIO: Linux applies the
// rendezvous only to named pipes, and a reopened pipe is the same pipe
// whether or not its other end is still open.
func (p *Pipe) OpenAnonymous(flags uint32) (vfs.FileDescriptionImpl, error) {
	switch flags & unix.O_ACCMODE {
	case unix.O_RDWR:
		return p.newEnd(true, true), nil
	case unix.O_RDONLY:
		return p.newEnd(true, false), nil
	case unix.O_WRONLY:
		return p.newEnd(false, true), nil
	default:
		return nil, unix.EINVAL
	}
}

// waitFor blocks until cond (evaluated with mu held) holds.
func (p *Pipe) waitFor(ctx context.Context, cond func() bool) error {
	e, ch := waiter.NewChannelEntry(waiter.EventIn)
	p.openQueue.EventRegister(e)
	defer p.openQueue.EventUnregister(e)
	for {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return nil
		}
		if err := waiter.BlockerFromContext(ctx).Block(ch); err != nil {
			return err
		}
	}
}
