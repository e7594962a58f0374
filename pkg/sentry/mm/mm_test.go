package mm

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

const pg = hostarch.PageSize

var testLayout = Layout{MinAddr: 0x10000, MaxAddr: 0x7f0000000000, MmapBase: 0x7e0000000000, StackTop: 0x7effff000000}

func newTestMM(t testing.TB) (*MemoryManager, *pgalloc.MemoryFile) {
	t.Helper()
	mf, err := pgalloc.New("mm-test")
	if err != nil {
		t.Fatalf("pgalloc.New: %v", err)
	}
	m := New(mf, testLayout)
	t.Cleanup(func() {
		m.DecUsers(context.Background())
		mf.Close()
	})
	return m, mf
}

func anon(addr hostarch.Addr, length uint64, perms hostarch.AccessType) memmap.MMapOpts {
	return memmap.MMapOpts{Length: length, Addr: addr, Fixed: addr != 0, Unmap: true, Private: true, Perms: perms, MaxPerms: hostarch.AnyAccess}
}

func mustMap(t *testing.T, m *MemoryManager, opts memmap.MMapOpts) hostarch.Addr {
	t.Helper()
	a, err := m.MMap(context.Background(), opts)
	if err != nil {
		t.Fatalf("MMap(%+v): %v", opts, err)
	}
	return a
}

// ranges renders the VMAs as "start-end perms" for comparison.
func ranges(m *MemoryManager) []MappingInfo { return m.Mappings() }

func expectVMAs(t *testing.T, m *MemoryManager, want ...hostarch.AddrRange) {
	t.Helper()
	got := ranges(m)
	if len(got) != len(want) {
		t.Fatalf("have %d vmas %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i].Range != want[i] {
			t.Fatalf("vma %d is %v, want %v (all: %v)", i, got[i].Range, want[i], got)
		}
	}
}

func r(s, e hostarch.Addr) hostarch.AddrRange { return hostarch.AddrRange{Start: s, End: e} }

func TestMMapMergesAdjacentAndSplitsOnMProtect(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	base := hostarch.Addr(0x100000)
	mustMap(t, m, anon(base, 2*pg, hostarch.ReadWrite))
	mustMap(t, m, anon(base+2*pg, 2*pg, hostarch.ReadWrite))
	expectVMAs(t, m, r(base, base+4*pg))

	// mprotect of the middle splits into three.
	if err := m.MProtect(ctx, base+pg, 2*pg, hostarch.Read, false); err != nil {
		t.Fatal(err)
	}
	expectVMAs(t, m, r(base, base+pg), r(base+pg, base+3*pg), r(base+3*pg, base+4*pg))
	if got := m.Mappings()[1].Perms; got != hostarch.Read {
		t.Fatalf("middle perms %v, want r--", got)
	}
	// Restoring the protection merges them again.
	if err := m.MProtect(ctx, base+pg, 2*pg, hostarch.ReadWrite, false); err != nil {
		t.Fatal(err)
	}
	expectVMAs(t, m, r(base, base+4*pg))
}

func TestMUnmapHoleAndMProtectErrors(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	base := hostarch.Addr(0x200000)
	mustMap(t, m, anon(base, 8*pg, hostarch.ReadWrite))
	if err := m.MUnmap(ctx, base+2*pg, 3*pg); err != nil {
		t.Fatal(err)
	}
	expectVMAs(t, m, r(base, base+2*pg), r(base+5*pg, base+8*pg))
	// mprotect across the hole fails with ENOMEM and changes nothing.
	if err := m.MProtect(ctx, base, 8*pg, hostarch.Read, false); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("mprotect across hole: %v, want ENOMEM", err)
	}
	if m.Mappings()[0].Perms != hostarch.ReadWrite {
		t.Fatal("failed mprotect changed perms")
	}
	// Unaligned munmap is EINVAL; unmapping nothing is fine.
	if err := m.MUnmap(ctx, base+1, pg); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("unaligned munmap: %v", err)
	}
	if err := m.MUnmap(ctx, 0x7000000000, pg); err != nil {
		t.Fatalf("munmap of nothing: %v", err)
	}
	// Max perms are enforced.
	o := anon(base+20*pg, pg, hostarch.Read)
	o.MaxPerms = hostarch.Read
	mustMap(t, m, o)
	if err := m.MProtect(ctx, base+20*pg, pg, hostarch.ReadWrite, false); !errors.Is(err, unix.EACCES) {
		t.Fatalf("mprotect beyond max perms: %v, want EACCES", err)
	}
}

