package netstack

import (
	"bytes"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// env is one sandbox network: a stack with loopback and both providers.
type env struct {
	t      testing.TB
	ctx    context.Context
	stack  *stack.Stack
	v4, v6 *Provider
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := NewStack()
	lo, err := AddLoopback(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lo.Close)
	v := vfs.New()
	return &env{t: t, ctx: context.Background(), stack: s, v4: NewProvider(v, s, unix.AF_INET), v6: NewProvider(v, s, unix.AF_INET6)}
}

// tsock is a socket under test with its file.
type tsock struct {
	e      *env
	fd     *vfs.FileDescription
	closed bool
	socket.Socket
}

// close drops the test's reference once (close(2) of the last descriptor).
func (s *tsock) close() {
	if !s.closed {
		s.closed = true
		s.fd.DecRef(s.e.ctx)
	}
}

func (e *env) socket(p *Provider, stype, proto int) *tsock {
	e.t.Helper()
	fd, err := p.NewSocket(e.ctx, stype, proto)
	if err != nil {
		e.t.Fatalf("socket(%d, %d, %d): %v", p.family, stype, proto, err)
	}
	ts := &tsock{e: e, fd: fd, Socket: fd.Impl().(socket.Socket)}
	e.t.Cleanup(ts.close)
	return ts
}

func (s *tsock) wrap(fd *vfs.FileDescription) *tsock {
	ts := &tsock{e: s.e, fd: fd, Socket: fd.Impl().(socket.Socket)}
	s.e.t.Cleanup(ts.close)
	return ts
}

func inet(addr string, port uint16) []byte {
	a := tcpip.ParseAddress(addr)
	if a.Len() == 16 {
		return encodeInet6(tcpip.FullAddress{Addr: a, Port: port})
	}
	return encodeInet(tcpip.FullAddress{Addr: a, Port: port})
}

func portOf(b []byte) uint16 { return binary.BigEndian.Uint16(b[2:]) }

// waitFor blocks until the socket has one of mask, as the syscall layer
// does between EAGAIN and a retry.
func (s *tsock) waitFor(mask waiter.EventMask) {
	s.e.t.Helper()
	sockettest.WaitReady(s.e.t, s, mask)
}

func (s *tsock) send(b []byte, to []byte, flags int) (int64, error) {
	return s.SendMsg(nil, sockettest.Seq(b), to, flags, socket.ControlMessages{})
}

func (s *tsock) recv(n int, flags int) ([]byte, int, []byte, error) {
	buf := make([]byte, n)
	got, mflags, from, _, err := s.RecvMsg(nil, sockettest.Seq(buf), flags, true)
	if err != nil {
		return nil, 0, nil, err
	}
	return buf[:min(int(got), n)], mflags, from, nil
}

// recvWait retries a receive on EAGAIN after waiting for readability.
func (s *tsock) recvWait(n int, flags int) ([]byte, int, []byte) {
	s.e.t.Helper()
	for {
		b, mf, from, err := s.recv(n, flags)
		if errors.Is(err, unix.EAGAIN) {
			s.waitFor(waiter.EventIn)
			continue
		}
		if err != nil {
			s.e.t.Fatalf("recv: %v", err)
		}
		return b, mf, from
	}
}

// sendAll writes b completely, waiting for room as a blocking send would.
func (s *tsock) sendAll(b []byte) {
	s.e.t.Helper()
	for len(b) > 0 {
		n, err := s.send(b, nil, 0)
		if errors.Is(err, unix.EAGAIN) {
			s.waitFor(waiter.EventOut)
			continue
		}
		if err != nil {
			s.e.t.Fatalf("send: %v", err)
		}
		b = b[n:]
	}
}

func (s *tsock) accept() (*tsock, []byte) {
	s.e.t.Helper()
	for {
		fd, peer, err := s.Accept(nil, 0)
		if errors.Is(err, unix.EAGAIN) {
			s.waitFor(waiter.EventIn)
			continue
		}
		if err != nil {
			s.e.t.Fatalf("accept: %v", err)
		}
		return s.wrap(fd), peer
	}
}

// connect does a blocking connect(2) the way the syscall layer does.
func (s *tsock) connect(addr []byte) error {
	err := s.Connect(nil, addr)
	if !errors.Is(err, unix.EINPROGRESS) {
		return err
	}
	s.waitFor(waiter.EventOut)
	return s.soError()
}

func (s *tsock) soError() error {
	b, err := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_ERROR, 4)
	if err != nil {
		s.e.t.Fatalf("SO_ERROR: %v", err)
	}
	if v := binary.LittleEndian.Uint32(b); v != 0 {
		return unix.Errno(v)
	}
	return nil
}

