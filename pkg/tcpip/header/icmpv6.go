package header

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
)

// ICMPv6 (RFC 4443) and NDP (RFC 4861) constants.
const (
	ICMPv6MinimumSize                                  = 8
	ICMPv6ProtocolNumber tcpip.TransportProtocolNumber = 58

	ICMPv6DstUnreachable  uint8 = 1
	ICMPv6PacketTooBig    uint8 = 2
	ICMPv6TimeExceeded    uint8 = 3
	ICMPv6ParamProblem    uint8 = 4
	ICMPv6EchoRequest     uint8 = 128
	ICMPv6EchoReply       uint8 = 129
	ICMPv6RouterSolicit   uint8 = 133
	ICMPv6RouterAdvert    uint8 = 134
	ICMPv6NeighborSolicit uint8 = 135
	ICMPv6NeighborAdvert  uint8 = 136

	// NDPNSSize and NDPNASize are the fixed parts (after the 4-byte ICMP
	// header) of NS and NA: 4 reserved/flag bytes and the target.
	NDPNSMinimumSize = ICMPv6MinimumSize + 16
	NDPNAMinimumSize = ICMPv6MinimumSize + 16

	NDPOptionSourceLinkAddress = 1
	NDPOptionTargetLinkAddress = 2

	NDPNAFlagRouter    = 0x80
	NDPNAFlagSolicited = 0x40
	NDPNAFlagOverride  = 0x20
)

// ICMPv6 is an ICMPv6 message.
type ICMPv6 []byte

// ParseICMPv6 checks length and the checksum over the pseudo-header.
func ParseICMPv6(b []byte, src, dst tcpip.Address) (ICMPv6, bool) {
	if len(b) < ICMPv6MinimumSize {
		return nil, false
	}
	if Checksum(b, PseudoHeaderChecksum(ICMPv6ProtocolNumber, src, dst, uint16(len(b)))) != 0xffff {
		return nil, false
	}
	return ICMPv6(b), true
}

// Type is the message type.
func (i ICMPv6) Type() uint8 { return i[0] }

// Code is the message code.
func (i ICMPv6) Code() uint8 { return i[1] }

// Ident is the echo identifier.
func (i ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(i[4:]) }

// Sequence is the echo sequence number.
func (i ICMPv6) Sequence() uint16 { return binary.BigEndian.Uint16(i[6:]) }

// Payload is what follows the 8-byte header.
func (i ICMPv6) Payload() []byte { return i[ICMPv6MinimumSize:] }

// EncodeICMPv6 writes type, code and 4 rest bytes into b (payload already
// in place) and the checksum over the pseudo-header.
func EncodeICMPv6(b []byte, typ, code uint8, rest uint32, src, dst tcpip.Address) {
	b[0], b[1] = typ, code
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], rest)
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b, PseudoHeaderChecksum(ICMPv6ProtocolNumber, src, dst, uint16(len(b)))))
}

// NDPNeighbor is a Neighbor Solicitation or Advertisement.
type NDPNeighbor struct {
	Flags  uint8 // NA flags (R, S, O)
	Target tcpip.Address
	// LinkAddress is the source (NS) or target (NA) link-layer address
	// option, if HasLinkAddress.
	LinkAddress    tcpip.LinkAddress
	HasLinkAddress bool
}

// ParseNDPNeighbor decodes an NS or NA message body (RFC 4861 §4.3, §4.4),
// including its link-layer address option. It rejects malformed options
// (zero length, overrun) as §4.6 requires.
func ParseNDPNeighbor(m ICMPv6) (NDPNeighbor, bool) {
	var n NDPNeighbor
	if len(m) < NDPNSMinimumSize || (m.Type() != ICMPv6NeighborSolicit && m.Type() != ICMPv6NeighborAdvert) || m.Code() != 0 {
		return n, false
	}
	n.Flags = m[4]
	n.Target = tcpip.AddrFromSlice(m[8:24])
	if n.Target.IsMulticast() {
		return n, false
	}
	want := uint8(NDPOptionSourceLinkAddress)
	if m.Type() == ICMPv6NeighborAdvert {
		want = NDPOptionTargetLinkAddress
	}
	opts := m[24:]
	for len(opts) > 0 {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return n, false
		}
		l := int(opts[1]) * 8
		if opts[0] == want && l == 8 {
			copy(n.LinkAddress[:], opts[2:8])
			n.HasLinkAddress = true
		}
		opts = opts[l:]
	}
	return n, true
}

// EncodeNDPNeighbor writes an NS or NA (without checksum: call
// EncodeICMPv6's checksum step via SetICMPv6Checksum) into b, which must be
// 32 bytes when a link address is included, else 24. It returns the length.
func EncodeNDPNeighbor(b []byte, typ uint8, flags uint8, target tcpip.Address, link *tcpip.LinkAddress) int {
	b[0], b[1] = typ, 0
	b[2], b[3] = 0, 0
	b[4], b[5], b[6], b[7] = flags, 0, 0, 0
	target.CopyTo(b[8:24])
	if link == nil {
		return 24
	}
	b[24] = NDPOptionSourceLinkAddress
	if typ == ICMPv6NeighborAdvert {
		b[24] = NDPOptionTargetLinkAddress
	}
	b[25] = 1
	copy(b[26:32], link[:])
	return 32
}

// SetICMPv6Checksum computes and stores the checksum of message b.
func SetICMPv6Checksum(b []byte, src, dst tcpip.Address) {
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b, PseudoHeaderChecksum(ICMPv6ProtocolNumber, src, dst, uint16(len(b)))))
}
