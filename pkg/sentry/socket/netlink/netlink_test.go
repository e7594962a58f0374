package netlink

import (
	"bytes"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"golang.org/x/sys/unix"
)

// newStack is a sandbox network with lo and an Ethernet eth0 at
// 10.0.0.2/24 with a default route through 10.0.0.1.
func newStack(t testing.TB) *stack.Stack {
	s := netstack.NewStack()
	lo, err := netstack.AddLoopback(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lo.Close)
	eth := channel.New(16, 1500, tcpip.LinkAddress{2, 0, 0, 0, 0, 2}, true)
	if err := s.CreateNIC(2, "eth0", eth); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddress(2, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("10.0.0.2"), PrefixLen: 24}); err != nil {
		t.Fatal(err)
	}
	s.AddRoute(stack.RouteEntry{Destination: tcpip.NewSubnet(tcpip.ParseAddress("0.0.0.0"), 0), Gateway: tcpip.ParseAddress("10.0.0.1"), NIC: 2})
	return s
}

func newSock(t testing.TB, s *stack.Stack) socket.Socket {
	p := NewProvider(vfs.New(), s)
	fd, err := p.NewSocket(context.Background(), unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.DecRef(context.Background()) })
	return fd.Impl().(socket.Socket)
}

func request(typ, flags uint16, seqNo uint32, payload []byte) []byte {
	m := newMessage(typ, flags, seqNo, 0, payload)
	return m.done()
}

// exchange sends req and reads every datagram until NLMSG_DONE or an
// NLMSG_ERROR, returning all messages received.
func exchange(t *testing.T, s socket.Socket, req []byte) []Message {
	t.Helper()
	if n, err := s.SendMsg(nil, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != nil || n != int64(len(req)) {
		t.Fatalf("send = %d, %v", n, err)
	}
	var all []Message
	for {
		buf := make([]byte, 8192)
		n, mflags, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, true)
		if errors.Is(err, unix.EAGAIN) {
			return all
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if mflags&unix.MSG_TRUNC != 0 {
			t.Fatalf("datagram truncated in an 8 KiB buffer")
		}
		msgs := ParseMessages(buf[:n])
		if len(msgs) == 0 {
			t.Fatalf("datagram of %d bytes holds no message", n)
		}
		all = append(all, msgs...)
		last := msgs[len(msgs)-1]
		if last.Type == msgDone || last.Type == msgError {
			return all
		}
	}
}

func TestDumpLinks(t *testing.T) {
	s := newSock(t, newStack(t))
	msgs := exchange(t, s, request(unix.RTM_GETLINK, flagRequest|flagDump, 7, make([]byte, ifinfomsgSize)))
	name, _ := s.SockName(nil)
	pid := binary.LittleEndian.Uint32(name[4:])
	if pid == 0 {
		t.Fatalf("socket not auto-bound by its first send")
	}
	var names []string
	for _, m := range msgs {
		if m.Seq != 7 || m.PID != pid {
			t.Errorf("message seq %d pid %d, want 7 and %d", m.Seq, m.PID, pid)
		}
		if m.Type != unix.RTM_NEWLINK {
			continue
		}
		if m.Flags&flagMulti == 0 {
			t.Errorf("dump message lacks NLM_F_MULTI")
		}
		attrs, ok := ParseAttrs(m.Payload[ifinfomsgSize:])
		if !ok {
			t.Fatalf("bad attributes in %x", m.Payload)
		}
		index := binary.LittleEndian.Uint32(m.Payload[4:])
		flags := binary.LittleEndian.Uint32(m.Payload[8:])
		for _, a := range attrs {
			switch a.Type {
			case unix.IFLA_IFNAME:
				names = append(names, string(bytes.TrimRight(a.Value, "\x00")))
			case unix.IFLA_MTU:
				mtu := binary.LittleEndian.Uint32(a.Value)
				if (index == 1 && mtu != 65536) || (index == 2 && mtu != 1500) {
					t.Errorf("interface %d MTU %d", index, mtu)
				}
			case unix.IFLA_ADDRESS:
				if index == 2 && !bytes.Equal(a.Value, []byte{2, 0, 0, 0, 0, 2}) {
					t.Errorf("eth0 address %x", a.Value)
				}
			}
		}
		if index == 1 && flags&unix.IFF_LOOPBACK == 0 {
			t.Errorf("lo flags %#x lack IFF_LOOPBACK", flags)
		}
	}
	if len(names) != 2 || names[0] != "lo" || names[1] != "eth0" {
		t.Errorf("links %v, want [lo eth0]", names)
	}
	if last := msgs[len(msgs)-1]; last.Type != msgDone {
		t.Errorf("dump ends with type %d, want NLMSG_DONE", last.Type)
	}
}

func TestGetLinkByIndexAndName(t *testing.T) {
	s := newSock(t, newStack(t))
	ifi := make([]byte, ifinfomsgSize)
	binary.LittleEndian.PutUint32(ifi[4:], 2)
	msgs := exchange(t, s, request(unix.RTM_GETLINK, flagRequest, 1, ifi))
	if len(msgs) != 1 || msgs[0].Type != unix.RTM_NEWLINK || binary.LittleEndian.Uint32(msgs[0].Payload[4:]) != 2 {
		t.Fatalf("GETLINK index 2 = %+v", msgs)
	}
	// By name, with an ack requested: the link then an ack.
	m := newMessage(unix.RTM_GETLINK, flagRequest|flagAck, 2, 0, make([]byte, ifinfomsgSize))
	m.attrString(unix.IFLA_IFNAME, "lo")
	msgs = exchange(t, s, m.done())
	if len(msgs) != 2 || msgs[0].Type != unix.RTM_NEWLINK || msgs[1].Type != msgError || binary.LittleEndian.Uint32(msgs[1].Payload) != 0 {
		t.Fatalf("GETLINK lo with ack = %+v", msgs)
	}
	binary.LittleEndian.PutUint32(ifi[4:], 99)
	msgs = exchange(t, s, request(unix.RTM_GETLINK, flagRequest, 3, ifi))
	if len(msgs) != 1 || msgs[0].Type != msgError || int32(binary.LittleEndian.Uint32(msgs[0].Payload)) != -int32(unix.ENODEV) {
		t.Fatalf("GETLINK of a missing index = %+v, want ENODEV", msgs)
	}
}

func TestDumpAddrs(t *testing.T) {
	s := newSock(t, newStack(t))
	for _, tc := range []struct {
		family uint8
		want   []string
	}{
		{unix.AF_UNSPEC, []string{"127.0.0.1/8", "::1/128", "10.0.0.2/24"}},
		{unix.AF_INET, []string{"127.0.0.1/8", "10.0.0.2/24"}},
		{unix.AF_INET6, []string{"::1/128"}},
	} {
		msgs := exchange(t, s, request(unix.RTM_GETADDR, flagRequest|flagDump, 9, []byte{tc.family, 0, 0, 0, 0, 0, 0, 0}))
		var got []string
		for _, m := range msgs {
			if m.Type != unix.RTM_NEWADDR {
				continue
			}
			attrs, ok := ParseAttrs(m.Payload[ifaddrmsgSize:])
			if !ok {
				t.Fatalf("bad attributes")
			}
			for _, a := range attrs {
				if a.Type == unix.IFA_ADDRESS {
					got = append(got, tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.Value), PrefixLen: int(m.Payload[1])}.String())
				}
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("family %d: addresses %v, want %v", tc.family, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("family %d: addresses %v, want %v", tc.family, got, tc.want)
				break
			}
		}
	}
}

