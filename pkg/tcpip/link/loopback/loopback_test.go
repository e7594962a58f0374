package loopback

import (
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

type recorder chan []byte

func (r recorder) DeliverNetworkPacket(_ tcpip.LinkAddress, _ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r <- pkt.Data
}

func TestLoopsBackAndCloses(t *testing.T) {
	e := New()
	rec := make(recorder, 1)
	e.Attach(rec)
	pkt := stack.NewOutboundPacket(4, []byte("data"))
	copy(pkt.Header.Prepend(4), "head")
	if err := e.WritePacket(tcpip.LinkAddress{}, 0x800, pkt); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-rec:
		if string(got) != "headdata" {
			t.Fatalf("got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("packet not looped back")
	}
	e.Close()
	if err := e.WritePacket(tcpip.LinkAddress{}, 0x800, stack.NewOutboundPacket(0, []byte("x"))); err != tcpip.ErrClosedForSend {
		t.Fatalf("write after close: %v", err)
	}
	e.Close() // idempotent
}
