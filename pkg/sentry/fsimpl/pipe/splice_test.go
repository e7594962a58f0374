package pipe

import (
	"context"
	"testing"

	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

func seqOf(b []byte) usermem.IOSequence {
	s, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	return s
}

func TestSpliceTeePeekConsume(t *testing.T) {
	ctx := context.Background()
	a, b := NewPipe(), NewPipe()
	a.addEnds(true, true)
	b.addEnds(true, true)
	if n, err := a.WriteBytes([]byte("hello world")); n != 11 || err != nil {
		t.Fatalf("WriteBytes = %d, %v", n, err)
	}
	if n, err := Tee(a, b, 5); n != 5 || err != nil {
		t.Fatalf("Tee = %d, %v", n, err)
	}
	if a.Queued() != 11 || b.Queued() != 5 {
		t.Fatalf("after tee: a holds %d, b %d", a.Queued(), b.Queued())
	}
	if n, err := Splice(a, b, 100); n != 11 || err != nil {
		t.Fatalf("Splice = %d, %v", n, err)
	}
	buf := make([]byte, 32)
	n, _ := b.Peek(ctx, seqOf(buf))
	if string(buf[:n]) != "hellohello world" {
		t.Fatalf("b holds %q", buf[:n])
	}
	b.Consume(5)
	n, _ = b.read(ctx, seqOf(buf))
	if string(buf[:n]) != "hello world" {
		t.Fatalf("after Consume(5) b reads %q", buf[:n])
	}
	if _, err := Splice(a, a, 1); err != unix.EINVAL {
		t.Errorf("splice of a pipe onto itself: %v", err)
	}
	if _, err := Splice(a, b, 1); err != unix.EAGAIN {
		t.Errorf("splice from an empty pipe with writers: %v", err)
	}
	// Room limits a transfer; a full pipe says EAGAIN.
	if _, err := b.SetSize(MinPipeSize); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2*MinPipeSize)
	a.SetSize(int64(len(big)))
	a.WriteBytes(big)
	if n, err := Splice(a, b, int64(len(big))); n != MinPipeSize || err != nil {
		t.Errorf("splice into a %d-byte pipe = %d, %v", MinPipeSize, n, err)
	}
	if _, err := Tee(a, b, 1); err != unix.EAGAIN {
		t.Errorf("tee into a full pipe: %v", err)
	}
	// No reader: EPIPE; no writer and empty: EOF.
	b.dropEnds(true, false)
	if _, err := Splice(a, b, 1); err != unix.EPIPE {
		t.Errorf("splice into a pipe without readers: %v", err)
	}
	c := NewPipe()
	c.addEnds(true, false)
	if n, err := Splice(c, a, 1); n != 0 || err != nil {
		t.Errorf("splice from a writerless empty pipe = %d, %v", n, err)
	}
}
