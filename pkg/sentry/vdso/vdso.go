// Package vdso owns the sandbox's virtual dynamic shared object: the ELF
// image (built from vdso.c, committed as vdso.so) that serves
// clock_gettime, gettimeofday, time and clock_getres in the application's
// own address space without a trap, the data page ("[vvar]") it reads, and
// the Sentry's clock, which reads the same page with the same arithmetic so
// that the vDSO and the clock_gettime syscall never disagree.
//
// The page holds a sequence count and the parameters that turn the TSC into
// CLOCK_MONOTONIC (base TSC, base nanoseconds, mult and shift) plus the
// realtime offset. A goroutine recalibrates them against the host clock,
// every second at most, slewing (never stepping back) so that
// CLOCK_MONOTONIC stays monotonic across any mix of vDSO calls and
// syscalls. Without an invariant TSC the page says "use the syscall" and
// the Sentry's clock is the host's.
//
// One VDSO serves a whole kernel: every address space maps the same data
// page and the same image pages of the memory file (Map), so one update
// reaches all processes.
package vdso

import (
	"context"
	_ "embed"
	"fmt"
	"runtime"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"golang.org/x/sys/unix"
)

// image is the vDSO's ELF image (vdso.so, built by go generate).
//
//go:embed vdso.so
var image []byte

// Image returns a copy of the vDSO's ELF image.
func Image() []byte { return append([]byte(nil), image...) }

// Sizes of the two mappings every address space gets.
const (
	// VvarSize is the size of the [vvar] mapping, just below [vdso].
	VvarSize = hostarch.PageSize
)

// TextSize is the size of the [vdso] mapping: the image, in whole pages.
func TextSize() uint64 {
	s, _ := hostarch.PageRoundUp(uint64(len(image)))
	return s
}

// Options configure a VDSO.
type Options struct {
	// NoTSC keeps the clock off the TSC even if it is invariant: the
	// vDSO makes the syscall and the Sentry reads the host clock.
	NoTSC bool
}

// VDSO is one kernel's vDSO: its image and data page in the memory file,
// and the clock they serve.
type VDSO struct {
	vvar *mm.MemoryObject
	text *mm.MemoryObject
	clk  *clock
}

// New puts the image and a data page into mf and starts the clock at 0.
func New(mf *pgalloc.MemoryFile, opts Options) (*VDSO, error) {
	ctx := context.Background()
	vvar, err := mm.NewMemoryObject(mf, VvarSize)
	if err != nil {
		return nil, fmt.Errorf("vdso: data page: %w", err)
	}
	// Touch the page so it exists, then find it in the memory file.
	var zero [8]byte
	if _, err := vvar.WriteAt(zero[:], 0); err != nil {
		vvar.DecRef(ctx)
		return nil, fmt.Errorf("vdso: data page: %w", err)
	}
	ts, err := vvar.Translate(ctx, memmap.MappableRange{Start: 0, End: VvarSize}, memmap.MappableRange{Start: 0, End: VvarSize}, hostarch.Read)
	if err != nil || len(ts) != 1 {
		vvar.DecRef(ctx)
		return nil, fmt.Errorf("vdso: locating the data page: %v: %w", err, unix.EFAULT)
	}
	page, err := mapPage(mf.FD(), ts[0].Offset, VvarSize)
	if err != nil {
		vvar.DecRef(ctx)
		return nil, fmt.Errorf("vdso: mapping the data page: %w", err)
	}
	text, err := mm.NewMemoryObject(mf, TextSize())
	if err != nil {
		unix.Munmap(page)
		vvar.DecRef(ctx)
		return nil, fmt.Errorf("vdso: image: %w", err)
	}
	if _, err := text.WriteAt(image, 0); err != nil {
		unix.Munmap(page)
		vvar.DecRef(ctx)
		text.DecRef(ctx)
		return nil, fmt.Errorf("vdso: image: %w", err)
	}
	c := &clock{data: dataAt(page), page: page}
	c.init(!opts.NoTSC && invariantTSC())
	// The Sentry's view of the page goes when the clock does; the memory
	// file's page stays allocated (the VDSO never drops its reference),
	// so application mappings never see it reused.
	runtime.AddCleanup(c, func(b []byte) { unix.Munmap(b) }, page)
	startUpdater(c)
	return &VDSO{vvar: vvar, text: text, clk: c}, nil
}

// UsesTSC reports whether the vDSO serves the time itself (true) or makes
// the syscall.
func (v *VDSO) UsesTSC() bool { return v.clk.tsc }

// MonotonicNanos returns CLOCK_MONOTONIC: nanoseconds since New.
func (v *VDSO) MonotonicNanos() int64 { return v.clk.monotonic() }

// RealtimeNanos returns CLOCK_REALTIME: nanoseconds since the Unix epoch.
func (v *VDSO) RealtimeNanos() int64 { return v.clk.realtime() }

// Map maps [vvar] (read-only) and [vdso] (read and execute) next to each
// other at the top of m's free space below the mmap base, as Linux places
// them, and returns the image's address (AT_SYSINFO_EHDR). Both are
// private mappings of the shared pages: reads see the kernel-wide data
// page, and a write to the image (a debugger's breakpoint) copies it.
func (v *VDSO) Map(ctx context.Context, m *mm.MemoryManager) (hostarch.Addr, error) {
	text := TextSize()
	addr, ok := m.FindAvailable(VvarSize + text)
	if !ok {
		return 0, fmt.Errorf("vdso: no room: %w", unix.ENOMEM)
	}
	if _, err := m.MMap(ctx, memmap.MMapOpts{
		Length: VvarSize, Addr: addr, Fixed: true, Private: true,
		Perms: hostarch.Read, MaxPerms: hostarch.Read,
		Mappable: v.vvar, MappingIdentity: v.vvar, Hint: "[vvar]",
	}); err != nil {
		return 0, fmt.Errorf("vdso: mapping [vvar]: %w", err)
	}
	textAddr := addr + VvarSize
	if _, err := m.MMap(ctx, memmap.MMapOpts{
		Length: text, Addr: textAddr, Fixed: true, Private: true,
		Perms: hostarch.AccessType{Read: true, Execute: true}, MaxPerms: hostarch.AnyAccess,
		Mappable: v.text, MappingIdentity: v.text, Hint: "[vdso]",
	}); err != nil {
		return 0, fmt.Errorf("vdso: mapping [vdso]: %w", err)
	}
	return textAddr, nil
}
