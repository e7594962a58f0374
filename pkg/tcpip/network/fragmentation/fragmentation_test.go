package fragmentation

import (
	"bytes"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
)

func newR(clock tcpip.Clock) *Reassembler {
	return New(clock, 30*time.Second, 1<<20, 65515, nil)
}

var key = Key{Src: tcpip.ParseAddress("1.1.1.1"), Dst: tcpip.ParseAddress("2.2.2.2"), ID: 7, Proto: 17}

func TestOutOfOrderAndDuplicates(t *testing.T) {
	r := newR(tcpip.NewManualClock())
	data := bytes.Repeat([]byte("abcdefgh"), 6)
	steps := []struct {
		off  int
		more bool
	}{{32, false}, {8, true}, {8, true}, {0, true}, {16, true}}
	for _, s := range steps {
		end := len(data)
		if s.more {
			end = s.off + 8
			if s.off == 16 {
				end = 32
			}
		}
		out, done, err := r.Process(key, s.off, s.more, data[s.off:end])
		if err != nil {
			t.Fatalf("off %d: %v", s.off, err)
		}
		if done {
			if !bytes.Equal(out, data) || s.off != 16 {
				t.Fatalf("completed at off %d with %q", s.off, out)
			}
		}
	}
	if r.InProgress() != 0 || r.MemoryUsed() != 0 {
		t.Fatalf("leftover state: %d datagrams %d bytes", r.InProgress(), r.MemoryUsed())
	}
}

func TestOverlapDropsDatagram(t *testing.T) {
	r := newR(tcpip.NewManualClock())
	r.Process(key, 0, true, make([]byte, 16))
	if _, _, err := r.Process(key, 8, true, bytes.Repeat([]byte{1}, 16)); err != ErrOverlap {
		t.Fatalf("overlap: %v", err)
	}
	if r.InProgress() != 0 {
		t.Fatal("overlapping datagram kept")
	}
	// The rest arriving later must not complete anything.
	if _, done, _ := r.Process(key, 16, false, make([]byte, 8)); done {
		t.Fatal("completed after overlap")
	}
}

func TestMaliciousLengths(t *testing.T) {
	r := newR(tcpip.NewManualClock())
	if _, _, err := r.Process(key, 65512, false, make([]byte, 16)); err != ErrTooBig {
		t.Fatalf("past 64k: %v", err)
	}
	if _, _, err := r.Process(key, 0, true, make([]byte, 7)); err != ErrBadLength {
		t.Fatalf("unaligned middle fragment: %v", err)
	}
	r.Process(key, 0, true, make([]byte, 16))
	if _, _, err := r.Process(key, 8, false, nil); err != ErrBadLength {
		t.Fatalf("last fragment before data end: %v", err)
	}
	r.Process(key, 24, false, make([]byte, 8))
	if _, _, err := r.Process(key, 32, true, make([]byte, 8)); err != ErrBadLength {
		t.Fatalf("fragment past last: %v", err)
	}
	k2 := key
	k2.ID = 8
	for i := 0; i < MaxFragments; i++ {
		r.Process(k2, i*16, true, make([]byte, 8))
	}
	if _, _, err := r.Process(k2, MaxFragments*16, true, make([]byte, 8)); err != ErrTooMany {
		t.Fatalf("too many fragments: %v", err)
	}
}

func TestTimeoutAndMemoryLimit(t *testing.T) {
	clock := tcpip.NewManualClock()
	expired := 0
	r := New(clock, 30*time.Second, 4096, 65515, func() { expired++ })
	r.Process(key, 0, true, make([]byte, 1024))
	clock.Advance(29 * time.Second)
	if r.InProgress() != 1 {
		t.Fatal("expired early")
	}
	clock.Advance(time.Second)
	if r.InProgress() != 0 || expired != 1 || r.MemoryUsed() != 0 {
		t.Fatalf("after timeout: %d in progress, %d expired, %d bytes", r.InProgress(), expired, r.MemoryUsed())
	}
	for i := 0; i < 6; i++ {
		k := key
		k.ID = uint32(100 + i)
		r.Process(k, 0, true, make([]byte, 1024))
	}
	if r.MemoryUsed() > 4096 || r.InProgress() != 4 {
		t.Fatalf("memory %d with %d datagrams, limit 4096", r.MemoryUsed(), r.InProgress())
	}
}

func FuzzReassembly(f *testing.F) {
	f.Add([]byte{0, 1, 8, 1, 1, 0, 2, 0, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := newR(tcpip.NewManualClock())
		for len(ops) >= 3 {
			off := int(ops[0]) * 8
			more := ops[1]&1 == 1
			n := int(ops[2])
			ops = ops[3:]
			out, done, err := r.Process(key, off, more, make([]byte, n))
			if done && (err != nil || len(out) != off+n) {
				t.Fatalf("completed with %d bytes, last fragment ends at %d", len(out), off+n)
			}
		}
		if r.MemoryUsed() < 0 {
			t.Fatal("negative memory")
		}
	})
}
