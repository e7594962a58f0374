package tcp

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// State is a TCP connection state (RFC 9293 §3.3.2).
type State int

// Connection states. Initial and Bound precede LISTEN/SYN-SENT; Closed is
// also where a reset or timed-out connection ends.
const (
	StateInitial State = iota
	StateBound
	StateListen
	StateSynSent
	StateSynRcvd
	StateEstablished
	StateFinWait1
	StateFinWait2
	StateClosing
	StateTimeWait
	StateCloseWait
	StateLastAck
	StateClosed
)

var stateNames = [...]string{"INITIAL", "BOUND", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
	"FIN-WAIT-2", "CLOSING", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSED"}

func (s State) String() string { return stateNames[s] }

func (s State) synchronized() bool { return s >= StateEstablished && s <= StateLastAck }

type oooSegment struct {
	seq     uint32
	payload []byte
	chunk   *buffer.Chunk // payload's buffer, referenced while queued
	fin     bool
}

type endpoint struct {
	stack    *stack.Stack
	netProto tcpip.NetworkProtocolNumber
	wq       *tcpip.WaitQueue
	clock    tcpip.Clock

	mu sync.Mutex
	// Work to do once mu is released: notifications and calls that would
	// otherwise take locks in the wrong order.
	notify   tcpip.EventMask
	deferred []func()
	// userCall is set while Read or Write runs: the caller holds no stack
	// locks, so segments sent meanwhile are left for unlock to deliver
	// through flushRoute (stack.PacketBuffer.DeferDelivery) on this
	// goroutine instead of a hop to the loopback link's goroutine.
	userCall   bool
	flushRoute *stack.Route

	state      State
	id         stack.TransportEndpointID
	registered bool
	bindNIC    tcpip.NICID
	res        *stack.Reservation
	route      *stack.Route
	closed     bool // user called Close: the endpoint is orphaned
	hardError  *tcpip.Error
	softError  *tcpip.Error

	// Options.
	reuseAddr, reusePort, noDelay, keepalive bool
	keepIdle, keepIntvl                      time.Duration
	keepCount                                int
	ttl, tos                                 uint8
	sndBufSize, rcvBufSize                   int
	userMSS                                  int

	// Listener state.
	backlog  int
	acceptQ  []*endpoint
	synRcvd  map[*endpoint]struct{}
	listener *endpoint
	// SYN cookies sent recently: only then is a bare ACK to the listener
	// checked as a cookie.
	cookiesSent  bool
	cookieSentAt time.Duration

	// Send sequence space.
	iss, sndUna, sndNxt, sndMax uint32
	sndWnd                      uint32
	sndWl1, sndWl2              uint32
	sndWS, rcvWS                uint8
	wsOK, tsOK                  bool
	sndBuf                      sndQueue // bytes from sndUna (after SYN) onward
	finQueued                   bool
	finAcked                    bool
	mss                         int

	// SACK.
	sackOK     bool
	sacked     []sackRange
	rtxNext    uint32
	lastOOOSeq uint32

	// Congestion control.
	cwnd, ssthresh int
	caAcc          int
	cubic          *cubicState // nil: NewReno
	dupAcks        int
	inRecovery     bool
	recover        uint32

	// RTT estimation and retransmission.
	srtt, rttvar, rto time.Duration
	rttValid          bool
	rttMeasuring      bool
	rttSeq            uint32
	rttStart          time.Duration
	retries           int
	totalRetrans      int
	rtxTimer          tcpip.Timer
	rtxArmed          bool
	rtxDeadline       time.Duration
	probing           bool
	// probeSent: a persist probe carrying the byte at SND.UNA went out
	// without advancing SND.MAX, so an ACK of SND.UNA+1 is legitimate.
	probeSent bool

	// Timestamps.
	tsOffset    uint32
	tsRecent    uint32
	lastAckSent uint32

	// Receive sequence space.
	irs, rcvNxt uint32
	rcvQueue    [][]byte
	rcvChunks   []*buffer.Chunk // rcvQueue[i]'s buffer, referenced while queued
	rcvUsed     int
	ooo         []oooSegment
	oooBytes    int
	finRcvd     bool
	shutRead    bool
	shutWrite   bool
	lastRcvAdv  uint32 // window last advertised, in bytes

	// Rate limit for answers to unacceptable segments.
	lastOOWAck time.Duration
	oowAckSent bool

	// Keepalive.
	lastRecv   time.Duration
	keepTimer  tcpip.Timer
	keepProbes int
	stateTimer tcpip.Timer // TIME-WAIT and orphaned FIN-WAIT-2

	// Deadlines of the keepalive and state timers on clock, for the
	// socket listings (Snapshot); keepArmed says the keepalive timer is
	// pending.
	keepArmed     bool
	keepDeadline  time.Duration
	stateDeadline time.Duration
	// owner is the socket layer's handle for this endpoint (SetOwner).
	owner any
	// handedOut: accept(2) returned this connection of a listener.
	handedOut atomic.Bool
}

func newEndpoint(s *stack.Stack, netProto tcpip.NetworkProtocolNumber, wq *tcpip.WaitQueue) *endpoint {
	if wq == nil {
		wq = &tcpip.WaitQueue{}
	}
	return &endpoint{
		stack: s, netProto: netProto, wq: wq, clock: s.Clock(),
		sndBufSize: DefaultSendBufferSize, rcvBufSize: DefaultReceiveBufferSize,
		keepIdle: DefaultKeepaliveIdle, keepIntvl: DefaultKeepaliveInterval, keepCount: DefaultKeepaliveCount,
		rto: InitialRTO, mss: DefaultMSS,
	}
}

// unlock releases mu and then delivers queued notifications and deferred
// work.
func (e *endpoint) unlock() {
	n := e.notify
	d := e.deferred
	flush := e.flushRoute
	e.notify, e.deferred, e.flushRoute, e.userCall = 0, nil, nil, false
	e.mu.Unlock()
	if n != 0 {
		e.wq.Notify(n)
	}
	for _, f := range d {
		f()
	}
	if flush != nil {
		flush.FlushLink()
	}
}

func (e *endpoint) WaitQueue() *tcpip.WaitQueue { return e.wq }

// NetworkProtocolNumber implements stack.NetworkProtocolEndpoint.
func (e *endpoint) NetworkProtocolNumber() tcpip.NetworkProtocolNumber { return e.netProto }

// family is the address length of the endpoint's network protocol.
func (e *endpoint) family() int { return e.stack.NetworkProtocol(e.netProto).AddressLength() }

// State returns the connection state (for tests and TCP_INFO).
func (e *endpoint) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

func (e *endpoint) checkFamily(a tcpip.Address) *tcpip.Error {
	if a.Len() != 0 && a.Len() != e.stack.NetworkProtocol(e.netProto).AddressLength() {
		return tcpip.ErrAddressFamily
	}
	return nil
}

func (e *endpoint) Bind(addr tcpip.FullAddress) *tcpip.Error {
	e.mu.Lock()
	defer e.unlock()
	if e.state != StateInitial {
		return tcpip.ErrInvalidEndpointState
	}
	if err := e.checkFamily(addr.Addr); err != nil {
		return err
	}
	if addr.Addr.Unspecified() {
		addr.Addr = tcpip.Address{}
	} else if !e.stack.IsLocalAddress(addr.NIC, addr.Addr) {
		return tcpip.ErrBadLocalAddress
	}
	res, err := e.stack.Ports().Reserve(stack.Reservation{Proto: ProtocolNumber, Family: e.family(), Addr: addr.Addr, Port: addr.Port,
		Flags: stack.PortFlags{ReuseAddr: e.reuseAddr, ReusePort: e.reusePort}, Owner: e})
	if err != nil {
		return err
	}
	e.res, e.bindNIC = res, addr.NIC
	e.id = stack.TransportEndpointID{LocalPort: res.Port, LocalAddress: addr.Addr}
	e.state = StateBound
	return nil
}

func (e *endpoint) Listen(backlog int) *tcpip.Error {
	e.mu.Lock()
	defer e.unlock()
	if backlog <= 0 {
		backlog = 1
	}
	if backlog > 4096 {
		backlog = 4096
	}
	switch e.state {
	case StateListen:
		e.backlog = backlog
		return nil
	case StateInitial:
		res, err := e.stack.Ports().Reserve(stack.Reservation{Proto: ProtocolNumber, Family: e.family(), Flags: stack.PortFlags{ReuseAddr: e.reuseAddr, ReusePort: e.reusePort}, Owner: e, Group: e})
		if err != nil {
			return err
		}
		e.res = res
		e.id = stack.TransportEndpointID{LocalPort: res.Port}
	case StateBound:
		// Accepted connections will share the port with us.
		trial := *e.res
		trial.Group = e
		e.stack.Ports().Release(e.res)
		res, err := e.stack.Ports().Reserve(trial)
		if err != nil {
			// Cannot happen (we just held it), but never lose the port.
			res, _ = e.stack.Ports().Reserve(*e.res)
			e.res = res
			return err
		}
		e.res = res
	default:
		return tcpip.ErrInvalidEndpointState
	}
	if err := e.stack.RegisterTransportEndpoint(ProtocolNumber, e.id, e, e.reusePort); err != nil {
		return err
	}
	e.registered = true
	e.backlog = backlog
	e.synRcvd = make(map[*endpoint]struct{})
	e.state = StateListen
	return nil
}

func (e *endpoint) Accept() (tcpip.Endpoint, tcpip.FullAddress, *tcpip.Error) {
	e.mu.Lock()
	defer e.unlock()
	if e.state != StateListen {
		return nil, tcpip.FullAddress{}, tcpip.ErrInvalidEndpointState
	}
	if len(e.acceptQ) == 0 {
		return nil, tcpip.FullAddress{}, tcpip.ErrWouldBlock
	}
	c := e.acceptQ[0]
	c.handedOut.Store(true)
	e.acceptQ[0] = nil
	e.acceptQ = e.acceptQ[1:]
	return c, tcpip.FullAddress{Addr: c.id.RemoteAddress, Port: c.id.RemotePort}, nil
}

func (e *endpoint) Connect(addr tcpip.FullAddress) *tcpip.Error {
	e.mu.Lock()
	defer e.unlock()
	switch e.state {
	case StateSynSent, StateSynRcvd:
		return tcpip.ErrAlreadyConnecting
	case StateInitial, StateBound:
	case StateClosed:
		if e.hardError != nil {
			return e.hardError
		}
		return tcpip.ErrInvalidEndpointState
	default:
		if e.state.synchronized() {
			return tcpip.ErrAlreadyConnected
		}
		return tcpip.ErrInvalidEndpointState
	}
	if err := e.checkFamily(addr.Addr); err != nil {
		return err
	}
	if addr.Addr.Len() == 0 || addr.Port == 0 {
		return tcpip.ErrInvalidArgument
	}
	nic := addr.NIC
	if nic == 0 {
		nic = e.bindNIC
	}
	r, err := e.stack.FindRoute(nic, e.id.LocalAddress, addr.Addr, e.netProto)
	if err != nil {
		return err
	}
	if r.IsBroadcast() || addr.Addr.IsMulticast() {
		return tcpip.ErrNetworkUnreachable
	}
	dest := tcpip.FullAddress{Addr: addr.Addr, Port: addr.Port}
	if e.res == nil {
		res, err := e.stack.Ports().Reserve(stack.Reservation{Proto: ProtocolNumber, Family: e.family(), Addr: r.LocalAddress,
			Flags: stack.PortFlags{ReuseAddr: e.reuseAddr, ReusePort: e.reusePort}, Dest: dest, Owner: e})
		if err != nil {
			return err
		}
		e.res = res
	} else if err := e.stack.Ports().Update(e.res, e.res.Flags, dest); err != nil {
		return tcpip.ErrBadLocalAddress
	}
	e.id = stack.TransportEndpointID{LocalPort: e.res.Port, LocalAddress: r.LocalAddress, RemotePort: addr.Port, RemoteAddress: addr.Addr}
	if err := e.stack.RegisterTransportEndpoint(ProtocolNumber, e.id, e, false); err != nil {
		return tcpip.ErrBadLocalAddress
	}
	e.registered = true
	e.route = r
	e.initSend()
	e.state = StateSynSent
	e.sendSYN()
	return tcpip.ErrConnectStarted
}

// initSend picks the ISS and sets up the send side before the SYN.
func (e *endpoint) initSend() {
	// RFC 6528 ISN and RFC 7323 §7.1 timestamp offset (isn.go).
	p := e.stack.TransportProtocol(ProtocolNumber).(*protocol)
	e.iss, e.tsOffset = p.initialSeq(e.id, e.clock.Now())
	e.sndUna, e.sndNxt, e.sndMax = e.iss, e.iss, e.iss
	e.rcvWS = 0
	for e.rcvWS < header.TCPMaxWindowScale && e.rcvBufSize>>e.rcvWS > 0xffff {
		e.rcvWS++
	}
	e.lastRecv = e.clock.Now()
}

func (e *endpoint) advertisedMSS() int {
	m := e.route.MTU() - header.TCPMinimumSize
	if e.userMSS > 0 && e.userMSS < m {
		m = e.userMSS
	}
	return max(m, 88)
}

func (e *endpoint) tsVal() uint32 { return uint32(e.clock.Now()/time.Millisecond) + e.tsOffset }

// sendSYN transmits (or retransmits) our SYN or SYN-ACK.
func (e *endpoint) sendSYN() {
	o := header.TCPOptions{HasMSS: true, MSS: uint16(min(e.advertisedMSS(), 0xffff))}
	flags := header.TCPFlagSyn
	if e.state == StateSynRcvd {
		flags |= header.TCPFlagAck
		// Window scale and timestamps only if the peer offered them.
		o.HasWS, o.WindowScale = e.wsOK, e.rcvWS
		o.HasTS = e.tsOK
		o.SACKPermitted = e.sackOK
	} else {
		o.HasWS, o.WindowScale = true, e.rcvWS
		o.HasTS = true
		o.SACKPermitted = true
	}
	if o.HasTS {
		o.TSVal, o.TSEcr = e.tsVal(), e.tsRecent
	}
	if !o.HasWS {
		o.WindowScale = 0
	}
	// The window in a SYN is never scaled.
	wnd := uint32(min(e.rcvWindow(), 0xffff))
	e.transmit(flags, e.iss, e.rcvNxt, wnd, nil, &o)
	if e.sndNxt == e.iss {
		e.sndNxt = e.iss + 1
		e.sndMax = e.sndNxt
	}
	e.armRTX()
}

func (e *endpoint) rcvWindow() int {
	// Out-of-order data is not subtracted: a window that wobbled with it
	// would hide duplicate ACKs from the sender's fast retransmit.
	w := e.rcvBufSize - e.rcvUsed
	return max(w, 0)
}

// transmit builds and sends one segment.
// A link may have to copy payload before WritePacket returns; a bare
// segment it may keep as it is.
func (e *endpoint) transmit(flags uint8, seq, ack uint32, wnd uint32, payload []byte, o *header.TCPOptions) {
	e.transmitShared(flags, seq, ack, wnd, payload, nil, len(payload) == 0, o)
}

// transmitShared is transmit for a payload that may be shared with a
// link past WritePacket (immutable): one from sndQueue.ViewRef, lying in
// chunk (a view, which the link must reference) or a copy (chunk nil).
func (e *endpoint) transmitShared(flags uint8, seq, ack uint32, wnd uint32, payload []byte, chunk *buffer.Chunk, immutable bool, o *header.TCPOptions) {
	if e.route == nil {
		return
	}
	var ob [40]byte
	var opts []byte
	if o != nil {
		opts = ob[:header.EncodeTCPOptions(ob[:], o)]
	} else if e.tsOK || (e.sackOK && len(e.ooo) > 0) {
		t := header.TCPOptions{HasTS: e.tsOK}
		if e.tsOK {
			t.TSVal, t.TSEcr = e.tsVal(), e.tsRecent
		}
		if e.sackOK && flags&header.TCPFlagAck != 0 {
			e.sackBlocks(&t)
		}
		opts = ob[:header.EncodeTCPOptions(ob[:], &t)]
	}
	hl := header.TCPMinimumSize + len(opts)
	pkt := stack.NewOutboundPacket(e.route.MaxHeaderLength()+hl, payload)
	pkt.PayloadImmutable, pkt.Chunk = immutable, chunk
	if e.userCall && e.route.DefersDelivery() {
		pkt.DeferDelivery = true
		e.flushRoute = e.route
	}
	h := pkt.Header.Prepend(hl)
	// On a link that keeps packets in memory (loopback) the payload is
	// left out of the checksum, which nobody checks there: summing every
	// byte twice per segment was the largest cost of a bulk transfer.
	var sum uint16
	if len(payload) > 0 && !e.route.ChecksumOffload() {
		sum = header.Checksum(payload, 0)
	}
	header.EncodeTCPHeader(h, &header.TCPFields{SrcPort: e.id.LocalPort, DstPort: e.id.RemotePort, Seq: seq, Ack: ack,
		Flags: flags, Window: uint16(min(wnd, 0xffff)), Options: opts}, len(payload), sum, e.route.LocalAddress, e.route.RemoteAddress)
	pkt.TransportHeader = h
	if flags&header.TCPFlagAck != 0 {
		e.lastAckSent = ack
	}
	e.route.WritePacket(ProtocolNumber, stack.NetworkParams{TTL: e.ttl, TOS: e.tos}, pkt)
}

// sendAck sends a bare ACK carrying the current window.
func (e *endpoint) sendAck() {
	e.transmit(header.TCPFlagAck, e.sndNxt, e.rcvNxt, e.scaledWindow(), nil, nil)
}

// scaledWindow is the window field value, recording what it advertises.
func (e *endpoint) scaledWindow() uint32 {
	w := uint32(e.rcvWindow()) >> e.rcvWS
	if w > 0xffff {
		w = 0xffff
	}
	e.lastRcvAdv = w << e.rcvWS
	return w
}

func (e *endpoint) sendRST(seq uint32) {
	e.transmit(header.TCPFlagRst|header.TCPFlagAck, seq, e.rcvNxt, 0, nil, nil)
}

// dataEnd is the sequence number just past the queued data.
func (e *endpoint) dataEnd() uint32 { return e.sndUna + uint32(e.sndBuf.Len()) }

func (e *endpoint) finSeq() uint32 { return e.dataEnd() }

func (e *endpoint) inFlight() int { return int(e.sndMax - e.sndUna) }

// sendData sends whatever the windows, Nagle and the queue allow
// (RFC 9293 §3.8.6.2.1, RFC 5681).
func (e *endpoint) sendData() {
	if !e.state.synchronized() || e.route == nil {
		return
	}
	for {
		end := e.dataEnd()
		avail := int(end - e.sndNxt)
		if seqGT(e.sndNxt, end) {
			avail = 0
		}
		inflight := int(e.sndNxt - e.sndUna)
		wnd := min(int(e.sndWnd), e.cwnd)
		usable := wnd - inflight
		if avail > 0 {
			n := min(avail, e.mss)
			if usable <= 0 {
				if e.sndWnd == 0 && inflight == 0 && !e.rtxArmed {
					// Zero window: probe with one byte on the persist
					// schedule (RFC 9293 §3.8.6.1).
					e.probing = true
					e.probeSent = false
					e.armRTX()
				}
				return
			}
			n = min(n, usable)
			if n < e.mss && n < avail {
				// Window-limited partial segment: wait unless nothing is
				// outstanding (sender SWS avoidance).
				if inflight > 0 {
					return
				}
			}
			if n < e.mss && n == avail && !e.noDelay && inflight > 0 && !e.finQueued {
				return // Nagle
			}
			// A segment stops at a chunk boundary so that its payload
			// is a view of the queue, not a copy; the rest follows at
			// once as the next segment.
			n = min(n, e.sndBuf.Contiguous(int(e.sndNxt-e.sndUna)))
			e.sendSegment(e.sndNxt, n)
			e.sndNxt += uint32(n)
			if seqGT(e.sndNxt, e.sndMax) {
				e.sndMax = e.sndNxt
			}
			continue
		}
		if e.finQueued && !e.finAcked && e.sndNxt == end {
			e.transmit(header.TCPFlagFin|header.TCPFlagAck, end, e.rcvNxt, e.scaledWindow(), nil, nil)
			e.sndNxt = end + 1
			if seqGT(e.sndNxt, e.sndMax) {
				e.sndMax = e.sndNxt
			}
			e.armRTX()
		}
		return
	}
}

// sendSegment sends n queued bytes starting at seq.
func (e *endpoint) sendSegment(seq uint32, n int) {
	off := int(seq - e.sndUna)
	payload, chunk := e.sndBuf.ViewRef(off, n)
	flags := header.TCPFlagAck
	if off+n == e.sndBuf.Len() {
		flags |= header.TCPFlagPsh
	}
	if !e.rttMeasuring && !e.tsOK && seq == e.sndMax {
		e.rttMeasuring, e.rttSeq, e.rttStart = true, seq+uint32(n), e.clock.Now()
	}
	if seqLT(seq, e.sndMax) {
		e.totalRetrans++
	}
	// The send queue never rewrites queued bytes, and its chunks are
	// recycled only once every holder of a view dropped its reference.
	e.transmitShared(flags, seq, e.rcvNxt, e.scaledWindow(), payload, chunk, true, nil)
	e.armRTX()
}

// Linux's TCPI_OPT_* bits of tcp_info.tcpi_options.
const (
	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWScale     = 4
)

// TCPInfo implements tcpip.TCPInfoer.
func (e *endpoint) TCPInfo() tcpip.TCPInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	mss := max(e.mss, 1)
	i := tcpip.TCPInfo{
		RTO: e.rto, RTT: e.srtt, RTTVar: e.rttvar,
		SndMSS: e.mss, RcvMSS: e.mss,
		SndCwnd: e.cwnd / mss, SndSsthresh: e.ssthresh / mss,
		Unacked:     (e.inFlight() + mss - 1) / mss,
		Retransmits: e.retries, TotalRetrans: e.totalRetrans,
	}
	if e.tsOK {
		i.Options |= tcpiOptTimestamps
	}
	if e.sackOK {
		i.Options |= tcpiOptSACK
	}
	if e.wsOK {
		i.Options |= tcpiOptWScale
		i.SndWScale, i.RcvWScale = e.sndWS, e.rcvWS
	}
	return i
}

