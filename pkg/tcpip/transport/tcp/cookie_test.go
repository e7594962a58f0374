package tcp

import (
	"bytes"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// injectToB delivers a handcrafted segment from A (srcPort) to B port 80.
func injectToB(p *testutil.Pair, srcPort uint16, seq, ack uint32, flags uint8, o *header.TCPOptions) {
	var ob [40]byte
	var opts []byte
	if o != nil {
		opts = ob[:header.EncodeTCPOptions(ob[:], o)]
	}
	seg := make([]byte, header.TCPMinimumSize+len(opts))
	header.EncodeTCP(seg, &header.TCPFields{SrcPort: srcPort, DstPort: 80, Seq: seq, Ack: ack, Flags: flags, Window: 65535, Options: opts}, testutil.AddrA, testutil.AddrB)
	ip := make([]byte, 20+len(seg))
	copy(ip[20:], seg)
	header.IPv4(ip).Encode(header.IPv4Fields{TotalLength: uint16(len(ip)), TTL: 64, Protocol: 6, Src: testutil.AddrA, Dst: testutil.AddrB})
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ip)
}

// outFromB takes the TCP segments B has queued for the link.
func outFromB(t *testing.T, p *testutil.Pair) []header.TCP {
	t.Helper()
	var segs []header.TCP
	for {
		pkt, ok := p.LinkB.Read()
		if !ok {
			return segs
		}
		h, err := header.ParseIPv4(pkt.Data)
		if err != nil || h.Protocol() != header.IPv4ProtocolTCP {
			continue
		}
		segs = append(segs, header.TCP(append([]byte(nil), h.Payload()...)))
	}
}

func listenerCounts(ln *endpoint) (synQ, acceptQ int) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return len(ln.synRcvd), len(ln.acceptQ)
}

// floodListener makes a backlog-1 listener on B and sends it n SYNs from
// ports 2000.. that are never completed, returning the SYN-ACKs.
func floodListener(t *testing.T, p *testutil.Pair, n int) (*endpoint, []header.TCP) {
	t.Helper()
	ln := newEP(t, p.B)
	if err := ln.Bind(tcpip.FullAddress{Port: 80}); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		injectToB(p, uint16(2000+i), 1000*uint32(i), 0, header.TCPFlagSyn, &header.TCPOptions{HasMSS: true, MSS: 1460})
	}
	return ln, outFromB(t, p)
}

func TestSynCookiesSurviveSynFlood(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln, synAcks := floodListener(t, p, 50)
	if len(synAcks) != 50 {
		t.Fatalf("%d SYN-ACKs for 50 SYNs", len(synAcks))
	}
	for i, h := range synAcks {
		if h.Flags() != header.TCPFlagSyn|header.TCPFlagAck || h.Ack() != 1000*uint32(i)+1 {
			t.Fatalf("reply %d: flags %#x ack %d", i, h.Flags(), h.Ack())
		}
	}
	if q, a := listenerCounts(ln); q != 1 || a != 0 {
		t.Fatalf("flood left %d queued, %d accepted; want the SYN queue holding only 1", q, a)
	}
	c := newEP(t, p.A)
	if err := c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80}); err != tcpip.ErrConnectStarted {
		t.Fatalf("Connect: %v", err)
	}
	// The flooders' SYN-ACKs were taken off the link, so the queued
	// flooder stays half-open throughout.
	p.Pump(nil)
	if c.State() != StateEstablished {
		t.Fatalf("client %v behind a full SYN queue", c.State())
	}
	sep, addr, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	s := sep.(*endpoint)
	if addr.Port != c.id.LocalPort {
		t.Fatalf("accepted port %d, client is %d", addr.Port, c.id.LocalPort)
	}
	// The cookie was the ISN: the top bits hold the counter.
	p.B.TransportProtocol(ProtocolNumber).(*protocol).checkCookieOrFail(t, s)
	// The client's SYN had timestamps, so the cookie kept its options.
	if !s.wsOK || !s.tsOK || !s.sackOK || !c.wsOK || !c.tsOK || !c.sackOK {
		t.Fatalf("cookie connection lost options: server ws %v ts %v sack %v, client ws %v ts %v sack %v",
			s.wsOK, s.tsOK, s.sackOK, c.wsOK, c.tsOK, c.sackOK)
	}
	if s.sndWS != c.rcvWS || c.sndWS != s.rcvWS || s.rcvWS == 0 {
		t.Fatalf("window scales: server snd %d rcv %d, client snd %d rcv %d", s.sndWS, s.rcvWS, c.sndWS, c.rcvWS)
	}
	if s.mss != 1460-12 {
		t.Fatalf("cookie connection mss %d, want 1448 (1460 from the table less timestamps)", s.mss)
	}
	// A bulk transfer keeps more than 64 KiB in flight, which only a
	// scaled window allows.
	var maxSent, lastAck, maxFlight uint32
	maxSent, lastAck = c.sndNxt, c.sndNxt
	flight := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		if h, data := isData(pkt); data && from == p.LinkA {
			if end := h.Seq() + uint32(len(h.Payload())); seqGT(end, maxSent) {
				maxSent = end
			}
		} else if h != nil && from == p.LinkB && seqGT(h.Ack(), lastAck) {
			lastAck = h.Ack()
		}
		maxFlight = max(maxFlight, maxSent-lastAck)
		return []channel.Packet{pkt}
	}
	data := pattern(1 << 20)
	if got := transfer(t, p, c, s, data, flight); !bytes.Equal(got, data) {
		t.Fatalf("client->server got %d of %d bytes", len(got), len(data))
	}
	if maxFlight <= 0xffff || c.sndWnd <= 0xffff {
		t.Fatalf("at most %d bytes in flight, window %d: window scaling unused", maxFlight, c.sndWnd)
	}
	back := pattern(5000)
	if got := transfer(t, p, s, c, back, nil); !bytes.Equal(got, back) {
		t.Fatalf("server->client got %d of %d bytes", len(got), len(back))
	}
}

