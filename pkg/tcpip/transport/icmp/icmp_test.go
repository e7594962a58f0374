package icmp_test

import (
	"bytes"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/loopback"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/icmp"
)

func newStack(t *testing.T) *stack.Stack {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{icmp.NewProtocol4},
	})
	lo := loopback.New()
	t.Cleanup(lo.Close)
	if err := s.CreateNIC(1, "lo", lo); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddress(1, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("127.0.0.1"), PrefixLen: 8}); err != nil {
		t.Fatal(err)
	}
	return s
}

func read(t *testing.T, ep tcpip.Endpoint) ([]byte, tcpip.ReadResult) {
	t.Helper()
	entry, ch := tcpip.NewChannelEntry()
	ep.WaitQueue().EventRegister(entry, tcpip.EventIn)
	defer ep.WaitQueue().EventUnregister(entry)
	for {
		w := tcpip.SliceWriter{Buf: make([]byte, 100)}
		res, err := ep.Read(&w, tcpip.ReadOptions{})
		if err == tcpip.ErrWouldBlock {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("no echo reply")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return w.Bytes(), res
	}
}

// Two ping endpoints each get only the replies carrying their own
// identifier, stamped by the endpoint whatever the application wrote.
func TestEchoRepliesDemultiplexedByIdent(t *testing.T) {
	s := newStack(t)
	var eps [2]tcpip.Endpoint
	for i := range eps {
		ep, err := s.NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		if err := ep.Bind(tcpip.FullAddress{Port: uint16(1000 + i)}); err != nil {
			t.Fatal(err)
		}
		eps[i] = ep
	}
	to := tcpip.FullAddress{Addr: tcpip.ParseAddress("127.0.0.1")}
	for i, ep := range eps {
		req := []byte{8, 0, 0, 0, 0xff, 0xff, 0, byte(i), 'x', byte('0' + i)}
		if _, err := ep.Write(bytes.NewReader(req), tcpip.WriteOptions{To: &to}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ep := range eps {
		b, res := read(t, ep)
		if len(b) != 10 || b[0] != 0 || int(b[4])<<8|int(b[5]) != 1000+i || b[7] != byte(i) || b[9] != byte('0'+i) {
			t.Errorf("endpoint %d got %x", i, b)
		}
		if res.RemoteAddr.Addr != to.Addr {
			t.Errorf("reply from %v", res.RemoteAddr)
		}
	}
	// Only echo requests may be sent, and a bound identifier is taken.
	if _, err := eps[0].Write(bytes.NewReader([]byte{13, 0, 0, 0, 0, 0, 0, 0}), tcpip.WriteOptions{To: &to}); err != tcpip.ErrInvalidArgument {
		t.Errorf("timestamp request: %v, want ErrInvalidArgument", err)
	}
	if _, err := eps[0].Write(bytes.NewReader([]byte{8, 0, 0}), tcpip.WriteOptions{To: &to}); err != tcpip.ErrInvalidArgument {
		t.Errorf("short message: %v, want ErrInvalidArgument", err)
	}
	dup, _ := s.NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, nil)
	defer dup.Close()
	if err := dup.Bind(tcpip.FullAddress{Port: 1000}); err != tcpip.ErrPortInUse {
		t.Errorf("bind to a taken identifier: %v, want ErrPortInUse", err)
	}
}
