package ipv4_test

import (
	"bytes"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/testutil"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

func ipPacket(proto uint8, id uint16, flags uint16, off int, payload []byte, opts []byte) []byte {
	b := make([]byte, 20+len(opts)+len(payload))
	copy(b[20+len(opts):], payload)
	header.IPv4(b).Encode(header.IPv4Fields{TotalLength: uint16(len(b)), ID: id, Flags: flags, FragOffset: uint16(off), TTL: 64,
		Protocol: proto, Src: testutil.AddrA, Dst: testutil.AddrB, Options: opts})
	return b
}

func echoRequest(payload string) []byte {
	m := make([]byte, 8+len(payload))
	copy(m[8:], payload)
	header.EncodeICMPv4(m, header.ICMPv4Echo, 0, 0x1234<<16|5)
	return m
}

func TestICMPEcho(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ipPacket(header.IPv4ProtocolICMP, 1, 0, 0, echoRequest("ping!"), nil))
	out, ok := p.LinkB.Read()
	if !ok {
		t.Fatal("no echo reply")
	}
	h, err := header.ParseIPv4(out.Data)
	if err != nil || h.DestinationAddress() != testutil.AddrA || h.SourceAddress() != testutil.AddrB {
		t.Fatalf("reply header: %v", err)
	}
	m, ok := header.ParseICMPv4(h.Payload())
	if !ok || m.Type() != header.ICMPv4EchoReply || m.Ident() != 0x1234 || m.Sequence() != 5 || string(m.Payload()) != "ping!" {
		t.Fatalf("bad reply %x", h.Payload())
	}
	// A corrupted request gets nothing.
	bad := echoRequest("x")
	bad[8] ^= 1
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ipPacket(header.IPv4ProtocolICMP, 2, 0, 0, bad, nil))
	if _, ok := p.LinkB.Read(); ok {
		t.Fatal("replied to corrupted echo")
	}
}

func TestEchoOverEthernetResolvesARP(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	// Stack A pings B through the stack's own send path: a UDP datagram
	// to B's closed port triggers ARP then delivery then ICMP back.
	ep, _ := p.A.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	defer ep.Close()
	ep.Write(bytes.NewReader([]byte("x")), tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: testutil.AddrB, Port: 1}})
	p.Pump(nil)
	if mac, ok := p.A.NIC(1).NeighborEntry(testutil.AddrB); !ok || mac != testutil.MACB {
		t.Fatalf("A did not learn B's MAC: %v %v", mac, ok)
	}
	if mac, ok := p.B.NIC(1).NeighborEntry(testutil.AddrA); !ok || mac != testutil.MACA {
		t.Fatalf("B did not learn A's MAC from the request: %v", mac)
	}
	if p.B.NetworkProtocol(ipv4.ProtocolNumber).(*ipv4.Protocol).Stats().ICMPErrorsSent.Load() != 1 {
		t.Fatal("datagram queued behind ARP was not delivered")
	}
}

func TestARPFailureDropsQueued(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	ep, _ := p.A.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	defer ep.Close()
	ghost := tcpip.ParseAddress("10.0.0.99")
	ep.Write(bytes.NewReader([]byte("x")), tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: ghost, Port: 1}})
	requests := p.LinkA.Drain()
	for i := 0; i < 5; i++ {
		p.Manual.Advance(time.Second)
		requests += p.LinkA.Drain()
	}
	if requests != 3 {
		t.Fatalf("%d ARP requests, want 3", requests)
	}
	if p.A.Stats().NeighborDrops.Load() != 1 {
		t.Fatalf("neighbor drops %d, want 1", p.A.Stats().NeighborDrops.Load())
	}
}

func udpDatagram(payload []byte) []byte {
	u := make([]byte, 8+len(payload))
	copy(u[8:], payload)
	header.EncodeUDP(u, 1000, 2000, testutil.AddrA, testutil.AddrB)
	return u
}

func TestFragmentReassemblyAndAttacks(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	ep, _ := p.B.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	defer ep.Close()
	ep.Bind(tcpip.FullAddress{Port: 2000})
	data := bytes.Repeat([]byte("fragment"), 100)
	dg := udpDatagram(data)
	inject := func(id uint16, off, end int, more bool) {
		fl := uint16(0)
		if more {
			fl = header.IPv4FlagMoreFragments
		}
		p.LinkB.InjectInbound(ipv4.ProtocolNumber, ipPacket(header.IPv4ProtocolUDP, id, fl, off, dg[off:end], nil))
	}
	recv := func() []byte {
		var b bytes.Buffer
		if _, err := ep.Read(&b, tcpip.ReadOptions{}); err != nil {
			return nil
		}
		return b.Bytes()
	}
	// Reverse order, with a duplicate.
	inject(1, 600, len(dg), false)
	inject(1, 200, 600, true)
	inject(1, 200, 600, true)
	inject(1, 0, 200, true)
	if got := recv(); !bytes.Equal(got, data) {
		t.Fatalf("reassembled %d bytes, want %d", len(got), len(data))
	}
	// Overlap that rewrites the UDP header area: the datagram is dropped.
	inject(2, 0, 200, true)
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ipPacket(header.IPv4ProtocolUDP, 2, header.IPv4FlagMoreFragments, 0, bytes.Repeat([]byte{0xee}, 64), nil))
	inject(2, 200, len(dg), false)
	if got := recv(); got != nil {
		t.Fatal("overlapping fragments were accepted")
	}
	// A lone fragment times out and frees its memory (so does the tail
	// of datagram 2, left behind by the overlap).
	proto := p.B.NetworkProtocol(ipv4.ProtocolNumber).(*ipv4.Protocol)
	before := proto.Reassembler().InProgress()
	inject(3, 0, 200, true)
	if proto.Reassembler().InProgress() != before+1 {
		t.Fatal("fragment not held")
	}
	p.Manual.Advance(31 * time.Second)
	if proto.Reassembler().InProgress() != 0 || p.B.Stats().ReassemblyTimeouts.Load() != uint64(before+1) {
		t.Fatal("fragment did not time out")
	}
}

