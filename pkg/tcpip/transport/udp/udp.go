// Package udp is the UDP transport (RFC 768): datagram endpoints with
// bind, connect, a bounded receive queue, broadcast and SO_REUSEADDR/PORT.
package udp

import (
	"carapace.dev/carapace/pkg/tcpip/transport/internal/dgramopts"
	"encoding/binary"
	"io"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// ProtocolNumber is UDP's IP protocol number.
const ProtocolNumber = header.UDPProtocolNumber

// Buffer defaults (Linux's net.core.{r,w}mem_default).
const (
	DefaultReceiveBufferSize = dgramopts.DefaultBufferSize
	DefaultSendBufferSize    = dgramopts.DefaultBufferSize
	// MaxPayload is the largest IPv4 UDP payload.
	MaxPayload = 65535 - header.IPv4MinimumSize - header.UDPMinimumSize
)

type protocol struct{ stack *stack.Stack }

// NewProtocol is the stack.TransportProtocolFactory for UDP.
func NewProtocol(s *stack.Stack) stack.TransportProtocol { return &protocol{stack: s} }

func (p *protocol) Number() tcpip.TransportProtocolNumber { return ProtocolNumber }

func (p *protocol) NewEndpoint(netProto tcpip.NetworkProtocolNumber, wq *tcpip.WaitQueue) (tcpip.Endpoint, *tcpip.Error) {
	return &endpoint{stack: p.stack, netProto: netProto, wq: wq, opts: dgramopts.New(DefaultReceiveBufferSize, DefaultSendBufferSize)}, nil
}

func (p *protocol) ParsePorts(b []byte) (uint16, uint16, bool) {
	if len(b) < header.UDPMinimumSize {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), true
}

func (p *protocol) HandleUnknownDestinationPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) stack.UnknownDestinationAction {
	u, ok := header.ParseUDP(pkt.Data)
	if !ok || (!pkt.TransportChecksumTrusted && !u.IsChecksumValid(id.RemoteAddress, id.LocalAddress)) {
		return stack.UnknownDestinationMalformed
	}
	return stack.UnknownDestinationPortUnreachable
}

type state int

const (
	stateInitial state = iota
	stateBound
	stateConnected
	stateClosed
)

type datagram struct {
	from tcpip.FullAddress
	data []byte
	at   time.Time // arrival, when timestamps are on
}

type endpoint struct {
	stack    *stack.Stack
	netProto tcpip.NetworkProtocolNumber
	wq       *tcpip.WaitQueue

	mu         sync.Mutex
	state      state
	id         stack.TransportEndpointID
	registered bool
	bindNIC    tcpip.NICID
	res        *stack.Reservation
	route      *stack.Route
	reuseAddr  bool
	reusePort  bool
	broadcast  bool
	opts       dgramopts.Options
	shutRead   bool
	shutWrite  bool
	rcv        []datagram
	rcvUsed    int
	lastErr    *tcpip.Error
}

func (e *endpoint) WaitQueue() *tcpip.WaitQueue { return e.wq }

// NetworkProtocolNumber implements stack.NetworkProtocolEndpoint.
func (e *endpoint) NetworkProtocolNumber() tcpip.NetworkProtocolNumber { return e.netProto }

func (e *endpoint) Close() {
	e.mu.Lock()
	if e.state == stateClosed {
		e.mu.Unlock()
		return
	}
	e.unregisterLocked()
	e.stack.Ports().Release(e.res)
	e.res = nil
	e.state = stateClosed
	e.rcv, e.rcvUsed = nil, 0
	e.mu.Unlock()
	e.wq.Notify(tcpip.EventIn | tcpip.EventOut | tcpip.EventHUp)
}

func (e *endpoint) Abort() { e.Close() }

func (e *endpoint) unregisterLocked() {
	if e.registered {
		e.stack.UnregisterTransportEndpoint(ProtocolNumber, e.id, e)
		e.registered = false
	}
}

