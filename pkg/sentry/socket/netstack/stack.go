package netstack

import (
	"fmt"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/loopback"
	"carapace.dev/carapace/pkg/tcpip/network/arp"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/icmp"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
)

// LoopbackNICID is the loopback interface's index, 1 as on Linux.
const LoopbackNICID tcpip.NICID = 1

// NewStack returns a stack with every protocol the sockets use: IPv4,
// IPv6 and ARP; TCP, UDP and ICMP echo for both IP versions.
func NewStack() *stack.Stack {
	return stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
}

// AddLoopback creates the loopback interface "lo" with 127.0.0.1/8 and
// ::1/128, as a Linux network namespace has it. The returned link must be
// closed when the stack is done with.
func AddLoopback(s *stack.Stack) (*loopback.Endpoint, error) {
	lo := loopback.New()
	if err := s.CreateNIC(LoopbackNICID, "lo", lo); err != nil {
		lo.Close()
		return nil, fmt.Errorf("create loopback NIC: %w", err)
	}
	if err := s.AddAddress(LoopbackNICID, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("127.0.0.1"), PrefixLen: 8}); err != nil {
		return nil, fmt.Errorf("add 127.0.0.1/8: %w", err)
	}
	if err := s.AddAddress(LoopbackNICID, ipv6.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("::1"), PrefixLen: 128}); err != nil {
		return nil, fmt.Errorf("add ::1/128: %w", err)
	}
	return lo, nil
}
