package linux

import (
	"encoding/binary"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Socket ABI sizes and limits (amd64).
const (
	// sizeofSockaddrStorage bounds every socket address (EINVAL beyond).
	sizeofSockaddrStorage = 128
	// sizeofMsghdr and sizeofMmsghdr are struct msghdr and mmsghdr.
	sizeofMsghdr  = 56
	sizeofMmsghdr = 64
	// sizeofCmsghdr is struct cmsghdr (size_t len, int level, int type).
	sizeofCmsghdr = 16
	// scmMaxFD is SCM_MAX_FD: the most descriptors one sendmsg passes.
	scmMaxFD = 253
	// maxControlLen bounds a sendmsg control buffer (net.core.optmem_max
	// is what Linux checks; larger buffers get ENOBUFS).
	maxControlLen = 128 << 10
	// maxOptLen bounds how much of a setsockopt value is read: no option
	// the Sentry knows is longer.
	maxOptLen = 4096
	// somaxconn is net.core.somaxconn: listen(2)'s backlog cap.
	somaxconn = 4096
	// sockTypeMask selects the type from socket(2)'s type argument;
	// sockMax is SOCK_MAX, past the last type Linux knows (EINVAL).
	sockTypeMask = 0xf
	sockMax      = 11
	// tcpCMInq is TCP_CM_INQ, the control message of TCP_INQ.
	tcpCMInq = 36
)

// cmsgAlign rounds a control message length up as CMSG_ALIGN does.
func cmsgAlign(n int) int { return (n + 7) &^ 7 }

// getSocket returns fd's file and Socket: EBADF for a bad descriptor,
// ENOTSOCK for a file that is not a socket. The caller drops the file's
// reference.
func getSocket(t *kernel.Task, fd int32) (*vfs.FileDescription, socket.Socket, error) {
	f, err := getFile(t, fd)
	if err != nil {
		return nil, nil, err
	}
	s, ok := socket.FromFile(f)
	if !ok {
		f.DecRef(t)
		return nil, nil, unix.ENOTSOCK
	}
	return f, s, nil
}

// copyInAddress reads a socket address of addrlen bytes, as Linux's
// move_addr_to_kernel: EINVAL beyond sockaddr_storage or negative.
func copyInAddress(t *kernel.Task, addr hostarch.Addr, addrlen int32) ([]byte, error) {
	if addrlen < 0 || addrlen > sizeofSockaddrStorage {
		return nil, unix.EINVAL
	}
	b := make([]byte, addrlen)
	if addrlen > 0 {
		if _, err := t.CopyIn(addr, b); err != nil {
			return nil, unix.EFAULT
		}
	}
	return b, nil
}

// readAddrLen reads the socklen_t an address is returned through (EFAULT,
// or EINVAL when negative).
func readAddrLen(t *kernel.Task, lenAddr hostarch.Addr) (int32, error) {
	var b [4]byte
	if _, err := t.CopyIn(lenAddr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	l := int32(le32(b[:]))
	if l < 0 {
		return 0, unix.EINVAL
	}
	return l, nil
}

// copyOutAddress writes addr truncated to bufLen bytes and stores its
// full length at lenAddr, as Linux's move_addr_to_user.
func copyOutAddress(t *kernel.Task, addr []byte, bufAddr hostarch.Addr, bufLen int32, lenAddr hostarch.Addr) error {
	n := min(int(bufLen), len(addr))
	if n > 0 {
		if _, err := t.CopyOut(bufAddr, addr[:n]); err != nil {
			return unix.EFAULT
		}
	}
	var b [4]byte
	putLE32(b[:], uint32(len(addr)))
	if _, err := t.CopyOut(lenAddr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// Socket implements socket(2).
func Socket(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	family, stype, protocol := int(args[0].Int()), int(args[1].Int()), int(args[2].Int())
	if family < 0 || family >= unix.AF_MAX {
		return 0, unix.EAFNOSUPPORT
	}
	if stype&^(sockTypeMask|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 || stype&sockTypeMask >= sockMax {
		return 0, unix.EINVAL
	}
	p, err := t.Kernel().SocketProvider(family)
	if err != nil {
		return 0, err
	}
	f, err := p.Socket(t, stype&sockTypeMask, protocol)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	if stype&unix.SOCK_NONBLOCK != 0 {
		f.SetStatusFlags(f.StatusFlags() | linux.O_NONBLOCK)
	}
	fd, err := t.FDTable().NewFD(0, fdLimit(t), f, kernel.FDFlags{CloseOnExec: stype&unix.SOCK_CLOEXEC != 0})
	return uintptr(fd), err
}

// Socketpair implements socketpair(2).
func Socketpair(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	family, stype, protocol := int(args[0].Int()), int(args[1].Int()), int(args[2].Int())
	addr := args[3].Pointer()
	if family < 0 || family >= unix.AF_MAX {
		return 0, unix.EAFNOSUPPORT
	}
	if stype&^(sockTypeMask|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 || stype&sockTypeMask >= sockMax {
		return 0, unix.EINVAL
	}
	p, err := t.Kernel().SocketProvider(family)
	if err != nil {
		return 0, err
	}
	a, b, err := p.Pair(t, stype&sockTypeMask, protocol)
	if err != nil {
		return 0, err
	}
	defer a.DecRef(t)
	defer b.DecRef(t)
	if stype&unix.SOCK_NONBLOCK != 0 {
		a.SetStatusFlags(a.StatusFlags() | linux.O_NONBLOCK)
		b.SetStatusFlags(b.StatusFlags() | linux.O_NONBLOCK)
	}
	fds, err := t.FDTable().NewFDs(t, fdLimit(t), []*vfs.FileDescription{a, b}, kernel.FDFlags{CloseOnExec: stype&unix.SOCK_CLOEXEC != 0})
	if err != nil {
		return 0, err
	}
	var out [8]byte
	putLE32(out[0:], uint32(fds[0]))
	putLE32(out[4:], uint32(fds[1]))
	if _, err := t.CopyOut(addr, out[:]); err != nil {
		t.FDTable().Remove(t, fds[0])
		t.FDTable().Remove(t, fds[1])
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Bind implements bind(2).
func Bind(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	addr, err := copyInAddress(t, args[1].Pointer(), args[2].Int())
	if err != nil {
		return 0, err
	}
	return 0, s.Bind(t, addr)
}

// Listen implements listen(2).
func Listen(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	backlog := args[1].Int()
	// Linux compares as unsigned: a negative backlog is the maximum.
	if uint32(backlog) > somaxconn {
		backlog = somaxconn
	}
	return 0, s.Listen(t, int(backlog))
}

// sockWaiter waits for a socket's readiness on behalf of one blocking
// call, honouring the socket's timeout. Its first wait only registers
// (the caller retries before sleeping, so no event is lost).
type sockWaiter struct {
	f        *vfs.FileDescription
	e        *waiter.Entry
	ch       <-chan struct{}
	timeout  time.Duration
	deadline time.Time
}

// wait returns nil to retry, EAGAIN when the timeout passed, or the
// interruption errno: ERESTARTSYS without a timeout, EINTR with one
// (socket(7): calls with a timeout are never restarted).
func (w *sockWaiter) wait(t *kernel.Task, f *vfs.FileDescription, mask waiter.EventMask, timeout time.Duration) error {
	if w.e == nil {
		w.f = f
		w.e, w.ch = waiter.NewChannelEntry(mask | waiter.EventHUp | waiter.EventErr)
		if err := f.EventRegister(w.e); err != nil {
			w.e = nil
			return err
		}
		w.timeout = timeout
		if timeout > 0 {
			w.deadline = time.Now().Add(timeout)
		}
		return nil
	}
	if w.timeout == 0 {
		return t.Block(w.ch)
	}
	left := time.Until(w.deadline)
	if left <= 0 {
		return unix.EAGAIN
	}
	_, err := t.BlockTimeout(w.ch, left)
	switch err {
	case nil:
		return nil
	case unix.ETIMEDOUT:
		return unix.EAGAIN
	default:
		return unix.EINTR
	}
}

// done unregisters the waiter.
func (w *sockWaiter) done() {
	if w.e != nil {
		w.f.EventUnregister(w.e)
		w.e = nil
	}
}

// Accept implements accept(2).
func Accept(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return accept4(t, args[0].Int(), args[1].Pointer(), args[2].Pointer(), 0)
}

// Accept4 implements accept4(2).
func Accept4(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return accept4(t, args[0].Int(), args[1].Pointer(), args[2].Pointer(), args[3].Int())
}

func accept4(t *kernel.Task, fd int32, addr, lenAddr hostarch.Addr, flags int32) (uintptr, error) {
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		return 0, unix.EINVAL
	}
	f, s, err := getSocket(t, fd)
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	var bufLen int32
	if addr != 0 {
		if bufLen, err = readAddrLen(t, lenAddr); err != nil {
			return 0, err
		}
	}
	recvTimeout, _ := s.Timeouts()
	var w sockWaiter
	defer w.done()
	var nf *vfs.FileDescription
	var peer []byte
	for {
		nf, peer, err = s.Accept(t, int(flags&unix.SOCK_NONBLOCK))
		if err != unix.EAGAIN || !isBlocking(f) {
			break
		}
		if werr := w.wait(t, f, waiter.ReadableEvents, recvTimeout); werr != nil {
			return 0, werr
		}
	}
	if err != nil {
		return 0, err
	}
	defer nf.DecRef(t)
	if flags&unix.SOCK_NONBLOCK != 0 {
		nf.SetStatusFlags(nf.StatusFlags() | linux.O_NONBLOCK)
	}
	nfd, err := t.FDTable().NewFD(0, fdLimit(t), nf, kernel.FDFlags{CloseOnExec: flags&unix.SOCK_CLOEXEC != 0})
	if err != nil {
		return 0, err
	}
	if addr != 0 {
		if err := copyOutAddress(t, peer, addr, bufLen, lenAddr); err != nil {
			t.FDTable().Remove(t, nfd)
			return 0, err
		}
	}
	return uintptr(nfd), nil
}

// Connect implements connect(2).
func Connect(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	addr, err := copyInAddress(t, args[1].Pointer(), args[2].Int())
	if err != nil {
		return 0, err
	}
	err = s.Connect(t, addr)
	if err == unix.EALREADY && isBlocking(f) {
		// An earlier connect (this one, if restarted after a signal) is
		// still under way: a blocking socket waits for it as Linux does.
		err = unix.EINPROGRESS
	}
	if !isBlocking(f) || (err != unix.EINPROGRESS && err != unix.EAGAIN) {
		return 0, err
	}
	_, sendTimeout := s.Timeouts()
	var w sockWaiter
	defer w.done()
	if err == unix.EAGAIN {
		// A full accept queue (AF_UNIX): wait for room and try again.
		for err == unix.EAGAIN {
			if werr := w.wait(t, f, waiter.WritableEvents, sendTimeout); werr != nil {
				return 0, werr
			}
			err = s.Connect(t, addr)
		}
		if err != unix.EINPROGRESS {
			return 0, err
		}
	}
	// The connection is under way: wait until it settles, then its
	// outcome is SO_ERROR.
	for f.Readiness(waiter.WritableEvents|waiter.EventHUp|waiter.EventErr) == 0 {
		if werr := w.wait(t, f, waiter.WritableEvents, sendTimeout); werr != nil {
			if werr == unix.EAGAIN {
				return 0, unix.EINPROGRESS
			}
			return 0, werr
		}
	}
	v, err := s.GetSockOpt(t, unix.SOL_SOCKET, unix.SO_ERROR, 4)
	if err != nil {
		return 0, err
	}
	if len(v) >= 4 {
		if e := le32(v); e != 0 {
			return 0, unix.Errno(e)
		}
	}
	if settler, ok := s.(interface{ ConnectSettled() }); ok {
		settler.ConnectSettled()
	}
	return 0, nil
}

// Getsockname implements getsockname(2).
func Getsockname(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return sockName(t, args, false)
}

// Getpeername implements getpeername(2).
func Getpeername(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return sockName(t, args, true)
}

func sockName(t *kernel.Task, args arch.SyscallArguments, peer bool) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	bufLen, err := readAddrLen(t, args[2].Pointer())
	if err != nil {
		return 0, err
	}
	var a []byte
	if peer {
		a, err = s.PeerName(t)
	} else {
		a, err = s.SockName(t)
	}
	if err != nil {
		return 0, err
	}
	return 0, copyOutAddress(t, a, args[1].Pointer(), bufLen, args[2].Pointer())
}

// Shutdown implements shutdown(2).
func Shutdown(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	how := args[1].Int()
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return 0, unix.EINVAL
	}
	return 0, s.Shutdown(t, int(how))
}

// Getsockopt implements getsockopt(2). SO_TYPE, SO_DOMAIN and
// SO_PROTOCOL are answered here for every family; the rest by the socket.
func Getsockopt(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	level, name := int(args[1].Int()), int(args[2].Int())
	optAddr, lenAddr := args[3].Pointer(), args[4].Pointer()
	optLen, err := readAddrLen(t, lenAddr)
	if err != nil {
		return 0, err
	}
	var v []byte
	if level == unix.SOL_SOCKET && (name == unix.SO_TYPE || name == unix.SO_DOMAIN || name == unix.SO_PROTOCOL) {
		family, stype, protocol := s.Type()
		switch name {
		case unix.SO_TYPE:
			v = socket.Int32Bytes(int32(stype))
		case unix.SO_DOMAIN:
			v = socket.Int32Bytes(int32(family))
		default:
			v = socket.Int32Bytes(int32(protocol))
		}
	} else if v, err = s.GetSockOpt(t, level, name, int(optLen)); err != nil {
		return 0, err
	}
	n := min(int(optLen), len(v))
	if n > 0 {
		if _, err := t.CopyOut(optAddr, v[:n]); err != nil {
			return 0, unix.EFAULT
		}
	}
	var b [4]byte
	putLE32(b[:], uint32(n))
	if _, err := t.CopyOut(lenAddr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Setsockopt implements setsockopt(2).
func Setsockopt(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	level, name, optLen := int(args[1].Int()), int(args[2].Int()), args[4].Int()
	if optLen < 0 {
		return 0, unix.EINVAL
	}
	opt := make([]byte, min(optLen, maxOptLen))
	if len(opt) > 0 {
		if _, err := t.CopyIn(args[3].Pointer(), opt); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, s.SetSockOpt(t, level, name, opt)
}

// isStream reports whether s is a byte stream (MSG_WAITALL and partial
// sends apply).
func isStream(s socket.Socket) bool {
	_, stype, _ := s.Type()
	return stype == unix.SOCK_STREAM
}

// sendMsg sends src with control on f, waiting for room when the socket
// blocks: a stream takes everything unless interrupted or timed out
// (then the count so far), a datagram goes whole. EPIPE raises SIGPIPE
// unless MSG_NOSIGNAL.
func sendMsg(t *kernel.Task, f *vfs.FileDescription, s socket.Socket, src usermem.IOSequence, to []byte, flags int, control socket.ControlMessages) (int64, error) {
	nonblock := !isBlocking(f) || flags&unix.MSG_DONTWAIT != 0
	var total int64
	var w sockWaiter
	defer w.done()
	for {
		n, err := s.SendMsg(t, src, to, flags, control)
		if n > 0 {
			total += n
			src = src.DropFirst(n)
			// The control messages travel with the first bytes only.
			control = socket.ControlMessages{}
		}
		if err == nil && (src.NumBytes() == 0 || nonblock) {
			return total, nil
		}
		if err != nil && err != unix.EAGAIN {
			if total > 0 {
				return total, nil
			}
			if err == unix.EPIPE && flags&unix.MSG_NOSIGNAL == 0 {
				raiseSIGPIPE(t, err)
			}
			return 0, err
		}
		if nonblock {
			if total > 0 {
				return total, nil
			}
			return 0, unix.EAGAIN
		}
		_, sendTimeout := s.Timeouts()
		if werr := w.wait(t, f, waiter.WritableEvents, sendTimeout); werr != nil {
			if total > 0 {
				return total, nil
			}
			return 0, werr
		}
	}
}

// recvResult is what one receive call produced.
type recvResult struct {
	n        int64
	msgFlags int
	from     []byte
	control  socket.ControlMessages
}

// recvMsg receives into dst on f, waiting for data when the socket
// blocks; MSG_WAITALL on a stream keeps reading until dst is full, EOF,
// an error, a signal or the timeout.
func recvMsg(t *kernel.Task, f *vfs.FileDescription, s socket.Socket, dst usermem.IOSequence, flags int, wantAddr bool) (recvResult, error) {
	// Reading the error queue never waits, as on Linux (ip_recv_error).
	nonblock := !isBlocking(f) || flags&(unix.MSG_DONTWAIT|unix.MSG_ERRQUEUE) != 0
	waitAll := flags&unix.MSG_WAITALL != 0 && flags&unix.MSG_PEEK == 0 && isStream(s)
	var res recvResult
	var w sockWaiter
	defer w.done()
	for {
		n, mflags, from, cm, err := s.RecvMsg(t, dst, flags&^unix.MSG_WAITALL, wantAddr && res.n == 0)
		if err == nil {
			if res.n == 0 {
				res.msgFlags, res.from = mflags, from
			} else {
				res.msgFlags |= mflags
			}
			mergeControl(&res.control, cm)
			res.n += n
			dst = dst.DropFirst(n)
			if !waitAll || n == 0 || dst.NumBytes() == 0 || len(res.control.Rights) > 0 {
				return res, nil
			}
		} else if err != unix.EAGAIN {
			if res.n > 0 {
				return res, nil
			}
			return res, err
		}
		if nonblock {
			if res.n > 0 {
				return res, nil
			}
			return res, unix.EAGAIN
		}
		recvTimeout, _ := s.Timeouts()
		if werr := w.wait(t, f, waiter.ReadableEvents, recvTimeout); werr != nil {
			if res.n > 0 {
				return res, nil
			}
			return res, werr
		}
	}
}

// mergeControl adds the control messages of a later read of MSG_WAITALL
// to the first's.
func mergeControl(dst *socket.ControlMessages, src socket.ControlMessages) {
	dst.Rights = append(dst.Rights, src.Rights...)
	if dst.Credentials == nil {
		dst.Credentials = src.Credentials
	}
	if !dst.HasTimestamp && src.HasTimestamp {
		dst.Timestamp, dst.HasTimestamp = src.Timestamp, true
	}
	if src.HasInq {
		dst.Inq, dst.HasInq = src.Inq, true
	}
	if dst.Protocol == nil {
		dst.Protocol = src.Protocol
	}
}

// Sendto implements sendto(2) (and send(3)).
func Sendto(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	src, err := ioSequence(t, args[1].Pointer(), args[2].Uint64())
	if err != nil {
		return 0, unix.EFAULT
	}
	flags := int(args[3].Int())
	var to []byte
	if addr := args[4].Pointer(); addr != 0 {
		if to, err = copyInAddress(t, addr, args[5].Int()); err != nil {
			return 0, err
		}
		if len(to) == 0 {
			to = nil
		}
	}
	n, err := sendMsg(t, f, s, src, to, flags, socket.ControlMessages{})
	return uintptr(n), err
}

// Recvfrom implements recvfrom(2) (and recv(3)).
func Recvfrom(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	dst, err := ioSequence(t, args[1].Pointer(), args[2].Uint64())
	if err != nil {
		return 0, unix.EFAULT
	}
	flags := int(args[3].Int())
	addr, lenAddr := args[4].Pointer(), args[5].Pointer()
	var bufLen int32
	if addr != 0 {
		if bufLen, err = readAddrLen(t, lenAddr); err != nil {
			return 0, err
		}
	}
	res, err := recvMsg(t, f, s, dst, flags, addr != 0)
	// recvfrom has nowhere to put control messages: files are dropped.
	res.control.Release(t)
	if err != nil {
		return 0, err
	}
	if addr != 0 {
		if err := copyOutAddress(t, res.from, addr, bufLen, lenAddr); err != nil {
			return 0, err
		}
	}
	return uintptr(res.n), nil
}

// msghdr is struct msghdr as the application laid it out.
type msghdr struct {
	name       hostarch.Addr
	nameLen    int32
	iov        hostarch.Addr
	iovLen     uint64
	control    hostarch.Addr
	controlLen uint64
	flags      int32
}

// decodeMsghdr reads a struct msghdr (amd64 layout) from b.
func decodeMsghdr(b []byte) msghdr {
	return msghdr{
		name:       hostarch.Addr(binary.LittleEndian.Uint64(b[0:])),
		nameLen:    int32(binary.LittleEndian.Uint32(b[8:])),
		iov:        hostarch.Addr(binary.LittleEndian.Uint64(b[16:])),
		iovLen:     binary.LittleEndian.Uint64(b[24:]),
		control:    hostarch.Addr(binary.LittleEndian.Uint64(b[32:])),
		controlLen: binary.LittleEndian.Uint64(b[40:]),
		flags:      int32(binary.LittleEndian.Uint32(b[48:])),
	}
}

// copyInMsghdr reads the msghdr at addr and its iovecs.
func copyInMsghdr(t *kernel.Task, addr hostarch.Addr) (msghdr, usermem.IOSequence, error) {
	var b [sizeofMsghdr]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return msghdr{}, usermem.IOSequence{}, unix.EFAULT
	}
	m := decodeMsghdr(b[:])
	if m.iovLen > linux.UIO_MAXIOV {
		return m, usermem.IOSequence{}, unix.EMSGSIZE
	}
	seq, err := iovecs(t, m.iov, int32(m.iovLen))
	return m, seq, err
}

// sendControl is what a sendmsg control buffer asks for, before the
// descriptors are looked up.
type sendControl struct {
	fds      []int32
	hasCreds bool
	pid      int32
	uid, gid uint32
	// protocol are the messages of other levels, for the family.
	protocol []socket.ControlMessage
}

// parseSendControl walks a sendmsg control buffer as Linux's __scm_send:
// each cmsghdr must fit what is left (EINVAL otherwise); SOL_SOCKET
// messages other than SCM_RIGHTS and SCM_CREDENTIALS are EINVAL, and
// only AF_UNIX takes those two; other levels are passed to the family
// (ControlMessages.Protocol), which checks those it uses. At most
// scmMaxFD descriptors pass.
func parseSendControl(buf []byte, family int) (sendControl, error) {
	var c sendControl
	for off := 0; off+sizeofCmsghdr <= len(buf); {
		clen := binary.LittleEndian.Uint64(buf[off:])
		level := int32(binary.LittleEndian.Uint32(buf[off+8:]))
		typ := int32(binary.LittleEndian.Uint32(buf[off+12:]))
		if clen < sizeofCmsghdr || clen > uint64(len(buf)-off) {
			return c, unix.EINVAL
		}
		data := buf[off+sizeofCmsghdr : off+int(clen)]
		if level != unix.SOL_SOCKET {
			c.protocol = append(c.protocol, socket.ControlMessage{Level: level, Type: typ, Data: data})
		}
		if level == unix.SOL_SOCKET {
			if family != unix.AF_UNIX {
				return c, unix.EINVAL
			}
			switch typ {
			case unix.SCM_RIGHTS:
				n := len(data) / 4
				if len(c.fds)+n > scmMaxFD {
					return c, unix.EINVAL
				}
				for i := 0; i < n; i++ {
					c.fds = append(c.fds, int32(binary.LittleEndian.Uint32(data[4*i:])))
				}
			case unix.SCM_CREDENTIALS:
				if len(data) != 12 {
					return c, unix.EINVAL
				}
				c.hasCreds = true
				c.pid = int32(binary.LittleEndian.Uint32(data))
				c.uid = binary.LittleEndian.Uint32(data[4:])
				c.gid = binary.LittleEndian.Uint32(data[8:])
			default:
				return c, unix.EINVAL
			}
		}
		off += cmsgAlign(int(clen))
	}
	return c, nil
}

// resolveControl turns a parsed control buffer into ControlMessages: the
// files of the descriptors (EBADF for a bad one) with references the
// caller releases, and credentials the sender may claim (EPERM).
func resolveControl(t *kernel.Task, c sendControl) (socket.ControlMessages, error) {
	cm := socket.ControlMessages{Protocol: c.protocol}
	for _, fd := range c.fds {
		f, err := getFile(t, fd)
		if err != nil {
			cm.Release(t)
			return socket.ControlMessages{}, unix.EBADF
		}
		cm.Rights = append(cm.Rights, f)
	}
	if c.hasCreds {
		creds := t.Credentials()
		pidOK := c.pid == int32(t.GetPID()) || creds.HasCapability(auth.CAP_SYS_ADMIN)
		uidOK := creds.HasCapability(auth.CAP_SETUID) || c.uid == uint32(creds.RealUID) || c.uid == uint32(creds.EffectiveUID) || c.uid == uint32(creds.SavedUID)
		gidOK := creds.HasCapability(auth.CAP_SETGID) || c.gid == uint32(creds.RealGID) || c.gid == uint32(creds.EffectiveGID) || c.gid == uint32(creds.SavedGID)
		if !pidOK || !uidOK || !gidOK {
			cm.Release(t)
			return socket.ControlMessages{}, unix.EPERM
		}
		cm.Credentials = &socket.Credentials{PID: c.pid, UID: c.uid, GID: c.gid}
	}
	return cm, nil
}

// sendMsgHdr is sendmsg(2) for one msghdr at addr.
func sendMsgHdr(t *kernel.Task, f *vfs.FileDescription, s socket.Socket, addr hostarch.Addr, flags int) (int64, error) {
	m, src, err := copyInMsghdr(t, addr)
	if err != nil {
		return 0, err
	}
	var to []byte
	if m.name != 0 && m.nameLen != 0 {
		if m.nameLen < 0 {
			return 0, unix.EINVAL
		}
		if to, err = copyInAddress(t, m.name, min(m.nameLen, sizeofSockaddrStorage)); err != nil {
			return 0, err
		}
	}
	var cm socket.ControlMessages
	if m.controlLen > 0 {
		if m.controlLen > maxControlLen {
			return 0, unix.ENOBUFS
		}
		buf := make([]byte, m.controlLen)
		if _, err := t.CopyIn(m.control, buf); err != nil {
			return 0, unix.EFAULT
		}
		family, _, _ := s.Type()
		c, err := parseSendControl(buf, family)
		if err != nil {
			return 0, err
		}
		if cm, err = resolveControl(t, c); err != nil {
			return 0, err
		}
		defer cm.Release(t)
	}
	return sendMsg(t, f, s, src, to, flags, cm)
}

// Sendmsg implements sendmsg(2).
func Sendmsg(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	n, err := sendMsgHdr(t, f, s, args[1].Pointer(), int(args[2].Int()))
	return uintptr(n), err
}

// Sendmmsg implements sendmmsg(2): it returns how many messages went, or
// the first one's error.
func Sendmmsg(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	vec, vlen, flags := args[1].Pointer(), min(args[2].Uint(), linux.UIO_MAXIOV), int(args[3].Int())
	var sent uint32
	for ; sent < vlen; sent++ {
		entry := vec + hostarch.Addr(sent)*sizeofMmsghdr
		n, err := sendMsgHdr(t, f, s, entry, flags)
		if err != nil {
			if sent > 0 {
				break
			}
			return 0, err
		}
		var b [4]byte
		putLE32(b[:], uint32(n))
		if _, err := t.CopyOut(entry+sizeofMsghdr, b[:]); err != nil {
			if sent > 0 {
				break
			}
			return 0, unix.EFAULT
		}
	}
	return uintptr(sent), nil
}

// cmsgWriter builds a recvmsg control buffer of at most limit bytes with
// Linux's put_cmsg truncation rules, recording MSG_CTRUNC in flags.
type cmsgWriter struct {
	buf   []byte
	limit int
	flags int
}

// put appends one control message.
func (w *cmsgWriter) put(level, typ int32, data []byte) {
	left := w.limit - len(w.buf)
	if left < sizeofCmsghdr {
		w.flags |= unix.MSG_CTRUNC
		return
	}
	clen := sizeofCmsghdr + len(data)
	if clen > left {
		w.flags |= unix.MSG_CTRUNC
		clen = left
	}
	start := len(w.buf)
	var h [sizeofCmsghdr]byte
	binary.LittleEndian.PutUint64(h[0:], uint64(clen))
	binary.LittleEndian.PutUint32(h[8:], uint32(level))
	binary.LittleEndian.PutUint32(h[12:], uint32(typ))
	w.buf = append(w.buf, h[:]...)
	w.buf = append(w.buf, data[:clen-sizeofCmsghdr]...)
	space := min(cmsgAlign(sizeofCmsghdr+len(data)), left)
	for len(w.buf) < start+space {
		w.buf = append(w.buf, 0)
	}
}

// rightsRoom is how many descriptors fit in what is left of the buffer.
func (w *cmsgWriter) rightsRoom() int {
	left := w.limit - len(w.buf)
	if left <= sizeofCmsghdr {
		return 0
	}
	return (left - sizeofCmsghdr) / 4
}

// encodeRecvControl writes cm into w as Linux orders them (timestamp,
// credentials, descriptors, TCP_INQ), installing the received files in
// the task's table; files that do not fit or cannot be installed are
// dropped (closed), with MSG_CTRUNC.
func encodeRecvControl(t *kernel.Task, w *cmsgWriter, cm *socket.ControlMessages, cloexec bool) {
	if cm.HasTimestamp {
		var tv [16]byte
		ns := cm.Timestamp.UnixNano()
		binary.LittleEndian.PutUint64(tv[0:], uint64(ns/1e9))
		binary.LittleEndian.PutUint64(tv[8:], uint64(ns%1e9/1e3))
		w.put(unix.SOL_SOCKET, unix.SO_TIMESTAMP_OLD, tv[:])
	}
	if c := cm.Credentials; c != nil {
		var b [12]byte
		binary.LittleEndian.PutUint32(b[0:], uint32(c.PID))
		binary.LittleEndian.PutUint32(b[4:], c.UID)
		binary.LittleEndian.PutUint32(b[8:], c.GID)
		w.put(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, b[:])
	}
	if len(cm.Rights) > 0 {
		room := w.rightsRoom()
		var fds []byte
		installed := 0
		for _, rf := range cm.Rights {
			if installed >= room {
				break
			}
			fd, err := t.FDTable().NewFD(0, fdLimit(t), rf, kernel.FDFlags{CloseOnExec: cloexec})
			if err != nil {
				break
			}
			fds = binary.LittleEndian.AppendUint32(fds, uint32(fd))
			installed++
		}
		if installed < len(cm.Rights) {
			w.flags |= unix.MSG_CTRUNC
		}
		if installed > 0 {
			w.put(unix.SOL_SOCKET, unix.SCM_RIGHTS, fds)
		}
		// The table holds its own references now; ours all go.
		cm.Release(t)
	}
	if cm.HasInq {
		w.put(unix.SOL_TCP, tcpCMInq, socket.Int32Bytes(cm.Inq))
	}
	for _, m := range cm.Protocol {
		w.put(m.Level, m.Type, m.Data)
	}
}

// recvMsgHdr is recvmsg(2) for one msghdr at addr.
func recvMsgHdr(t *kernel.Task, f *vfs.FileDescription, s socket.Socket, addr hostarch.Addr, flags int) (int64, error) {
	m, dst, err := copyInMsghdr(t, addr)
	if err != nil {
		return 0, err
	}
	if m.name != 0 && m.nameLen < 0 {
		return 0, unix.EINVAL
	}
	res, err := recvMsg(t, f, s, dst, flags&^unix.MSG_CMSG_CLOEXEC, m.name != 0)
	if err != nil {
		return 0, err
	}
	w := cmsgWriter{limit: int(min(m.controlLen, maxControlLen))}
	if m.control == 0 {
		w.limit = 0
	}
	encodeRecvControl(t, &w, &res.control, flags&unix.MSG_CMSG_CLOEXEC != 0)
	if len(w.buf) > 0 {
		if _, err := t.CopyOut(m.control, w.buf); err != nil {
			return 0, unix.EFAULT
		}
	}
	nameLen := int32(0)
	if m.name != 0 && len(res.from) > 0 {
		n := min(int(m.nameLen), len(res.from))
		if _, err := t.CopyOut(m.name, res.from[:n]); err != nil {
			return 0, unix.EFAULT
		}
		nameLen = int32(len(res.from))
	}
	var b [4]byte
	putLE32(b[:], uint32(nameLen))
	if _, err := t.CopyOut(addr+8, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	var cl [8]byte
	binary.LittleEndian.PutUint64(cl[:], uint64(len(w.buf)))
	if _, err := t.CopyOut(addr+40, cl[:]); err != nil {
		return 0, unix.EFAULT
	}
	putLE32(b[:], uint32(res.msgFlags|w.flags))
	if _, err := t.CopyOut(addr+48, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return res.n, nil
}

// Recvmsg implements recvmsg(2).
func Recvmsg(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	n, err := recvMsgHdr(t, f, s, args[1].Pointer(), int(args[2].Int()))
	return uintptr(n), err
}

// Recvmmsg implements recvmmsg(2): MSG_WAITFORONE makes every message
// after the first non-blocking; the timeout is checked after each
// message (as Linux does) and the time left is written back.
func Recvmmsg(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	f, s, err := getSocket(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	defer f.DecRef(t)
	vec, vlen, flags := args[1].Pointer(), min(args[2].Uint(), linux.UIO_MAXIOV), int(args[3].Int())
	tsAddr := args[4].Pointer()
	var deadline time.Time
	if tsAddr != 0 {
		ts, err := copyInTimespec(t, tsAddr)
		if err != nil {
			return 0, err
		}
		if !ts.Valid() {
			return 0, unix.EINVAL
		}
		deadline = time.Now().Add(time.Duration(ts.ToNsec()))
	}
	var got uint32
	for ; got < vlen; got++ {
		entry := vec + hostarch.Addr(got)*sizeofMmsghdr
		n, err := recvMsgHdr(t, f, s, entry, flags&^unix.MSG_WAITFORONE)
		if err != nil {
			if got > 0 {
				break
			}
			return 0, err
		}
		var b [4]byte
		putLE32(b[:], uint32(n))
		if _, err := t.CopyOut(entry+sizeofMsghdr, b[:]); err != nil {
			if got > 0 {
				break
			}
			return 0, unix.EFAULT
		}
		if flags&unix.MSG_WAITFORONE != 0 {
			flags |= unix.MSG_DONTWAIT
		}
		if tsAddr != 0 && !time.Now().Before(deadline) {
			got++
			break
		}
	}
	if tsAddr != 0 {
		if err := copyOutTimespec(t, tsAddr, int64(max(time.Until(deadline), 0))); err != nil {
			return 0, err
		}
	}
	return uintptr(got), nil
}