func (s *tsock) getInt(level, name int) int {
	s.e.t.Helper()
	b, err := s.GetSockOpt(nil, level, name, 4)
	if err != nil {
		s.e.t.Fatalf("getsockopt(%d, %d): %v", level, name, err)
	}
	return int(int32(binary.LittleEndian.Uint32(b)))
}

func (s *tsock) setInt(level, name, v int) error {
	return s.SetSockOpt(nil, level, name, intBytes(v))
}

// connectedPair returns both ends of a loopback TCP connection: the
// connecting socket and the one accepted for it.
func connectedPair(tb testing.TB, e *env) (*tsock, *tsock) {
	tb.Helper()
	l, port := e.listener(e.v4, "127.0.0.1")
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", port)); err != nil {
		tb.Fatal(err)
	}
	a, _ := l.accept()
	return c, a
}

// listener returns a listening TCP socket on addr and its port.
func (e *env) listener(p *Provider, addr string) (*tsock, uint16) {
	e.t.Helper()
	l := e.socket(p, unix.SOCK_STREAM, 0)
	if err := l.Bind(nil, inet(addr, 0)); err != nil {
		e.t.Fatalf("bind: %v", err)
	}
	if err := l.Listen(nil, 16); err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	name, err := l.SockName(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return l, portOf(name)
}

func TestTCPEchoLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		fam  func(*env) *Provider
		addr string
	}{
		{"ipv4", func(e *env) *Provider { return e.v4 }, "127.0.0.1"},
		{"ipv6", func(e *env) *Provider { return e.v6 }, "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := tc.fam(e)
			l, port := e.listener(p, tc.addr)
			if port < stack.FirstEphemeralPort || port > stack.LastEphemeralPort {
				t.Errorf("bind to port 0 got port %d, want an ephemeral port", port)
			}
			if got := l.getInt(unix.SOL_SOCKET, unix.SO_ACCEPTCONN); got != 1 {
				t.Errorf("SO_ACCEPTCONN = %d on a listener", got)
			}
			c := e.socket(p, unix.SOCK_STREAM, 0)
			if err := c.connect(inet(tc.addr, port)); err != nil {
				t.Fatalf("connect: %v", err)
			}
			a, peer := l.accept()
			cname, _ := c.SockName(nil)
			if !bytes.Equal(peer, cname) {
				t.Errorf("accept's peer %x != client's sockname %x", peer, cname)
			}
			apeer, err := a.PeerName(nil)
			if err != nil || !bytes.Equal(apeer, cname) {
				t.Errorf("getpeername of accepted = %x, %v; want %x", apeer, err, cname)
			}

			msg := bytes.Repeat([]byte("hello, netstack "), 10000) // 160 KB: several windows
			go func() {
				// The echo server: read and write back until EOF.
				buf := make([]byte, 8192)
				for {
					got, _, _, _, err := a.RecvMsg(nil, sockettest.Seq(buf), 0, false)
					if errors.Is(err, unix.EAGAIN) {
						a.waitFor(waiter.EventIn)
						continue
					}
					if err != nil || got == 0 {
						a.Shutdown(nil, unix.SHUT_WR)
						return
					}
					a.sendAll(buf[:got])
				}
			}()
			done := make(chan struct{})
			go func() {
				c.sendAll(msg)
				if err := c.Shutdown(nil, unix.SHUT_WR); err != nil {
					t.Errorf("shutdown: %v", err)
				}
				close(done)
			}()
			var echoed []byte
			for {
				b, _, _ := c.recvWait(65536, 0)
				if len(b) == 0 {
					break
				}
				echoed = append(echoed, b...)
			}
			<-done
			if !bytes.Equal(echoed, msg) {
				t.Fatalf("echoed %d bytes, want the %d sent", len(echoed), len(msg))
			}
		})
	}
}

func TestNonBlockingConnectRefused(t *testing.T) {
	e := newEnv(t)
	// A port nobody listens on: bind one and close it to learn a free port.
	probe := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := probe.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := probe.SockName(nil)
	port := portOf(name)
	probe.close()

	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	err := c.Connect(nil, inet("127.0.0.1", port))
	if !errors.Is(err, unix.EINPROGRESS) {
		t.Fatalf("connect = %v, want EINPROGRESS", err)
	}
	c.waitFor(waiter.EventOut)
	if got := c.soError(); !errors.Is(got, unix.ECONNREFUSED) {
		t.Fatalf("SO_ERROR = %v, want ECONNREFUSED", got)
	}
	if got := c.soError(); got != nil {
		t.Errorf("SO_ERROR after reading it = %v, want 0", got)
	}
	if ev := c.Readiness(waiter.AllEvents); ev&waiter.EventHUp == 0 {
		t.Errorf("refused socket readiness %#x lacks POLLHUP", ev)
	}
}

