// Package netlink owns the Sentry's AF_NETLINK sockets. NETLINK_ROUTE is
// served read-only, enough for `ip addr`, `ip link`, `ip route` and
// glibc's getifaddrs(3): link, address and route dumps answered from the
// sandbox's network stack; NETLINK_SOCK_DIAG lists its TCP and UDP
// sockets for `ss` (sockdiag.go). NLMSG_DONE and error acknowledgements
// are as the kernel sends them. Messages from the application go through
// a strict, bounds-checked parser.
package netlink

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

const (
	sockaddrNlSize = 12 // struct sockaddr_nl
	solNetlink     = 270
	// maxSend bounds one sendmsg, as the socket's send buffer would.
	maxSend = 1 << 20
	// defaultBuf is the buffer size getsockopt reports (and the queue
	// limit for answers not yet read).
	defaultBuf = 212992
)

// Provider makes NETLINK_ROUTE sockets on one stack; it implements
// kernel.SocketProvider.
type Provider struct {
	stack *stack.Stack
	vfs   *vfs.VirtualFilesystem

	mu      sync.Mutex
	ports   map[uint32]bool
	nextPID uint32

	// diagSources, when set (tests), replaces the kernel's socket
	// providers as what sock_diag lists.
	diagSources map[int]any
}

var _ kernel.SocketProvider = (*Provider)(nil)

// NewProvider returns the AF_NETLINK provider for s.
func NewProvider(v *vfs.VirtualFilesystem, s *stack.Stack) *Provider {
	return &Provider{stack: s, vfs: v, ports: make(map[uint32]bool), nextPID: 1 << 16}
}

// Socket implements kernel.SocketProvider.
func (p *Provider) Socket(t *kernel.Task, stype, protocol int) (*vfs.FileDescription, error) {
	var ctx context.Context = context.Background()
	if t != nil {
		ctx = t
	}
	return p.NewSocket(ctx, stype, protocol)
}

// NewSocket is Socket for callers without a task.
func (p *Provider) NewSocket(ctx context.Context, stype, protocol int) (*vfs.FileDescription, error) {
	if stype != unix.SOCK_RAW && stype != unix.SOCK_DGRAM {
		return nil, unix.ESOCKTNOSUPPORT
	}
	if protocol != unix.NETLINK_ROUTE && protocol != unix.NETLINK_SOCK_DIAG {
		return nil, unix.EPROTONOSUPPORT
	}
	s := &sock{p: p, stype: stype, protocol: protocol, route: routeHandler{stack: p.stack}, rcvBuf: defaultBuf, sndBuf: defaultBuf}
	return socket.NewFile(p.vfs, auth.CredentialsFromContext(ctx), s, unix.O_RDWR), nil
}

// Pair implements kernel.SocketProvider.
func (p *Provider) Pair(*kernel.Task, int, int) (*vfs.FileDescription, *vfs.FileDescription, error) {
	return nil, nil, unix.EOPNOTSUPP
}

// reserve takes port id pid, or a free one if pid is 0.
func (p *Provider) reserve(pid uint32) (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pid != 0 {
		if p.ports[pid] {
			return 0, unix.EADDRINUSE
		}
		p.ports[pid] = true
		return pid, nil
	}
	for p.ports[p.nextPID] || p.nextPID == 0 {
		p.nextPID++
	}
	pid = p.nextPID
	p.nextPID++
	p.ports[pid] = true
	return pid, nil
}

func (p *Provider) release(pid uint32) {
	p.mu.Lock()
	delete(p.ports, pid)
	p.mu.Unlock()
}

// sock is a NETLINK_ROUTE or NETLINK_SOCK_DIAG socket.
type sock struct {
	vfs.FileDescriptionDefaults
	p        *Provider
	stype    int
	protocol int
	route    routeHandler
	queue    waiter.Queue

	mu      sync.Mutex
	pid     uint32 // 0 until bound (explicitly or by the first send)
	rcv     [][]byte
	rcvUsed int
	// pending holds the rest of a dump too large for the receive
	// buffer; reads move it to rcv as room appears, as the kernel
	// continues a dump when the reader drains the socket.
	pending  [][]byte
	rcvBuf   int
	sndBuf   int
	rcvTimeo time.Duration
	sndTimeo time.Duration
	nlOpts   map[int]int
	released bool
}

