package netstack

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// sock is an AF_INET or AF_INET6 socket over a tcpip.Endpoint.
type sock struct {
	vfs.FileDescriptionDefaults

	p        *Provider
	family   int
	stype    int
	protocol int
	trans    tcpip.TransportProtocolNumber

	// queue is what poll, epoll and blocking syscalls wait on; the
	// endpoint's own tcpip.WaitQueue forwards into it through relay.
	queue waiter.Queue
	relay tcpip.WaitEntry

	// mu guards ep, which an AF_INET6 socket replaces by an IPv4 endpoint
	// when it first binds or connects to an IPv4-mapped address, and the
	// options the endpoint does not keep.
	mu   sync.Mutex
	ep   tcpip.Endpoint
	opts sockOptions
	// v4 is the IPv4 half of a dual-stack AF_INET6 TCP or UDP socket
	// bound to the IPv6 wildcard without IPV6_V6ONLY: an IPv4 endpoint on
	// the same port, listening or receiving alongside ep, whose peers
	// appear with IPv4-mapped addresses. Nil otherwise.
	v4     tcpip.Endpoint
	relay4 tcpip.WaitEntry
	// ino and uid are the socket file's inode number and owner, set once
	// when the file is made, for /proc/net.
	ino uint64
	uid uint32
	// connecting is Linux's SS_CONNECTING: a connect(2) was started and
	// nobody has yet seen it finish. A later connect then waits for it
	// (blocking) or answers EALREADY, and once it is established answers 0
	// a single time rather than EISCONN, which is what makes a restarted
	// or repeated connect(2) of a non-blocking socket succeed.
	connecting atomic.Bool
}

// sockOptions are the socket options kept by the socket layer itself.
type sockOptions struct {
	rcvTimeo, sndTimeo time.Duration
	linger             unix.Linger
	tos                int
	tclass             int
	recvErr            bool
	cork               bool
	quickAck           bool
	v6only             bool
	keepalive          bool // non-TCP sockets only: TCP keeps its own
	timestamp          bool // SO_TIMESTAMP
	broadcast          bool // TCP only: UDP keeps its own
	oobInline          bool
}

var _ socket.Socket = (*sock)(nil)

func newSock(p *Provider, stype, protocol int, trans tcpip.TransportProtocolNumber, ep tcpip.Endpoint) *sock {
	s := &sock{p: p, family: p.family, stype: stype, protocol: protocol, trans: trans, ep: ep}
	s.relay.Callback = s.relayEvents
	s.relay4.Callback = s.relayEvents
	ep.WaitQueue().EventRegister(&s.relay, tcpip.EventMask(waiter.AllEvents))
	return s
}

// relayEvents forwards the endpoint's readiness changes to the socket's
// waiter.Queue. Read events also mean POLLRDNORM and write events
// POLLWRNORM, as select(2) and poll(2) callers expect.
func (s *sock) relayEvents(m tcpip.EventMask) {
	s.queue.Notify(linuxEvents(waiter.EventMask(m)))
}

func linuxEvents(m waiter.EventMask) waiter.EventMask {
	if m&waiter.EventIn != 0 {
		m |= waiter.EventRdNorm
	}
	if m&waiter.EventOut != 0 {
		m |= waiter.EventWrNorm
	}
	return m
}

func (s *sock) endpoint() tcpip.Endpoint {
	s.mu.Lock()
	ep := s.ep
	s.mu.Unlock()
	return ep
}

func (s *sock) stream() bool { return s.stype == unix.SOCK_STREAM }

// ctxOf lets the socket run without a task (Go tests, the Sentry's own
// callers): a nil task would be a non-nil context holding a nil pointer.
func ctxOf(t *kernel.Task) context.Context {
	if t == nil {
		return context.Background()
	}
	return t
}

// errnoOf converts a stack error to its errno.
func errnoOf(err *tcpip.Error) error {
	if err == nil || err.Errno() == 0 {
		return nil
	}
	return err.Errno()
}

