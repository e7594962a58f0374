package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

func newPair(t testing.TB, o testutil.PairOptions) *testutil.Pair {
	o.Transports = append(o.Transports, NewProtocol)
	return testutil.NewPair(o)
}

func newEP(t testing.TB, s *stack.Stack) *endpoint {
	ep, err := s.NewEndpoint(ProtocolNumber, ipv4.ProtocolNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ep.(*endpoint)
}

// dial connects A to a listener on B port 80 and returns both ends.
func dial(t testing.TB, p *testutil.Pair) (client, server, listener *endpoint) {
	t.Helper()
	ln := newEP(t, p.B)
	if err := ln.Bind(tcpip.FullAddress{Port: 80}); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(8); err != nil {
		t.Fatal(err)
	}
	c := newEP(t, p.A)
	if err := c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80}); err != tcpip.ErrConnectStarted {
		t.Fatalf("Connect: %v", err)
	}
	p.Pump(nil)
	s, addr, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if addr.Addr != testutil.AddrA {
		t.Fatalf("accepted from %v", addr)
	}
	if c.State() != StateEstablished || s.(*endpoint).State() != StateEstablished {
		t.Fatalf("states %v / %v", c.State(), s.(*endpoint).State())
	}
	return c, s.(*endpoint), ln
}

func readAll(ep *endpoint) ([]byte, *tcpip.Error) {
	var b bytes.Buffer
	for {
		_, err := ep.Read(&b, tcpip.ReadOptions{})
		if err != nil {
			return b.Bytes(), err
		}
	}
}

// transfer sends data from a to b, pumping the link (through filter) and
// advancing the clock when the link is idle, and returns what b read.
func transfer(t *testing.T, p *testutil.Pair, a, b *endpoint, data []byte, filter func(*channel.Endpoint, channel.Packet) []channel.Packet) []byte {
	t.Helper()
	var got bytes.Buffer
	rest := data
	for i := 0; i < 10000 && got.Len() < len(data); i++ {
		if len(rest) > 0 {
			n, err := a.Write(bytes.NewReader(rest), tcpip.WriteOptions{})
			if err != nil && err != tcpip.ErrWouldBlock {
				t.Fatalf("Write: %v", err)
			}
			rest = rest[n:]
		}
		moved := p.Pump(filter)
		b.Read(&got, tcpip.ReadOptions{})
		if moved == 0 {
			if d, ok := p.Manual.NextDeadline(); ok {
				p.Manual.Advance(d)
			}
		}
	}
	return got.Bytes()
}

func pattern(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func isData(p channel.Packet) (header.TCP, bool) {
	h, err := header.ParseIPv4(p.Data)
	if err != nil || h.Protocol() != header.IPv4ProtocolTCP {
		return nil, false
	}
	tcp := header.TCP(h.Payload())
	return tcp, len(tcp.Payload()) > 0
}

func TestHandshakeNegotiatesOptions(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	if !c.tsOK || !s.tsOK || !c.wsOK || !s.wsOK {
		t.Fatalf("timestamps %v/%v window scale %v/%v", c.tsOK, s.tsOK, c.wsOK, s.wsOK)
	}
	if mss, _ := c.GetSockOpt(tcpip.MaxSegOption); mss != 1500-40-12 {
		t.Fatalf("mss %d, want 1448", mss)
	}
	if c.rcvWS != 5 || s.sndWS != 5 {
		t.Fatalf("window scale %d/%d, want 5 for a 1 MiB buffer", c.rcvWS, s.sndWS)
	}
	if ra, _ := s.RemoteAddress(); ra.Port != c.id.LocalPort {
		t.Fatalf("server sees port %d, client has %d", ra.Port, c.id.LocalPort)
	}
}

func TestDataBothWays(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	up := pattern(300000)
	if got := transfer(t, p, c, s, up, nil); !bytes.Equal(got, up) {
		t.Fatalf("upstream: got %d bytes", len(got))
	}
	down := pattern(5000)
	if got := transfer(t, p, s, c, down, nil); !bytes.Equal(got, down) {
		t.Fatalf("downstream: got %d bytes", len(got))
	}
}

func TestReadinessNotifications(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln := newEP(t, p.B)
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(1)
	entry, ch := tcpip.NewChannelEntry()
	ln.WaitQueue().EventRegister(entry, tcpip.EventIn)
	c := newEP(t, p.A)
	if c.Readiness(tcpip.EventOut) != 0 {
		t.Fatal("writable before connecting")
	}
	c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(nil)
	select {
	case <-ch:
	default:
		t.Fatal("listener not notified of a pending connection")
	}
	if ln.Readiness(tcpip.EventIn) == 0 || c.Readiness(tcpip.EventOut) == 0 {
		t.Fatal("readiness wrong after handshake")
	}
}

func TestLossRetransmission(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	dropped := 0
	lossy := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		if _, ok := isData(pkt); ok && from == p.LinkA && dropped < 1 {
			dropped++
			return nil
		}
		return []channel.Packet{pkt}
	}
	msg := []byte("only segment")
	c.Write(bytes.NewReader(msg), tcpip.WriteOptions{})
	p.Pump(lossy)
	if got, _ := readAll(s); len(got) != 0 {
		t.Fatal("data arrived despite loss")
	}
	rto := c.rto
	p.Manual.Advance(rto - time.Millisecond)
	p.Pump(nil)
	if got, _ := readAll(s); len(got) != 0 {
		t.Fatal("retransmitted before the RTO")
	}
	p.Manual.Advance(time.Millisecond)
	p.Pump(nil)
	if got, _ := readAll(s); !bytes.Equal(got, msg) {
		t.Fatalf("after RTO got %q", got)
	}
	if c.rto < rto {
		t.Fatalf("RTO did not back off: %v -> %v", rto, c.rto)
	}
}

