package pgalloc

import (
	"math/rand"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
)

const page = hostarch.PageSize

func newFile(t *testing.T) *MemoryFile {
	f, err := New("pgalloc-test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func mustAlloc(t *testing.T, f *MemoryFile, n uint64) FileRange {
	fr, err := f.Allocate(n)
	if err != nil {
		t.Fatalf("Allocate(%d): %v", n, err)
	}
	return fr
}

func TestAllocateZeroedDistinct(t *testing.T) {
	f := newFile(t)
	a := mustAlloc(t, f, 3*page)
	b := mustAlloc(t, f, 100) // rounded up to a page
	if a.Length() != 3*page || b.Length() != page || a.Start%page != 0 || b.Start%page != 0 {
		t.Fatalf("ranges %v %v", a, b)
	}
	if a.End > b.Start && b.End > a.Start {
		t.Fatalf("ranges overlap: %v %v", a, b)
	}
	if f.UsedBytes() != 4*page {
		t.Errorf("UsedBytes = %d, want %d", f.UsedBytes(), 4*page)
	}
	m, err := f.MapInternal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m {
		if c != 0 {
			t.Fatal("fresh pages are not zero")
		}
	}
	if _, err := f.Allocate(0); err == nil {
		t.Error("Allocate(0) succeeded")
	}
}

func TestFreedPagesAreDecommittedAndZeroed(t *testing.T) {
	f := newFile(t)
	fr := mustAlloc(t, f, 64*page)
	m, _ := f.MapInternal(fr)
	for i := range m {
		m[i] = 0xaa
	}
	if c := f.CommittedBytes(); c < 64*page {
		t.Errorf("CommittedBytes = %d after touching %d", c, 64*page)
	}
	f.DecRef(fr)
	if f.UsedBytes() != 0 {
		t.Errorf("UsedBytes = %d after freeing everything", f.UsedBytes())
	}
	if c := f.CommittedBytes(); c != 0 {
		t.Errorf("CommittedBytes = %d after freeing: memory not returned to the host", c)
	}
	again := mustAlloc(t, f, 64*page)
	if again != fr {
		t.Logf("reallocated %v (was %v)", again, fr)
	}
	m, _ = f.MapInternal(again)
	for i, c := range m {
		if c != 0 {
			t.Fatalf("reused page byte %d = %#x, want 0", i, c)
		}
	}
}

func TestPartialReferences(t *testing.T) {
	f := newFile(t)
	fr := mustAlloc(t, f, 4*page)
	mid := FileRange{fr.Start + page, fr.Start + 3*page}
	f.IncRef(mid)
	m, _ := f.MapInternal(mid)
	m[0] = 1
	f.DecRef(fr) // the outer pages go, the middle ones stay
	if f.UsedBytes() != 2*page {
		t.Fatalf("UsedBytes = %d, want %d", f.UsedBytes(), 2*page)
	}
	if m[0] != 1 {
		t.Error("still-referenced page lost its contents")
	}
	// The freed first page is reused before the file grows.
	if a := mustAlloc(t, f, page); a.Start != fr.Start {
		t.Errorf("allocation at %v, want the freed page at %#x", a, fr.Start)
	}
	f.DecRef(mid)
	if f.UsedBytes() != page {
		t.Errorf("UsedBytes = %d, want %d", f.UsedBytes(), page)
	}
}

func TestBadDecRefPanics(t *testing.T) {
	f := newFile(t)
	fr := mustAlloc(t, f, page)
	defer func() {
		if recover() == nil {
			t.Error("DecRef of unallocated pages did not panic")
		}
	}()
	f.DecRef(FileRange{fr.Start, fr.End + page})
}

func TestGrowth(t *testing.T) {
	f := newFile(t)
	big := mustAlloc(t, f, 3*growChunk/2)
	small := mustAlloc(t, f, page)
	for _, fr := range []FileRange{big, small} {
		m, err := f.MapInternal(fr)
		if err != nil {
			t.Fatalf("MapInternal(%v): %v", fr, err)
		}
		m[len(m)-1] = 7
		if m[len(m)-1] != 7 {
			t.Fatal("write through the Sentry mapping lost")
		}
	}
	if _, err := f.MapInternal(FileRange{0, 1 << 50}); err == nil {
		t.Error("MapInternal beyond the file succeeded")
	}
}

// TestAgainstModel runs random operations against a per-page model.
func TestAgainstModel(t *testing.T) {
	f := newFile(t)
	rng := rand.New(rand.NewSource(1))
	refs := map[uint64]int{} // page offset -> count
	var live []FileRange
	for step := 0; step < 3000; step++ {
		switch op := rng.Intn(3); {
		case op == 0 || len(live) == 0:
			fr := mustAlloc(t, f, uint64(1+rng.Intn(8))*page)
			for off := fr.Start; off < fr.End; off += page {
				if refs[off] != 0 {
					t.Fatalf("step %d: Allocate returned page %#x that is in use", step, off)
				}
				refs[off] = 1
			}
			m, _ := f.MapInternal(fr)
			for i := 0; i < len(m); i += page {
				if m[i] != 0 {
					t.Fatalf("step %d: allocated page not zero", step)
				}
				m[i] = 1
			}
			live = append(live, fr)
		case op == 1:
			i := rng.Intn(len(live))
			fr := live[i]
			n := (fr.Length() / page)
			s := uint64(rng.Int63n(int64(n)))
			sub := FileRange{fr.Start + s*page, fr.Start + (s+1+uint64(rng.Int63n(int64(n-s))))*page}
			f.IncRef(sub)
			for off := sub.Start; off < sub.End; off += page {
				refs[off]++
			}
			live = append(live, sub)
		default:
			i := rng.Intn(len(live))
			fr := live[i]
			live = append(live[:i], live[i+1:]...)
			f.DecRef(fr)
			for off := fr.Start; off < fr.End; off += page {
				if refs[off]--; refs[off] == 0 {
					delete(refs, off)
				}
			}
		}
		if want := uint64(len(refs)) * page; f.UsedBytes() != want {
			t.Fatalf("step %d: UsedBytes %d, model %d", step, f.UsedBytes(), want)
		}
	}
	for i := 1; i < len(f.extents); i++ {
		a, b := f.extents[i-1], f.extents[i]
		if a.end > b.start || (a.end == b.start && a.refs == b.refs) {
			t.Fatalf("extents %+v %+v overlap or were not merged", a, b)
		}
	}
}

func BenchmarkAllocateFree(b *testing.B) {
	f, err := New("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		fr, err := f.Allocate(page)
		if err != nil {
			b.Fatal(err)
		}
		f.DecRef(fr)
	}
}