var _ socket.Socket = (*sock)(nil)

// Release implements vfs.FileDescriptionImpl.
func (s *sock) Release(context.Context) {
	s.mu.Lock()
	pid := s.pid
	s.released = true
	s.rcv = nil
	s.pending = nil
	s.mu.Unlock()
	if pid != 0 {
		s.p.release(pid)
	}
}

// Readiness implements waiter.Waitable.
func (s *sock) Readiness(mask waiter.EventMask) waiter.EventMask {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := waiter.EventOut | waiter.EventWrNorm
	if len(s.rcv) > 0 {
		r |= waiter.EventIn | waiter.EventRdNorm
	}
	return r & mask
}

// EventRegister implements waiter.Waitable.
func (s *sock) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *sock) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }

// Read implements vfs.FileDescriptionImpl.
func (s *sock) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	n, _, _, err := s.recv(ctx, dst, 0)
	return n, err
}

// Write implements vfs.FileDescriptionImpl.
func (s *sock) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	return s.send(ctx, src)
}

// Type implements socket.Socket.
func (s *sock) Type() (int, int, int) { return unix.AF_NETLINK, s.stype, s.protocol }

// Timeouts implements socket.Socket.
func (s *sock) Timeouts() (time.Duration, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcvTimeo, s.sndTimeo
}

// parseSockaddrNl checks a struct sockaddr_nl and returns nl_pid and
// nl_groups.
func parseSockaddrNl(b []byte) (pid, groups uint32, err error) {
	if len(b) < sockaddrNlSize {
		return 0, 0, unix.EINVAL
	}
	if binary.LittleEndian.Uint16(b) != unix.AF_NETLINK {
		return 0, 0, unix.EINVAL
	}
	return binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:]), nil
}

func sockaddrNl(pid uint32) []byte {
	b := make([]byte, sockaddrNlSize)
	binary.LittleEndian.PutUint16(b, unix.AF_NETLINK)
	binary.LittleEndian.PutUint32(b[4:], pid)
	return b
}

// Bind implements socket.Socket. Multicast groups are accepted but no
// notifications are ever sent: the sandbox's network does not change.
func (s *sock) Bind(t *kernel.Task, addr []byte) error {
	pid, _, err := parseSockaddrNl(addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid != 0 {
		if pid == 0 || pid == s.pid {
			return nil
		}
		return unix.EINVAL
	}
	got, err := s.p.reserve(pid)
	if err != nil {
		return err
	}
	s.pid = got
	return nil
}

// autobindLocked gives an unbound socket a port id, as the first send does.
func (s *sock) autobindLocked() error {
	if s.pid != 0 {
		return nil
	}
	pid, err := s.p.reserve(0)
	if err != nil {
		return err
	}
	s.pid = pid
	return nil
}

// Listen implements socket.Socket.
func (s *sock) Listen(*kernel.Task, int) error { return unix.EOPNOTSUPP }

// Connect implements socket.Socket: only the kernel (nl_pid 0) can be a
// peer here.
func (s *sock) Connect(t *kernel.Task, addr []byte) error {
	if fam, ok := familyOf(addr); ok && fam == unix.AF_UNSPEC {
		return nil
	}
	pid, _, err := parseSockaddrNl(addr)
	if err != nil {
		return err
	}
	if pid != 0 {
		return unix.ECONNREFUSED
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.autobindLocked()
}

func familyOf(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	return int(binary.LittleEndian.Uint16(b)), true
}

// Accept implements socket.Socket.
func (s *sock) Accept(*kernel.Task, int) (*vfs.FileDescription, []byte, error) {
	return nil, nil, unix.EOPNOTSUPP
}

// Shutdown implements socket.Socket.
func (s *sock) Shutdown(*kernel.Task, int) error { return unix.EOPNOTSUPP }

// SockName implements socket.Socket.
func (s *sock) SockName(*kernel.Task) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sockaddrNl(s.pid), nil
}

// PeerName implements socket.Socket: the peer is always the kernel.
func (s *sock) PeerName(*kernel.Task) ([]byte, error) { return sockaddrNl(0), nil }

func intBytes(v int) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(int32(v)))
	return b
}

