package hostinet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

type env struct {
	t      testing.TB
	ctx    context.Context
	v4, v6 *Provider
}

func newEnv(t testing.TB) *env {
	v := vfs.New()
	return &env{t: t, ctx: context.Background(), v4: NewProvider(v, unix.AF_INET), v6: NewProvider(v, unix.AF_INET6)}
}

// tsock is a socket under test with its file, in an env.
type tsock struct {
	e *env
	*sockettest.Sock
}

func (e *env) socket(p *Provider, stype, proto int) *tsock {
	e.t.Helper()
	fd, err := p.NewSocket(e.ctx, stype, proto)
	if err != nil {
		e.t.Fatalf("socket(%d, %d, %d): %v", p.family, stype, proto, err)
	}
	return e.wrap(fd)
}

func (e *env) wrap(fd *vfs.FileDescription) *tsock {
	return &tsock{e: e, Sock: sockettest.NewSock(e.t, fd)}
}

func inet4(ip [4]byte, port uint16) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

func inet6(ip [16]byte, port uint16) []byte {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[8:], ip[:])
	return b
}

var loopback4 = [4]byte{127, 0, 0, 1}

func portOf(b []byte) uint16 { return binary.BigEndian.Uint16(b[2:]) }

// wait blocks until s has one of mask, as the syscall layer does between
// EAGAIN and a retry, through the notifier's wake-ups only.
func (s *tsock) wait(mask waiter.EventMask) {
	s.e.t.Helper()
	sockettest.WaitReady(s.e.t, s, mask)
}

func (s *tsock) sendAll(b []byte) {
	s.e.t.Helper()
	for len(b) > 0 {
		n, err := s.SendMsg(nil, sockettest.Seq(b), nil, 0, socket.ControlMessages{})
		if err == unix.EAGAIN {
			s.wait(waiter.EventOut)
			continue
		}
		if err != nil {
			s.e.t.Fatalf("send: %v", err)
		}
		b = b[n:]
	}
}

func (s *tsock) recvFull(n int) []byte {
	s.e.t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(out) < n {
		got, _, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf[:n-len(out)]), 0, false)
		if err == unix.EAGAIN {
			s.wait(waiter.EventIn)
			continue
		}
		if err != nil {
			s.e.t.Fatalf("recv: %v", err)
		}
		if got == 0 {
			s.e.t.Fatalf("recv: EOF after %d of %d bytes", len(out), n)
		}
		out = append(out, buf[:got]...)
	}
	return out
}

func (s *tsock) accept() *tsock {
	s.e.t.Helper()
	for {
		fd, peer, err := s.Accept(nil, 0)
		if err == unix.EAGAIN {
			s.wait(waiter.EventIn)
			continue
		}
		if err != nil {
			s.e.t.Fatalf("accept: %v", err)
		}
		if len(peer) < 2 || binary.LittleEndian.Uint16(peer) != uint16(s.e.familyOf(s)) {
			s.e.t.Fatalf("accept: peer address %x", peer)
		}
		return s.e.wrap(fd)
	}
}

func (e *env) familyOf(s *tsock) int { f, _, _ := s.Type(); return f }

// connect connects and waits for the outcome, as connect(2) does.
func (s *tsock) connect(addr []byte) error {
	err := s.Connect(nil, addr)
	if err != unix.EINPROGRESS {
		return err
	}
	s.wait(waiter.EventOut)
	b, err := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_ERROR, 4)
	if err != nil {
		return err
	}
	if v := binary.LittleEndian.Uint32(b); v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// TestConnectToHostServer: a sandbox socket reaches a server of the test
