// Package icmp is the ICMP echo transport behind ping sockets
// (SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6, as Linux offers them to
// unprivileged ping): the application writes echo requests, the endpoint
// stamps them with its identifier and checksum, and echo replies carrying
// that identifier are queued for it whole, ICMP header included. The
// identifier plays the part of a port: it is bound, ephemeral and
// demultiplexed like one.
package icmp

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

// Protocol numbers of ICMPv4 and ICMPv6.
const (
	ProtocolNumber4 tcpip.TransportProtocolNumber = header.IPv4ProtocolICMP
	ProtocolNumber6 tcpip.TransportProtocolNumber = header.IPv6ProtocolICMP
)

const (
	// maxMessage bounds one echo request (IPv4's largest payload).
	maxMessage = 65535 - header.IPv4MinimumSize
)

type protocol struct {
	stack  *stack.Stack
	number tcpip.TransportProtocolNumber
}

// NewProtocol4 is the stack.TransportProtocolFactory for ICMPv4 echo.
func NewProtocol4(s *stack.Stack) stack.TransportProtocol {
	return &protocol{stack: s, number: ProtocolNumber4}
}

// NewProtocol6 is the stack.TransportProtocolFactory for ICMPv6 echo.
func NewProtocol6(s *stack.Stack) stack.TransportProtocol {
	return &protocol{stack: s, number: ProtocolNumber6}
}

func (p *protocol) Number() tcpip.TransportProtocolNumber { return p.number }

func (p *protocol) NewEndpoint(netProto tcpip.NetworkProtocolNumber, wq *tcpip.WaitQueue) (tcpip.Endpoint, *tcpip.Error) {
	if wq == nil {
		wq = &tcpip.WaitQueue{}
	}
	want := tcpip.NetworkProtocolNumber(header.EthertypeIPv4)
	if p.number == ProtocolNumber6 {
		want = header.EthertypeIPv6
	}
	if netProto != want {
		return nil, tcpip.ErrUnknownProtocol
	}
	return &endpoint{stack: p.stack, proto: p.number, netProto: netProto, wq: wq,
		opts: dgramopts.New(dgramopts.DefaultBufferSize, dgramopts.DefaultBufferSize)}, nil
}

// ParsePorts makes an echo reply's identifier both ports, so the stack's
// demultiplexer finds the endpoint that owns the identifier.
func (p *protocol) ParsePorts(b []byte) (uint16, uint16, bool) {
	if len(b) < header.ICMPv4MinimumSize {
		return 0, 0, false
	}
	id := binary.BigEndian.Uint16(b[4:])
	return id, id, true
}

// HandleUnknownDestinationPacket drops replies nobody waits for; ICMP is
// never answered with ICMP errors.
func (p *protocol) HandleUnknownDestinationPacket(stack.TransportEndpointID, *stack.PacketBuffer) stack.UnknownDestinationAction {
	return stack.UnknownDestinationHandled
}

type message struct {
	from tcpip.FullAddress
	data []byte
	at   time.Time // arrival, when timestamps are on
}

type endpoint struct {
	stack    *stack.Stack
	proto    tcpip.TransportProtocolNumber
	netProto tcpip.NetworkProtocolNumber
	wq       *tcpip.WaitQueue

	mu         sync.Mutex
	closed     bool
	bound      bool
	connected  bool
	id         stack.TransportEndpointID
	bindNIC    tcpip.NICID
	res        *stack.Reservation
	registered bool
	remote     tcpip.FullAddress
	route      *stack.Route
	opts       dgramopts.Options
	shutRead   bool
	shutWrite  bool
	rcv        []message
	rcvUsed    int
}

func (e *endpoint) WaitQueue() *tcpip.WaitQueue { return e.wq }

// NetworkProtocolNumber implements stack.NetworkProtocolEndpoint.
func (e *endpoint) NetworkProtocolNumber() tcpip.NetworkProtocolNumber { return e.netProto }

func (e *endpoint) addrLen() int {
	if e.proto == ProtocolNumber6 {
		return 16
	}
	return 4
}

func (e *endpoint) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	if e.registered {
		e.stack.UnregisterTransportEndpoint(e.proto, e.id, e)
		e.registered = false
	}
	e.stack.Ports().Release(e.res)
	e.res = nil
	e.rcv, e.rcvUsed = nil, 0
	e.mu.Unlock()
	e.wq.Notify(tcpip.EventIn | tcpip.EventOut | tcpip.EventHUp)
}

