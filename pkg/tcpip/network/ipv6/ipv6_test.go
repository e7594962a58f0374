package ipv6_test

import (
	"bytes"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/testutil"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

func packet(next uint8, payload []byte, hops uint8, dst tcpip.Address) []byte {
	b := make([]byte, 40+len(payload))
	header.IPv6(b).Encode(header.IPv6Fields{PayloadLength: uint16(len(payload)), NextHeader: next, HopLimit: hops, Src: testutil.AddrA6, Dst: dst})
	copy(b[40:], payload)
	return b
}

func TestICMPv6Echo(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	m := make([]byte, 12)
	copy(m[8:], "ping")
	header.EncodeICMPv6(m, header.ICMPv6EchoRequest, 0, 3<<16|4, testutil.AddrA6, testutil.AddrB6)
	p.LinkB.InjectInbound(ipv6.ProtocolNumber, packet(header.IPv6ProtocolICMP, m, 64, testutil.AddrB6))
	out, ok := p.LinkB.Read()
	if !ok {
		t.Fatal("no reply")
	}
	h, err := header.ParseIPv6(out.Data)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := header.ParseICMPv6(h.Payload(), h.SourceAddress(), h.DestinationAddress())
	if !ok || r.Type() != header.ICMPv6EchoReply || r.Ident() != 3 || r.Sequence() != 4 || string(r.Payload()) != "ping" {
		t.Fatalf("reply %x", h.Payload())
	}
}

func TestNDPResolutionAndUDP(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	srv, _ := p.B.NewEndpoint(udp.ProtocolNumber, ipv6.ProtocolNumber, nil)
	defer srv.Close()
	if err := srv.Bind(tcpip.FullAddress{Port: 53}); err != nil {
		t.Fatal(err)
	}
	cli, _ := p.A.NewEndpoint(udp.ProtocolNumber, ipv6.ProtocolNumber, nil)
	defer cli.Close()
	if err := cli.Connect(tcpip.FullAddress{Addr: testutil.AddrB6, Port: 53}); err != nil {
		t.Fatal(err)
	}
	cli.Write(bytes.NewReader([]byte("v6")), tcpip.WriteOptions{})
	p.Pump(nil)
	var b bytes.Buffer
	res, err := srv.Read(&b, tcpip.ReadOptions{})
	if err != nil || b.String() != "v6" || res.RemoteAddr.Addr != testutil.AddrA6 {
		t.Fatalf("read %q from %v: %v", b.String(), res.RemoteAddr, err)
	}
	if mac, ok := p.A.NIC(1).NeighborEntry(testutil.AddrB6); !ok || mac != testutil.MACB {
		t.Fatalf("NDP did not resolve: %v %v", mac, ok)
	}
	st := p.B.NetworkProtocol(ipv6.ProtocolNumber).(*ipv6.Protocol).Stats()
	if st.NSReceived.Load() != 1 || st.NASent.Load() != 1 {
		t.Fatalf("NS %d NA %d", st.NSReceived.Load(), st.NASent.Load())
	}
}

func TestNDPRejectsLowHopLimit(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	mac := testutil.MACA
	body := make([]byte, 32)
	n := header.EncodeNDPNeighbor(body, header.ICMPv6NeighborSolicit, 0, testutil.AddrB6, &mac)
	dst := ipv6.SolicitedNodeAddress(testutil.AddrB6)
	header.SetICMPv6Checksum(body[:n], testutil.AddrA6, dst)
	frame := func(hops uint8) []byte {
		ip := packet(header.IPv6ProtocolICMP, body[:n], hops, dst)
		f := make([]byte, 14+len(ip))
		header.Ethernet(f).Encode(header.EthernetFields{Src: testutil.MACA, Dst: tcpip.LinkAddress{0x33, 0x33, 0xff, 0, 0, 2}, Type: ipv6.ProtocolNumber})
		copy(f[14:], ip)
		return f
	}
	p.LinkB.InjectInbound(0, frame(64))
	if _, ok := p.LinkB.Read(); ok {
		t.Fatal("answered an NS that was forwarded (hop limit 64)")
	}
	p.LinkB.InjectInbound(0, frame(255))
	if _, ok := p.LinkB.Read(); !ok {
		t.Fatal("no NA for a valid NS")
	}
}

func TestFragmentedUDP(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	srv, _ := p.B.NewEndpoint(udp.ProtocolNumber, ipv6.ProtocolNumber, nil)
	defer srv.Close()
	srv.Bind(tcpip.FullAddress{Port: 7})
	data := bytes.Repeat([]byte("sixfrags"), 40)
	u := make([]byte, 8+len(data))
	copy(u[8:], data)
	header.EncodeUDP(u, 1, 7, testutil.AddrA6, testutil.AddrB6)
	frag := func(off, end int, more bool) []byte {
		fh := make([]byte, 8)
		fh[0] = header.IPv4ProtocolUDP
		v := uint16(off/8) << 3
		if more {
			v |= 1
		}
		fh[2], fh[3] = byte(v>>8), byte(v)
		fh[7] = 99
		return packet(header.IPv6ExtFragment, append(fh, u[off:end]...), 64, testutil.AddrB6)
	}
	p.LinkB.InjectInbound(ipv6.ProtocolNumber, frag(160, len(u), false))
	p.LinkB.InjectInbound(ipv6.ProtocolNumber, frag(0, 160, true))
	var b bytes.Buffer
	if _, err := srv.Read(&b, tcpip.ReadOptions{}); err != nil || !bytes.Equal(b.Bytes(), data) {
		t.Fatalf("reassembled %d bytes: %v", b.Len(), err)
	}
}

func FuzzIPv6Receive(f *testing.F) {
	f.Add(packet(header.IPv6ExtHopByHop, []byte{59, 0, 1, 4, 0, 0, 0, 0}, 64, testutil.AddrB6))
	f.Add(packet(header.IPv6ExtFragment, []byte{17, 0, 0, 1, 0, 0, 0, 1, 0, 0}, 64, testutil.AddrB6))
	p := testutil.NewPair(testutil.PairOptions{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p.LinkB.InjectInbound(ipv6.ProtocolNumber, b)
		p.LinkB.Drain()
	})
}
