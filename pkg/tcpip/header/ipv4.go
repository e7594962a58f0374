package header

import (
	"encoding/binary"
	"errors"

	"carapace.dev/carapace/pkg/tcpip"
)

// IPv4 constants (RFC 791).
const (
	IPv4MinimumSize = 20
	IPv4MaximumSize = 60 // header with full options
	IPv4Version     = 4
	// IPv4MaxPacketSize is the largest total length.
	IPv4MaxPacketSize = 65535
	// IPv4FlagDontFragment and IPv4FlagMoreFragments are the flag bits of
	// the flags/fragment-offset word.
	IPv4FlagDontFragment  = 0x4000
	IPv4FlagMoreFragments = 0x2000
	ipv4FragOffsetMask    = 0x1fff
)

// IPv4 option types.
const (
	IPv4OptionEOL            = 0
	IPv4OptionNOP            = 1
	IPv4OptionRecordRoute    = 7
	IPv4OptionTimestamp      = 68
	IPv4OptionLSRR           = 131
	IPv4OptionSSRR           = 137
	IPv4OptionRouterAlert    = 148
	IPv4ProtocolICMP         = 1
	IPv4ProtocolTCP          = 6
	IPv4ProtocolUDP          = 17
	IPv6ProtocolICMP         = 58
	IPv4DefaultTTL           = 64
	IPv4AnyAddressPrefixBits = 0
)

// IPv4 is an IPv4 header followed by its payload.
type IPv4 []byte

// IPv4Fields is what Encode writes. Options must be a multiple of 4 bytes
// (pad with EOL) and at most 40 bytes.
type IPv4Fields struct {
	TOS         uint8
	TotalLength uint16
	ID          uint16
	Flags       uint16 // IPv4FlagDontFragment / IPv4FlagMoreFragments
	FragOffset  uint16 // in bytes; must be a multiple of 8
	TTL         uint8
	Protocol    uint8
	Src, Dst    tcpip.Address
	Options     []byte
}

// Errors from ParseIPv4.
var (
	ErrIPv4Short    = errors.New("ipv4: packet shorter than header")
	ErrIPv4Version  = errors.New("ipv4: bad version")
	ErrIPv4IHL      = errors.New("ipv4: bad header length")
	ErrIPv4Length   = errors.New("ipv4: bad total length")
	ErrIPv4Checksum = errors.New("ipv4: bad header checksum")
	ErrIPv4Options  = errors.New("ipv4: malformed options")
)

// ParseIPv4 validates the header in b (version, lengths, checksum,
// option framing) and returns the packet trimmed to its total length.
func ParseIPv4(b []byte) (IPv4, error) {
	h, err := parseIPv4(b, len(b))
	if err != nil {
		return nil, err
	}
	return h[:h.TotalLength()], nil
}

// ParseIPv4Split validates the IPv4 header at the start of head, for a
// packet whose last tailLen bytes are held apart from head (a loopback
// packet delivered without joining its payload): the total length must be
// exactly len(head)+tailLen. The header returned spans head, so its
// Payload method does not apply: the payload is head[HeaderLength():]
// followed by the tail.
func ParseIPv4Split(head []byte, tailLen int) (IPv4, error) {
	h, err := parseIPv4(head, len(head)+tailLen)
	if err != nil {
		return nil, err
	}
	if int(h.TotalLength()) != len(head)+tailLen {
		return nil, ErrIPv4Length
	}
	return h, nil
}

// parseIPv4 validates the header at the start of b for a packet of size
// bytes (b holding at least the header) and returns b.
func parseIPv4(b []byte, size int) (IPv4, error) {
	if len(b) < IPv4MinimumSize {
		return nil, ErrIPv4Short
	}
	if b[0]>>4 != IPv4Version {
		return nil, ErrIPv4Version
	}
	hl := int(b[0]&0xf) * 4
	if hl < IPv4MinimumSize || hl > len(b) {
		return nil, ErrIPv4IHL
	}
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < hl || tl > size {
		return nil, ErrIPv4Length
	}
	if Checksum(b[:hl], 0) != 0xffff {
		return nil, ErrIPv4Checksum
	}
	h := IPv4(b)
	it := h.Options()
	for {
		_, _, ok, err := it.Next()
		if err != nil {
			return nil, ErrIPv4Options
		}
		if !ok {
			break
		}
	}
	return h, nil
}

