package header

import (
	"bytes"
	"encoding/hex"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
)

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A real IPv4 header whose checksum is 0xb861.
const knownIPv4 = "450000730000400040110000c0a80001c0a800c7"

func TestIPv4KnownChecksum(t *testing.T) {
	b := append(mustHex(t, knownIPv4), make([]byte, 0x73-20)...)
	IPv4(b).SetChecksum()
	if b[10] != 0xb8 || b[11] != 0x61 {
		t.Fatalf("checksum %02x%02x, want b861", b[10], b[11])
	}
	h, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Protocol() != IPv4ProtocolUDP || h.SourceAddress() != tcpip.ParseAddress("192.168.0.1") || h.Flags() != IPv4FlagDontFragment {
		t.Fatalf("fields wrong: proto %d src %s flags %x", h.Protocol(), h.SourceAddress(), h.Flags())
	}
	b[15] ^= 1
	if _, err := ParseIPv4(b); err != ErrIPv4Checksum {
		t.Fatalf("corrupted header: err %v, want checksum error", err)
	}
}

func TestIPv4RoundTripWithOptions(t *testing.T) {
	opts := []byte{IPv4OptionNOP, IPv4OptionRouterAlert, 4, 0, 0, 0, 0, 0}
	b := make([]byte, 28+5)
	IPv4(b).Encode(IPv4Fields{TotalLength: uint16(len(b)), ID: 77, Flags: IPv4FlagMoreFragments, FragOffset: 1480, TTL: 9, Protocol: 6,
		Src: tcpip.ParseAddress("10.0.0.1"), Dst: tcpip.ParseAddress("10.0.0.2"), Options: opts})
	h, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.HeaderLength() != 28 || h.ID() != 77 || !h.MoreFragments() || h.FragmentOffset() != 1480 || h.TTL() != 9 || len(h.Payload()) != 5 {
		t.Fatalf("decoded wrong: hl %d id %d off %d ttl %d", h.HeaderLength(), h.ID(), h.FragmentOffset(), h.TTL())
	}
	it := h.Options()
	typ, data, ok, err := it.Next()
	if !ok || err != nil || typ != IPv4OptionRouterAlert || len(data) != 2 {
		t.Fatalf("option: %d %v %v %v", typ, data, ok, err)
	}
	// An option whose length overruns the header must be rejected.
	bad := append([]byte(nil), b...)
	bad[21], bad[22] = IPv4OptionTimestamp, 40
	IPv4(bad).SetChecksum()
	if _, err := ParseIPv4(bad); err != ErrIPv4Options {
		t.Fatalf("overrunning option: err %v", err)
	}
}

