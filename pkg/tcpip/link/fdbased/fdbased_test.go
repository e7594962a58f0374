package fdbased_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/fdbased"
	"carapace.dev/carapace/pkg/tcpip/network/arp"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

type host struct {
	s    *stack.Stack
	link *fdbased.Endpoint
}

// newHosts joins two stacks over a SOCK_SEQPACKET socketpair, which keeps
// packet boundaries like an AF_PACKET socket or tap does.
func newHosts(t *testing.T, ethernet bool) (a, b host) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	mk := func(fd int, mac tcpip.LinkAddress, addr string) host {
		l, err := fdbased.New(fdbased.Options{FD: fd, MTU: 1500, Address: mac, Ethernet: ethernet, BatchSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		s := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
		})
		if err := s.CreateNIC(1, "eth0", l); err != nil {
			t.Fatal(err)
		}
		s.AddAddress(1, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress(addr), PrefixLen: 24})
		t.Cleanup(func() { l.Close(); unix.Close(fd) })
		return host{s, l}
	}
	return mk(fds[0], tcpip.LinkAddress{2, 0, 0, 0, 0, 1}, "192.168.7.1"), mk(fds[1], tcpip.LinkAddress{2, 0, 0, 0, 0, 2}, "192.168.7.2")
}

func wait(t *testing.T, ep tcpip.Endpoint, mask tcpip.EventMask, try func() bool) {
	t.Helper()
	entry, ch := tcpip.NewChannelEntry()
	ep.WaitQueue().EventRegister(entry, mask)
	defer ep.WaitQueue().EventUnregister(entry)
	deadline := time.After(10 * time.Second)
	for !try() {
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("timed out")
		}
	}
}

func TestUDPOverSocketpair(t *testing.T) {
	for _, eth := range []bool{true, false} {
		a, b := newHosts(t, eth)
		srv, _ := b.s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
		defer srv.Close()
		srv.Bind(tcpip.FullAddress{Port: 9})
		cli, _ := a.s.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, nil)
		defer cli.Close()
		cli.Connect(tcpip.FullAddress{Addr: tcpip.ParseAddress("192.168.7.2"), Port: 9})
		cli.Write(bytes.NewReader([]byte("over the fd")), tcpip.WriteOptions{})
		var got bytes.Buffer
		wait(t, srv, tcpip.EventIn, func() bool {
			_, err := srv.Read(&got, tcpip.ReadOptions{})
			return err == nil
		})
		if got.String() != "over the fd" {
			t.Fatalf("ethernet=%v got %q", eth, got.String())
		}
		// The sender counts a batch after sendmmsg returns, which can be
		// after the receiver has the datagram: give it a moment.
		for i := 0; a.link.Stats.TxPackets.Load() == 0 && i < 500; i++ {
			time.Sleep(time.Millisecond)
		}
		if a.link.Stats.TxPackets.Load() == 0 || b.link.Stats.RxPackets.Load() == 0 {
			t.Fatal("counters did not move")
		}
	}
}

func TestTCPOverSocketpair(t *testing.T) {
	a, b := newHosts(t, true)
	ln, _ := b.s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	defer ln.Close()
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(4)
	c, _ := a.s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, nil)
	defer c.Close()
	c.Connect(tcpip.FullAddress{Addr: tcpip.ParseAddress("192.168.7.2"), Port: 80})
	var s tcpip.Endpoint
	wait(t, ln, tcpip.EventIn, func() bool {
		var err *tcpip.Error
		s, _, err = ln.Accept()
		return err == nil
	})
	defer s.Close()
	data := bytes.Repeat([]byte("0123456789"), 50000)
	go func() {
		r := bytes.NewReader(data)
		entry, ch := tcpip.NewChannelEntry()
		c.WaitQueue().EventRegister(entry, tcpip.EventOut)
		defer c.WaitQueue().EventUnregister(entry)
		for r.Len() > 0 {
			if _, err := c.Write(r, tcpip.WriteOptions{}); err == tcpip.ErrWouldBlock {
				select {
				case <-ch:
				case <-time.After(time.Second):
				}
			} else if err != nil {
				return
			}
		}
	}()
	var got bytes.Buffer
	wait(t, s, tcpip.EventIn, func() bool {
		s.Read(&got, tcpip.ReadOptions{})
		return got.Len() >= len(data)
	})
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("got %d bytes", got.Len())
	}
	_ = io.EOF
}
