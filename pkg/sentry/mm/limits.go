package mm

import (
	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

// Address-space rlimits. The kernel tells the memory manager the
// process's RLIMIT_AS and RLIMIT_DATA (SetLimits) whenever they change,
// so that mmap, brk and mremap check them under the mm's own lock.

// noLimit is RLIM_INFINITY.
const noLimit = ^uint64(0)

// SetLimits sets the bytes of address space (RLIMIT_AS) and of data —
// private writable mappings and the heap — (RLIMIT_DATA) the address
// space may hold; ^uint64(0) is no limit.
func (mm *MemoryManager) SetLimits(as, data uint64) {
	mm.mu.Lock()
	mm.limitAS, mm.limitData = as, data
	mm.mu.Unlock()
}

// isData reports whether v counts toward RLIMIT_DATA as Linux counts it:
// private, writable, not a stack.
func (v *vma) isData() bool { return v.private && v.perms.Write && !v.growsDown }

// usageLocked returns the bytes mapped and the bytes of data.
func (mm *MemoryManager) usageLocked() (total, data uint64) {
	for _, v := range mm.vmas {
		n := uint64(v.end - v.start)
		total += n
		if v.isData() {
			data += n
		}
	}
	return total, data
}

// VirtualSize returns the bytes mapped (VmSize).
func (mm *MemoryManager) VirtualSize() uint64 {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	total, _ := mm.usageLocked()
	return total
}

// checkGrowthLocked fails with ENOMEM if adding grow bytes (dataGrow of
// them data) to the address space would pass its limits. The zero value
// of the limits (an mm that was never told) means none.
func (mm *MemoryManager) checkGrowthLocked(grow, dataGrow uint64) error {
	as, dl := mm.limitAS, mm.limitData
	if (as == 0 || as == noLimit) && (dl == 0 || dl == noLimit) {
		return nil
	}
	total, data := mm.usageLocked()
	if as != 0 && as != noLimit && total+grow > as {
		return unix.ENOMEM
	}
	if dl != 0 && dl != noLimit && dataGrow > 0 && data+dataGrow > dl {
		return unix.ENOMEM
	}
	return nil
}

// replacedLocked returns the bytes (and data bytes) of ar already mapped,
// which a MAP_FIXED mapping over them does not add.
func (mm *MemoryManager) replacedLocked(ar hostarch.AddrRange) (total, data uint64) {
	for _, v := range mm.vmas {
		s, e := max(v.start, ar.Start), min(v.end, ar.End)
		if s >= e {
			continue
		}
		total += uint64(e - s)
		if v.isData() {
			data += uint64(e - s)
		}
	}
	return total, data
}

// checkVMAGrowthLocked is checkGrowthLocked for grow more bytes mapped
// like v, which count against RLIMIT_DATA when v is data.
func (mm *MemoryManager) checkVMAGrowthLocked(v *vma, grow uint64) error {
	dataGrow := uint64(0)
	if v.isData() {
		dataGrow = grow
	}
	return mm.checkGrowthLocked(grow, dataGrow)
}
