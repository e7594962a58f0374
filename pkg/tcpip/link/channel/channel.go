// Package channel is a link endpoint whose wire is a Go channel: outbound
// packets are queued for the test or program to read, and inbound packets
// are injected. Two stacks are joined by moving packets between two
// channel endpoints, with whatever loss, reordering or duplication a test
// wants in between.
package channel

import (
	"context"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// Packet is one outbound packet as it would appear on the wire.
type Packet struct {
	// Proto is the network protocol.
	Proto tcpip.NetworkProtocolNumber
	// Remote is the destination link address (Ethernet mode).
	Remote tcpip.LinkAddress
	// Data is the whole packet; in Ethernet mode it includes the frame header.
	Data []byte
}

// Endpoint is a channel link endpoint.
type Endpoint struct {
	// C carries outbound packets.
	C        chan Packet
	mtu      uint32
	addr     tcpip.LinkAddress
	ethernet bool

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
	// Dropped counts outbound packets lost because C was full.
	Dropped atomic.Uint64
}

// New makes an endpoint queueing up to size outbound packets. With
// ethernet set it frames packets in Ethernet II and needs ARP; otherwise
// it carries bare network packets (a point-to-point link).
func New(size int, mtu uint32, addr tcpip.LinkAddress, ethernet bool) *Endpoint {
	return &Endpoint{C: make(chan Packet, size), mtu: mtu, addr: addr, ethernet: ethernet}
}

// MTU implements stack.LinkEndpoint.
func (e *Endpoint) MTU() uint32 { return e.mtu }

// MaxHeaderLength implements stack.LinkEndpoint.
func (e *Endpoint) MaxHeaderLength() int {
	if e.ethernet {
		return header.EthernetMinimumSize
	}
	return 0
}

// LinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress { return e.addr }

// Capabilities implements stack.LinkEndpoint.
func (e *Endpoint) Capabilities() stack.LinkCapabilities {
	if e.ethernet {
		return stack.CapabilityResolutionRequired
	}
	return 0
}

// Attach implements stack.LinkEndpoint.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.dispatcher = d
	e.mu.Unlock()
}

// WritePacket implements stack.LinkEndpoint. A full queue drops the packet
// silently, as a congested wire would.
func (e *Endpoint) WritePacket(remote tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) *tcpip.Error {
	if e.ethernet {
		h := pkt.Header.Prepend(header.EthernetMinimumSize)
		if h == nil {
			return tcpip.ErrNoBufferSpace
		}
		header.Ethernet(h).Encode(header.EthernetFields{Src: e.addr, Dst: remote, Type: proto})
	}
	p := Packet{Proto: proto, Remote: remote, Data: pkt.Flatten()}
	select {
	case e.C <- p:
	default:
		e.Dropped.Add(1)
	}
	return nil
}

// Read returns a queued outbound packet without blocking.
func (e *Endpoint) Read() (Packet, bool) {
	select {
	case p := <-e.C:
		return p, true
	default:
		return Packet{}, false
	}
}

// ReadContext waits for an outbound packet or ctx's end.
func (e *Endpoint) ReadContext(ctx context.Context) (Packet, bool) {
	select {
	case p := <-e.C:
		return p, true
	case <-ctx.Done():
		return Packet{}, false
	}
}

// Drain discards queued outbound packets and returns how many there were.
func (e *Endpoint) Drain() int {
	n := 0
	for {
		if _, ok := e.Read(); !ok {
			return n
		}
		n++
	}
}

// InjectInbound delivers a packet as if received: a bare network packet
// of protocol proto, or, in Ethernet mode, a whole frame (proto ignored).
// Short or unattached frames are dropped.
func (e *Endpoint) InjectInbound(proto tcpip.NetworkProtocolNumber, data []byte) {
	e.mu.RLock()
	d := e.dispatcher
	e.mu.RUnlock()
	if d == nil {
		return
	}
	var src tcpip.LinkAddress
	if e.ethernet {
		eth, ok := header.ParseEthernet(data)
		if !ok {
			return
		}
		dst := eth.DestinationAddress()
		if dst != e.addr && dst != tcpip.BroadcastLinkAddress && dst[0]&1 == 0 {
			return
		}
		src, proto = eth.SourceAddress(), eth.Type()
		data = data[header.EthernetMinimumSize:]
	}
	pkt := stack.NewInboundPacket(data)
	if e.ethernet {
		pkt.LinkHeader = data[:0]
	}
	d.DeliverNetworkPacket(src, proto, pkt)
}

// Deliver injects p, a packet read from another channel endpoint.
func (e *Endpoint) Deliver(p Packet) { e.InjectInbound(p.Proto, p.Data) }

// Pump moves every queued packet from each endpoint to the other until
// both are quiet, on the calling goroutine, and returns how many moved.
// filter, if non-nil, may drop (return nil), alter or multiply packets.
func Pump(a, b *Endpoint, filter func(from *Endpoint, p Packet) []Packet) int {
	moved := 0
	for {
		progress := false
		for _, pair := range [2][2]*Endpoint{{a, b}, {b, a}} {
			for {
				p, ok := pair[0].Read()
				if !ok {
					break
				}
				progress = true
				out := []Packet{p}
				if filter != nil {
					out = filter(pair[0], p)
				}
				for _, q := range out {
					moved++
					pair[1].Deliver(q)
				}
			}
		}
		if !progress {
			return moved
		}
	}
}

// Forward copies packets from a to b until ctx ends; run it on its own
// goroutine, one per direction, to join two stacks in real time.
func Forward(ctx context.Context, from, to *Endpoint) {
	for {
		p, ok := from.ReadContext(ctx)
		if !ok {
			return
		}
		to.Deliver(p)
	}
}
