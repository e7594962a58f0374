package vdso

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

var testLayout = mm.Layout{MinAddr: 0x10000, MaxAddr: 0x7f0000000000, MmapBase: 0x7e0000000000, StackTop: 0x7effff000000}

func newTestVDSO(t *testing.T, opts Options) (*VDSO, *pgalloc.MemoryFile) {
	t.Helper()
	mf, err := pgalloc.New("vdso-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	v, err := New(mf, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v, mf
}

func newMM(t *testing.T, mf *pgalloc.MemoryFile) *mm.MemoryManager {
	m := mm.New(mf, testLayout)
	t.Cleanup(func() { m.DecUsers(context.Background()) })
	return m
}

func mappingAt(m *mm.MemoryManager, addr hostarch.Addr) (mm.MappingInfo, bool) {
	for _, mi := range m.Mappings() {
		if mi.Range.Contains(addr) {
			return mi, true
		}
	}
	return mm.MappingInfo{}, false
}

func readU32(t *testing.T, m *mm.MemoryManager, addr hostarch.Addr) uint32 {
	t.Helper()
	var b [4]byte
	if _, err := m.CopyIn(context.Background(), addr, b[:], usermem.IOOpts{}); err != nil {
		t.Fatalf("reading %v: %v", addr, err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

// Map gives an address space [vvar] and [vdso] side by side below the
// mmap base, the image readable at the returned address and the data
// page the very one the Sentry updates; fork keeps them.
func TestMap(t *testing.T) {
	ctx := context.Background()
	v, mf := newTestVDSO(t, Options{})
	m := newMM(t, mf)
	addr, err := v.Map(ctx, m)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if addr >= testLayout.MmapBase || !addr.IsPageAligned() {
		t.Fatalf("vDSO at %v, want page aligned below the mmap base %v", addr, testLayout.MmapBase)
	}
	text, ok := mappingAt(m, addr)
	if !ok || text.Hint != "[vdso]" || text.Range.Start != addr || text.Range.Length() != TextSize() ||
		text.Perms != (hostarch.AccessType{Read: true, Execute: true}) || !text.Private {
		t.Fatalf("[vdso] mapping %v", text)
	}
	vvar, ok := mappingAt(m, addr-1)
	if !ok || vvar.Hint != "[vvar]" || vvar.Range.End != addr || vvar.Range.Length() != VvarSize ||
		vvar.Perms != hostarch.Read || vvar.MaxPerms.Write {
		t.Fatalf("[vvar] mapping %v", vvar)
	}
	got := make([]byte, len(image))
	if _, err := m.CopyIn(ctx, addr, got, usermem.IOOpts{}); err != nil || !bytes.Equal(got, image) {
		t.Fatalf("image at %v: %v", addr, err)
	}
	// The page the application reads is the Sentry's: an update shows.
	d := v.clk.data
	d.seq.Add(2)
	if got, want := readU32(t, m, vvar.Range.Start), d.seq.Load(); got != want {
		t.Fatalf("[vvar] seq %d, the Sentry's %d", got, want)
	}
	child, err := m.Fork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer child.DecUsers(ctx)
	d.seq.Add(2)
	if got, want := readU32(t, child, vvar.Range.Start), d.seq.Load(); got != want {
		t.Fatalf("forked [vvar] seq %d, the Sentry's %d", got, want)
	}
	if mi, ok := mappingAt(child, addr); !ok || mi.Hint != "[vdso]" {
		t.Fatalf("forked [vdso] mapping %v", mi)
	}
	// A second address space shares the same data page.
	m2 := newMM(t, mf)
	addr2, err := v.Map(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	d.seq.Add(2)
	if got, want := readU32(t, m2, addr2-VvarSize), d.seq.Load(); got != want {
		t.Fatalf("second [vvar] seq %d, the Sentry's %d", got, want)
	}
}

// The mappings behave as ordinary ones for mprotect, mremap and munmap:
// [vvar] can never become writable, [vdso] can (copy-on-write) and moves.
func TestMappingsSyscalls(t *testing.T) {
	ctx := context.Background()
	v, mf := newTestVDSO(t, Options{})
	m := newMM(t, mf)
	addr, err := v.Map(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	vvarAddr := addr - VvarSize
	if err := m.MProtect(ctx, vvarAddr, VvarSize, hostarch.ReadWrite, false); !errors.Is(err, unix.EACCES) {
		t.Errorf("mprotect([vvar], RW) = %v, want EACCES", err)
	}
	if _, err := m.CopyOut(ctx, vvarAddr, []byte{1}, usermem.IOOpts{}); err == nil {
		t.Error("write to [vvar] succeeded")
	}
	// A write to the image (a debugger's breakpoint) stays private.
	if err := m.MProtect(ctx, addr, TextSize(), hostarch.AnyAccess, false); err != nil {
		t.Fatalf("mprotect([vdso], RWX): %v", err)
	}
	if _, err := m.CopyOut(ctx, addr, []byte{0xcc}, usermem.IOOpts{}); err != nil {
		t.Fatal(err)
	}
	m2 := newMM(t, mf)
	addr2, err := v.Map(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	if _, err := m2.CopyIn(ctx, addr2, b[:], usermem.IOOpts{}); err != nil || string(b[:]) != "\x7fELF" {
		t.Fatalf("another process's image starts %q (%v)", b, err)
	}
	// mremap moves [vdso] with its name and contents.
	to, err := m2.MRemap(ctx, addr2, TextSize(), TextSize(), mm.MRemapOpts{MayMove: true, Fixed: true, NewAddr: 0x100000000})
	if err != nil {
		t.Fatalf("mremap([vdso]): %v", err)
	}
	if mi, ok := mappingAt(m2, to); !ok || mi.Hint != "[vdso]" {
		t.Fatalf("moved [vdso] mapping %v", mi)
	}
	if _, err := m2.CopyIn(ctx, to, b[:], usermem.IOOpts{}); err != nil || string(b[:]) != "\x7fELF" {
		t.Fatalf("moved image starts %q (%v)", b, err)
	}
	if err := m2.MUnmap(ctx, addr2-VvarSize, VvarSize); err != nil {
		t.Fatalf("munmap([vvar]): %v", err)
	}
	if _, ok := mappingAt(m2, addr2-VvarSize); ok {
		t.Fatal("[vvar] still mapped after munmap")
	}
}

// The kernel-facing clock: monotonic from 0, realtime the host's.
func TestVDSOClock(t *testing.T) {
	for _, opts := range []Options{{}, {NoTSC: true}} {
		v, _ := newTestVDSO(t, opts)
		if v.UsesTSC() != (!opts.NoTSC && invariantTSC()) {
			t.Errorf("%+v: UsesTSC %v", opts, v.UsesTSC())
		}
		m1 := v.MonotonicNanos()
		m2 := v.MonotonicNanos()
		if m1 < 0 || m2 < m1 || m1 > int64(10e9) {
			t.Errorf("%+v: monotonic %d then %d", opts, m1, m2)
		}
		host := time.Now().UnixNano()
		if d := v.RealtimeNanos() - host; d > int64(time.Millisecond) || d < -int64(time.Millisecond) {
			t.Errorf("%+v: realtime %v off the host's", opts, time.Duration(d))
		}
	}
}