func TestFixedNoReplaceAndPlacement(t *testing.T) {
	m, _ := newTestMM(t)
	base := hostarch.Addr(0x300000)
	mustMap(t, m, anon(base, 4*pg, hostarch.ReadWrite))
	o := anon(base+pg, pg, hostarch.Read)
	o.NoReplace = true
	if _, err := m.MMap(context.Background(), o); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("MAP_FIXED_NOREPLACE over a mapping: %v, want EEXIST", err)
	}
	// MAP_FIXED replaces the middle page.
	mustMap(t, m, anon(base+pg, pg, hostarch.Read))
	expectVMAs(t, m, r(base, base+pg), r(base+pg, base+2*pg), r(base+2*pg, base+4*pg))
	// Non-fixed mappings go top-down below the mmap base and do not overlap.
	a1 := mustMap(t, m, anon(0, 3*pg, hostarch.ReadWrite))
	a2 := mustMap(t, m, anon(0, 3*pg, hostarch.Read))
	if a1 >= testLayout.MmapBase || a2 >= a1 || a2+3*pg > a1 {
		t.Fatalf("placement a1=%v a2=%v base=%v", a1, a2, testLayout.MmapBase)
	}
	// A free hint is honoured.
	h := mustMap(t, m, memmap.MMapOpts{Length: pg, Addr: 0x5000000, Private: true, Perms: hostarch.Read, MaxPerms: hostarch.AnyAccess})
	if h != 0x5000000 {
		t.Fatalf("hint ignored: got %v", h)
	}
	// MAP_32BIT stays in the low 2 GiB.
	o32 := anon(0, pg, hostarch.Read)
	o32.Map32Bit = true
	if a := mustMap(t, m, o32); a >= 0x80000000 {
		t.Fatalf("MAP_32BIT mapping at %v", a)
	}
}

func TestCopyInOutFaultsAndEFAULT(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	base := hostarch.Addr(0x400000)
	mustMap(t, m, anon(base, 2*pg, hostarch.ReadWrite))
	mustMap(t, m, anon(base+2*pg, pg, hostarch.Read))
	data := bytes.Repeat([]byte("abcdefgh"), pg/4) // 2 pages
	if n, err := m.CopyOut(ctx, base+100, data[:pg+50], usermem.IOOpts{}); err != nil || n != pg+50 {
		t.Fatalf("CopyOut across pages: %d, %v", n, err)
	}
	got := make([]byte, pg+50)
	if n, err := m.CopyIn(ctx, base+100, got, usermem.IOOpts{}); err != nil || n != len(got) || !bytes.Equal(got, data[:pg+50]) {
		t.Fatalf("CopyIn: %d, %v, equal=%v", n, err, bytes.Equal(got, data[:pg+50]))
	}
	// Writing into the read-only page stops at its first byte.
	n, err := m.CopyOut(ctx, base+2*pg-10, make([]byte, 20), usermem.IOOpts{})
	if n != 10 || !errors.Is(err, unix.EFAULT) {
		t.Fatalf("CopyOut into read-only page: %d, %v; want 10, EFAULT", n, err)
	}
	// IgnorePermissions writes anyway (ptrace POKE).
	if n, err := m.CopyOut(ctx, base+2*pg, []byte{1}, usermem.IOOpts{IgnorePermissions: true}); n != 1 || err != nil {
		t.Fatalf("CopyOut ignoring permissions: %d, %v", n, err)
	}
	// Reading past the last mapping stops at the hole.
	buf := make([]byte, 30)
	n, err = m.CopyIn(ctx, base+3*pg-10, buf, usermem.IOOpts{})
	if n != 10 || !errors.Is(err, unix.EFAULT) {
		t.Fatalf("CopyIn into hole: %d, %v", n, err)
	}
	// ZeroOut clears.
	if n, err := m.ZeroOut(ctx, base+100, 8, usermem.IOOpts{}); n != 8 || err != nil {
		t.Fatal(n, err)
	}
	m.CopyIn(ctx, base+100, got[:16], usermem.IOOpts{})
	if !bytes.Equal(got[:8], make([]byte, 8)) || !bytes.Equal(got[8:16], data[8:16]) {
		t.Fatalf("after ZeroOut: %q", got[:16])
	}
	// Faults report the right signal code.
	var fe *FaultError
	if err := m.HandleFault(ctx, 0x1000000000, hostarch.Read); !errors.As(err, &fe) || fe.Code != SEGV_MAPERR {
		t.Fatalf("fault in hole: %v", err)
	}
	if err := m.HandleFault(ctx, base+2*pg+5, hostarch.Write); !errors.As(err, &fe) || fe.Code != SEGV_ACCERR || fe.Addr != base+2*pg+5 {
		t.Fatalf("write fault on read-only page: %v", err)
	}
	if err := m.HandleFault(ctx, base+pg, hostarch.Write); err != nil {
		t.Fatalf("valid fault: %v", err)
	}
}