// lossThreshold is the slow-start threshold after a congestion event:
// half the flight for NewReno (RFC 5681 §3.1), β_cubic of the window for
// CUBIC.
func (e *endpoint) lossThreshold() int {
	if e.cubic == nil {
		return max(e.inFlight()/2, 2*e.mss)
	}
	mss := max(e.mss, 1)
	return max(int(e.cubic.onLoss(float64(e.cwnd)/float64(mss))*float64(mss)), 2*e.mss)
}

// congestionAvoidance grows cwnd for acked bytes above ssthresh.
func (e *endpoint) congestionAvoidance(acked int) {
	if e.cubic != nil {
		mss := float64(max(e.mss, 1))
		rtt := e.srtt
		if !e.rttValid {
			rtt = 0
		}
		w := e.cubic.onAck(float64(e.cwnd)/mss, float64(acked)/mss, e.clock.Now(), rtt)
		e.cwnd = max(int(w*mss), e.mss)
		return
	}
	e.caAcc += acked
	if e.caAcc >= e.cwnd {
		e.caAcc -= e.cwnd
		e.cwnd += e.mss
	}
}

func (e *endpoint) armRTX() {
	if e.rtxArmed {
		return
	}
	e.rtxArmed = true
	d := e.rto
	e.rtxDeadline = e.clock.Now() + d
	if e.rtxTimer == nil {
		e.rtxTimer = e.clock.AfterFunc(d, e.onRTX)
	} else {
		e.rtxTimer.Reset(d)
	}
}

