// Package pgalloc owns the sandbox's memory file: one memfd holding every
// page of application memory (and whatever else the Sentry keeps in it),
// a page allocator with per-page reference counts over it, and the
// Sentry's own mapping of the whole file, through which the Sentry reads
// and writes application memory with plain copies.
//
// Freed pages are decommitted (FALLOC_FL_PUNCH_HOLE) so their memory goes
// back to the host and they read as zero when allocated again.
package pgalloc

import (
	"fmt"
	"sort"
	"sync"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

// FileRange is a page-aligned range [Start, End) of offsets into the
// memory file.
type FileRange struct {
	Start, End uint64
}

// Length returns the number of bytes in fr.
func (fr FileRange) Length() uint64 { return fr.End - fr.Start }

func (fr FileRange) String() string { return fmt.Sprintf("[%#x, %#x)", fr.Start, fr.End) }

const (
	// growChunk is the step in which the file and the Sentry's mapping of
	// it grow; a multiple of the huge page size so the host can back it
	// with huge pages if it wants to.
	growChunk = 64 << 20

	// Limits of the address-space reservation for the Sentry's mapping,
	// which bounds the file size. Reservations are PROT_NONE and
	// MAP_NORESERVE; if RLIMIT_AS forbids a large one a smaller one is tried.
	maxReservation = 1 << 40
	minReservation = 256 << 20
)

// extent is a run of allocated pages with the same reference count.
type extent struct {
	start, end uint64
	refs       int64
}

// MemoryFile is the sandbox's memory file and its allocator.
type MemoryFile struct {
	fd int

	// base is the start of the Sentry's reservation for the file; the
	// first fileSize bytes of it map the file.
	base        unsafe.Pointer
	reservation uint64

	mu       sync.Mutex
	fileSize uint64   // bytes of the file that exist and are mapped at base
	extents  []extent // allocated runs, sorted by start, disjoint
	used     uint64   // bytes with a non-zero reference count
	closed   bool
}

// New creates a memory file named name (the name shows in /proc/self/fd).
func New(name string) (*MemoryFile, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pgalloc: memfd_create(%q): %w", name, err)
	}
	var base unsafe.Pointer
	size := uint64(maxReservation)
	for {
		b, errno := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
		if errno == nil {
			base = b
			break
		}
		if size/2 < minReservation {
			unix.Close(fd)
			return nil, fmt.Errorf("pgalloc: reserving %d bytes of address space for the memory file: %w", size, errno)
		}
		size /= 2
	}
	return &MemoryFile{fd: fd, base: base, reservation: size}, nil
}

// FD returns the memfd. Platforms map it into application address spaces.
func (f *MemoryFile) FD() int { return f.fd }

// Allocate returns length bytes (rounded up to whole pages) of zero-filled
// pages with a reference count of one.
func (f *MemoryFile) Allocate(length uint64) (FileRange, error) {
	if length == 0 {
		return FileRange{}, fmt.Errorf("pgalloc: allocating 0 bytes: %w", unix.EINVAL)
	}
	length, ok := hostarch.PageRoundUp(length)
	if !ok {
		return FileRange{}, fmt.Errorf("pgalloc: allocation too large: %w", unix.ENOMEM)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return FileRange{}, fmt.Errorf("pgalloc: memory file closed: %w", unix.EINVAL)
	}
	// First fit among the gaps between allocated extents.
	prevEnd := uint64(0)
	idx := len(f.extents)
	start := uint64(0)
	found := false
	for i, e := range f.extents {
		if e.start-prevEnd >= length {
			idx, start, found = i, prevEnd, true
			break
		}
		prevEnd = e.end
	}
	if !found {
		start = prevEnd
		if start+length < start || start+length > f.reservation {
			return FileRange{}, fmt.Errorf("pgalloc: memory file full (%d bytes reserved): %w", f.reservation, unix.ENOMEM)
		}
		if err := f.growLocked(start + length); err != nil {
			return FileRange{}, err
		}
	}
	fr := FileRange{start, start + length}
	f.extents = append(f.extents, extent{})
	copy(f.extents[idx+1:], f.extents[idx:])
	f.extents[idx] = extent{fr.Start, fr.End, 1}
	f.mergeAround(idx, idx+1)
	f.used += length
	return fr, nil
}

// growLocked makes the file and the Sentry's mapping of it at least min bytes.
func (f *MemoryFile) growLocked(min uint64) error {
	if min <= f.fileSize {
		return nil
	}
	newSize := (min + growChunk - 1) / growChunk * growChunk
	if newSize > f.reservation {
		newSize = f.reservation
	}
	if err := unix.Ftruncate(f.fd, int64(newSize)); err != nil {
		return fmt.Errorf("pgalloc: growing memory file to %d bytes: %w", newSize, err)
	}
	_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(f.base)+uintptr(f.fileSize), uintptr(newSize-f.fileSize),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED, uintptr(f.fd), uintptr(f.fileSize))
	if errno != 0 {
		return fmt.Errorf("pgalloc: mapping memory file [%#x, %#x): %w", f.fileSize, newSize, errno)
	}
	f.fileSize = newSize
	return nil
}

func checkRange(fr FileRange) {
	if fr.Start >= fr.End || fr.Start%hostarch.PageSize != 0 || fr.End%hostarch.PageSize != 0 {
		panic(fmt.Sprintf("pgalloc: invalid file range %v", fr))
	}
}

