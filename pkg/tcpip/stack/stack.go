package stack

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/tcpip"
)

// Options configure a Stack.
type Options struct {
	NetworkProtocols   []NetworkProtocolFactory
	TransportProtocols []TransportProtocolFactory
	// Clock drives every timer; nil means the real clock.
	Clock tcpip.Clock
	// Seed seeds IP IDs and the ephemeral port choice; zero picks a
	// random seed. Tests set it for determinism. TCP's initial sequence
	// numbers and SYN cookies never derive from it: their keys come from
	// crypto/rand per stack (RFC 6528).
	Seed uint64
}

// Stats are stack-wide counters.
type Stats struct {
	PacketsReceived      atomic.Uint64
	PacketsSent          atomic.Uint64
	MalformedPackets     atomic.Uint64
	UnknownProtocol      atomic.Uint64
	NoRoute              atomic.Uint64
	NeighborDrops        atomic.Uint64
	FragmentsDropped     atomic.Uint64
	ReassemblyTimeouts   atomic.Uint64
	UDPReceiveBufferFull atomic.Uint64
}

// Stack is one network stack instance.
type Stack struct {
	clock      tcpip.Clock
	netProtos  map[tcpip.NetworkProtocolNumber]NetworkProtocol
	transProto map[tcpip.TransportProtocolNumber]TransportProtocol
	ports      *PortManager
	demux      demuxer
	stats      Stats

	randMu sync.Mutex
	rng    *rand.Rand

	mu     sync.RWMutex
	nics   map[tcpip.NICID]*NIC
	routes []RouteEntry
}

// RouteEntry is a route table row.
type RouteEntry struct {
	Destination tcpip.Subnet
	// Gateway is the next hop; zero means on-link.
	Gateway tcpip.Address
	NIC     tcpip.NICID
}

// New builds a stack.
func New(opts Options) *Stack {
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Stack{
		clock:      opts.Clock,
		netProtos:  make(map[tcpip.NetworkProtocolNumber]NetworkProtocol),
		transProto: make(map[tcpip.TransportProtocolNumber]TransportProtocol),
		nics:       make(map[tcpip.NICID]*NIC),
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	if s.clock == nil {
		s.clock = tcpip.NewStdClock()
	}
	s.ports = newPortManager(s)
	s.demux.init()
	for _, f := range opts.NetworkProtocols {
		p := f(s)
		s.netProtos[p.Number()] = p
	}
	for _, f := range opts.TransportProtocols {
		p := f(s)
		s.transProto[p.Number()] = p
	}
	return s
}

// Clock is the stack's clock.
func (s *Stack) Clock() tcpip.Clock { return s.clock }

// Stats returns the stack's counters.
func (s *Stack) Stats() *Stats { return &s.stats }

// Ports is the port manager.
func (s *Stack) Ports() *PortManager { return s.ports }

// Rand32 returns a random 32-bit value from the stack's generator.
func (s *Stack) Rand32() uint32 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rng.Uint32()
}

// NetworkProtocol returns a registered network protocol.
func (s *Stack) NetworkProtocol(n tcpip.NetworkProtocolNumber) NetworkProtocol { return s.netProtos[n] }

// TransportProtocol returns a registered transport protocol.
func (s *Stack) TransportProtocol(n tcpip.TransportProtocolNumber) TransportProtocol {
	return s.transProto[n]
}

// NewEndpoint creates a transport endpoint.
func (s *Stack) NewEndpoint(trans tcpip.TransportProtocolNumber, netProto tcpip.NetworkProtocolNumber, wq *tcpip.WaitQueue) (tcpip.Endpoint, *tcpip.Error) {
	tp := s.transProto[trans]
	if tp == nil || s.netProtos[netProto] == nil {
		return nil, tcpip.ErrUnknownProtocol
	}
	if wq == nil {
		wq = &tcpip.WaitQueue{}
	}
	return tp.NewEndpoint(netProto, wq)
}

// CreateNIC adds an interface on link ep.
func (s *Stack) CreateNIC(id tcpip.NICID, name string, ep LinkEndpoint) *tcpip.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nics[id]; ok || id <= 0 {
		return tcpip.ErrDuplicateNICID
	}
	n := newNIC(s, id, name, ep)
	s.nics[id] = n
	ep.Attach(n)
	return nil
}

// RemoveNIC detaches and removes an interface and its routes.
func (s *Stack) RemoveNIC(id tcpip.NICID) *tcpip.Error {
	s.mu.Lock()
	n, ok := s.nics[id]
	if !ok {
		s.mu.Unlock()
		return tcpip.ErrUnknownNICID
	}
	delete(s.nics, id)
	kept := s.routes[:0]
	for _, r := range s.routes {
		if r.NIC != id {
			kept = append(kept, r)
		}
	}
	s.routes = kept
	s.mu.Unlock()
	n.close()
	return nil
}

// NIC returns an interface.
func (s *Stack) NIC(id tcpip.NICID) *NIC {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nics[id]
}

// NICs lists interfaces.
func (s *Stack) NICs() []*NIC {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*NIC, 0, len(s.nics))
	for _, n := range s.nics {
		out = append(out, n)
	}
	return out
}

