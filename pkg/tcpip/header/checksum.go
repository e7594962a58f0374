// Package header parses and builds the wire formats the stack speaks:
// Ethernet, ARP, IPv4 (with options), IPv6 (with extension headers),
// ICMPv4, ICMPv6 (with NDP), UDP and TCP (with options), and the Internet
// checksum they share. Each header type is a byte slice with accessors;
// validating functions never panic on short or malformed input.
package header

import (
	"encoding/binary"
	"math/bits"

	"carapace.dev/carapace/pkg/tcpip"
)

// Checksum adds the bytes of b, as big-endian 16-bit words, into the
// one's-complement running sum initial (RFC 1071) and returns the folded sum.
// An odd trailing byte is padded with zero.
func Checksum(b []byte, initial uint16) uint16 {
	// The one's-complement sum does not depend on byte order (RFC 1071
	// §2(B)): the bytes are added as native little-endian 64-bit words
	// with end-around carry, four at a time, and the folded result is
	// swapped back to network order. That is several times faster than
	// adding 16- or 32-bit big-endian pieces.
	sum := uint64(bits.ReverseBytes16(initial))
	var c uint64
	for len(b) >= 32 {
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b), 0)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[8:]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[16:]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[24:]), c)
		sum, c = bits.Add64(sum, 0, c)
		sum += c // sum was all ones if c is set, so this cannot carry
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b), 0)
		sum += c
		b = b[8:]
	}
	var rest uint64 // at most three 16-bit words and a byte: no overflow
	for len(b) >= 2 {
		rest += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		// An odd last byte is padded with zero after it: in little-endian
		// order it is the low byte of its word.
		rest += uint64(b[0])
	}
	sum, c = bits.Add64(sum, rest, 0)
	sum += c
	// Fold 64 bits to 16, carrying around each time.
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return bits.ReverseBytes16(uint16(sum))
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
