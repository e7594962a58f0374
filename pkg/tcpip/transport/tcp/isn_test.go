package tcp

import (
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// TestSipHashVectors checks SipHash-2-4 against the paper's reference
// vectors: key 00..0f, message 00..(n-1). The lengths chosen cover an
// empty message, a partial last word, exact word boundaries and several
// full words.
func TestSipHashVectors(t *testing.T) {
	k := sipKey{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	var msg [64]byte
	for i := range msg {
		msg[i] = byte(i)
	}
	for _, tc := range []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{7, 0xab0200f58b01d137},
		{8, 0x93f5f5799a932462},
		{15, 0xa129ca6149be45e5},
		{16, 0x3f2acc7f57c29bdb},
		{36, 0x314dffbe0815a3b4},
		{63, 0x958a324ceb064572},
	} {
		if got := sipHash24(k, msg[:tc.n]); got != tc.want {
			t.Errorf("SipHash-2-4 of %d bytes = %#x, want %#x", tc.n, got, tc.want)
		}
	}
}

func testID(remotePort uint16) stack.TransportEndpointID {
	return stack.TransportEndpointID{LocalPort: 80, LocalAddress: testutil.AddrB, RemotePort: remotePort, RemoteAddress: testutil.AddrA}
}

func protoOf(s *stack.Stack) *protocol { return s.TransportProtocol(ProtocolNumber).(*protocol) }

func TestISNAdvancesWithFourMicrosecondClock(t *testing.T) {
	p := protoOf(newPair(t, testutil.PairOptions{}).B)
	id := testID(4000)
	prev, ts0 := p.initialSeq(id, 0)
	for _, step := range []time.Duration{4 * time.Microsecond, time.Millisecond, time.Second, 60 * time.Second} {
		now := step
		cur, ts := p.initialSeq(id, now)
		if want := uint32(now / (4 * time.Microsecond)); cur-prev != want {
			t.Fatalf("after %v the ISN moved by %d, want %d", now, cur-prev, want)
		}
		if !seqGT(cur, prev) {
			t.Fatalf("ISN %d at %v is not after %d", cur, now, prev)
		}
		if ts != ts0 {
			t.Fatalf("timestamp offset changed over time for one 4-tuple: %#x, then %#x", ts0, ts)
		}
	}
	// Within one 4 µs tick the ISN is the same; the clock, not a
	// counter of calls, moves it.
	a, _ := p.initialSeq(id, 5*time.Microsecond)
	b, _ := p.initialSeq(id, 7*time.Microsecond)
	if a != b {
		t.Fatalf("ISNs %d and %d within one tick", a, b)
	}
}

func TestISNDiffersAcrossTuplesAndStacks(t *testing.T) {
	pa, pb := newPair(t, testutil.PairOptions{}), newPair(t, testutil.PairOptions{})
	p, q := protoOf(pa.B), protoOf(pb.B)
	if p.isnKey == q.isnKey || p.cookieKey == q.cookieKey || p.isnKey == p.cookieKey {
		t.Fatal("keys repeat across stacks or purposes")
	}
	// Both pairs' stacks are built from the same fixed seeds, so only
	// the crypto/rand key can tell them apart.
	id := testID(4000)
	x, xts := p.initialSeq(id, time.Second)
	y, yts := q.initialSeq(id, time.Second)
	if x == y || xts == yts {
		t.Fatalf("two stacks gave 4-tuple %v the same ISN %d / TS offset %d", id, x, xts)
	}
	// Neighbouring ports: ISNs and timestamp offsets look unrelated. With
	// a keyed PRF the difference between consecutive ports is uniform,
	// so among 256 pairs none should repeat a previous difference more
	// than a handful of times, and the differences must not be constant.
	seenISN := map[uint32]int{}
	seenTS := map[uint32]bool{}
	prev, _ := p.initialSeq(testID(5000), time.Second)
	for port := uint16(5001); port < 5257; port++ {
		cur, ts := p.initialSeq(testID(port), time.Second)
		seenISN[cur-prev]++
		if seenISN[cur-prev] > 2 {
			t.Fatalf("ISN step %d between neighbouring ports repeats", cur-prev)
		}
		if seenTS[ts] {
			t.Fatalf("timestamp offset %#x repeats across ports", ts)
		}
		seenTS[ts] = true
		prev = cur
	}
}

// TestISNNotPredictableFromAnotherPort plays the attacker of RFC 6528 §1:
// knowing a connection's ISN (and the clock) on one port, guess the ISN
// of a connection on the next port at the same moment. Under the old
// clock-only or seed-derived schemes the guess is exact; here it must
// miss, for every one of many ports.
func TestISNNotPredictableFromAnotherPort(t *testing.T) {
	pair := newPair(t, testutil.PairOptions{})
	c, _, _ := dial(t, pair)
	p := protoOf(pair.A)
	known := c.iss
	now := pair.Manual.Now()
	hits := 0
	for d := uint16(1); d <= 200; d++ {
		id := c.id
		id.LocalPort += d
		actual, _ := p.initialSeq(id, now)
		// Guesses: the same ISN, or the known ISN plus the port
		// difference (a counter per connection).
		if actual == known || actual == known+uint32(d) {
			hits++
		}
	}
	if hits > 0 {
		t.Fatalf("%d of 200 ISNs on other ports guessed from one known ISN", hits)
	}
}

// TestReconnectISNAboveOldSequenceSpace is what TIME-WAIT reuse relies on
// (RFC 9293 §3.10.7.4): after a connection on a 4-tuple ends, the next
// incarnation's ISN, chosen a little later, lies above everything the
// old one sent, and the new SYN gets through without timestamps' help.
func TestReconnectISNAboveOldSequenceSpace(t *testing.T) {
	pair := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, pair)
	data := pattern(100000)
	if got := transfer(t, pair, c, s, data, nil); len(got) != len(data) {
		t.Fatalf("moved %d of %d bytes", len(got), len(data))
	}
	oldMax := c.sndMax
	pair.Manual.Advance(time.Second)
	iss, _ := protoOf(pair.A).initialSeq(c.id, pair.Manual.Now())
	if !seqGT(iss, oldMax) {
		t.Fatalf("new incarnation's ISN %d not above old SND.MAX %d", iss, oldMax)
	}
}