func (e *endpoint) checkFamily(a tcpip.Address) *tcpip.Error {
	if a.Len() == 0 {
		return nil
	}
	want := e.stack.NetworkProtocol(e.netProto).AddressLength()
	if a.Len() != want {
		return tcpip.ErrAddressFamily
	}
	return nil
}

// bindLocked reserves the port and registers the local id.
func (e *endpoint) bindLocked(addr tcpip.FullAddress) *tcpip.Error {
	if err := e.checkFamily(addr.Addr); err != nil {
		return err
	}
	if addr.Addr.Len() != 0 && !addr.Addr.Unspecified() && !addr.Addr.IsBroadcast() && !addr.Addr.IsMulticast() &&
		!e.stack.IsLocalAddress(addr.NIC, addr.Addr) {
		return tcpip.ErrBadLocalAddress
	}
	if addr.Addr.Unspecified() {
		addr.Addr = tcpip.Address{}
	}
	res, err := e.stack.Ports().Reserve(stack.Reservation{Proto: ProtocolNumber, Family: e.stack.NetworkProtocol(e.netProto).AddressLength(), Addr: addr.Addr, Port: addr.Port,
		Flags: stack.PortFlags{ReuseAddr: e.reuseAddr, ReusePort: e.reusePort}, Owner: e})
	if err != nil {
		return err
	}
	id := stack.TransportEndpointID{LocalPort: res.Port, LocalAddress: addr.Addr}
	// SO_REUSEADDR on UDP shares the port like SO_REUSEPORT does.
	if err := e.stack.RegisterTransportEndpoint(ProtocolNumber, id, e, e.reusePort || e.reuseAddr); err != nil {
		e.stack.Ports().Release(res)
		return err
	}
	e.res, e.id, e.registered, e.bindNIC = res, id, true, addr.NIC
	e.state = stateBound
	return nil
}

func (e *endpoint) Bind(addr tcpip.FullAddress) *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateInitial {
		return tcpip.ErrInvalidEndpointState
	}
	return e.bindLocked(addr)
}

func (e *endpoint) Connect(addr tcpip.FullAddress) *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == stateClosed {
		return tcpip.ErrInvalidEndpointState
	}
	if addr.Addr.Len() == 0 {
		// AF_UNSPEC: dissolve the association, keep the binding.
		if e.state == stateConnected {
			e.unregisterLocked()
			id := stack.TransportEndpointID{LocalPort: e.id.LocalPort, LocalAddress: e.res.Addr}
			if err := e.stack.RegisterTransportEndpoint(ProtocolNumber, id, e, e.reusePort || e.reuseAddr); err == nil {
				e.id, e.registered = id, true
			}
			e.route = nil
			e.state = stateBound
		}
		return nil
	}
	if err := e.checkFamily(addr.Addr); err != nil {
		return err
	}
	nic := addr.NIC
	if nic == 0 {
		nic = e.bindNIC
	}
	r, err := e.stack.FindRoute(nic, e.id.LocalAddress, addr.Addr, e.netProto)
	if err != nil {
		return err
	}
	if e.state == stateInitial {
		if err := e.bindLocked(tcpip.FullAddress{}); err != nil {
			return err
		}
	}
	e.unregisterLocked()
	id := stack.TransportEndpointID{LocalPort: e.id.LocalPort, LocalAddress: r.LocalAddress, RemotePort: addr.Port, RemoteAddress: addr.Addr}
	if err := e.stack.RegisterTransportEndpoint(ProtocolNumber, id, e, e.reusePort || e.reuseAddr); err != nil {
		return err
	}
	e.id, e.registered, e.route, e.state = id, true, r, stateConnected
	return nil
}

func (e *endpoint) Listen(int) *tcpip.Error { return tcpip.ErrNotSupported }

func (e *endpoint) Accept() (tcpip.Endpoint, tcpip.FullAddress, *tcpip.Error) {
	return nil, tcpip.FullAddress{}, tcpip.ErrNotSupported
}