func TestRandomLossReorderDuplication(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	r := rand.New(rand.NewPCG(7, 7))
	var held []channel.Packet
	chaos := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		switch x := r.IntN(100); {
		case x < 5:
			return nil // loss
		case x < 10:
			return []channel.Packet{pkt, pkt} // duplication
		case x < 20:
			held = append(held, pkt) // reorder: release later
			return nil
		}
		out := append([]channel.Packet{pkt}, held...)
		held = nil
		return out
	}
	data := pattern(200000)
	got := transfer(t, p, c, s, data, chaos)
	if !bytes.Equal(got, data) {
		t.Fatalf("stream corrupted: got %d of %d bytes", len(got), len(data))
	}
	back := pattern(30000)
	if got := transfer(t, p, s, c, back, chaos); !bytes.Equal(got, back) {
		t.Fatalf("reverse stream corrupted: %d bytes", len(got))
	}
}

func TestFastRetransmit(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	dropped := false
	drop := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		if _, ok := isData(pkt); ok && from == p.LinkA && !dropped {
			dropped = true
			return nil
		}
		return []channel.Packet{pkt}
	}
	data := pattern(8 * 1448)
	c.Write(bytes.NewReader(data), tcpip.WriteOptions{})
	p.Pump(drop)
	// Recovered with no timer: three duplicate ACKs did it.
	got, _ := readAll(s)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes without an RTO, want %d", len(got), len(data))
	}
	if c.inRecovery || c.cwnd > c.ssthresh || c.ssthresh >= 1<<30 {
		t.Fatalf("after recovery: inRecovery %v cwnd %d ssthresh %d", c.inRecovery, c.cwnd, c.ssthresh)
	}
}

func TestRTOEstimation(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	for i := 0; i < 20; i++ {
		c.Write(bytes.NewReader([]byte("x")), tcpip.WriteOptions{})
		// 100ms one-way on the data, instant ACK.
		for {
			pkt, ok := p.LinkA.Read()
			if !ok {
				break
			}
			p.Manual.Advance(100 * time.Millisecond)
			p.LinkB.Deliver(pkt)
		}
		p.Pump(nil)
		readAll(s)
	}
	if c.srtt < 90*time.Millisecond || c.srtt > 110*time.Millisecond {
		t.Fatalf("srtt %v, want ~100ms", c.srtt)
	}
	if c.rto < MinRTO || c.rto > 200*time.Millisecond+5*time.Millisecond {
		t.Fatalf("rto %v", c.rto)
	}
}

