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