func (e *endpoint) Shutdown(flags tcpip.ShutdownFlags) *tcpip.Error {
	e.mu.Lock()
	if e.state != stateConnected {
		e.mu.Unlock()
		return tcpip.ErrNotConnected
	}
	if flags&tcpip.ShutdownRead != 0 {
		e.shutRead = true
	}
	if flags&tcpip.ShutdownWrite != 0 {
		e.shutWrite = true
	}
	e.mu.Unlock()
	e.wq.Notify(tcpip.EventIn | tcpip.EventOut)
	return nil
}

func (e *endpoint) LocalAddress() (tcpip.FullAddress, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return tcpip.FullAddress{NIC: e.bindNIC, Addr: e.id.LocalAddress, Port: e.id.LocalPort}, nil
}

func (e *endpoint) RemoteAddress() (tcpip.FullAddress, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != stateConnected {
		return tcpip.FullAddress{}, tcpip.ErrNotConnected
	}
	return tcpip.FullAddress{Addr: e.id.RemoteAddress, Port: e.id.RemotePort}, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *endpoint) SetSockOpt(opt tcpip.SockOpt, v int) *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ok, err := e.opts.Set(opt, v); ok {
		return err
	}
	switch opt {
	case tcpip.ReuseAddressOption:
		e.reuseAddr = v != 0
	case tcpip.ReusePortOption:
		e.reusePort = v != 0
	case tcpip.BroadcastOption:
		e.broadcast = v != 0
	default:
		return tcpip.ErrUnknownProtocolOption
	}
	return nil
}

func (e *endpoint) GetSockOpt(opt tcpip.SockOpt) (int, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.opts.Get(opt); ok {
		return v, nil
	}
	switch opt {
	case tcpip.ReuseAddressOption:
		return boolInt(e.reuseAddr), nil
	case tcpip.ReusePortOption:
		return boolInt(e.reusePort), nil
	case tcpip.BroadcastOption:
		return boolInt(e.broadcast), nil
	case tcpip.ReceiveQueueSizeOption:
		// FIONREAD on UDP reports the next datagram's size.
		if len(e.rcv) == 0 {
			return 0, nil
		}
		return len(e.rcv[0].data), nil
	case tcpip.SendQueueSizeOption:
		return 0, nil
	}
	return 0, tcpip.ErrUnknownProtocolOption
}

func (e *endpoint) LastError() *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.lastErr
	e.lastErr = nil
	return err
}

func (e *endpoint) Readiness(mask tcpip.EventMask) tcpip.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r tcpip.EventMask
	if len(e.rcv) > 0 || e.shutRead || e.state == stateClosed {
		r |= tcpip.EventIn
	}
	if e.state != stateClosed && !e.shutWrite {
		r |= tcpip.EventOut
	}
	if e.lastErr != nil {
		r |= tcpip.EventErr
	}
	return r & mask
}

// HandleError implements stack.TransportErrorHandler: an ICMP error
// about a datagram we sent is reported on a connected socket's next
// receive (and SO_ERROR), as Linux does without IP_RECVERR.
func (e *endpoint) HandleError(err *tcpip.Error) {
	e.mu.Lock()
	if e.state != stateConnected {
		e.mu.Unlock()
		return
	}
	e.lastErr = err
	e.mu.Unlock()
	e.wq.Notify(tcpip.EventErr)
}

func (e *endpoint) Read(dst io.Writer, opts tcpip.ReadOptions) (tcpip.ReadResult, *tcpip.Error) {
	e.mu.Lock()
	if err := e.lastErr; err != nil {
		e.lastErr = nil
		e.mu.Unlock()
		return tcpip.ReadResult{}, err
	}
	if len(e.rcv) == 0 {
		closed := e.shutRead || e.state == stateClosed
		e.mu.Unlock()
		if closed {
			return tcpip.ReadResult{}, tcpip.ErrClosedForReceive
		}
		return tcpip.ReadResult{}, tcpip.ErrWouldBlock
	}
	d := e.rcv[0]
	if !opts.Peek {
		e.rcv[0] = datagram{}
		e.rcv = e.rcv[1:]
		e.rcvUsed -= datagramCost(d.data)
	}
	e.mu.Unlock()
	n, _ := dst.Write(d.data)
	return tcpip.ReadResult{Count: n, Total: len(d.data), RemoteAddr: d.from, Timestamp: d.at}, nil
}