func (e *endpoint) Abort() { e.Close() }

// bindLocked reserves the identifier and registers for replies to it.
func (e *endpoint) bindLocked(addr tcpip.FullAddress) *tcpip.Error {
	if addr.Addr.Len() != 0 && addr.Addr.Len() != e.addrLen() {
		return tcpip.ErrAddressFamily
	}
	if addr.Addr.Len() != 0 && !addr.Addr.Unspecified() && !e.stack.IsLocalAddress(addr.NIC, addr.Addr) {
		return tcpip.ErrBadLocalAddress
	}
	if addr.Addr.Unspecified() {
		addr.Addr = tcpip.Address{}
	}
	res, err := e.stack.Ports().Reserve(stack.Reservation{Proto: e.proto, Family: e.addrLen(), Addr: addr.Addr, Port: addr.Port, Owner: e})
	if err != nil {
		return err
	}
	id := stack.TransportEndpointID{LocalPort: res.Port, LocalAddress: addr.Addr}
	if err := e.stack.RegisterTransportEndpoint(e.proto, id, e, false); err != nil {
		e.stack.Ports().Release(res)
		return err
	}
	e.res, e.id, e.registered, e.bindNIC, e.bound = res, id, true, addr.NIC, true
	return nil
}

func (e *endpoint) Bind(addr tcpip.FullAddress) *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.bound {
		return tcpip.ErrInvalidEndpointState
	}
	return e.bindLocked(addr)
}

func (e *endpoint) Connect(addr tcpip.FullAddress) *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return tcpip.ErrInvalidEndpointState
	}
	if addr.Addr.Len() == 0 {
		e.connected, e.route, e.remote = false, nil, tcpip.FullAddress{}
		return nil
	}
	if addr.Addr.Len() != e.addrLen() {
		return tcpip.ErrAddressFamily
	}
	nic := addr.NIC
	if nic == 0 {
		nic = e.bindNIC
	}
	r, err := e.stack.FindRoute(nic, e.id.LocalAddress, addr.Addr, e.netProto)
	if err != nil {
		return err
	}
	if !e.bound {
		if err := e.bindLocked(tcpip.FullAddress{}); err != nil {
			return err
		}
	}
	e.route, e.remote, e.connected = r, tcpip.FullAddress{Addr: addr.Addr}, true
	return nil
}

func (e *endpoint) Listen(int) *tcpip.Error { return tcpip.ErrNotSupported }

func (e *endpoint) Accept() (tcpip.Endpoint, tcpip.FullAddress, *tcpip.Error) {
	return nil, tcpip.FullAddress{}, tcpip.ErrNotSupported
}

func (e *endpoint) Shutdown(flags tcpip.ShutdownFlags) *tcpip.Error {
	e.mu.Lock()
	if !e.connected {
		e.mu.Unlock()
		return tcpip.ErrNotConnected
	}
	e.shutRead = e.shutRead || flags&tcpip.ShutdownRead != 0
	e.shutWrite = e.shutWrite || flags&tcpip.ShutdownWrite != 0
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
	if !e.connected {
		return tcpip.FullAddress{}, tcpip.ErrNotConnected
	}
	return e.remote, nil
}

func (e *endpoint) SetSockOpt(opt tcpip.SockOpt, v int) *tcpip.Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ok, err := e.opts.Set(opt, v); ok {
		return err
	}
	return tcpip.ErrUnknownProtocolOption
}

func (e *endpoint) GetSockOpt(opt tcpip.SockOpt) (int, *tcpip.Error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.opts.Get(opt); ok {
		return v, nil
	}
	switch opt {
	case tcpip.ReceiveQueueSizeOption:
		if len(e.rcv) == 0 {
			return 0, nil
		}
		return len(e.rcv[0].data), nil
	case tcpip.SendQueueSizeOption:
		return 0, nil
	}
	return 0, tcpip.ErrUnknownProtocolOption
}

func (e *endpoint) LastError() *tcpip.Error { return nil }

func (e *endpoint) Readiness(mask tcpip.EventMask) tcpip.EventMask {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r tcpip.EventMask
	if len(e.rcv) > 0 || e.shutRead || e.closed {
		r |= tcpip.EventIn
	}
	if !e.closed && !e.shutWrite {
		r |= tcpip.EventOut
	}
	return r & mask
}

