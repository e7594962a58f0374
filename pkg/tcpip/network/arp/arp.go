// Package arp is the Address Resolution Protocol (RFC 826) for IPv4 over
// Ethernet: it answers requests for the NIC's addresses, learns senders,
// and sends the requests the stack's neighbor table asks for.
package arp

import (
	"sync/atomic"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// ProtocolNumber is ARP's ethertype.
const ProtocolNumber = header.EthertypeARP

// Protocol is ARP for one stack.
type Protocol struct {
	stack *stack.Stack
	// RequestsSent, RepliesSent and Malformed count ARP traffic.
	RequestsSent atomic.Uint64
	RepliesSent  atomic.Uint64
	Malformed    atomic.Uint64
}

// NewProtocol is the stack.NetworkProtocolFactory for ARP.
func NewProtocol(s *stack.Stack) stack.NetworkProtocol { return &Protocol{stack: s} }

// Number implements stack.NetworkProtocol.
func (p *Protocol) Number() tcpip.NetworkProtocolNumber { return ProtocolNumber }

// AddressLength implements stack.NetworkProtocol: ARP has no addresses.
func (p *Protocol) AddressLength() int { return 0 }

// NewEndpoint implements stack.NetworkProtocol.
func (p *Protocol) NewEndpoint(nic *stack.NIC) stack.NetworkEndpoint {
	return &endpoint{proto: p, nic: nic}
}

type endpoint struct {
	proto *Protocol
	nic   *stack.NIC
}

func (e *endpoint) Close() {}
func (e *endpoint) MaxHeaderLength() int {
	return e.nic.LinkEndpoint().MaxHeaderLength() + header.ARPSize
}
func (e *endpoint) MTU() int { return int(e.nic.LinkEndpoint().MTU()) - header.ARPSize }

func (e *endpoint) WritePacket(*stack.Route, tcpip.TransportProtocolNumber, stack.NetworkParams, *stack.PacketBuffer) *tcpip.Error {
	return tcpip.ErrNotSupported
}

// ResolvedProtocol implements stack.LinkAddressResolver.
func (e *endpoint) ResolvedProtocol() tcpip.NetworkProtocolNumber { return header.EthertypeIPv4 }

// LinkAddressRequest implements stack.LinkAddressResolver.
func (e *endpoint) LinkAddressRequest(target, local tcpip.Address) *tcpip.Error {
	e.proto.RequestsSent.Add(1)
	return e.send(header.ARPRequest, tcpip.BroadcastLinkAddress, local, tcpip.LinkAddress{}, target)
}

func (e *endpoint) send(op uint16, dstLink tcpip.LinkAddress, spa tcpip.Address, tha tcpip.LinkAddress, tpa tcpip.Address) *tcpip.Error {
	pkt := stack.NewOutboundPacket(e.nic.LinkEndpoint().MaxHeaderLength()+header.ARPSize, nil)
	h := pkt.Header.Prepend(header.ARPSize)
	header.EncodeARP(h, op, e.nic.LinkEndpoint().LinkAddress(), spa, tha, tpa)
	pkt.NetworkHeader = h
	return e.nic.WritePacketToLink(dstLink, ProtocolNumber, pkt)
}

// HandlePacket implements stack.NetworkEndpoint, following RFC 826's
// packet reception algorithm.
func (e *endpoint) HandlePacket(pkt *stack.PacketBuffer) {
	a, ok := header.ParseARP(pkt.Data)
	if !ok {
		e.proto.Malformed.Add(1)
		return
	}
	spa, tpa := a.SenderProtocol(), a.TargetProtocol()
	if spa.Unspecified() || spa.IsBroadcast() || spa.IsMulticast() {
		// Probes (RFC 5227) and bogus senders teach us nothing.
		if a.Op() != header.ARPRequest || !e.nic.Stack().IsLocalAddress(e.nic.ID(), tpa) {
			return
		}
	}
	forUs := e.nic.Stack().IsLocalAddress(e.nic.ID(), tpa)
	if !spa.Unspecified() {
		// Update an existing entry always; create one only if we are the
		// target (the "merge flag" of RFC 826).
		e.nic.HandleNeighborConfirmation(spa, a.SenderHardware(), forUs)
	}
	if forUs && a.Op() == header.ARPRequest {
		e.proto.RepliesSent.Add(1)
		e.send(header.ARPReply, a.SenderHardware(), tpa, a.SenderHardware(), spa)
	}
}