// process through the host's loopback.
func TestConnectToHostServer(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write(bytes.ToUpper(buf))
		done <- err
	}()
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	if err := s.connect(inet4(loopback4, port)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	peer, err := s.PeerName(nil)
	if err != nil || portOf(peer) != port {
		t.Fatalf("getpeername = %x, %v; want port %d", peer, err, port)
	}
	s.sendAll([]byte("hello"))
	if got := s.recvFull(5); string(got) != "HELLO" {
		t.Fatalf("got %q, want HELLO", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The server closed: EOF.
	s.wait(waiter.EventIn)
	buf := make([]byte, 8)
	if n, _, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, false); n != 0 || err != nil {
		t.Fatalf("recv after peer close = %d, %v; want EOF", n, err)
	}
}

// TestHostClientReachesSandboxServer: the test process connects to a
// listening hostinet socket, over IPv6 loopback.
func TestHostClientReachesSandboxServer(t *testing.T) {
	e := newEnv(t)
	l := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := l.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_REUSEADDR, socket.Int32Bytes(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(nil, inet6([16]byte{15: 1}, 0)); err != nil {
		t.Skipf("no IPv6 loopback on this host: %v", err)
	}
	if err := l.Listen(nil, 8); err != nil {
		t.Fatal(err)
	}
	name, err := l.SockName(nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	reply := make(chan []byte, 1)
	go func() {
		c, err := net.Dial("tcp6", net.JoinHostPort("::1", strconv.Itoa(int(portOf(name)))))
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			errc <- err
			return
		}
		b, err := io.ReadAll(c)
		reply <- b
		errc <- err
	}()
	c := l.accept()
	if got := c.recvFull(4); string(got) != "ping" {
		t.Fatalf("server got %q", got)
	}
	c.sendAll([]byte("pong"))
	if err := c.Shutdown(nil, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := <-reply; string(got) != "pong" {
		t.Fatalf("client got %q", got)
	}
}

// TestBulkTransfer moves more than one bounce buffer each way between
// two hostinet sockets, checking every byte.
func TestBulkTransfer(t *testing.T) {
	e := newEnv(t)
	l := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := l.Bind(nil, inet4(loopback4, 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(nil, 1); err != nil {
		t.Fatal(err)
	}
	name, _ := l.SockName(nil)
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(name); err != nil {
		t.Fatal(err)
	}
	srv := l.accept()
	data := make([]byte, 1<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	go c.sendAll(data)
	if got := srv.recvFull(len(data)); !bytes.Equal(got, data) {
		t.Fatal("bulk data corrupted")
	}
}

func TestUDP(t *testing.T) {
	e := newEnv(t)
	a := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	b := e.socket(e.v4, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	for _, s := range []*tsock{a, b} {
		if err := s.Bind(nil, inet4(loopback4, 0)); err != nil {
			t.Fatal(err)
		}
	}
	an, _ := a.SockName(nil)
	bn, _ := b.SockName(nil)
	if _, err := a.SendMsg(nil, sockettest.Seq([]byte("datagram!")), bn, 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	b.wait(waiter.EventIn)
	buf := make([]byte, 4)
	n, mflags, from, _, err := b.RecvMsg(nil, sockettest.Seq(buf), unix.MSG_TRUNC, true)
	if err != nil {
		t.Fatal(err)
	}
	if n != 9 || mflags&unix.MSG_TRUNC == 0 || string(buf) != "data" {
		t.Fatalf("recv = %d, flags %#x, %q; want 9, MSG_TRUNC, \"data\"", n, mflags, buf)
	}
	if !bytes.Equal(from[:8], an[:8]) {
		t.Fatalf("from %x, want %x", from, an)
	}
	if _, _, _, _, err := b.RecvMsg(nil, sockettest.Seq(buf), 0, false); err != unix.EAGAIN {
		t.Fatalf("recv on empty socket: %v, want EAGAIN", err)
	}
	// A UDP socket from the host reaches it too.
	hc, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(portOf(bn)))))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if _, err := hc.Write([]byte("host")); err != nil {
		t.Fatal(err)
	}
	b.wait(waiter.EventIn)
	if n, _, _, _, err := b.RecvMsg(nil, sockettest.Seq(buf), 0, false); n != 4 || err != nil || string(buf) != "host" {
		t.Fatalf("recv from host = %d %q, %v", n, buf, err)
	}
}

// TestConnectRefused: a non-blocking connect to a closed port fails
// through SO_ERROR with ECONNREFUSED.
func TestConnectRefused(t *testing.T) {
	e := newEnv(t)
	// Find a free port by binding and closing.
	p := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := p.Bind(nil, inet4(loopback4, 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := p.SockName(nil)
	p.Close()
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := s.connect(name); err != unix.ECONNREFUSED {
		t.Fatalf("connect to closed port: %v, want ECONNREFUSED", err)
	}
}

func TestOptionAllowlist(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	refused := []struct{ level, name int }{
		{unix.SOL_SOCKET, unix.SO_BINDTODEVICE},
		{unix.SOL_SOCKET, unix.SO_MARK},
		{unix.SOL_SOCKET, unix.SO_ATTACH_FILTER},
		{unix.IPPROTO_IP, unix.IP_TRANSPARENT},
		{unix.IPPROTO_IP, unix.IP_HDRINCL},
		{unix.SOL_SOCKET, unix.SO_ERROR}, // read-only
	}
	for _, o := range refused {
		if err := s.SetSockOpt(nil, o.level, o.name, socket.Int32Bytes(1)); err != unix.ENOPROTOOPT {
			t.Errorf("setsockopt(%d, %d) = %v, want ENOPROTOOPT", o.level, o.name, err)
		}
	}
	if _, err := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_MARK, 4); err != unix.ENOPROTOOPT {
		t.Errorf("getsockopt(SO_MARK) = %v, want ENOPROTOOPT", err)
	}
	// Short values are refused before the host sees them.
	if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_NODELAY, []byte{1}); err != unix.EINVAL {
		t.Errorf("setsockopt(TCP_NODELAY, 1 byte) = %v, want EINVAL", err)
	}
	// Allowed options reach the host and read back.
	if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_NODELAY, socket.Int32Bytes(1)); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_NODELAY, 4); err != nil || binary.LittleEndian.Uint32(b) != 1 {
		t.Errorf("TCP_NODELAY = %x, %v; want 1", b, err)
	}
	if err := s.SetSockOpt(nil, unix.IPPROTO_IP, unix.IP_TTL, socket.Int32Bytes(33)); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetSockOpt(nil, unix.IPPROTO_IP, unix.IP_TTL, 4); err != nil || binary.LittleEndian.Uint32(b) != 33 {
		t.Errorf("IP_TTL = %x, %v; want 33", b, err)
	}
	if b, err := s.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_TYPE, 4); err != nil || binary.LittleEndian.Uint32(b) != unix.SOCK_STREAM {
		t.Errorf("SO_TYPE = %x, %v", b, err)
	}
	// Timeouts stay in the Sentry.
	tv := make([]byte, 16)
	binary.LittleEndian.PutUint64(tv, 2)
	if err := s.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_RCVTIMEO, tv); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Timeouts(); r != 2*time.Second {
		t.Errorf("SO_RCVTIMEO = %v, want 2s", r)
	}
	// TCP_INFO is truncated to what the caller asked for.
	if b, err := s.GetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_INFO, 8); err != nil || len(b) != 8 {
		t.Errorf("TCP_INFO(8) = %d bytes, %v", len(b), err)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	if _, err := e.v4.NewSocket(e.ctx, unix.SOCK_RAW, unix.IPPROTO_ICMP); err != unix.EPERM {
		t.Errorf("SOCK_RAW: %v, want EPERM", err)
	}
	if _, err := e.v4.NewSocket(e.ctx, unix.SOCK_STREAM, unix.IPPROTO_UDP); err != unix.EPROTONOSUPPORT {
		t.Errorf("stream/UDP: %v, want EPROTONOSUPPORT", err)
	}
	if _, err := e.v4.NewSocket(e.ctx, unix.SOCK_SEQPACKET, 0); err != unix.ESOCKTNOSUPPORT {
		t.Errorf("seqpacket: %v, want ESOCKTNOSUPPORT", err)
	}
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	unixAddr := []byte{unix.AF_UNIX, 0, '/', 't', 'm', 'p', 0}
	if err := s.Connect(nil, unixAddr); err != unix.EAFNOSUPPORT {
		t.Errorf("connect(AF_UNIX address): %v, want EAFNOSUPPORT", err)
	}
	if err := s.Bind(nil, []byte{2}); err != unix.EINVAL {
		t.Errorf("bind(1-byte address): %v, want EINVAL", err)
	}
	if err := s.Shutdown(nil, 7); err != unix.EINVAL {
		t.Errorf("shutdown(7): %v, want EINVAL", err)
	}
	if _, err := s.Ioctl(e.ctx, s.FD, &usermem.BytesIO{Bytes: make([]byte, 64)}, 0, [6]uintptr{0, unix.SIOCSIFFLAGS, 0}); err != unix.ENOTTY {
		t.Errorf("ioctl(SIOCSIFFLAGS): %v, want ENOTTY", err)
	}
}

// TestReadiness: poll state follows the host socket, and an idle waiter
// is woken by the notifier when data arrives.
func TestReadiness(t *testing.T) {
	e := newEnv(t)
	a := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	b := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	a.Bind(nil, inet4(loopback4, 0))
	b.Bind(nil, inet4(loopback4, 0))
	bn, _ := b.SockName(nil)
	if r := b.Readiness(waiter.EventIn | waiter.EventOut); r != waiter.EventOut {
		t.Fatalf("idle UDP readiness = %#x, want EventOut", r)
	}
	entry, ch := waiter.NewChannelEntry(waiter.EventIn)
	b.EventRegister(entry)
	defer b.EventUnregister(entry)
	if _, err := a.SendMsg(nil, sockettest.Seq([]byte("x")), bn, 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no EventIn notification")
	}
	if r := b.Readiness(waiter.EventIn); r != waiter.EventIn {
		t.Fatalf("readiness after send = %#x", r)
	}
	// FIONREAD reports the queued datagram.
	mem := &usermem.BytesIO{Bytes: make([]byte, 4)}
	if _, err := b.Ioctl(e.ctx, b.FD, mem, 0, [6]uintptr{0, unix.SIOCINQ, 0}); err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(mem.Bytes); v != 1 {
		t.Fatalf("FIONREAD = %d, want 1", v)
	}
}

// TestInterfaceIoctls: the host's loopback is visible read-only.
func TestInterfaceIoctls(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	mem := &usermem.BytesIO{Bytes: make([]byte, 4096)}
	copy(mem.Bytes, "lo\x00")
	if _, err := s.Ioctl(e.ctx, s.FD, mem, 0, [6]uintptr{0, unix.SIOCGIFINDEX, 0}); err != nil {
		t.Fatal(err)
	}
	idx := binary.LittleEndian.Uint32(mem.Bytes[16:])
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("host has no lo: %v", err)
	}
	if int(idx) != ifi.Index {
		t.Fatalf("SIOCGIFINDEX(lo) = %d, want %d", idx, ifi.Index)
	}
	// SIOCGIFCONF: struct ifconf at 0, its buffer at 64.
	clear(mem.Bytes)
	binary.LittleEndian.PutUint32(mem.Bytes, 40*16)
	binary.LittleEndian.PutUint64(mem.Bytes[8:], 64)
	if _, err := s.Ioctl(e.ctx, s.FD, mem, 0, [6]uintptr{0, unix.SIOCGIFCONF, 0}); err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(mem.Bytes))
	if n == 0 || n%40 != 0 {
		t.Fatalf("SIOCGIFCONF length %d", n)
	}
	found := false
	for off := 64; off < 64+n; off += 40 {
		if string(bytes.TrimRight(mem.Bytes[off:off+16], "\x00")) == "lo" {
			found = true
		}
	}
	if !found {
		t.Fatal("SIOCGIFCONF does not list lo")
	}
}