func TestMAdviseDontNeedZeroesAnonymous(t *testing.T) {
	ctx := context.Background()
	m, mf := newTestMM(t)
	base := hostarch.Addr(0x500000)
	mustMap(t, m, anon(base, 4*pg, hostarch.ReadWrite))
	m.CopyOut(ctx, base+pg, []byte("keep?"), usermem.IOOpts{})
	used := mf.UsedBytes()
	if err := m.MAdvise(ctx, base, 4*pg, MADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if m.ResidentPages() != 0 {
		t.Fatalf("%d pages resident after MADV_DONTNEED", m.ResidentPages())
	}
	if mf.UsedBytes() >= used {
		t.Fatalf("memory file still uses %d bytes (was %d)", mf.UsedBytes(), used)
	}
	b := make([]byte, 5)
	m.CopyIn(ctx, base+pg, b, usermem.IOOpts{})
	if !bytes.Equal(b, make([]byte, 5)) {
		t.Fatalf("after MADV_DONTNEED read %q, want zeroes", b)
	}
	if err := m.MAdvise(ctx, base, 8*pg, MADV_DONTNEED); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("madvise over a hole: %v", err)
	}
	if err := m.MAdvise(ctx, base, pg, 12345); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("unknown advice: %v", err)
	}
}

func TestBrk(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	start := hostarch.Addr(0x600000)
	m.SetBrkStart(start)
	if got := m.Brk(ctx, 0); got != start {
		t.Fatalf("brk(0) = %v, want %v", got, start)
	}
	if got := m.Brk(ctx, start+3*pg+10); got != start+3*pg+10 {
		t.Fatalf("brk grow = %v", got)
	}
	expectVMAs(t, m, r(start, start+4*pg))
	if _, err := m.CopyOut(ctx, start+3*pg+5, []byte("heap"), usermem.IOOpts{}); err != nil {
		t.Fatalf("writing the heap: %v", err)
	}
	// Shrinking unmaps; growing again yields zeroes.
	if got := m.Brk(ctx, start+pg); got != start+pg {
		t.Fatalf("brk shrink = %v", got)
	}
	expectVMAs(t, m, r(start, start+pg))
	m.Brk(ctx, start+4*pg)
	b := make([]byte, 4)
	m.CopyIn(ctx, start+3*pg+5, b, usermem.IOOpts{})
	if !bytes.Equal(b, make([]byte, 4)) {
		t.Fatalf("re-grown heap holds %q", b)
	}
	// Growing into another mapping fails and leaves the break.
	mustMap(t, m, anon(start+6*pg, pg, hostarch.Read))
	if got := m.Brk(ctx, start+10*pg); got != start+4*pg {
		t.Fatalf("brk into a mapping = %v, want unchanged %v", got, start+4*pg)
	}
	if got := m.Brk(ctx, start-pg); got != start+4*pg {
		t.Fatalf("brk below start = %v", got)
	}
}