func TestConnectInProgressThenAlready(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.Connect(nil, inet("127.0.0.1", port)); !errors.Is(err, unix.EINPROGRESS) {
		t.Fatalf("connect = %v, want EINPROGRESS", err)
	}
	c.waitFor(waiter.EventOut)
	// As Linux: the connect that finished unseen is reported once by the
	// next connect, and only then is the socket EISCONN.
	if err := c.Connect(nil, inet("127.0.0.1", port)); err != nil {
		t.Errorf("second connect = %v, want success", err)
	}
	if err := c.Connect(nil, inet("127.0.0.1", port)); !errors.Is(err, unix.EISCONN) {
		t.Errorf("third connect = %v, want EISCONN", err)
	}
	l.accept()
}

func TestFreshTCPSocket(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	// tcp_poll: a closed socket is writable and hung up.
	if got, want := s.Readiness(waiter.EventOut|waiter.EventHUp|waiter.EventIn), waiter.EventOut|waiter.EventHUp; got != want {
		t.Errorf("readiness = %#x, want %#x", got, want)
	}
	if _, err := s.send([]byte("x"), nil, 0); !errors.Is(err, unix.EPIPE) {
		t.Errorf("send on unconnected TCP = %v, want EPIPE", err)
	}
	if _, _, _, err := s.recv(1, 0); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("recv on unconnected TCP = %v, want ENOTCONN", err)
	}
	if _, err := s.PeerName(nil); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("getpeername = %v, want ENOTCONN", err)
	}
	if _, _, err := s.Accept(nil, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("accept on non-listener = %v, want EINVAL", err)
	}
	if err := s.Shutdown(nil, 7); !errors.Is(err, unix.EINVAL) {
		t.Errorf("shutdown(7) = %v, want EINVAL", err)
	}
	name, err := s.SockName(nil)
	if err != nil || !bytes.Equal(name, inet("0.0.0.0", 0)) {
		t.Errorf("getsockname of unbound = %x, %v", name, err)
	}
}

func TestBindErrors(t *testing.T) {
	e := newEnv(t)
	a := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := a.Bind(nil, inet("127.0.0.1", 0)[:15]); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bind with short sockaddr_in = %v, want EINVAL", err)
	}
	bad := inet("127.0.0.1", 0)
	bad[0] = unix.AF_INET6
	if err := a.Bind(nil, bad); !errors.Is(err, unix.EAFNOSUPPORT) {
		t.Errorf("bind with AF_INET6 family on AF_INET = %v, want EAFNOSUPPORT", err)
	}
	if err := a.Bind(nil, inet("10.1.2.3", 0)); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("bind to a foreign address = %v, want EADDRNOTAVAIL", err)
	}
	if err := a.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := a.Bind(nil, inet("127.0.0.1", 0)); !errors.Is(err, unix.EINVAL) {
		t.Errorf("second bind = %v, want EINVAL", err)
	}
	name, _ := a.SockName(nil)
	b := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := b.Bind(nil, name); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind to a taken port = %v, want EADDRINUSE", err)
	}
	// Both with SO_REUSEADDR (and neither listening) may share it.
	c := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	d := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	for _, s := range []*tsock{c, d} {
		if err := s.setInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	cn, _ := c.SockName(nil)
	if err := d.Bind(nil, cn); err != nil {
		t.Errorf("SO_REUSEADDR UDP bind to a shared port = %v", err)
	}
	v6 := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := v6.Bind(nil, inet("::1", 0)[:23]); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bind with short sockaddr_in6 = %v, want EINVAL", err)
	}
	if err := v6.Bind(nil, inet("127.0.0.1", 0)); !errors.Is(err, unix.EINVAL) {
		t.Errorf("AF_INET6 bind with a 16-byte sockaddr_in = %v, want EINVAL", err)
	}
}

func TestSocketTypes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		stype, proto int
		want         error
	}{
		{unix.SOCK_STREAM, unix.IPPROTO_UDP, unix.EPROTONOSUPPORT},
		{unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.EPROTONOSUPPORT},
		{unix.SOCK_SEQPACKET, 0, unix.ESOCKTNOSUPPORT},
		{unix.SOCK_RAW, unix.IPPROTO_ICMP, unix.EPERM},
	} {
		if _, err := e.v4.NewSocket(e.ctx, tc.stype, tc.proto); !errors.Is(err, tc.want) {
			t.Errorf("socket(AF_INET, %d, %d) = %v, want %v", tc.stype, tc.proto, err, tc.want)
		}
	}
	s := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	for name, want := range map[int]int{unix.SO_TYPE: unix.SOCK_DGRAM, unix.SO_DOMAIN: unix.AF_INET6, unix.SO_PROTOCOL: unix.IPPROTO_UDP} {
		if got := s.getInt(unix.SOL_SOCKET, name); got != want {
			t.Errorf("getsockopt(%d) = %d, want %d", name, got, want)
		}
	}
}

