package loopback

import (
	"sync/atomic"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
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

type splitRecorder struct {
	got chan *stack.PacketBuffer
}

func (r *splitRecorder) DeliverNetworkPacket(_ tcpip.LinkAddress, _ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r.got <- pkt
}

// An immutable payload arrives as the sender's own bytes, apart from the
// headers, with its chunk referenced until delivery returns; a packet the
// sender defers waits for Flush, on the flushing goroutine.
func TestSplitAndDeferredDelivery(t *testing.T) {
	e := New()
	defer e.Close()
	rec := &splitRecorder{got: make(chan *stack.PacketBuffer, 4)}
	e.Attach(rec)
	chunk := buffer.NewChunk(buffer.MinPooledChunk)
	payload := chunk.Bytes()[:5]
	copy(payload, "hello")
	pkt := stack.NewOutboundPacket(4, payload)
	copy(pkt.Header.Prepend(4), "head")
	pkt.PayloadImmutable, pkt.Chunk, pkt.DeferDelivery = true, chunk, true
	if err := e.WritePacket(tcpip.LinkAddress{}, 0x800, pkt); err != nil {
		t.Fatal(err)
	}
	// Deferred: nothing arrives until someone flushes.
	select {
	case <-rec.got:
		t.Fatal("deferred packet delivered before Flush")
	case <-time.After(50 * time.Millisecond):
	}
	chunk.DecRef() // the sender's own reference; the queued packet holds one
	e.Flush()
	select {
	case got := <-rec.got:
		if string(got.Data) != "head" || string(got.Tail) != "hello" || &got.Tail[0] != &payload[0] {
			t.Fatalf("got head %q tail %q (shared %v)", got.Data, got.Tail, &got.Tail[0] == &payload[0])
		}
		if got.Chunk != chunk || !got.TransportChecksumTrusted {
			t.Fatalf("chunk %p (want %p), checksum trusted %v", got.Chunk, chunk, got.TransportChecksumTrusted)
		}
	default:
		t.Fatal("Flush did not deliver the packet")
	}
	// Delivery returned: the link dropped its reference, the last one.
	defer func() {
		if recover() == nil {
			t.Fatal("the link kept its chunk reference after delivery")
		}
	}()
	chunk.DecRef()
}

// Packets arrive in the order written, whoever delivers them.
func TestDeliveryOrder(t *testing.T) {
	e := New()
	defer e.Close()
	rec := &splitRecorder{got: make(chan *stack.PacketBuffer, 100)}
	e.Attach(rec)
	for i := 0; i < 100; i++ {
		pkt := stack.NewOutboundPacket(0, []byte{byte(i)})
		pkt.DeferDelivery = i%3 == 0
		if err := e.WritePacket(tcpip.LinkAddress{}, 0x800, pkt); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			e.Flush()
		}
	}
	e.Flush()
	for i := 0; i < 100; i++ {
		select {
		case got := <-rec.got:
			if len(got.Data) != 1 || got.Data[0] != byte(i) {
				t.Fatalf("packet %d: got %v", i, got.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d not delivered", i)
		}
	}
}

// chainRecorder answers each packet but the last with the next one, as
// a receiver answers segments with ACKs, so a drain never runs dry.
type chainRecorder struct {
	e     *Endpoint
	n     int
	count atomic.Int32
	got   chan int
}

func (r *chainRecorder) DeliverNetworkPacket(_ tcpip.LinkAddress, _ tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	k := int(pkt.Data[0]) | int(pkt.Data[1])<<8
	r.count.Add(1)
	r.got <- k
	if k+1 < r.n {
		next := stack.NewOutboundPacket(0, []byte{byte(k + 1), byte((k + 1) >> 8)})
		next.DeferDelivery = true
		r.e.WritePacket(tcpip.LinkAddress{}, 0x800, next)
	}
}

// A Flush delivers a bounded number of packets and leaves the rest to
// the goroutine, which delivers them all, still in order.
func TestLongFlushHandsOver(t *testing.T) {
	e := New()
	defer e.Close()
	const n = 4 * maxFlushed
	rec := &chainRecorder{e: e, n: n, got: make(chan int, n)}
	e.Attach(rec)
	first := stack.NewOutboundPacket(0, []byte{0, 0})
	first.DeferDelivery = true
	if err := e.WritePacket(tcpip.LinkAddress{}, 0x800, first); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	if c := rec.count.Load(); c >= n {
		t.Errorf("Flush delivered all %d chained packets itself", c)
	}
	for i := 0; i < n; i++ {
		select {
		case k := <-rec.got:
			if k != i {
				t.Fatalf("packet %d arrived as %d", i, k)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d of %d not delivered", i, n)
		}
	}
}
