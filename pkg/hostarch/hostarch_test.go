package hostarch

import "testing"

func TestRounding(t *testing.T) {
	if got := Addr(0x1234).RoundDown(); got != 0x1000 {
		t.Errorf("RoundDown = %v", got)
	}
	if got, ok := Addr(0x1001).RoundUp(); !ok || got != 0x2000 {
		t.Errorf("RoundUp = %v, %v", got, ok)
	}
	if _, ok := Addr(^uintptr(0)).RoundUp(); ok {
		t.Error("RoundUp of the top address must report overflow")
	}
	if _, ok := Addr(^uintptr(0) - 10).AddLength(100); ok {
		t.Error("AddLength must report overflow")
	}
}

func TestRangeAlgebra(t *testing.T) {
	r := AddrRange{0x1000, 0x3000}
	if !r.Overlaps(AddrRange{0x2fff, 0x4000}) || r.Overlaps(AddrRange{0x3000, 0x4000}) {
		t.Error("Overlaps wrong at the boundary")
	}
	if got := r.Intersect(AddrRange{0x2000, 0x5000}); got != (AddrRange{0x2000, 0x3000}) {
		t.Errorf("Intersect = %v", got)
	}
	if got := r.Intersect(AddrRange{0x5000, 0x6000}); got.Length() != 0 {
		t.Errorf("disjoint Intersect = %v, want empty", got)
	}
}

func TestAccessType(t *testing.T) {
	for prot := 0; prot < 8; prot++ {
		if got := AccessTypeFromProt(prot).Prot(); got != prot {
			t.Errorf("prot %d round-trips to %d", prot, got)
		}
	}
	if !ReadWrite.SupersetOf(Read) || Read.SupersetOf(ReadWrite) {
		t.Error("SupersetOf wrong")
	}
	if ReadWrite.String() != "rw-" {
		t.Errorf("String = %q", ReadWrite.String())
	}
}