func TestUDP(t *testing.T) {
	e := newEnv(t)
	srv := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := srv.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	sname, _ := srv.SockName(nil)
	cli := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if _, _, _, err := srv.recv(10, 0); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("recv on empty UDP socket = %v, want EAGAIN", err)
	}
	if ev := srv.Readiness(waiter.EventIn | waiter.EventOut); ev != waiter.EventOut {
		t.Errorf("readiness of idle UDP socket = %#x, want POLLOUT", ev)
	}
	if n, err := cli.send([]byte("datagram one"), sname, 0); err != nil || n != 12 {
		t.Fatalf("sendto = %d, %v", n, err)
	}
	// MSG_PEEK leaves the datagram; the address is the sender's.
	b, _, from, _ := func() ([]byte, int, []byte, error) { srv.waitFor(waiter.EventIn); return srv.recv(100, unix.MSG_PEEK) }()
	cname, _ := cli.SockName(nil)
	if string(b) != "datagram one" || portOf(from) != portOf(cname) || !bytes.Equal(from[4:8], []byte{127, 0, 0, 1}) {
		t.Errorf("peek = %q from %x, want %q from %x", b, from, "datagram one", cname)
	}
	// FIONREAD reports the next datagram's size.
	var arg [4]byte
	io := &usermem.BytesIO{Bytes: arg[:]}
	if _, err := srv.Ioctl(e.ctx, srv.fd, io, 0, [6]uintptr{0, unix.SIOCINQ, 0}); err != nil || binary.LittleEndian.Uint32(arg[:]) != 12 {
		t.Errorf("FIONREAD = %d, %v; want 12", binary.LittleEndian.Uint32(arg[:]), err)
	}
	// A short buffer truncates; MSG_TRUNC reports the real length.
	buf := make([]byte, 4)
	n, mflags, _, _, err := srv.RecvMsg(nil, sockettest.Seq(buf), unix.MSG_TRUNC, false)
	if err != nil || n != 12 || mflags&unix.MSG_TRUNC == 0 || string(buf) != "data" {
		t.Errorf("recv(MSG_TRUNC, 4) = %d, flags %#x, %q, %v; want 12, MSG_TRUNC, \"data\"", n, mflags, buf, err)
	}
	if _, _, _, err := srv.recv(10, 0); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("datagram still queued after a truncated read: %v", err)
	}
	// Connected UDP: send without an address; a datagram from elsewhere
	// is not delivered to a connected socket.
	if err := cli.connect(sname); err != nil {
		t.Fatal(err)
	}
	peer, err := cli.PeerName(nil)
	if err != nil || !bytes.Equal(peer, sname) {
		t.Errorf("getpeername = %x, %v", peer, err)
	}
	if _, err := cli.send([]byte("two"), nil, 0); err != nil {
		t.Fatal(err)
	}
	got, _, _ := srv.recvWait(100, 0)
	if string(got) != "two" {
		t.Errorf("got %q, want \"two\"", got)
	}
	// AF_UNSPEC dissolves the association.
	unspec := make([]byte, 16)
	if err := cli.Connect(nil, unspec); err != nil {
		t.Fatalf("connect(AF_UNSPEC) = %v", err)
	}
	if _, err := cli.send([]byte("x"), nil, 0); !errors.Is(err, unix.EDESTADDRREQ) {
		t.Errorf("send after disconnect = %v, want EDESTADDRREQ", err)
	}
	if _, err := cli.send([]byte("x"), inet("127.0.0.1", 9)[:8], 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("sendto with a short address = %v, want EINVAL", err)
	}
	if err := srv.Listen(nil, 1); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("listen on UDP = %v, want EOPNOTSUPP", err)
	}
}

func TestDualStack(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	c := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("::ffff:127.0.0.1", port)); err != nil {
		t.Fatalf("AF_INET6 connect to a v4-mapped address: %v", err)
	}
	peer, _ := c.PeerName(nil)
	if want := inet("::ffff:127.0.0.1", port); !bytes.Equal(peer, want) {
		t.Errorf("getpeername = %x, want mapped %x", peer, want)
	}
	l.accept()

	v6only := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := v6only.setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		t.Fatal(err)
	}
	if err := v6only.Connect(nil, inet("::ffff:127.0.0.1", port)); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("IPV6_V6ONLY connect to a v4-mapped address = %v, want ENETUNREACH", err)
	}
	// UDP from an AF_INET6 socket to an IPv4 peer.
	u4 := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := u4.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	n4, _ := u4.SockName(nil)
	u6 := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if _, err := u6.send([]byte("mapped"), inet("::ffff:127.0.0.1", portOf(n4)), 0); err != nil {
		t.Fatalf("sendto a mapped address: %v", err)
	}
	b, _, _ := u4.recvWait(100, 0)
	if string(b) != "mapped" {
		t.Errorf("got %q", b)
	}
}

