// Package testutil builds the small networks the stack's tests and
// benchmarks run on: two stacks joined by channel links, driven either by
// hand (Pump, with a manual clock) or by forwarding goroutines.
package testutil

import (
	"context"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/network/arp"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

// Addresses used by Pair.
var (
	AddrA  = tcpip.ParseAddress("10.0.0.1")
	AddrB  = tcpip.ParseAddress("10.0.0.2")
	AddrA6 = tcpip.ParseAddress("fd00::1")
	AddrB6 = tcpip.ParseAddress("fd00::2")
	MACA   = tcpip.LinkAddress{0x02, 0, 0, 0, 0, 0x0a}
	MACB   = tcpip.LinkAddress{0x02, 0, 0, 0, 0, 0x0b}
)

// PairOptions configure Pair.
type PairOptions struct {
	// Clock for both stacks; nil means a new ManualClock.
	Clock tcpip.Clock
	// MTU of the link (default 1500).
	MTU uint32
	// Ethernet selects Ethernet framing and ARP instead of a bare
	// point-to-point link.
	Ethernet bool
	// QueueLen is each link's queue (default 1024).
	QueueLen int
	// Transports added besides UDP.
	Transports []stack.TransportProtocolFactory
}

// Pair is two stacks, A (10.0.0.1, fd00::1) and B (10.0.0.2, fd00::2),
// on NIC 1 joined by a link.
type Pair struct {
	A, B   *stack.Stack
	LinkA  *channel.Endpoint
	LinkB  *channel.Endpoint
	Clock  tcpip.Clock
	Manual *tcpip.ManualClock
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewPair builds the two stacks.
func NewPair(o PairOptions) *Pair {
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.QueueLen == 0 {
		o.QueueLen = 1024
	}
	p := &Pair{Clock: o.Clock}
	if p.Clock == nil {
		p.Manual = tcpip.NewManualClock()
		p.Clock = p.Manual
	}
	trans := append([]stack.TransportProtocolFactory{udp.NewProtocol}, o.Transports...)
	mk := func(seed uint64, mac tcpip.LinkAddress, addr, addr6 tcpip.Address) (*stack.Stack, *channel.Endpoint) {
		s := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: trans,
			Clock:              p.Clock,
			Seed:               seed,
		})
		l := channel.New(o.QueueLen, o.MTU, mac, o.Ethernet)
		if err := s.CreateNIC(1, "eth0", l); err != nil {
			panic(err)
		}
		if err := s.AddAddress(1, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: addr, PrefixLen: 24}); err != nil {
			panic(err)
		}
		if err := s.AddAddress(1, ipv6.ProtocolNumber, tcpip.AddressWithPrefix{Address: addr6, PrefixLen: 64}); err != nil {
			panic(err)
		}
		return s, l
	}
	p.A, p.LinkA = mk(1, MACA, AddrA, AddrA6)
	p.B, p.LinkB = mk(2, MACB, AddrB, AddrB6)
	return p
}

// Pump delivers queued packets both ways until the link is quiet.
func (p *Pair) Pump(filter func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet) int {
	return channel.Pump(p.LinkA, p.LinkB, filter)
}

// Advance moves the manual clock and then pumps.
func (p *Pair) Advance(d time.Duration) {
	p.Manual.Advance(d)
	p.Pump(nil)
}

// Run starts forwarding goroutines (for real-clock use); Stop ends them.
func (p *Pair) Run() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go func() { defer p.wg.Done(); channel.Forward(ctx, p.LinkA, p.LinkB) }()
	go func() { defer p.wg.Done(); channel.Forward(ctx, p.LinkB, p.LinkA) }()
}

// Stop ends forwarding started by Run.
func (p *Pair) Stop() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
		p.cancel = nil
	}
}
