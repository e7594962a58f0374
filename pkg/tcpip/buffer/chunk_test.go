package buffer

import "testing"

func TestChunkRecycledOnlyAfterLastReference(t *testing.T) {
	c := NewChunk(MinPooledChunk)
	if len(c.Bytes()) != MinPooledChunk {
		t.Fatalf("chunk of %d bytes, want %d", len(c.Bytes()), MinPooledChunk)
	}
	c.IncRef()
	c.DecRef()
	if c.refs.Load() != 1 {
		t.Fatalf("after IncRef and DecRef refs = %d, want 1", c.refs.Load())
	}
	// A chunk still referenced is never handed out again.
	for i := 0; i < 100; i++ {
		if d := NewChunk(MinPooledChunk); d == c {
			t.Fatal("NewChunk returned a chunk still in use")
		}
	}
	c.DecRef()
	if c.refs.Load() != 0 {
		t.Fatalf("released chunk has refs %d", c.refs.Load())
	}
}

func TestChunkPooledSizes(t *testing.T) {
	for size, want := range map[int]bool{
		MinPooledChunk: true, 2 * MinPooledChunk: true, MaxPooledChunk: true,
		MinPooledChunk / 2: false, MinPooledChunk + 1: false, 2 * MaxPooledChunk: false, 3 * MinPooledChunk: false,
	} {
		if got := ChunkPooled(size); got != want {
			t.Errorf("ChunkPooled(%d) = %v, want %v", size, got, want)
		}
		if c := NewChunk(size); len(c.Bytes()) != size || (c.pool != nil) != want {
			t.Errorf("NewChunk(%d): %d bytes, pooled %v", size, len(c.Bytes()), c.pool != nil)
		}
	}
}

func TestChunkNilIsIgnored(t *testing.T) {
	var c *Chunk
	c.IncRef()
	c.DecRef()
}

func TestChunkDecRefBelowZeroPanics(t *testing.T) {
	c := NewChunk(100)
	c.DecRef()
	defer func() {
		if recover() == nil {
			t.Fatal("DecRef of a released chunk did not panic")
		}
	}()
	c.DecRef()
}