func TestSocketOptions(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	for _, tc := range []struct {
		level, name, set, want int
	}{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, 1},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, 1},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, 1},
		{unix.SOL_SOCKET, unix.SO_BROADCAST, 1, 1},
		{unix.SOL_SOCKET, unix.SO_SNDBUF, 65536, 131072},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 65536, 131072},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, 1},
		{unix.IPPROTO_TCP, unix.TCP_CORK, 1, 1},
		{unix.IPPROTO_TCP, unix.TCP_CORK, 0, 0},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30, 30},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 5, 5},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3, 3},
		{unix.IPPROTO_TCP, unix.TCP_MAXSEG, 1000, 1000},
		{unix.IPPROTO_IP, unix.IP_TTL, 7, 7},
		{unix.IPPROTO_IP, unix.IP_TTL, -1, 64},
		{unix.IPPROTO_IP, unix.IP_TOS, 0x10, 0x10},
		{unix.IPPROTO_IP, unix.IP_RECVERR, 1, 1},
	} {
		if err := s.setInt(tc.level, tc.name, tc.set); err != nil {
			t.Errorf("setsockopt(%d, %d, %d): %v", tc.level, tc.name, tc.set, err)
			continue
		}
		if got := s.getInt(tc.level, tc.name); got != tc.want {
			t.Errorf("getsockopt(%d, %d) after setting %d = %d, want %d", tc.level, tc.name, tc.set, got, tc.want)
		}
	}
	for _, tc := range []struct {
		level, name, v int
		want           error
	}{
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 0, unix.EINVAL},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 128, unix.EINVAL},
		{unix.IPPROTO_IP, unix.IP_TTL, 256, unix.EINVAL},
		{unix.SOL_SOCKET, 9999, 1, unix.ENOPROTOOPT},
		{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, unix.ENOPROTOOPT},
	} {
		if err := s.setInt(tc.level, tc.name, tc.v); !errors.Is(err, tc.want) {
			t.Errorf("setsockopt(%d, %d, %d) = %v, want %v", tc.level, tc.name, tc.v, err, tc.want)
		}
	}
	// A tiny buffer request is raised to a floor, never to zero.
	if err := s.setInt(unix.SOL_SOCKET, unix.SO_RCVBUF, 1); err != nil {
		t.Fatal(err)
	}
	if got := s.getInt(unix.SOL_SOCKET, unix.SO_RCVBUF); got < minRcvBuf || got > 8192 {
		t.Errorf("SO_RCVBUF after asking for 1 byte = %d, want a small floor", got)
	}
	if err := s.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_REUSEADDR, []byte{1}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("SO_REUSEADDR with a 1-byte value = %v, want EINVAL", err)
	}
	// SO_LINGER round trip.
	l := make([]byte, 8)
	binary.LittleEndian.PutUint32(l, 1)
	binary.LittleEndian.PutUint32(l[4:], 5)
	if err := s.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_LINGER, l); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_LINGER, 8); !bytes.Equal(got, l) {
		t.Errorf("SO_LINGER = %x, want %x", got, l)
	}
	// SO_RCVTIMEO round trip, EDOM on a bad tv_usec, and Timeouts.
	tv := encodeTimeval(1500 * time.Millisecond)
	if err := s.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_RCVTIMEO, tv); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_RCVTIMEO, 16); !bytes.Equal(got, tv) {
		t.Errorf("SO_RCVTIMEO = %x, want %x", got, tv)
	}
	if r, w := s.Timeouts(); r != 1500*time.Millisecond || w != 0 {
		t.Errorf("Timeouts = %v, %v", r, w)
	}
	binary.LittleEndian.PutUint64(tv[8:], 1000000)
	if err := s.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_SNDTIMEO, tv); !errors.Is(err, unix.EDOM) {
		t.Errorf("SO_SNDTIMEO with tv_usec = 1e6: %v, want EDOM", err)
	}
	// TCP_CONGESTION names the stack's algorithm; unknown ones are ENOENT.
	if got, _ := s.GetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_CONGESTION, 16); string(bytes.TrimRight(got, "\x00")) != "reno" {
		t.Errorf("TCP_CONGESTION = %q", got)
	}
	if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_CONGESTION, []byte("bogus")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("TCP_CONGESTION bogus = %v, want ENOENT", err)
	}
	// TCP_INFO: state of a listener is TCP_LISTEN (10).
	l2, _ := e.listener(e.v4, "127.0.0.1")
	if info, err := l2.GetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_INFO, 232); err != nil || info[0] != 10 {
		t.Errorf("TCP_INFO state = %v, %v; want 10", info, err)
	}
	// Truncated int options copy what fits.
	if got, err := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_TYPE, 1); err != nil || len(got) != 1 || got[0] != unix.SOCK_STREAM {
		t.Errorf("SO_TYPE with optlen 1 = %v, %v", got, err)
	}
	// IPV6_V6ONLY round trip on AF_INET6 and refused once bound.
	s6 := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := s6.setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil || s6.getInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) != 1 {
		t.Errorf("IPV6_V6ONLY round trip failed: %v", err)
	}
	if err := s6.Bind(nil, inet("::1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := s6.setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("IPV6_V6ONLY after bind = %v, want EINVAL", err)
	}
}

