// Package stack ties the layers of the network stack together: it owns the
// NICs and their addresses, the route table, per-NIC neighbor (ARP) tables,
// the transport demultiplexer and the port manager, and the interfaces that
// link, network and transport protocol packages implement.
package stack

import (
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
)

// PacketBuffer is one packet moving through the stack. Outbound packets
// have headers pushed onto Header in front of Data; inbound packets start
// as Data alone and each layer slices its header off the front, so the
// receive path never copies.
type PacketBuffer struct {
	Header buffer.Prependable
	Data   buffer.View

	// Views of headers once a layer has parsed or built them.
	LinkHeader      []byte
	NetworkHeader   []byte
	TransportHeader []byte

	NetworkProtocol tcpip.NetworkProtocolNumber
	// NIC is the interface an inbound packet arrived on.
	NIC tcpip.NICID
	// LinkSource is the sender's link address, for inbound packets on
	// links that have one.
	LinkSource tcpip.LinkAddress
	// TransportChecksumTrusted marks an inbound packet whose transport
	// checksum the link vouches for: one the local host kernel sent with
	// checksum offload, so the field was never filled in (an AF_PACKET
	// socket reports it with TP_STATUS_CSUMNOTREADY).
	TransportChecksumTrusted bool

	// Tail, on an inbound packet, is the rest of the packet after Data:
	// a link that hands a locally built packet back to its own stack
	// (loopback) delivers the headers in Data and the payload here, so
	// the payload is not copied. A layer that only slices headers off
	// the front passes Tail on; one that needs the bytes in one piece
	// calls JoinTail. Tail is shared with the sender: nothing may write
	// to it.
	Tail buffer.View

	// Chunk, if not nil, is the reference-counted buffer the payload lies
	// in: Data's on an outbound packet, Tail's on an inbound one. Whoever
	// keeps the payload past the call that handed it over (WritePacket,
	// HandlePacket) takes a reference and drops it when done, or the
	// bytes may be recycled under it.
	Chunk *buffer.Chunk

	// PayloadImmutable, on an outbound packet, promises that nobody will
	// write to Data's bytes or to the headers pushed onto Header again, so
	// a link may keep referring to them after WritePacket returns instead
	// of copying them (TCP's send queue never rewrites queued bytes).
	PayloadImmutable bool

	// DeferDelivery, on an outbound packet, promises that the sender will
	// call Route.FlushLink once it holds no locks, so a link that loops
	// packets back to its own stack may leave delivery to that call
	// instead of handing the packet to another goroutine.
	DeferDelivery bool
}

// NewOutboundPacket reserves reserve bytes of header room in front of data.
func NewOutboundPacket(reserve int, data []byte) *PacketBuffer {
	return &PacketBuffer{Header: buffer.NewPrependable(reserve), Data: data}
}

// NewInboundPacket wraps received bytes; they are not copied.
func NewInboundPacket(b []byte) *PacketBuffer { return &PacketBuffer{Data: b} }

// Size is the full packet length: pushed headers plus data.
func (p *PacketBuffer) Size() int { return p.Header.UsedLength() + len(p.Data) + len(p.Tail) }

// NewSplitInboundPacket wraps a received packet whose headers are head
// and whose payload is tail, neither copied; tail must never be written.
func NewSplitInboundPacket(head, tail []byte) *PacketBuffer {
	return &PacketBuffer{Data: head, Tail: tail}
}

// JoinTail makes Data the whole rest of the packet, copying Data and Tail
// into one new slice if there is a Tail.
func (p *PacketBuffer) JoinTail() {
	if len(p.Tail) == 0 {
		p.Tail = nil
		return
	}
	out := make([]byte, len(p.Data)+len(p.Tail))
	n := copy(out, p.Data)
	copy(out[n:], p.Tail)
	p.Data, p.Tail, p.Chunk = out, nil, nil
}

// SplitReceiver is implemented by network endpoints and transport
// protocols that take inbound packets with a Tail; the stack joins the
// tail of a packet before handing it to anything else.
type SplitReceiver interface {
	ReceivesSplitPackets()
}

// Flatten copies headers and data into one new slice, as a wire would.
func (p *PacketBuffer) Flatten() []byte {
	out := make([]byte, p.Size())
	n := copy(out, p.Header.View())
	n += copy(out[n:], p.Data)
	copy(out[n:], p.Tail)
	return out
}

// LinkCapabilities describe a link.
type LinkCapabilities uint32

const (
	// CapabilityResolutionRequired marks links that need a neighbor (ARP)
	// lookup before sending to an IP next hop: Ethernet-like links.
	CapabilityResolutionRequired LinkCapabilities = 1 << iota
	// CapabilityLoopback marks the loopback link.
	CapabilityLoopback
	// CapabilityChecksumOffload marks a link whose packets never leave
	// the host's memory: transports neither fill in their checksums on
	// send nor check them on receive, as Linux does on lo. A link with
	// it marks every inbound packet TransportChecksumTrusted.
	CapabilityChecksumOffload
)

