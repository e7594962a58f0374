package header

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
)

// EthernetMinimumSize is the size of an untagged Ethernet II header.
const EthernetMinimumSize = 14

// Ethertypes the stack handles.
const (
	EthertypeIPv4 tcpip.NetworkProtocolNumber = 0x0800
	EthertypeARP  tcpip.NetworkProtocolNumber = 0x0806
	EthertypeIPv6 tcpip.NetworkProtocolNumber = 0x86dd
)

// Ethernet is an Ethernet II header.
type Ethernet []byte

// EthernetFields is what Encode writes.
type EthernetFields struct {
	Src, Dst tcpip.LinkAddress
	Type     tcpip.NetworkProtocolNumber
}

// ParseEthernet returns the header view if b is long enough.
func ParseEthernet(b []byte) (Ethernet, bool) {
	if len(b) < EthernetMinimumSize {
		return nil, false
	}
	return Ethernet(b[:EthernetMinimumSize]), true
}

// DestinationAddress is the destination MAC.
func (e Ethernet) DestinationAddress() tcpip.LinkAddress { return tcpip.LinkAddress(e[0:6]) }

// SourceAddress is the source MAC.
func (e Ethernet) SourceAddress() tcpip.LinkAddress { return tcpip.LinkAddress(e[6:12]) }

// Type is the ethertype.
func (e Ethernet) Type() tcpip.NetworkProtocolNumber {
	return tcpip.NetworkProtocolNumber(binary.BigEndian.Uint16(e[12:]))
}

// Encode writes f into e.
func (e Ethernet) Encode(f EthernetFields) {
	copy(e[0:6], f.Dst[:])
	copy(e[6:12], f.Src[:])
	binary.BigEndian.PutUint16(e[12:], uint16(f.Type))
}
