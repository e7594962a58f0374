// Package eventfd owns eventfd(2) files: a 64-bit counter that writes add
// to and reads drain (or, in semaphore mode, decrement by one), with the
// readiness notifications poll and epoll rely on.
package eventfd

import (
	"context"
	"encoding/binary"
	"sync"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// maxCounter is the largest value the counter can hold (2^64 - 2).
const maxCounter = ^uint64(0) - 1

// File is an eventfd.
type File struct {
	vfs.FileDescriptionDefaults
	queue     waiter.Queue
	semaphore bool

	mu  sync.Mutex
	val uint64
}

// New returns an eventfd file description with counter initval. flags may
// hold EFD_SEMAPHORE, EFD_NONBLOCK and EFD_CLOEXEC (the caller applies
// close-on-exec to the FD).
func New(ctx context.Context, v *vfs.VirtualFilesystem, initval uint64, flags uint32) (*vfs.FileDescription, error) {
	if flags&^uint32(unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC) != 0 {
		return nil, unix.EINVAL
	}
	f := &File{semaphore: flags&unix.EFD_SEMAPHORE != 0, val: initval}
	vd := v.NewAnonVirtualDentry("[eventfd]")
	defer vd.DecRef(ctx)
	status := uint32(unix.O_RDWR)
	if flags&unix.EFD_NONBLOCK != 0 {
		status |= unix.O_NONBLOCK
	}
	return vfs.NewFileDescription(f, status, vd), nil
}

// Read implements vfs.FileDescriptionImpl.
func (f *File) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	if dst.NumBytes() < 8 {
		return 0, unix.EINVAL
	}
	f.mu.Lock()
	if f.val == 0 {
		f.mu.Unlock()
		return 0, unix.EAGAIN
	}
	v := f.val
	if f.semaphore {
		v = 1
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if _, err := dst.CopyOut(ctx, b[:]); err != nil {
		f.mu.Unlock()
		return 0, err
	}
	f.val -= v
	f.mu.Unlock()
	f.queue.Notify(waiter.WritableEvents)
	return 8, nil
}

// Write implements vfs.FileDescriptionImpl.
func (f *File) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	if src.NumBytes() < 8 {
		return 0, unix.EINVAL
	}
	var b [8]byte
	if _, err := src.CopyIn(ctx, b[:]); err != nil {
		return 0, err
	}
	if err := f.Signal(binary.LittleEndian.Uint64(b[:])); err != nil {
		// Nothing was written: a caller that trusts the count must not
		// see 8 (the syscall layer would report success on EAGAIN).
		return 0, err
	}
	return 8, nil
}

// Signal adds v to the counter, as a write does: EINVAL for 2^64-1, EAGAIN
// if the counter would pass 2^64-2. Also used by the kernel for AIO and
// io_uring completions.
func (f *File) Signal(v uint64) error {
	if v == ^uint64(0) {
		return unix.EINVAL
	}
	f.mu.Lock()
	if v > maxCounter-f.val {
		f.mu.Unlock()
		return unix.EAGAIN
	}
	f.val += v
	f.mu.Unlock()
	if v > 0 {
		f.queue.Notify(waiter.ReadableEvents)
	}
	return nil
}

// Value returns the counter (/proc/[pid]/fdinfo eventfd-count).
func (f *File) Value() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.val
}

// Readiness implements waiter.Waitable.
func (f *File) Readiness(mask waiter.EventMask) waiter.EventMask {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r waiter.EventMask
	if f.val > 0 {
		r |= waiter.ReadableEvents
	}
	if f.val < maxCounter {
		r |= waiter.WritableEvents
	}
	return r & mask
}

// EventRegister implements waiter.Waitable.
func (f *File) EventRegister(e *waiter.Entry) error {
	f.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (f *File) EventUnregister(e *waiter.Entry) { f.queue.EventUnregister(e) }
