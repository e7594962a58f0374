package tcp

import (
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// HandlePacket implements stack.TransportEndpoint: the segment arrival
// processing of RFC 9293 §3.10.7.
func (e *endpoint) HandlePacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) {
	s, ok := parseSegment(id, pkt)
	if !ok {
		e.stack.Stats().MalformedPackets.Add(1)
		return
	}
	e.mu.Lock()
	defer e.unlock()
	switch e.state {
	case StateListen:
		// The listener's paths keep the segment; a copy keeps s, which
		// every segment of a connection passes through, off the heap.
		ls := s
		e.handleListen(id, &ls, pkt)
	case StateSynSent:
		e.handleSynSent(&s)
	case StateInitial, StateBound, StateClosed:
		st := e.stack
		// A copy for the closure, so that s itself stays on the stack.
		rs := s
		e.deferred = append(e.deferred, func() { replyRST(st, id, &rs) })
	default:
		e.handleSynchronized(id, &s, pkt)
	}
}

func (e *endpoint) handleListen(id stack.TransportEndpointID, s *segment, pkt *stack.PacketBuffer) {
	switch {
	case s.has(header.TCPFlagRst):
		return
	case s.has(header.TCPFlagAck) && !s.has(header.TCPFlagSyn):
		if !e.acceptCookie(id, s, pkt) {
			sendRSTTo(e.stack, id, s.ack, 0, header.TCPFlagRst)
		}
		return
	case s.has(header.TCPFlagAck):
		sendRSTTo(e.stack, id, s.ack, 0, header.TCPFlagRst)
		return
	case !s.has(header.TCPFlagSyn) || s.has(header.TCPFlagFin):
		return
	}
	if len(e.acceptQ) >= e.backlog {
		// Accept queue full: drop, and let the peer's SYN retransmission
		// try again later, as Linux does (even with SYN cookies).
		return
	}
	if len(e.synRcvd)+len(e.acceptQ) >= e.backlog || e.stack.TransportProtocol(ProtocolNumber).(*protocol).cookiesAlways.Load() {
		// SYN queue full: answer statelessly (RFC 4987 §3.6).
		e.sendCookieSynAck(id, s)
		return
	}
	r, err := e.stack.FindRoute(0, id.LocalAddress, id.RemoteAddress, e.netProto)
	if err != nil {
		return
	}
	c := e.newChild(id, r)
	c.irs, c.rcvNxt = s.seq, s.seq+1
	c.processSynOptions(s, true)
	c.state = StateSynRcvd
	if !e.registerChild(c, id) {
		return
	}
	c.sendSYN()
	c.unlock()
}

// newChild makes a locked connection endpoint for id inheriting the
// listener's options, with its send side initialised.
func (e *endpoint) newChild(id stack.TransportEndpointID, r *stack.Route) *endpoint {
	c := newEndpoint(e.stack, e.netProto, nil)
	c.mu.Lock()
	c.noDelay, c.keepalive, c.keepIdle, c.keepIntvl, c.keepCount = e.noDelay, e.keepalive, e.keepIdle, e.keepIntvl, e.keepCount
	c.sndBufSize, c.rcvBufSize, c.ttl, c.tos, c.userMSS = e.sndBufSize, e.rcvBufSize, e.ttl, e.tos, e.userMSS
	if e.cubic != nil {
		c.cubic = &cubicState{}
	}
	c.id, c.route, c.listener, c.bindNIC = id, r, e, e.bindNIC
	c.initSend()
	return c
}

// registerChild reserves the port for the locked child c, registers it
// and adds it to the SYN queue. On failure it closes and unlocks c and
// returns false.
func (e *endpoint) registerChild(c *endpoint, id stack.TransportEndpointID) bool {
	// The connection holds the port too (sharing it with its listener),
	// so the port stays busy after the listener closes, as on Linux.
	res, perr := e.stack.Ports().Reserve(stack.Reservation{Proto: ProtocolNumber, Family: e.family(), Addr: id.LocalAddress, Port: id.LocalPort,
		Flags: stack.PortFlags{ReuseAddr: e.reuseAddr, ReusePort: e.reusePort}, Dest: tcpip.FullAddress{Addr: id.RemoteAddress, Port: id.RemotePort},
		Owner: c, Group: e.res.Group})
	if perr != nil {
		c.state = StateClosed
		c.unlock()
		return false
	}
	c.res = res
	if err := e.stack.RegisterTransportEndpoint(ProtocolNumber, id, c, false); err != nil {
		e.stack.Ports().Release(res)
		c.res = nil
		c.state = StateClosed
		c.unlock()
		return false
	}
	c.registered = true
	e.synRcvd[c] = struct{}{}
	return true
}

