// Package tcpip holds the vocabulary shared by every layer of the user-space
// network stack: addresses, subnets, protocol numbers, errors (each carrying
// the Linux errno it maps to), socket options, the endpoint interface the
// Sentry's socket layer sits on, readiness notification and the clock the
// stack's timers run on.
package tcpip

import (
	"fmt"
	"net/netip"
	"strings"
)

// NICID names a network interface within one stack.
type NICID int32

// NetworkProtocolNumber is an ethertype (0x0800 IPv4, 0x0806 ARP, 0x86dd IPv6).
type NetworkProtocolNumber uint32

// TransportProtocolNumber is an IP protocol number (6 TCP, 17 UDP, 1 ICMP).
type TransportProtocolNumber uint32

// Address is an IPv4 (4 bytes) or IPv6 (16 bytes) address. It is a
// comparable value type so it can key maps without allocating.
type Address struct {
	bytes [16]byte
	n     uint8
}

// AddrFrom4 makes an IPv4 address.
func AddrFrom4(b [4]byte) Address {
	var a Address
	copy(a.bytes[:], b[:])
	a.n = 4
	return a
}

// AddrFrom16 makes an IPv6 address.
func AddrFrom16(b [16]byte) Address {
	return Address{bytes: b, n: 16}
}

// AddrFromSlice makes an address from 4 or 16 bytes; any other length gives
// the zero Address.
func AddrFromSlice(b []byte) Address {
	var a Address
	if len(b) != 4 && len(b) != 16 {
		return a
	}
	copy(a.bytes[:], b)
	a.n = uint8(len(b))
	return a
}

// ParseAddress parses dotted IPv4 or textual IPv6; it returns the zero
// Address on error (it is meant for configuration and tests).
func ParseAddress(s string) Address {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return Address{}
	}
	if ip.Is4() {
		return AddrFrom4(ip.As4())
	}
	return AddrFrom16(ip.As16())
}

// Len is 4, 16, or 0 for the zero Address.
func (a Address) Len() int { return int(a.n) }

// As4 returns the IPv4 bytes.
func (a Address) As4() [4]byte {
	var b [4]byte
	copy(b[:], a.bytes[:4])
	return b
}

// As16 returns the 16 stored bytes.
func (a Address) As16() [16]byte { return a.bytes }

// AsSlice returns a fresh slice of Len bytes.
func (a Address) AsSlice() []byte {
	b := make([]byte, a.n)
	copy(b, a.bytes[:a.n])
	return b
}

// CopyTo copies the address bytes into b and returns the count.
func (a Address) CopyTo(b []byte) int { return copy(b, a.bytes[:a.n]) }

// Unspecified reports whether the address is the zero Address or all zeros
// (0.0.0.0, ::).
func (a Address) Unspecified() bool {
	for _, c := range a.bytes[:a.n] {
		if c != 0 {
			return false
		}
	}
	return true
}

// IsBroadcast reports whether a is 255.255.255.255.
func (a Address) IsBroadcast() bool {
	return a.n == 4 && a.bytes[0] == 255 && a.bytes[1] == 255 && a.bytes[2] == 255 && a.bytes[3] == 255
}

// IsMulticast reports whether a is IPv4 224/4 or IPv6 ff00::/8.
func (a Address) IsMulticast() bool {
	switch a.n {
	case 4:
		return a.bytes[0]&0xf0 == 0xe0
	case 16:
		return a.bytes[0] == 0xff
	}
	return false
}

// IsLoopback reports 127/8 or ::1.
func (a Address) IsLoopback() bool {
	switch a.n {
	case 4:
		return a.bytes[0] == 127
	case 16:
		return a == AddrFrom16([16]byte{15: 1})
	}
	return false
}

func (a Address) String() string {
	switch a.n {
	case 4:
		return netip.AddrFrom4(a.As4()).String()
	case 16:
		return netip.AddrFrom16(a.bytes).String()
	}
	return "<nil>"
}

// Subnet is an address prefix.
type Subnet struct {
	id     Address
	prefix int
}

// NewSubnet masks addr to prefix bits. An out of range prefix is clamped.
func NewSubnet(addr Address, prefix int) Subnet {
	bits := addr.Len() * 8
	if prefix < 0 {
		prefix = 0
	}
	if prefix > bits {
		prefix = bits
	}
	s := Subnet{id: addr, prefix: prefix}
	for i := 0; i < addr.Len(); i++ {
		s.id.bytes[i] &= maskByte(prefix, i)
	}
	return s
}

func maskByte(prefix, i int) byte {
	switch {
	case prefix >= (i+1)*8:
		return 0xff
	case prefix <= i*8:
		return 0
	default:
		return ^byte(0xff >> uint(prefix-i*8))
	}
}

// ID is the network address.
func (s Subnet) ID() Address { return s.id }

// Prefix is the prefix length in bits.
func (s Subnet) Prefix() int { return s.prefix }

// Contains reports whether a lies in s.
func (s Subnet) Contains(a Address) bool {
	if a.n != s.id.n {
		return false
	}
	for i := 0; i < int(a.n); i++ {
		if a.bytes[i]&maskByte(s.prefix, i) != s.id.bytes[i] {
			return false
		}
	}
	return true
}

// Broadcast is the all-ones host address of the subnet.
func (s Subnet) Broadcast() Address {
	b := s.id
	for i := 0; i < int(b.n); i++ {
		b.bytes[i] |= ^maskByte(s.prefix, i)
	}
	return b
}

func (s Subnet) String() string { return fmt.Sprintf("%s/%d", s.id, s.prefix) }

// AddressWithPrefix is an interface address and its on-link prefix length.
type AddressWithPrefix struct {
	Address   Address
	PrefixLen int
}

// Subnet is the on-link subnet of the address.
func (a AddressWithPrefix) Subnet() Subnet { return NewSubnet(a.Address, a.PrefixLen) }

func (a AddressWithPrefix) String() string { return fmt.Sprintf("%s/%d", a.Address, a.PrefixLen) }

// LinkAddress is an Ethernet MAC address.
type LinkAddress [6]byte

// BroadcastLinkAddress is ff:ff:ff:ff:ff:ff.
var BroadcastLinkAddress = LinkAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ParseLinkAddress parses "aa:bb:cc:dd:ee:ff"; zero on error.
func ParseLinkAddress(s string) LinkAddress {
	var l LinkAddress
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return LinkAddress{}
	}
	for i, p := range parts {
		var v uint
		if _, err := fmt.Sscanf(p, "%02x", &v); err != nil || v > 0xff {
			return LinkAddress{}
		}
		l[i] = byte(v)
	}
	return l
}

func (l LinkAddress) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", l[0], l[1], l[2], l[3], l[4], l[5])
}

// FullAddress is a transport endpoint address. NIC 0 means any interface,
// the zero Addr any address, Port 0 an ephemeral port.
type FullAddress struct {
	NIC  NICID
	Addr Address
	Port uint16
}

func (f FullAddress) String() string {
	if f.Addr.Len() == 16 {
		return fmt.Sprintf("[%s]:%d", f.Addr, f.Port)
	}
	return fmt.Sprintf("%s:%d", f.Addr, f.Port)
}

// ShutdownFlags select the directions Shutdown closes.
type ShutdownFlags int

const (
	// ShutdownRead is SHUT_RD.
	ShutdownRead ShutdownFlags = 1 << iota
	// ShutdownWrite is SHUT_WR.
	ShutdownWrite
)
