package header

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
)

// UDPMinimumSize is the UDP header size (RFC 768).
const UDPMinimumSize = 8

// UDPProtocolNumber is UDP's IP protocol number.
const UDPProtocolNumber tcpip.TransportProtocolNumber = 17

// UDP is a UDP header and payload.
type UDP []byte

// ParseUDP checks the length field against b and returns the datagram
// trimmed to it. The checksum is checked separately with IsChecksumValid
// since it needs the pseudo-header.
func ParseUDP(b []byte) (UDP, bool) {
	if len(b) < UDPMinimumSize {
		return nil, false
	}
	l := int(binary.BigEndian.Uint16(b[4:]))
	if l < UDPMinimumSize || l > len(b) {
		return nil, false
	}
	return UDP(b[:l]), true
}

// SourcePort is the source port.
func (u UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(u[0:]) }

// DestinationPort is the destination port.
func (u UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(u[2:]) }

// Length is the length field.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[4:]) }

// Checksum is the checksum field.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:]) }

// Payload is the data.
func (u UDP) Payload() []byte { return u[UDPMinimumSize:] }

// IsChecksumValid verifies the checksum; zero means "none" over IPv4.
func (u UDP) IsChecksumValid(src, dst tcpip.Address) bool {
	if u.Checksum() == 0 {
		return src.Len() == 4
	}
	s := PseudoHeaderChecksum(UDPProtocolNumber, src, dst, uint16(len(u)))
	return Checksum(u, s) == 0xffff
}

// EncodeUDP writes the header into u (whose payload is already in place)
// with length len(u) and a checksum over the pseudo-header.
func EncodeUDP(u []byte, srcPort, dstPort uint16, src, dst tcpip.Address) {
	binary.BigEndian.PutUint16(u[0:], srcPort)
	binary.BigEndian.PutUint16(u[2:], dstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	u[6], u[7] = 0, 0
	c := ^Checksum(u, PseudoHeaderChecksum(UDPProtocolNumber, src, dst, uint16(len(u))))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
}

// EncodeUDPHeader writes an 8-byte header into h for a payload held
// elsewhere, given the payload's length and folded checksum
// (Checksum(payload, 0)), so the payload need not be contiguous with it.
func EncodeUDPHeader(h []byte, srcPort, dstPort uint16, payloadLen int, payloadSum uint16, src, dst tcpip.Address) {
	l := uint16(UDPMinimumSize + payloadLen)
	binary.BigEndian.PutUint16(h[0:], srcPort)
	binary.BigEndian.PutUint16(h[2:], dstPort)
	binary.BigEndian.PutUint16(h[4:], l)
	h[6], h[7] = 0, 0
	s := ChecksumCombine(PseudoHeaderChecksum(UDPProtocolNumber, src, dst, l), payloadSum)
	c := ^Checksum(h[:UDPMinimumSize], s)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(h[6:], c)
}
