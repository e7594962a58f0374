package stack_test

import (
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/buffer"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/link/loopback"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

func newStack(t *testing.T) *stack.Stack {
	s := stack.New(stack.Options{NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol}, Clock: tcpip.NewManualClock(), Seed: 1})
	for id := tcpip.NICID(1); id <= 2; id++ {
		if err := s.CreateNIC(id, "n", channel.New(1, 1500, tcpip.LinkAddress{}, false)); err != nil {
			t.Fatal(err)
		}
	}
	s.AddAddress(1, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("192.168.1.2"), PrefixLen: 24})
	s.AddAddress(2, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("10.1.2.3"), PrefixLen: 8})
	return s
}

func TestLongestPrefixMatch(t *testing.T) {
	s := newStack(t)
	s.AddRoute(stack.RouteEntry{Destination: tcpip.NewSubnet(tcpip.ParseAddress("0.0.0.0"), 0), Gateway: tcpip.ParseAddress("192.168.1.1"), NIC: 1})
	s.AddRoute(stack.RouteEntry{Destination: tcpip.NewSubnet(tcpip.ParseAddress("10.5.0.0"), 16), Gateway: tcpip.ParseAddress("192.168.1.254"), NIC: 1})
	cases := []struct {
		dst, next, local string
		nic              tcpip.NICID
	}{
		{"8.8.8.8", "192.168.1.1", "192.168.1.2", 1},
		{"10.9.9.9", "10.9.9.9", "10.1.2.3", 2},
		{"10.5.1.1", "192.168.1.254", "192.168.1.2", 1},
		{"192.168.1.77", "192.168.1.77", "192.168.1.2", 1},
	}
	for _, c := range cases {
		r, err := s.FindRoute(0, tcpip.Address{}, tcpip.ParseAddress(c.dst), ipv4.ProtocolNumber)
		if err != nil {
			t.Fatalf("%s: %v", c.dst, err)
		}
		if r.NextHop.String() != c.next || r.LocalAddress.String() != c.local || r.NIC().ID() != c.nic {
			t.Errorf("%s: via %s from %s nic %d; want %s %s %d", c.dst, r.NextHop, r.LocalAddress, r.NIC().ID(), c.next, c.local, c.nic)
		}
	}
	if _, err := s.FindRoute(0, tcpip.ParseAddress("1.2.3.4"), tcpip.ParseAddress("8.8.8.8"), ipv4.ProtocolNumber); err != tcpip.ErrBadLocalAddress {
		t.Fatalf("foreign local address: %v", err)
	}
	s.SetRouteTable(nil)
	if _, err := s.FindRoute(0, tcpip.Address{}, tcpip.ParseAddress("8.8.8.8"), ipv4.ProtocolNumber); err != tcpip.ErrNetworkUnreachable {
		t.Fatalf("empty table: %v", err)
	}
}

func TestAddressesAndNICs(t *testing.T) {
	s := newStack(t)
	if err := s.CreateNIC(1, "dup", channel.New(1, 1500, tcpip.LinkAddress{}, false)); err != tcpip.ErrDuplicateNICID {
		t.Fatalf("duplicate NIC: %v", err)
	}
	a := tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("192.168.1.2"), PrefixLen: 24}
	if err := s.AddAddress(1, ipv4.ProtocolNumber, a); err != tcpip.ErrDuplicateAddress {
		t.Fatalf("duplicate address: %v", err)
	}
	if err := s.RemoveAddress(1, a.Address); err != nil {
		t.Fatal(err)
	}
	if s.IsLocalAddress(0, a.Address) {
		t.Fatal("address still local")
	}
	if _, err := s.FindRoute(0, tcpip.Address{}, tcpip.ParseAddress("192.168.1.9"), ipv4.ProtocolNumber); err == nil {
		t.Fatal("prefix route survived address removal")
	}
	if err := s.RemoveNIC(2); err != nil || s.NIC(2) != nil {
		t.Fatalf("RemoveNIC: %v", err)
	}
}

