package stack

import (
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/tcpip"
)

// NIC is a network interface: a link endpoint, its addresses, its network
// protocol endpoints and its neighbor table.
type NIC struct {
	stack  *Stack
	id     tcpip.NICID
	name   string
	link   LinkEndpoint
	netEPs map[tcpip.NetworkProtocolNumber]NetworkEndpoint
	neigh  *neighborCache

	mu    sync.RWMutex
	addrs []nicAddress

	rxPackets, rxBytes, rxDrops atomic.Uint64
	txPackets, txBytes, txErrs  atomic.Uint64
}

// NICStats are an interface's packet counters, as /proc/net/dev and
// netlink's IFLA_STATS report them. Bytes are network-layer bytes.
type NICStats struct {
	RxPackets, RxBytes, RxDrops uint64
	TxPackets, TxBytes, TxErrs  uint64
}

// Stats returns a snapshot of the NIC's counters.
func (n *NIC) Stats() NICStats {
	return NICStats{
		RxPackets: n.rxPackets.Load(), RxBytes: n.rxBytes.Load(), RxDrops: n.rxDrops.Load(),
		TxPackets: n.txPackets.Load(), TxBytes: n.txBytes.Load(), TxErrs: n.txErrs.Load(),
	}
}

type nicAddress struct {
	proto tcpip.NetworkProtocolNumber
	addr  tcpip.AddressWithPrefix
}

func newNIC(s *Stack, id tcpip.NICID, name string, link LinkEndpoint) *NIC {
	n := &NIC{stack: s, id: id, name: name, link: link, netEPs: make(map[tcpip.NetworkProtocolNumber]NetworkEndpoint)}
	for num, p := range s.netProtos {
		n.netEPs[num] = p.NewEndpoint(n)
	}
	n.neigh = newNeighborCache(n)
	return n
}

// ID is the NIC's id.
func (n *NIC) ID() tcpip.NICID { return n.id }

// Name is the NIC's name.
func (n *NIC) Name() string { return n.name }

// Stack is the owning stack.
func (n *NIC) Stack() *Stack { return n.stack }

// LinkEndpoint is the NIC's link.
func (n *NIC) LinkEndpoint() LinkEndpoint { return n.link }

func (n *NIC) loopback() bool { return n.link.Capabilities()&CapabilityLoopback != 0 }

func (n *NIC) close() {
	for _, ep := range n.netEPs {
		ep.Close()
	}
	n.neigh.close()
}

func (n *NIC) addAddress(proto tcpip.NetworkProtocolNumber, a tcpip.AddressWithPrefix) *tcpip.Error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.addrs {
		if e.addr.Address == a.Address {
			return tcpip.ErrDuplicateAddress
		}
	}
	n.addrs = append(n.addrs, nicAddress{proto: proto, addr: a})
	return nil
}

func (n *NIC) removeAddress(a tcpip.Address) (tcpip.AddressWithPrefix, *tcpip.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, e := range n.addrs {
		if e.addr.Address == a {
			n.addrs = append(n.addrs[:i], n.addrs[i+1:]...)
			return e.addr, nil
		}
	}
	return tcpip.AddressWithPrefix{}, tcpip.ErrBadLocalAddress
}

// Addresses lists the NIC's addresses.
func (n *NIC) Addresses() []tcpip.AddressWithPrefix {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]tcpip.AddressWithPrefix, len(n.addrs))
	for i, e := range n.addrs {
		out[i] = e.addr
	}
	return out
}

func (n *NIC) hasAddress(a tcpip.Address) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, e := range n.addrs {
		if e.addr.Address == a {
			return true
		}
	}
	return false
}