func (e *endpoint) restartRTX() {
	e.stopRTX()
	if e.sndMax != e.sndUna || e.probing {
		e.armRTX()
	}
}

func (e *endpoint) stopRTX() {
	if e.rtxArmed {
		e.rtxTimer.Stop()
		e.rtxArmed = false
	}
}

// onRTX is the retransmission (and persist) timer (RFC 6298 §5).
func (e *endpoint) onRTX() {
	e.mu.Lock()
	defer e.unlock()
	if !e.rtxArmed {
		return
	}
	if now := e.clock.Now(); now < e.rtxDeadline {
		// A stale firing from before the timer was re-armed (a real
		// timer's Stop cannot recall a callback already started).
		e.rtxTimer.Reset(e.rtxDeadline - now)
		return
	}
	e.rtxArmed = false
	e.rto = min(e.rto*2, MaxRTO)
	switch e.state {
	case StateSynSent, StateSynRcvd:
		e.retries++
		if e.retries > MaxSynRetries {
			e.fail(tcpip.ErrTimeout, false)
			return
		}
		e.sendSYN()
		return
	case StateClosed, StateListen, StateInitial, StateBound, StateTimeWait:
		return
	}
	if e.probing && e.sndMax == e.sndUna {
		// Persist probe: one byte past the window. Probes never time the
		// connection out while the peer keeps answering.
		if e.sndWnd == 0 && e.sndBuf.Len() > 0 {
			e.transmit(header.TCPFlagAck, e.sndUna, e.rcvNxt, e.scaledWindow(), e.sndBuf.View(0, 1), nil)
			e.probeSent = true
			e.armRTX()
			return
		}
		e.probing = false
		e.sendData()
		return
	}
	e.retries++
	if e.retries > MaxRetries {
		e.fail(tcpip.ErrTimeout, true)
		return
	}
	// Loss: collapse to one segment and resend from the oldest
	// unacknowledged byte (RFC 5681 §3.1, go-back-N).
	e.ssthresh = e.lossThreshold()
	e.cwnd = e.mss
	e.caAcc = 0
	e.inRecovery = false
	e.dupAcks = 0
	e.rttMeasuring = false
	e.sacked = nil // the receiver may have reneged (RFC 2018 §8)
	e.sndNxt = e.sndUna
	if e.sndWnd == 0 {
		e.sndWnd = 1 // let the retransmission out as a probe
	}
	e.sendData()
	e.armRTX()
}