func TestPeekTruncAndShutdown(t *testing.T) {
	e := newEnv(t)
	c, a := connectedPair(t, e)
	c.sendAll([]byte("abcdef"))
	a.waitFor(waiter.EventIn)
	for a.inq() < 6 {
		time.Sleep(time.Millisecond)
	}
	if b, _, _ := a.recvWait(3, unix.MSG_PEEK); string(b) != "abc" {
		t.Errorf("peek = %q", b)
	}
	// Stream MSG_TRUNC discards without copying.
	buf := []byte("zz")
	n, _, _, _, err := a.RecvMsg(nil, sockettest.Seq(buf), unix.MSG_TRUNC, false)
	if err != nil || n != 2 || string(buf) != "zz" {
		t.Errorf("recv(MSG_TRUNC, 2) = %d, %v, buffer %q; want 2 bytes dropped, buffer untouched", n, err, buf)
	}
	if b, _, _ := a.recvWait(10, 0); string(b) != "cdef" {
		t.Errorf("after dropping 2 bytes read %q, want \"cdef\"", b)
	}
	if err := c.Shutdown(nil, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := a.recvWait(10, 0); len(b) != 0 {
		t.Errorf("read after peer's SHUT_WR = %q, want EOF", b)
	}
	if ev := a.Readiness(waiter.EventRdHUp); ev == 0 {
		t.Errorf("no POLLRDHUP after the peer's FIN")
	}
	if _, err := c.send([]byte("x"), nil, 0); !errors.Is(err, unix.EPIPE) {
		t.Errorf("send after SHUT_WR = %v, want EPIPE", err)
	}
	// The other direction still works.
	a.sendAll([]byte("back"))
	if b, _, _ := c.recvWait(10, 0); string(b) != "back" {
		t.Errorf("half-closed read %q", b)
	}
}

func (s *tsock) inq() int {
	var arg [4]byte
	if _, err := s.Ioctl(s.e.ctx, s.fd, &usermem.BytesIO{Bytes: arg[:]}, 0, [6]uintptr{0, unix.SIOCINQ, 0}); err != nil {
		s.e.t.Fatalf("SIOCINQ: %v", err)
	}
	return int(binary.LittleEndian.Uint32(arg[:]))
}

func TestPing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     func(*env) *Provider
		proto int
		addr  string
		typ   byte
	}{
		{"ipv4", func(e *env) *Provider { return e.v4 }, unix.IPPROTO_ICMP, "127.0.0.1", 8},
		{"ipv6", func(e *env) *Provider { return e.v6 }, unix.IPPROTO_ICMPV6, "::1", 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.socket(tc.p(e), unix.SOCK_DGRAM, tc.proto)
			req := []byte{tc.typ, 0, 0, 0, 0, 0, 0, 7, 'p', 'i', 'n', 'g'}
			if _, err := s.send(req, inet(tc.addr, 0), 0); err != nil {
				t.Fatalf("send echo request: %v", err)
			}
			b, _, from := s.recvWait(100, 0)
			if len(b) != len(req) {
				t.Fatalf("reply %x has %d bytes, want %d", b, len(b), len(req))
			}
			wantReply := byte(0)
			if tc.typ == 128 {
				wantReply = 129
			}
			name, _ := s.SockName(nil)
			if b[0] != wantReply || binary.BigEndian.Uint16(b[4:]) != portOf(name) || b[7] != 7 || string(b[8:]) != "ping" {
				t.Errorf("echo reply %x: want type %d, ident %d, seq 7, payload \"ping\"", b, wantReply, portOf(name))
			}
			if !bytes.Equal(from, inet(tc.addr, 0)) {
				t.Errorf("reply from %x, want %x", from, inet(tc.addr, 0))
			}
			if _, err := s.send([]byte{3, 0, 0, 0, 0, 0, 0, 0}, inet(tc.addr, 0), 0); !errors.Is(err, unix.EINVAL) {
				t.Errorf("sending a non-echo ICMP message = %v, want EINVAL", err)
			}
		})
	}
}