// AcceptsDestination reports whether an inbound packet to dst is for this
// host on this NIC: an own address, the limited broadcast, a subnet's
// directed broadcast, or multicast.
func (n *NIC) AcceptsDestination(dst tcpip.Address) (local, broadcast bool) {
	if dst.IsBroadcast() || dst.IsMulticast() {
		return true, true
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, e := range n.addrs {
		if e.addr.Address == dst {
			return true, false
		}
		if dst.Len() == 4 && e.addr.PrefixLen < 31 && e.addr.Subnet().Broadcast() == dst {
			return true, true
		}
	}
	return false, false
}

// primaryAddress picks the source address for reaching next: first one
// whose subnet contains it, else the first of the protocol.
func (n *NIC) primaryAddress(proto tcpip.NetworkProtocolNumber, next tcpip.Address) (tcpip.Address, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var first tcpip.Address
	found := false
	for _, e := range n.addrs {
		if e.proto != proto {
			continue
		}
		if e.addr.Subnet().Contains(next) {
			return e.addr.Address, true
		}
		if !found {
			first, found = e.addr.Address, true
		}
	}
	return first, found
}

// DeliverNetworkPacket implements NetworkDispatcher.
func (n *NIC) DeliverNetworkPacket(src tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *PacketBuffer) {
	n.stack.stats.PacketsReceived.Add(1)
	n.rxPackets.Add(1)
	n.rxBytes.Add(uint64(pkt.Size()))
	ep := n.netEPs[proto]
	if ep == nil {
		n.stack.stats.UnknownProtocol.Add(1)
		n.rxDrops.Add(1)
		return
	}
	if len(pkt.Tail) > 0 {
		if _, ok := ep.(SplitReceiver); !ok {
			pkt.JoinTail()
		}
	}
	pkt.NIC = n.id
	pkt.LinkSource = src
	pkt.NetworkProtocol = proto
	ep.HandlePacket(pkt)
}

// WritePacketToLink sends a finished network packet to a link address,
// bypassing neighbor resolution (used by ARP itself).
func (n *NIC) WritePacketToLink(remote tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *PacketBuffer) *tcpip.Error {
	n.stack.stats.PacketsSent.Add(1)
	size := uint64(pkt.Size())
	if err := n.link.WritePacket(remote, proto, pkt); err != nil {
		n.txErrs.Add(1)
		return err
	}
	n.txPackets.Add(1)
	n.txBytes.Add(size)
	return nil
}

// WritePacket sends a finished network packet toward next hop, resolving
// its link address first on links that need it. Packets waiting for
// resolution are queued (a few per neighbor) and sent when it completes.
func (n *NIC) WritePacket(next tcpip.Address, proto tcpip.NetworkProtocolNumber, pkt *PacketBuffer) *tcpip.Error {
	if n.link.Capabilities()&CapabilityResolutionRequired == 0 {
		return n.WritePacketToLink(tcpip.LinkAddress{}, proto, pkt)
	}
	if next.IsBroadcast() {
		return n.WritePacketToLink(tcpip.BroadcastLinkAddress, proto, pkt)
	}
	if next.IsMulticast() && next.Len() == 4 {
		b := next.As4()
		return n.WritePacketToLink(tcpip.LinkAddress{0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]}, proto, pkt)
	}
	if _, bcast := n.AcceptsDestination(next); bcast {
		return n.WritePacketToLink(tcpip.BroadcastLinkAddress, proto, pkt)
	}
	return n.neigh.send(next, proto, pkt)
}

// NetworkEndpoint returns the NIC's endpoint for proto.
func (n *NIC) NetworkEndpoint(proto tcpip.NetworkProtocolNumber) NetworkEndpoint {
	return n.netEPs[proto]
}

// HandleNeighborConfirmation records that addr is at link (from an ARP
// reply or request); solicited says the information came from a reply.
func (n *NIC) HandleNeighborConfirmation(addr tcpip.Address, link tcpip.LinkAddress, createIfMissing bool) {
	n.neigh.confirm(addr, link, createIfMissing)
}

// NeighborEntry reports a neighbor's link address, if resolved.
func (n *NIC) NeighborEntry(addr tcpip.Address) (tcpip.LinkAddress, bool) {
	return n.neigh.lookup(addr)
}
