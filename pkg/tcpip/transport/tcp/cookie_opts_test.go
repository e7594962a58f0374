package tcp

import (
	"bytes"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// The peer's SYN in these tests: MSS 1400, window scale 7, SACK and
// timestamps, from port 9000 with ISN 777.
const (
	peerTSVal = 5000
	peerWS    = 7
)

func peerSynOpts() *header.TCPOptions {
	return &header.TCPOptions{HasMSS: true, MSS: 1400, HasWS: true, WindowScale: peerWS, SACKPermitted: true, HasTS: true, TSVal: peerTSVal}
}

func optionsOf(t *testing.T, h header.TCP) header.TCPOptions {
	t.Helper()
	o, ok := header.ParseTCPOptions(h.OptionBytes())
	if !ok {
		t.Fatalf("unparsable options in %v", h)
	}
	return o
}

// cookieSynAckTS floods a listener so the peer's SYN (with timestamps)
// gets a cookie, and returns the listener and the SYN-ACK.
func cookieSynAckTS(t *testing.T, p *testutil.Pair, syn *header.TCPOptions) (*endpoint, header.TCP) {
	t.Helper()
	ln, _ := floodListener(t, p, 1)
	injectToB(p, 9000, 777, 0, header.TCPFlagSyn, syn)
	out := outFromB(t, p)
	if len(out) != 1 || out[0].Flags() != header.TCPFlagSyn|header.TCPFlagAck || out[0].Ack() != 778 {
		t.Fatalf("no SYN-ACK for the overflowing SYN: %v", out)
	}
	if q, _ := listenerCounts(ln); q != 1 {
		t.Fatalf("cookie SYN-ACK left state: %d queued", q)
	}
	return ln, out[0]
}

func TestSynCookieTimestampsCarryOptions(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln, sa := cookieSynAckTS(t, p, peerSynOpts())
	o := optionsOf(t, sa)
	if !o.HasTS || o.TSEcr != peerTSVal || !o.SACKPermitted || !o.HasWS || o.MSS == 0 {
		t.Fatalf("cookie SYN-ACK options %+v: want TS echoing %d, SACK, WS, MSS", o, peerTSVal)
	}
	if o.WindowScale != rcvWindowScale(ln.rcvBufSize) || o.WindowScale == 0 {
		t.Fatalf("SYN-ACK window scale %d, listener buffer %d", o.WindowScale, ln.rcvBufSize)
	}
	if got := o.TSVal & cookieOptMask; got != peerWS|cookieOptSACK {
		t.Fatalf("TSval low bits %#x, want ws %d + SACK", got, peerWS)
	}
	cookie, tsval := sa.Seq(), o.TSVal
	injectToB(p, 9000, 778, cookie+1, header.TCPFlagAck, &header.TCPOptions{HasTS: true, TSVal: peerTSVal + 1, TSEcr: tsval})
	if out := outFromB(t, p); len(out) != 0 {
		t.Fatalf("genuine cookie ACK answered with %v", out)
	}
	ep, _, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	s := ep.(*endpoint)
	if s.State() != StateEstablished || !s.tsOK || !s.sackOK || !s.wsOK || s.sndWS != peerWS || s.rcvWS != o.WindowScale {
		t.Fatalf("cookie connection: state %v ts %v sack %v ws %v snd %d rcv %d", s.State(), s.tsOK, s.sackOK, s.wsOK, s.sndWS, s.rcvWS)
	}
	if s.mss != 1400-12 || s.tsRecent != peerTSVal+1 || s.iss != cookie {
		t.Fatalf("cookie connection: mss %d tsRecent %d iss %#x", s.mss, s.tsRecent, s.iss)
	}
	// Its timestamps continue from the cookie's, never going back, and
	// echo the peer's; its window is scaled.
	p.Manual.Advance(5 * time.Millisecond)
	if _, err := s.Write(bytes.NewReader([]byte("hi")), tcpip.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	out := outFromB(t, p)
	if len(out) != 1 {
		t.Fatalf("%d segments for a 2-byte write", len(out))
	}
	d := optionsOf(t, out[0])
	if !d.HasTS || !seqGEQ(d.TSVal, tsval) || d.TSEcr != peerTSVal+1 {
		t.Fatalf("data TS %d/%d after cookie TSval %d", d.TSVal, d.TSEcr, tsval)
	}
	if got := uint32(out[0].Window()) << s.rcvWS; got <= 0xffff {
		t.Fatalf("advertised window %d (raw %d): not scaled", got, out[0].Window())
	}
}

func TestSynCookieWithoutTimestampsDropsOptions(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	syn := peerSynOpts()
	syn.HasTS = false
	ln, sa := cookieSynAckTS(t, p, syn)
	if o := optionsOf(t, sa); o.HasTS || o.HasWS || o.SACKPermitted || !o.HasMSS {
		t.Fatalf("cookie SYN-ACK to a SYN without timestamps has options %+v", o)
	}
	injectToB(p, 9000, 778, sa.Seq()+1, header.TCPFlagAck, nil)
	ep, _, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if s := ep.(*endpoint); s.tsOK || s.wsOK || s.sackOK || s.rcvWS != 0 || s.sndWS != 0 || s.mss != 1400 {
		t.Fatalf("cookie connection without timestamps: ts %v ws %v sack %v rcv %d snd %d mss %d", s.tsOK, s.wsOK, s.sackOK, s.rcvWS, s.sndWS, s.mss)
	}
}

func TestSynCookieNoWindowScaleRecorded(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	syn := peerSynOpts()
	syn.HasWS, syn.SACKPermitted = false, false
	ln, sa := cookieSynAckTS(t, p, syn)
	o := optionsOf(t, sa)
	if o.HasWS || o.SACKPermitted || o.TSVal&cookieOptMask != cookieNoWS {
		t.Fatalf("SYN-ACK options %+v for a SYN with timestamps only", o)
	}
	injectToB(p, 9000, 778, sa.Seq()+1, header.TCPFlagAck, &header.TCPOptions{HasTS: true, TSVal: peerTSVal, TSEcr: o.TSVal})
	ep, _, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if s := ep.(*endpoint); !s.tsOK || s.wsOK || s.sackOK || s.rcvWS != 0 || s.sndWS != 0 {
		t.Fatalf("ts %v ws %v sack %v rcv %d snd %d", s.tsOK, s.wsOK, s.sackOK, s.rcvWS, s.sndWS)
	}
}

func TestSynCookieForgedTimestampOptionsRejected(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln, sa := cookieSynAckTS(t, p, peerSynOpts())
	cookie, tsval := sa.Seq(), optionsOf(t, sa).TSVal
	base := tsval &^ cookieOptMask
	for _, tc := range []struct {
		name string
		ack  uint32
		o    *header.TCPOptions
	}{
		{"wider window scale", cookie + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: base | 8 | cookieOptSACK}},
		{"SACK dropped", cookie + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: base | peerWS}},
		{"ECN added", cookie + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: tsval | cookieOptECN}},
		{"invalid scale 15 with ECN", cookie + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: base | cookieOptMask}},
		{"no timestamps", cookie + 1, nil},
		{"echo from the future", cookie + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: tsval + 64<<10}},
		{"echo too old", cookie + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: tsval - 3200<<cookieOptBits}},
		{"bad cookie", cookie ^ 1<<5 + 1, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: tsval}},
	} {
		injectToB(p, 9000, 778, tc.ack, header.TCPFlagAck, tc.o)
		out := outFromB(t, p)
		if len(out) != 1 || out[0].Flags() != header.TCPFlagRst || out[0].Seq() != tc.ack {
			t.Fatalf("%s: replies %v, want one RST", tc.name, out)
		}
		if q, a := listenerCounts(ln); q != 1 || a != 0 {
			t.Fatalf("%s: created state: %d queued, %d accepted", tc.name, q, a)
		}
	}
	// The untampered echo still works afterwards.
	injectToB(p, 9000, 778, cookie+1, header.TCPFlagAck, &header.TCPOptions{HasTS: true, TSVal: 1, TSEcr: tsval})
	if _, a := listenerCounts(ln); a != 1 {
		t.Fatal("genuine cookie refused after forgeries")
	}
}