func TestInterfaceIoctls(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	mem := make([]byte, 4096)
	io := &usermem.BytesIO{Bytes: mem}
	ioctl := func(req uintptr, arg hostarch.Addr) error {
		_, err := s.Ioctl(e.ctx, s.fd, io, 0, [6]uintptr{0, req, uintptr(arg)})
		return err
	}
	ifreq := func(name string) {
		clear(mem[:ifreqSize])
		copy(mem, name)
	}
	ifreq("lo")
	if err := ioctl(unix.SIOCGIFINDEX, 0); err != nil || binary.LittleEndian.Uint32(mem[16:]) != 1 {
		t.Errorf("SIOCGIFINDEX lo = %d, %v", binary.LittleEndian.Uint32(mem[16:]), err)
	}
	ifreq("lo")
	if err := ioctl(unix.SIOCGIFFLAGS, 0); err != nil || binary.LittleEndian.Uint16(mem[16:])&(unix.IFF_UP|unix.IFF_LOOPBACK) != unix.IFF_UP|unix.IFF_LOOPBACK {
		t.Errorf("SIOCGIFFLAGS lo = %#x, %v", binary.LittleEndian.Uint16(mem[16:]), err)
	}
	ifreq("lo")
	if err := ioctl(unix.SIOCGIFADDR, 0); err != nil || !bytes.Equal(mem[16:32], inet("127.0.0.1", 0)) {
		t.Errorf("SIOCGIFADDR lo = %x, %v", mem[16:32], err)
	}
	ifreq("lo")
	if err := ioctl(unix.SIOCGIFNETMASK, 0); err != nil || !bytes.Equal(mem[20:24], []byte{255, 0, 0, 0}) {
		t.Errorf("SIOCGIFNETMASK lo = %x, %v", mem[16:32], err)
	}
	ifreq("lo")
	if err := ioctl(unix.SIOCGIFMTU, 0); err != nil || binary.LittleEndian.Uint32(mem[16:]) != 65536 {
		t.Errorf("SIOCGIFMTU lo = %d, %v", binary.LittleEndian.Uint32(mem[16:]), err)
	}
	ifreq("lo")
	if err := ioctl(unix.SIOCGIFHWADDR, 0); err != nil || binary.LittleEndian.Uint16(mem[16:]) != unix.ARPHRD_LOOPBACK {
		t.Errorf("SIOCGIFHWADDR lo family = %d, %v", binary.LittleEndian.Uint16(mem[16:]), err)
	}
	clear(mem[:ifreqSize])
	binary.LittleEndian.PutUint32(mem[16:], 1)
	if err := ioctl(unix.SIOCGIFNAME, 0); err != nil || string(mem[:3]) != "lo\x00" {
		t.Errorf("SIOCGIFNAME 1 = %q, %v", mem[:16], err)
	}
	ifreq("nope0")
	if err := ioctl(unix.SIOCGIFINDEX, 0); !errors.Is(err, unix.ENODEV) {
		t.Errorf("SIOCGIFINDEX of a missing interface = %v, want ENODEV", err)
	}
	// SIOCGIFCONF: ask for the length, then fetch.
	clear(mem[:ifconfSize])
	if err := ioctl(unix.SIOCGIFCONF, 0); err != nil || binary.LittleEndian.Uint32(mem) != ifreqSize {
		t.Fatalf("SIOCGIFCONF length = %d, %v; want one ifreq", binary.LittleEndian.Uint32(mem), err)
	}
	binary.LittleEndian.PutUint32(mem, 10*ifreqSize)
	binary.LittleEndian.PutUint64(mem[8:], 1024)
	if err := ioctl(unix.SIOCGIFCONF, 0); err != nil || binary.LittleEndian.Uint32(mem) != ifreqSize {
		t.Fatalf("SIOCGIFCONF = %d, %v", binary.LittleEndian.Uint32(mem), err)
	}
	if string(mem[1024:1027]) != "lo\x00" || !bytes.Equal(mem[1024+16:1024+32], inet("127.0.0.1", 0)) {
		t.Errorf("SIOCGIFCONF entry %x", mem[1024:1024+ifreqSize])
	}
	if err := ioctl(0x1234, 0); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("unknown ioctl = %v, want ENOTTY", err)
	}
}

func TestFstatIsSocket(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	st, err := s.fd.Stat(e.ctx, vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("fstat mode %#o is not a socket", st.Mode)
	}
}