func (p *protocol) checkCookieOrFail(t *testing.T, s *endpoint) {
	t.Helper()
	bits := uint32(cookieNoTS)
	if s.tsOK {
		bits = encodeCookieOpts(&header.TCPOptions{HasWS: s.wsOK, WindowScale: s.sndWS, SACKPermitted: s.sackOK})
	}
	if _, ok := p.checkCookie(s.id, s.irs, s.iss, bits); !ok {
		t.Fatalf("server ISN %#x is not a valid cookie", s.iss)
	}
}

// cookieSynAck floods a listener so its next SYN gets a cookie, sends
// that SYN from port 9000 with ISN 777 and returns the cookie.
func cookieSynAck(t *testing.T, p *testutil.Pair) (*endpoint, uint32) {
	t.Helper()
	ln, _ := floodListener(t, p, 1)
	injectToB(p, 9000, 777, 0, header.TCPFlagSyn, &header.TCPOptions{HasMSS: true, MSS: 1400})
	out := outFromB(t, p)
	if len(out) != 1 || out[0].Flags() != header.TCPFlagSyn|header.TCPFlagAck || out[0].Ack() != 778 {
		t.Fatalf("no SYN-ACK for the overflowing SYN: %v", out)
	}
	return ln, out[0].Seq()
}

func TestSynCookieForgedAckGetsRST(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln, cookie := cookieSynAck(t, p)
	for _, bad := range []uint32{cookie ^ 1, cookie ^ 1<<20, cookie ^ 1<<24, cookie + 1<<27} {
		injectToB(p, 9000, 778, bad+1, header.TCPFlagAck, nil)
		out := outFromB(t, p)
		if len(out) != 1 || out[0].Flags() != header.TCPFlagRst || out[0].Seq() != bad+1 {
			t.Fatalf("forged cookie %#x: replies %v, want one RST", bad, out)
		}
		if q, a := listenerCounts(ln); q != 1 || a != 0 {
			t.Fatalf("forged cookie %#x created state: %d queued, %d accepted", bad, q, a)
		}
	}
	// Same cookie, other client ISN: the hash covers it.
	injectToB(p, 9000, 779, cookie+1, header.TCPFlagAck, nil)
	if out := outFromB(t, p); len(out) != 1 || out[0].Flags() != header.TCPFlagRst {
		t.Fatalf("cookie replayed with another ISN: %v", out)
	}
	// The genuine cookie is accepted, with the data it carries.
	injectToB(p, 9000, 778, cookie+1, header.TCPFlagAck, nil)
	if q, a := listenerCounts(ln); q != 1 || a != 1 {
		t.Fatalf("genuine cookie: %d queued, %d accepted", q, a)
	}
	ep, _, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if s := ep.(*endpoint); s.State() != StateEstablished || s.mss != 1400 || s.iss != cookie {
		t.Fatalf("cookie connection: state %v mss %d iss %#x", s.State(), s.mss, s.iss)
	}
}

