package mm

import (
	"context"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"golang.org/x/sys/unix"
)

// MMap creates a mapping as mmap(2) does once the syscall layer has turned
// its flags into opts (and, for a file, the file has filled in Mappable).
// It returns the address chosen.
func (mm *MemoryManager) MMap(ctx context.Context, opts memmap.MMapOpts) (hostarch.Addr, error) {
	if opts.Length == 0 {
		return 0, unix.EINVAL
	}
	length, ok := hostarch.PageRoundUp(opts.Length)
	if !ok {
		return 0, unix.ENOMEM
	}
	if opts.Offset%hostarch.PageSize != 0 {
		return 0, unix.EINVAL
	}
	if opts.Mappable != nil && opts.Offset+length < opts.Offset {
		return 0, unix.EOVERFLOW
	}
	if !opts.MaxPerms.SupersetOf(opts.Perms) {
		return 0, unix.EACCES
	}
	if opts.Mappable == nil && !opts.Private {
		// Shared anonymous memory is a memory object of its own, so
		// that fork's children see the same pages.
		obj, err := NewMemoryObject(mm.mf, length)
		if err != nil {
			return 0, err
		}
		// Like Linux's shmem file, the object replaces any file as the
		// mapping's identity; the vma takes its own reference.
		opts.Mappable, opts.Offset, opts.MappingIdentity = obj, 0, obj
		defer obj.DecRef(ctx)
		if opts.Hint == "" {
			opts.Hint = "/dev/zero (deleted)"
		}
	}

	mm.mu.Lock()
	defer mm.mu.Unlock()
	dataGrow := uint64(0)
	if opts.Private && opts.Perms.Write && !opts.GrowsDown {
		dataGrow = length
	}
	grow := length
	if opts.Fixed && opts.Unmap && !opts.NoReplace {
		if ar, ok := opts.Addr.ToRange(length); ok {
			t, d := mm.replacedLocked(ar)
			grow -= t
			dataGrow -= min(d, dataGrow)
		}
	}
	if err := mm.checkGrowthLocked(grow, dataGrow); err != nil {
		return 0, err
	}
	var addr hostarch.Addr
	if opts.Fixed {
		if !opts.Addr.IsPageAligned() {
			return 0, unix.EINVAL
		}
		ar, ok := opts.Addr.ToRange(length)
		if !ok || ar.Start < mm.layout.MinAddr || ar.End > mm.layout.MaxAddr {
			return 0, unix.ENOMEM
		}
		if !mm.isFree(ar) {
			if opts.NoReplace || !opts.Unmap {
				return 0, unix.EEXIST
			}
			mm.removeRangeLocked(ctx, ar)
		}
		addr = opts.Addr
	} else {
		var found bool
		addr, found = mm.findAvailableLocked(opts.Addr, length, opts.Map32Bit)
		if !found {
			return 0, unix.ENOMEM
		}
	}
	ar := hostarch.AddrRange{Start: addr, End: addr + hostarch.Addr(length)}
	v := &vma{
		start: ar.Start, end: ar.End, perms: opts.Perms, maxPerms: opts.MaxPerms,
		private: opts.Private, growsDown: opts.GrowsDown, mappable: opts.Mappable,
		off: opts.Offset, id: opts.MappingIdentity, hint: opts.Hint,
	}
	if v.mappable != nil {
		if err := v.mappable.AddMapping(ctx, mm.mappingSpace(), ar, v.off, v.writableShared()); err != nil {
			return 0, fmt.Errorf("adding mapping: %w", err)
		}
	}
	if v.id != nil {
		v.id.IncRef()
	}
	mm.insertVMA(ctx, v)
	if opts.Precommit {
		nv, _ := mm.findVMA(addr)
		if err := mm.populateLocked(ctx, nv, ar); err != nil {
			// Linux ignores population failures; the pages fault later.
			_ = err
		}
	}
	return addr, nil
}