func TestMRemap(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	base := hostarch.Addr(0x700000)
	mustMap(t, m, anon(base, 2*pg, hostarch.ReadWrite))
	m.CopyOut(ctx, base+pg+7, []byte("moved"), usermem.IOOpts{})
	// Grow in place when the space after is free.
	a, err := m.MRemap(ctx, base, 2*pg, 4*pg, MRemapOpts{})
	if err != nil || a != base {
		t.Fatalf("grow in place: %v, %v", a, err)
	}
	expectVMAs(t, m, r(base, base+4*pg))
	// Block growth, then require a move.
	mustMap(t, m, anon(base+4*pg, pg, hostarch.Read))
	if _, err := m.MRemap(ctx, base, 4*pg, 8*pg, MRemapOpts{}); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("grow without MAYMOVE: %v", err)
	}
	na, err := m.MRemap(ctx, base, 4*pg, 8*pg, MRemapOpts{MayMove: true})
	if err != nil || na == base {
		t.Fatalf("move: %v, %v", na, err)
	}
	b := make([]byte, 5)
	if _, err := m.CopyIn(ctx, na+pg+7, b, usermem.IOOpts{}); err != nil || string(b) != "moved" {
		t.Fatalf("moved contents %q, %v", b, err)
	}
	if _, err := m.CopyIn(ctx, base, b, usermem.IOOpts{}); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("old range still mapped: %v", err)
	}
	// MREMAP_FIXED moves to an exact address, replacing what is there.
	dst := hostarch.Addr(0x900000)
	mustMap(t, m, anon(dst, pg, hostarch.Read))
	fa, err := m.MRemap(ctx, na, 8*pg, 2*pg, MRemapOpts{MayMove: true, Fixed: true, NewAddr: dst})
	if err != nil || fa != dst {
		t.Fatalf("fixed move: %v, %v", fa, err)
	}
	m.CopyIn(ctx, dst+pg+7, b, usermem.IOOpts{})
	if string(b) != "moved" {
		t.Fatalf("fixed-moved contents %q", b)
	}
	if got := m.Mappings(); len(got) != 2 || got[1].Range != r(dst, dst+2*pg) || got[1].Perms != hostarch.ReadWrite {
		t.Fatalf("after fixed move: %v", got)
	}
	// Shrinking unmaps the tail.
	if a, err := m.MRemap(ctx, dst, 2*pg, pg, MRemapOpts{}); err != nil || a != dst {
		t.Fatal(a, err)
	}
	expectVMAs(t, m, r(base+4*pg, base+5*pg), r(dst, dst+pg))
	// Bad arguments.
	if _, err := m.MRemap(ctx, dst, pg, 2*pg, MRemapOpts{Fixed: true}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("FIXED without MAYMOVE: %v", err)
	}
	if _, err := m.MRemap(ctx, 0x40000000, pg, 2*pg, MRemapOpts{MayMove: true}); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("remap of nothing: %v", err)
	}
}

// TestMRemapDontUnmap: MREMAP_DONTUNMAP at an address the kernel picks
// moves the pages and leaves the old range mapped, empty.
func TestMRemapDontUnmap(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	base := hostarch.Addr(0x700000)
	mustMap(t, m, anon(base, 2*pg, hostarch.ReadWrite))
	m.CopyOut(ctx, base+pg+3, []byte("data"), usermem.IOOpts{})
	if _, err := m.MRemap(ctx, base, 2*pg, 2*pg, MRemapOpts{DontUnmap: true}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("DONTUNMAP without MAYMOVE: %v", err)
	}
	if _, err := m.MRemap(ctx, base, 2*pg, 3*pg, MRemapOpts{MayMove: true, DontUnmap: true}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("DONTUNMAP changing the size: %v", err)
	}
	na, err := m.MRemap(ctx, base, 2*pg, 2*pg, MRemapOpts{MayMove: true, DontUnmap: true})
	if err != nil || na == base {
		t.Fatalf("DONTUNMAP move: %v, %v", na, err)
	}
	b := make([]byte, 4)
	if _, err := m.CopyIn(ctx, na+pg+3, b, usermem.IOOpts{}); err != nil || string(b) != "data" {
		t.Fatalf("moved contents %q, %v", b, err)
	}
	if _, err := m.CopyIn(ctx, base+pg+3, b, usermem.IOOpts{}); err != nil || string(b) != "\x00\x00\x00\x00" {
		t.Fatalf("old range after DONTUNMAP: %q, %v; want zeroes, still mapped", b, err)
	}
	got := m.Mappings()
	if len(got) != 2 {
		t.Fatalf("mappings after DONTUNMAP: %v, want the old and the new", got)
	}
}