// GetSockOpt implements socket.Socket.
func (s *sock) GetSockOpt(t *kernel.Task, level, name int, optLen int) ([]byte, error) {
	if optLen < 0 {
		return nil, unix.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var b []byte
	switch {
	case level == unix.SOL_SOCKET && name == unix.SO_TYPE:
		b = intBytes(s.stype)
	case level == unix.SOL_SOCKET && name == unix.SO_DOMAIN:
		b = intBytes(unix.AF_NETLINK)
	case level == unix.SOL_SOCKET && name == unix.SO_PROTOCOL:
		b = intBytes(s.protocol)
	case level == unix.SOL_SOCKET && name == unix.SO_ERROR:
		b = intBytes(0)
	case level == unix.SOL_SOCKET && name == unix.SO_RCVBUF:
		b = intBytes(s.rcvBuf)
	case level == unix.SOL_SOCKET && name == unix.SO_SNDBUF:
		b = intBytes(s.sndBuf)
	case level == solNetlink:
		switch name {
		case unix.NETLINK_PKTINFO, unix.NETLINK_NO_ENOBUFS, unix.NETLINK_CAP_ACK, unix.NETLINK_EXT_ACK,
			unix.NETLINK_GET_STRICT_CHK, unix.NETLINK_BROADCAST_ERROR, unix.NETLINK_LISTEN_ALL_NSID:
			b = intBytes(s.nlOpts[name])
		default:
			return nil, unix.ENOPROTOOPT
		}
	default:
		return nil, unix.ENOPROTOOPT
	}
	if optLen < len(b) {
		b = b[:optLen]
	}
	return b, nil
}

// SetSockOpt implements socket.Socket.
func (s *sock) SetSockOpt(t *kernel.Task, level, name int, opt []byte) error {
	if level == unix.SOL_SOCKET && (name == unix.SO_RCVTIMEO || name == unix.SO_SNDTIMEO) {
		if len(opt) < 16 {
			return unix.EINVAL
		}
		sec, usec := int64(binary.LittleEndian.Uint64(opt)), int64(binary.LittleEndian.Uint64(opt[8:]))
		if usec < 0 || usec >= 1000000 {
			return unix.EDOM
		}
		d := time.Duration(0)
		if sec > 0 && sec < 1<<32 {
			d = time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond
		}
		s.mu.Lock()
		if name == unix.SO_RCVTIMEO {
			s.rcvTimeo = d
		} else {
			s.sndTimeo = d
		}
		s.mu.Unlock()
		return nil
	}
	if len(opt) < 4 {
		return unix.EINVAL
	}
	v := int(int32(binary.LittleEndian.Uint32(opt)))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case level == unix.SOL_SOCKET && (name == unix.SO_RCVBUF || name == unix.SO_SNDBUF ||
		name == unix.SO_RCVBUFFORCE || name == unix.SO_SNDBUFFORCE):
		v = min(max(v, 0), 1<<30) * 2
		if name == unix.SO_RCVBUF || name == unix.SO_RCVBUFFORCE {
			s.rcvBuf = max(v, 2304)
		} else {
			s.sndBuf = max(v, 4608)
		}
		return nil
	case level == solNetlink:
		switch name {
		case unix.NETLINK_PKTINFO, unix.NETLINK_NO_ENOBUFS, unix.NETLINK_CAP_ACK, unix.NETLINK_EXT_ACK,
			unix.NETLINK_GET_STRICT_CHK, unix.NETLINK_BROADCAST_ERROR, unix.NETLINK_LISTEN_ALL_NSID:
			if s.nlOpts == nil {
				s.nlOpts = make(map[int]int)
			}
			s.nlOpts[name] = boolInt(v != 0)
			return nil
		case unix.NETLINK_ADD_MEMBERSHIP, unix.NETLINK_DROP_MEMBERSHIP:
			return nil // no notifications are ever sent (see Bind)
		}
	}
	return unix.ENOPROTOOPT
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SendMsg implements socket.Socket.
func (s *sock) SendMsg(t *kernel.Task, src usermem.IOSequence, to []byte, flags int, _ socket.ControlMessages) (int64, error) {
	if to != nil {
		pid, _, err := parseSockaddrNl(to)
		if err != nil {
			return 0, err
		}
		if pid != 0 {
			return 0, unix.ECONNREFUSED
		}
	}
	var ctx context.Context = context.Background()
	if t != nil {
		ctx = t
	}
	return s.send(ctx, src)
}

func (s *sock) send(ctx context.Context, src usermem.IOSequence) (int64, error) {
	n := src.NumBytes()
	if n > maxSend {
		return 0, unix.EMSGSIZE
	}
	buf := make([]byte, n)
	if _, err := src.CopyIn(ctx, buf); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if err := s.autobindLocked(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	pid := s.pid
	s.mu.Unlock()
	var replies [][]byte
	for _, m := range ParseMessages(buf) {
		if s.protocol == unix.NETLINK_SOCK_DIAG {
			replies = append(replies, handleDiag(m, pid, func(family int) any { return s.p.diagSource(ctx, family) })...)
			continue
		}
		replies = append(replies, s.route.handle(m, pid)...)
	}
	if len(replies) == 0 {
		return n, nil
	}
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return n, nil
	}
	for i, r := range replies {
		if s.rcvUsed+len(r) > s.rcvBuf && len(s.rcv) > 0 {
			if s.protocol == unix.NETLINK_SOCK_DIAG && len(s.pending) == 0 {
				// A dump goes on as the reader makes room.
				s.pending = replies[i:]
				break
			}
			// A full receive queue drops the answer, as the kernel does
			// (the reader would see ENOBUFS); keep at least one datagram.
			break
		}
		s.rcv = append(s.rcv, r)
		s.rcvUsed += len(r)
	}
	s.mu.Unlock()
	s.queue.Notify(waiter.EventIn | waiter.EventRdNorm)
	return n, nil
}

// RecvMsg implements socket.Socket.
func (s *sock) RecvMsg(t *kernel.Task, dst usermem.IOSequence, flags int, wantAddr bool) (int64, int, []byte, socket.ControlMessages, error) {
	var ctx context.Context = context.Background()
	if t != nil {
		ctx = t
	}
	n, mflags, from, err := s.recv(ctx, dst, flags)
	if !wantAddr {
		from = nil
	}
	return n, mflags, from, socket.ControlMessages{}, err
}

func (s *sock) recv(ctx context.Context, dst usermem.IOSequence, flags int) (int64, int, []byte, error) {
	s.mu.Lock()
	if len(s.rcv) == 0 {
		s.mu.Unlock()
		return 0, 0, nil, unix.EAGAIN
	}
	d := s.rcv[0]
	if flags&unix.MSG_PEEK == 0 {
		s.rcv[0] = nil
		s.rcv = s.rcv[1:]
		s.rcvUsed -= len(d)
		for len(s.pending) > 0 && (len(s.rcv) == 0 || s.rcvUsed+len(s.pending[0]) <= s.rcvBuf) {
			s.rcv = append(s.rcv, s.pending[0])
			s.rcvUsed += len(s.pending[0])
			s.pending[0] = nil
			s.pending = s.pending[1:]
		}
	}
	s.mu.Unlock()
	want := min(int64(len(d)), dst.NumBytes())
	n, err := dst.CopyOut(ctx, d[:want])
	if err != nil && n == 0 {
		return 0, 0, nil, err
	}
	mflags := 0
	if int64(len(d)) > dst.NumBytes() {
		mflags |= unix.MSG_TRUNC
	}
	ret := int64(n)
	if flags&unix.MSG_TRUNC != 0 {
		ret = int64(len(d))
	}
	return ret, mflags, sockaddrNl(0), nil
}

// Ioctl implements vfs.FileDescriptionImpl: the interface queries work on
// any socket.
func (s *sock) Ioctl(ctx context.Context, _ *vfs.FileDescription, uio usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error) {
	return netstack.InterfaceIoctl(ctx, s.p.stack, uio, args[1], hostarch.Addr(args[2]))
}
