// Package signalfd owns signalfd(2) files: reading one takes pending
// signals of a chosen set from the reader's queues as struct
// signalfd_siginfo records, and poll reports it readable while such a
// signal is pending. The kernel supplies the queues through Source, so
// this package does not depend on it.
package signalfd

import (
	"context"
	"encoding/binary"
	"sync"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Source is a task's view of its pending signals (kernel.Task).
type Source interface {
	// DequeueSignal takes the first pending signal in set.
	DequeueSignal(set linux.SignalSet) (linux.SignalInfo, bool)
	// PendingIn reports whether a signal in set is pending.
	PendingIn(set linux.SignalSet) bool
	// SignalWaiters is notified when a signal is queued.
	SignalWaiters() *waiter.Queue
}

// SizeOfSiginfo is sizeof(struct signalfd_siginfo).
const SizeOfSiginfo = 128

// File is a signalfd.
type File struct {
	vfs.FileDescriptionDefaults
	// owner is the creating task: Linux polls the signals of whoever
	// polls, but readiness has no caller here, so the creator answers.
	owner Source

	mu   sync.Mutex
	mask linux.SignalSet
}

// New returns a signalfd file description for mask (SIGKILL and SIGSTOP
// are dropped from it, as Linux does). flags may hold SFD_NONBLOCK and
// SFD_CLOEXEC (the caller applies close-on-exec to the FD).
func New(ctx context.Context, v *vfs.VirtualFilesystem, owner Source, mask linux.SignalSet, flags uint32) (*vfs.FileDescription, error) {
	if flags&^uint32(unix.SFD_NONBLOCK|unix.SFD_CLOEXEC) != 0 {
		return nil, unix.EINVAL
	}
	f := &File{owner: owner, mask: mask &^ linux.UnblockableSignals}
	vd := v.NewAnonVirtualDentry("[signalfd]")
	defer vd.DecRef(ctx)
	status := uint32(unix.O_RDWR)
	if flags&unix.SFD_NONBLOCK != 0 {
		status |= unix.O_NONBLOCK
	}
	return vfs.NewFileDescription(f, status, vd), nil
}

// Mask returns the signals the file reads.
func (f *File) Mask() linux.SignalSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mask
}

// SetMask replaces them (signalfd on an existing descriptor).
func (f *File) SetMask(m linux.SignalSet) {
	f.mu.Lock()
	f.mask = m &^ linux.UnblockableSignals
	f.mu.Unlock()
	// A signal now in the set may already be pending.
	f.owner.SignalWaiters().Notify(waiter.EventIn)
}

// source is the reader's queues when ctx is a task, else the creator's.
func (f *File) source(ctx context.Context) Source {
	if s, ok := ctx.(Source); ok {
		return s
	}
	return f.owner
}

// Read implements vfs.FileDescriptionImpl: as many whole records as fit
// and are pending, EAGAIN when none is (the syscall layer blocks).
func (f *File) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	if dst.NumBytes() < SizeOfSiginfo {
		return 0, unix.EINVAL
	}
	src := f.source(ctx)
	mask := f.Mask()
	var done int64
	for dst.NumBytes() >= SizeOfSiginfo {
		info, ok := src.DequeueSignal(mask)
		if !ok {
			break
		}
		var b [SizeOfSiginfo]byte
		Encode(&info, b[:])
		if _, err := dst.CopyOut(ctx, b[:]); err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		dst = dst.DropFirst(SizeOfSiginfo)
		done += SizeOfSiginfo
	}
	if done == 0 {
		return 0, unix.EAGAIN
	}
	return done, nil
}

// Encode writes info as a struct signalfd_siginfo into b (128 bytes),
// filling the fields its kind of signal carries.
func Encode(info *linux.SignalInfo, b []byte) {
	clear(b[:SizeOfSiginfo])
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(info.Signo))
	le.PutUint32(b[4:], uint32(info.Errno))
	le.PutUint32(b[8:], uint32(info.Code))
	sig := linux.Signal(info.Signo)
	switch {
	case info.Code == linux.SI_TIMER:
		le.PutUint32(b[24:], uint32(info.TimerID()))
		le.PutUint32(b[32:], uint32(info.Overrun()))
		le.PutUint32(b[44:], uint32(info.Value()))
		le.PutUint64(b[48:], info.Value())
	case sig == linux.SIGCHLD && info.Code > 0:
		le.PutUint32(b[12:], uint32(info.Pid()))
		le.PutUint32(b[16:], info.UID())
		le.PutUint32(b[40:], uint32(info.Status()))
		le.PutUint64(b[56:], uint64(info.UTime()))
		le.PutUint64(b[64:], uint64(info.STime()))
	case info.Code > 0 && (sig == linux.SIGSEGV || sig == linux.SIGBUS || sig == linux.SIGILL ||
		sig == linux.SIGFPE || sig == linux.SIGTRAP):
		le.PutUint64(b[72:], info.Addr())
		le.PutUint16(b[80:], uint16(info.AddrLSB()))
	case info.Code > 0 && sig == linux.SIGIO:
		le.PutUint32(b[28:], uint32(info.Band()))
		le.PutUint32(b[20:], uint32(info.Fd()))
	default:
		// kill, tkill and sigqueue: sender and, for queued signals,
		// the value (zero for the others).
		le.PutUint32(b[12:], uint32(info.Pid()))
		le.PutUint32(b[16:], info.UID())
		if info.Code != linux.SI_USER && info.Code != linux.SI_TKILL && info.Code != linux.SI_KERNEL {
			le.PutUint32(b[44:], uint32(info.Value()))
			le.PutUint64(b[48:], info.Value())
		}
	}
}

// Write implements vfs.FileDescriptionImpl: signalfds are not writable.
func (f *File) Write(context.Context, *vfs.FileDescription, usermem.IOSequence, vfs.WriteOptions) (int64, error) {
	return 0, unix.EINVAL
}

// Readiness implements waiter.Waitable.
func (f *File) Readiness(mask waiter.EventMask) waiter.EventMask {
	if mask&waiter.EventIn != 0 && f.owner.PendingIn(f.Mask()) {
		return waiter.EventIn
	}
	return 0
}

// EventRegister implements waiter.Waitable.
func (f *File) EventRegister(e *waiter.Entry) error {
	f.owner.SignalWaiters().EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (f *File) EventUnregister(e *waiter.Entry) { f.owner.SignalWaiters().EventUnregister(e) }

// FromFile returns fd's signalfd, if it is one.
func FromFile(fd *vfs.FileDescription) (*File, bool) {
	f, ok := fd.Impl().(*File)
	return f, ok
}
