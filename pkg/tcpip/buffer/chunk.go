package buffer

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Sizes of the chunks NewChunk recycles: powers of two in this range.
const (
	minPooledShift = 16
	maxPooledShift = 20
	MinPooledChunk = 1 << minPooledShift
	MaxPooledChunk = 1 << maxPooledShift
)

var chunkPools [maxPooledShift - minPooledShift + 1]sync.Pool

// Chunk is a byte buffer shared by reference counting and recycled once
// the last reference is dropped. TCP's send queue keeps its data in
// chunks, and the loopback link passes views of them to the receiving
// endpoint instead of copying; without recycling, a bulk transfer
// allocated and zeroed a fresh chunk for every few segments, and paid
// for collecting them too.
//
// A recycled chunk's bytes are stale, not zeroed: its user must never
// expose bytes it did not write.
type Chunk struct {
	refs atomic.Int32
	buf  []byte
	pool *sync.Pool
}

// NewChunk returns a chunk of size bytes holding one reference. Chunks
// of a pooled size come from the pool when one is free.
func NewChunk(size int) *Chunk {
	p := poolFor(size)
	if p != nil {
		if c, ok := p.Get().(*Chunk); ok {
			c.refs.Store(1)
			return c
		}
	}
	c := &Chunk{buf: make([]byte, size), pool: p}
	c.refs.Store(1)
	return c
}

// ChunkPooled reports whether chunks of size bytes are recycled; other
// sizes gain nothing from being a Chunk rather than a plain slice.
func ChunkPooled(size int) bool { return poolFor(size) != nil }

func poolFor(size int) *sync.Pool {
	if size < MinPooledChunk || size > MaxPooledChunk || size&(size-1) != 0 {
		return nil
	}
	return &chunkPools[bits.Len(uint(size))-1-minPooledShift]
}

// Bytes is the whole buffer.
func (c *Chunk) Bytes() []byte { return c.buf }

// IncRef takes a reference; a nil chunk is ignored.
func (c *Chunk) IncRef() {
	if c != nil {
		c.refs.Add(1)
	}
}

// DecRef drops a reference, recycling the chunk with the last one; a nil
// chunk is ignored.
func (c *Chunk) DecRef() {
	if c == nil {
		return
	}
	switch n := c.refs.Add(-1); {
	case n == 0:
		if c.pool != nil {
			c.pool.Put(c)
		}
	case n < 0:
		panic("buffer: Chunk reference count dropped below zero")
	}
}
