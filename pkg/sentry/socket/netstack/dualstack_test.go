package netstack

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDualStackListenWithoutBind(t *testing.T) {
	e := newEnv(t)
	l := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := l.Listen(nil, 4); err != nil {
		t.Fatal(err)
	}
	name, _ := l.SockName(nil)
	port := portOf(name)
	if port == 0 || !bytes.Equal(name[8:24], make([]byte, 16)) {
		t.Fatalf("getsockname after listen without bind = %x, want [::]:ephemeral", name)
	}
	c4 := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c4.connect(inet("127.0.0.1", port)); err != nil {
		t.Fatalf("IPv4 connect to an auto-bound AF_INET6 listener: %v", err)
	}
	a, peer := l.accept()
	if !bytes.Equal(peer[8:20], []byte{10: 0xff, 11: 0xff}) {
		t.Errorf("accepted peer %x is not IPv4-mapped", peer)
	}
	c4.sendAll([]byte("hello"))
	if b, _, _ := a.recvWait(10, 0); string(b) != "hello" {
		t.Errorf("read %q", b)
	}

	only := e.socket(e.v6, unix.SOCK_STREAM, 0)
	if err := only.setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		t.Fatal(err)
	}
	if err := only.Listen(nil, 4); err != nil {
		t.Fatal(err)
	}
	oname, _ := only.SockName(nil)
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", portOf(oname))); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("IPv4 connect to a V6ONLY auto-bound listener = %v, want ECONNREFUSED", err)
	}
}

func TestDualStackUDP(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := s.Bind(nil, inet("::", 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := s.SockName(nil)
	port := portOf(name)

	c4 := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if _, err := c4.send([]byte("four"), inet("127.0.0.1", port), 0); err != nil {
		t.Fatal(err)
	}
	c4name, _ := c4.SockName(nil)
	b, _, from := s.recvWait(16, 0)
	if want := inet("::ffff:127.0.0.1", portOf(c4name)); string(b) != "four" || !bytes.Equal(from, want) {
		t.Errorf("recvfrom = %q from %x, want \"four\" from %x", b, from, want)
	}
	// A reply to the mapped address leaves through the IPv4 half, from
	// the bound port.
	if _, err := s.send([]byte("back"), from, 0); err != nil {
		t.Fatalf("sendto a mapped source: %v", err)
	}
	b, _, from4 := c4.recvWait(16, 0)
	if string(b) != "back" || portOf(from4) != port {
		t.Errorf("reply %q from port %d, want \"back\" from %d", b, portOf(from4), port)
	}
	// IPv6 datagrams still arrive.
	c6 := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if _, err := c6.send([]byte("six"), inet("::1", port), 0); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := s.recvWait(16, 0); string(b) != "six" {
		t.Errorf("IPv6 datagram = %q", b)
	}
	// The IPv4 port is held by the dual-stack socket.
	other := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := other.Bind(nil, inet("127.0.0.1", port)); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("IPv4 bind to a dual-stack UDP port = %v, want EADDRINUSE", err)
	}
	// A second bind is refused, and leaves the socket working.
	if err := s.Bind(nil, inet("::ffff:127.0.0.1", 0)); !errors.Is(err, unix.EINVAL) {
		t.Errorf("second bind = %v, want EINVAL", err)
	}

	// connect to a mapped address keeps the bound port and drops IPv6.
	if err := s.connect(inet("::ffff:127.0.0.1", portOf(c4name))); err != nil {
		t.Fatalf("connect a [::]-bound UDP socket to a mapped address: %v", err)
	}
	if _, err := s.send([]byte("conn"), nil, 0); err != nil {
		t.Fatal(err)
	}
	if b, _, from4 := c4.recvWait(16, 0); string(b) != "conn" || portOf(from4) != port {
		t.Errorf("connected send = %q from port %d", b, portOf(from4))
	}
	peer, err := s.PeerName(nil)
	if want := inet("::ffff:127.0.0.1", portOf(c4name)); err != nil || !bytes.Equal(peer, want) {
		t.Errorf("getpeername = %x, %v; want %x", peer, err, want)
	}
}

func TestDualStackUDPV6Only(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := s.setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Bind(nil, inet("::", 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := s.SockName(nil)
	s4 := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := s4.Bind(nil, inet("0.0.0.0", portOf(name))); err != nil {
		t.Errorf("IPv4 bind beside a V6ONLY [::] socket: %v", err)
	}
}

func TestDualStackUDPConnectUnbound(t *testing.T) {
	e := newEnv(t)
	srv := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := srv.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	sname, _ := srv.SockName(nil)
	c := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := c.connect(inet("::ffff:127.0.0.1", portOf(sname))); err != nil {
		t.Fatal(err)
	}
	self, _ := c.SockName(nil)
	if !bytes.Equal(self[8:24], []byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}) {
		t.Errorf("getsockname = %x, want ::ffff:127.0.0.1", self)
	}
	if _, err := c.send([]byte("hi"), nil, 0); err != nil {
		t.Fatal(err)
	}
	_, _, from := srv.recvWait(8, 0)
	if _, err := srv.send([]byte("yo"), from, 0); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := c.recvWait(8, 0); string(b) != "yo" {
		t.Errorf("reply = %q", b)
	}
}