// processSynOptions negotiates from the peer's SYN (RFC 7323 §2.2, §3.2;
// RFC 9293 §3.7.1).
func (e *endpoint) processSynOptions(s *segment, passive bool) {
	e.sndWnd = s.wnd
	e.sndWl1, e.sndWl2 = s.seq, s.ack
	if s.opts.HasWS {
		e.wsOK, e.sndWS = true, s.opts.WindowScale
	} else {
		e.wsOK, e.sndWS, e.rcvWS = false, 0, 0
	}
	e.sackOK = s.opts.SACKPermitted
	e.tsOK = s.opts.HasTS
	if e.tsOK {
		e.tsRecent = s.opts.TSVal
	}
	peer := DefaultMSS
	if s.opts.HasMSS && s.opts.MSS > 0 {
		peer = int(s.opts.MSS)
	}
	e.mss = min(peer, e.advertisedMSS())
	if e.tsOK {
		e.mss -= 12
	}
	e.mss = max(e.mss, 64)
	e.cwnd = initialWindowSegments * e.mss
	e.ssthresh = 1 << 30
}

func (e *endpoint) handleSynSent(s *segment) {
	if s.has(header.TCPFlagAck) && (seqLEQ(s.ack, e.iss) || seqGT(s.ack, e.sndMax)) {
		if !s.has(header.TCPFlagRst) {
			e.transmit(header.TCPFlagRst, s.ack, 0, 0, nil, nil)
		}
		return
	}
	if s.has(header.TCPFlagRst) {
		if s.has(header.TCPFlagAck) {
			e.fail(tcpip.ErrConnectionRefused, false)
		}
		return
	}
	if !s.has(header.TCPFlagSyn) {
		return
	}
	e.irs, e.rcvNxt = s.seq, s.seq+1
	e.processSynOptions(s, false)
	if !s.has(header.TCPFlagAck) {
		// Simultaneous open.
		e.state = StateSynRcvd
		e.sndNxt = e.iss
		e.stopRTX()
		e.sendSYN()
		return
	}
	e.sndUna = s.ack
	if e.tsOK && s.opts.TSEcr != 0 {
		e.updateRTO(e.tsRTT(s.opts.TSEcr))
	}
	e.retries = 0
	e.stopRTX()
	e.rto = max(e.rto/2, MinRTO) // undo the SYN backoff
	if e.rttValid {
		e.rto = e.computeRTO()
	}
	e.state = StateEstablished
	e.lastRecv = e.clock.Now()
	e.sendAck()
	e.resetKeepalive()
	e.notify |= tcpip.EventOut
}

// sendOutOfWindowAck answers an unacceptable segment, at most once per
// outOfWindowAckInterval: two endpoints that disagree about sequence
// space (after a spoofed segment, say) would otherwise ACK each other
// forever (RFC 5961 §7).
func (e *endpoint) sendOutOfWindowAck() {
	now := e.clock.Now()
	if e.oowAckSent && now-e.lastOOWAck < outOfWindowAckInterval {
		return
	}
	e.oowAckSent, e.lastOOWAck = true, now
	e.sendAck()
}

func (e *endpoint) tsRTT(ecr uint32) time.Duration {
	ms := e.tsVal() - ecr
	if int32(ms) < 0 {
		ms = 0
	}
	return time.Duration(ms) * time.Millisecond
}

// endProbing leaves the persist state. The peer answered, so the backoff
// the probes accumulated says nothing about the path: the RTO goes back to
// the estimate (as Linux clears its backoff on a probe's answer).
func (e *endpoint) endProbing() {
	e.probing, e.probeSent = false, false
	if e.rttValid {
		e.rto = e.computeRTO()
	}
}

func (e *endpoint) computeRTO() time.Duration {
	return min(max(e.srtt+max(time.Millisecond, 4*e.rttvar), MinRTO), MaxRTO)
}

// updateRTO folds in an RTT sample (RFC 6298 §2).
func (e *endpoint) updateRTO(r time.Duration) {
	if !e.rttValid {
		e.srtt, e.rttvar, e.rttValid = r, r/2, true
	} else {
		d := e.srtt - r
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + r) / 8
	}
	e.rto = e.computeRTO()
}