func TestReleaseUnregisters(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	fd := s.Socket.(*sock).fd
	n, _ := hostNotifier()
	s.Close()
	n.mu.RLock()
	_, still := n.queues[int32(fd)]
	n.mu.RUnlock()
	if still {
		t.Fatal("released socket still watched")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		// The number may have been reused by another test's socket;
		// only a leak of this one matters, which the map check covers.
		t.Logf("fd %d reused after release", fd)
	}
}

// TestPingSocket: an ICMP echo through a host ping socket, where the host
// allows them (net.ipv4.ping_group_range).
func TestPingSocket(t *testing.T) {
	sockettest.AllowPingSockets(t)
	e := newEnv(t)
	fd, err := e.v4.NewSocket(e.ctx, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
	if err == unix.EACCES || err == unix.EPERM {
		t.Skipf("the host refuses ping sockets (net.ipv4.ping_group_range): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := e.wrap(fd)
	echo := []byte{8, 0, 0, 0, 0, 0, 0, 1, 'h', 'i'} // type 8 (echo), the host fills id and checksum
	if _, err := s.SendMsg(nil, sockettest.Seq(echo), inet4(loopback4, 0), 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	s.wait(waiter.EventIn)
	buf := make([]byte, 64)
	n, _, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, false)
	if err != nil || n != int64(len(echo)) || buf[0] != 0 || string(buf[8:10]) != "hi" {
		t.Fatalf("echo reply = %x, %v", buf[:n], err)
	}
}