// Release implements vfs.FileDescriptionImpl: close(2) of the last
// descriptor. SO_LINGER with a zero timeout resets the connection.
func (s *sock) Release(context.Context) {
	s.mu.Lock()
	ep, v4 := s.ep, s.v4
	abort := s.opts.linger.Onoff != 0 && s.opts.linger.Linger == 0
	var linger time.Duration
	if s.opts.linger.Onoff != 0 && s.opts.linger.Linger > 0 {
		linger = time.Duration(s.opts.linger.Linger) * time.Second
	}
	s.mu.Unlock()
	s.p.socks.remove(s)
	ep.WaitQueue().EventUnregister(&s.relay)
	if v4 != nil {
		v4.WaitQueue().EventUnregister(&s.relay4)
		v4.Close()
	}
	if linger > 0 && s.stream() {
		// As on Linux, a linger time that runs out only ends the wait:
		// the data still queued goes on being sent in the background.
		lingerDrain(ep, linger)
	}
	if abort {
		ep.Abort()
	} else {
		ep.Close()
	}
	s.queue.Notify(waiter.EventHUp | waiter.EventIn | waiter.EventOut)
}

// maxLinger bounds how long one close(2) may block in SO_LINGER, so that
// a huge l_linger cannot hold the closing task's goroutine indefinitely.
const maxLinger = 5 * time.Minute

// lingerDrain is close(2) with SO_LINGER on a connected stream: it sends
// the FIN after the queued data and waits up to d (at most maxLinger)
// for all of it to be acknowledged. It reports whether that happened;
// a connection that is not established, or fails meanwhile, counts as
// drained (there is nothing left to wait for).
func lingerDrain(ep tcpip.Endpoint, d time.Duration) bool {
	st, ok := tcpState(ep)
	if !ok || (st != tcp.StateEstablished && st != tcp.StateCloseWait) {
		return true
	}
	entry, ch := tcpip.NewChannelEntry()
	ep.WaitQueue().EventRegister(entry, tcpip.EventOut|tcpip.EventHUp|tcpip.EventErr)
	defer ep.WaitQueue().EventUnregister(entry)
	ep.Shutdown(tcpip.ShutdownWrite)
	timer := time.NewTimer(min(d, maxLinger))
	defer timer.Stop()
	for {
		if q, err := ep.GetSockOpt(tcpip.SendQueueSizeOption); err != nil || q == 0 {
			return true
		}
		if st, ok := tcpState(ep); !ok || st == tcp.StateClosed {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// Readiness implements waiter.Waitable.
func (s *sock) Readiness(mask waiter.EventMask) waiter.EventMask {
	s.mu.Lock()
	ep, v4 := s.ep, s.v4
	s.mu.Unlock()
	r := waiter.EventMask(ep.Readiness(tcpip.EventMask(waiter.AllEvents)))
	if v4 != nil {
		r |= waiter.EventMask(v4.Readiness(tcpip.EventIn))
	}
	if r == 0 && s.stream() {
		// A TCP socket that is neither connected nor connecting nor
		// listening polls as writable and hung up on Linux (tcp_poll).
		if st, err := ep.GetSockOpt(tcpip.TCPStateOption); err == nil &&
			(tcp.State(st) == tcp.StateInitial || tcp.State(st) == tcp.StateBound) {
			r = waiter.EventOut | waiter.EventHUp
		}
	}
	return linuxEvents(r) & mask
}

// EventRegister implements waiter.Waitable.
func (s *sock) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *sock) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }

// Read implements vfs.FileDescriptionImpl: read(2) is recv(2) without flags.
func (s *sock) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	n, _, _, _, err := s.recv(ctx, dst, 0, false)
	return n, err
}

// Write implements vfs.FileDescriptionImpl: write(2) is send(2) without flags.
func (s *sock) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	return s.send(ctx, src, nil, 0)
}

// Type implements socket.Socket.
func (s *sock) Type() (family, stype, protocol int) { return s.family, s.stype, s.protocol }

// Timeouts implements socket.Socket.
func (s *sock) Timeouts() (recv, send time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.rcvTimeo, s.opts.sndTimeo
}

// parseAddr decodes a bind or connect address of the socket's family with
// Linux's checks. For AF_INET6 an IPv4-mapped address comes back as the
// IPv4 address with v4 set.
func (s *sock) parseAddr(b []byte) (addr tcpip.FullAddress, v4 bool, err error) {
	fam, ok := addrFamily(b)
	if !ok {
		return addr, false, unix.EINVAL
	}
	if s.family == unix.AF_INET {
		if len(b) < sockaddrInSize {
			return addr, false, unix.EINVAL
		}
		if fam != unix.AF_INET {
			return addr, false, unix.EAFNOSUPPORT
		}
		addr, err = parseInet(b)
		return addr, true, err
	}
	if len(b) < sockaddrIn6RFC2133 {
		return addr, false, unix.EINVAL
	}
	if fam != unix.AF_INET6 {
		return addr, false, unix.EAFNOSUPPORT
	}
	addr, err = parseInet6(b)
	if err != nil {
		return addr, false, err
	}
	if isV4Mapped(addr.Addr) {
		addr.Addr = unmapV4(addr.Addr)
		return addr, true, nil
	}
	return addr, false, nil
}

