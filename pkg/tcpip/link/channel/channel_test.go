package channel

import (
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

type recorder struct {
	got   [][]byte
	src   []tcpip.LinkAddress
	proto []tcpip.NetworkProtocolNumber
}

func (r *recorder) DeliverNetworkPacket(src tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r.got = append(r.got, pkt.Data)
	r.src = append(r.src, src)
	r.proto = append(r.proto, proto)
}

func TestEthernetFramingAndFiltering(t *testing.T) {
	a := New(1, 1500, tcpip.LinkAddress{2, 0, 0, 0, 0, 1}, true)
	b := New(1, 1500, tcpip.LinkAddress{2, 0, 0, 0, 0, 2}, true)
	rb := &recorder{}
	b.Attach(rb)
	pkt := stack.NewOutboundPacket(a.MaxHeaderLength(), []byte("ip"))
	a.WritePacket(b.LinkAddress(), header.EthertypeIPv4, pkt)
	// The queue holds one packet: the second is dropped and counted.
	a.WritePacket(b.LinkAddress(), header.EthertypeIPv4, stack.NewOutboundPacket(a.MaxHeaderLength(), []byte("x")))
	if a.Dropped.Load() != 1 {
		t.Fatalf("dropped %d", a.Dropped.Load())
	}
	if n := Pump(a, b, nil); n != 1 {
		t.Fatalf("pumped %d", n)
	}
	if len(rb.got) != 1 || string(rb.got[0]) != "ip" || rb.src[0] != a.LinkAddress() || rb.proto[0] != header.EthertypeIPv4 {
		t.Fatalf("delivered %q from %v proto %#x", rb.got, rb.src, rb.proto)
	}
	// Frames for another unicast address, and runts, are ignored.
	a.WritePacket(tcpip.LinkAddress{2, 0, 0, 0, 0, 9}, header.EthertypeIPv4, stack.NewOutboundPacket(14, []byte("no")))
	Pump(a, b, nil)
	b.InjectInbound(0, []byte{1, 2, 3})
	if len(rb.got) != 1 {
		t.Fatalf("accepted %d frames", len(rb.got))
	}
}