func TestPortManager(t *testing.T) {
	s := newStack(t)
	pm := s.Ports()
	any := tcpip.Address{}
	a1 := tcpip.ParseAddress("192.168.1.2")
	r1, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: any, Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 80}); err != tcpip.ErrPortInUse {
		t.Fatalf("specific under wildcard: %v", err)
	}
	if _, err := pm.Reserve(stack.Reservation{Proto: 17, Addr: a1, Port: 80}); err != nil {
		t.Fatalf("other protocol: %v", err)
	}
	pm.Release(r1)
	ra, _ := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 81, Flags: stack.PortFlags{ReuseAddr: true}})
	if _, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 81, Flags: stack.PortFlags{ReuseAddr: true}}); err != nil {
		t.Fatalf("both SO_REUSEADDR: %v", err)
	}
	pm.Update(ra, stack.PortFlags{TimeWait: true}, tcpip.FullAddress{})
	if _, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 82}); err != nil {
		t.Fatal(err)
	}
	tw, _ := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 83, Flags: stack.PortFlags{TimeWait: true}})
	if _, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 83}); err != tcpip.ErrPortInUse {
		t.Fatalf("TIME-WAIT port without SO_REUSEADDR: %v", err)
	}
	if _, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1, Port: 83, Flags: stack.PortFlags{ReuseAddr: true}}); err != nil {
		t.Fatalf("TIME-WAIT port with SO_REUSEADDR: %v", err)
	}
	pm.Release(tw)
	seen := map[uint16]bool{}
	for i := 0; i < 100; i++ {
		r, err := pm.Reserve(stack.Reservation{Proto: 6, Addr: a1})
		if err != nil || r.Port < stack.FirstEphemeralPort || r.Port > stack.LastEphemeralPort || seen[r.Port] {
			t.Fatalf("ephemeral %d: %v (dup %v)", r.Port, err, seen[r.Port])
		}
		seen[r.Port] = true
	}
}

func TestManualClockOrder(t *testing.T) {
	c := tcpip.NewManualClock()
	var order []int
	c.AfterFunc(3, func() { order = append(order, 3) })
	t1 := c.AfterFunc(1, func() { order = append(order, 1) })
	c.AfterFunc(2, func() { order = append(order, 2) })
	t1.Reset(4)
	stopped := c.AfterFunc(2, func() { order = append(order, 99) })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reporting")
	}
	c.Advance(10)
	if len(order) != 3 || order[0] != 2 || order[1] != 3 || order[2] != 1 {
		t.Fatalf("fired %v", order)
	}
	if c.Now() != 10 {
		t.Fatalf("now %v", c.Now())
	}
}

// Routes over loopback skip transport checksums and defer delivery to
// the sender's flush; routes over a wire link do neither.
func TestLoopbackRouteCapabilities(t *testing.T) {
	s := newStack(t)
	lo := loopback.New()
	defer lo.Close()
	if err := s.CreateNIC(3, "lo", lo); err != nil {
		t.Fatal(err)
	}
	s.AddAddress(3, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("127.0.0.1"), PrefixLen: 8})
	r, err := s.FindRoute(0, tcpip.Address{}, tcpip.ParseAddress("127.0.0.1"), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	if !r.ChecksumOffload() || !r.DefersDelivery() {
		t.Errorf("loopback route: checksum offload %v, deferred delivery %v", r.ChecksumOffload(), r.DefersDelivery())
	}
	w, err := s.FindRoute(0, tcpip.Address{}, tcpip.ParseAddress("192.168.1.9"), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	if w.ChecksumOffload() || w.DefersDelivery() {
		t.Errorf("channel route: checksum offload %v, deferred delivery %v", w.ChecksumOffload(), w.DefersDelivery())
	}
	w.FlushLink() // a no-op on links that deliver at once
}

// JoinTail makes a split packet whole and forgets its chunk; Size and
// Flatten count the tail either way.
func TestJoinTail(t *testing.T) {
	p := stack.NewSplitInboundPacket([]byte("head"), []byte("tail"))
	p.Chunk = buffer.NewChunk(8)
	if p.Size() != 8 || string(p.Flatten()) != "headtail" {
		t.Fatalf("split: size %d, flattened %q", p.Size(), p.Flatten())
	}
	p.JoinTail()
	if string(p.Data) != "headtail" || p.Tail != nil || p.Chunk != nil || p.Size() != 8 {
		t.Fatalf("joined: data %q tail %q chunk %v", p.Data, p.Tail, p.Chunk)
	}
}
