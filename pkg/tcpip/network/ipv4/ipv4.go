// Package ipv4 is the IPv4 network protocol (RFC 791): header validation,
// delivery to transports, fragmentation on send, reassembly on receive,
// and the ICMP (RFC 792) the host must speak: echo replies and
// destination-unreachable errors.
package ipv4

import (
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/network/fragmentation"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// ProtocolNumber is IPv4's ethertype.
const ProtocolNumber = header.EthertypeIPv4

// Stats are IPv4 counters.
type Stats struct {
	Received          atomic.Uint64
	Delivered         atomic.Uint64
	Malformed         atomic.Uint64
	NotForUs          atomic.Uint64
	SourceRouted      atomic.Uint64
	FragmentsReceived atomic.Uint64
	Reassembled       atomic.Uint64
	FragmentErrors    atomic.Uint64
	FragmentsSent     atomic.Uint64
	EchoReplies       atomic.Uint64
	ICMPErrorsSent    atomic.Uint64
	ICMPRateLimited   atomic.Uint64
}

// Protocol is the IPv4 protocol instance of one stack.
type Protocol struct {
	stack      *stack.Stack
	reasm      *fragmentation.Reassembler
	ids        atomic.Uint32
	stats      Stats
	icmpTokens atomic.Int64
	icmpLast   atomic.Int64
}

// icmpRate is how many ICMP errors per second the stack may emit.
const icmpRate = 1000

// NewProtocol is the stack.NetworkProtocolFactory for IPv4.
func NewProtocol(s *stack.Stack) stack.NetworkProtocol {
	p := &Protocol{stack: s}
	p.reasm = fragmentation.New(s.Clock(), fragmentation.DefaultTimeout, fragmentation.DefaultMemoryLimit,
		header.IPv4MaxPacketSize-header.IPv4MinimumSize, func() { s.Stats().ReassemblyTimeouts.Add(1) })
	p.ids.Store(s.Rand32())
	p.icmpTokens.Store(icmpRate)
	return p
}

// Number implements stack.NetworkProtocol.
func (p *Protocol) Number() tcpip.NetworkProtocolNumber { return ProtocolNumber }

// AddressLength implements stack.NetworkProtocol.
func (p *Protocol) AddressLength() int { return 4 }

// Stats returns the protocol's counters.
func (p *Protocol) Stats() *Stats { return &p.stats }

// Reassembler exposes the reassembly state (for tests and metrics).
func (p *Protocol) Reassembler() *fragmentation.Reassembler { return p.reasm }

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
	return e.nic.LinkEndpoint().MaxHeaderLength() + header.IPv4MaximumSize
}

func (e *endpoint) MTU() int { return e.linkMTU() - header.IPv4MinimumSize }

// linkMTU is the largest IPv4 packet the link takes: its MTU, but never
// more than the 16-bit total length allows.
func (e *endpoint) linkMTU() int {
	return min(int(e.nic.LinkEndpoint().MTU()), header.IPv4MaxPacketSize)
}

// WritePacket implements stack.NetworkEndpoint.
func (e *endpoint) WritePacket(r *stack.Route, proto tcpip.TransportProtocolNumber, params stack.NetworkParams, pkt *stack.PacketBuffer) *tcpip.Error {
	ttl := params.TTL
	if ttl == 0 {
		ttl = header.IPv4DefaultTTL
	}
	f := header.IPv4Fields{TOS: params.TOS, ID: uint16(e.proto.ids.Add(1)), TTL: ttl, Protocol: uint8(proto), Src: r.LocalAddress, Dst: r.RemoteAddress}
	if params.DontFragment {
		f.Flags = header.IPv4FlagDontFragment
	}
	mtu := e.linkMTU()
	if pkt.Size()+header.IPv4MinimumSize <= mtu {
		f.TotalLength = uint16(pkt.Size() + header.IPv4MinimumSize)
		h := pkt.Header.Prepend(header.IPv4MinimumSize)
		if h == nil {
			return tcpip.ErrNoBufferSpace
		}
		header.IPv4(h).Encode(f)
		pkt.NetworkHeader = h
		return e.nic.WritePacket(r.NextHop, ProtocolNumber, pkt)
	}
	if params.DontFragment {
		return tcpip.ErrMessageTooLong
	}
	if pkt.Size() > header.IPv4MaxPacketSize-header.IPv4MinimumSize {
		return tcpip.ErrMessageTooLong
	}
	return e.fragment(r, f, mtu, pkt)
}