// AddAddress assigns addr to a NIC and, as Linux does, installs the on-link
// prefix route for it.
func (s *Stack) AddAddress(id tcpip.NICID, proto tcpip.NetworkProtocolNumber, addr tcpip.AddressWithPrefix) *tcpip.Error {
	n := s.NIC(id)
	if n == nil {
		return tcpip.ErrUnknownNICID
	}
	p := s.netProtos[proto]
	if p == nil || p.AddressLength() != addr.Address.Len() {
		return tcpip.ErrUnknownProtocol
	}
	if err := n.addAddress(proto, addr); err != nil {
		return err
	}
	s.AddRoute(RouteEntry{Destination: addr.Subnet(), NIC: id})
	return nil
}

// RemoveAddress removes an address and its prefix route.
func (s *Stack) RemoveAddress(id tcpip.NICID, addr tcpip.Address) *tcpip.Error {
	n := s.NIC(id)
	if n == nil {
		return tcpip.ErrUnknownNICID
	}
	awp, err := n.removeAddress(addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.routes[:0]
	for _, r := range s.routes {
		if !(r.NIC == id && r.Destination == awp.Subnet() && r.Gateway.Len() == 0) {
			kept = append(kept, r)
		}
	}
	s.routes = kept
	return nil
}

// AddRoute adds a route unless an identical one exists.
func (s *Stack) AddRoute(r RouteEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.routes {
		if e == r {
			return
		}
	}
	s.routes = append(s.routes, r)
}

// SetRouteTable replaces the route table.
func (s *Stack) SetRouteTable(rs []RouteEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = append([]RouteEntry(nil), rs...)
}

// RouteTable returns a copy of the route table.
func (s *Stack) RouteTable() []RouteEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]RouteEntry(nil), s.routes...)
}

// lookupRoute does a longest-prefix match, optionally restricted to nic.
func (s *Stack) lookupRoute(nic tcpip.NICID, remote tcpip.Address) (RouteEntry, bool) {
	best, found := RouteEntry{}, false
	for _, r := range s.routes {
		if nic != 0 && r.NIC != nic {
			continue
		}
		if !r.Destination.Contains(remote) {
			continue
		}
		if !found || r.Destination.Prefix() > best.Destination.Prefix() {
			best, found = r, true
		}
	}
	return best, found
}

// FindRoute picks the interface, next hop and source address for sending
// to remote. nic and local, if set, constrain the choice.
func (s *Stack) FindRoute(nic tcpip.NICID, local, remote tcpip.Address, netProto tcpip.NetworkProtocolNumber) (*Route, *tcpip.Error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if remote.Len() == 0 || (local.Len() != 0 && local.Len() != remote.Len()) {
		return nil, tcpip.ErrNoRoute
	}
	// A local destination goes over loopback, as on Linux.
	if !remote.IsBroadcast() && !remote.IsMulticast() {
		for _, n := range s.nics {
			if n.hasAddress(remote) && (nic == 0 || nic == n.id) {
				if n.loopback() {
					return s.makeRoute(n, local, remote, remote, netProto)
				}
				for _, lo := range s.nics {
					if lo.loopback() {
						if local.Len() == 0 {
							local = remote
						}
						return &Route{nic: lo, NetProto: netProto, LocalAddress: local, RemoteAddress: remote, NextHop: remote, stack: s}, nil
					}
				}
			}
		}
	}
	if remote.IsBroadcast() || remote.IsMulticast() {
		// Limited broadcast and multicast need an interface: the one named
		// or the one the local address (or a default route) is on.
		var n *NIC
		switch {
		case nic != 0:
			n = s.nics[nic]
		case local.Len() != 0 && !local.Unspecified():
			for _, c := range s.nics {
				if c.hasAddress(local) {
					n = c
				}
			}
		default:
			if r, ok := s.lookupRoute(0, remote); ok {
				n = s.nics[r.NIC]
			}
		}
		if n == nil {
			return nil, tcpip.ErrNetworkUnreachable
		}
		return s.makeRoute(n, local, remote, remote, netProto)
	}
	r, ok := s.lookupRoute(nic, remote)
	if !ok {
		s.stats.NoRoute.Add(1)
		return nil, tcpip.ErrNetworkUnreachable
	}
	n := s.nics[r.NIC]
	if n == nil {
		return nil, tcpip.ErrNetworkUnreachable
	}
	next := remote
	if r.Gateway.Len() != 0 && !r.Gateway.Unspecified() {
		next = r.Gateway
	}
	return s.makeRoute(n, local, remote, next, netProto)
}

func (s *Stack) makeRoute(n *NIC, local, remote, next tcpip.Address, netProto tcpip.NetworkProtocolNumber) (*Route, *tcpip.Error) {
	if local.Len() == 0 || local.Unspecified() {
		var ok bool
		local, ok = n.primaryAddress(netProto, next)
		if !ok {
			return nil, tcpip.ErrNetworkUnreachable
		}
	} else if !n.hasAddress(local) {
		return nil, tcpip.ErrBadLocalAddress
	}
	return &Route{nic: n, NetProto: netProto, LocalAddress: local, RemoteAddress: remote, NextHop: next, stack: s}, nil
}