// stripSynTimestamps removes the timestamp option from A's SYNs, so no
// connection negotiates timestamps and only sequence numbers can tell
// incarnations apart.
func stripSynTimestamps(p *testutil.Pair) func(*channel.Endpoint, channel.Packet) []channel.Packet {
	return func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		ip, err := header.ParseIPv4(pkt.Data)
		if from != p.LinkA || err != nil || ip.Protocol() != header.IPv4ProtocolTCP {
			return []channel.Packet{pkt}
		}
		h := header.TCP(ip.Payload())
		if h.Flags()&header.TCPFlagSyn == 0 {
			return []channel.Packet{pkt}
		}
		o, ok := header.ParseTCPOptions(h.OptionBytes())
		if !ok {
			return []channel.Packet{pkt}
		}
		o.HasTS = false
		var ob [40]byte
		opts := ob[:header.EncodeTCPOptions(ob[:], &o)]
		seg := make([]byte, header.TCPMinimumSize+len(opts))
		header.EncodeTCP(seg, &header.TCPFields{SrcPort: h.SourcePort(), DstPort: h.DestinationPort(), Seq: h.Seq(), Ack: h.Ack(),
			Flags: h.Flags(), Window: h.Window(), Options: opts}, testutil.AddrA, testutil.AddrB)
		out := make([]byte, 20+len(seg))
		copy(out[20:], seg)
		header.IPv4(out).Encode(header.IPv4Fields{TotalLength: uint16(len(out)), TTL: 64, Protocol: 6, Src: testutil.AddrA, Dst: testutil.AddrB})
		return []channel.Packet{{Proto: pkt.Proto, Data: out}}
	}
}

// TestTimeWaitReuseByISNAlone: without timestamps, a new SYN on a 4-tuple
// in TIME-WAIT is let through only because its sequence number is above
// the old connection's (RFC 9293 §3.10.7.4); RFC 6528's clock gives it
// that.
func TestTimeWaitReuseByISNAlone(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	strip := stripSynTimestamps(p)
	ln := newEP(t, p.B)
	if err := ln.Bind(tcpip.FullAddress{Port: 80}); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(8); err != nil {
		t.Fatal(err)
	}
	c := newEP(t, p.A)
	c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(strip)
	sep, _, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	s := sep.(*endpoint)
	if c.tsOK || s.tsOK || c.State() != StateEstablished {
		t.Fatalf("first connection: client %v, timestamps %v/%v", c.State(), c.tsOK, s.tsOK)
	}
	data := pattern(50000)
	if got := transfer(t, p, c, s, data, strip); len(got) != len(data) {
		t.Fatalf("moved %d of %d bytes", len(got), len(data))
	}
	s.Close()
	p.Pump(strip)
	c.Close()
	p.Pump(strip)
	if s.State() != StateTimeWait {
		t.Fatalf("server %v, want TIME-WAIT", s.State())
	}
	p.Manual.Advance(time.Second)
	c2 := newEP(t, p.A)
	c2.SetSockOpt(tcpip.ReuseAddressOption, 1)
	if err := c2.Bind(tcpip.FullAddress{Port: c.id.LocalPort}); err != nil {
		t.Fatal(err)
	}
	c2.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	if !seqGT(c2.iss, s.rcvNxt) {
		t.Fatalf("new ISN %d not above the old connection's RCV.NXT %d", c2.iss, s.rcvNxt)
	}
	p.Pump(strip)
	if c2.State() != StateEstablished || s.State() != StateClosed || c2.tsOK {
		t.Fatalf("new connection %v (timestamps %v), old %v", c2.State(), c2.tsOK, s.State())
	}
	if _, _, err := ln.Accept(); err != nil {
		t.Fatalf("Accept of the new incarnation: %v", err)
	}
}

// TestTimestampOffsetHidesUptime: two connections at the same moment on
// different 4-tuples send unrelated TSvals, and neither is the clock.
func TestTimestampOffsetHidesUptime(t *testing.T) {
	pair := newPair(t, testutil.PairOptions{})
	pair.Manual.Advance(1000 * time.Hour)
	c1, _, ln := dial(t, pair)
	c2 := newEP(t, pair.A)
	if err := c2.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80}); err != tcpip.ErrConnectStarted {
		t.Fatal(err)
	}
	pair.Pump(nil)
	if _, _, err := ln.Accept(); err != nil {
		t.Fatal(err)
	}
	uptime := uint32(pair.Manual.Now() / time.Millisecond)
	v1, v2 := c1.tsVal(), c2.tsVal()
	if v1 == uptime || v2 == uptime || v1 == v2 {
		t.Fatalf("TSvals %d, %d at uptime %d ms", v1, v2, uptime)
	}
	if c1.tsOffset == c2.tsOffset {
		t.Fatal("two 4-tuples share a timestamp offset")
	}
}

func BenchmarkInitialSeq(b *testing.B) {
	p := protoOf(newPair(b, testutil.PairOptions{}).B)
	id := testID(4000)
	b.ReportAllocs()
	var sink uint32
	for i := 0; b.Loop(); i++ {
		iss, ts := p.initialSeq(id, time.Duration(i))
		sink += iss ^ ts
	}
	_ = sink
}