func TestDumpRoutes(t *testing.T) {
	s := newSock(t, newStack(t))
	msgs := exchange(t, s, request(unix.RTM_GETROUTE, flagRequest|flagDump, 4, []byte{unix.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}))
	var main []string
	for _, m := range msgs {
		if m.Type != unix.RTM_NEWROUTE {
			continue
		}
		if m.Payload[4] != unix.RT_TABLE_MAIN {
			continue
		}
		attrs, _ := ParseAttrs(m.Payload[rtmsgSize:])
		dst, gw := "default", ""
		for _, a := range attrs {
			switch a.Type {
			case unix.RTA_DST:
				dst = tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.Value), PrefixLen: int(m.Payload[1])}.String()
			case unix.RTA_GATEWAY:
				gw = " via " + tcpip.AddrFromSlice(a.Value).String()
			}
		}
		main = append(main, dst+gw)
	}
	want := map[string]bool{"10.0.0.0/24": true, "default via 10.0.0.1": true}
	if len(main) != 2 || !want[main[0]] || !want[main[1]] {
		t.Errorf("main table routes %v, want %v", main, want)
	}
}

func TestErrors(t *testing.T) {
	s := newSock(t, newStack(t))
	for _, tc := range []struct {
		typ  uint16
		want unix.Errno
	}{
		{unix.RTM_NEWADDR, unix.EPERM},
		{unix.RTM_DELROUTE, unix.EPERM},
		{0x7f, unix.EOPNOTSUPP},
	} {
		msgs := exchange(t, s, request(tc.typ, flagRequest, 5, make([]byte, 8)))
		if len(msgs) != 1 || msgs[0].Type != msgError {
			t.Fatalf("type %d: %+v, want one NLMSG_ERROR", tc.typ, msgs)
		}
		if got := int32(binary.LittleEndian.Uint32(msgs[0].Payload)); got != -int32(tc.want) {
			t.Errorf("type %d: error %d, want %d", tc.typ, got, -int32(tc.want))
		}
		// The error echoes the request's header.
		if binary.LittleEndian.Uint16(msgs[0].Payload[8:]) != tc.typ {
			t.Errorf("error does not quote the request")
		}
	}
	// A message without NLM_F_REQUEST, or a truncated one, gets nothing.
	if msgs := exchange(t, s, request(unix.RTM_GETLINK, flagDump, 6, nil)); len(msgs) != 0 {
		t.Errorf("non-request answered: %+v", msgs)
	}
	req := request(unix.RTM_GETLINK, flagRequest|flagDump, 6, make([]byte, ifinfomsgSize))
	if msgs := exchange(t, s, req[:len(req)-1]); len(msgs) != 0 {
		t.Errorf("truncated request answered: %+v", msgs)
	}
	if _, err := s.SendMsg(nil, sockettest.Seq(req), sockaddrNl(1234), 0, socket.ControlMessages{}); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("send to a user port = %v, want ECONNREFUSED", err)
	}
}