func (e *endpoint) Write(src io.Reader, opts tcpip.WriteOptions) (int64, *tcpip.Error) {
	payload, rerr := io.ReadAll(io.LimitReader(src, MaxPayload+1))
	if rerr != nil {
		return 0, tcpip.ErrBadAddress
	}
	if len(payload) > MaxPayload {
		return 0, tcpip.ErrMessageTooLong
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == stateClosed || e.shutWrite {
		return 0, tcpip.ErrClosedForSend
	}
	var r *stack.Route
	var dport uint16
	if opts.To != nil {
		if err := e.checkFamily(opts.To.Addr); err != nil {
			return 0, err
		}
		if opts.To.Port == 0 {
			return 0, tcpip.ErrInvalidArgument
		}
		if e.state == stateInitial {
			if err := e.bindLocked(tcpip.FullAddress{}); err != nil {
				return 0, err
			}
		}
		nic := opts.To.NIC
		if nic == 0 {
			nic = e.bindNIC
		}
		local := e.id.LocalAddress
		if local.IsBroadcast() || local.IsMulticast() {
			local = tcpip.Address{}
		}
		var err *tcpip.Error
		if r, err = e.stack.FindRoute(nic, local, opts.To.Addr, e.netProto); err != nil {
			return 0, err
		}
		dport = opts.To.Port
	} else {
		if e.state != stateConnected {
			return 0, tcpip.ErrDestinationRequired
		}
		r, dport = e.route, e.id.RemotePort
	}
	if r.IsBroadcast() && !e.broadcast {
		return 0, tcpip.ErrBroadcastDisabled
	}
	pkt := stack.NewOutboundPacket(r.MaxHeaderLength()+header.UDPMinimumSize, payload)
	h := pkt.Header.Prepend(header.UDPMinimumSize)
	// Loopback neither needs nor checks the payload's checksum.
	var sum uint16
	if !r.ChecksumOffload() {
		sum = header.Checksum(payload, 0)
	}
	header.EncodeUDPHeader(h, e.id.LocalPort, dport, len(payload), sum, r.LocalAddress, r.RemoteAddress)
	pkt.TransportHeader = h
	if err := r.WritePacket(ProtocolNumber, stack.NetworkParams{TTL: e.opts.TTL, TOS: e.opts.TOS}, pkt); err != nil {
		return 0, err
	}
	return int64(len(payload)), nil
}

func datagramCost(p []byte) int { return max(len(p), 64) }

// HandlePacket implements stack.TransportEndpoint.
func (e *endpoint) HandlePacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) {
	u, ok := header.ParseUDP(pkt.Data)
	if !ok || (!pkt.TransportChecksumTrusted && !u.IsChecksumValid(id.RemoteAddress, id.LocalAddress)) {
		e.stack.Stats().MalformedPackets.Add(1)
		return
	}
	e.mu.Lock()
	if e.state == stateClosed || e.shutRead {
		e.mu.Unlock()
		return
	}
	if e.bindNIC != 0 && pkt.NIC != e.bindNIC {
		e.mu.Unlock()
		return
	}
	p := u.Payload()
	// Account at least a little per datagram so a flood of empty ones is
	// still bounded.
	cost := datagramCost(p)
	if e.rcvUsed+cost > e.opts.RcvBufSize {
		e.mu.Unlock()
		e.stack.Stats().UDPReceiveBufferFull.Add(1)
		return
	}
	wasEmpty := len(e.rcv) == 0
	d := datagram{from: tcpip.FullAddress{NIC: pkt.NIC, Addr: id.RemoteAddress, Port: id.RemotePort}, data: p}
	if e.opts.Timestamps {
		d.at = time.Now()
	}
	e.rcv = append(e.rcv, d)
	e.rcvUsed += cost
	e.mu.Unlock()
	if wasEmpty {
		e.wq.Notify(tcpip.EventIn)
	}
}