// splitAt makes off an extent boundary if it falls inside one.
func (f *MemoryFile) splitAt(off uint64) {
	i := sort.Search(len(f.extents), func(i int) bool { return f.extents[i].end > off })
	if i == len(f.extents) || f.extents[i].start >= off {
		return
	}
	e := f.extents[i]
	f.extents = append(f.extents, extent{})
	copy(f.extents[i+1:], f.extents[i:])
	f.extents[i] = extent{e.start, off, e.refs}
	f.extents[i+1] = extent{off, e.end, e.refs}
}

// span splits extents at fr's ends and returns the index range covering fr;
// it panics if some page of fr is not allocated (a caller bug that would
// otherwise corrupt memory silently).
func (f *MemoryFile) span(fr FileRange) (int, int) {
	checkRange(fr)
	f.splitAt(fr.Start)
	f.splitAt(fr.End)
	lo := sort.Search(len(f.extents), func(i int) bool { return f.extents[i].end > fr.Start })
	next := fr.Start
	hi := lo
	for ; hi < len(f.extents) && f.extents[hi].start < fr.End; hi++ {
		if f.extents[hi].start != next {
			break
		}
		next = f.extents[hi].end
	}
	if next != fr.End {
		panic(fmt.Sprintf("pgalloc: reference count change on unallocated pages in %v", fr))
	}
	return lo, hi
}

// IncRef takes an extra reference on every page of fr.
func (f *MemoryFile) IncRef(fr FileRange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lo, hi := f.span(fr)
	for i := lo; i < hi; i++ {
		f.extents[i].refs++
	}
	f.mergeAround(lo, hi)
}

// DecRef drops a reference on every page of fr; pages that reach zero are
// freed and decommitted.
func (f *MemoryFile) DecRef(fr FileRange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lo, hi := f.span(fr)
	kept := f.extents[:lo]
	var punch FileRange
	for i := lo; i < hi; i++ {
		e := f.extents[i]
		e.refs--
		if e.refs > 0 {
			kept = append(kept, e)
			continue
		}
		f.used -= e.end - e.start
		if punch.End == e.start {
			punch.End = e.end
		} else {
			f.decommit(punch)
			punch = FileRange{e.start, e.end}
		}
	}
	f.decommit(punch)
	n := len(kept)
	f.extents = append(kept, f.extents[hi:]...)
	f.mergeAround(lo, n)
}

// mergeAround joins adjacent extents with equal counts in [lo-1, hi+1) so
// the list stays as short as the reference pattern allows.
func (f *MemoryFile) mergeAround(lo, hi int) {
	if lo > 0 {
		lo--
	}
	if hi < len(f.extents) {
		hi++
	}
	if hi-lo < 2 {
		return
	}
	out := lo
	for i := lo + 1; i < hi; i++ {
		p, e := &f.extents[out], f.extents[i]
		if p.end == e.start && p.refs == e.refs {
			p.end = e.end
			continue
		}
		out++
		f.extents[out] = e
	}
	f.extents = append(f.extents[:out+1], f.extents[hi:]...)
}

// decommit returns fr's memory to the host; the pages read as zero after.
func (f *MemoryFile) decommit(fr FileRange) {
	if fr.Length() == 0 {
		return
	}
	if err := unix.Fallocate(f.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(fr.Start), int64(fr.Length())); err != nil {
		// Without hole punching the pages must still read as zero when
		// reused; clear them through the Sentry's mapping.
		clear(unsafe.Slice((*byte)(unsafe.Add(f.base, fr.Start)), fr.Length()))
	}
}

// MapInternal returns the Sentry's own view of fr. The slice stays valid
// until Close; the pages must be allocated for as long as it is used.
func (f *MemoryFile) MapInternal(fr FileRange) ([]byte, error) {
	if fr.End < fr.Start {
		return nil, fmt.Errorf("pgalloc: MapInternal of invalid range %v: %w", fr, unix.EINVAL)
	}
	f.mu.Lock()
	size, closed := f.fileSize, f.closed
	f.mu.Unlock()
	if closed || fr.End > size {
		return nil, fmt.Errorf("pgalloc: MapInternal %v beyond the memory file (%d bytes): %w", fr, size, unix.EFAULT)
	}
	if fr.Length() == 0 {
		return []byte{}, nil
	}
	return unsafe.Slice((*byte)(unsafe.Add(f.base, fr.Start)), fr.Length()), nil
}

// UsedBytes returns the bytes currently allocated.
func (f *MemoryFile) UsedBytes() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}

// CommittedBytes returns the bytes of host memory the file holds now (pages
// touched and not decommitted), from the host's block count of the memfd.
func (f *MemoryFile) CommittedBytes() uint64 {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return 0
	}
	return uint64(st.Blocks) * 512
}

// Close unmaps the file from the Sentry and closes the memfd. Mappings of
// the file elsewhere (platform stubs) keep its pages alive until removed.
func (f *MemoryFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.extents = nil
	f.used = 0
	unix.Syscall(unix.SYS_MUNMAP, uintptr(f.base), uintptr(f.reservation), 0)
	if err := unix.Close(f.fd); err != nil {
		return fmt.Errorf("pgalloc: closing memory file: %w", err)
	}
	return nil
}