// useV4Locked moves an AF_INET6 socket onto an IPv4 endpoint, for a
// first bind or connect to an IPv4-mapped address (dual stack). It is
// only possible while the endpoint is unbound; options move across.
func (s *sock) useV4Locked() error {
	if s.family != unix.AF_INET6 {
		return nil
	}
	if s.opts.v6only {
		return unix.ENETUNREACH
	}
	if s.v4 != nil {
		// Bound to [::]: the IPv4 half on the same port takes over, as a
		// Linux socket bound to the wildcard may talk to either family.
		if !s.unconnectedLocked() {
			return unix.EINVAL
		}
		s.ep.WaitQueue().EventUnregister(&s.relay)
		s.ep.Close()
		s.v4.WaitQueue().EventUnregister(&s.relay4)
		s.ep, s.v4 = s.v4, nil
		s.ep.WaitQueue().EventRegister(&s.relay, tcpip.EventMask(waiter.AllEvents))
		s.pushTOSLocked()
		return nil
	}
	if a, _ := s.ep.LocalAddress(); a.Port != 0 || a.Addr.Len() == 4 {
		if a.Addr.Len() == 4 {
			return nil // already on IPv4
		}
		return unix.EINVAL
	}
	return s.replaceEndpointLocked(ipv4.ProtocolNumber, false)
}

// replaceEndpointLocked gives the socket a new endpoint of netProto with
// the old one's options, its readiness relay and its traffic class; the
// old endpoint is closed, or aborted (a reset) if abort.
func (s *sock) replaceEndpointLocked(netProto tcpip.NetworkProtocolNumber, abort bool) error {
	nep, terr := s.p.stack.NewEndpoint(s.trans, netProto, nil)
	if terr != nil {
		return errnoOf(terr)
	}
	copyOptions(s.ep, nep)
	s.ep.WaitQueue().EventUnregister(&s.relay)
	if abort {
		s.ep.Abort()
	} else {
		s.ep.Close()
	}
	s.ep = nep
	nep.WaitQueue().EventRegister(&s.relay, tcpip.EventMask(waiter.AllEvents))
	s.pushTOSLocked()
	return nil
}

// pushTOSLocked gives the endpoints the traffic class byte of their
// packets: IP_TOS for IPv4 (an AF_INET6 socket's IPv4 half or mapped
// endpoint included), IPV6_TCLASS for IPv6.
func (s *sock) pushTOSLocked() {
	tos := s.opts.tclass
	if s.family == unix.AF_INET || s.onV4Locked() {
		tos = s.opts.tos
	}
	s.ep.SetSockOpt(tcpip.TOSOption, tos)
	if s.v4 != nil {
		s.v4.SetSockOpt(tcpip.TOSOption, s.opts.tos)
	}
}

// onV4Locked reports an AF_INET6 socket whose endpoint is IPv4 (after a
// bind or connect to a mapped address).
func (s *sock) onV4Locked() bool {
	n, ok := s.ep.(interface {
		NetworkProtocolNumber() tcpip.NetworkProtocolNumber
	})
	return s.family == unix.AF_INET6 && ok && n.NetworkProtocolNumber() == ipv4.ProtocolNumber
}

// dropV4Locked gives up the IPv4 half when a dual-stack socket commits
// to an IPv6 peer.
func (s *sock) dropV4Locked() {
	if s.v4 == nil || !s.unconnectedLocked() {
		return
	}
	s.v4.WaitQueue().EventUnregister(&s.relay4)
	s.v4.Close()
	s.v4 = nil
}

// unconnectedLocked reports an endpoint that is neither connected nor
// listening: only such a socket may change its endpoints.
func (s *sock) unconnectedLocked() bool {
	if !s.stream() {
		_, err := s.ep.RemoteAddress()
		return err != nil
	}
	st, ok := tcpState(s.ep)
	return ok && (st == tcp.StateInitial || st == tcp.StateBound)
}