func TestZeroWindowProbe(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln := newEP(t, p.B)
	ln.SetSockOpt(tcpip.ReceiveBufferSizeOption, 8192)
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(1)
	c := newEP(t, p.A)
	c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(nil)
	se, _, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := se.(*endpoint)
	data := pattern(50000)
	c.Write(bytes.NewReader(data), tcpip.WriteOptions{})
	p.Pump(nil)
	if s.rcvUsed != 8192 || c.sndWnd != 0 {
		t.Fatalf("receiver holds %d, sender window %d", s.rcvUsed, c.sndWnd)
	}
	// Probes go out on the persist timer and must not kill the
	// connection however long the window stays shut.
	for i := 0; i < 30; i++ {
		d, ok := p.Manual.NextDeadline()
		if !ok {
			t.Fatal("no persist timer while window is zero")
		}
		p.Manual.Advance(d)
		p.Pump(nil)
	}
	if c.State() != StateEstablished {
		t.Fatalf("state %v after probing", c.State())
	}
	var got bytes.Buffer
	for i := 0; i < 1000 && got.Len() < len(data); i++ {
		s.Read(&got, tcpip.ReadOptions{})
		if p.Pump(nil) == 0 {
			if d, ok := p.Manual.NextDeadline(); ok {
				p.Manual.Advance(d)
			}
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("got %d of %d bytes after window reopened", got.Len(), len(data))
	}
}

func TestHalfCloseAndTimeWait(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	c.Write(bytes.NewReader([]byte("request")), tcpip.WriteOptions{})
	if err := c.Shutdown(tcpip.ShutdownWrite); err != nil {
		t.Fatal(err)
	}
	p.Pump(nil)
	got, err := readAll(s)
	if string(got) != "request" || err != tcpip.ErrClosedForReceive {
		t.Fatalf("server read %q, %v", got, err)
	}
	if s.State() != StateCloseWait || c.State() != StateFinWait2 {
		t.Fatalf("states %v / %v", c.State(), s.State())
	}
	if _, err := c.Write(bytes.NewReader([]byte("x")), tcpip.WriteOptions{}); err != tcpip.ErrClosedForSend {
		t.Fatalf("write after shutdown: %v", err)
	}
	s.Write(bytes.NewReader([]byte("response")), tcpip.WriteOptions{})
	p.Pump(nil)
	if got, _ := readAll(c); string(got) != "response" {
		t.Fatalf("client read %q", got)
	}
	s.Close()
	p.Pump(nil)
	if c.State() != StateTimeWait || s.State() != StateClosed {
		t.Fatalf("after close: %v / %v", c.State(), s.State())
	}
	if _, err := readAll(c); err != tcpip.ErrClosedForReceive {
		t.Fatalf("EOF: %v", err)
	}
	p.Manual.Advance(TimeWaitDuration)
	if c.State() != StateClosed {
		t.Fatalf("TIME-WAIT did not expire: %v", c.State())
	}
}

func TestSimultaneousCloseGoesThroughClosing(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	c.Close()
	s.Close()
	if c.State() != StateFinWait1 || s.State() != StateFinWait1 {
		t.Fatalf("%v / %v", c.State(), s.State())
	}
	// Deliver both FINs before either ACK.
	pa, _ := p.LinkA.Read()
	pb, _ := p.LinkB.Read()
	p.LinkB.Deliver(pa)
	p.LinkA.Deliver(pb)
	if c.State() != StateClosing || s.State() != StateClosing {
		t.Fatalf("%v / %v, want CLOSING", c.State(), s.State())
	}
	p.Pump(nil)
	if c.State() != StateTimeWait || s.State() != StateTimeWait {
		t.Fatalf("%v / %v, want TIME-WAIT", c.State(), s.State())
	}
}

func TestConnectionRefused(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c := newEP(t, p.A)
	entry, ch := tcpip.NewChannelEntry()
	c.WaitQueue().EventRegister(entry, tcpip.EventErr|tcpip.EventOut)
	c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 81})
	p.Pump(nil)
	<-ch
	if err := c.LastError(); err != tcpip.ErrConnectionRefused {
		t.Fatalf("LastError %v", err)
	}
	if c.State() != StateClosed {
		t.Fatalf("state %v", c.State())
	}
}

func TestAbortResetsPeer(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	c.Abort()
	p.Pump(nil)
	if _, err := s.Read(&bytes.Buffer{}, tcpip.ReadOptions{}); err != tcpip.ErrConnectionReset {
		t.Fatalf("read after peer reset: %v", err)
	}
	if s.State() != StateClosed {
		t.Fatalf("state %v", s.State())
	}
}

func TestOutOfWindowRSTGetsChallengeACK(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	_, s, _ := dial(t, p)
	seg := make([]byte, 20)
	header.EncodeTCP(seg, &header.TCPFields{SrcPort: s.id.RemotePort, DstPort: 80, Seq: s.rcvNxt + 100, Flags: header.TCPFlagRst}, testutil.AddrA, testutil.AddrB)
	ip := make([]byte, 20+len(seg))
	copy(ip[20:], seg)
	header.IPv4(ip).Encode(header.IPv4Fields{TotalLength: uint16(len(ip)), TTL: 64, Protocol: 6, Src: testutil.AddrA, Dst: testutil.AddrB})
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ip)
	if s.State() != StateEstablished {
		t.Fatal("in-window but inexact RST tore down the connection")
	}
	out, ok := p.LinkB.Read()
	tcp, _ := isData(out)
	if !ok || tcp.Flags() != header.TCPFlagAck {
		t.Fatal("no challenge ACK")
	}
}

