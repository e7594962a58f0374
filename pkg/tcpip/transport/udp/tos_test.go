package udp_test

import (
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/testutil"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

func TestTOSMarksOutgoingPackets(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{})
	cli := newEP(t, p.A)
	if err := cli.SetSockOpt(tcpip.TOSOption, 0xb8); err != nil {
		t.Fatal(err)
	}
	if v, _ := cli.GetSockOpt(tcpip.TOSOption); v != 0xb8 {
		t.Errorf("TOSOption reads back %#x", v)
	}
	if err := cli.SetSockOpt(tcpip.TOSOption, 256); err == nil {
		t.Error("TOS 256 accepted")
	}
	cli.Write(strings.NewReader("x"), tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: testutil.AddrB, Port: 9}})
	pkt, ok := p.LinkA.Read()
	if !ok {
		t.Fatal("nothing sent")
	}
	if tos := header.IPv4(pkt.Data).TOS(); tos != 0xb8 {
		t.Errorf("IPv4 TOS = %#x, want 0xb8", tos)
	}

	ep6, err := p.A.NewEndpoint(udp.ProtocolNumber, ipv6.ProtocolNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ep6.Close()
	ep6.SetSockOpt(tcpip.TOSOption, 0x28)
	ep6.Write(strings.NewReader("x"), tcpip.WriteOptions{To: &tcpip.FullAddress{Addr: testutil.AddrB6, Port: 9}})
	for {
		pkt, ok := p.LinkA.Read()
		if !ok {
			t.Fatal("no IPv6 datagram sent")
		}
		if h := header.IPv6(pkt.Data); pkt.Proto == ipv6.ProtocolNumber && h.NextHeader() == uint8(udp.ProtocolNumber) {
			if tc := h.TrafficClass(); tc != 0x28 {
				t.Errorf("IPv6 traffic class = %#x, want 0x28", tc)
			}
			return
		}
	}
}
