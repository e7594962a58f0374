package usermem

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

func TestSequenceScatterGather(t *testing.T) {
	mem := &BytesIO{Bytes: make([]byte, 32)}
	seq := RangesSequence(mem, []hostarch.AddrRange{{Start: 2, End: 5}, {Start: 10, End: 10}, {Start: 20, End: 24}}, IOOpts{})
	if seq.NumBytes() != 7 {
		t.Fatalf("NumBytes = %d, want 7", seq.NumBytes())
	}
	n, err := seq.CopyOut(context.Background(), []byte("abcdefgXYZ"))
	if n != 7 || err != nil {
		t.Fatalf("CopyOut = %d, %v", n, err)
	}
	if got := string(mem.Bytes[2:5]) + string(mem.Bytes[20:24]); got != "abcdefg" {
		t.Fatalf("memory = %q", got)
	}
	rest := seq.DropFirst(4)
	if rest.NumBytes() != 3 {
		t.Fatalf("after DropFirst(4) NumBytes = %d", rest.NumBytes())
	}
	buf := make([]byte, 3)
	if n, err := rest.CopyIn(context.Background(), buf); n != 3 || err != nil || string(buf) != "efg" {
		t.Fatalf("CopyIn = %d, %v, %q", n, err, buf)
	}
	if got := seq.TakeFirst(5).NumBytes(); got != 5 {
		t.Fatalf("TakeFirst(5).NumBytes = %d", got)
	}
	if seq.NumBytes() != 7 {
		t.Fatal("TakeFirst modified its receiver")
	}
}

func TestShortCopyFaults(t *testing.T) {
	mem := &BytesIO{Bytes: make([]byte, 8)}
	seq, err := BytesSequence(mem, 4, 10, IOOpts{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := seq.CopyOut(context.Background(), bytes.Repeat([]byte{1}, 10))
	if n != 4 || !errors.Is(err, unix.EFAULT) {
		t.Fatalf("CopyOut past end = %d, %v; want 4, EFAULT", n, err)
	}
	if _, err := BytesSequence(mem, hostarch.Addr(^uintptr(0)-2), 10, IOOpts{}); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("overflowing range: %v, want EFAULT", err)
	}
}