// HeaderLength is the header length in bytes.
func (h IPv4) HeaderLength() int { return int(h[0]&0xf) * 4 }

// TOS is the type of service byte.
func (h IPv4) TOS() uint8 { return h[1] }

// TotalLength is the packet length field.
func (h IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(h[2:]) }

// ID is the identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// Flags are the DF/MF bits.
func (h IPv4) Flags() uint16 { return binary.BigEndian.Uint16(h[6:]) &^ ipv4FragOffsetMask }

// MoreFragments reports the MF bit.
func (h IPv4) MoreFragments() bool { return h.Flags()&IPv4FlagMoreFragments != 0 }

// FragmentOffset is the fragment offset in bytes.
func (h IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(h[6:])&ipv4FragOffsetMask) * 8
}

// IsFragment reports whether the packet is one piece of a larger datagram.
func (h IPv4) IsFragment() bool { return h.MoreFragments() || h.FragmentOffset() != 0 }

// TTL is the time to live.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol is the transport protocol number.
func (h IPv4) Protocol() uint8 { return h[9] }

// SourceAddress is the source.
func (h IPv4) SourceAddress() tcpip.Address { return tcpip.AddrFromSlice(h[12:16]) }

// DestinationAddress is the destination.
func (h IPv4) DestinationAddress() tcpip.Address { return tcpip.AddrFromSlice(h[16:20]) }

// Payload is what follows the header, up to the total length.
func (h IPv4) Payload() []byte { return h[h.HeaderLength():h.TotalLength()] }

// OptionBytes is the raw options area.
func (h IPv4) OptionBytes() []byte { return h[IPv4MinimumSize:h.HeaderLength()] }

// Options iterates over the options.
func (h IPv4) Options() IPv4OptionIterator { return IPv4OptionIterator{b: h.OptionBytes()} }

// SetTTL rewrites the TTL; the caller must recompute the checksum.
func (h IPv4) SetTTL(ttl uint8) { h[8] = ttl }

// SetChecksum recomputes the header checksum.
func (h IPv4) SetChecksum() {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], ^Checksum(h[:h.HeaderLength()], 0))
}

// Encode writes f into h, which must hold 20+len(f.Options) bytes, and
// sets the checksum.
func (h IPv4) Encode(f IPv4Fields) {
	hl := IPv4MinimumSize + len(f.Options)
	h[0] = IPv4Version<<4 | byte(hl/4)
	h[1] = f.TOS
	binary.BigEndian.PutUint16(h[2:], f.TotalLength)
	binary.BigEndian.PutUint16(h[4:], f.ID)
	binary.BigEndian.PutUint16(h[6:], f.Flags|(f.FragOffset/8)&ipv4FragOffsetMask)
	h[8] = f.TTL
	h[9] = f.Protocol
	f.Src.CopyTo(h[12:16])
	f.Dst.CopyTo(h[16:20])
	copy(h[IPv4MinimumSize:hl], f.Options)
	h.SetChecksum()
}

// IPv4OptionIterator walks IPv4 options (RFC 791 §3.1).
type IPv4OptionIterator struct{ b []byte }

// Next returns the next option's type and data (without type and length
// bytes). ok is false at the end; err reports malformed framing.
func (it *IPv4OptionIterator) Next() (typ uint8, data []byte, ok bool, err error) {
	for len(it.b) > 0 {
		typ = it.b[0]
		switch typ {
		case IPv4OptionEOL:
			it.b = nil
			return 0, nil, false, nil
		case IPv4OptionNOP:
			it.b = it.b[1:]
			continue
		}
		if len(it.b) < 2 {
			return 0, nil, false, ErrIPv4Options
		}
		l := int(it.b[1])
		if l < 2 || l > len(it.b) {
			return 0, nil, false, ErrIPv4Options
		}
		data = it.b[2:l]
		it.b = it.b[l:]
		return typ, data, true, nil
	}
	return 0, nil, false, nil
}
