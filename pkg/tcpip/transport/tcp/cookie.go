package tcp

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// SYN cookies (RFC 4987 §3.6). When a listener's SYN queue is full it
// answers a SYN without keeping state: the SYN-ACK's ISN is
//
//	bits 31..27  coarse time counter (mod 32)
//	bits 26..24  index into cookieMSSTable
//	bits 23..0   keyed hash of 4-tuple, client ISN and full counter
//
// and the final ACK is accepted if ACK-1 is such a cookie from the
// current or previous counter period. Cookie connections carry no window
// scaling, SACK or timestamps: those options are not encoded anywhere.

// cookiePeriod is the time counter's tick; a cookie is honoured for up to
// two ticks.
const cookiePeriod = 64 * time.Second

// cookieMSSTable holds common MSS values; a cookie records the largest
// one not above the peer's MSS.
var cookieMSSTable = [8]uint16{536, 1200, 1220, 1300, 1360, 1400, 1440, 1460}

func cookieMSSIndex(peerMSS int) uint32 {
	i := 0
	for j, m := range cookieMSSTable {
		if int(m) <= peerMSS {
			i = j
		}
	}
	return uint32(i)
}

func (p *protocol) cookieCounter() uint32 {
	return uint32(p.stack.Clock().Now() / cookiePeriod)
}

// cookieHash is the 24-bit MAC: SHA-256 over key, 4-tuple, client ISN,
// counter and MSS index (fixed-length input, so the key prefix is a sound
// MAC; the MSS index is covered so a forger cannot pick it).
func (p *protocol) cookieHash(id stack.TransportEndpointID, clientISN, counter, mssIndex uint32) uint32 {
	var b [32 + 16 + 16 + 4 + 4 + 4 + 1]byte
	copy(b[:32], p.cookieKey[:])
	la, ra := id.LocalAddress.As16(), id.RemoteAddress.As16()
	copy(b[32:], la[:])
	copy(b[48:], ra[:])
	binary.BigEndian.PutUint16(b[64:], id.LocalPort)
	binary.BigEndian.PutUint16(b[66:], id.RemotePort)
	binary.BigEndian.PutUint32(b[68:], clientISN)
	binary.BigEndian.PutUint32(b[72:], counter)
	b[76] = byte(mssIndex)
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint32(sum[:]) & 0xffffff
}

// makeCookie returns the ISN for a stateless SYN-ACK answering a SYN with
// sequence number clientISN from a peer advertising peerMSS.
func (p *protocol) makeCookie(id stack.TransportEndpointID, clientISN uint32, peerMSS int) uint32 {
	t := p.cookieCounter()
	i := cookieMSSIndex(peerMSS)
	return (t&31)<<27 | i<<24 | p.cookieHash(id, clientISN, t, i)
}

// checkCookie validates cookie (the final ACK's ack-1) for a connection
// whose client ISN is clientISN, returning the MSS it records.
func (p *protocol) checkCookie(id stack.TransportEndpointID, clientISN, cookie uint32) (int, bool) {
	now := p.cookieCounter()
	age := (now - cookie>>27) & 31
	if age > 1 || now < age {
		return 0, false
	}
	t := now - age
	if p.cookieHash(id, clientISN, t, cookie>>24&7) != cookie&0xffffff {
		return 0, false
	}
	return int(cookieMSSTable[cookie>>24&7]), true
}

// sendCookieSynAck answers the SYN s with a stateless cookie SYN-ACK.
func (e *endpoint) sendCookieSynAck(id stack.TransportEndpointID, s *segment) {
	p := e.stack.TransportProtocol(ProtocolNumber).(*protocol)
	r, err := e.stack.FindRoute(0, id.LocalAddress, id.RemoteAddress, e.netProto)
	if err != nil {
		return
	}
	peer := DefaultMSS
	if s.opts.HasMSS && s.opts.MSS > 0 {
		peer = int(s.opts.MSS)
	}
	ours := r.MTU() - header.TCPMinimumSize
	if e.userMSS > 0 && e.userMSS < ours {
		ours = e.userMSS
	}
	iss := p.makeCookie(id, s.seq, min(peer, ours))
	var ob [40]byte
	opts := ob[:header.EncodeTCPOptions(ob[:], &header.TCPOptions{HasMSS: true, MSS: uint16(min(max(ours, 88), 0xffff))})]
	hl := header.TCPMinimumSize + len(opts)
	pkt := stack.NewOutboundPacket(r.MaxHeaderLength()+hl, nil)
	h := pkt.Header.Prepend(hl)
	header.EncodeTCPHeader(h, &header.TCPFields{SrcPort: id.LocalPort, DstPort: id.RemotePort, Seq: iss, Ack: s.seq + 1,
		Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: uint16(min(e.rcvBufSize, 0xffff)), Options: opts}, 0, 0, r.LocalAddress, r.RemoteAddress)
	pkt.TransportHeader = h
	r.WritePacket(ProtocolNumber, stack.NetworkParams{TTL: e.ttl, TOS: e.tos}, pkt)
	e.cookieSentAt, e.cookiesSent = e.clock.Now(), true
}

// acceptCookie handles a bare ACK reaching the listener: if it completes
// a cookie handshake, the connection is created as if it had waited in
// the SYN queue, and the ACK (with any data) is processed by it. It
// reports whether the ACK was taken (or deliberately dropped).
func (e *endpoint) acceptCookie(id stack.TransportEndpointID, s *segment, pkt *stack.PacketBuffer) bool {
	if s.has(header.TCPFlagRst) || !e.cookiesSent || e.clock.Now()-e.cookieSentAt > 2*cookiePeriod {
		return false
	}
	p := e.stack.TransportProtocol(ProtocolNumber).(*protocol)
	irs := s.seq - 1
	mss, ok := p.checkCookie(id, irs, s.ack-1)
	if !ok {
		return false
	}
	if len(e.acceptQ) >= e.backlog {
		// Valid, but no room: drop; the peer's retransmission of data
		// (which carries the ACK) tries again, as on Linux.
		return true
	}
	r, err := e.stack.FindRoute(0, id.LocalAddress, id.RemoteAddress, e.netProto)
	if err != nil {
		return true
	}
	c := e.newChild(id, r)
	iss := s.ack - 1
	c.iss, c.sndUna, c.sndNxt, c.sndMax = iss, iss, iss+1, iss+1
	c.irs, c.rcvNxt = irs, s.seq
	c.sndWnd = s.wnd
	c.sndWl1, c.sndWl2 = irs, iss
	c.wsOK, c.sndWS, c.rcvWS, c.sackOK, c.tsOK = false, 0, 0, false, false
	c.mss = max(min(mss, c.advertisedMSS()), 64)
	c.cwnd = initialWindowSegments * c.mss
	c.ssthresh = 1 << 30
	c.state = StateSynRcvd
	if !e.registerChild(c, id) {
		return true
	}
	c.unlock()
	// The child takes the ACK once the listener's lock is released: its
	// move to the accept queue locks the listener.
	e.deferred = append(e.deferred, func() {
		c.mu.Lock()
		if c.state == StateSynRcvd {
			c.handleSynchronized(id, s, pkt)
		}
		c.unlock()
	})
	return true
}