func TestSynCookieExpires(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln, cookie := cookieSynAck(t, p)
	p.Manual.Advance(3 * cookiePeriod) // also retires the queued flooder
	outFromB(t, p)
	// Fill the queue again and make the listener send a fresh cookie, so
	// only the old cookie's age can be why it is refused.
	injectToB(p, 3000, 5, 0, header.TCPFlagSyn, nil)
	injectToB(p, 3001, 5, 0, header.TCPFlagSyn, nil)
	if out := outFromB(t, p); len(out) != 2 {
		t.Fatalf("%d replies to 2 SYNs", len(out))
	}
	injectToB(p, 9000, 778, cookie+1, header.TCPFlagAck, nil)
	out := outFromB(t, p)
	if len(out) != 1 || out[0].Flags() != header.TCPFlagRst {
		t.Fatalf("expired cookie: replies %v, want RST", out)
	}
	if q, a := listenerCounts(ln); q != 1 || a != 0 {
		t.Fatalf("expired cookie created state: %d queued, %d accepted", q, a)
	}
}

func TestCookieValidityWindow(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	proto := p.B.TransportProtocol(ProtocolNumber).(*protocol)
	id := stack.TransportEndpointID{LocalPort: 80, LocalAddress: testutil.AddrB, RemotePort: 4242, RemoteAddress: testutil.AddrA}
	p.Manual.Advance(40 * cookiePeriod) // counter past a 5-bit wrap
	c := proto.makeCookie(id, 99, 1300, cookieNoTS)
	for _, tc := range []struct {
		advance bool
		ok      bool
	}{{false, true}, {true, true}, {true, false}} {
		if tc.advance {
			p.Manual.Advance(cookiePeriod)
		}
		mss, ok := proto.checkCookie(id, 99, c, cookieNoTS)
		if ok != tc.ok || (ok && mss != 1300) {
			t.Fatalf("counter %d: ok %v mss %d, want ok %v", proto.cookieCounter(), ok, mss, tc.ok)
		}
	}
	other := id
	other.RemotePort++
	if _, ok := proto.checkCookie(other, 99, proto.makeCookie(id, 99, 1300, cookieNoTS), cookieNoTS); ok {
		t.Fatal("cookie valid for another 4-tuple")
	}
	// The option bits are covered too.
	withOpts := proto.makeCookie(id, 99, 1300, 7|cookieOptSACK)
	if _, ok := proto.checkCookie(id, 99, withOpts, 7|cookieOptSACK); !ok {
		t.Fatal("cookie with option bits refused")
	}
	for _, bits := range []uint32{7, 6 | cookieOptSACK, cookieNoWS | cookieOptSACK, cookieNoTS} {
		if _, ok := proto.checkCookie(id, 99, withOpts, bits); ok {
			t.Fatalf("cookie made for option bits %#x valid with %#x", 7|cookieOptSACK, bits)
		}
	}
	// A different stack has a different key.
	q := newPair(t, testutil.PairOptions{})
	q.Manual.Advance(40 * cookiePeriod)
	if _, ok := q.B.TransportProtocol(ProtocolNumber).(*protocol).checkCookie(id, 99, proto.makeCookie(id, 99, 1300, cookieNoTS), cookieNoTS); ok {
		t.Fatal("cookie valid under another stack's key")
	}
}

func TestCookieMSSIndex(t *testing.T) {
	for _, tc := range []struct{ peer, want int }{{100, 536}, {536, 536}, {1459, 1440}, {1460, 1460}, {9000, 1460}, {1250, 1220}} {
		if got := cookieMSSTable[cookieMSSIndex(tc.peer)]; int(got) != tc.want {
			t.Errorf("peer MSS %d encodes %d, want %d", tc.peer, got, tc.want)
		}
	}
}

func BenchmarkCookieMakeAndCheck(b *testing.B) {
	p := newPair(b, testutil.PairOptions{})
	proto := p.B.TransportProtocol(ProtocolNumber).(*protocol)
	id := stack.TransportEndpointID{LocalPort: 80, LocalAddress: testutil.AddrB, RemotePort: 4242, RemoteAddress: testutil.AddrA}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := proto.makeCookie(id, uint32(i), 1460, cookieNoTS)
		if _, ok := proto.checkCookie(id, uint32(i), c, cookieNoTS); !ok {
			b.Fatal("own cookie refused")
		}
	}
}
