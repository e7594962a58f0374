// Package loopback is the loopback link: every packet written is received
// again by the same NIC. Delivery happens on the endpoint's own goroutine
// so a sender never re-enters the stack while holding its locks.
package loopback

import (
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// MTU is Linux's loopback MTU.
const MTU = 65536

type packet struct {
	proto tcpip.NetworkProtocolNumber
	data  []byte
}

// Endpoint is a loopback link.
type Endpoint struct {
	queue      chan packet
	done       chan struct{}
	closeOnce  sync.Once
	dispatcher atomic.Pointer[stack.NetworkDispatcher]
	wg         sync.WaitGroup
	// Dropped counts packets lost to a full queue.
	Dropped atomic.Uint64
}

// New starts a loopback link; Close stops its goroutine.
func New() *Endpoint {
	e := &Endpoint{queue: make(chan packet, 4096), done: make(chan struct{})}
	e.wg.Add(1)
	go e.run()
	return e
}

func (e *Endpoint) run() {
	defer e.wg.Done()
	for {
		select {
		case p := <-e.queue:
			if d := e.dispatcher.Load(); d != nil {
				(*d).DeliverNetworkPacket(tcpip.LinkAddress{}, p.proto, stack.NewInboundPacket(p.data))
			}
		case <-e.done:
			return
		}
	}
}

// Close stops delivery and waits for the goroutine to exit.
func (e *Endpoint) Close() {
	e.closeOnce.Do(func() { close(e.done) })
	e.wg.Wait()
}

// MTU implements stack.LinkEndpoint.
func (e *Endpoint) MTU() uint32 { return MTU }

// MaxHeaderLength implements stack.LinkEndpoint.
func (e *Endpoint) MaxHeaderLength() int { return 0 }

// LinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress { return tcpip.LinkAddress{} }

// Capabilities implements stack.LinkEndpoint.
func (e *Endpoint) Capabilities() stack.LinkCapabilities { return stack.CapabilityLoopback }

// Attach implements stack.LinkEndpoint.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) { e.dispatcher.Store(&d) }

// WritePacket implements stack.LinkEndpoint.
func (e *Endpoint) WritePacket(_ tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) *tcpip.Error {
	select {
	case <-e.done:
		return tcpip.ErrClosedForSend
	default:
	}
	select {
	case e.queue <- packet{proto, pkt.Flatten()}:
	case <-e.done:
		return tcpip.ErrClosedForSend
	default:
		e.Dropped.Add(1)
	}
	return nil
}