// fail ends the connection with err, optionally sending a reset.
func (e *endpoint) fail(err *tcpip.Error, rst bool) {
	if rst && e.state.synchronized() {
		// The RST must fall in the peer's window to be believed: past a
		// window the peer closed (data sent, then the window shrank to
		// zero), use its right edge instead of SND.NXT.
		seq := e.sndNxt
		if edge := e.sndUna + e.sndWnd; seqGT(seq, edge) {
			seq = edge
		}
		e.sendRST(seq)
		if e.probing && seq == e.sndUna && e.sndBuf.Len() > 0 {
			// A zero-window probe carries one byte the peer may have
			// taken without our having seen its ACK yet: then only
			// SND.UNA+1 is acceptable. The RST the peer does not
			// expect is dropped silently (RFC 5961 §3.2).
			e.sendRST(seq + 1)
		}
	}
	e.hardError = err
	e.softError = err
	e.teardown()
}

// teardown moves to CLOSED, stops timers and releases the port.
func (e *endpoint) teardown() {
	if e.state == StateSynRcvd && e.listener != nil {
		l := e.listener
		e.deferred = append(e.deferred, func() { l.childDone(e) })
	}
	e.state = StateClosed
	e.stopRTX()
	e.stopKeepTimer()
	if e.stateTimer != nil {
		e.stateTimer.Stop()
	}
	if e.registered {
		e.stack.UnregisterTransportEndpoint(ProtocolNumber, e.id, e)
		e.registered = false
	}
	e.stack.Ports().Release(e.res)
	e.res = nil
	e.notify |= tcpip.EventIn | tcpip.EventOut | tcpip.EventHUp | tcpip.EventErr
}

