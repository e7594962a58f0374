// Package memmap owns the vocabulary between things that can be mapped into
// an application's address space (files, shared memory) and the memory
// manager that maps them: ranges of a mappable object, the translation of
// those ranges to pages of the memory file, and the options of one mmap.
//
// A Mappable never knows about page tables: the memory manager asks it for
// Translations when it takes a fault and tells it which address ranges map
// it (AddMapping/RemoveMapping), so that the Mappable can Invalidate them
// when its contents move (truncate, hole punching).
package memmap

import (
	"context"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
)

// MappableRange is the half-open range [Start, End) of offsets into a
// Mappable.
type MappableRange struct {
	Start uint64
	End   uint64
}

// Length returns the number of bytes in r.
func (r MappableRange) Length() uint64 { return r.End - r.Start }

// WellFormed reports whether Start <= End.
func (r MappableRange) WellFormed() bool { return r.Start <= r.End }

// Contains reports whether off lies in r.
func (r MappableRange) Contains(off uint64) bool { return r.Start <= off && off < r.End }

// IsSupersetOf reports whether o lies entirely within r.
func (r MappableRange) IsSupersetOf(o MappableRange) bool {
	return r.Start <= o.Start && o.End <= r.End
}

// Intersect returns the overlap of r and o (empty at r.Start if none).
func (r MappableRange) Intersect(o MappableRange) MappableRange {
	if r.Start < o.Start {
		r.Start = o.Start
	}
	if r.End > o.End {
		r.End = o.End
	}
	if r.End < r.Start {
		r.End = r.Start
	}
	return r
}

func (r MappableRange) String() string { return fmt.Sprintf("[%#x, %#x)", r.Start, r.End) }

// Translation says that the bytes Source of a Mappable live at Offset in
// File, and may be mapped with at most Perms.
type Translation struct {
	Source MappableRange
	File   *pgalloc.MemoryFile
	Offset uint64
	Perms  hostarch.AccessType
}

// FileRange returns the part of File that backs Source.
func (t Translation) FileRange() pgalloc.FileRange {
	return pgalloc.FileRange{Start: t.Offset, End: t.Offset + t.Source.Length()}
}

// InvalidateOpts modifies an invalidation.
type InvalidateOpts struct {
	// InvalidatePrivate also drops private copies made from the Mappable
	// (truncation does this: the pages beyond EOF must SIGBUS).
	InvalidatePrivate bool
}

// MappingSpace is an address space that maps Mappables: the memory manager.
type MappingSpace interface {
	// Invalidate forgets every translation in ar; the next access
	// re-translates. ar is page aligned.
	Invalidate(ar hostarch.AddrRange, opts InvalidateOpts)
}

// Mappable is an object that can be mapped into address spaces.
type Mappable interface {
	// AddMapping tells the Mappable that ms maps [offset, offset+len(ar))
	// of it at ar. writable says whether the mapping is shared and
	// writable (so writes through it must reach the Mappable).
	AddMapping(ctx context.Context, ms MappingSpace, ar hostarch.AddrRange, offset uint64, writable bool) error
	// RemoveMapping undoes AddMapping.
	RemoveMapping(ctx context.Context, ms MappingSpace, ar hostarch.AddrRange, offset uint64, writable bool)
	// CopyMapping is AddMapping for a mapping copied from srcAR to dstAR
	// (mremap, fork), which inherits the source's translations.
	CopyMapping(ctx context.Context, ms MappingSpace, srcAR, dstAR hostarch.AddrRange, offset uint64, writable bool) error
	// Translate returns translations covering at least required (and as
	// much of optional as is cheap), in order. at is the access that
	// caused it. Past the end of the object it returns a *BusError.
	Translate(ctx context.Context, required, optional MappableRange, at hostarch.AccessType) ([]Translation, error)
}

// BusError is returned by Translate for offsets beyond the object's end;
// an access there raises SIGBUS rather than SIGSEGV.
type BusError struct {
	Err error
}

func (b *BusError) Error() string { return fmt.Sprintf("bus error: %v", b.Err) }

// Unwrap returns the underlying error.
func (b *BusError) Unwrap() error { return b.Err }

// MappingIdentity is the owner of a mapping, kept alive while the mapping
// exists (a *vfs.FileDescription is one).
type MappingIdentity interface {
	IncRef()
	DecRef(ctx context.Context)
}

// MMapOpts are the options of one mmap.
type MMapOpts struct {
	// Length is the length of the mapping, page aligned by the caller.
	Length uint64
	// Offset is the offset into Mappable, page aligned.
	Offset uint64
	// Addr is the hint or, with Fixed, the exact address.
	Addr hostarch.Addr
	// Fixed means Addr is mandatory (MAP_FIXED or MAP_FIXED_NOREPLACE).
	Fixed bool
	// Unmap allows Fixed to replace existing mappings (MAP_FIXED without
	// MAP_FIXED_NOREPLACE).
	Unmap bool
	// NoReplace is MAP_FIXED_NOREPLACE: fail with EEXIST on overlap.
	NoReplace bool
	// Map32Bit is MAP_32BIT: place the mapping in the low 2 GiB.
	Map32Bit bool
	// Private is MAP_PRIVATE: writes are copied, never reach Mappable.
	Private bool
	// GrowsDown is MAP_GROWSDOWN.
	GrowsDown bool
	// Precommit is MAP_POPULATE: fault every page in now.
	Precommit bool
	// Perms is the initial protection; MaxPerms bounds later mprotect.
	Perms    hostarch.AccessType
	MaxPerms hostarch.AccessType
	// Mappable is what is mapped; nil means anonymous memory.
	Mappable Mappable
	// MappingIdentity is kept alive (IncRef) while the mapping exists.
	MappingIdentity MappingIdentity
	// Hint is the name shown in /proc/[pid]/maps ("[stack]", a path).
	Hint string
}