func TestSynCookieWithTimestampsExpires(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln, sa := cookieSynAckTS(t, p, peerSynOpts())
	p.Manual.Advance(3 * cookiePeriod)
	outFromB(t, p)
	// A fresh cookie keeps the listener checking ACKs, so only age can
	// be why the old one is refused.
	injectToB(p, 3000, 5, 0, header.TCPFlagSyn, nil)
	injectToB(p, 3001, 5, 0, header.TCPFlagSyn, nil)
	outFromB(t, p)
	injectToB(p, 9000, 778, sa.Seq()+1, header.TCPFlagAck, &header.TCPOptions{HasTS: true, TSVal: peerTSVal, TSEcr: optionsOf(t, sa).TSVal})
	out := outFromB(t, p)
	if len(out) != 1 || out[0].Flags() != header.TCPFlagRst {
		t.Fatalf("expired cookie: replies %v, want RST", out)
	}
	if q, a := listenerCounts(ln); q != 1 || a != 0 {
		t.Fatalf("expired cookie created state: %d queued, %d accepted", q, a)
	}
}

func TestCookieOptsRoundTrip(t *testing.T) {
	for ws := uint8(0); ws <= header.TCPMaxWindowScale; ws++ {
		for _, sack := range []bool{false, true} {
			for _, hasWS := range []bool{false, true} {
				in := header.TCPOptions{HasWS: hasWS, WindowScale: ws, SACKPermitted: sack}
				v := encodeCookieOpts(&in)
				if v&^cookieOptMask != 0 || v&cookieOptECN != 0 {
					t.Fatalf("%+v encodes to %#x", in, v)
				}
				o, ok := decodeCookieOpts(v)
				want := cookieOpts{wsOK: hasWS, sack: sack}
				if hasWS {
					want.sndWS = ws
				}
				if !ok || o != want {
					t.Fatalf("%+v -> %#x -> %+v %v", in, v, o, ok)
				}
			}
		}
	}
	for _, now := range []uint32{0, 63, 64, 1000, 0xffffffff, 0xffffffc0} {
		for opts := uint32(0); opts <= cookieOptMask; opts++ {
			v := cookieTSVal(now, opts)
			if v&cookieOptMask != opts || seqGT(v, now) || now-v >= 1<<cookieOptBits {
				t.Fatalf("cookieTSVal(%d, %#x) = %d", now, opts, v)
			}
		}
	}
}

