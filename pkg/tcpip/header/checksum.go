// Package header parses and builds the wire formats the stack speaks:
// Ethernet, ARP, IPv4 (with options), IPv6 (with extension headers),
// ICMPv4, ICMPv6 (with NDP), UDP and TCP (with options), and the Internet
// checksum they share. Each header type is a byte slice with accessors;
// validating functions never panic on short or malformed input.
package header

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
)

// Checksum adds the bytes of b, as big-endian 16-bit words, into the
// one's-complement running sum initial (RFC 1071) and returns the folded sum.
// An odd trailing byte is padded with zero.
func Checksum(b []byte, initial uint16) uint16 {
	sum := uint64(initial)
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = (sum & 0xffff) + sum>>16
	}
	return uint16(sum)
}

// ChecksumCombine adds two folded one's-complement sums.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum is the sum of the TCP/UDP/ICMPv6 pseudo-header
// (RFC 793 §3.1, RFC 8200 §8.1) for the given addresses, protocol and length.
func PseudoHeaderChecksum(proto tcpip.TransportProtocolNumber, src, dst tcpip.Address, length uint16) uint16 {
	var buf [16]byte
	n := src.CopyTo(buf[:])
	s := Checksum(buf[:n], 0)
	n = dst.CopyTo(buf[:])
	s = Checksum(buf[:n], s)
	var tail [4]byte
	binary.BigEndian.PutUint16(tail[0:], uint16(proto))
	binary.BigEndian.PutUint16(tail[2:], length)
	return Checksum(tail[:], s)
}
