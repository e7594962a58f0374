package linux

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/epoll"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// maxEpollEvents bounds epoll_wait's maxevents (INT_MAX / sizeof event).
const maxEpollEvents = 0x7fffffff / linux.SizeOfEpollEvent

// EpollCreate implements epoll_create(2).
func EpollCreate(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[0].Int() <= 0 {
		return 0, unix.EINVAL
	}
	return epollCreate(t, 0)
}

// EpollCreate1 implements epoll_create1(2).
func EpollCreate1(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return epollCreate(t, args[0].Int())
}

func epollCreate(t *kernel.Task, flags int32) (uintptr, error) {
	f, err := epoll.New(t, vfsOf(t), int(flags))
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	fd, err := t.FDTable().NewFD(0, fdLimit(t), f, kernel.FDFlags{CloseOnExec: flags&unix.EPOLL_CLOEXEC != 0})
	return uintptr(fd), err
}

// EpollCtl implements epoll_ctl(2).
func EpollCtl(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	epfd, op, fd := args[0].Int(), int(args[1].Int()), args[2].Int()
	epf, err := getFile(t, epfd)
	if err != nil {
		return 0, err
	}
	defer epf.DecRef(t)
	f, err := getFile(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	// Regular files and directories cannot be polled (they are always
	// ready): epoll refuses them before looking at anything else.
	if !canPoll(f) {
		return 0, unix.EPERM
	}
	ep, ok := epoll.FromFile(epf)
	if !ok {
		return 0, unix.EINVAL
	}
	var ev unix.EpollEvent
	if op != unix.EPOLL_CTL_DEL {
		var b [linux.SizeOfEpollEvent]byte
		if _, err := t.CopyIn(args[3].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
		ev = unix.EpollEvent{Events: le32(b[0:]), Fd: int32(le32(b[4:])), Pad: int32(le32(b[8:]))}
	}
	return 0, ep.Ctl(t, op, f, fd, &ev)
}

// canPoll reports whether epoll may watch f: not a regular file or a
// directory, whose readiness never changes (Linux: no poll operation).
func canPoll(f *vfs.FileDescription) bool {
	if f.Dentry() == nil || f.Inode() == nil {
		return true
	}
	switch f.Inode().Mode() & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR:
		return false
	}
	return true
}

// epollWait waits for events on epfd until deadline (zero: forever;
// nowait: not at all) and copies them out.
func epollWait(t *kernel.Task, epfd int32, addr hostarch.Addr, maxEvents int32, deadline time.Time, nowait bool) (uintptr, error) {
	if maxEvents <= 0 || maxEvents > maxEpollEvents {
		return 0, unix.EINVAL
	}
	epf, err := getFile(t, epfd)
	if err != nil {
		return 0, err
	}
	defer epf.DecRef(t)
	ep, ok := epoll.FromFile(epf)
	if !ok {
		return 0, unix.EINVAL
	}
	events := make([]unix.EpollEvent, min(maxEvents, 1024))
	n, err := ep.ReadEvents(events)
	if err == unix.EAGAIN && !nowait {
		var e waiter.Entry
		ch := make(chan struct{}, 1)
		e.Init(waiter.ChannelListener(ch), waiter.ReadableEvents)
		epf.EventRegister(&e)
		defer epf.EventUnregister(&e)
		ps := &pollState{ch: ch}
		for {
			n, err = ep.ReadEvents(events)
			if err != unix.EAGAIN {
				break
			}
			ok, werr := ps.wait(t, deadline)
			if werr != nil {
				// epoll_wait(2) is never restarted.
				return 0, unix.EINTR
			}
			if !ok {
				return 0, nil
			}
		}
	}
	if err == unix.EAGAIN {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	buf := make([]byte, n*linux.SizeOfEpollEvent)
	for i, ev := range events[:n] {
		b := buf[i*linux.SizeOfEpollEvent:]
		putLE32(b[0:], ev.Events)
		putLE32(b[4:], uint32(ev.Fd))
		putLE32(b[8:], uint32(ev.Pad))
	}
	if _, err := t.CopyOut(addr, buf); err != nil {
		return 0, unix.EFAULT
	}
	return uintptr(n), nil
}

func msDeadline(ms int32) (time.Time, bool) {
	switch {
	case ms < 0:
		return time.Time{}, false
	case ms == 0:
		return time.Time{}, true
	}
	return time.Now().Add(time.Duration(ms) * time.Millisecond), false
}

// EpollWait implements epoll_wait(2).
func EpollWait(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	deadline, nowait := msDeadline(args[3].Int())
	return epollWait(t, args[0].Int(), args[1].Pointer(), args[2].Int(), deadline, nowait)
}

// EpollPwait implements epoll_pwait(2).
func EpollPwait(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	deadline, nowait := msDeadline(args[3].Int())
	return epollPwait(t, args, deadline, nowait)
}

// EpollPwait2 implements epoll_pwait2(2): a timespec timeout.
func EpollPwait2(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	deadline, nowait, err := timeoutArg(t, args[3].Pointer())
	if err != nil {
		return 0, err
	}
	return epollPwait(t, args, deadline, nowait)
}

func epollPwait(t *kernel.Task, args arch.SyscallArguments, deadline time.Time, nowait bool) (uintptr, error) {
	mask, haveMask, err := copyInSigmask(t, args[4].Pointer(), args[5].Uint64())
	if err != nil {
		return 0, err
	}
	if haveMask {
		t.SetTemporarySignalMask(mask)
	}
	n, err := epollWait(t, args[0].Int(), args[1].Pointer(), args[2].Int(), deadline, nowait)
	if err == unix.EINTR {
		// The temporary mask stays for the handler to return from.
		return 0, err
	}
	t.RestoreTemporarySignalMask()
	return n, err
}
