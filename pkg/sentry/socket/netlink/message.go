package netlink

import (
	"encoding/binary"
)

// Netlink wire sizes and message types (netlink(7), linux/netlink.h).
const (
	headerSize = 16 // struct nlmsghdr
	attrHeader = 4  // struct rtattr / nlattr
	alignTo    = 4

	msgNoop  = 0x1
	msgError = 0x2
	msgDone  = 0x3
	// msgMinType is NLMSG_MIN_TYPE: types below it are control messages.
	msgMinType = 0x10

	flagRequest = 0x1
	flagMulti   = 0x2
	flagAck     = 0x4
	flagRoot    = 0x100
	flagMatch   = 0x200
	flagDump    = flagRoot | flagMatch
)

// align rounds n up to NLMSG_ALIGNTO / RTA_ALIGNTO.
func align(n int) int { return (n + alignTo - 1) &^ (alignTo - 1) }

// Header is struct nlmsghdr.
type Header struct {
	Len   uint32
	Type  uint16
	Flags uint16
	Seq   uint32
	PID   uint32
}

// Message is one parsed netlink message: its header and the payload that
// nlmsg_len covers.
type Message struct {
	Header
	Payload []byte
}

// ParseMessages splits a buffer sent to a netlink socket into messages
// the way the kernel walks it (netlink_rcv_skb): it stops at the first
// header that is short, claims fewer bytes than a header, or runs past
// the buffer. Payloads alias b.
func ParseMessages(b []byte) []Message {
	var out []Message
	for len(b) >= headerSize {
		h := Header{
			Len:   binary.LittleEndian.Uint32(b),
			Type:  binary.LittleEndian.Uint16(b[4:]),
			Flags: binary.LittleEndian.Uint16(b[6:]),
			Seq:   binary.LittleEndian.Uint32(b[8:]),
			PID:   binary.LittleEndian.Uint32(b[12:]),
		}
		if h.Len < headerSize || uint64(h.Len) > uint64(len(b)) {
			break
		}
		out = append(out, Message{Header: h, Payload: b[headerSize:h.Len]})
		next := align(int(h.Len))
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return out
}

// Attr is one route attribute (struct rtattr) and its value.
type Attr struct {
	Type  uint16
	Value []byte
}

// ParseAttrs splits a run of attributes; ok is false if one is malformed
// (shorter than its header or longer than what is left).
func ParseAttrs(b []byte) (attrs []Attr, ok bool) {
	for len(b) >= attrHeader {
		l := int(binary.LittleEndian.Uint16(b))
		if l < attrHeader || l > len(b) {
			return attrs, false
		}
		attrs = append(attrs, Attr{Type: binary.LittleEndian.Uint16(b[2:]) &^ 0xc000, Value: b[attrHeader:l]})
		next := align(l)
		if next >= len(b) {
			return attrs, true
		}
		b = b[next:]
	}
	return attrs, len(b) == 0
}

// The message writers (builder here, the sock_diag dump writer) share
// these appenders, so the wire layout is spelled out once.

// appendHeader appends a struct nlmsghdr; nlmsg_len stays zero until the
// writer knows the message's whole length.
func appendHeader(b []byte, typ, flags uint16, seq, pid uint32) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint16(h[4:], typ)
	binary.LittleEndian.PutUint16(h[6:], flags)
	binary.LittleEndian.PutUint32(h[8:], seq)
	binary.LittleEndian.PutUint32(h[12:], pid)
	return append(b, h[:]...)
}

// appendPadded appends p and pads b to the netlink alignment.
func appendPadded(b, p []byte) []byte {
	b = append(b, p...)
	for len(b)%alignTo != 0 {
		b = append(b, 0)
	}
	return b
}

// appendAttr appends one attribute (struct rtattr / nlattr) and its value.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	var h [attrHeader]byte
	binary.LittleEndian.PutUint16(h[:], uint16(attrHeader+len(v)))
	binary.LittleEndian.PutUint16(h[2:], typ)
	return appendPadded(append(b, h[:]...), v)
}

// builder assembles one message: header, fixed payload, attributes.
type builder struct {
	b []byte
}

func newMessage(typ, flags uint16, seq, pid uint32, fixed []byte) *builder {
	m := &builder{b: appendHeader(make([]byte, 0, headerSize+len(fixed)+128), typ, flags, seq, pid)}
	m.put(fixed)
	return m
}

// put appends raw bytes, padded to the alignment.
func (m *builder) put(p []byte) { m.b = appendPadded(m.b, p) }

// attr appends one attribute.
func (m *builder) attr(typ uint16, v []byte) { m.b = appendAttr(m.b, typ, v) }

func (m *builder) attrU32(typ uint16, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	m.attr(typ, b[:])
}

func (m *builder) attrU8(typ uint16, v uint8) { m.attr(typ, []byte{v}) }

// attrString appends a NUL-terminated string attribute.
func (m *builder) attrString(typ uint16, s string) { m.attr(typ, append([]byte(s), 0)) }

// done fills in nlmsg_len and returns the message.
func (m *builder) done() []byte {
	binary.LittleEndian.PutUint32(m.b, uint32(len(m.b)))
	return m.b
}

// errorMessage is NLMSG_ERROR: errno (0 for an acknowledgement) and the
// request's header, followed by its payload when reporting an error.
func errorMessage(req Message, pid uint32, errno int32) []byte {
	fixed := make([]byte, 4+headerSize)
	binary.LittleEndian.PutUint32(fixed, uint32(-errno))
	binary.LittleEndian.PutUint32(fixed[4:], req.Len)
	binary.LittleEndian.PutUint16(fixed[8:], req.Type)
	binary.LittleEndian.PutUint16(fixed[10:], req.Flags)
	binary.LittleEndian.PutUint32(fixed[12:], req.Seq)
	binary.LittleEndian.PutUint32(fixed[16:], req.PID)
	if errno != 0 {
		fixed = append(fixed, req.Payload...)
	}
	return newMessage(msgError, 0, req.Seq, pid, fixed).done()
}

// doneMessage ends a dump (NLMSG_DONE carries an int, 0).
func doneMessage(seq, pid uint32) []byte {
	return newMessage(msgDone, flagMulti, seq, pid, make([]byte, 4)).done()
}