// Flusher is implemented by links that queue packets for delivery to
// their own stack (loopback): Flush delivers what is queued. Its caller
// must hold no lock the receive path takes.
type Flusher interface {
	Flush()
}

// NetworkDispatcher receives packets from a link.
type NetworkDispatcher interface {
	DeliverNetworkPacket(src tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *PacketBuffer)
}

// LinkEndpoint is a link-layer device.
type LinkEndpoint interface {
	// MTU is the largest network-layer packet the link carries.
	MTU() uint32
	// MaxHeaderLength is how much header room the link prepends.
	MaxHeaderLength() int
	// LinkAddress is the device's own address (zero if it has none).
	LinkAddress() tcpip.LinkAddress
	// Capabilities describes the link.
	Capabilities() LinkCapabilities
	// Attach connects the link to the NIC that receives its packets.
	Attach(d NetworkDispatcher)
	// WritePacket sends pkt to remote. It must not block for long and must
	// not call back into the stack on the same goroutine.
	WritePacket(remote tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *PacketBuffer) *tcpip.Error
}

// NetworkParams are per-packet network-layer settings.
type NetworkParams struct {
	TTL uint8
	TOS uint8
	// DontFragment sets IPv4 DF (for path MTU discovery); oversize packets
	// then fail with ErrMessageTooLong.
	DontFragment bool
}

// NetworkEndpoint is a network protocol's per-NIC instance.
type NetworkEndpoint interface {
	HandlePacket(pkt *PacketBuffer)
	WritePacket(r *Route, proto tcpip.TransportProtocolNumber, params NetworkParams, pkt *PacketBuffer) *tcpip.Error
	// MaxHeaderLength is the room the network layer and the link below it
	// need in front of a transport header.
	MaxHeaderLength() int
	// MTU is the largest transport payload that goes out unfragmented.
	MTU() int
	Close()
}

// NetworkProtocol is a network protocol (IPv4, ARP, IPv6).
type NetworkProtocol interface {
	Number() tcpip.NetworkProtocolNumber
	// AddressLength is the address size, or 0 for protocols without
	// addresses of their own (ARP).
	AddressLength() int
	NewEndpoint(nic *NIC) NetworkEndpoint
}

// LinkAddressResolver is implemented by network endpoints that can resolve
// another protocol's addresses to link addresses (ARP for IPv4).
type LinkAddressResolver interface {
	ResolvedProtocol() tcpip.NetworkProtocolNumber
	// LinkAddressRequest broadcasts a request for target's link address.
	LinkAddressRequest(target, local tcpip.Address) *tcpip.Error
}

// TransportEndpointID is a connection's addresses seen from the local side.
type TransportEndpointID struct {
	LocalPort     uint16
	LocalAddress  tcpip.Address
	RemotePort    uint16
	RemoteAddress tcpip.Address
}

// TransportEndpoint receives packets demultiplexed to it.
type TransportEndpoint interface {
	// HandlePacket gets a packet whose Data starts at the transport header;
	// NetworkHeader is set.
	HandlePacket(id TransportEndpointID, pkt *PacketBuffer)
}

// UnknownDestinationAction tells the network layer what to do with a
// packet no endpoint claimed.
type UnknownDestinationAction int

const (
	// UnknownDestinationHandled means the protocol dealt with it (TCP RST).
	UnknownDestinationHandled UnknownDestinationAction = iota
	// UnknownDestinationPortUnreachable asks for ICMP port unreachable.
	UnknownDestinationPortUnreachable
	// UnknownDestinationMalformed means the packet was bad and dropped.
	UnknownDestinationMalformed
	// UnknownDestinationProtocolUnreachable means no such transport
	// protocol is registered.
	UnknownDestinationProtocolUnreachable
)

// TransportProtocol is a transport protocol (TCP, UDP).
type TransportProtocol interface {
	Number() tcpip.TransportProtocolNumber
	NewEndpoint(netProto tcpip.NetworkProtocolNumber, wq *tcpip.WaitQueue) (tcpip.Endpoint, *tcpip.Error)
	// ParsePorts extracts ports from the start of a transport header.
	ParsePorts(b []byte) (src, dst uint16, ok bool)
	HandleUnknownDestinationPacket(id TransportEndpointID, pkt *PacketBuffer) UnknownDestinationAction
}

// NetworkProtocolFactory builds a network protocol for a stack.
type NetworkProtocolFactory func(*Stack) NetworkProtocol

// TransportProtocolFactory builds a transport protocol for a stack.
type TransportProtocolFactory func(*Stack) TransportProtocol
