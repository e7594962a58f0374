package memmap

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMappableRange(t *testing.T) {
	r := MappableRange{0x1000, 0x3000}
	if r.Length() != 0x2000 || !r.WellFormed() || !r.Contains(0x1000) || r.Contains(0x3000) {
		t.Fatalf("basic properties of %v", r)
	}
	if !r.IsSupersetOf(MappableRange{0x1000, 0x2000}) || r.IsSupersetOf(MappableRange{0, 0x2000}) {
		t.Fatal("IsSupersetOf")
	}
	if got := r.Intersect(MappableRange{0x2000, 0x5000}); got != (MappableRange{0x2000, 0x3000}) {
		t.Fatalf("Intersect = %v", got)
	}
	if got := r.Intersect(MappableRange{0x5000, 0x6000}); got.Length() != 0 {
		t.Fatalf("disjoint Intersect = %v", got)
	}
}

func TestBusErrorUnwraps(t *testing.T) {
	err := error(&BusError{Err: unix.EFAULT})
	var be *BusError
	if !errors.As(err, &be) || !errors.Is(err, unix.EFAULT) {
		t.Fatalf("BusError %v does not unwrap", err)
	}
	tr := Translation{Source: MappableRange{0x2000, 0x4000}, Offset: 0x10000}
	if fr := tr.FileRange(); fr.Start != 0x10000 || fr.End != 0x12000 {
		t.Fatalf("FileRange %v", fr)
	}
}