func (e *endpoint) handleSynchronized(id stack.TransportEndpointID, s *segment, pkt *stack.PacketBuffer) {
	rst := s.has(header.TCPFlagRst)
	// PAWS: a segment with an older timestamp is a stale duplicate
	// (RFC 7323 §5.3).
	if e.tsOK && s.opts.HasTS && !rst && int32(s.opts.TSVal-e.tsRecent) < 0 {
		e.sendOutOfWindowAck()
		return
	}
	// A new SYN may reopen a connection in TIME-WAIT (RFC 9293 §3.10.7.4,
	// RFC 6191): retire this one and let the listener have the SYN.
	if e.state == StateTimeWait && s.has(header.TCPFlagSyn) && !s.has(header.TCPFlagAck) && !rst {
		newer := seqGT(s.seq, e.rcvNxt) || (e.tsOK && s.opts.HasTS && int32(s.opts.TSVal-e.tsRecent) > 0)
		if newer {
			e.teardown()
			st := e.stack
			e.deferred = append(e.deferred, func() {
				st.DeliverTransportPacket(ProtocolNumber, id.RemoteAddress, id.LocalAddress, false, pkt)
			})
			return
		}
	}
	if e.state == StateSynRcvd && s.has(header.TCPFlagSyn) && !s.has(header.TCPFlagAck) && s.seq == e.irs {
		e.sendSYN() // our SYN-ACK was lost
		return
	}
	wnd := uint32(max(e.rcvWindow(), int(e.lastRcvAdv)))
	segLen := s.seqLen()
	var ok bool
	switch {
	case segLen == 0 && wnd == 0:
		ok = s.seq == e.rcvNxt
	case segLen == 0:
		ok = inWindow(s.seq, e.rcvNxt, wnd)
	case wnd == 0:
		// A zero window still takes the ACK and RST of an in-order
		// segment; its data is dropped below.
		ok = s.seq == e.rcvNxt
	default:
		ok = inWindow(s.seq, e.rcvNxt, wnd) || inWindow(s.seq+segLen-1, e.rcvNxt, wnd)
	}
	if !ok {
		if !rst {
			e.sendOutOfWindowAck()
		}
		return
	}
	e.lastRecv = e.clock.Now()
	e.keepProbes = 0
	if rst {
		if s.seq != e.rcvNxt {
			e.sendOutOfWindowAck() // challenge ACK (RFC 5961 §3.2)
			return
		}
		switch e.state {
		case StateSynRcvd:
			if e.listener != nil {
				e.teardown()
			} else {
				e.fail(tcpip.ErrConnectionRefused, false)
			}
		case StateClosing, StateLastAck, StateTimeWait:
			e.teardown()
		default:
			e.fail(tcpip.ErrConnectionReset, false)
		}
		return
	}
	if s.has(header.TCPFlagSyn) {
		e.sendOutOfWindowAck() // challenge ACK (RFC 5961 §4.2)
		return
	}
	if !s.has(header.TCPFlagAck) {
		return
	}
	if e.tsOK && s.opts.HasTS && seqLEQ(s.seq, e.lastAckSent) {
		e.tsRecent = s.opts.TSVal
	}
	if e.state == StateSynRcvd {
		if !seqGT(s.ack, e.sndUna) || seqGT(s.ack, e.sndMax) {
			e.transmit(header.TCPFlagRst, s.ack, 0, 0, nil, nil)
			return
		}
		e.sndUna = s.ack
		e.sndWnd = s.wnd << e.sndWS
		e.sndWl1, e.sndWl2 = s.seq, s.ack
		e.retries = 0
		e.stopRTX()
		e.rto = InitialRTO
		if e.tsOK && s.opts.TSEcr != 0 {
			e.updateRTO(e.tsRTT(s.opts.TSEcr))
		}
		e.state = StateEstablished
		e.resetKeepalive()
		e.notify |= tcpip.EventOut
		if l := e.listener; l != nil {
			e.deferred = append(e.deferred, func() { l.deliverAccepted(e) })
		}
	}
	if !e.processAck(s) {
		return
	}
	e.processData(s)
	e.sendData()
}

