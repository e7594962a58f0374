// Package unet owns unix-domain sockets for the Sentry–Gofer channel: stream
// and seqpacket socketpairs, and the transfer of host file descriptors with
// SCM_RIGHTS alongside a message.
//
// Sockets are non-blocking at the host level and parked on the Go runtime's
// poller, so a blocked Recv or Send costs no OS thread and is woken with an
// error by Shutdown or Close from another goroutine. Received descriptors that
// the caller did not ask for are closed before Recv returns, so a misbehaving
// peer cannot make the receiver leak descriptors.
package unet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxFDs is the most descriptors one message may carry. The kernel's own limit
// is SCM_MAX_FD (253); we keep a smaller one because nothing here needs more.
const MaxFDs = 16

// ErrClosed is returned by operations on a socket that was shut down or closed.
var ErrClosed = errors.New("unet: socket closed")

// Socket is a connected unix-domain socket. One goroutine may Send while
// another Recvs; concurrent Sends (or Recvs) are serialised, but on a stream
// socket callers that need message boundaries must serialise whole messages.
type Socket struct {
	file   *os.File
	raw    syscall.RawConn
	packet bool
	closed atomic.Bool

	// Per-direction scratch, so that a send or receive allocates nothing:
	// the msghdr, iovecs and control buffer live here, and the callbacks
	// handed to the poller are bound once.
	recvMu sync.Mutex
	recv   ioState
	recvFn func(uintptr) bool
	sendMu sync.Mutex
	send   ioState
	sendFn func(uintptr) bool
}

// maxIovecs bounds the buffers of one Send or Recv.
const maxIovecs = 8

// oobSize fits unix.CmsgSpace(4*MaxFDs).
const oobSize = 128

type ioState struct {
	iovs [maxIovecs]unix.Iovec
	msg  unix.Msghdr
	oob  [oobSize]byte
	n    int
	err  unix.Errno
}

// prepare points the msghdr at bufs and (if oobLen > 0) the control buffer.
func (st *ioState) prepare(bufs [][]byte, oobLen int) error {
	if len(bufs) > maxIovecs {
		return fmt.Errorf("unet: %d buffers exceeds %d: %w", len(bufs), maxIovecs, unix.EINVAL)
	}
	st.msg = unix.Msghdr{}
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		st.iovs[n].Base = &b[0]
		st.iovs[n].SetLen(len(b))
		n++
	}
	if n > 0 {
		st.msg.Iov = &st.iovs[0]
		st.msg.SetIovlen(n)
	}
	if oobLen > 0 {
		st.msg.Control = &st.oob[0]
		st.msg.SetControllen(oobLen)
	}
	return nil
}

// release drops the references to the caller's buffers.
func (st *ioState) release() {
	st.iovs = [maxIovecs]unix.Iovec{}
	st.msg.Iov, st.msg.Control = nil, nil
}

func (s *Socket) doRecv(fd uintptr) bool {
	r1, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.recv.msg)), unix.MSG_CMSG_CLOEXEC)
	if e == unix.EAGAIN {
		return false
	}
	s.recv.n, s.recv.err = int(r1), e
	return true
}

func (s *Socket) doSend(fd uintptr) bool {
	r1, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.send.msg)), unix.MSG_NOSIGNAL)
	if e == unix.EAGAIN {
		return false
	}
	s.send.n, s.send.err = int(r1), e
	return true
}

// NewSocket takes ownership of fd, a connected AF_UNIX socket of type
// SOCK_STREAM or SOCK_SEQPACKET. On error fd is closed.
func NewSocket(fd int) (*Socket, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("unet: SO_TYPE of fd %d: %w", fd, err)
	}
	if typ != unix.SOCK_STREAM && typ != unix.SOCK_SEQPACKET {
		unix.Close(fd)
		return nil, fmt.Errorf("unet: fd %d has socket type %d, want stream or seqpacket: %w", fd, typ, unix.EINVAL)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("unet: set non-blocking: %w", err)
	}
	unix.CloseOnExec(fd)
	file := os.NewFile(uintptr(fd), "unet")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("unet: %w", err)
	}
	s := &Socket{file: file, raw: raw, packet: typ == unix.SOCK_SEQPACKET}
	s.recvFn, s.sendFn = s.doRecv, s.doSend
	return s, nil
}