func TestUnreadDataCloseSendsRST(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	c.Write(bytes.NewReader([]byte("unread")), tcpip.WriteOptions{})
	p.Pump(nil)
	s.Close()
	p.Pump(nil)
	if c.State() != StateClosed || c.LastError() != tcpip.ErrConnectionReset {
		t.Fatalf("client %v", c.State())
	}
}

func TestTimeWaitReuse(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, ln := dial(t, p)
	port := c.id.LocalPort
	// Server closes first, so the server side holds TIME-WAIT.
	s.Close()
	p.Pump(nil)
	c.Close()
	p.Pump(nil)
	if s.State() != StateTimeWait {
		t.Fatalf("server %v", s.State())
	}
	p.Manual.Advance(time.Second)
	// A fresh connection on the same 4-tuple: the new SYN's higher
	// sequence number retires TIME-WAIT and reaches the listener.
	c2 := newEP(t, p.A)
	c2.SetSockOpt(tcpip.ReuseAddressOption, 1)
	if err := c2.Bind(tcpip.FullAddress{Port: port}); err != nil {
		t.Fatal(err)
	}
	c2.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(nil)
	if c2.State() != StateEstablished || s.State() != StateClosed {
		t.Fatalf("new connection %v, old %v", c2.State(), s.State())
	}
	if _, _, err := ln.Accept(); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	// Binding the TIME-WAIT port without SO_REUSEADDR is refused.
	c3 := newEP(t, p.A)
	c4 := newEP(t, p.A)
	c3.Close()
	c2.Close()
	p.Pump(nil)
	if err := c4.Bind(tcpip.FullAddress{Port: port}); err != tcpip.ErrPortInUse {
		t.Fatalf("bind over TIME-WAIT: %v", err)
	}
}

func TestListenBacklog(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln := newEP(t, p.B)
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(1)
	c1, c2 := newEP(t, p.A), newEP(t, p.A)
	c1.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(nil)
	c2.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(nil)
	if c2.State() != StateSynSent {
		t.Fatalf("second connection %v despite full backlog", c2.State())
	}
	if _, _, err := ln.Accept(); err != nil {
		t.Fatal(err)
	}
	p.Manual.Advance(c2.rto)
	p.Pump(nil)
	if c2.State() != StateEstablished {
		t.Fatalf("retried SYN not accepted: %v", c2.State())
	}
	ln.Close()
	p.Pump(nil)
	if c2.State() != StateClosed {
		t.Fatalf("queued connection not reset when listener closed: %v", c2.State())
	}
}

func TestNagleCoalesces(t *testing.T) {
	for _, nodelay := range []bool{false, true} {
		p := newPair(t, testutil.PairOptions{})
		c, s, _ := dial(t, p)
		if nodelay {
			c.SetSockOpt(tcpip.NoDelayOption, 1)
		}
		for i := 0; i < 10; i++ {
			c.Write(bytes.NewReader([]byte("ab")), tcpip.WriteOptions{})
		}
		segs := 0
		for {
			pkt, ok := p.LinkA.Read()
			if !ok {
				break
			}
			if _, d := isData(pkt); d {
				segs++
			}
			p.LinkB.Deliver(pkt)
		}
		p.Pump(nil)
		got, _ := readAll(s)
		if string(got) != "abababababababababab" {
			t.Fatalf("got %q", got)
		}
		want := 1
		if nodelay {
			want = 10
		}
		if segs != want {
			t.Fatalf("nodelay=%v: %d segments before ACKs, want %d", nodelay, segs, want)
		}
	}
}

