package tcp

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"time"

	"carapace.dev/carapace/pkg/tcpip/stack"
)

// Initial sequence numbers and timestamp offsets.
//
// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey), where M is a timer ticking every 4 µs and F a keyed
// pseudorandom function. A new incarnation of a 4-tuple therefore starts
// above the old one's sequence space (which is what lets a new SYN retire
// TIME-WAIT), while an observer who learns one connection's ISN learns
// nothing about another 4-tuple's. RFC 7323 §7.1 asks the same of the
// timestamp clock: a per-4-tuple random offset keeps TSval from telling
// the stack's uptime or linking connections.
//
// F is SipHash-2-4 keyed with 128 bits from crypto/rand drawn when the
// protocol is created, one key per stack. The key never changes while the
// stack lives: rotating it would break the monotonicity per 4-tuple that
// TIME-WAIT reuse relies on. One 64-bit SipHash output gives both the ISN
// offset (low half) and the timestamp offset (high half).

// isnTick is RFC 6528's M period.
const isnTick = 4 * time.Microsecond

// sipKey is a 128-bit SipHash key.
type sipKey struct{ k0, k1 uint64 }

func newSipKey() sipKey {
	var b [16]byte
	// crypto/rand.Read never fails (it aborts the program instead).
	rand.Read(b[:])
	return sipKey{binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])}
}

// sipRound is one SipRound on the state words (kept in registers: a
// value function the compiler inlines).
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
// short-input PRF", 2012) of msg under k. Callers pass a slice of a local
// array; nothing escapes, so a call allocates nothing.
func sipHash24(k sipKey, msg []byte) uint64 {
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573
	n := len(msg)
	// The final word holds the bytes after the last full word and, in
	// its top byte, the message length mod 256.
	last := uint64(n) << 56
	for {
		var m uint64
		if len(msg) >= 8 {
			m = binary.LittleEndian.Uint64(msg)
			msg = msg[8:]
		} else {
			for i, c := range msg {
				last |= uint64(c) << (8 * i)
			}
			m, msg = last, nil
		}
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
		if msg == nil {
			break
		}
	}
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// tupleBytes is the fixed-length encoding of a 4-tuple that the keyed
// functions hash: both addresses in their 16-byte form (zero padded), then
// both ports.
const tupleBytes = 16 + 16 + 2 + 2

func putTuple(b []byte, id stack.TransportEndpointID) {
	la, ra := id.LocalAddress.As16(), id.RemoteAddress.As16()
	copy(b[0:16], la[:])
	copy(b[16:32], ra[:])
	binary.BigEndian.PutUint16(b[32:], id.LocalPort)
	binary.BigEndian.PutUint16(b[34:], id.RemotePort)
}

// connOffsets returns F(4-tuple) for the ISN and the timestamp offset of
// connection id.
func (p *protocol) connOffsets(id stack.TransportEndpointID) (isnOffset, tsOffset uint32) {
	var b [tupleBytes]byte
	putTuple(b[:], id)
	h := sipHash24(p.isnKey, b[:])
	return uint32(h), uint32(h >> 32)
}

// initialSeq is RFC 6528's ISN for id at time now (the stack clock).
func (p *protocol) initialSeq(id stack.TransportEndpointID, now time.Duration) (iss, tsOffset uint32) {
	off, ts := p.connOffsets(id)
	return off + uint32(now/isnTick), ts
}