func TestForkCopyOnWrite(t *testing.T) {
	ctx := context.Background()
	parent, mf := newTestMM(t)
	base := hostarch.Addr(0xa00000)
	mustMap(t, parent, anon(base, 2*pg, hostarch.ReadWrite))
	parent.CopyOut(ctx, base, []byte("original"), usermem.IOOpts{})
	// A shared anonymous mapping stays shared.
	shared := mustMap(t, parent, memmap.MMapOpts{Length: pg, Perms: hostarch.ReadWrite, MaxPerms: hostarch.AnyAccess})
	parent.CopyOut(ctx, shared, []byte("s0"), usermem.IOOpts{})

	child, err := parent.Fork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer child.DecUsers(ctx)
	usedAfterFork := mf.UsedBytes()
	parent.CopyOut(ctx, base, []byte("PARENT!!"), usermem.IOOpts{})
	if mf.UsedBytes() <= usedAfterFork {
		t.Fatalf("parent's write after fork did not copy a page (used %d → %d)", usedAfterFork, mf.UsedBytes())
	}
	b := make([]byte, 8)
	child.CopyIn(ctx, base, b, usermem.IOOpts{})
	if string(b) != "original" {
		t.Fatalf("child sees %q after parent's write, want original", b)
	}
	parent.CopyIn(ctx, base, b, usermem.IOOpts{})
	if string(b) != "PARENT!!" {
		t.Fatalf("parent sees %q", b)
	}
	child.CopyOut(ctx, base, []byte("CHILD..."), usermem.IOOpts{})
	parent.CopyIn(ctx, base, b, usermem.IOOpts{})
	if string(b) != "PARENT!!" {
		t.Fatalf("child's write reached parent: %q", b)
	}
	// Shared memory is shared both ways.
	child.CopyOut(ctx, shared, []byte("s1"), usermem.IOOpts{})
	parent.CopyIn(ctx, shared, b[:2], usermem.IOOpts{})
	if string(b[:2]) != "s1" {
		t.Fatalf("shared mapping not shared after fork: %q", b[:2])
	}
	if got, want := child.Mappings(), parent.Mappings(); len(got) != len(want) {
		t.Fatalf("child vmas %v, parent %v", got, want)
	}
}

func TestReleaseFreesMemory(t *testing.T) {
	ctx := context.Background()
	mf, err := pgalloc.New("mm-release")
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	m := New(mf, testLayout)
	a := mustMap(t, m, anon(0, 64*pg, hostarch.ReadWrite))
	if _, err := m.ZeroOut(ctx, a, 64*pg, usermem.IOOpts{}); err != nil {
		t.Fatal(err)
	}
	c, err := m.Fork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.CopyOut(ctx, a, []byte{1}, usermem.IOOpts{})
	if mf.UsedBytes() == 0 {
		t.Fatal("nothing allocated")
	}
	m.DecUsers(ctx)
	c.DecUsers(ctx)
	if mf.UsedBytes() != 0 {
		t.Fatalf("%d bytes still used after both address spaces were released", mf.UsedBytes())
	}
}

func TestGrowsDown(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMM(t)
	top := hostarch.Addr(0x7e0000000000 + 0x100000)
	o := anon(top-4*pg, 4*pg, hostarch.ReadWrite)
	o.GrowsDown = true
	mustMap(t, m, o)
	if err := m.HandleFault(ctx, top-10*pg+8, hostarch.Write); err != nil {
		t.Fatalf("fault below a growsdown mapping: %v", err)
	}
	expectVMAs(t, m, r(top-10*pg, top))
	if err := m.HandleFault(ctx, top-(maxStackSize+2*pg), hostarch.Write); err == nil {
		t.Fatal("stack grew beyond its limit")
	}
}

func BenchmarkCopyOutSmall(b *testing.B) {
	ctx := context.Background()
	m, _ := newTestMM(b)
	a, _ := m.MMap(ctx, anon(0, 16*pg, hostarch.ReadWrite))
	buf := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.CopyOut(ctx, a+hostarch.Addr(i%8)*pg, buf, usermem.IOOpts{})
	}
}