// SocketPair returns a connected pair of sockets: SOCK_SEQPACKET if packet is
// true, SOCK_STREAM otherwise.
func SocketPair(packet bool) (*Socket, *Socket, error) {
	typ := unix.SOCK_STREAM
	if packet {
		typ = unix.SOCK_SEQPACKET
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("unet: socketpair: %w", err)
	}
	a, err := NewSocket(fds[0])
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := NewSocket(fds[1])
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// Packet reports whether the socket preserves message boundaries (seqpacket).
func (s *Socket) Packet() bool { return s.packet }

// Send writes the bytes of bufs (at most 8 buffers) as one sendmsg,
// attaching fds (which remain owned by the caller). On a stream socket a
// short write is continued without the descriptors, so the whole of bufs is
// always sent unless an error occurs.
func (s *Socket) Send(bufs [][]byte, fds []int) (int, error) {
	if len(fds) > MaxFDs {
		return 0, fmt.Errorf("unet: %d fds exceeds limit %d: %w", len(fds), MaxFDs, unix.EINVAL)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	st := &s.send
	defer st.release()
	oobLen := 0
	if len(fds) > 0 {
		oobLen = unix.CmsgSpace(4 * len(fds))
		st.oob = [oobSize]byte{}
		h := (*unix.Cmsghdr)(unsafe.Pointer(&st.oob[0]))
		h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
		h.SetLen(unix.CmsgLen(4 * len(fds)))
		data := st.oob[unix.CmsgLen(0):]
		for i, fd := range fds {
			binary.NativeEndian.PutUint32(data[4*i:], uint32(int32(fd)))
		}
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	sent := 0
	for {
		if err := st.prepare(bufs, oobLen); err != nil {
			return sent, err
		}
		if err := s.raw.Write(s.sendFn); err != nil {
			return sent, s.closedErr(err)
		}
		if st.err != 0 {
			if st.err == unix.EPIPE || st.err == unix.ECONNRESET {
				return sent, ErrClosed
			}
			return sent, fmt.Errorf("unet: sendmsg: %w", st.err)
		}
		sent += st.n
		if sent >= total || s.packet {
			return sent, nil
		}
		oobLen = 0
		bufs = advance(bufs, st.n)
	}
}

// Recv reads one recvmsg into bufs (at most 8 buffers) and returns the byte
// count and at most maxFDs received descriptors (owned by the caller,
// close-on-exec); any further descriptors are closed. A peer that closed its
// end yields (0, nil, ErrClosed). On a seqpacket socket a message longer than
// bufs is an error (EMSGSIZE), and its descriptors are closed.
func (s *Socket) Recv(bufs [][]byte, maxFDs int) (int, []int, error) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	st := &s.recv
	defer st.release()
	oobLen := 0
	if maxFDs > 0 {
		oobLen = oobSize
	}
	if err := st.prepare(bufs, oobLen); err != nil {
		return 0, nil, err
	}
	if err := s.raw.Read(s.recvFn); err != nil {
		return 0, nil, s.closedErr(err)
	}
	if st.err == unix.ECONNRESET {
		return 0, nil, ErrClosed // the peer closed with our data unread
	}
	if st.err != 0 {
		return 0, nil, fmt.Errorf("unet: recvmsg: %w", st.err)
	}
	n := st.n
	var fds []int
	var perr error
	if cl := int(st.msg.Controllen); cl > 0 {
		fds, perr = parseRights(st.oob[:min(cl, oobSize)])
	}
	// MSG_CTRUNC needs no handling: the kernel closes descriptors that did not
	// fit, and we close those beyond maxFDs below.
	if st.msg.Flags&unix.MSG_TRUNC != 0 && perr == nil {
		perr = fmt.Errorf("unet: message longer than %d-byte buffer: %w", n, unix.EMSGSIZE)
	}
	if perr != nil || len(fds) > maxFDs {
		keep := 0
		if perr == nil {
			keep = maxFDs
		}
		closeAll(fds[keep:])
		fds = fds[:keep]
		if perr != nil {
			return n, nil, perr
		}
	}
	if n == 0 && len(fds) == 0 {
		total := 0
		for _, b := range bufs {
			total += len(b)
		}
		if total > 0 {
			return 0, nil, ErrClosed
		}
	}
	if len(fds) == 0 {
		fds = nil
	}
	return n, fds, nil
}

// parseRights returns every descriptor carried in the control data oob. On
// a malformed control message the descriptors already found are returned
// with the error so the caller can close them.
func parseRights(oob []byte) ([]int, error) {
	var fds []int
	hdrLen := unix.CmsgLen(0)
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			return fds, fmt.Errorf("unet: control message length %d of %d: %w", l, len(oob), unix.EINVAL)
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			data := oob[hdrLen:l]
			for i := 0; i+4 <= len(data); i += 4 {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data[i:]))))
			}
		}
		next := unix.CmsgSpace(l - hdrLen)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// advance drops the first n bytes from bufs.
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && n > 0 {
		rest := make([][]byte, len(bufs))
		copy(rest, bufs)
		rest[0] = rest[0][n:]
		bufs = rest
	}
	return bufs
}