func TestSourceRouteAndNotForUsDropped(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	lsrr := []byte{header.IPv4OptionLSRR, 7, 4, 1, 2, 3, 4, 0}
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, ipPacket(header.IPv4ProtocolICMP, 1, 0, 0, echoRequest("x"), lsrr))
	other := ipPacket(header.IPv4ProtocolICMP, 2, 0, 0, echoRequest("y"), nil)
	copy(other[16:20], []byte{10, 0, 0, 77})
	header.IPv4(other).SetChecksum()
	p.LinkB.InjectInbound(ipv4.ProtocolNumber, other)
	if _, ok := p.LinkB.Read(); ok {
		t.Fatal("answered a source-routed or foreign packet")
	}
	st := p.B.NetworkProtocol(ipv4.ProtocolNumber).(*ipv4.Protocol).Stats()
	if st.SourceRouted.Load() != 1 || st.NotForUs.Load() != 1 {
		t.Fatalf("counters: source-routed %d, not-for-us %d", st.SourceRouted.Load(), st.NotForUs.Load())
	}
}

func FuzzIPv4Receive(f *testing.F) {
	f.Add(ipPacket(header.IPv4ProtocolICMP, 1, 0, 0, echoRequest("x"), nil))
	f.Add(ipPacket(header.IPv4ProtocolUDP, 1, header.IPv4FlagMoreFragments, 0, udpDatagram(make([]byte, 16)), nil))
	p := testutil.NewPair(testutil.PairOptions{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p.LinkB.InjectInbound(ipv4.ProtocolNumber, b)
		p.LinkB.Drain()
	})
}

// deliverSplit hands B's NIC a packet cut at cut, as the loopback link
// delivers a locally sent one: headers in Data, the rest in Tail.
func deliverSplit(p *testutil.Pair, b []byte, cut int) {
	pkt := stack.NewSplitInboundPacket(b[:cut], b[cut:])
	p.B.NIC(1).DeliverNetworkPacket(tcpip.LinkAddress{}, ipv4.ProtocolNumber, pkt)
}

// Split packets reach every consumer whole: a UDP datagram and a
// fragment (joined on the way), an ICMP echo (answered), while a split
// whose total length disagrees with the parts is dropped as malformed.
func TestSplitInboundPackets(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	ep, _ := p.B.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	defer ep.Close()
	ep.Bind(tcpip.FullAddress{Port: 2000})
	recv := func() []byte {
		var b bytes.Buffer
		if _, err := ep.Read(&b, tcpip.ReadOptions{}); err != nil {
			return nil
		}
		return b.Bytes()
	}
	data := bytes.Repeat([]byte("split"), 50)
	pkt := ipPacket(header.IPv4ProtocolUDP, 1, 0, 0, udpDatagram(data), nil)
	deliverSplit(p, pkt, 28)
	if got := recv(); !bytes.Equal(got, data) {
		t.Fatalf("split datagram: got %d bytes, want %d", len(got), len(data))
	}
	dg := udpDatagram(data)
	deliverSplit(p, ipPacket(header.IPv4ProtocolUDP, 2, header.IPv4FlagMoreFragments, 0, dg[:128], nil), 30)
	deliverSplit(p, ipPacket(header.IPv4ProtocolUDP, 2, 0, 128, dg[128:], nil), 20)
	if got := recv(); !bytes.Equal(got, data) {
		t.Fatalf("split fragments: got %d bytes, want %d", len(got), len(data))
	}
	deliverSplit(p, ipPacket(header.IPv4ProtocolICMP, 3, 0, 0, echoRequest("ping!"), nil), 24)
	out, ok := p.LinkB.Read()
	if !ok {
		t.Fatal("no reply to a split echo request")
	}
	if h, err := header.ParseIPv4(out.Data); err != nil || !bytes.HasSuffix(h.Payload(), []byte("ping!")) {
		t.Fatalf("echo reply %x: %v", out.Data, err)
	}
	proto := p.B.NetworkProtocol(ipv4.ProtocolNumber).(*ipv4.Protocol)
	before := proto.Stats().Malformed.Load()
	bad := ipPacket(header.IPv4ProtocolUDP, 4, 0, 0, udpDatagram(data), nil)
	pkt2 := stack.NewSplitInboundPacket(bad[:28], bad[28:len(bad)-1])
	p.B.NIC(1).DeliverNetworkPacket(tcpip.LinkAddress{}, ipv4.ProtocolNumber, pkt2)
	if proto.Stats().Malformed.Load() != before+1 || recv() != nil {
		t.Fatal("a split packet shorter than its total length was not dropped")
	}
}