func TestBindAndPeek(t *testing.T) {
	st := newStack(t)
	p := NewProvider(vfs.New(), st)
	ctx := context.Background()
	fd1, _ := p.NewSocket(ctx, unix.SOCK_DGRAM, unix.NETLINK_ROUTE)
	defer fd1.DecRef(ctx)
	fd2, _ := p.NewSocket(ctx, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	defer fd2.DecRef(ctx)
	a, b := fd1.Impl().(socket.Socket), fd2.Impl().(socket.Socket)
	if err := a.Bind(nil, sockaddrNl(4242)); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(nil, sockaddrNl(4242)); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind to a taken port id = %v, want EADDRINUSE", err)
	}
	if err := b.Bind(nil, sockaddrNl(0)[:8]); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bind with a short sockaddr_nl = %v, want EINVAL", err)
	}
	if _, err := p.NewSocket(ctx, unix.SOCK_RAW, unix.NETLINK_AUDIT); !errors.Is(err, unix.EPROTONOSUPPORT) {
		t.Errorf("NETLINK_AUDIT = %v, want EPROTONOSUPPORT", err)
	}
	// MSG_PEEK|MSG_TRUNC with a small buffer gives the datagram's size, as
	// iproute2 sizes its buffer.
	req := request(unix.RTM_GETLINK, flagRequest|flagDump, 1, make([]byte, ifinfomsgSize))
	if _, err := a.SendMsg(nil, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 16)
	n, mflags, _, _, err := a.RecvMsg(nil, sockettest.Seq(small), unix.MSG_PEEK|unix.MSG_TRUNC, false)
	if err != nil || n <= 16 || mflags&unix.MSG_TRUNC == 0 {
		t.Fatalf("peek = %d, %#x, %v", n, mflags, err)
	}
	full := make([]byte, n)
	m, _, _, _, err := a.RecvMsg(nil, sockettest.Seq(full), 0, false)
	if err != nil || m != n {
		t.Fatalf("read after peek = %d, %v; want %d", m, err, n)
	}
	if msgs := ParseMessages(full); msgs[0].PID != 4242 {
		t.Errorf("reply pid %d, want the bound 4242", msgs[0].PID)
	}
}

func TestParseAttrsBounds(t *testing.T) {
	for _, tc := range []struct {
		b  []byte
		ok bool
		n  int
	}{
		{nil, true, 0},
		{[]byte{4, 0, 1, 0}, true, 1},
		{[]byte{5, 0, 1, 0, 'x', 0, 0, 0, 4, 0, 2, 0}, true, 2},
		{[]byte{3, 0, 1, 0}, false, 0},
		{[]byte{9, 0, 1, 0, 1, 2, 3, 4}, false, 0},
		{[]byte{4, 0, 1}, false, 0},
	} {
		attrs, ok := ParseAttrs(tc.b)
		if ok != tc.ok || len(attrs) != tc.n {
			t.Errorf("ParseAttrs(%x) = %d attrs, %v; want %d, %v", tc.b, len(attrs), ok, tc.n, tc.ok)
		}
	}
}

// FuzzRequest feeds arbitrary bytes to a NETLINK_ROUTE socket: nothing may
// panic, and every answer must be well-formed netlink.
func FuzzRequest(f *testing.F) {
	f.Add(request(unix.RTM_GETLINK, flagRequest|flagDump, 1, make([]byte, ifinfomsgSize)))
	f.Add(request(unix.RTM_GETADDR, flagRequest|flagDump, 2, []byte{unix.AF_INET}))
	f.Add(request(unix.RTM_GETROUTE, flagRequest|flagDump|flagAck, 3, nil))
	f.Add(request(unix.RTM_GETLINK, flagRequest|flagAck, 4, []byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 3, 0, 'l', 'o', 0}))
	f.Add(append(request(msgNoop, flagRequest|flagAck, 5, nil), request(unix.RTM_NEWADDR, flagRequest, 6, nil)...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 18, 0, 1, 3})
	st := newStack(f)
	s := newSock(f, st)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := s.SendMsg(nil, sockettest.Seq(b), nil, 0, socket.ControlMessages{}); err != nil {
			t.Fatalf("send: %v", err)
		}
		for {
			buf := make([]byte, 65536)
			n, _, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, false)
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			if err != nil {
				t.Fatalf("recv: %v", err)
			}
			rest := buf[:n]
			for len(rest) > 0 {
				if len(rest) < headerSize {
					t.Fatalf("trailing %d bytes in an answer", len(rest))
				}
				l := int(binary.LittleEndian.Uint32(rest))
				if l < headerSize || l > len(rest) || l%alignTo != 0 {
					t.Fatalf("answer message length %d of %d left", l, len(rest))
				}
				rest = rest[l:]
			}
		}
	})
}
