// Package loopback is the loopback link: every packet written is received
// again by the same NIC. Packets wait in a FIFO queue and are delivered by
// whoever drains it while holding no stack locks: the sender itself, when
// it marked the packet DeferDelivery and promised to call Flush after
// releasing its locks, or else the link's own goroutine. Only one
// goroutine drains at a time, so packets arrive in the order written and
// a delivery that sends more packets (an ACK) queues them for the same
// drain rather than re-entering the stack.
//
// A packet whose payload the sender marked immutable is delivered split:
// its freshly built headers and its payload are passed on by reference
// (stack.PacketBuffer.Tail), not copied into one buffer.
package loopback

import (
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// MTU is Linux's loopback MTU.
const MTU = 65536

// maxQueued bounds the queue; packets beyond it are dropped as a full
// device queue drops them.
const maxQueued = 4096

// maxFlushed bounds how many packets one Flush delivers before it leaves
// the rest to the link's goroutine: a sender flushing its own segments
// must not be kept busy indefinitely delivering everyone else's.
const maxFlushed = 256

type packet struct {
	proto tcpip.NetworkProtocolNumber
	// head holds the headers (or the whole packet); tail, if not nil, the
	// sender's immutable payload, passed on by reference.
	head, tail []byte
	// chunk is tail's buffer, referenced until delivery returns.
	chunk *buffer.Chunk
}

// Endpoint is a loopback link.
type Endpoint struct {
	mu       sync.Mutex
	queue    []packet
	spare    []packet // the last drained batch's array, for reuse
	draining bool
	closed   bool

	// kick wakes the delivery goroutine; its buffer of one coalesces
	// wake-ups while the goroutine is busy.
	kick       chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	dispatcher atomic.Pointer[stack.NetworkDispatcher]
	wg         sync.WaitGroup
	// Dropped counts packets lost to a full queue.
	Dropped atomic.Uint64
}

// New starts a loopback link; Close stops its goroutine.
func New() *Endpoint {
	e := &Endpoint{kick: make(chan struct{}, 1), done: make(chan struct{})}
	e.wg.Add(1)
	go e.run()
	return e
}

func (e *Endpoint) run() {
	defer e.wg.Done()
	for {
		select {
		case <-e.kick:
			e.drain(0)
		case <-e.done:
			return
		}
	}
}

// Flush delivers the queued packets, and any their delivery queues, unless
// another goroutine is already doing so (it then delivers them too). The
// caller must hold no lock the stack's receive path takes.
func (e *Endpoint) Flush() { e.drain(maxFlushed) }

// drain delivers queued packets until the queue is empty or, if limit is
// positive, at least limit packets were delivered; then it wakes the
// goroutine for the rest.
func (e *Endpoint) drain(limit int) {
	e.mu.Lock()
	if e.draining || e.closed {
		e.mu.Unlock()
		return
	}
	e.draining = true
	delivered := 0
	for len(e.queue) > 0 {
		if limit > 0 && delivered >= limit {
			e.draining = false
			e.mu.Unlock()
			select {
			case e.kick <- struct{}{}:
			default:
			}
			return
		}
		delivered += len(e.queue)
		batch := e.queue
		e.queue = e.spare[:0]
		e.spare = nil
		e.mu.Unlock()
		d := e.dispatcher.Load()
		for i := range batch {
			p := &batch[i]
			if d != nil {
				pkt := stack.NewSplitInboundPacket(p.head, p.tail)
				pkt.Chunk = p.chunk
				// The bytes never left memory: no checksum to verify.
				pkt.TransportChecksumTrusted = true
				(*d).DeliverNetworkPacket(tcpip.LinkAddress{}, p.proto, pkt)
			}
			p.chunk.DecRef()
			*p = packet{}
		}
		e.mu.Lock()
		if e.spare == nil {
			e.spare = batch[:0]
		}
		if e.closed {
			e.queue = nil
			break
		}
	}
	e.draining = false
	e.mu.Unlock()
}

// Close stops delivery and waits for the goroutine to exit. Packets still
// queued are dropped.
func (e *Endpoint) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.queue = nil
		e.mu.Unlock()
		close(e.done)
	})
	e.wg.Wait()
}

// MTU implements stack.LinkEndpoint.
func (e *Endpoint) MTU() uint32 { return MTU }

// MaxHeaderLength implements stack.LinkEndpoint.
func (e *Endpoint) MaxHeaderLength() int { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress { return tcpip.LinkAddress{} }

// Capabilities implements stack.LinkEndpoint.
func (e *Endpoint) Capabilities() stack.LinkCapabilities {
	return stack.CapabilityLoopback | stack.CapabilityChecksumOffload
}

// Attach implements stack.LinkEndpoint.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) { e.dispatcher.Store(&d) }

// WritePacket implements stack.LinkEndpoint.
func (e *Endpoint) WritePacket(_ tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) *tcpip.Error {
	p := packet{proto: proto}
	if pkt.PayloadImmutable {
		// The headers were built for this packet alone and the sender
		// will not touch the payload again: neither is copied.
		p.head, p.tail, p.chunk = pkt.Header.View(), pkt.Data, pkt.Chunk
	} else {
		p.head = pkt.Flatten()
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return tcpip.ErrClosedForSend
	}
	if len(e.queue) >= maxQueued {
		e.mu.Unlock()
		e.Dropped.Add(1)
		return nil
	}
	p.chunk.IncRef()
	e.queue = append(e.queue, p)
	// A running drain delivers this packet too, and a sender that will
	// flush needs no help; anyone else gets the goroutine.
	wake := !e.draining && !pkt.DeferDelivery
	e.mu.Unlock()
	if wake {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
	return nil
}
