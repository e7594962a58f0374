// Package ipv6 is the IPv6 network protocol (RFC 8200) for a host:
// extension header processing, fragment reassembly, ICMPv6 echo
// (RFC 4443) and Neighbor Discovery address resolution (RFC 4861 NS/NA).
// It does not fragment on send: oversize packets fail with EMSGSIZE.
package ipv6

import (
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/fragmentation"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// ProtocolNumber is IPv6's ethertype.
const ProtocolNumber = header.EthertypeIPv6

// ndpHopLimit is the hop limit NDP messages carry and must arrive with.
const ndpHopLimit = 255

// Stats are IPv6 counters.
type Stats struct {
	Received       atomic.Uint64
	Malformed      atomic.Uint64
	NotForUs       atomic.Uint64
	Reassembled    atomic.Uint64
	FragmentErrors atomic.Uint64
	EchoReplies    atomic.Uint64
	NSReceived     atomic.Uint64
	NASent         atomic.Uint64
	NSSent         atomic.Uint64
}

// Protocol is IPv6 for one stack.
type Protocol struct {
	stack *stack.Stack
	reasm *fragmentation.Reassembler
	stats Stats
}

// NewProtocol is the stack.NetworkProtocolFactory for IPv6.
func NewProtocol(s *stack.Stack) stack.NetworkProtocol {
	return &Protocol{stack: s, reasm: fragmentation.New(s.Clock(), 60*time.Second, fragmentation.DefaultMemoryLimit, 65535, nil)}
}

// Number implements stack.NetworkProtocol.
func (p *Protocol) Number() tcpip.NetworkProtocolNumber { return ProtocolNumber }

// AddressLength implements stack.NetworkProtocol.
func (p *Protocol) AddressLength() int { return 16 }

// Stats returns the counters.
func (p *Protocol) Stats() *Stats { return &p.stats }

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
	return e.nic.LinkEndpoint().MaxHeaderLength() + header.IPv6MinimumSize
}

func (e *endpoint) MTU() int {
	return min(int(e.nic.LinkEndpoint().MTU()), 65535+header.IPv6MinimumSize) - header.IPv6MinimumSize
}

