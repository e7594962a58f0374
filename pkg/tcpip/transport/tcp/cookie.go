package tcp

import (
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
//	bits 23..0   keyed hash of 4-tuple, client ISN, full counter, MSS
//	             index and the option bits below
//
// and the final ACK is accepted if ACK-1 is such a cookie from the
// current or previous counter period. Every period thus has its own
// derived key, so a cookie's secret effectively rotates each period.
//
// When the SYN carried timestamps, the SYN-ACK's TSval carries the other
// negotiated options in its low cookieOptBits bits (the layout Linux
// uses, so captures read the same):
//
//	bits 3..0  the peer's window scale, or cookieNoWS if it sent none
//	bit  4     SACK permitted
//	bit  5     ECN (never set: this stack does not negotiate ECN)
//
// The peer echoes them in the final ACK's TSecr. The hash covers them, so
// they cannot be altered, and the echoed TSval must itself be recent. A
// SYN without timestamps gets a cookie connection without window
// scaling, SACK or timestamps, since there is nowhere to keep them.

// cookiePeriod is the time counter's tick; a cookie is honoured for up to
// two ticks.
const cookiePeriod = 64 * time.Second

// Option bits in a cookie SYN-ACK's TSval.
const (
	cookieOptBits = 6
	cookieOptMask = 1<<cookieOptBits - 1
	cookieNoWS    = 0xf
	cookieOptSACK = 1 << 4
	cookieOptECN  = 1 << 5
	// cookieNoTS is hashed in place of the option bits when the SYN had
	// no timestamps; it is outside cookieOptMask, so a cookie made for
	// one case never validates in the other.
	cookieNoTS = 0xff
)

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

// cookieOpts are the options a cookie's TSval bits record.
type cookieOpts struct {
	wsOK  bool
	sndWS uint8 // the peer's shift
	sack  bool
}

// encodeCookieOpts packs what a SYN with timestamps negotiated.
func encodeCookieOpts(o *header.TCPOptions) uint32 {
	v := uint32(cookieNoWS)
	if o.HasWS {
		v = uint32(min(o.WindowScale, header.TCPMaxWindowScale))
	}
	if o.SACKPermitted {
		v |= cookieOptSACK
	}
	return v
}

// decodeCookieOpts unpacks an echoed TSecr's option bits, refusing values
// encodeCookieOpts never produces.
func decodeCookieOpts(v uint32) (cookieOpts, bool) {
	v &= cookieOptMask
	ws := uint8(v & cookieNoWS)
	if v&cookieOptECN != 0 || (ws > header.TCPMaxWindowScale && ws != cookieNoWS) {
		return cookieOpts{}, false
	}
	o := cookieOpts{wsOK: ws != cookieNoWS, sack: v&cookieOptSACK != 0}
	if o.wsOK {
		o.sndWS = ws
	}
	return o, true
}

// cookieTSVal is the TSval for a cookie SYN-ACK when the connection's
// timestamp clock reads now: now with its low bits replaced by opts, and
// never ahead of now, so the connection's later TSvals do not go
// backwards from it.
func cookieTSVal(now, opts uint32) uint32 {
	v := now&^cookieOptMask | opts
	if seqGT(v, now) {
		v -= 1 << cookieOptBits
	}
	return v
}

// rcvWindowScale is the shift a connection with rcvBufSize of receive
// buffer advertises (as initSend chooses it).
func rcvWindowScale(rcvBufSize int) uint8 {
	var ws uint8
	for ws < header.TCPMaxWindowScale && rcvBufSize>>ws > 0xffff {
		ws++
	}
	return ws
}

func (p *protocol) cookieCounter() uint32 {
	return uint32(p.stack.Clock().Now() / cookiePeriod)
}

// connTSVal is connection id's timestamp clock (endpoint.tsVal) before
// the connection exists.
func (p *protocol) connTSVal(id stack.TransportEndpointID) uint32 {
	_, off := p.connOffsets(id)
	return uint32(p.stack.Clock().Now()/time.Millisecond) + off
}

// cookieHash is the 24-bit MAC: SipHash-2-4 under the stack's cookie key
// over the 4-tuple, client ISN, counter, MSS index and option bits (all
// covered so a forger can pick none of them).
func (p *protocol) cookieHash(id stack.TransportEndpointID, clientISN, counter, mssIndex, opts uint32) uint32 {
	var b [tupleBytes + 4 + 4 + 1 + 1]byte
	putTuple(b[:], id)
	binary.BigEndian.PutUint32(b[tupleBytes:], clientISN)
	binary.BigEndian.PutUint32(b[tupleBytes+4:], counter)
	b[tupleBytes+8] = byte(mssIndex)
	b[tupleBytes+9] = byte(opts)
	return uint32(sipHash24(p.cookieKey, b[:])) & 0xffffff
}

// makeCookie returns the ISN for a stateless SYN-ACK answering a SYN with
// sequence number clientISN from a peer advertising peerMSS; opts is the
// option bits its TSval carries, or cookieNoTS.
func (p *protocol) makeCookie(id stack.TransportEndpointID, clientISN uint32, peerMSS int, opts uint32) uint32 {
	t := p.cookieCounter()
	i := cookieMSSIndex(peerMSS)
	return (t&31)<<27 | i<<24 | p.cookieHash(id, clientISN, t, i, opts)
}

// checkCookie validates cookie (the final ACK's ack-1) for a connection
// whose client ISN is clientISN and whose ACK echoes option bits opts (or
// has no timestamps: cookieNoTS), returning the MSS it records.
func (p *protocol) checkCookie(id stack.TransportEndpointID, clientISN, cookie, opts uint32) (int, bool) {
	now := p.cookieCounter()
	age := (now - cookie>>27) & 31
	if age > 1 || now < age {
		return 0, false
	}
	t := now - age
	if p.cookieHash(id, clientISN, t, cookie>>24&7, opts) != cookie&0xffffff {
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
	o := header.TCPOptions{HasMSS: true, MSS: uint16(min(max(ours, 88), 0xffff))}
	bitsInTS := uint32(cookieNoTS)
	if s.opts.HasTS {
		bitsInTS = encodeCookieOpts(&s.opts)
		o.HasTS, o.TSVal, o.TSEcr = true, cookieTSVal(p.connTSVal(id), bitsInTS), s.opts.TSVal
		o.SACKPermitted = s.opts.SACKPermitted
		if s.opts.HasWS {
			o.HasWS, o.WindowScale = true, rcvWindowScale(e.rcvBufSize)
		}
	}
	iss := p.makeCookie(id, s.seq, min(peer, ours), bitsInTS)
	var ob [40]byte
	opts := ob[:header.EncodeTCPOptions(ob[:], &o)]
	hl := header.TCPMinimumSize + len(opts)
	pkt := stack.NewOutboundPacket(r.MaxHeaderLength()+hl, nil)
	h := pkt.Header.Prepend(hl)
	header.EncodeTCPHeader(h, &header.TCPFields{SrcPort: id.LocalPort, DstPort: id.RemotePort, Seq: iss, Ack: s.seq + 1,
		Flags: header.TCPFlagSyn | header.TCPFlagAck, Window: uint16(min(e.rcvBufSize, 0xffff)), Options: opts}, 0, 0, r.LocalAddress, r.RemoteAddress)
	pkt.TransportHeader = h
	r.WritePacket(ProtocolNumber, stack.NetworkParams{TTL: e.ttl, TOS: e.tos}, pkt)
	e.cookieSentAt, e.cookiesSent = e.clock.Now(), true
}

// checkCookieACK validates the bare ACK s as completing a cookie
// handshake, returning the MSS and options the cookie records.
func (p *protocol) checkCookieACK(id stack.TransportEndpointID, s *segment) (int, cookieOpts, bool) {
	if !s.opts.HasTS {
		mss, ok := p.checkCookie(id, s.seq-1, s.ack-1, cookieNoTS)
		return mss, cookieOpts{}, ok
	}
	co, ok := decodeCookieOpts(s.opts.TSEcr)
	if !ok {
		return 0, co, false
	}
	// The echoed TSval must be one we sent during the cookie's lifetime
	// (it is at most cookieOptMask behind the clock it was taken from).
	if age := p.connTSVal(id) - s.opts.TSEcr; int32(age) < 0 || age > uint32(2*cookiePeriod/time.Millisecond)+cookieOptMask {
		return 0, co, false
	}
	mss, ok := p.checkCookie(id, s.seq-1, s.ack-1, s.opts.TSEcr&cookieOptMask)
	return mss, co, ok
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
	mss, co, ok := p.checkCookieACK(id, s)
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
	irs, iss := s.seq-1, s.ack-1
	c.iss, c.sndUna, c.sndNxt, c.sndMax = iss, iss, iss+1, iss+1
	c.irs, c.rcvNxt = irs, s.seq
	c.sndWnd = s.wnd
	c.sndWl1, c.sndWl2 = irs, iss
	c.mss = max(min(mss, c.advertisedMSS()), 64)
	c.wsOK, c.sndWS, c.sackOK, c.tsOK = false, 0, false, false
	if s.opts.HasTS {
		// newChild's initSend chose the same timestamp offset the cookie's
		// TSval was taken with, and the same window scale the SYN-ACK
		// advertised (rcvWindowScale of the inherited buffer size).
		c.wsOK, c.sndWS, c.sackOK, c.tsOK = co.wsOK, co.sndWS, co.sack, true
		c.tsRecent, c.lastAckSent = s.opts.TSVal, s.seq
		c.mss = max(c.mss-12, 64)
		// The cookie TSval lagged our clock by up to cookieOptMask ms:
		// no RTT sample from its echo.
		s.opts.TSEcr = 0
	}
	if !c.wsOK {
		c.rcvWS = 0
	}
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
