package stack

import "carapace.dev/carapace/pkg/tcpip"

// Route is a resolved path to a remote address.
type Route struct {
	nic           *NIC
	stack         *Stack
	NetProto      tcpip.NetworkProtocolNumber
	LocalAddress  tcpip.Address
	RemoteAddress tcpip.Address
	// NextHop is the gateway, or RemoteAddress when on-link.
	NextHop tcpip.Address
}

// NIC is the outgoing interface.
func (r *Route) NIC() *NIC { return r.nic }

// Stack is the owning stack.
func (r *Route) Stack() *Stack { return r.stack }

// MTU is the largest transport payload sent unfragmented.
func (r *Route) MTU() int {
	if ep := r.nic.netEPs[r.NetProto]; ep != nil {
		return ep.MTU()
	}
	return 0
}

// MaxHeaderLength is the header room a transport must reserve below it.
func (r *Route) MaxHeaderLength() int {
	if ep := r.nic.netEPs[r.NetProto]; ep != nil {
		return ep.MaxHeaderLength()
	}
	return 0
}

// ChecksumOffload reports that packets on this route stay in the host's
// memory (CapabilityChecksumOffload): transports may skip their checksums.
func (r *Route) ChecksumOffload() bool {
	return r.nic.link.Capabilities()&CapabilityChecksumOffload != 0
}

// FlushLink delivers the packets the route's link queued for its own
// stack (see PacketBuffer.DeferDelivery). The caller must hold no lock
// the receive path takes.
func (r *Route) FlushLink() {
	if f, ok := r.nic.link.(Flusher); ok {
		f.Flush()
	}
}

// DefersDelivery reports whether the route's link honours
// PacketBuffer.DeferDelivery: whether FlushLink does anything.
func (r *Route) DefersDelivery() bool {
	_, ok := r.nic.link.(Flusher)
	return ok
}

// WritePacket sends a transport packet along the route.
func (r *Route) WritePacket(proto tcpip.TransportProtocolNumber, params NetworkParams, pkt *PacketBuffer) *tcpip.Error {
	ep := r.nic.netEPs[r.NetProto]
	if ep == nil {
		return tcpip.ErrUnknownProtocol
	}
	return ep.WritePacket(r, proto, params, pkt)
}

// IsBroadcast reports a broadcast destination.
func (r *Route) IsBroadcast() bool {
	_, b := r.nic.AcceptsDestination(r.RemoteAddress)
	return b && !r.RemoteAddress.IsMulticast()
}
