package mm

import (
	"context"
	"sort"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
)

// vma is one virtual memory area: a page-aligned range with uniform
// attributes. mm.vmas keeps them sorted and disjoint; neighbours with equal
// attributes are merged.
type vma struct {
	start, end hostarch.Addr
	perms      hostarch.AccessType
	maxPerms   hostarch.AccessType
	private    bool
	growsDown  bool
	// mappable is nil for private anonymous memory.
	mappable memmap.Mappable
	// off is the offset into mappable of start.
	off uint64
	// id is held (one reference per vma) while the vma exists.
	id   memmap.MappingIdentity
	hint string
}

func (v *vma) rng() hostarch.AddrRange { return hostarch.AddrRange{Start: v.start, End: v.end} }

// writableShared reports whether writes through v reach its Mappable,
// which is what AddMapping's writable argument means.
func (v *vma) writableShared() bool { return !v.private && v.maxPerms.Write }

// mappableRange returns the offsets of v's mappable that ar maps.
func (v *vma) mappableRange(ar hostarch.AddrRange) memmap.MappableRange {
	s := v.off + uint64(ar.Start-v.start)
	return memmap.MappableRange{Start: s, End: s + ar.Length()}
}

// canMerge reports whether b can extend a (a directly below b).
func canMerge(a, b *vma) bool {
	if a.end != b.start || a.perms != b.perms || a.maxPerms != b.maxPerms ||
		a.private != b.private || a.growsDown != b.growsDown || a.mappable != b.mappable ||
		a.id != b.id || a.hint != b.hint {
		return false
	}
	return a.mappable == nil || a.off+uint64(a.end-a.start) == b.off
}

// findIndex returns the index of the first vma ending above addr (the one
// containing addr, or the next one), or len(mm.vmas).
func (mm *MemoryManager) findIndex(addr hostarch.Addr) int {
	return sort.Search(len(mm.vmas), func(i int) bool { return mm.vmas[i].end > addr })
}

// findVMA returns the vma containing addr and its index, or nil.
func (mm *MemoryManager) findVMA(addr hostarch.Addr) (*vma, int) {
	i := mm.findIndex(addr)
	if i < len(mm.vmas) && mm.vmas[i].start <= addr {
		return mm.vmas[i], i
	}
	return nil, i
}

// isFree reports whether no vma overlaps ar.
func (mm *MemoryManager) isFree(ar hostarch.AddrRange) bool {
	i := mm.findIndex(ar.Start)
	return i == len(mm.vmas) || mm.vmas[i].start >= ar.End
}

// splitAt makes addr a vma boundary if a vma strictly contains it.
func (mm *MemoryManager) splitAt(addr hostarch.Addr) {
	v, i := mm.findVMA(addr)
	if v == nil || v.start == addr {
		return
	}
	upper := *v
	upper.start = addr
	if v.mappable != nil {
		upper.off = v.off + uint64(addr-v.start)
	}
	if upper.id != nil {
		upper.id.IncRef()
	}
	v.end = addr
	mm.vmas = append(mm.vmas, nil)
	copy(mm.vmas[i+2:], mm.vmas[i+1:])
	mm.vmas[i+1] = &upper
}

// mergeAround merges the vma at index i with its neighbours where possible.
func (mm *MemoryManager) mergeAround(ctx context.Context, i int) {
	if i+1 < len(mm.vmas) && canMerge(mm.vmas[i], mm.vmas[i+1]) {
		mm.mergeWithNext(ctx, i)
	}
	if i > 0 && i < len(mm.vmas) && canMerge(mm.vmas[i-1], mm.vmas[i]) {
		mm.mergeWithNext(ctx, i-1)
	}
}

func (mm *MemoryManager) mergeWithNext(ctx context.Context, i int) {
	next := mm.vmas[i+1]
	mm.vmas[i].end = next.end
	if next.id != nil {
		next.id.DecRef(ctx)
	}
	mm.vmas = append(mm.vmas[:i+1], mm.vmas[i+2:]...)
}

// insertVMA adds v, which must not overlap any vma, and merges it with its
// neighbours. It takes over the caller's reference on v.id.
func (mm *MemoryManager) insertVMA(ctx context.Context, v *vma) {
	i := mm.findIndex(v.start)
	mm.vmas = append(mm.vmas, nil)
	copy(mm.vmas[i+1:], mm.vmas[i:])
	mm.vmas[i] = v
	mm.mergeAround(ctx, i)
}