func (e *endpoint) Read(dst io.Writer, opts tcpip.ReadOptions) (tcpip.ReadResult, *tcpip.Error) {
	e.mu.Lock()
	e.userCall = true
	defer e.unlock()
	if e.rcvUsed == 0 {
		switch {
		case e.state == StateListen || e.state == StateInitial || e.state == StateBound:
			return tcpip.ReadResult{}, tcpip.ErrNotConnected
		case e.shutRead || e.finRcvd:
			return tcpip.ReadResult{}, tcpip.ErrClosedForReceive
		case e.state == StateClosed:
			if err := e.hardError; err != nil {
				e.hardError = nil
				return tcpip.ReadResult{}, err
			}
			return tcpip.ReadResult{}, tcpip.ErrClosedForReceive
		case e.state == StateSynSent || e.state == StateSynRcvd:
			return tcpip.ReadResult{}, tcpip.ErrWouldBlock
		}
		return tcpip.ReadResult{}, tcpip.ErrWouldBlock
	}
	total := 0
	q := e.rcvQueue
	i := 0
	for ; i < len(q); i++ {
		n, err := dst.Write(q[i])
		total += n
		if n < len(q[i]) || err != nil {
			if !opts.Peek {
				q[i] = q[i][n:]
			}
			break
		}
	}
	res := tcpip.ReadResult{Count: total, Total: total, RemoteAddr: tcpip.FullAddress{Addr: e.id.RemoteAddress, Port: e.id.RemotePort}}
	if opts.Peek {
		return res, nil
	}
	for j := 0; j < i; j++ {
		q[j] = nil
		e.rcvChunks[j].DecRef()
		e.rcvChunks[j] = nil
	}
	if i == len(q) {
		// Drained: keep the arrays for the next segments.
		e.rcvQueue, e.rcvChunks = q[:0], e.rcvChunks[:0]
	} else {
		e.rcvQueue, e.rcvChunks = q[i:], e.rcvChunks[i:]
	}
	before := e.rcvWindow()
	e.rcvUsed -= total
	// Window update once the window has opened enough to matter
	// (receiver SWS avoidance, RFC 9293 §3.8.6.2.2).
	if e.state.synchronized() && !e.finRcvd {
		after := e.rcvWindow()
		if int(e.lastRcvAdv) < e.mss && after >= e.mss || (after-before >= e.rcvBufSize/2 && int(e.lastRcvAdv) < e.rcvBufSize/2) {
			e.sendAck()
		}
	}
	return res, nil
}

