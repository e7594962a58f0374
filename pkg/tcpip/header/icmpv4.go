package header

import "encoding/binary"

// ICMPv4 (RFC 792) constants.
const (
	ICMPv4MinimumSize = 8

	ICMPv4EchoReply      uint8 = 0
	ICMPv4DstUnreachable uint8 = 3
	ICMPv4Echo           uint8 = 8
	ICMPv4TimeExceeded   uint8 = 11
	ICMPv4ParamProblem   uint8 = 12

	ICMPv4NetUnreachable      uint8 = 0
	ICMPv4HostUnreachable     uint8 = 1
	ICMPv4ProtoUnreachable    uint8 = 2
	ICMPv4PortUnreachable     uint8 = 3
	ICMPv4FragmentationNeeded uint8 = 4
)

// ICMPv4 is an ICMPv4 message.
type ICMPv4 []byte

// ParseICMPv4 validates length and checksum.
func ParseICMPv4(b []byte) (ICMPv4, bool) {
	if len(b) < ICMPv4MinimumSize || Checksum(b, 0) != 0xffff {
		return nil, false
	}
	return ICMPv4(b), true
}

// Type is the message type.
func (i ICMPv4) Type() uint8 { return i[0] }

// Code is the message code.
func (i ICMPv4) Code() uint8 { return i[1] }

// Ident is the echo identifier.
func (i ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(i[4:]) }

// Sequence is the echo sequence number.
func (i ICMPv4) Sequence() uint16 { return binary.BigEndian.Uint16(i[6:]) }

// MTU is the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (i ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(i[6:]) }

// Payload is what follows the 8-byte header.
func (i ICMPv4) Payload() []byte { return i[ICMPv4MinimumSize:] }

// EncodeICMPv4 writes type, code and the 4 rest-of-header bytes into b
// (whose tail must already hold the payload) and sets the checksum.
func EncodeICMPv4(b []byte, typ, code uint8, rest uint32) {
	b[0], b[1] = typ, code
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], rest)
	binary.BigEndian.PutUint16(b[2:], ^Checksum(b, 0))
}
