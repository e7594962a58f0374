package arp_test

import (
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/arp"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

func frame(op uint16, sha tcpip.LinkAddress, spa tcpip.Address, tpa tcpip.Address, dst tcpip.LinkAddress) []byte {
	f := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(f).Encode(header.EthernetFields{Src: sha, Dst: dst, Type: arp.ProtocolNumber})
	header.EncodeARP(f[14:], op, sha, spa, tcpip.LinkAddress{}, tpa)
	return f
}

func TestRepliesOnlyForOwnAddress(t *testing.T) {
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	other := tcpip.LinkAddress{2, 9, 9, 9, 9, 9}
	p.LinkB.InjectInbound(0, frame(header.ARPRequest, other, tcpip.ParseAddress("10.0.0.9"), tcpip.ParseAddress("10.0.0.77"), tcpip.BroadcastLinkAddress))
	if _, ok := p.LinkB.Read(); ok {
		t.Fatal("answered a request for someone else's address")
	}
	if _, ok := p.B.NIC(1).NeighborEntry(tcpip.ParseAddress("10.0.0.9")); ok {
		t.Fatal("learned a sender from a request not aimed at us (RFC 826 merge rule)")
	}
	p.LinkB.InjectInbound(0, frame(header.ARPRequest, other, tcpip.ParseAddress("10.0.0.9"), testutil.AddrB, tcpip.BroadcastLinkAddress))
	out, ok := p.LinkB.Read()
	if !ok {
		t.Fatal("no reply")
	}
	eth, _ := header.ParseEthernet(out.Data)
	a, ok := header.ParseARP(out.Data[14:])
	if !ok || a.Op() != header.ARPReply || eth.DestinationAddress() != other || a.SenderHardware() != testutil.MACB || a.SenderProtocol() != testutil.AddrB {
		t.Fatalf("bad reply %x", out.Data)
	}
	if mac, ok := p.B.NIC(1).NeighborEntry(tcpip.ParseAddress("10.0.0.9")); !ok || mac != other {
		t.Fatal("requester not learned")
	}
}

func FuzzARPReceive(f *testing.F) {
	f.Add(frame(header.ARPRequest, tcpip.LinkAddress{2}, tcpip.ParseAddress("10.0.0.9"), testutil.AddrB, tcpip.BroadcastLinkAddress))
	p := testutil.NewPair(testutil.PairOptions{Ethernet: true})
	f.Fuzz(func(t *testing.T, b []byte) {
		p.LinkB.InjectInbound(0, b)
		p.LinkB.Drain()
	})
}