// FuzzCookieACK sends a listener that has just issued a cookie a bare ACK
// built from fuzz input: arbitrary sequence and acknowledgment numbers,
// option bytes, or the real cookie with a fuzzed echo. Nothing may panic,
// and a connection may only appear for the real cookie and echo.
func FuzzCookieACK(f *testing.F) {
	var ob [40]byte
	f.Add(uint32(778), uint32(0), uint32(0), ob[:0], true)
	f.Add(uint32(778), uint32(0), uint32(0), ob[:header.EncodeTCPOptions(ob[:], &header.TCPOptions{HasTS: true, TSVal: 1})], true)
	f.Add(uint32(778), uint32(1), uint32(cookieOptECN), []byte{header.TCPOptionTS, 10, 0, 0, 0, 1}, true)
	f.Add(uint32(5), uint32(99), uint32(0), []byte{1, 1, 1, 0}, false)
	f.Add(uint32(778), uint32(0), uint32(0x80000000), []byte{8, 10, 0, 0, 0, 0, 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, seq, ack, ecrDelta uint32, rawOpts []byte, useCookie bool) {
		p := newPair(t, testutil.PairOptions{})
		ln, sa := cookieSynAckTS(t, p, peerSynOpts())
		tsval := optionsOf(t, sa).TSVal
		if len(rawOpts) > 40 {
			rawOpts = rawOpts[:40]
		}
		opts := append([]byte(nil), rawOpts...)
		for len(opts)%4 != 0 {
			opts = append(opts, 0)
		}
		if useCookie {
			// The real cookie, with a timestamp option whose echo is off
			// by ecrDelta.
			ack = sa.Seq() + 1
			opts = ob[:header.EncodeTCPOptions(ob[:], &header.TCPOptions{HasTS: true, TSVal: seq, TSEcr: tsval + ecrDelta})]
			seq = 778
		}
		seg := make([]byte, header.TCPMinimumSize+len(opts))
		header.EncodeTCP(seg, &header.TCPFields{SrcPort: 9000, DstPort: 80, Seq: seq, Ack: ack, Flags: header.TCPFlagAck, Window: 100, Options: opts}, testutil.AddrA, testutil.AddrB)
		injectSegmentToB(p, seg)
		outFromB(t, p)
		_, accepted := listenerCounts(ln)
		// The echo's low bits are MACed; the rest need only be a TSval
		// the cookie's lifetime (128 s) allows: never ahead of the
		// clock, up to 128 s (plus the option bits' lag) behind.
		back := -int64(int32(ecrDelta))
		rightBits := useCookie && ecrDelta&cookieOptMask == 0
		mayAccept := rightBits && back >= 0 && back <= 128000+64
		mustAccept := rightBits && back >= 0 && back <= 128000
		if accepted != 0 && !mayAccept {
			t.Fatalf("forged ACK seq %d ack %d (cookie %d) echo %+d created a connection", seq, ack, sa.Seq(), int32(ecrDelta))
		}
		if mustAccept && accepted != 1 {
			t.Fatalf("genuine cookie ACK with echo %+d refused", int32(ecrDelta))
		}
	})
}