// removeRangeLocked unmaps ar: the vmas are cut at its ends and the parts
// inside are dropped with their pages, Mappable registrations and
// identities.
func (mm *MemoryManager) removeRangeLocked(ctx context.Context, ar hostarch.AddrRange) {
	if ar.Start >= ar.End {
		return
	}
	mm.splitAt(ar.Start)
	mm.splitAt(ar.End)
	i := mm.findIndex(ar.Start)
	j := i
	for j < len(mm.vmas) && mm.vmas[j].start < ar.End {
		v := mm.vmas[j]
		mm.dropPagesLocked(v.rng(), nil)
		if v.mappable != nil {
			v.mappable.RemoveMapping(ctx, mm.mappingSpace(), v.rng(), v.off, v.writableShared())
		}
		if v.id != nil {
			v.id.DecRef(ctx)
		}
		j++
	}
	mm.vmas = append(mm.vmas[:i], mm.vmas[j:]...)
}

// coveredLocked reports whether vmas cover every byte of ar.
func (mm *MemoryManager) coveredLocked(ar hostarch.AddrRange) bool {
	addr := ar.Start
	for i := mm.findIndex(ar.Start); addr < ar.End; i++ {
		if i >= len(mm.vmas) || mm.vmas[i].start > addr {
			return false
		}
		addr = mm.vmas[i].end
	}
	return true
}

// findAvailableLocked chooses where a new mapping of length bytes goes:
// the hint if that range is free, otherwise the highest free range below
// the mmap base (Linux's top-down policy), otherwise the lowest free range
// above it. map32 restricts the search to the low 2 GiB.
func (mm *MemoryManager) findAvailableLocked(hint hostarch.Addr, length uint64, map32 bool) (hostarch.Addr, bool) {
	lo, hi := mm.layout.MinAddr, mm.layout.MaxAddr
	if map32 {
		if lo < 0x40000000 {
			lo = 0x40000000
		}
		hi = 0x80000000
	}
	if hint != 0 {
		h := hint.RoundDown()
		if ar, ok := h.ToRange(length); ok && ar.Start >= lo && ar.End <= hi && mm.isFreeWithGuard(ar) {
			return h, true
		}
	}
	base := mm.layout.MmapBase
	if base > hi || base == 0 {
		base = hi
	}
	// Top-down: walk the gaps below base from the highest.
	gapEnd := base
	for i := mm.findIndex(base) - 1; ; i-- {
		gapStart := lo
		var above *vma
		if i+1 < len(mm.vmas) {
			above = mm.vmas[i+1]
		}
		if i >= 0 {
			gapStart = max(mm.vmas[i].end, lo)
		}
		end := gapEnd
		if above != nil && above.growsDown && above.start <= end+stackGuardGap {
			end = min(end, above.start-min(above.start, stackGuardGap))
		}
		if end > gapStart && uint64(end-gapStart) >= length {
			return (end - hostarch.Addr(length)).RoundDown(), true
		}
		if i < 0 {
			break
		}
		gapEnd = min(mm.vmas[i].start, base)
	}
	// Bottom-up above base.
	start := base
	for i := mm.findIndex(base); ; i++ {
		end := hi
		if i < len(mm.vmas) {
			end = min(mm.vmas[i].start, hi)
			if mm.vmas[i].growsDown {
				end -= min(end, stackGuardGap)
			}
		}
		if end > start && uint64(end-start) >= length {
			return start, true
		}
		if i >= len(mm.vmas) || mm.vmas[i].end >= hi {
			return 0, false
		}
		start = max(mm.vmas[i].end, base)
	}
}

// isFreeWithGuard is isFree that also keeps clear of a stack's guard gap.
func (mm *MemoryManager) isFreeWithGuard(ar hostarch.AddrRange) bool {
	i := mm.findIndex(ar.Start)
	if i == len(mm.vmas) {
		return true
	}
	v := mm.vmas[i]
	if v.start < ar.End {
		return false
	}
	return !v.growsDown || uint64(v.start-ar.End) >= stackGuardGap
}
