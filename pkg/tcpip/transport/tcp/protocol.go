// Package tcp is the TCP transport (RFC 9293): the connection state
// machine with listen backlog and accept queue (SYN cookies, RFC 4987,
// when the SYN queue is full), MSS, window scaling and
// timestamps (RFC 7323), retransmission with RFC 6298 RTO estimation, slow
// start and congestion avoidance (RFC 5681) with NewReno fast recovery
// (RFC 6582), Nagle, half-close, zero-window probing, keepalive and
// RFC 5961 challenge ACKs. Initial sequence numbers and timestamp offsets
// follow RFC 6528 under a per-stack random key (isn.go); SYN cookies keep
// window scaling and SACK in the timestamp (cookie.go). All timers run on
// the stack's Clock.
package tcp

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// ProtocolNumber is TCP's IP protocol number.
const ProtocolNumber = header.TCPProtocolNumber

// Tunables, mostly Linux's defaults.
const (
	DefaultSendBufferSize    = 1 << 20
	DefaultReceiveBufferSize = 1 << 20
	minBufferSize            = 4096
	maxBufferSize            = 16 << 20
	DefaultMSS               = 536 // RFC 9293 §3.7.1 when the peer sends none
	InitialRTO               = time.Second
	MinRTO                   = 200 * time.Millisecond
	MaxRTO                   = 120 * time.Second
	MaxRetries               = 15
	MaxSynRetries            = 6
	TimeWaitDuration         = 60 * time.Second
	FinWait2Timeout          = 60 * time.Second
	DefaultKeepaliveIdle     = 2 * time.Hour
	DefaultKeepaliveInterval = 75 * time.Second
	DefaultKeepaliveCount    = 9
	initialWindowSegments    = 10 // RFC 6928
	maxOutOfOrderSegments    = 256
	outOfWindowAckInterval   = 500 * time.Millisecond
)

type protocol struct {
	stack *stack.Stack
	// isnKey keys initial sequence numbers and timestamp offsets
	// (isn.go), cookieKey SYN cookies (cookie.go). Both come from
	// crypto/rand for every stack: a predictable key would let anyone
	// guess sequence numbers or forge connections.
	isnKey, cookieKey sipKey
	// cookiesAlways answers every SYN to a listener with a SYN cookie,
	// as Linux's net.ipv4.tcp_syncookies=2 does, not only on overflow.
	cookiesAlways atomic.Bool
}

// NewProtocol is the stack.TransportProtocolFactory for TCP.
func NewProtocol(s *stack.Stack) stack.TransportProtocol {
	return &protocol{stack: s, isnKey: newSipKey(), cookieKey: newSipKey()}
}

func (p *protocol) Number() tcpip.TransportProtocolNumber { return ProtocolNumber }

func (p *protocol) NewEndpoint(netProto tcpip.NetworkProtocolNumber, wq *tcpip.WaitQueue) (tcpip.Endpoint, *tcpip.Error) {
	return newEndpoint(p.stack, netProto, wq), nil
}

func (p *protocol) ParsePorts(b []byte) (uint16, uint16, bool) {
	if len(b) < header.TCPMinimumSize {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), true
}

// HandleUnknownDestinationPacket answers a segment for no connection with
// a reset (RFC 9293 §3.10.7.1), unless it is itself a reset.
func (p *protocol) HandleUnknownDestinationPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) stack.UnknownDestinationAction {
	s, ok := parseSegment(id, pkt)
	if !ok {
		return stack.UnknownDestinationMalformed
	}
	replyRST(p.stack, id, &s)
	return stack.UnknownDestinationHandled
}

// replyRST sends the reset that answers s.
func replyRST(st *stack.Stack, id stack.TransportEndpointID, s *segment) {
	if s.flags&header.TCPFlagRst != 0 {
		return
	}
	if s.flags&header.TCPFlagAck != 0 {
		sendRSTTo(st, id, s.ack, 0, header.TCPFlagRst)
	} else {
		sendRSTTo(st, id, 0, s.seq+s.seqLen(), header.TCPFlagRst|header.TCPFlagAck)
	}
}

func sendRSTTo(st *stack.Stack, id stack.TransportEndpointID, seq, ack uint32, flags uint8) {
	r, err := st.FindRoute(0, id.LocalAddress, id.RemoteAddress, netProtoFor(id.LocalAddress))
	if err != nil {
		return
	}
	pkt := stack.NewOutboundPacket(r.MaxHeaderLength()+header.TCPMinimumSize, nil)
	h := pkt.Header.Prepend(header.TCPMinimumSize)
	header.EncodeTCPHeader(h, &header.TCPFields{SrcPort: id.LocalPort, DstPort: id.RemotePort, Seq: seq, Ack: ack, Flags: flags}, 0, 0, r.LocalAddress, r.RemoteAddress)
	r.WritePacket(ProtocolNumber, stack.NetworkParams{}, pkt)
}

func netProtoFor(a tcpip.Address) tcpip.NetworkProtocolNumber {
	if a.Len() == 16 {
		return header.EthertypeIPv6
	}
	return header.EthertypeIPv4
}

// segment is a parsed inbound segment.
type segment struct {
	seq, ack uint32
	flags    uint8
	wnd      uint32 // raw window field
	payload  []byte
	opts     header.TCPOptions
	// chunk is payload's reference-counted buffer, if it is a view of
	// one (stack.PacketBuffer.Chunk): a holder of payload past the
	// packet's delivery takes a reference.
	chunk *buffer.Chunk
}

func parseSegment(id stack.TransportEndpointID, pkt *stack.PacketBuffer) (segment, bool) {
	var s segment
	if len(pkt.Tail) > 0 && (!pkt.TransportChecksumTrusted || len(pkt.Data) < header.TCPMinimumSize ||
		int(pkt.Data[12]>>4)*4 != len(pkt.Data)) {
		// Only a packet split exactly after its TCP header, on a link
		// that vouches for it, is taken apart as it stands.
		pkt.JoinTail()
	}
	h, ok := header.ParseTCP(pkt.Data)
	if !ok || (!pkt.TransportChecksumTrusted && !h.IsChecksumValid(id.RemoteAddress, id.LocalAddress)) {
		return s, false
	}
	s.opts, ok = header.ParseTCPOptions(h.OptionBytes())
	if !ok {
		return s, false
	}
	s.seq, s.ack, s.flags, s.wnd, s.payload = h.Seq(), h.Ack(), h.Flags(), uint32(h.Window()), h.Payload()
	if len(pkt.Tail) > 0 {
		s.payload, s.chunk = pkt.Tail, pkt.Chunk
	}
	return s, true
}

// ReceivesSplitPackets implements stack.SplitReceiver: parseSegment takes
// the payload from a packet's Tail.
func (p *protocol) ReceivesSplitPackets() {}

func (s *segment) has(f uint8) bool { return s.flags&f != 0 }

// seqLen is the sequence space the segment occupies.
func (s *segment) seqLen() uint32 {
	n := uint32(len(s.payload))
	if s.has(header.TCPFlagSyn) {
		n++
	}
	if s.has(header.TCPFlagFin) {
		n++
	}
	return n
}

// Sequence number comparisons modulo 2^32 (RFC 9293 §3.4).
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool  { return int32(a-b) > 0 }
func seqGEQ(a, b uint32) bool { return int32(a-b) >= 0 }

// inWindow reports whether s lies in [start, start+size).
func inWindow(s, start, size uint32) bool { return seqGEQ(s, start) && seqLT(s, start+size) }
