package header

import (
	"math/rand/v2"
	"testing"
)

// referenceChecksum is RFC 1071's definition taken literally: big-endian
// 16-bit words, an odd last byte padded with zero, carries folded back.
func referenceChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestChecksumMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 4096+64)
	for trial := 0; trial < 3000; trial++ {
		// Random bytes, or all ones (which stresses carries), at every
		// length and alignment around the 8- and 32-byte strides.
		fill := byte(0)
		if trial%3 == 0 {
			fill = 0xff
		}
		for i := range buf {
			if fill != 0 {
				buf[i] = fill
			} else {
				buf[i] = byte(r.Uint32())
			}
		}
		off := r.IntN(64)
		n := r.IntN(300)
		if trial%10 == 0 {
			n = r.IntN(4096)
		}
		b := buf[off : off+n]
		initial := uint16(r.Uint32())
		if trial%7 == 0 {
			initial = 0xffff
		}
		if got, want := Checksum(b, initial), referenceChecksum(b, initial); got != want {
			t.Fatalf("Checksum(len %d at %d, %#x) = %#x, want %#x", n, off, initial, got, want)
		}
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff}, uint16(0xffff))
	f.Add(make([]byte, 77), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		if got, want := Checksum(b, initial), referenceChecksum(b, initial); got != want {
			t.Fatalf("Checksum(%x, %#x) = %#x, want %#x", b, initial, got, want)
		}
	})
}

func BenchmarkChecksum64K(b *testing.B) {
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		Checksum(buf, 0)
	}
}

func BenchmarkReferenceChecksum64K(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		referenceChecksum(buf, 0)
	}
}