// processAck handles the ACK field (RFC 9293 §3.10.7.4 fifth check). It
// returns false if the endpoint closed.
func (e *endpoint) processAck(s *segment) bool {
	ackLimit := e.sndMax
	if e.probing && e.probeSent && e.sndMax == e.sndUna && e.sndBuf.Len() > 0 {
		// The peer may keep a probe's byte: a window scaled down to zero
		// can still hide a few free bytes (RFC 7323 §2.3), or the window
		// opened as the probe arrived. Its ACK of SND.UNA+1 then covers
		// data we sent; refusing it would refuse every later ACK too,
		// window updates included, and stall the connection for good.
		ackLimit = e.sndUna + 1
	}
	if seqGT(s.ack, ackLimit) {
		e.sendOutOfWindowAck()
		return false
	}
	if seqGT(s.ack, e.sndMax) {
		e.sndMax = s.ack
		e.sndNxt = s.ack
	}
	if e.sackOK && s.opts.NumSACKBlocks > 0 {
		e.updateScoreboard(&s.opts)
	}
	oldWnd := e.sndWnd
	if seqLT(e.sndWl1, s.seq) || (e.sndWl1 == s.seq && seqLEQ(e.sndWl2, s.ack)) {
		e.sndWnd = s.wnd << e.sndWS
		e.sndWl1, e.sndWl2 = s.seq, s.ack
	}
	if e.probing && e.sndWnd > 0 && e.sndMax == e.sndUna {
		// The window opened: the persist timer, backed off by every probe
		// the window stayed shut for, gives way to a fresh retransmission
		// timer for the data that now goes out.
		e.endProbing()
		e.stopRTX()
	}
	switch {
	case seqGT(s.ack, e.sndUna):
		acked := int(s.ack - e.sndUna)
		dataAcked := min(acked, e.sndBuf.Len())
		if acked > e.sndBuf.Len() && e.finQueued {
			e.finAcked = true
		}
		if e.tsOK && s.opts.HasTS && s.opts.TSEcr != 0 {
			e.updateRTO(e.tsRTT(s.opts.TSEcr))
		} else if e.rttMeasuring && seqGEQ(s.ack, e.rttSeq) {
			e.rttMeasuring = false
			e.updateRTO(e.clock.Now() - e.rttStart)
		}
		e.sndBuf.Trim(dataAcked)
		e.sndUna = s.ack
		if seqLT(e.sndNxt, e.sndUna) {
			e.sndNxt = e.sndUna
		}
		e.trimScoreboard()
		e.retries = 0
		if e.probing {
			e.endProbing()
		}
		if e.inRecovery {
			if seqGEQ(s.ack, e.recover) {
				e.cwnd = min(e.ssthresh, max(e.inFlight(), e.mss)+e.mss)
				e.inRecovery = false
				e.dupAcks = 0
			} else {
				// Partial ACK: the next hole is lost too (RFC 6582 §3.2).
				e.cwnd = max(e.cwnd-acked+e.mss, e.mss)
				if len(e.sacked) > 0 {
					e.retransmitHoles()
				} else {
					e.retransmitFirst()
				}
			}
		} else {
			e.dupAcks = 0
			if e.cwnd < e.ssthresh {
				e.cwnd += min(acked, e.mss)
			} else {
				e.congestionAvoidance(acked)
			}
		}
		e.stopRTX()
		e.restartRTX()
		if dataAcked > 0 {
			e.notify |= tcpip.EventOut
		}
	case s.ack == e.sndUna && len(s.payload) == 0 && !s.has(header.TCPFlagFin) && e.sndWnd == oldWnd && e.sndMax != e.sndUna:
		e.dupAcks++
		switch {
		case e.dupAcks == 3 && !e.inRecovery:
			// Fast retransmit, then NewReno fast recovery (RFC 6582 §3.2).
			e.ssthresh = e.lossThreshold()
			e.recover = e.sndMax
			e.inRecovery = true
			e.rttMeasuring = false
			e.retransmitFirst()
			e.rtxNext = e.sndUna + uint32(min(e.sndBuf.Len(), e.mss))
			e.cwnd = e.ssthresh + 3*e.mss
			if len(e.sacked) > 0 {
				e.retransmitHoles()
			}
		case e.inRecovery:
			e.cwnd += e.mss
			if len(e.sacked) > 0 {
				e.retransmitHoles()
			}
		}
	}
	if e.finAcked {
		switch e.state {
		case StateFinWait1:
			e.state = StateFinWait2
			e.stopRTX()
			if e.closed {
				e.armStateTimer(FinWait2Timeout)
			}
		case StateClosing:
			e.enterTimeWait()
		case StateLastAck:
			e.teardown()
			return false
		}
	}
	return true
}

// retransmitFirst resends the oldest unacknowledged segment.
func (e *endpoint) retransmitFirst() {
	n := min(e.sndBuf.Len(), e.mss)
	if n > 0 {
		e.sendSegment(e.sndUna, n)
	} else if e.finQueued && !e.finAcked {
		e.transmit(header.TCPFlagFin|header.TCPFlagAck, e.sndUna, e.rcvNxt, e.scaledWindow(), nil, nil)
	}
}

func (e *endpoint) enterTimeWait() {
	e.state = StateTimeWait
	e.stopRTX()
	e.stopKeepTimer()
	if e.res != nil {
		e.stack.Ports().Update(e.res, stack.PortFlags{TimeWait: true}, e.res.Dest)
	}
	e.armStateTimer(TimeWaitDuration)
	e.notify |= tcpip.EventHUp
}