func TestReleaseWithUnreadDataResets(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", port)); err != nil {
		t.Fatal(err)
	}
	fd, _, err := func() (*vfs.FileDescription, []byte, error) {
		l.waitFor(waiter.EventIn)
		return l.Accept(nil, unix.SOCK_NONBLOCK)
	}()
	if err != nil {
		t.Fatal(err)
	}
	if fd.StatusFlags()&unix.O_NONBLOCK == 0 {
		t.Errorf("accept4(SOCK_NONBLOCK) file lacks O_NONBLOCK")
	}
	a := l.wrap(fd)
	c.sendAll([]byte("unread"))
	for a.inq() == 0 {
		time.Sleep(time.Millisecond)
	}
	a.close()
	for {
		_, _, _, err := c.recv(10, 0)
		if errors.Is(err, unix.EAGAIN) {
			c.waitFor(waiter.EventIn)
			continue
		}
		if !errors.Is(err, unix.ECONNRESET) && !errors.Is(err, unix.ECONNABORTED) {
			t.Errorf("read after the peer closed with unread data = %v, want a reset", err)
		}
		break
	}
}

func TestUDPConnectedPortUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func(*env) *Provider
		addr string
	}{
		{"ipv4", func(e *env) *Provider { return e.v4 }, "127.0.0.1"},
		{"ipv6", func(e *env) *Provider { return e.v6 }, "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			probe := e.socket(tc.p(e), unix.SOCK_DGRAM, 0)
			if err := probe.Bind(nil, inet(tc.addr, 0)); err != nil {
				t.Fatal(err)
			}
			name, _ := probe.SockName(nil)
			probe.close()
			s := e.socket(tc.p(e), unix.SOCK_DGRAM, 0)
			if err := s.Connect(nil, name); err != nil {
				t.Fatal(err)
			}
			if _, err := s.send([]byte("x"), nil, 0); err != nil {
				t.Fatal(err)
			}
			// The ICMP port unreachable comes back as POLLERR, then the
			// next receive fails with ECONNREFUSED, once.
			s.waitFor(waiter.EventErr)
			if _, _, _, err := s.recv(1, 0); !errors.Is(err, unix.ECONNREFUSED) {
				t.Errorf("recv after port unreachable = %v, want ECONNREFUSED", err)
			}
			if _, _, _, err := s.recv(1, 0); !errors.Is(err, unix.EAGAIN) {
				t.Errorf("second recv = %v, want EAGAIN", err)
			}
		})
	}
}

func TestDualStackListener(t *testing.T) {
	e := newEnv(t)
	l := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := l.setInt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(nil, inet("::", 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(nil, 8); err != nil {
		t.Fatal(err)
	}
	name, _ := l.SockName(nil)
	port := portOf(name)
	// An IPv4 client reaches the [::] listener and is seen mapped.
	c4 := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c4.connect(inet("127.0.0.1", port)); err != nil {
		t.Fatalf("IPv4 connect to a dual-stack listener: %v", err)
	}
	a4, peer := l.accept()
	c4name, _ := c4.SockName(nil)
	if want := inet("::ffff:127.0.0.1", portOf(c4name)); !bytes.Equal(peer, want) {
		t.Errorf("accepted IPv4 peer %x, want mapped %x", peer, want)
	}
	c4.sendAll([]byte("v4"))
	if b, _, _ := a4.recvWait(10, 0); string(b) != "v4" {
		t.Errorf("read %q over the IPv4 half", b)
	}
	// An IPv6 client too.
	c6 := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := c6.connect(inet("::1", port)); err != nil {
		t.Fatalf("IPv6 connect: %v", err)
	}
	l.accept()
	// The port is taken for IPv4 as well.
	other := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := other.Bind(nil, inet("0.0.0.0", port)); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("IPv4 bind to a dual-stack socket's port = %v, want EADDRINUSE", err)
	}

	// With IPV6_V6ONLY, an IPv4 and an IPv6 listener share a port.
	only := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := only.setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		t.Fatal(err)
	}
	l4, p4 := e.listener(e.v4, "0.0.0.0")
	if err := only.Bind(nil, inet("::", p4)); err != nil {
		t.Fatalf("V6ONLY bind to an IPv4 listener's port: %v", err)
	}
	if err := only.Listen(nil, 1); err != nil {
		t.Fatal(err)
	}
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", p4)); err != nil {
		t.Fatal(err)
	}
	l4.accept()
	if _, _, err := only.Accept(nil, 0); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("V6ONLY listener got an IPv4 connection: %v", err)
	}
	// And a dual-stack bind to a port an IPv4 socket holds fails.
	dual := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := dual.Bind(nil, inet("::", p4)); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("dual-stack bind over an IPv4 listener = %v, want EADDRINUSE", err)
	}
	if err := dual.Bind(nil, inet("::1", 0)); err != nil {
		t.Errorf("bind after a failed dual-stack bind: %v", err)
	}
}