func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, _, _ := dial(t, p)
	c.SetSockOpt(tcpip.KeepaliveIdleOption, 1000)
	c.SetSockOpt(tcpip.KeepaliveIntervalOption, 500)
	c.SetSockOpt(tcpip.KeepaliveCountOption, 3)
	c.SetSockOpt(tcpip.KeepaliveEnabledOption, 1)
	// A live peer answers probes.
	p.Manual.Advance(1000 * time.Millisecond)
	if n := p.Pump(nil); n != 2 {
		t.Fatalf("probe exchange moved %d packets, want 2", n)
	}
	p.Manual.Advance(1500 * time.Millisecond)
	p.Pump(nil)
	if c.State() != StateEstablished {
		t.Fatal("keepalive killed a live connection")
	}
	// Now the peer vanishes.
	blackhole := func(*channel.Endpoint, channel.Packet) []channel.Packet { return nil }
	for i := 0; i < 10; i++ {
		p.Manual.Advance(500 * time.Millisecond)
		p.Pump(blackhole)
	}
	if c.State() != StateClosed || c.LastError() != tcpip.ErrTimeout {
		t.Fatalf("state %v", c.State())
	}
}

func TestRetransmissionGivesUp(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, _, _ := dial(t, p)
	c.Write(bytes.NewReader([]byte("void")), tcpip.WriteOptions{})
	blackhole := func(*channel.Endpoint, channel.Packet) []channel.Packet { return nil }
	for i := 0; i < 40 && c.State() != StateClosed; i++ {
		p.Manual.Advance(MaxRTO)
		p.Pump(blackhole)
	}
	if c.State() != StateClosed || c.LastError() != tcpip.ErrTimeout {
		t.Fatalf("state %v", c.State())
	}
}

func TestSynRetriesTimeout(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c := newEP(t, p.A)
	c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	syns := p.LinkA.Drain()
	for i := 0; i < 20 && c.State() == StateSynSent; i++ {
		d, _ := p.Manual.NextDeadline()
		p.Manual.Advance(d)
		syns += p.LinkA.Drain()
	}
	if syns != MaxSynRetries+1 || c.LastError() != tcpip.ErrTimeout {
		t.Fatalf("%d SYNs, state %v", syns, c.State())
	}
}

func TestEthernetLinkWithARP(t *testing.T) {
	p := newPair(t, testutil.PairOptions{Ethernet: true})
	c, s, _ := dial(t, p)
	data := pattern(20000)
	if got := transfer(t, p, c, s, data, nil); !bytes.Equal(got, data) {
		t.Fatal("transfer over ethernet failed")
	}
}

func TestIPv6Connection(t *testing.T) {
	p := newPair(t, testutil.PairOptions{Ethernet: true})
	ln, _ := p.B.NewEndpoint(ProtocolNumber, ipv6.ProtocolNumber, nil)
	ln.Bind(tcpip.FullAddress{Port: 443})
	ln.Listen(4)
	ce, _ := p.A.NewEndpoint(ProtocolNumber, ipv6.ProtocolNumber, nil)
	c := ce.(*endpoint)
	if err := c.Connect(tcpip.FullAddress{Addr: testutil.AddrB6, Port: 443}); err != tcpip.ErrConnectStarted {
		t.Fatal(err)
	}
	p.Pump(nil)
	se, addr, err := ln.Accept()
	if err != nil || addr.Addr != testutil.AddrA6 {
		t.Fatalf("accept %v from %v", err, addr)
	}
	if mss, _ := c.GetSockOpt(tcpip.MaxSegOption); mss != 1500-60-12 {
		t.Fatalf("IPv6 mss %d, want 1428", mss)
	}
	data := pattern(100000)
	if got := transfer(t, p, c, se.(*endpoint), data, nil); !bytes.Equal(got, data) {
		t.Fatal("IPv6 transfer corrupted")
	}
	if err := c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 443}); err != tcpip.ErrAlreadyConnected {
		t.Fatalf("second connect: %v", err)
	}
	v4, _ := p.A.NewEndpoint(ProtocolNumber, ipv6.ProtocolNumber, nil)
	if err := v4.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 443}); err != tcpip.ErrAddressFamily {
		t.Fatalf("IPv4 address on IPv6 endpoint: %v", err)
	}
}

func TestAcceptedConnectionKeepsPortBusy(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, ln := dial(t, p)
	ln.Close()
	again := newEP(t, p.B)
	if err := again.Bind(tcpip.FullAddress{Port: 80}); err != tcpip.ErrPortInUse {
		t.Fatalf("bind while an accepted connection lives: %v", err)
	}
	c.Close()
	p.Pump(nil)
	s.Close()
	p.Pump(nil)
	if c.State() != StateTimeWait || s.State() != StateClosed {
		t.Fatalf("%v / %v", c.State(), s.State())
	}
	if err := again.Bind(tcpip.FullAddress{Port: 80}); err != nil {
		t.Fatalf("bind after the connection closed: %v", err)
	}
}