func (s *Socket) closedErr(err error) error {
	if s.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("unet: %w", err)
}

// ReadFull fills buf from a stream socket, collecting at most maxFDs
// descriptors from the first read (the kernel attaches them to the first byte
// of the sender's message). Further descriptors are closed.
func (s *Socket) ReadFull(buf []byte, maxFDs int) ([]int, error) {
	var fds []int
	got := 0
	for got < len(buf) {
		want := 0
		if got == 0 {
			want = maxFDs
		}
		n, more, err := s.Recv([][]byte{buf[got:]}, want)
		fds = append(fds, more...)
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		got += n
	}
	return fds, nil
}

// Shutdown disables further sends and receives in both directions and wakes
// any goroutine blocked in Send or Recv on either end. It is idempotent.
func (s *Socket) Shutdown() error {
	var opErr error
	err := s.raw.Control(func(fd uintptr) {
		opErr = unix.Shutdown(int(fd), unix.SHUT_RDWR)
	})
	if err != nil {
		return s.closedErr(err)
	}
	if opErr != nil && opErr != unix.ENOTCONN {
		return fmt.Errorf("unet: shutdown: %w", opErr)
	}
	return nil
}

// Close releases the socket. Goroutines blocked in Send or Recv return
// ErrClosed. It is safe to call more than once.
func (s *Socket) Close() error {
	s.closed.Store(true)
	err := s.file.Close()
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("unet: close: %w", err)
	}
	return nil
}

// Release hands the descriptor back to the caller as a blocking fd, leaving
// the Socket unusable. Used to pass the socket to a child process.
func (s *Socket) Release() (int, error) {
	var dupFD int
	var opErr error
	err := s.raw.Control(func(fd uintptr) {
		dupFD, opErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err != nil {
		return -1, s.closedErr(err)
	}
	if opErr != nil {
		return -1, fmt.Errorf("unet: dup: %w", opErr)
	}
	s.closed.Store(true)
	s.file.Close()
	if err := unix.SetNonblock(dupFD, false); err != nil {
		unix.Close(dupFD)
		return -1, fmt.Errorf("unet: set blocking: %w", err)
	}
	return dupFD, nil
}
