package tcp

import (
	"io"

	"carapace.dev/carapace/pkg/tcpip/buffer"
)

// Bounds of the send queue's chunk size, which the endpoint picks as
// sndChunkMSSs segments: large next to the MSS, so that cutting segments
// at chunk boundaries (to keep them views) rarely shortens one, and
// bounded so an idle stream holds little memory.
const (
	sndChunkSize    = 64 << 10
	sndChunkMaxSize = 1 << 20
	sndChunkMSSs    = 8
)

// sndChunkFor is the chunk size for a connection with this MSS: a power
// of two, so that buffer.NewChunk recycles it.
func sndChunkFor(mss int) int {
	c := sndChunkSize
	for c < sndChunkMSSs*mss && c < sndChunkMaxSize {
		c *= 2
	}
	return c
}

// sndQueue holds the bytes from SND.UNA onward. Writes copy once into the
// free tail of the last chunk or into new chunks; queued bytes are never
// moved or rewritten, so a segment's payload is a view of the queue. The
// view stays valid after the bytes are acknowledged and trimmed for as
// long as its holder keeps a reference to its chunk (ViewRef): a trimmed
// chunk nobody references is recycled for later writes. (Growing one
// contiguous slice instead copied the whole queue each time it filled.)
type sndQueue struct {
	// chunks[0][head:] onward is the queued data; each chunk's len is
	// how much of it is filled, its cap the chunk size.
	chunks [][]byte
	// refs[i] is the buffer.Chunk chunks[i] lives in, or nil for a plain
	// slice (a small chunk, which is not recycled); the queue holds one
	// reference to each until it trims the chunk. A segment handed to a
	// link that keeps its payload (loopback) takes its own reference.
	refs []*buffer.Chunk
	head int
	size int
}

// Len is the number of queued bytes.
func (q *sndQueue) Len() int { return q.size }

// Fill appends up to max bytes read from src into chunks of chunkSize
// bytes, returning the count and the first error other than io.EOF.
// sizeHint, if well under a chunk, sizes the first chunk of an empty
// queue.
func (q *sndQueue) Fill(src io.Reader, max, sizeHint, chunkSize int) (int, error) {
	n := 0
	for n < max {
		var tail []byte
		if k := len(q.chunks); k > 0 && len(q.chunks[k-1]) < cap(q.chunks[k-1]) {
			tail = q.chunks[k-1]
		} else {
			// A small write to an idle stream gets a chunk of its own
			// size: a request of a few bytes must not allocate a whole
			// chunk. Anything near a segment or larger takes a full
			// chunk, so that bulk data is not cut into odd segments.
			c := chunkSize
			if q.size == 0 && len(q.chunks) == 0 && sizeHint > 0 && sizeHint < c/sndChunkMSSs {
				c = sizeHint
			}
			var ref *buffer.Chunk
			if buffer.ChunkPooled(c) {
				ref = buffer.NewChunk(c)
				tail = ref.Bytes()[:0]
			} else {
				tail = make([]byte, 0, c)
			}
			q.chunks = append(q.chunks, tail)
			q.refs = append(q.refs, ref)
		}
		room := min(cap(tail)-len(tail), max-n)
		m, err := src.Read(tail[len(tail) : len(tail)+room])
		q.chunks[len(q.chunks)-1] = tail[:len(tail)+m]
		q.size += m
		n += m
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			q.dropEmptyTail()
			return n, err
		}
		if m == 0 {
			break
		}
	}
	q.dropEmptyTail()
	return n, nil
}

// dropEmptyTail forgets a chunk that a failed or empty read left unused.
func (q *sndQueue) dropEmptyTail() {
	if k := len(q.chunks); k > 0 && len(q.chunks[k-1]) == 0 {
		q.refs[k-1].DecRef()
		q.chunks[k-1], q.refs[k-1] = nil, nil
		q.chunks, q.refs = q.chunks[:k-1], q.refs[:k-1]
	}
}

// View returns n bytes from offset off (off+n <= Len). Within one chunk
// it is a view; across a chunk boundary a fresh copy.
func (q *sndQueue) View(off, n int) []byte {
	v, _ := q.ViewRef(off, n)
	return v
}

// ViewRef is View that also returns the chunk a view lies in (nil for a
// copy), for a holder that keeps it past the queue's lock to reference.
func (q *sndQueue) ViewRef(off, n int) ([]byte, *buffer.Chunk) {
	if n == 0 {
		return nil, nil
	}
	off += q.head
	i := 0
	for off >= len(q.chunks[i]) {
		off -= len(q.chunks[i])
		i++
	}
	if c := q.chunks[i]; off+n <= len(c) {
		return c[off : off+n : off+n], q.refs[i]
	}
	out := make([]byte, 0, n)
	for len(out) < n {
		c := q.chunks[i]
		take := min(len(c)-off, n-len(out))
		out = append(out, c[off:off+take]...)
		off = 0
		i++
	}
	return out, nil
}

// Contiguous is how many bytes from offset off lie in one chunk: the
// longest segment at off that View returns without copying.
func (q *sndQueue) Contiguous(off int) int {
	off += q.head
	for _, c := range q.chunks {
		if off < len(c) {
			return len(c) - off
		}
		off -= len(c)
	}
	return 0
}

// Trim drops the first n bytes (acknowledged data).
func (q *sndQueue) Trim(n int) {
	n = min(n, q.size)
	q.size -= n
	n += q.head
	// A consumed last chunk with room left is kept, its head at its end,
	// for the next write to fill: dropping it would make every write to
	// a quickly drained stream allocate (and zero) a fresh chunk.
	for len(q.chunks) > 0 && n >= len(q.chunks[0]) &&
		(len(q.chunks) > 1 || len(q.chunks[0]) == cap(q.chunks[0])) {
		n -= len(q.chunks[0])
		q.refs[0].DecRef()
		q.chunks[0], q.refs[0] = nil, nil
		q.chunks, q.refs = q.chunks[1:], q.refs[1:]
	}
	q.head = n
	if len(q.chunks) == 0 {
		q.chunks, q.refs, q.head = nil, nil, 0
	}
}