// MUnmap removes the mappings in [addr, addr+length) as munmap(2) does.
func (mm *MemoryManager) MUnmap(ctx context.Context, addr hostarch.Addr, length uint64) error {
	if !addr.IsPageAligned() || length == 0 {
		return unix.EINVAL
	}
	l, ok := hostarch.PageRoundUp(length)
	if !ok {
		return unix.EINVAL
	}
	ar, ok := addr.ToRange(l)
	if !ok || ar.End > hostarch.MaxUserAddress+hostarch.PageSize {
		return unix.EINVAL
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.removeRangeLocked(ctx, ar)
	return nil
}

// MProtect changes the protection of [addr, addr+length) as mprotect(2)
// does: ENOMEM if part of the range is unmapped, EACCES if a mapping's
// maximum permissions forbid it.
func (mm *MemoryManager) MProtect(ctx context.Context, addr hostarch.Addr, length uint64, perms hostarch.AccessType, growsDown bool) error {
	return mm.MProtectWith(ctx, addr, length, perms, growsDown, false)
}

// MProtectWith is MProtect for a task with personality(2)'s
// READ_IMPLIES_EXEC when readImpliesExec is set: the mappings that may be
// executable also become executable.
func (mm *MemoryManager) MProtectWith(ctx context.Context, addr hostarch.Addr, length uint64, perms hostarch.AccessType, growsDown, readImpliesExec bool) error {
	if !addr.IsPageAligned() {
		return unix.EINVAL
	}
	l, ok := hostarch.PageRoundUp(length)
	if !ok {
		return unix.ENOMEM
	}
	if l == 0 {
		return nil
	}
	ar, ok := addr.ToRange(l)
	if !ok {
		return unix.ENOMEM
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if growsDown {
		// PROT_GROWSDOWN extends the change down to the start of a
		// MAP_GROWSDOWN vma.
		v, _ := mm.findVMA(ar.Start)
		if v == nil || !v.growsDown {
			return unix.EINVAL
		}
		ar.Start = v.start
	}
	if !mm.coveredLocked(ar) {
		return unix.ENOMEM
	}
	vmaPerms := func(v *vma) hostarch.AccessType {
		p := perms
		if readImpliesExec && v.maxPerms.Execute {
			p.Execute = true
		}
		return p
	}
	for i := mm.findIndex(ar.Start); i < len(mm.vmas) && mm.vmas[i].start < ar.End; i++ {
		if !mm.vmas[i].maxPerms.SupersetOf(perms) {
			return unix.EACCES
		}
	}
	mm.splitAt(ar.Start)
	mm.splitAt(ar.End)
	first := mm.findIndex(ar.Start)
	last := first
	for i := first; i < len(mm.vmas) && mm.vmas[i].start < ar.End; i++ {
		mm.vmas[i].perms = vmaPerms(mm.vmas[i])
		last = i
	}
	// Re-map lazily with the new permissions.
	mm.unmapFromASLocked(ar)
	for i := last; i >= first; i-- {
		if i < len(mm.vmas) {
			mm.mergeAround(ctx, i)
		}
	}
	return nil
}

// Brk sets the program break as brk(2) does and returns the new break;
// on failure (or for an address below the heap) it returns the current one.
func (mm *MemoryManager) Brk(ctx context.Context, addr hostarch.Addr) hostarch.Addr {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if addr < mm.brkStart || mm.brkStart == 0 {
		return mm.brkEnd
	}
	oldEnd := mm.brkEnd.MustRoundUp()
	newEnd, ok := addr.RoundUp()
	if !ok || newEnd > mm.layout.MaxAddr || uint64(newEnd-mm.brkStart) > 1<<40 {
		return mm.brkEnd
	}
	switch {
	case newEnd > oldEnd:
		ar := hostarch.AddrRange{Start: oldEnd, End: newEnd}
		if !mm.isFreeWithGuard(ar) {
			return mm.brkEnd
		}
		if mm.checkGrowthLocked(uint64(ar.Length()), uint64(ar.Length())) != nil {
			return mm.brkEnd
		}
		mm.insertVMA(ctx, &vma{
			start: ar.Start, end: ar.End, perms: hostarch.ReadWrite, maxPerms: hostarch.AnyAccess,
			private: true, hint: "[heap]",
		})
	case newEnd < oldEnd:
		mm.removeRangeLocked(ctx, hostarch.AddrRange{Start: newEnd, End: oldEnd})
	}
	mm.brkEnd = addr
	return addr
}

// MRemapOpts are the flags of mremap(2).
type MRemapOpts struct {
	MayMove bool          // MREMAP_MAYMOVE
	Fixed   bool          // MREMAP_FIXED
	NewAddr hostarch.Addr // with Fixed
	// DontUnmap (MREMAP_DONTUNMAP, with MayMove and equal sizes) moves
	// the pages but leaves the old range mapped as it was, empty: private
	// anonymous memory reads zeroes there again, file and shared mappings
	// their file.
	DontUnmap bool
}

// MRemap resizes and/or moves the mapping at oldAddr as mremap(2) does.
func (mm *MemoryManager) MRemap(ctx context.Context, oldAddr hostarch.Addr, oldSize, newSize uint64, opts MRemapOpts) (hostarch.Addr, error) {
	if !oldAddr.IsPageAligned() || newSize == 0 || (opts.Fixed && !opts.MayMove) ||
		(opts.DontUnmap && (!opts.MayMove || oldSize != newSize)) {
		return 0, unix.EINVAL
	}
	oldSize, ok1 := hostarch.PageRoundUp(oldSize)
	newSize, ok2 := hostarch.PageRoundUp(newSize)
	if !ok1 || !ok2 {
		return 0, unix.EINVAL
	}
	oldAR, ok := oldAddr.ToRange(oldSize)
	if !ok {
		return 0, unix.EINVAL
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	v, _ := mm.findVMA(oldAddr)
	if v == nil {
		return 0, unix.EFAULT
	}
	if oldSize == 0 {
		// Duplicate a shared mapping (only meaningful for shared ones).
		if v.private || v.mappable == nil || !opts.MayMove {
			return 0, unix.EINVAL
		}
	} else if oldAR.End > v.end {
		return 0, unix.EFAULT
	}
	if opts.DontUnmap {
		// The old range stays mapped: the new one is growth.
		if err := mm.checkVMAGrowthLocked(v, newSize); err != nil {
			return 0, err
		}
	}

	if opts.Fixed {
		if !opts.NewAddr.IsPageAligned() {
			return 0, unix.EINVAL
		}
		newAR, ok := opts.NewAddr.ToRange(newSize)
		if !ok || newAR.Start < mm.layout.MinAddr || newAR.End > mm.layout.MaxAddr {
			return 0, unix.EINVAL
		}
		if newAR.Overlaps(oldAR) {
			return 0, unix.EINVAL
		}
		mm.removeRangeLocked(ctx, newAR)
		if newSize < oldSize {
			mm.removeRangeLocked(ctx, hostarch.AddrRange{Start: oldAR.Start + hostarch.Addr(newSize), End: oldAR.End})
			oldAR.End = oldAR.Start + hostarch.Addr(newSize)
			oldSize = newSize
		}
		return mm.moveLocked(ctx, oldAR, newAR, opts.DontUnmap)
	}

	if opts.DontUnmap {
		addr, found := mm.findAvailableLocked(0, newSize, false)
		if !found {
			return 0, unix.ENOMEM
		}
		return mm.moveLocked(ctx, oldAR, hostarch.AddrRange{Start: addr, End: addr + hostarch.Addr(newSize)}, true)
	}
	if newSize <= oldSize && oldSize != 0 {
		mm.removeRangeLocked(ctx, hostarch.AddrRange{Start: oldAR.Start + hostarch.Addr(newSize), End: oldAR.End})
		return oldAddr, nil
	}
	// Growing (or duplicating) must fit the address-space limits.
	if grow := newSize - oldSize; grow > 0 {
		if err := mm.checkVMAGrowthLocked(v, grow); err != nil {
			return 0, err
		}
	}
	// Grow in place if the vma ends at the old end and the space after it
	// is free.
	if oldSize != 0 && oldAR.End == v.end {
		ext := hostarch.AddrRange{Start: v.end, End: oldAR.Start + hostarch.Addr(newSize)}
		if ext.End > ext.Start && ext.End <= mm.layout.MaxAddr && mm.isFreeWithGuard(ext) {
			if v.mappable != nil {
				if err := v.mappable.AddMapping(ctx, mm.mappingSpace(), ext, v.mappableRange(ext).Start, v.writableShared()); err != nil {
					return 0, err
				}
			}
			v.end = ext.End
			_, i := mm.findVMA(v.start)
			mm.mergeAround(ctx, i)
			return oldAddr, nil
		}
	}
	if !opts.MayMove {
		return 0, unix.ENOMEM
	}
	addr, found := mm.findAvailableLocked(0, newSize, false)
	if !found {
		return 0, unix.ENOMEM
	}
	return mm.moveLocked(ctx, oldAR, hostarch.AddrRange{Start: addr, End: addr + hostarch.Addr(newSize)}, false)
}

// moveLocked moves the pages and attributes of oldAR (within one vma) to
// newAR, which is free; newAR may be longer (the tail is then mapped like
// the source's continuation) or oldAR empty (duplicate a shared mapping).
// With keepOld the old range stays mapped, emptied of the pages that moved.
func (mm *MemoryManager) moveLocked(ctx context.Context, oldAR, newAR hostarch.AddrRange, keepOld bool) (hostarch.Addr, error) {
	v, _ := mm.findVMA(oldAR.Start)
	if v == nil {
		return 0, unix.EFAULT
	}
	nv := *v
	nv.start, nv.end = newAR.Start, newAR.End
	if v.mappable != nil {
		nv.off = v.mappableRange(oldAR).Start
		if err := v.mappable.CopyMapping(ctx, mm.mappingSpace(), oldAR, newAR, nv.off, nv.writableShared()); err != nil {
			return 0, err
		}
	}
	if nv.id != nil {
		nv.id.IncRef()
	}
	// Move resident pages; their references go with them.
	delta := newAR.Start - oldAR.Start
	if oldAR.Length() > 0 {
		mm.unmapFromASLocked(oldAR)
		for addr := oldAR.Start; addr < oldAR.End; addr += hostarch.PageSize {
			if p, ok := mm.pages[addr]; ok {
				delete(mm.pages, addr)
				p.mapped, p.mappedWritable = false, false
				mm.pages[addr+delta] = p
			}
		}
		if !keepOld {
			mm.removeRangeLocked(ctx, oldAR)
		}
	}
	mm.insertVMA(ctx, &nv)
	return newAR.Start, nil
}

// Advice values of madvise(2) that change what the Sentry does.
const (
	MADV_DONTNEED = 4
	MADV_FREE     = 8
	MADV_REMOVE   = 9
)

// MAdvise implements madvise(2); only MADV_DONTNEED and MADV_FREE have an
// effect (pages dropped: private mappings read zeroes or the file again).
// Other known advice is accepted and ignored.
func (mm *MemoryManager) MAdvise(ctx context.Context, addr hostarch.Addr, length uint64, advice int) error {
	if !addr.IsPageAligned() {
		return unix.EINVAL
	}
	l, ok := hostarch.PageRoundUp(length)
	if !ok {
		return unix.EINVAL
	}
	ar, ok := addr.ToRange(l)
	if !ok {
		return unix.EINVAL
	}
	switch advice {
	case unix.MADV_NORMAL, unix.MADV_RANDOM, unix.MADV_SEQUENTIAL, unix.MADV_WILLNEED,
		unix.MADV_DONTFORK, unix.MADV_DOFORK, unix.MADV_MERGEABLE, unix.MADV_UNMERGEABLE,
		unix.MADV_HUGEPAGE, unix.MADV_NOHUGEPAGE, unix.MADV_DONTDUMP, unix.MADV_DODUMP,
		unix.MADV_WIPEONFORK, unix.MADV_KEEPONFORK, unix.MADV_COLD, unix.MADV_PAGEOUT:
		mm.mu.Lock()
		defer mm.mu.Unlock()
		if !mm.coveredLocked(ar) {
			return unix.ENOMEM
		}
		return nil
	case MADV_DONTNEED, MADV_FREE:
		mm.mu.Lock()
		defer mm.mu.Unlock()
		if !mm.coveredLocked(ar) {
			return unix.ENOMEM
		}
		mm.dropPagesLocked(ar, nil)
		return nil
	case MADV_REMOVE:
		return unix.EOPNOTSUPP
	default:
		return unix.EINVAL
	}
}

// Fork returns a copy of mm for a child process: private mappings become
// copy-on-write in both, shared ones stay shared. The copy has no platform
// address space yet.
func (mm *MemoryManager) Fork(ctx context.Context) (*MemoryManager, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	c := New(mm.mf, mm.layout)
	c.brkStart, c.brkEnd = mm.brkStart, mm.brkEnd
	if mm.exe != nil {
		mm.exe.IncRef()
		c.exe = mm.exe
	}
	for _, v := range mm.vmas {
		nv := *v
		if nv.mappable != nil {
			if err := nv.mappable.CopyMapping(ctx, c.mappingSpace(), v.rng(), v.rng(), v.off, v.writableShared()); err != nil {
				c.mu.Lock()
				c.users = 1
				c.mu.Unlock()
				c.DecUsers(ctx)
				return nil, err
			}
		}
		if nv.id != nil {
			nv.id.IncRef()
		}
		c.vmas = append(c.vmas, &nv)
		if v.private {
			// The parent must fault before writing again.
			mm.unmapFromASLockedIfWritable(v.rng())
		}
	}
	for addr, p := range mm.pages {
		v, _ := mm.findVMA(addr)
		if v == nil {
			continue
		}
		np := &page{off: p.off, owned: p.owned}
		if p.owned {
			mm.mf.IncRef(pgRange(p.off))
			if v.private {
				p.cow, np.cow = true, true
			}
		}
		c.pages[addr] = np
	}
	return c, nil
}

// unmapFromASLockedIfWritable unmaps ar from the platform if any page of
// it is mapped writable there.
func (mm *MemoryManager) unmapFromASLockedIfWritable(ar hostarch.AddrRange) {
	if mm.as == nil {
		return
	}
	for addr := ar.Start; addr < ar.End; addr += hostarch.PageSize {
		if p, ok := mm.pages[addr]; ok && p.mappedWritable {
			mm.unmapFromASLocked(ar)
			return
		}
		if ar.Length()/hostarch.PageSize > uint64(len(mm.pages)) {
			break
		}
	}
	if ar.Length()/hostarch.PageSize > uint64(len(mm.pages)) {
		for addr, p := range mm.pages {
			if ar.Contains(addr) && p.mappedWritable {
				mm.unmapFromASLocked(ar)
				return
			}
		}
	}
}

// FindAvailable returns where a mapping of length bytes would go if mmap
// chose (exec uses it to place position-independent images).
func (mm *MemoryManager) FindAvailable(length uint64) (hostarch.Addr, bool) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.findAvailableLocked(0, length, false)
}

// CheckMapped returns ENOMEM unless every page of [addr, addr+length) is
// mapped (msync, mlock); EINVAL for an unaligned addr.
func (mm *MemoryManager) CheckMapped(addr hostarch.Addr, length uint64) error {
	if !addr.IsPageAligned() {
		return unix.EINVAL
	}
	l, ok := hostarch.PageRoundUp(length)
	if !ok {
		return unix.ENOMEM
	}
	ar, ok := addr.ToRange(l)
	if !ok {
		return unix.ENOMEM
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if !mm.coveredLocked(ar) {
		return unix.ENOMEM
	}
	return nil
}

// Residency implements mincore(2)'s answer: one byte per page of
// [addr, addr+length), 1 where the page is resident.
func (mm *MemoryManager) Residency(addr hostarch.Addr, length uint64) ([]byte, error) {
	if err := mm.CheckMapped(addr, length); err != nil {
		return nil, err
	}
	n := (length + hostarch.PageSize - 1) / hostarch.PageSize
	if n > 1<<24 {
		return nil, unix.ENOMEM
	}
	out := make([]byte, n)
	mm.mu.Lock()
	defer mm.mu.Unlock()
	for i := range out {
		if _, ok := mm.pages[addr+hostarch.Addr(uint64(i)*hostarch.PageSize)]; ok {
			out[i] = 1
		}
	}
	return out, nil
}
