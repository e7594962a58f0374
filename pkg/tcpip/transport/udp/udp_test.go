package udp_test

import (
	"bytes"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/testutil"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

func newEP(t *testing.T, s interface {
	NewEndpoint(tcpip.TransportProtocolNumber, tcpip.NetworkProtocolNumber, *tcpip.WaitQueue) (tcpip.Endpoint, *tcpip.Error)
}) tcpip.Endpoint {
	t.Helper()
	ep, err := s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	return ep
}

func read(t *testing.T, ep tcpip.Endpoint) (string, tcpip.ReadResult) {
	t.Helper()
	var b bytes.Buffer
	res, err := ep.Read(&b, tcpip.ReadOptions{})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return b.String(), res
}

func TestEcho(t *testing.T) {
	for _, eth := range []bool{false, true} {
		p := testutil.NewPair(testutil.PairOptions{Ethernet: eth})
		srv := newEP(t, p.B)
		if err := srv.Bind(tcpip.FullAddress{Port: 7}); err != nil {
			t.Fatal(err)
		}
		cli := newEP(t, p.A)
		if err := cli.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 7}); err != nil {
			t.Fatal(err)
		}
		entry, ch := tcpip.NewChannelEntry()
		srv.WaitQueue().EventRegister(entry, tcpip.EventIn)
		if _, err := cli.Write(strings.NewReader("hello"), tcpip.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		p.Pump(nil)
		select {
		case <-ch:
		default:
			t.Fatal("no EventIn notification")
		}
		got, res := read(t, srv)
		if got != "hello" || res.RemoteAddr.Addr != testutil.AddrA {
			t.Fatalf("eth=%v server got %q from %v", eth, got, res.RemoteAddr)
		}
		if _, err := srv.Write(strings.NewReader(strings.ToUpper(got)), tcpip.WriteOptions{To: &res.RemoteAddr}); err != nil {
			t.Fatal(err)
		}
		p.Pump(nil)
		if got, _ := read(t, cli); got != "HELLO" {
			t.Fatalf("client got %q", got)
		}
		if _, err := cli.Read(&bytes.Buffer{}, tcpip.ReadOptions{}); err != tcpip.ErrWouldBlock {
			t.Fatalf("empty read: %v", err)
		}
	}
}

func TestPortUnreachableAndConnectedFilter(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	cli := newEP(t, p.A)
	cli.Write(strings.NewReader("x"), tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: testutil.AddrB, Port: 9}})
	pkt, ok := p.LinkA.Read()
	if !ok {
		t.Fatal("nothing sent")
	}
	p.LinkB.Deliver(pkt)
	reply, ok := p.LinkB.Read()
	if !ok {
		t.Fatal("no ICMP reply to closed port")
	}
	h, err := header.ParseIPv4(reply.Data)
	if err != nil || h.Protocol() != header.IPv4ProtocolICMP {
		t.Fatalf("reply not ICMP: %v", err)
	}
	m, ok := header.ParseICMPv4(h.Payload())
	if !ok || m.Type() != header.ICMPv4DstUnreachable || m.Code() != header.ICMPv4PortUnreachable {
		t.Fatalf("reply type %d code %d", m.Type(), m.Code())
	}
}

func TestReceiveQueueBounded(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{QueueLen: 4096})
	srv := newEP(t, p.B)
	srv.Bind(tcpip.FullAddress{Port: 5000})
	if err := srv.SetSockOpt(tcpip.ReceiveBufferSizeOption, 8192); err != nil {
		t.Fatal(err)
	}
	cli := newEP(t, p.A)
	cli.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 5000})
	payload := strings.Repeat("z", 1000)
	for i := 0; i < 20; i++ {
		if _, err := cli.Write(strings.NewReader(payload), tcpip.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p.Pump(nil)
	n := 0
	for {
		if _, err := srv.Read(&bytes.Buffer{}, tcpip.ReadOptions{}); err != nil {
			break
		}
		n++
	}
	if n != 8 {
		t.Fatalf("queued %d datagrams of 1000 bytes in an 8192-byte buffer, want 8", n)
	}
	if p.B.Stats().UDPReceiveBufferFull.Load() != 12 {
		t.Fatalf("drops = %d, want 12", p.B.Stats().UDPReceiveBufferFull.Load())
	}
}

func TestBindConflictsAndReuse(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	a := newEP(t, p.A)
	if err := a.Bind(tcpip.FullAddress{Port: 53}); err != nil {
		t.Fatal(err)
	}
	b := newEP(t, p.A)
	if err := b.Bind(tcpip.FullAddress{Addr: testutil.AddrA, Port: 53}); err != tcpip.ErrPortInUse {
		t.Fatalf("overlapping bind: %v, want ErrPortInUse", err)
	}
	if err := b.Bind(tcpip.FullAddress{Addr: tcpip.ParseAddress("10.9.9.9"), Port: 54}); err != tcpip.ErrBadLocalAddress {
		t.Fatalf("bind to foreign address: %v", err)
	}
	r1, r2 := newEP(t, p.A), newEP(t, p.A)
	for _, ep := range []tcpip.Endpoint{r1, r2} {
		ep.SetSockOpt(tcpip.ReusePortOption, 1)
		if err := ep.Bind(tcpip.FullAddress{Port: 99}); err != nil {
			t.Fatalf("SO_REUSEPORT bind: %v", err)
		}
	}
	if a, _ := r1.LocalAddress(); a.Port != 99 {
		t.Fatalf("local port %d", a.Port)
	}
	eph := newEP(t, p.A)
	eph.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 1})
	if la, _ := eph.LocalAddress(); la.Port < 32768 || la.Port > 60999 || la.Addr != testutil.AddrA {
		t.Fatalf("ephemeral local address %v", la)
	}
}

func TestBroadcastNeedsOption(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	srv := newEP(t, p.B)
	srv.Bind(tcpip.FullAddress{Port: 67})
	cli := newEP(t, p.A)
	to := tcpip.FullAddress{Addr: tcpip.ParseAddress("10.0.0.255"), Port: 67}
	if _, err := cli.Write(strings.NewReader("dhcp?"), tcpip.WriteOptions{To: &to}); err != tcpip.ErrBroadcastDisabled {
		t.Fatalf("broadcast without SO_BROADCAST: %v", err)
	}
	cli.SetSockOpt(tcpip.BroadcastOption, 1)
	if _, err := cli.Write(strings.NewReader("dhcp?"), tcpip.WriteOptions{To: &to}); err != nil {
		t.Fatal(err)
	}
	p.Pump(nil)
	if got, _ := read(t, srv); got != "dhcp?" {
		t.Fatalf("got %q", got)
	}
	if p.LinkA.Dropped.Load() != 0 {
		t.Fatal("drops")
	}
}

func TestLargeDatagramFragments(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{MTU: 576})
	srv := newEP(t, p.B)
	srv.Bind(tcpip.FullAddress{Port: 4000})
	cli := newEP(t, p.A)
	cli.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 4000})
	big := bytes.Repeat([]byte("0123456789abcdef"), 500)
	if _, err := cli.Write(bytes.NewReader(big), tcpip.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.LinkA.C); n != 15 {
		t.Fatalf("%d fragments for 8008 bytes at MTU 576, want 15", n)
	}
	p.Pump(nil)
	got, res := read(t, srv)
	if got != string(big) || res.Total != len(big) {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(big))
	}
	if _, err := cli.Write(bytes.NewReader(make([]byte, udp.MaxPayload+1)), tcpip.WriteOptions{}); err != tcpip.ErrMessageTooLong {
		t.Fatalf("oversize: %v", err)
	}
}
