package header

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
)

// TCP constants (RFC 9293, RFC 7323, RFC 2018).
const (
	TCPMinimumSize                                  = 20
	TCPMaximumSize                                  = 60
	TCPProtocolNumber tcpip.TransportProtocolNumber = 6

	TCPFlagFin uint8 = 1 << 0
	TCPFlagSyn uint8 = 1 << 1
	TCPFlagRst uint8 = 1 << 2
	TCPFlagPsh uint8 = 1 << 3
	TCPFlagAck uint8 = 1 << 4
	TCPFlagUrg uint8 = 1 << 5
	TCPFlagEce uint8 = 1 << 6
	TCPFlagCwr uint8 = 1 << 7

	TCPOptionEOL           = 0
	TCPOptionNOP           = 1
	TCPOptionMSS           = 2
	TCPOptionWS            = 3
	TCPOptionSACKPermitted = 4
	TCPOptionSACK          = 5
	TCPOptionTS            = 8

	// TCPMaxSACKBlocks is how many SACK blocks fit alongside timestamps.
	TCPMaxSACKBlocks = 4
	// TCPMaxWindowScale is the largest shift RFC 7323 allows.
	TCPMaxWindowScale = 14
)

// TCP is a TCP header followed by payload.
type TCP []byte

// SACKBlock is a received range [Start, End) of sequence space.
type SACKBlock struct{ Start, End uint32 }

// TCPOptions are the options the stack understands. Present flags say
// which were seen.
type TCPOptions struct {
	MSS           uint16
	HasMSS        bool
	WindowScale   uint8
	HasWS         bool
	SACKPermitted bool
	HasTS         bool
	TSVal, TSEcr  uint32
	SACKBlocks    [TCPMaxSACKBlocks]SACKBlock
	NumSACKBlocks int
}

// TCPFields is what EncodeTCP writes.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	Urgent           uint16
	Options          []byte // already encoded, a multiple of 4 bytes
}

// ParseTCP validates the data offset against b.
func ParseTCP(b []byte) (TCP, bool) {
	if len(b) < TCPMinimumSize {
		return nil, false
	}
	off := int(b[12]>>4) * 4
	if off < TCPMinimumSize || off > len(b) {
		return nil, false
	}
	return TCP(b), true
}

// SourcePort is the source port.
func (t TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(t[0:]) }

// DestinationPort is the destination port.
func (t TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(t[2:]) }

// Seq is the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[4:]) }

// Ack is the acknowledgment number.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[8:]) }

// DataOffset is the header length in bytes.
func (t TCP) DataOffset() int { return int(t[12]>>4) * 4 }

// Flags are the control bits.
func (t TCP) Flags() uint8 { return t[13] }

// Window is the raw (unscaled) window.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:]) }

// Checksum is the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:]) }

// OptionBytes is the raw options area.
func (t TCP) OptionBytes() []byte { return t[TCPMinimumSize:t.DataOffset()] }

// Payload is the data after the header.
func (t TCP) Payload() []byte { return t[t.DataOffset():] }

// IsChecksumValid verifies the checksum over the pseudo-header.
func (t TCP) IsChecksumValid(src, dst tcpip.Address) bool {
	return Checksum(t, PseudoHeaderChecksum(TCPProtocolNumber, src, dst, uint16(len(t)))) == 0xffff
}

// ParseTCPOptions decodes b. It returns false if the framing is malformed;
// unknown options are skipped and options of the wrong length ignored.
func ParseTCPOptions(b []byte) (TCPOptions, bool) {
	var o TCPOptions
	for len(b) > 0 {
		switch b[0] {
		case TCPOptionEOL:
			return o, true
		case TCPOptionNOP:
			b = b[1:]
			continue
		}
		if len(b) < 2 {
			return o, false
		}
		l := int(b[1])
		if l < 2 || l > len(b) {
			return o, false
		}
		d := b[2:l]
		switch b[0] {
		case TCPOptionMSS:
			if len(d) == 2 {
				o.MSS, o.HasMSS = binary.BigEndian.Uint16(d), true
			}
		case TCPOptionWS:
			if len(d) == 1 {
				o.WindowScale, o.HasWS = min(d[0], TCPMaxWindowScale), true
			}
		case TCPOptionSACKPermitted:
			if len(d) == 0 {
				o.SACKPermitted = true
			}
		case TCPOptionTS:
			if len(d) == 8 {
				o.HasTS = true
				o.TSVal = binary.BigEndian.Uint32(d)
				o.TSEcr = binary.BigEndian.Uint32(d[4:])
			}
		case TCPOptionSACK:
			if len(d)%8 == 0 {
				for i := 0; i+8 <= len(d) && o.NumSACKBlocks < TCPMaxSACKBlocks; i += 8 {
					o.SACKBlocks[o.NumSACKBlocks] = SACKBlock{binary.BigEndian.Uint32(d[i:]), binary.BigEndian.Uint32(d[i+4:])}
					o.NumSACKBlocks++
				}
			}
		}
		b = b[l:]
	}
	return o, true
}