func (e *endpoint) Write(src io.Reader, opts tcpip.WriteOptions) (int64, *tcpip.Error) {
	e.mu.Lock()
	e.userCall = true
	defer e.unlock()
	switch {
	case e.shutWrite || e.finQueued:
		return 0, tcpip.ErrClosedForSend
	case e.state == StateClosed:
		if err := e.hardError; err != nil {
			return 0, err
		}
		return 0, tcpip.ErrClosedForSend
	case e.state == StateSynSent || e.state == StateSynRcvd:
		return 0, tcpip.ErrWouldBlock
	case !e.state.synchronized():
		return 0, tcpip.ErrNotConnected
	}
	room := e.sndBufSize - e.sndBuf.Len()
	if room <= 0 {
		return 0, tcpip.ErrWouldBlock
	}
	// The writer's length, when it says, bounds the copy and sizes a
	// first small chunk: a small write to an idle stream must not cost
	// an allocation of a whole chunk.
	want := room
	if l, ok := src.(tcpip.LenReader); ok {
		want = min(room, max(l.Len(), 0))
	}
	n, err := e.sndBuf.Fill(src, want, want, sndChunkFor(e.mss))
	if err != nil && n == 0 {
		return 0, tcpip.ErrBadAddress
	}
	if n > 0 && !opts.More {
		e.sendData()
	}
	return int64(n), nil
}

