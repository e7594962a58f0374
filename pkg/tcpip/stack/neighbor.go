package stack

import (
	"sync"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
)

// Neighbor resolution timing and limits.
const (
	NeighborRetransmit    = time.Second
	NeighborMaxProbes     = 3
	NeighborReachableTime = 30 * time.Second
	neighborMaxPending    = 16
	neighborMaxEntries    = 1024
)

type neighborEntry struct {
	addr      tcpip.Address
	link      tcpip.LinkAddress
	resolved  bool
	static    bool
	expires   time.Duration
	probes    int
	lastProbe time.Duration
	pending   []pendingPacket
	timer     tcpip.Timer
}

type pendingPacket struct {
	proto tcpip.NetworkProtocolNumber
	pkt   *PacketBuffer
}

// neighborCache maps next-hop addresses to link addresses (RFC 826's
// translation table) for one NIC.
type neighborCache struct {
	nic *NIC

	mu      sync.Mutex
	entries map[tcpip.Address]*neighborEntry
}

func newNeighborCache(n *NIC) *neighborCache {
	return &neighborCache{nic: n, entries: make(map[tcpip.Address]*neighborEntry)}
}

func (c *neighborCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	c.entries = map[tcpip.Address]*neighborEntry{}
}

func (c *neighborCache) resolver(proto tcpip.NetworkProtocolNumber) LinkAddressResolver {
	for _, ep := range c.nic.netEPs {
		if r, ok := ep.(LinkAddressResolver); ok && r.ResolvedProtocol() == proto {
			return r
		}
	}
	return nil
}

func (c *neighborCache) addStatic(addr tcpip.Address, link tcpip.LinkAddress) {
	c.confirmEntry(addr, link, true, true)
}

func (c *neighborCache) lookup(addr tcpip.Address) (tcpip.LinkAddress, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[addr]; ok && e.resolved {
		return e.link, true
	}
	return tcpip.LinkAddress{}, false
}

func (c *neighborCache) confirm(addr tcpip.Address, link tcpip.LinkAddress, create bool) {
	c.confirmEntry(addr, link, create, false)
}

func (c *neighborCache) confirmEntry(addr tcpip.Address, link tcpip.LinkAddress, create, static bool) {
	now := c.nic.stack.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[addr]
	if !ok {
		if !create || len(c.entries) >= neighborMaxEntries {
			c.mu.Unlock()
			return
		}
		e = &neighborEntry{addr: addr}
		c.entries[addr] = e
	}
	if e.static && !static {
		c.mu.Unlock()
		return
	}
	e.link, e.resolved, e.static = link, true, static
	e.expires = now + NeighborReachableTime
	e.probes = 0
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	pending := e.pending
	e.pending = nil
	c.mu.Unlock()
	for _, p := range pending {
		c.nic.WritePacketToLink(link, p.proto, p.pkt)
	}
}

// send transmits pkt to addr's link address, resolving it if needed.
func (c *neighborCache) send(addr tcpip.Address, proto tcpip.NetworkProtocolNumber, pkt *PacketBuffer) *tcpip.Error {
	now := c.nic.stack.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[addr]
	if ok && e.resolved {
		link := e.link
		// A stale entry keeps working while it is re-confirmed.
		reprobe := !e.static && now >= e.expires && now-e.lastProbe >= NeighborRetransmit
		if reprobe {
			e.lastProbe = now
		}
		c.mu.Unlock()
		if reprobe {
			c.probe(addr, proto)
		}
		return c.nic.WritePacketToLink(link, proto, pkt)
	}
	if !ok {
		if len(c.entries) >= neighborMaxEntries {
			c.mu.Unlock()
			c.nic.stack.stats.NeighborDrops.Add(1)
			return tcpip.ErrNoBufferSpace
		}
		e = &neighborEntry{addr: addr}
		c.entries[addr] = e
	}
	if len(e.pending) >= neighborMaxPending {
		e.pending = e.pending[1:]
		c.nic.stack.stats.NeighborDrops.Add(1)
	}
	e.pending = append(e.pending, pendingPacket{proto, pkt})
	start := e.timer == nil
	if start {
		e.probes = 1
		e.lastProbe = now
		e.timer = c.nic.stack.clock.AfterFunc(NeighborRetransmit, func() { c.retransmit(addr, proto) })
	}
	c.mu.Unlock()
	if start {
		c.probe(addr, proto)
	}
	return nil
}

func (c *neighborCache) probe(addr tcpip.Address, proto tcpip.NetworkProtocolNumber) {
	r := c.resolver(proto)
	if r == nil {
		return
	}
	local, ok := c.nic.primaryAddress(proto, addr)
	if !ok {
		return
	}
	r.LinkAddressRequest(addr, local)
}

func (c *neighborCache) retransmit(addr tcpip.Address, proto tcpip.NetworkProtocolNumber) {
	c.mu.Lock()
	e, ok := c.entries[addr]
	if !ok || e.resolved || e.timer == nil {
		c.mu.Unlock()
		return
	}
	if e.probes >= NeighborMaxProbes {
		// Resolution failed: drop what was waiting and forget the entry so
		// a later send starts afresh.
		c.nic.stack.stats.NeighborDrops.Add(uint64(len(e.pending)))
		delete(c.entries, addr)
		c.mu.Unlock()
		return
	}
	e.probes++
	e.timer.Reset(NeighborRetransmit)
	c.mu.Unlock()
	c.probe(addr, proto)
}
