package tcp

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	"carapace.dev/carapace/pkg/tcpip/buffer"
)

// A model check: the queue behaves as one contiguous byte slice under
// random appends, views and trims, and views whose chunk the holder
// referenced stay intact afterwards, even as trimmed chunks are recycled
// for later appends.
func TestSndQueueMatchesContiguousModel(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var q sndQueue
	var model []byte
	type held struct {
		view []byte
		want []byte
		ref  *buffer.Chunk
	}
	var views []held
	next := byte(0)
	for step := 0; step < 5000; step++ {
		switch rng.Intn(3) {
		case 0:
			n := rng.Intn(3 * sndChunkSize / 2)
			data := make([]byte, n)
			for i := range data {
				data[i] = next
				next++
			}
			max := rng.Intn(n + 1)
			got, err := q.Fill(bytes.NewReader(data), max, n, sndChunkSize)
			if err != nil || got != max {
				t.Fatalf("Fill(%d of %d) = %d, %v", max, n, got, err)
			}
			model = append(model, data[:max]...)
		case 1:
			if len(model) == 0 {
				continue
			}
			off := rng.Intn(len(model))
			n := rng.Intn(min(len(model)-off, 3000) + 1)
			if c := q.Contiguous(off); c <= 0 || off+c > len(model) {
				t.Fatalf("Contiguous(%d) = %d with %d queued", off, c, len(model))
			} else if c >= n && n > 0 {
				if v := q.View(off, n); cap(v) != n {
					t.Fatalf("View within a chunk copied")
				}
			}
			v, ref := q.ViewRef(off, n)
			if !bytes.Equal(v, model[off:off+n]) {
				t.Fatalf("View(%d, %d) differs from the model", off, n)
			}
			ref.IncRef()
			views = append(views, held{v, append([]byte(nil), v...), ref})
		case 2:
			n := rng.Intn(len(model) + 1)
			q.Trim(n)
			model = model[n:]
		}
		if q.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", step, q.Len(), len(model))
		}
	}
	for i, h := range views {
		if !bytes.Equal(h.view, h.want) {
			t.Fatalf("view %d was overwritten after it was taken", i)
		}
		h.ref.DecRef()
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("fault")
	}
	m := min(r.n, len(p))
	r.n -= m
	return m, nil
}

func TestSndQueueShortAndFailingReads(t *testing.T) {
	var q sndQueue
	n, err := q.Fill(&failingReader{n: 0}, 100, 100, sndChunkSize)
	if n != 0 || err == nil || q.Len() != 0 || len(q.chunks) != 0 {
		t.Fatalf("failing first read: n %d err %v len %d chunks %d", n, err, q.Len(), len(q.chunks))
	}
	n, err = q.Fill(&failingReader{n: 10}, 100, 100, sndChunkSize)
	if n != 10 || err == nil || q.Len() != 10 {
		t.Fatalf("short then failing read: n %d err %v len %d", n, err, q.Len())
	}
	n, err = q.Fill(bytes.NewReader(make([]byte, 5)), 100, 5, sndChunkSize)
	if n != 5 || err != nil || q.Len() != 15 {
		t.Fatalf("EOF read: n %d err %v len %d", n, err, q.Len())
	}
	q.Trim(15)
	if q.Len() != 0 || len(q.chunks) != 1 {
		t.Fatalf("drained queue keeps %d chunks, want its partly filled one", len(q.chunks))
	}
	// The kept chunk takes the next write without a new allocation.
	before := &q.chunks[0][:1][0]
	if n, _ := q.Fill(bytes.NewReader([]byte("abc")), 3, 3, sndChunkSize); n != 3 || string(q.View(0, 3)) != "abc" {
		t.Fatalf("fill after drain: %d, %q", n, q.View(0, 3))
	}
	if len(q.chunks) != 1 || &q.chunks[0][:1][0] != before {
		t.Errorf("write after drain allocated a new chunk")
	}
	var _ io.Reader = (*failingReader)(nil)
}