func TestIPv4Rejects(t *testing.T) {
	good := make([]byte, 20)
	IPv4(good).Encode(IPv4Fields{TotalLength: 20, TTL: 1, Src: tcpip.ParseAddress("1.1.1.1"), Dst: tcpip.ParseAddress("2.2.2.2")})
	cases := map[string]func([]byte){
		"short version": func(b []byte) { b[0] = 0x65 },
		"ihl too small": func(b []byte) { b[0] = 0x44 },
		"ihl past end":  func(b []byte) { b[0] = 0x46 },
		"length big":    func(b []byte) { b[2], b[3] = 0, 21 },
		"length small":  func(b []byte) { b[2], b[3] = 0, 19 },
	}
	for name, mut := range cases {
		b := append([]byte(nil), good...)
		mut(b)
		if _, err := ParseIPv4(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseIPv4(good[:19]); err != ErrIPv4Short {
		t.Errorf("short: %v", err)
	}
}

func TestTCPOptionsRoundTrip(t *testing.T) {
	in := TCPOptions{MSS: 1460, HasMSS: true, WindowScale: 7, HasWS: true, SACKPermitted: true, HasTS: true, TSVal: 1, TSEcr: 2}
	var buf [40]byte
	n := EncodeTCPOptions(buf[:], &in)
	if n%4 != 0 {
		t.Fatalf("options length %d not multiple of 4", n)
	}
	out, ok := ParseTCPOptions(buf[:n])
	if !ok || out != in {
		t.Fatalf("round trip: got %+v ok %v", out, ok)
	}
	sack := TCPOptions{HasTS: true, TSVal: 5, NumSACKBlocks: 4}
	for i := range sack.SACKBlocks {
		sack.SACKBlocks[i] = SACKBlock{uint32(i * 100), uint32(i*100 + 50)}
	}
	n = EncodeTCPOptions(buf[:], &sack)
	out, ok = ParseTCPOptions(buf[:n])
	if !ok || out.NumSACKBlocks != 3 || out.SACKBlocks[2] != sack.SACKBlocks[2] || out.TSVal != 5 {
		t.Fatalf("sack with ts: %+v (n=%d)", out, n)
	}
	if _, ok := ParseTCPOptions([]byte{TCPOptionMSS, 0}); ok {
		t.Fatal("zero-length option accepted")
	}
	if _, ok := ParseTCPOptions([]byte{TCPOptionMSS, 9, 0}); ok {
		t.Fatal("overrunning option accepted")
	}
	if o, _ := ParseTCPOptions([]byte{TCPOptionWS, 3, 200, 0}); o.WindowScale != TCPMaxWindowScale {
		t.Fatalf("window scale not clamped: %d", o.WindowScale)
	}
}

func TestTCPAndUDPChecksum(t *testing.T) {
	src, dst := tcpip.ParseAddress("10.0.0.1"), tcpip.ParseAddress("10.0.0.2")
	var ob [40]byte
	opts := ob[:EncodeTCPOptions(ob[:], &TCPOptions{MSS: 536, HasMSS: true})]
	seg := make([]byte, 20+len(opts)+3)
	copy(seg[24:], "abc")
	EncodeTCP(seg, &TCPFields{SrcPort: 1, DstPort: 2, Seq: 100, Ack: 200, Flags: TCPFlagSyn | TCPFlagAck, Window: 999, Options: opts}, src, dst)
	h, ok := ParseTCP(seg)
	if !ok || !h.IsChecksumValid(src, dst) || h.Seq() != 100 || h.Ack() != 200 || string(h.Payload()) != "abc" || h.Window() != 999 {
		t.Fatalf("tcp: ok %v valid %v", ok, h.IsChecksumValid(src, dst))
	}
	if h.IsChecksumValid(src, tcpip.ParseAddress("10.0.0.3")) {
		t.Fatal("checksum valid with wrong pseudo-header")
	}
	u := make([]byte, 8+4)
	copy(u[8:], "ping")
	EncodeUDP(u, 53, 9999, src, dst)
	uh, ok := ParseUDP(u)
	if !ok || !uh.IsChecksumValid(src, dst) || string(uh.Payload()) != "ping" {
		t.Fatal("udp round trip")
	}
	u[9] ^= 0xff
	if uh.IsChecksumValid(src, dst) {
		t.Fatal("corrupted udp accepted")
	}
}

func TestARPRoundTrip(t *testing.T) {
	b := make([]byte, ARPSize)
	mac := tcpip.ParseLinkAddress("02:00:00:00:00:01")
	EncodeARP(b, ARPRequest, mac, tcpip.ParseAddress("10.0.0.1"), tcpip.LinkAddress{}, tcpip.ParseAddress("10.0.0.2"))
	a, ok := ParseARP(b)
	if !ok || a.Op() != ARPRequest || a.SenderHardware() != mac || a.TargetProtocol() != tcpip.ParseAddress("10.0.0.2") {
		t.Fatal("arp round trip")
	}
	b[4] = 8
	if _, ok := ParseARP(b); ok {
		t.Fatal("bad hardware length accepted")
	}
}

func TestIPv6ExtensionChain(t *testing.T) {
	// Hop-by-hop (8 bytes, padN) -> Fragment -> UDP.
	payload := []byte{
		IPv6ExtFragment, 0, 1, 4, 0, 0, 0, 0,
		IPv4ProtocolUDP, 0, 0x05, 0x01, 0, 0, 0, 42,
		1, 2, 3, 4, 0, 12, 0, 0, 'h', 'i', '!', '!',
	}
	b := make([]byte, 40+len(payload))
	IPv6(b).Encode(IPv6Fields{PayloadLength: uint16(len(payload)), NextHeader: IPv6ExtHopByHop, HopLimit: 64,
		Src: tcpip.ParseAddress("fe80::1"), Dst: tcpip.ParseAddress("fe80::2")})
	copy(b[40:], payload)
	h, err := ParseIPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	it := h.ExtensionHeaders()
	var kinds []uint8
	var frag IPv6ExtHeader
	for {
		e, ok, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		kinds = append(kinds, e.Type)
		if e.Type == IPv6ExtFragment {
			frag = e
		}
	}
	proto, up, off := it.UpperLayer()
	if !bytes.Equal(kinds, []byte{IPv6ExtHopByHop, IPv6ExtFragment}) || proto != IPv4ProtocolUDP || off != 16 || len(up) != 12 {
		t.Fatalf("chain %v proto %d off %d len %d", kinds, proto, off, len(up))
	}
	if frag.FragmentOffset() != 1280 || !frag.MoreFragments() || frag.FragmentID() != 42 {
		t.Fatalf("fragment: off %d m %v id %d", frag.FragmentOffset(), frag.MoreFragments(), frag.FragmentID())
	}
	if _, err := ParseIPv6(b[:50]); err != ErrIPv6Length {
		t.Fatalf("truncated: %v", err)
	}
}

func TestNDPAndICMPv6(t *testing.T) {
	src, dst := tcpip.ParseAddress("fe80::1"), tcpip.ParseAddress("ff02::1:ff00:2")
	mac := tcpip.ParseLinkAddress("02:00:00:00:00:01")
	b := make([]byte, 32)
	n := EncodeNDPNeighbor(b, ICMPv6NeighborSolicit, 0, tcpip.ParseAddress("fe80::2"), &mac)
	SetICMPv6Checksum(b[:n], src, dst)
	m, ok := ParseICMPv6(b[:n], src, dst)
	if !ok {
		t.Fatal("checksum")
	}
	ns, ok := ParseNDPNeighbor(m)
	if !ok || ns.Target != tcpip.ParseAddress("fe80::2") || !ns.HasLinkAddress || ns.LinkAddress != mac {
		t.Fatalf("ns: %+v %v", ns, ok)
	}
	b[25] = 0 // zero-length option: must be rejected
	if _, ok := ParseNDPNeighbor(ICMPv6(b[:n])); ok {
		t.Fatal("zero-length NDP option accepted")
	}
	e := make([]byte, 12)
	copy(e[8:], "ping")
	EncodeICMPv6(e, ICMPv6EchoRequest, 0, 7<<16|9, src, dst)
	em, ok := ParseICMPv6(e, src, dst)
	if !ok || em.Ident() != 7 || em.Sequence() != 9 {
		t.Fatal("echo")
	}
}

func TestICMPv4AndEthernet(t *testing.T) {
	b := make([]byte, 12)
	copy(b[8:], "data")
	EncodeICMPv4(b, ICMPv4Echo, 0, 1<<16|2)
	m, ok := ParseICMPv4(b)
	if !ok || m.Type() != ICMPv4Echo || m.Ident() != 1 || m.Sequence() != 2 {
		t.Fatal("icmp echo")
	}
	b[9]++
	if _, ok := ParseICMPv4(b); ok {
		t.Fatal("bad checksum accepted")
	}
	e := make([]byte, 14)
	Ethernet(e).Encode(EthernetFields{Src: tcpip.LinkAddress{1}, Dst: tcpip.BroadcastLinkAddress, Type: EthertypeARP})
	eh, ok := ParseEthernet(e)
	if !ok || eh.Type() != EthertypeARP || eh.DestinationAddress() != tcpip.BroadcastLinkAddress {
		t.Fatal("ethernet")
	}
}

func TestChecksumOddAndCombine(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	whole := Checksum(data, 0)
	split := ChecksumCombine(Checksum(data[:4], 0), Checksum(data[4:], 0))
	if whole != split {
		t.Fatalf("combine %x != %x", split, whole)
	}
	if Checksum([]byte{0xab}, 0) != 0xab00 {
		t.Fatal("odd byte not padded")
	}
}

func TestSplitHeaderEncodersMatchContiguous(t *testing.T) {
	src, dst := tcpip.ParseAddress("10.1.1.1"), tcpip.ParseAddress("10.2.2.2")
	payload := []byte("odd-length payload!")
	whole := make([]byte, 8+len(payload))
	copy(whole[8:], payload)
	EncodeUDP(whole, 5, 6, src, dst)
	h := make([]byte, 8)
	EncodeUDPHeader(h, 5, 6, len(payload), Checksum(payload, 0), src, dst)
	if !bytes.Equal(h, whole[:8]) {
		t.Fatalf("udp split %x != %x", h, whole[:8])
	}
	f := TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagAck, Window: 5}
	tw := make([]byte, 20+len(payload))
	copy(tw[20:], payload)
	EncodeTCP(tw, &f, src, dst)
	th := make([]byte, 20)
	EncodeTCPHeader(th, &f, len(payload), Checksum(payload, 0), src, dst)
	if !bytes.Equal(th, tw[:20]) {
		t.Fatalf("tcp split %x != %x", th, tw[:20])
	}
}