// injectSegmentToB delivers an already encoded segment from A to B.
func injectSegmentToB(p *testutil.Pair, seg []byte) {
	ip := make([]byte, 20+len(seg))
	copy(ip[20:], seg)
	header.IPv4(ip).Encode(header.IPv4Fields{TotalLength: uint16(len(ip)), TTL: 64, Protocol: 6, Src: testutil.AddrA, Dst: testutil.AddrB})
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ip)
}

// BenchmarkCookieWithTimestamps measures one cookie SYN-ACK's worth of
// encoding (ISN cookie and TSval) plus the check of the returning ACK.
func BenchmarkCookieWithTimestamps(b *testing.B) {
	p := protoOf(newPair(b, testutil.PairOptions{}).B)
	id := testID(4242)
	syn := peerSynOpts()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bits := encodeCookieOpts(syn)
		ack := segment{seq: uint32(i) + 1, flags: header.TCPFlagAck}
		ack.ack = p.makeCookie(id, uint32(i), 1460, bits) + 1
		ack.opts.HasTS, ack.opts.TSEcr = true, cookieTSVal(p.connTSVal(id), bits)
		if _, o, ok := p.checkCookieACK(id, &ack); !ok || o.sndWS != peerWS || !o.sack {
			b.Fatal("own cookie refused")
		}
	}
}

// TestSynCookieIPv6 completes an IPv6 handshake by cookie (the listener
// answers every SYN statelessly) with all options kept.
func TestSynCookieIPv6(t *testing.T) {
	p := newPair(t, testutil.PairOptions{Ethernet: true})
	proto := protoOf(p.B)
	proto.cookiesAlways.Store(true)
	lep, _ := p.B.NewEndpoint(ProtocolNumber, ipv6.ProtocolNumber, nil)
	ln := lep.(*endpoint)
	ln.Bind(tcpip.FullAddress{Port: 443})
	ln.Listen(4)
	ce, _ := p.A.NewEndpoint(ProtocolNumber, ipv6.ProtocolNumber, nil)
	c := ce.(*endpoint)
	if err := c.Connect(tcpip.FullAddress{Addr: testutil.AddrB6, Port: 443}); err != tcpip.ErrConnectStarted {
		t.Fatal(err)
	}
	p.Pump(nil)
	if q, _ := listenerCounts(ln); q != 0 {
		t.Fatalf("%d connections in the SYN queue", q)
	}
	se, _, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	s := se.(*endpoint)
	proto.checkCookieOrFail(t, s)
	if !s.tsOK || !s.sackOK || !s.wsOK || s.sndWS != c.rcvWS || c.sndWS != s.rcvWS || s.mss != 1500-60-12 {
		t.Fatalf("IPv6 cookie connection: ts %v sack %v ws %v snd %d/%d rcv %d/%d mss %d",
			s.tsOK, s.sackOK, s.wsOK, s.sndWS, c.rcvWS, s.rcvWS, c.sndWS, s.mss)
	}
	data := pattern(200000)
	if got := transfer(t, p, s, c, data, nil); !bytes.Equal(got, data) {
		t.Fatal("IPv6 cookie connection corrupted data")
	}
}

// FuzzCookieDecode feeds arbitrary final-ACK fields straight to the
// cookie check (no network in between, so it runs fast): nothing may
// panic, option bits that decode must re-encode to themselves, and
// whatever validates must record an MSS from the table.
func FuzzCookieDecode(f *testing.F) {
	f.Add(uint32(778), uint32(0), true, uint32(0x17), uint16(9000))
	f.Add(uint32(0), uint32(0xffffffff), false, uint32(0), uint16(0))
	f.Add(uint32(1), uint32(1<<27), true, uint32(cookieOptMask), uint16(80))
	p := protoOf(newPair(f, testutil.PairOptions{}).B)
	f.Fuzz(func(t *testing.T, seq, ack uint32, hasTS bool, ecr uint32, port uint16) {
		if o, ok := decodeCookieOpts(ecr); ok {
			in := header.TCPOptions{HasWS: o.wsOK, WindowScale: o.sndWS, SACKPermitted: o.sack}
			if got := encodeCookieOpts(&in); got != ecr&cookieOptMask {
				t.Fatalf("option bits %#x decode to %+v, which encodes to %#x", ecr&cookieOptMask, o, got)
			}
		}
		s := segment{seq: seq, ack: ack, flags: header.TCPFlagAck}
		s.opts.HasTS, s.opts.TSEcr = hasTS, ecr
		if mss, _, ok := p.checkCookieACK(testID(port), &s); ok && mss != int(cookieMSSTable[cookieMSSIndex(mss)]) {
			t.Fatalf("validated cookie records MSS %d, not in the table", mss)
		}
	})
}