// EncodeTCPOptions writes o into b (at least 40 bytes), padded with NOPs to
// a multiple of 4, and returns the length used. SYN-only options (MSS, WS,
// SACK-permitted) are written only if set. SACK blocks are truncated to
// what fits in 40 bytes.
func EncodeTCPOptions(b []byte, o *TCPOptions) int {
	n := 0
	if o.HasMSS {
		b[n], b[n+1] = TCPOptionMSS, 4
		binary.BigEndian.PutUint16(b[n+2:], o.MSS)
		n += 4
	}
	if o.HasWS {
		b[n], b[n+1], b[n+2], b[n+3] = TCPOptionNOP, TCPOptionWS, 3, o.WindowScale
		n += 4
	}
	if o.SACKPermitted {
		b[n], b[n+1], b[n+2], b[n+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionSACKPermitted, 2
		n += 4
	}
	if o.HasTS {
		b[n], b[n+1], b[n+2], b[n+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionTS, 10
		binary.BigEndian.PutUint32(b[n+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[n+8:], o.TSEcr)
		n += 12
	}
	if blocks := o.NumSACKBlocks; blocks > 0 {
		if room := (40 - n - 4) / 8; blocks > room {
			blocks = room
		}
		if blocks > 0 {
			b[n], b[n+1], b[n+2], b[n+3] = TCPOptionNOP, TCPOptionNOP, TCPOptionSACK, byte(2+8*blocks)
			n += 4
			for i := 0; i < blocks; i++ {
				binary.BigEndian.PutUint32(b[n:], o.SACKBlocks[i].Start)
				binary.BigEndian.PutUint32(b[n+4:], o.SACKBlocks[i].End)
				n += 8
			}
		}
	}
	for n%4 != 0 {
		b[n] = TCPOptionNOP
		n++
	}
	return n
}

// EncodeTCP writes the header into t (whose payload is already in place
// after 20+len(f.Options) bytes) and the checksum over the pseudo-header.
func EncodeTCP(t []byte, f *TCPFields, src, dst tcpip.Address) {
	hl := TCPMinimumSize + len(f.Options)
	binary.BigEndian.PutUint16(t[0:], f.SrcPort)
	binary.BigEndian.PutUint16(t[2:], f.DstPort)
	binary.BigEndian.PutUint32(t[4:], f.Seq)
	binary.BigEndian.PutUint32(t[8:], f.Ack)
	t[12] = byte(hl/4) << 4
	t[13] = f.Flags
	binary.BigEndian.PutUint16(t[14:], f.Window)
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[18:], f.Urgent)
	copy(t[TCPMinimumSize:hl], f.Options)
	binary.BigEndian.PutUint16(t[16:], ^Checksum(t, PseudoHeaderChecksum(TCPProtocolNumber, src, dst, uint16(len(t)))))
}

// EncodeTCPHeader writes the header (20+len(f.Options) bytes) into h for a
// payload held elsewhere, given its length and folded checksum.
func EncodeTCPHeader(h []byte, f *TCPFields, payloadLen int, payloadSum uint16, src, dst tcpip.Address) {
	hl := TCPMinimumSize + len(f.Options)
	binary.BigEndian.PutUint16(h[0:], f.SrcPort)
	binary.BigEndian.PutUint16(h[2:], f.DstPort)
	binary.BigEndian.PutUint32(h[4:], f.Seq)
	binary.BigEndian.PutUint32(h[8:], f.Ack)
	h[12] = byte(hl/4) << 4
	h[13] = f.Flags
	binary.BigEndian.PutUint16(h[14:], f.Window)
	h[16], h[17] = 0, 0
	binary.BigEndian.PutUint16(h[18:], f.Urgent)
	copy(h[TCPMinimumSize:hl], f.Options)
	s := ChecksumCombine(PseudoHeaderChecksum(TCPProtocolNumber, src, dst, uint16(hl+payloadLen)), payloadSum)
	binary.BigEndian.PutUint16(h[16:], ^Checksum(h[:hl], s))
}