func (e *endpoint) Read(dst io.Writer, opts tcpip.ReadOptions) (tcpip.ReadResult, *tcpip.Error) {
	e.mu.Lock()
	if len(e.rcv) == 0 {
		done := e.shutRead || e.closed
		e.mu.Unlock()
		if done {
			return tcpip.ReadResult{}, tcpip.ErrClosedForReceive
		}
		return tcpip.ReadResult{}, tcpip.ErrWouldBlock
	}
	m := e.rcv[0]
	if !opts.Peek {
		e.rcv[0] = message{}
		e.rcv = e.rcv[1:]
		e.rcvUsed -= max(len(m.data), 64)
	}
	e.mu.Unlock()
	n, _ := dst.Write(m.data)
	return tcpip.ReadResult{Count: n, Total: len(m.data), RemoteAddr: m.from, Timestamp: m.at}, nil
}

// Write sends one echo request. The application supplies the ICMP header
// and payload; the identifier and checksum are the endpoint's to set.
func (e *endpoint) Write(src io.Reader, opts tcpip.WriteOptions) (int64, *tcpip.Error) {
	msg, rerr := io.ReadAll(io.LimitReader(src, maxMessage+1))
	if rerr != nil {
		return 0, tcpip.ErrBadAddress
	}
	if len(msg) > maxMessage {
		return 0, tcpip.ErrMessageTooLong
	}
	echo := header.ICMPv4Echo
	if e.proto == ProtocolNumber6 {
		echo = header.ICMPv6EchoRequest
	}
	if len(msg) < header.ICMPv4MinimumSize || msg[0] != echo || msg[1] != 0 {
		return 0, tcpip.ErrInvalidArgument
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.shutWrite {
		return 0, tcpip.ErrClosedForSend
	}
	var r *stack.Route
	if opts.To != nil {
		if opts.To.Addr.Len() != e.addrLen() {
			return 0, tcpip.ErrAddressFamily
		}
		nic := opts.To.NIC
		if nic == 0 {
			nic = e.bindNIC
		}
		var err *tcpip.Error
		if r, err = e.stack.FindRoute(nic, e.id.LocalAddress, opts.To.Addr, e.netProto); err != nil {
			return 0, err
		}
	} else {
		if !e.connected {
			return 0, tcpip.ErrDestinationRequired
		}
		r = e.route
	}
	if !e.bound {
		if err := e.bindLocked(tcpip.FullAddress{}); err != nil {
			return 0, err
		}
	}
	rest := uint32(e.id.LocalPort)<<16 | uint32(binary.BigEndian.Uint16(msg[6:]))
	if e.proto == ProtocolNumber6 {
		header.EncodeICMPv6(msg, echo, 0, rest, r.LocalAddress, r.RemoteAddress)
	} else {
		header.EncodeICMPv4(msg, echo, 0, rest)
	}
	pkt := stack.NewOutboundPacket(r.MaxHeaderLength(), msg)
	if err := r.WritePacket(e.proto, stack.NetworkParams{TTL: e.opts.TTL, TOS: e.opts.TOS}, pkt); err != nil {
		return 0, err
	}
	return int64(len(msg)), nil
}

// HandlePacket implements stack.TransportEndpoint: an echo reply for our
// identifier. The network layer has already checked its checksum.
func (e *endpoint) HandlePacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) {
	e.mu.Lock()
	if e.closed || e.shutRead || (e.bindNIC != 0 && pkt.NIC != e.bindNIC) ||
		(e.connected && id.RemoteAddress != e.remote.Addr) {
		e.mu.Unlock()
		return
	}
	cost := max(len(pkt.Data), 64)
	if e.rcvUsed+cost > e.opts.RcvBufSize {
		e.mu.Unlock()
		return
	}
	wasEmpty := len(e.rcv) == 0
	m := message{from: tcpip.FullAddress{NIC: pkt.NIC, Addr: id.RemoteAddress}, data: append([]byte(nil), pkt.Data...)}
	if e.opts.Timestamps {
		m.at = time.Now()
	}
	e.rcv = append(e.rcv, m)
	e.rcvUsed += cost
	e.mu.Unlock()
	if wasEmpty {
		e.wq.Notify(tcpip.EventIn)
	}
}