// IsLocalAddress reports whether addr is assigned on any NIC (or on nic if
// it is non-zero).
func (s *Stack) IsLocalAddress(nic tcpip.NICID, addr tcpip.Address) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range s.nics {
		if (nic == 0 || n.id == nic) && n.hasAddress(addr) {
			return true
		}
	}
	return false
}

// AddStaticNeighbor installs a permanent neighbor entry.
func (s *Stack) AddStaticNeighbor(id tcpip.NICID, addr tcpip.Address, link tcpip.LinkAddress) *tcpip.Error {
	n := s.NIC(id)
	if n == nil {
		return tcpip.ErrUnknownNICID
	}
	n.neigh.addStatic(addr, link)
	return nil
}

// RegisterTransportEndpoint makes ep receive packets for id on proto.
// Endpoints sharing an id must all have set reusePort.
func (s *Stack) RegisterTransportEndpoint(proto tcpip.TransportProtocolNumber, id TransportEndpointID, ep TransportEndpoint, reusePort bool) *tcpip.Error {
	return s.demux.register(proto, s.familyOf(ep, id), id, ep, reusePort)
}

// familyOf is the address length an endpoint's packets carry: from its
// network protocol when it says, else from its bound address.
func (s *Stack) familyOf(ep TransportEndpoint, id TransportEndpointID) int {
	if n, ok := ep.(NetworkProtocolEndpoint); ok {
		if p := s.netProtos[n.NetworkProtocolNumber()]; p != nil {
			return p.AddressLength()
		}
	}
	return id.LocalAddress.Len()
}

// TransportEndpoints returns every endpoint registered to receive proto's
// packets, those no socket owns any more included (a TCP connection in
// TIME-WAIT or closing after close(2), or waiting in an accept queue):
// the socket listings walk them. The order is unspecified.
func (s *Stack) TransportEndpoints(proto tcpip.TransportProtocolNumber) []TransportEndpoint {
	return s.demux.all(proto)
}

// UnregisterTransportEndpoint undoes RegisterTransportEndpoint.
func (s *Stack) UnregisterTransportEndpoint(proto tcpip.TransportProtocolNumber, id TransportEndpointID, ep TransportEndpoint) {
	s.demux.unregister(proto, s.familyOf(ep, id), id, ep)
}

// DeliverTransportPacket hands a packet from the network layer to the
// endpoint owning it, or to the protocol's unknown-destination handler.
// broadcast marks a broadcast or multicast destination, which is copied to
// every matching endpoint and never answered with an error.
func (s *Stack) DeliverTransportPacket(proto tcpip.TransportProtocolNumber, src, dst tcpip.Address, broadcast bool, pkt *PacketBuffer) UnknownDestinationAction {
	tp := s.transProto[proto]
	if tp == nil {
		s.stats.UnknownProtocol.Add(1)
		return UnknownDestinationProtocolUnreachable
	}
	if len(pkt.Tail) > 0 {
		if _, ok := tp.(SplitReceiver); !ok || broadcast {
			pkt.JoinTail()
		}
	}
	sport, dport, ok := tp.ParsePorts(pkt.Data)
	if !ok {
		s.stats.MalformedPackets.Add(1)
		return UnknownDestinationMalformed
	}
	id := TransportEndpointID{LocalPort: dport, LocalAddress: dst, RemotePort: sport, RemoteAddress: src}
	if broadcast {
		eps := s.demux.lookupAll(proto, id)
		for i, ep := range eps {
			p := pkt
			if i != len(eps)-1 {
				c := *pkt
				c.Data = append([]byte(nil), pkt.Data...)
				p = &c
			}
			ep.HandlePacket(id, p)
		}
		return UnknownDestinationHandled
	}
	if ep := s.demux.lookup(proto, id); ep != nil {
		ep.HandlePacket(id, pkt)
		return UnknownDestinationHandled
	}
	return tp.HandleUnknownDestinationPacket(id, pkt)
}

// HasTransportProtocol reports whether proto is registered.
func (s *Stack) HasTransportProtocol(proto tcpip.TransportProtocolNumber) bool {
	return s.transProto[proto] != nil
}

// TransportErrorHandler is implemented by transport endpoints that want
// to hear of ICMP errors about the packets they sent.
type TransportErrorHandler interface {
	HandleError(err *tcpip.Error)
}

// DeliverTransportError reports an ICMP error about a packet this host
// sent: local and remote are the quoted packet's source and destination,
// transport the start of its quoted transport header (at least the ports).
func (s *Stack) DeliverTransportError(proto tcpip.TransportProtocolNumber, local, remote tcpip.Address, transport []byte, err *tcpip.Error) {
	tp := s.transProto[proto]
	if tp == nil {
		return
	}
	sport, dport, ok := tp.ParsePorts(transport)
	if !ok {
		return
	}
	id := TransportEndpointID{LocalPort: sport, LocalAddress: local, RemotePort: dport, RemoteAddress: remote}
	if h, ok := s.demux.lookup(proto, id).(TransportErrorHandler); ok {
		h.HandleError(err)
	}
}