// dualStackable reports a socket whose wildcard bind covers IPv4 too.
func (s *sock) dualStackableLocked() bool {
	return s.family == unix.AF_INET6 && !s.opts.v6only &&
		(s.trans == tcp.ProtocolNumber || s.trans == udp.ProtocolNumber)
}

// copyOptions carries the endpoint-kept options to a replacement endpoint.
func copyOptions(from, to tcpip.Endpoint) {
	for _, o := range []tcpip.SockOpt{tcpip.ReuseAddressOption, tcpip.ReusePortOption, tcpip.BroadcastOption,
		tcpip.SendBufferSizeOption, tcpip.ReceiveBufferSizeOption, tcpip.KeepaliveEnabledOption,
		tcpip.KeepaliveIdleOption, tcpip.KeepaliveIntervalOption, tcpip.KeepaliveCountOption,
		tcpip.NoDelayOption, tcpip.MaxSegOption, tcpip.TimestampOption, tcpip.TOSOption, tcpip.CongestionControlOption} {
		if v, err := from.GetSockOpt(o); err == nil {
			to.SetSockOpt(o, v)
		}
	}
	if v, err := from.GetSockOpt(tcpip.TTLOption); err == nil {
		to.SetSockOpt(tcpip.TTLOption, v)
	}
}