// fragment splits the transport packet into 8-byte-aligned pieces that fit
// the link MTU (RFC 791 §3.2).
func (e *endpoint) fragment(r *stack.Route, f header.IPv4Fields, mtu int, pkt *stack.PacketBuffer) *tcpip.Error {
	payload := pkt.Flatten()
	per := (mtu - header.IPv4MinimumSize) &^ 7
	if per <= 0 {
		return tcpip.ErrMessageTooLong
	}
	reserve := e.nic.LinkEndpoint().MaxHeaderLength() + header.IPv4MinimumSize
	for off := 0; off < len(payload); off += per {
		end := min(off+per, len(payload))
		ff := f
		ff.FragOffset = uint16(off)
		if end < len(payload) {
			ff.Flags |= header.IPv4FlagMoreFragments
		}
		ff.TotalLength = uint16(header.IPv4MinimumSize + end - off)
		fp := stack.NewOutboundPacket(reserve, payload[off:end])
		h := fp.Header.Prepend(header.IPv4MinimumSize)
		header.IPv4(h).Encode(ff)
		fp.NetworkHeader = h
		e.proto.stats.FragmentsSent.Add(1)
		if err := e.nic.WritePacket(r.NextHop, ProtocolNumber, fp); err != nil {
			return err
		}
	}
	return nil
}

// HandlePacket implements stack.NetworkEndpoint.
func (e *endpoint) HandlePacket(pkt *stack.PacketBuffer) {
	st := &e.proto.stats
	st.Received.Add(1)
	h, split, err := parseInbound(pkt)
	if err != nil {
		st.Malformed.Add(1)
		return
	}
	src, dst := h.SourceAddress(), h.DestinationAddress()
	if src.IsBroadcast() || src.IsMulticast() {
		st.Malformed.Add(1)
		return
	}
	local, bcast := e.nic.AcceptsDestination(dst)
	if !local {
		// The stack is a host, not a router.
		st.NotForUs.Add(1)
		return
	}
	it := h.Options()
	for {
		typ, _, ok, _ := it.Next()
		if !ok {
			break
		}
		if typ == header.IPv4OptionLSRR || typ == header.IPv4OptionSSRR {
			// Source routing lets a sender steer replies; hosts drop it
			// like Linux's accept_source_route=0.
			st.SourceRouted.Add(1)
			return
		}
	}
	pkt.NetworkHeader = h[:h.HeaderLength()]
	var payload []byte
	if split {
		payload = h[h.HeaderLength():] // the rest is pkt.Tail
	} else {
		payload = h.Payload()
	}
	if h.IsFragment() {
		st.FragmentsReceived.Add(1)
		k := fragmentation.Key{Src: src, Dst: dst, ID: uint32(h.ID()), Proto: h.Protocol()}
		whole, done, err := e.proto.reasm.Process(k, h.FragmentOffset(), h.MoreFragments(), payload)
		if err != nil {
			st.FragmentErrors.Add(1)
			e.proto.stack.Stats().FragmentsDropped.Add(1)
			return
		}
		if !done {
			return
		}
		st.Reassembled.Add(1)
		payload = whole
	}
	pkt.Data = payload
	if h.Protocol() == header.IPv4ProtocolICMP {
		e.handleICMP(h, src, dst, bcast, pkt)
		return
	}
	st.Delivered.Add(1)
	switch e.proto.stack.DeliverTransportPacket(tcpip.TransportProtocolNumber(h.Protocol()), src, dst, bcast, pkt) {
	case stack.UnknownDestinationPortUnreachable:
		if !bcast {
			e.sendUnreachable(h, header.ICMPv4PortUnreachable)
		}
	case stack.UnknownDestinationProtocolUnreachable:
		if !bcast {
			e.sendUnreachable(h, header.ICMPv4ProtoUnreachable)
		}
	}
}

// parseInbound validates pkt's IPv4 header. A packet whose payload is
// held apart in pkt.Tail stays split only on the path that merely slices
// headers off (an unfragmented transport packet); fragments and ICMP,
// which read the whole packet, get it joined first. split reports which.
func parseInbound(pkt *stack.PacketBuffer) (h header.IPv4, split bool, err error) {
	if len(pkt.Tail) == 0 {
		h, err = header.ParseIPv4(pkt.Data)
		return h, false, err
	}
	h, err = header.ParseIPv4Split(pkt.Data, len(pkt.Tail))
	if err == nil && !h.IsFragment() && h.Protocol() != header.IPv4ProtocolICMP {
		return h, true, nil
	}
	pkt.JoinTail()
	h, err = header.ParseIPv4(pkt.Data)
	return h, false, err
}