func (e *endpoint) Shutdown(flags tcpip.ShutdownFlags) *tcpip.Error {
	e.mu.Lock()
	defer e.unlock()
	if e.state == StateListen {
		if flags&tcpip.ShutdownRead != 0 {
			e.closeListenerLocked()
		}
		return nil
	}
	if !e.state.synchronized() && e.state != StateSynSent && e.state != StateSynRcvd {
		return tcpip.ErrNotConnected
	}
	if flags&tcpip.ShutdownRead != 0 {
		e.shutRead = true
		for _, c := range e.rcvChunks {
			c.DecRef()
		}
		e.rcvQueue, e.rcvChunks, e.rcvUsed = nil, nil, 0
		e.notify |= tcpip.EventIn
	}
	if flags&tcpip.ShutdownWrite != 0 && !e.shutWrite {
		e.shutWrite = true
		e.queueFIN()
		e.notify |= tcpip.EventOut
	}
	return nil
}

// queueFIN starts our side's close after queued data (RFC 9293 §3.10.4).
func (e *endpoint) queueFIN() {
	switch e.state {
	case StateSynSent:
		e.teardown()
		return
	case StateEstablished, StateSynRcvd:
		e.state = StateFinWait1
	case StateCloseWait:
		e.state = StateLastAck
	default:
		return
	}
	e.finQueued = true
	e.sendData()
}

func (e *endpoint) Close() {
	e.mu.Lock()
	defer e.unlock()
	if e.closed {
		return
	}
	e.closed = true
	switch e.state {
	case StateListen:
		e.closeListenerLocked()
	case StateInitial, StateBound, StateSynSent, StateClosed:
		e.teardown()
	case StateTimeWait, StateFinWait2, StateClosing, StateLastAck:
	default:
		if e.rcvUsed > 0 {
			// Unread data: abort rather than pretend it was delivered
			// (RFC 2525 §2.17, as Linux does).
			e.fail(tcpip.ErrConnectionAborted, true)
			return
		}
		e.shutWrite = true
		e.queueFIN()
	}
	if e.state == StateFinWait2 {
		e.armStateTimer(FinWait2Timeout)
	}
}

func (e *endpoint) Abort() {
	e.mu.Lock()
	defer e.unlock()
	e.closed = true
	if e.state == StateListen {
		e.closeListenerLocked()
		return
	}
	e.fail(tcpip.ErrConnectionAborted, true)
}

func (e *endpoint) closeListenerLocked() {
	kids := make([]*endpoint, 0, len(e.acceptQ)+len(e.synRcvd))
	kids = append(kids, e.acceptQ...)
	for c := range e.synRcvd {
		kids = append(kids, c)
	}
	e.acceptQ, e.synRcvd = nil, nil
	e.teardown()
	e.deferred = append(e.deferred, func() {
		for _, c := range kids {
			c.Abort()
		}
	})
}

func (e *endpoint) armStateTimer(d time.Duration) {
	e.stateDeadline = e.clock.Now() + d
	if e.stateTimer == nil {
		e.stateTimer = e.clock.AfterFunc(d, e.onStateTimer)
	} else {
		e.stateTimer.Reset(d)
	}
}

func (e *endpoint) onStateTimer() {
	e.mu.Lock()
	defer e.unlock()
	if e.state == StateTimeWait || (e.state == StateFinWait2 && e.closed) {
		e.teardown()
	}
}

func (e *endpoint) LocalAddress() (tcpip.FullAddress, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return tcpip.FullAddress{NIC: e.bindNIC, Addr: e.id.LocalAddress, Port: e.id.LocalPort}, nil
}

func (e *endpoint) RemoteAddress() (tcpip.FullAddress, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.state.synchronized() {
		return tcpip.FullAddress{}, tcpip.ErrNotConnected
	}
	return tcpip.FullAddress{Addr: e.id.RemoteAddress, Port: e.id.RemotePort}, nil
}

func (e *endpoint) LastError() *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.softError
	e.softError = nil
	return err
}

