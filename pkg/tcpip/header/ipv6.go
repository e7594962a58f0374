package header

import (
	"encoding/binary"
	"errors"

	"carapace.dev/carapace/pkg/tcpip"
)

// IPv6 constants (RFC 8200).
const (
	IPv6MinimumSize = 40
	IPv6Version     = 6
	IPv6MinimumMTU  = 1280

	IPv6ExtHopByHop    = 0
	IPv6ExtRouting     = 43
	IPv6ExtFragment    = 44
	IPv6ExtESP         = 50
	IPv6ExtAH          = 51
	IPv6NoNextHeader   = 59
	IPv6ExtDestination = 60

	IPv6FragmentHeaderSize = 8
)

// Errors from ParseIPv6 and the extension header iterator.
var (
	ErrIPv6Short   = errors.New("ipv6: packet shorter than header")
	ErrIPv6Version = errors.New("ipv6: bad version")
	ErrIPv6Length  = errors.New("ipv6: payload length exceeds packet")
	ErrIPv6ExtHdr  = errors.New("ipv6: malformed extension header")
)

// IPv6 is an IPv6 header and payload.
type IPv6 []byte

// IPv6Fields is what Encode writes.
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      tcpip.Address
}

// ParseIPv6 validates the fixed header and trims b to 40+payload length.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6MinimumSize {
		return nil, ErrIPv6Short
	}
	if b[0]>>4 != IPv6Version {
		return nil, ErrIPv6Version
	}
	pl := int(binary.BigEndian.Uint16(b[4:]))
	if IPv6MinimumSize+pl > len(b) {
		return nil, ErrIPv6Length
	}
	return IPv6(b[:IPv6MinimumSize+pl]), nil
}

// ParseIPv6Split validates the fixed IPv6 header at the start of head,
// for a packet whose last tailLen bytes are held apart from head (a
// loopback packet delivered without joining its payload): the payload
// length must cover exactly the rest of head and the tail. The header
// returned spans head, so its Payload and extension headers are what
// head holds, the tail following them.
func ParseIPv6Split(head []byte, tailLen int) (IPv6, error) {
	if len(head) < IPv6MinimumSize {
		return nil, ErrIPv6Short
	}
	if head[0]>>4 != IPv6Version {
		return nil, ErrIPv6Version
	}
	if IPv6MinimumSize+int(binary.BigEndian.Uint16(head[4:])) != len(head)+tailLen {
		return nil, ErrIPv6Length
	}
	return IPv6(head), nil
}

// TrafficClass is the traffic class.
func (h IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(h[0:]) >> 4) }

// FlowLabel is the 20-bit flow label.
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:]) & 0xfffff }

// PayloadLength is the payload length field.
func (h IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(h[4:]) }

// NextHeader is the first next-header value.
func (h IPv6) NextHeader() uint8 { return h[6] }

// HopLimit is the hop limit.
func (h IPv6) HopLimit() uint8 { return h[7] }

// SourceAddress is the source.
func (h IPv6) SourceAddress() tcpip.Address { return tcpip.AddrFromSlice(h[8:24]) }

// DestinationAddress is the destination.
func (h IPv6) DestinationAddress() tcpip.Address { return tcpip.AddrFromSlice(h[24:40]) }

// Payload is everything after the fixed header.
func (h IPv6) Payload() []byte { return h[IPv6MinimumSize:] }

// Encode writes f into h (40 bytes).
func (h IPv6) Encode(f IPv6Fields) {
	binary.BigEndian.PutUint32(h[0:], IPv6Version<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(h[4:], f.PayloadLength)
	h[6] = f.NextHeader
	h[7] = f.HopLimit
	f.Src.CopyTo(h[8:24])
	f.Dst.CopyTo(h[24:40])
}

// IPv6ExtHeader is one extension header found by the iterator.
type IPv6ExtHeader struct {
	// Type is the header's own protocol number (IPv6ExtHopByHop, ...).
	Type uint8
	// NextHeader is the type of what follows it.
	NextHeader uint8
	// Data is the header body after its first two bytes (for Fragment,
	// the 6 bytes after next-header and reserved).
	Data []byte
}

// FragmentOffset is a Fragment header's offset in bytes.
func (e IPv6ExtHeader) FragmentOffset() int { return int(binary.BigEndian.Uint16(e.Data[0:])>>3) * 8 }

// MoreFragments is a Fragment header's M flag.
func (e IPv6ExtHeader) MoreFragments() bool { return e.Data[1]&1 != 0 }

// FragmentID is a Fragment header's identification.
func (e IPv6ExtHeader) FragmentID() uint32 { return binary.BigEndian.Uint32(e.Data[2:]) }

// IPv6ExtIterator walks the extension header chain (RFC 8200 §4).
type IPv6ExtIterator struct {
	next   uint8
	b      []byte
	offset int
	done   bool
}

// ExtensionHeaders returns an iterator over h's extension headers.
func (h IPv6) ExtensionHeaders() IPv6ExtIterator {
	return IPv6ExtIterator{next: h.NextHeader(), b: h.Payload()}
}

func isIPv6ExtHeader(t uint8) bool {
	switch t {
	case IPv6ExtHopByHop, IPv6ExtRouting, IPv6ExtFragment, IPv6ExtDestination:
		return true
	}
	return false
}

// Next returns the next extension header. When ok is false the chain has
// ended: UpperLayer then reports the transport protocol and its bytes.
func (it *IPv6ExtIterator) Next() (ext IPv6ExtHeader, ok bool, err error) {
	if it.done || !isIPv6ExtHeader(it.next) {
		it.done = true
		return ext, false, nil
	}
	if len(it.b) < 8 {
		return ext, false, ErrIPv6ExtHdr
	}
	l := 8
	if it.next != IPv6ExtFragment {
		l = (int(it.b[1]) + 1) * 8
	}
	if l > len(it.b) {
		return ext, false, ErrIPv6ExtHdr
	}
	ext = IPv6ExtHeader{Type: it.next, NextHeader: it.b[0], Data: it.b[2:l]}
	it.next = it.b[0]
	it.b = it.b[l:]
	it.offset += l
	return ext, true, nil
}

// UpperLayer is the protocol and bytes after the last extension header
// seen, and the offset of those bytes within the IPv6 payload.
func (it *IPv6ExtIterator) UpperLayer() (proto uint8, payload []byte, offset int) {
	return it.next, it.b, it.offset
}