// ReceivesSplitPackets implements stack.SplitReceiver.
func (e *endpoint) ReceivesSplitPackets() {}

func (e *endpoint) handleICMP(h header.IPv4, src, dst tcpip.Address, bcast bool, pkt *stack.PacketBuffer) {
	m, ok := header.ParseICMPv4(pkt.Data)
	if !ok {
		e.proto.stats.Malformed.Add(1)
		return
	}
	if m.Type() == header.ICMPv4EchoReply && !bcast {
		// Echo replies belong to the ping socket whose identifier they carry.
		e.proto.stack.DeliverTransportPacket(tcpip.TransportProtocolNumber(header.IPv4ProtocolICMP), src, dst, false, pkt)
		return
	}
	if m.Type() == header.ICMPv4DstUnreachable && !bcast {
		e.deliverUnreachable(m)
		return
	}
	if m.Type() != header.ICMPv4Echo || bcast {
		return
	}
	r, err := e.proto.stack.FindRoute(e.nic.ID(), dst, src, ProtocolNumber)
	if err != nil {
		return
	}
	reply := append([]byte(nil), m...)
	header.EncodeICMPv4(reply, header.ICMPv4EchoReply, 0, uint32(m.Ident())<<16|uint32(m.Sequence()))
	out := stack.NewOutboundPacket(r.MaxHeaderLength(), reply)
	if r.WritePacket(header.IPv4ProtocolICMP, stack.NetworkParams{}, out) == nil {
		e.proto.stats.EchoReplies.Add(1)
	}
}

// allowICMPError is a token bucket: RFC 1812 §4.3.2.8 asks hosts to limit
// ICMP error rates so they cannot be used as amplifiers.
func (e *endpoint) allowICMPError() bool {
	p := e.proto
	now := int64(p.stack.Clock().Now())
	last := p.icmpLast.Swap(now)
	refill := (now - last) * icmpRate / int64(time.Second)
	tokens := min(p.icmpTokens.Load()+refill, icmpRate)
	if tokens <= 0 {
		p.stats.ICMPRateLimited.Add(1)
		p.icmpTokens.Store(tokens)
		return false
	}
	p.icmpTokens.Store(tokens - 1)
	return true
}

// sendUnreachable returns the offending header and 8 bytes of its payload
// (RFC 792) to the sender. Never in reply to a fragment other than the
// first or to an ICMP error.
func (e *endpoint) sendUnreachable(h header.IPv4, code uint8) {
	if h.FragmentOffset() != 0 || !e.allowICMPError() {
		return
	}
	r, err := e.proto.stack.FindRoute(e.nic.ID(), h.DestinationAddress(), h.SourceAddress(), ProtocolNumber)
	if err != nil {
		return
	}
	quote := min(len(h), h.HeaderLength()+8)
	body := make([]byte, header.ICMPv4MinimumSize+quote)
	copy(body[header.ICMPv4MinimumSize:], h[:quote])
	header.EncodeICMPv4(body, header.ICMPv4DstUnreachable, code, 0)
	out := stack.NewOutboundPacket(r.MaxHeaderLength(), body)
	if r.WritePacket(header.IPv4ProtocolICMP, stack.NetworkParams{}, out) == nil {
		e.proto.stats.ICMPErrorsSent.Add(1)
	}
}

// deliverUnreachable hands a destination-unreachable error to the
// endpoint that sent the quoted packet (RFC 1122 §4.1.3.3: UDP passes
// them up). The quote is the offending IPv4 header and at least 8 bytes
// of its payload, enough for the ports.
func (e *endpoint) deliverUnreachable(m header.ICMPv4) {
	q := m.Payload()
	if len(q) < header.IPv4MinimumSize || q[0]>>4 != 4 {
		return
	}
	ihl := int(q[0]&0xf) * 4
	if ihl < header.IPv4MinimumSize || len(q) < ihl+8 {
		return
	}
	var err *tcpip.Error
	switch m.Code() {
	case header.ICMPv4PortUnreachable:
		err = tcpip.ErrConnectionRefused
	case header.ICMPv4NetUnreachable:
		err = tcpip.ErrNetworkUnreachable
	case header.ICMPv4HostUnreachable:
		err = tcpip.ErrHostUnreachable
	default:
		return
	}
	src, dst := tcpip.AddrFromSlice(q[12:16]), tcpip.AddrFromSlice(q[16:20])
	e.proto.stack.DeliverTransportError(tcpip.TransportProtocolNumber(q[9]), src, dst, q[ihl:], err)
}
