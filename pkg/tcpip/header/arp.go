package header

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
)

// ARPSize is the size of an Ethernet/IPv4 ARP packet (RFC 826).
const ARPSize = 28

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARP is an Ethernet/IPv4 ARP packet.
type ARP []byte

// ParseARP validates that b is an Ethernet/IPv4 ARP packet.
func ParseARP(b []byte) (ARP, bool) {
	if len(b) < ARPSize {
		return nil, false
	}
	a := ARP(b[:ARPSize])
	if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != uint16(EthertypeIPv4) || a[4] != 6 || a[5] != 4 {
		return nil, false
	}
	return a, true
}

// Op is the operation code.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:]) }

// SenderHardware is the sender MAC.
func (a ARP) SenderHardware() tcpip.LinkAddress { return tcpip.LinkAddress(a[8:14]) }

// SenderProtocol is the sender IPv4 address.
func (a ARP) SenderProtocol() tcpip.Address { return tcpip.AddrFromSlice(a[14:18]) }

// TargetHardware is the target MAC.
func (a ARP) TargetHardware() tcpip.LinkAddress { return tcpip.LinkAddress(a[18:24]) }

// TargetProtocol is the target IPv4 address.
func (a ARP) TargetProtocol() tcpip.Address { return tcpip.AddrFromSlice(a[24:28]) }

// EncodeARP writes an Ethernet/IPv4 ARP packet into b (ARPSize bytes).
func EncodeARP(b []byte, op uint16, sha tcpip.LinkAddress, spa tcpip.Address, tha tcpip.LinkAddress, tpa tcpip.Address) {
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], uint16(EthertypeIPv4))
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:14], sha[:])
	spa.CopyTo(b[14:18])
	copy(b[18:24], tha[:])
	tpa.CopyTo(b[24:28])
}