// processData queues in-window data and handles FIN (RFC 9293 §3.10.7.4
// seventh and eighth checks).
func (e *endpoint) processData(s *segment) {
	if e.state != StateEstablished && e.state != StateFinWait1 && e.state != StateFinWait2 {
		return
	}
	seq, payload, fin := s.seq, s.payload, s.has(header.TCPFlagFin)
	if seqLT(seq, e.rcvNxt) {
		d := int(e.rcvNxt - seq)
		if d > len(payload) {
			return // only an old FIN
		}
		payload, seq = payload[d:], e.rcvNxt
	}
	wnd := e.rcvWindow() - int(seq-e.rcvNxt)
	if wnd < 0 {
		wnd = 0
	}
	if len(payload) > wnd {
		payload, fin = payload[:wnd], false
	}
	if len(payload) == 0 && !fin {
		if len(s.payload) > 0 {
			e.sendAck() // zero window: tell the prober
		}
		return
	}
	if e.closed && len(payload) > 0 {
		// Nobody will ever read this: reset (RFC 2525 §2.17).
		e.fail(tcpip.ErrConnectionAborted, true)
		return
	}
	if seq != e.rcvNxt {
		e.lastOOOSeq = seq
		e.queueOutOfOrder(seq, payload, s.chunk, fin)
		e.sendAck() // duplicate ACK hints loss to the sender
		return
	}
	e.accept(payload, s.chunk, fin)
	for len(e.ooo) > 0 && !e.finRcvd {
		o := e.ooo[0]
		if seqGT(o.seq, e.rcvNxt) {
			break
		}
		e.ooo[0] = oooSegment{}
		e.ooo = e.ooo[1:]
		e.oooBytes -= len(o.payload)
		d := int(e.rcvNxt - o.seq)
		if d <= len(o.payload) {
			e.accept(o.payload[d:], o.chunk, o.fin)
		}
		o.chunk.DecRef()
	}
	e.sendAck()
}

// accept queues in-order data; chunk is payload's buffer, which the
// queue references while it holds the bytes.
func (e *endpoint) accept(payload []byte, chunk *buffer.Chunk, fin bool) {
	if len(payload) > 0 {
		if !e.shutRead {
			chunk.IncRef()
			e.rcvQueue = append(e.rcvQueue, payload)
			e.rcvChunks = append(e.rcvChunks, chunk)
			e.rcvUsed += len(payload)
		}
		e.rcvNxt += uint32(len(payload))
		e.notify |= tcpip.EventIn
	}
	if fin {
		e.rcvNxt++
		e.finRcvd = true
		e.notify |= tcpip.EventIn | tcpip.EventRdHUp
		switch e.state {
		case StateEstablished:
			e.state = StateCloseWait
		case StateFinWait1:
			if e.finAcked {
				e.enterTimeWait()
			} else {
				e.state = StateClosing
			}
		case StateFinWait2:
			e.enterTimeWait()
		}
	}
}

func (e *endpoint) queueOutOfOrder(seq uint32, payload []byte, chunk *buffer.Chunk, fin bool) {
	if len(e.ooo) >= maxOutOfOrderSegments || e.rcvUsed+e.oooBytes+len(payload) > e.rcvBufSize {
		return
	}
	i := 0
	for i < len(e.ooo) && seqLT(e.ooo[i].seq, seq) {
		i++
	}
	if i < len(e.ooo) && e.ooo[i].seq == seq && len(e.ooo[i].payload) >= len(payload) {
		return // duplicate
	}
	e.ooo = append(e.ooo, oooSegment{})
	copy(e.ooo[i+1:], e.ooo[i:])
	chunk.IncRef()
	e.ooo[i] = oooSegment{seq: seq, payload: payload, chunk: chunk, fin: fin}
	e.oooBytes += len(payload)
}

// deliverAccepted moves an established child to the accept queue.
func (e *endpoint) deliverAccepted(c *endpoint) {
	e.mu.Lock()
	if e.state != StateListen {
		e.unlock()
		c.Abort()
		return
	}
	delete(e.synRcvd, c)
	if len(e.acceptQ) >= e.backlog {
		e.unlock()
		c.Abort()
		return
	}
	e.acceptQ = append(e.acceptQ, c)
	e.notify |= tcpip.EventIn
	e.unlock()
}

// childDone forgets a child that died before being accepted.
func (e *endpoint) childDone(c *endpoint) {
	e.mu.Lock()
	delete(e.synRcvd, c)
	e.unlock()
}