// SolicitedNodeAddress is ff02::1:ffXX:XXXX for a (RFC 4291 §2.7.1).
func SolicitedNodeAddress(a tcpip.Address) tcpip.Address {
	b := a.As16()
	return tcpip.AddrFrom16([16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// WritePacket implements stack.NetworkEndpoint.
func (e *endpoint) WritePacket(r *stack.Route, proto tcpip.TransportProtocolNumber, params stack.NetworkParams, pkt *stack.PacketBuffer) *tcpip.Error {
	return e.write(r.LocalAddress, r.RemoteAddress, r.NextHop, uint8(proto), params.TTL, params.TOS, pkt)
}

func (e *endpoint) write(src, dst, next tcpip.Address, proto uint8, hops, tclass uint8, pkt *stack.PacketBuffer) *tcpip.Error {
	if hops == 0 {
		hops = 64
	}
	if pkt.Size() > e.MTU() {
		return tcpip.ErrMessageTooLong
	}
	h := pkt.Header.Prepend(header.IPv6MinimumSize)
	if h == nil {
		return tcpip.ErrNoBufferSpace
	}
	header.IPv6(h).Encode(header.IPv6Fields{PayloadLength: uint16(pkt.Size() - header.IPv6MinimumSize), TrafficClass: tclass, NextHeader: proto, HopLimit: hops, Src: src, Dst: dst})
	pkt.NetworkHeader = h
	if dst.IsMulticast() && e.nic.LinkEndpoint().Capabilities()&stack.CapabilityResolutionRequired != 0 {
		b := dst.As16()
		return e.nic.WritePacketToLink(tcpip.LinkAddress{0x33, 0x33, b[12], b[13], b[14], b[15]}, ProtocolNumber, pkt)
	}
	return e.nic.WritePacket(next, ProtocolNumber, pkt)
}

// ResolvedProtocol implements stack.LinkAddressResolver: NDP resolves
// IPv6 addresses.
func (e *endpoint) ResolvedProtocol() tcpip.NetworkProtocolNumber { return ProtocolNumber }

// LinkAddressRequest sends a Neighbor Solicitation to target's
// solicited-node multicast group.
func (e *endpoint) LinkAddressRequest(target, local tcpip.Address) *tcpip.Error {
	mac := e.nic.LinkEndpoint().LinkAddress()
	body := make([]byte, 32)
	n := header.EncodeNDPNeighbor(body, header.ICMPv6NeighborSolicit, 0, target, &mac)
	dst := SolicitedNodeAddress(target)
	header.SetICMPv6Checksum(body[:n], local, dst)
	e.proto.stats.NSSent.Add(1)
	return e.write(local, dst, dst, header.IPv6ProtocolICMP, ndpHopLimit, 0, stack.NewOutboundPacket(e.MaxHeaderLength(), body[:n]))
}

func (e *endpoint) acceptsDestination(dst tcpip.Address) (local, multicast bool) {
	if dst.IsMulticast() {
		b := dst.As16()
		// All-nodes, or a solicited-node group of one of our addresses.
		if dst == tcpip.AddrFrom16([16]byte{0xff, 0x02, 15: 1}) {
			return true, true
		}
		if b[0] == 0xff && b[1] == 0x02 && b[11] == 1 && b[12] == 0xff {
			for _, a := range e.nic.Addresses() {
				if a.Address.Len() == 16 && SolicitedNodeAddress(a.Address) == dst {
					return true, true
				}
			}
		}
		return false, false
	}
	l, _ := e.nic.AcceptsDestination(dst)
	return l, false
}

// HandlePacket implements stack.NetworkEndpoint.
func (e *endpoint) HandlePacket(pkt *stack.PacketBuffer) {
	st := &e.proto.stats
	st.Received.Add(1)
	h, err := parseInbound(pkt)
	if err != nil {
		st.Malformed.Add(1)
		return
	}
	src, dst := h.SourceAddress(), h.DestinationAddress()
	if src.IsMulticast() {
		st.Malformed.Add(1)
		return
	}
	local, mcast := e.acceptsDestination(dst)
	if !local {
		st.NotForUs.Add(1)
		return
	}
	pkt.NetworkHeader = h[:header.IPv6MinimumSize]
	it := h.ExtensionHeaders()
	first := true
	for {
		ext, ok, err := it.Next()
		if err != nil {
			st.Malformed.Add(1)
			return
		}
		if !ok {
			break
		}
		switch ext.Type {
		case header.IPv6ExtHopByHop:
			// Only allowed first (RFC 8200 §4.3); its options are skipped.
			if !first {
				st.Malformed.Add(1)
				return
			}
		case header.IPv6ExtRouting:
			// Segments left > 0 would make us a router; hosts drop it.
			if len(ext.Data) < 2 || ext.Data[1] != 0 {
				st.Malformed.Add(1)
				return
			}
		case header.IPv6ExtFragment:
			_, rest, _ := it.UpperLayer()
			k := fragmentation.Key{Src: src, Dst: dst, ID: ext.FragmentID(), Proto: ext.NextHeader}
			whole, done, err := e.proto.reasm.Process(k, ext.FragmentOffset(), ext.MoreFragments(), rest)
			if err != nil {
				st.FragmentErrors.Add(1)
				return
			}
			if !done {
				return
			}
			st.Reassembled.Add(1)
			// Continue parsing the reassembled payload as if it had
			// followed the fragment header.
			e.deliverUpper(ext.NextHeader, whole, src, dst, mcast, h.HopLimit(), pkt)
			return
		}
		first = false
	}
	proto, payload, _ := it.UpperLayer()
	e.deliverUpper(proto, payload, src, dst, mcast, h.HopLimit(), pkt)
}

// parseInbound validates pkt's IPv6 header. A packet whose payload is
// held apart in pkt.Tail stays split only if a TCP header follows the
// fixed header directly: the path that merely slices headers off.
// Anything else (extension headers, fragments, ICMPv6) is joined first.
func parseInbound(pkt *stack.PacketBuffer) (header.IPv6, error) {
	if len(pkt.Tail) > 0 {
		h, err := header.ParseIPv6Split(pkt.Data, len(pkt.Tail))
		if err == nil && h.NextHeader() == uint8(header.TCPProtocolNumber) {
			return h, nil
		}
		pkt.JoinTail()
	}
	return header.ParseIPv6(pkt.Data)
}

// ReceivesSplitPackets implements stack.SplitReceiver.
func (e *endpoint) ReceivesSplitPackets() {}

func (e *endpoint) deliverUpper(proto uint8, payload []byte, src, dst tcpip.Address, mcast bool, hops uint8, pkt *stack.PacketBuffer) {
	pkt.Data = payload
	switch proto {
	case header.IPv6NoNextHeader:
		return
	case header.IPv6ProtocolICMP:
		e.handleICMP(payload, src, dst, mcast, hops, pkt)
		return
	}
	if e.proto.stack.DeliverTransportPacket(tcpip.TransportProtocolNumber(proto), src, dst, mcast, pkt) == stack.UnknownDestinationPortUnreachable && !mcast {
		e.sendPortUnreachable(src, dst, proto, payload, hops)
	}
}

// sendPortUnreachable answers a datagram to a closed port with ICMPv6
// destination unreachable, code 4 (RFC 4443 §3.1), quoting as much of
// the packet as fits the minimum MTU.
func (e *endpoint) sendPortUnreachable(src, dst tcpip.Address, proto uint8, payload []byte, hops uint8) {
	const minMTU = 1280
	quoteMax := minMTU - header.IPv6MinimumSize - header.ICMPv6MinimumSize
	quote := make([]byte, header.IPv6MinimumSize+len(payload))
	header.IPv6(quote).Encode(header.IPv6Fields{PayloadLength: uint16(len(payload)), NextHeader: proto, HopLimit: hops, Src: src, Dst: dst})
	copy(quote[header.IPv6MinimumSize:], payload)
	if len(quote) > quoteMax {
		quote = quote[:quoteMax]
	}
	body := make([]byte, header.ICMPv6MinimumSize+len(quote))
	copy(body[header.ICMPv6MinimumSize:], quote)
	header.EncodeICMPv6(body, header.ICMPv6DstUnreachable, 4, 0, dst, src)
	r, err := e.proto.stack.FindRoute(e.nic.ID(), dst, src, ProtocolNumber)
	if err != nil {
		return
	}
	r.WritePacket(header.ICMPv6ProtocolNumber, stack.NetworkParams{}, stack.NewOutboundPacket(r.MaxHeaderLength(), body))
}

// deliverUnreachable hands a destination-unreachable error to the
// endpoint that sent the quoted packet.
func (e *endpoint) deliverUnreachable(m header.ICMPv6) {
	q := m.Payload()
	if len(q) < header.IPv6MinimumSize+8 || q[0]>>4 != 6 {
		return
	}
	var err *tcpip.Error
	switch m.Code() {
	case 4: // port unreachable
		err = tcpip.ErrConnectionRefused
	case 0: // no route
		err = tcpip.ErrNetworkUnreachable
	case 3: // address unreachable
		err = tcpip.ErrHostUnreachable
	default:
		return
	}
	h := header.IPv6(q)
	e.proto.stack.DeliverTransportError(tcpip.TransportProtocolNumber(h.NextHeader()), h.SourceAddress(), h.DestinationAddress(), q[header.IPv6MinimumSize:], err)
}

func (e *endpoint) handleICMP(b []byte, src, dst tcpip.Address, mcast bool, hops uint8, pkt *stack.PacketBuffer) {
	st := &e.proto.stats
	m, ok := header.ParseICMPv6(b, src, dst)
	if !ok {
		st.Malformed.Add(1)
		return
	}
	switch m.Type() {
	case header.ICMPv6EchoRequest:
		if mcast {
			return
		}
		reply := append([]byte(nil), m...)
		header.EncodeICMPv6(reply, header.ICMPv6EchoReply, 0, uint32(m.Ident())<<16|uint32(m.Sequence()), dst, src)
		r, err := e.proto.stack.FindRoute(e.nic.ID(), dst, src, ProtocolNumber)
		if err != nil {
			return
		}
		if r.WritePacket(header.ICMPv6ProtocolNumber, stack.NetworkParams{}, stack.NewOutboundPacket(r.MaxHeaderLength(), reply)) == nil {
			st.EchoReplies.Add(1)
		}
	case header.ICMPv6DstUnreachable:
		if !mcast {
			e.deliverUnreachable(m)
		}
	case header.ICMPv6EchoReply:
		// Echo replies belong to the ping socket whose identifier they carry.
		if !mcast {
			e.proto.stack.DeliverTransportPacket(header.ICMPv6ProtocolNumber, src, dst, false, pkt)
		}
	case header.ICMPv6NeighborSolicit:
		n, ok := header.ParseNDPNeighbor(m)
		if !ok || hops != ndpHopLimit || !e.proto.stack.IsLocalAddress(e.nic.ID(), n.Target) {
			return
		}
		st.NSReceived.Add(1)
		if src.Unspecified() {
			return // duplicate address detection probe; we do not defend
		}
		if n.HasLinkAddress {
			e.nic.HandleNeighborConfirmation(src, n.LinkAddress, true)
		}
		mac := e.nic.LinkEndpoint().LinkAddress()
		body := make([]byte, 32)
		l := header.EncodeNDPNeighbor(body, header.ICMPv6NeighborAdvert, header.NDPNAFlagSolicited|header.NDPNAFlagOverride, n.Target, &mac)
		header.SetICMPv6Checksum(body[:l], n.Target, src)
		pkt := stack.NewOutboundPacket(e.MaxHeaderLength(), body[:l])
		if n.HasLinkAddress {
			// Answer straight to the solicitor's link address: resolving
			// it through the neighbor table could loop.
			h := pkt.Header.Prepend(header.IPv6MinimumSize)
			header.IPv6(h).Encode(header.IPv6Fields{PayloadLength: uint16(l), NextHeader: header.IPv6ProtocolICMP, HopLimit: ndpHopLimit, Src: n.Target, Dst: src})
			e.nic.WritePacketToLink(n.LinkAddress, ProtocolNumber, pkt)
		} else {
			e.write(n.Target, src, src, header.IPv6ProtocolICMP, ndpHopLimit, 0, pkt)
		}
		st.NASent.Add(1)
	case header.ICMPv6NeighborAdvert:
		n, ok := header.ParseNDPNeighbor(m)
		if !ok || hops != ndpHopLimit || !n.HasLinkAddress {
			return
		}
		e.nic.HandleNeighborConfirmation(n.Target, n.LinkAddress, false)
	}
}