func (e *endpoint) Readiness(mask tcpip.EventMask) tcpip.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r tcpip.EventMask
	switch e.state {
	case StateListen:
		if len(e.acceptQ) > 0 {
			r |= tcpip.EventIn
		}
	case StateInitial, StateBound, StateSynSent, StateSynRcvd:
	case StateClosed:
		r |= tcpip.EventIn | tcpip.EventOut | tcpip.EventHUp
		if e.softError != nil {
			r |= tcpip.EventErr
		}
	default:
		if e.rcvUsed > 0 || e.finRcvd || e.shutRead {
			r |= tcpip.EventIn
		}
		if e.finRcvd {
			r |= tcpip.EventRdHUp
		}
		if !e.shutWrite && !e.finQueued && e.sndBuf.Len() < e.sndBufSize {
			r |= tcpip.EventOut
		}
		if e.finRcvd && (e.shutWrite || e.finQueued) {
			r |= tcpip.EventHUp
		}
	}
	return r & mask
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *endpoint) SetSockOpt(opt tcpip.SockOpt, v int) *tcpip.Error {
	e.mu.Lock()
	defer e.unlock()
	switch opt {
	case tcpip.ReuseAddressOption:
		e.reuseAddr = v != 0
	case tcpip.ReusePortOption:
		e.reusePort = v != 0
	case tcpip.NoDelayOption:
		e.noDelay = v != 0
		if e.noDelay {
			e.sendData()
		}
	case tcpip.KeepaliveEnabledOption:
		e.keepalive = v != 0
		e.resetKeepalive()
	case tcpip.KeepaliveIdleOption, tcpip.KeepaliveIntervalOption:
		if v < 1 {
			return tcpip.ErrInvalidOptionValue
		}
		d := time.Duration(v) * time.Millisecond
		if opt == tcpip.KeepaliveIdleOption {
			e.keepIdle = d
		} else {
			e.keepIntvl = d
		}
		e.resetKeepalive()
	case tcpip.KeepaliveCountOption:
		if v < 1 || v > 127 {
			return tcpip.ErrInvalidOptionValue
		}
		e.keepCount = v
	case tcpip.SendBufferSizeOption:
		e.sndBufSize = min(max(v, minBufferSize), maxBufferSize)
	case tcpip.ReceiveBufferSizeOption:
		e.rcvBufSize = min(max(v, minBufferSize), maxBufferSize)
	case tcpip.CongestionControlOption:
		switch v {
		case tcpip.CongestionReno:
			e.cubic = nil
		case tcpip.CongestionCubic:
			if e.cubic == nil {
				e.cubic = &cubicState{}
			}
		default:
			return tcpip.ErrInvalidOptionValue
		}
	case tcpip.TOSOption:
		if v < 0 || v > 255 {
			return tcpip.ErrInvalidOptionValue
		}
		e.tos = uint8(v)
	case tcpip.TTLOption:
		if v < 0 || v > 255 {
			return tcpip.ErrInvalidOptionValue
		}
		e.ttl = uint8(v)
	case tcpip.MaxSegOption:
		if v != 0 && (v < 88 || v > 65535) {
			return tcpip.ErrInvalidOptionValue
		}
		e.userMSS = v
	default:
		return tcpip.ErrUnknownProtocolOption
	}
	return nil
}

func (e *endpoint) GetSockOpt(opt tcpip.SockOpt) (int, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch opt {
	case tcpip.ReuseAddressOption:
		return boolInt(e.reuseAddr), nil
	case tcpip.ReusePortOption:
		return boolInt(e.reusePort), nil
	case tcpip.NoDelayOption:
		return boolInt(e.noDelay), nil
	case tcpip.KeepaliveEnabledOption:
		return boolInt(e.keepalive), nil
	case tcpip.KeepaliveIdleOption:
		return int(e.keepIdle / time.Millisecond), nil
	case tcpip.KeepaliveIntervalOption:
		return int(e.keepIntvl / time.Millisecond), nil
	case tcpip.KeepaliveCountOption:
		return e.keepCount, nil
	case tcpip.SendBufferSizeOption:
		return e.sndBufSize, nil
	case tcpip.ReceiveBufferSizeOption:
		return e.rcvBufSize, nil
	case tcpip.ReceiveQueueSizeOption:
		return e.rcvUsed, nil
	case tcpip.SendQueueSizeOption:
		return e.sndBuf.Len(), nil
	case tcpip.AcceptQueueSizeOption:
		return len(e.acceptQ), nil
	case tcpip.CongestionControlOption:
		if e.cubic != nil {
			return tcpip.CongestionCubic, nil
		}
		return tcpip.CongestionReno, nil
	case tcpip.TOSOption:
		return int(e.tos), nil
	case tcpip.TTLOption:
		if e.ttl == 0 {
			return header.IPv4DefaultTTL, nil
		}
		return int(e.ttl), nil
	case tcpip.MaxSegOption:
		if e.state.synchronized() {
			return e.mss, nil
		}
		return max(e.userMSS, DefaultMSS), nil
	case tcpip.TCPStateOption:
		return int(e.state), nil
	}
	return 0, tcpip.ErrUnknownProtocolOption
}

func (e *endpoint) resetKeepalive() {
	if !e.keepalive || !e.state.synchronized() {
		e.stopKeepTimer()
		return
	}
	e.keepProbes = 0
	e.armKeepTimer(e.keepIdle)
}

func (e *endpoint) armKeepTimer(d time.Duration) {
	e.keepArmed, e.keepDeadline = true, e.clock.Now()+d
	if e.keepTimer == nil {
		e.keepTimer = e.clock.AfterFunc(d, e.onKeepalive)
	} else {
		e.keepTimer.Reset(d)
	}
}

func (e *endpoint) stopKeepTimer() {
	e.keepArmed = false
	if e.keepTimer != nil {
		e.keepTimer.Stop()
	}
}

// onKeepalive probes an idle connection with a segment the peer must
// acknowledge: SEG.SEQ = SND.NXT-1 (RFC 9293 §3.8.4).
func (e *endpoint) onKeepalive() {
	e.mu.Lock()
	defer e.unlock()
	e.keepArmed = false
	if !e.keepalive || !e.state.synchronized() {
		return
	}
	idle := e.clock.Now() - e.lastRecv
	if idle < e.keepIdle && e.keepProbes == 0 {
		e.armKeepTimer(e.keepIdle - idle)
		return
	}
	if e.keepProbes >= e.keepCount {
		e.fail(tcpip.ErrTimeout, true)
		return
	}
	e.keepProbes++
	e.transmit(header.TCPFlagAck, e.sndNxt-1, e.rcvNxt, e.scaledWindow(), nil, nil)
	e.armKeepTimer(e.keepIntvl)
}