// Bind implements socket.Socket.
func (s *sock) Bind(t *kernel.Task, b []byte) error {
	fam, ok := addrFamily(b)
	if s.family == unix.AF_INET && ok && fam == unix.AF_UNSPEC && len(b) >= sockaddrInSize {
		// Linux accepts AF_UNSPEC with INADDR_ANY for compatibility.
		if a, _ := parseInet(b); a.Addr.Unspecified() {
			b = append([]byte(nil), b...)
			b[0], b[1] = unix.AF_INET, 0
		}
	}
	addr, v4, err := s.parseAddr(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 != nil {
		return unix.EINVAL // already bound, dual stack
	}
	if s.family == unix.AF_INET6 && v4 {
		if s.opts.v6only {
			return unix.EINVAL
		}
		if err := s.useV4Locked(); err != nil {
			return err
		}
	}
	if !addr.Addr.Unspecified() && !addr.Addr.IsMulticast() && !addr.Addr.IsBroadcast() &&
		!s.p.stack.IsLocalAddress(addr.NIC, addr.Addr) {
		return unix.EADDRNOTAVAIL
	}
	if err := s.ep.Bind(addr); err != nil {
		return errnoOf(err)
	}
	if !v4 && addr.Addr.Unspecified() && s.dualStackableLocked() {
		return s.bindDualStackLocked()
	}
	return nil
}

// bindDualStackLocked gives a TCP or UDP socket just bound to [::]:port its
// IPv4 half on 0.0.0.0:port, so that, as on Linux, it accepts IPv4
// connections too. If the IPv4 port is taken the bind fails as a whole.
func (s *sock) bindDualStackLocked() error {
	local, _ := s.ep.LocalAddress()
	v4, terr := s.p.stack.NewEndpoint(s.trans, ipv4.ProtocolNumber, nil)
	if terr == nil {
		copyOptions(s.ep, v4)
		terr = v4.Bind(tcpip.FullAddress{Port: local.Port})
		if terr != nil {
			v4.Close()
		}
	}
	if terr != nil {
		// Undo the IPv6 half: a fresh endpoint with the same options.
		nep, nerr := s.p.stack.NewEndpoint(s.trans, ipv6.ProtocolNumber, nil)
		if nerr == nil {
			copyOptions(s.ep, nep)
			s.ep.WaitQueue().EventUnregister(&s.relay)
			s.ep.Close()
			s.ep = nep
			nep.WaitQueue().EventRegister(&s.relay, tcpip.EventMask(waiter.AllEvents))
		}
		return errnoOf(terr)
	}
	s.v4 = v4
	v4.WaitQueue().EventRegister(&s.relay4, tcpip.EventMask(waiter.AllEvents))
	s.pushTOSLocked()
	return nil
}

// Listen implements socket.Socket.
func (s *sock) Listen(t *kernel.Task, backlog int) error {
	if !s.stream() {
		return unix.EOPNOTSUPP
	}
	// Linux caps the backlog at net.core.somaxconn (4096); negative means
	// the maximum.
	if backlog < 0 || backlog > 4096 {
		backlog = 4096
	}
	// The accept queue holds backlog+1 connections on Linux.
	s.mu.Lock()
	if err := s.autoBindDualStackLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	ep, v4 := s.ep, s.v4
	s.mu.Unlock()
	if err := ep.Listen(backlog + 1); err != nil {
		return errnoOf(err)
	}
	if v4 != nil {
		return errnoOf(v4.Listen(backlog + 1))
	}
	return nil
}

// autoBindDualStackLocked binds an unbound dual-stack AF_INET6 stream
// socket to [::] and 0.0.0.0 on one ephemeral port before listen(2), so
// that, as on Linux, listening without bind accepts IPv4 as well. An
// ephemeral port free for IPv6 but taken for IPv4 is retried.
func (s *sock) autoBindDualStackLocked() error {
	if s.v4 != nil || !s.dualStackableLocked() {
		return nil
	}
	if a, _ := s.ep.LocalAddress(); a.Port != 0 || a.Addr.Len() == 4 {
		return nil
	}
	const attempts = 16
	var err error
	for i := 0; i < attempts; i++ {
		if terr := s.ep.Bind(tcpip.FullAddress{}); terr != nil {
			return errnoOf(terr)
		}
		if err = s.bindDualStackLocked(); err != unix.EADDRINUSE {
			return err
		}
	}
	return err
}

// Connect implements socket.Socket.
func (s *sock) Connect(t *kernel.Task, b []byte) error {
	fam, ok := addrFamily(b)
	if !ok {
		return unix.EINVAL
	}
	if fam == unix.AF_UNSPEC {
		return s.disconnect()
	}
	addr, v4, err := s.parseAddr(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.family == unix.AF_INET6 && v4 {
		if err := s.useV4Locked(); err != nil {
			s.mu.Unlock()
			return err
		}
	} else if s.family == unix.AF_INET6 {
		s.dropV4Locked()
		if a, _ := s.ep.LocalAddress(); a.Addr.Len() == 4 {
			// Bound to an IPv4 address: an IPv6 peer is unreachable.
			s.mu.Unlock()
			return unix.ENETUNREACH
		}
	}
	ep := s.ep
	s.mu.Unlock()
	terr := ep.Connect(addr)
	switch {
	case terr == nil:
		s.connecting.Store(false)
		return nil
	case terr == tcpip.ErrConnectStarted:
		s.connecting.Store(true)
		return unix.EINPROGRESS
	case terr == tcpip.ErrAlreadyConnected && s.connecting.Swap(false):
		return nil
	case terr == tcpip.ErrInvalidArgument && s.stream():
		// Port 0 or no address: nothing listens there.
		return unix.ECONNREFUSED
	}
	return errnoOf(terr)
}

// ConnectSettled tells the socket that a blocking connect(2) saw its
// connection attempt finish, as Linux's SS_CONNECTED: a later connect of
// an established socket is then EISCONN.
func (s *sock) ConnectSettled() { s.connecting.Store(false) }

// disconnect is connect(2) with AF_UNSPEC: a datagram socket forgets its
// peer; a connected stream is reset and the socket starts afresh.
func (s *sock) disconnect() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stream() {
		return errnoOf(s.ep.Connect(tcpip.FullAddress{}))
	}
	st, err := s.ep.GetSockOpt(tcpip.TCPStateOption)
	if err != nil || tcp.State(st) == tcp.StateInitial || tcp.State(st) == tcp.StateBound {
		return nil
	}
	netProto := ipv4.ProtocolNumber
	if s.family == unix.AF_INET6 {
		if a, _ := s.ep.LocalAddress(); a.Addr.Len() != 4 {
			netProto = ipv6.ProtocolNumber
		}
	}
	return s.replaceEndpointLocked(netProto, true)
}

// Accept implements socket.Socket.
func (s *sock) Accept(t *kernel.Task, flags int) (*vfs.FileDescription, []byte, error) {
	if !s.stream() {
		return nil, nil, unix.EOPNOTSUPP
	}
	s.mu.Lock()
	ep, v4 := s.ep, s.v4
	s.mu.Unlock()
	nep, peer, terr := ep.Accept()
	if terr == tcpip.ErrWouldBlock && v4 != nil {
		nep, peer, terr = v4.Accept()
	}
	if terr != nil {
		return nil, nil, errnoOf(terr)
	}
	ns := newSock(s.p, s.stype, s.protocol, s.trans, nep)
	s.mu.Lock()
	ns.opts = s.opts
	s.mu.Unlock()
	fileFlags := uint32(unix.O_RDWR)
	if flags&unix.SOCK_NONBLOCK != 0 {
		fileFlags |= unix.O_NONBLOCK
	}
	return s.p.newFile(ctxOf(t), ns, fileFlags), encodeAddr(s.family, peer), nil
}

// Shutdown implements socket.Socket.
func (s *sock) Shutdown(t *kernel.Task, how int) error {
	var f tcpip.ShutdownFlags
	switch how {
	case unix.SHUT_RD:
		f = tcpip.ShutdownRead
	case unix.SHUT_WR:
		f = tcpip.ShutdownWrite
	case unix.SHUT_RDWR:
		f = tcpip.ShutdownRead | tcpip.ShutdownWrite
	default:
		return unix.EINVAL
	}
	s.mu.Lock()
	ep, v4 := s.ep, s.v4
	s.mu.Unlock()
	if v4 != nil {
		v4.Shutdown(f)
	}
	return errnoOf(ep.Shutdown(f))
}

// SockName implements socket.Socket.
func (s *sock) SockName(t *kernel.Task) ([]byte, error) {
	a, terr := s.endpoint().LocalAddress()
	if terr != nil {
		return nil, errnoOf(terr)
	}
	return encodeAddr(s.family, a), nil
}

// PeerName implements socket.Socket.
func (s *sock) PeerName(t *kernel.Task) ([]byte, error) {
	a, terr := s.endpoint().RemoteAddress()
	if terr != nil {
		return nil, errnoOf(terr)
	}
	return encodeAddr(s.family, a), nil
}

// SendMsg implements socket.Socket.
func (s *sock) SendMsg(t *kernel.Task, src usermem.IOSequence, to []byte, flags int, control socket.ControlMessages) (int64, error) {
	return s.send(ctxOf(t), src, to, flags)
}

func (s *sock) send(ctx context.Context, src usermem.IOSequence, to []byte, flags int) (int64, error) {
	opts := tcpip.WriteOptions{More: flags&unix.MSG_MORE != 0}
	s.mu.Lock()
	if s.opts.cork {
		opts.More = true
	}
	s.mu.Unlock()
	var ep tcpip.Endpoint
	if to != nil && !s.stream() {
		addr, via, err := s.parseSendAddr(to)
		if err != nil {
			return 0, err
		}
		if addr != nil {
			opts.To = addr
		}
		ep = via
	}
	if ep == nil {
		ep = s.endpoint()
	}
	r := seqReader{ctx: ctx, seq: src}
	n, terr := ep.Write(&r, opts)
	if terr != nil {
		if n > 0 {
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if s.stream() && (terr == tcpip.ErrNotConnected || terr == tcpip.ErrClosedForSend) {
			return 0, unix.EPIPE
		}
		return 0, errnoOf(terr)
	}
	if n == 0 && r.err != nil && src.NumBytes() > 0 {
		return 0, r.err
	}
	return n, nil
}

// parseSendAddr decodes sendto's destination; nil means "the connected
// peer" (AF_UNSPEC on an AF_INET6 socket). via, if not nil, is the
// endpoint that must send it: the IPv4 half of a dual-stack socket.
func (s *sock) parseSendAddr(b []byte) (addr *tcpip.FullAddress, via tcpip.Endpoint, err error) {
	fam, ok := addrFamily(b)
	if !ok {
		return nil, nil, unix.EINVAL
	}
	if s.family == unix.AF_INET {
		if len(b) < sockaddrInSize {
			return nil, nil, unix.EINVAL
		}
		if fam != unix.AF_INET && fam != unix.AF_UNSPEC {
			return nil, nil, unix.EAFNOSUPPORT
		}
		a, err := parseInet(b)
		return &a, nil, err
	}
	switch fam {
	case unix.AF_UNSPEC:
		return nil, nil, nil
	case unix.AF_INET6:
	default:
		return nil, nil, unix.EINVAL
	}
	a, v4, err := s.parseAddr(b)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	local, _ := s.ep.LocalAddress()
	switch {
	case v4 && s.v4 != nil:
		return &a, s.v4, nil
	case v4 && local.Addr.Len() != 4:
		if local.Port != 0 {
			return nil, nil, unix.ENETUNREACH
		}
		if err := s.useV4Locked(); err != nil {
			return nil, nil, err
		}
	case !v4 && local.Addr.Len() == 4:
		return nil, nil, unix.ENETUNREACH
	}
	return &a, nil, nil
}

// RecvMsg implements socket.Socket.
func (s *sock) RecvMsg(t *kernel.Task, dst usermem.IOSequence, flags int, wantAddr bool) (int64, int, []byte, socket.ControlMessages, error) {
	n, mflags, from, at, err := s.recv(ctxOf(t), dst, flags, wantAddr)
	var cm socket.ControlMessages
	if err == nil {
		s.mu.Lock()
		if s.opts.timestamp {
			// A datagram's arrival time; for a stream (whose bytes
			// carry no single arrival) the time of the read.
			if at.IsZero() {
				at = time.Now()
			}
			cm.Timestamp, cm.HasTimestamp = at, true
		}
		s.mu.Unlock()
	}
	return n, mflags, from, cm, err
}

func (s *sock) recv(ctx context.Context, dst usermem.IOSequence, flags int, wantAddr bool) (int64, int, []byte, time.Time, error) {
	if flags&unix.MSG_OOB != 0 {
		// No urgent data is ever queued.
		return 0, 0, nil, time.Time{}, unix.EINVAL
	}
	w := seqWriter{ctx: ctx, seq: dst}
	var dw io.Writer = &w
	var discard discardWriter
	if flags&unix.MSG_TRUNC != 0 && s.stream() {
		// Stream MSG_TRUNC drops the bytes instead of copying them.
		discard.room = int(min(dst.NumBytes(), 1<<30))
		dw = &discard
	}
	s.mu.Lock()
	ep, v4 := s.ep, s.v4
	s.mu.Unlock()
	ropts := tcpip.ReadOptions{Peek: flags&unix.MSG_PEEK != 0}
	res, terr := ep.Read(dw, ropts)
	if terr == tcpip.ErrWouldBlock && v4 != nil && !s.stream() {
		// A dual-stack datagram socket: IPv4 arrivals queue on its
		// IPv4 half.
		res, terr = v4.Read(dw, ropts)
	}
	if terr != nil {
		if terr == tcpip.ErrClosedForReceive {
			return 0, 0, nil, time.Time{}, nil
		}
		return 0, 0, nil, time.Time{}, errnoOf(terr)
	}
	if res.Count == 0 && w.err != nil {
		return 0, 0, nil, time.Time{}, w.err
	}
	n := int64(res.Count)
	mflags := 0
	if !s.stream() {
		if res.Total > res.Count {
			mflags |= unix.MSG_TRUNC
		}
		if flags&unix.MSG_TRUNC != 0 {
			n = int64(res.Total)
		}
	}
	var from []byte
	if wantAddr {
		from = encodeAddr(s.family, res.RemoteAddr)
	}
	return n, mflags, from, res.Timestamp, nil
}

// seqWriter copies received bytes out to application memory; a full
// sequence stops the endpoint's copy with a short write.
type seqWriter struct {
	ctx context.Context
	seq usermem.IOSequence
	err error
}

func (w *seqWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.seq.NumBytes() == 0 {
		return 0, io.ErrShortWrite
	}
	n, err := w.seq.CopyOut(w.ctx, p)
	w.seq = w.seq.DropFirst(int64(n))
	if err != nil {
		w.err = err
		return n, err
	}
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// discardWriter accepts up to room bytes and keeps none.
type discardWriter struct{ room int }

func (d *discardWriter) Write(p []byte) (int, error) {
	n := min(len(p), d.room)
	d.room -= n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// seqReader copies bytes to send in from application memory.
type seqReader struct {
	ctx context.Context
	seq usermem.IOSequence
	err error
}

// Len implements tcpip.LenReader.
func (r *seqReader) Len() int { return int(min(r.seq.NumBytes(), 1<<31-1)) }

func (r *seqReader) Read(p []byte) (int, error) {
	if r.seq.NumBytes() == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.seq.CopyIn(r.ctx, p)
	r.seq = r.seq.DropFirst(int64(n))
	if err != nil {
		r.err = err
		if n > 0 {
			return n, nil
		}
		return 0, err
	}
	return n, nil
}

// tcpState reads a TCP endpoint's state; ok is false for other endpoints.
func tcpState(ep tcpip.Endpoint) (tcp.State, bool) {
	st, err := ep.GetSockOpt(tcpip.TCPStateOption)
	if err != nil {
		return 0, false
	}
	return tcp.State(st), true
}
