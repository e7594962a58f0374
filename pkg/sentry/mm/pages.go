package mm

import (
	"context"
	"errors"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// si_code values for SIGSEGV and SIGBUS (include/uapi/asm-generic/siginfo.h).
const (
	SEGV_MAPERR = 1
	SEGV_ACCERR = 2
	BUS_ADRERR  = 2
)

// FaultError says which signal an access that cannot be served raises.
type FaultError struct {
	Signo int32 // SIGSEGV or SIGBUS
	Code  int32 // SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR
	Addr  hostarch.Addr
	Err   error
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("fault at %v: signal %d code %d: %v", e.Addr, e.Signo, e.Code, e.Err)
}

// Unwrap returns EFAULT (or the Mappable's error), so callers copying for a
// syscall can simply return it.
func (e *FaultError) Unwrap() error { return e.Err }

func segv(addr hostarch.Addr, code int32) error {
	return &FaultError{Signo: int32(unix.SIGSEGV), Code: code, Addr: addr, Err: unix.EFAULT}
}

// effectiveAccess widens at the way x86 page tables do: write and execute
// imply read.
func permits(perms, at hostarch.AccessType) bool {
	if perms.Write || perms.Execute {
		perms.Read = true
	}
	return perms.SupersetOf(at)
}

// dropPagesLocked forgets the resident pages in ar for which keep is nil
// or returns true, releasing owned ones and unmapping them from the
// platform address space.
func (mm *MemoryManager) dropPagesLocked(ar hostarch.AddrRange, drop func(*page) bool) {
	unmapped := false
	release := func(addr hostarch.Addr, p *page) {
		if drop != nil && !drop(p) {
			return
		}
		if p.mapped {
			unmapped = true
		}
		if p.owned {
			mm.mf.DecRef(pgalloc.FileRange{Start: p.off, End: p.off + hostarch.PageSize})
		}
		delete(mm.pages, addr)
	}
	if ar.Length()/hostarch.PageSize <= uint64(len(mm.pages)) {
		for addr := ar.Start; addr < ar.End; addr += hostarch.PageSize {
			if p, ok := mm.pages[addr]; ok {
				release(addr, p)
			}
		}
	} else {
		for addr, p := range mm.pages {
			if ar.Contains(addr) {
				release(addr, p)
			}
		}
	}
	if unmapped && mm.as != nil {
		mm.as.Unmap(ar.Start, ar.Length())
	}
}

// unmapFromASLocked removes ar from the platform address space (so that
// the next access faults and re-maps with current permissions).
func (mm *MemoryManager) unmapFromASLocked(ar hostarch.AddrRange) {
	if mm.as == nil {
		return
	}
	any := false
	if ar.Length()/hostarch.PageSize <= uint64(len(mm.pages)) {
		for addr := ar.Start; addr < ar.End; addr += hostarch.PageSize {
			if p, ok := mm.pages[addr]; ok && p.mapped {
				p.mapped, p.mappedWritable, any = false, false, true
			}
		}
	} else {
		for addr, p := range mm.pages {
			if ar.Contains(addr) && p.mapped {
				p.mapped, p.mappedWritable, any = false, false, true
			}
		}
	}
	if any {
		mm.as.Unmap(ar.Start, ar.Length())
	}
}

// vmaForAccessLocked returns the vma containing addr, growing a
// MAP_GROWSDOWN vma down to it if addr lies just below one.
func (mm *MemoryManager) vmaForAccessLocked(addr hostarch.Addr) (*vma, error) {
	v, i := mm.findVMA(addr)
	if v != nil {
		return v, nil
	}
	if i < len(mm.vmas) && mm.vmas[i].growsDown {
		g := mm.vmas[i]
		newStart := addr.RoundDown()
		if uint64(g.end-newStart) <= maxStackSize && newStart >= mm.layout.MinAddr &&
			(i == 0 || mm.vmas[i-1].end+stackGuardGap <= newStart) {
			if g.mappable == nil {
				g.start = newStart
				return g, nil
			}
		}
	}
	return nil, segv(addr, SEGV_MAPERR)
}

// pageLocked makes the page at addr (page aligned) resident for an access
// at and returns it. Writes to private pages that are shared (copy-on-write
// or the Mappable's own) copy them first. A fresh run of anonymous pages is
// allocated around addr (up to limit) to save later faults.
func (mm *MemoryManager) pageLocked(ctx context.Context, v *vma, addr hostarch.Addr, at hostarch.AccessType, limit hostarch.Addr) (*page, error) {
	p, ok := mm.pages[addr]
	if !ok {
		if v.mappable == nil {
			return mm.allocateAnonLocked(addr, min(v.end, limit))
		}
		mr := v.mappableRange(hostarch.AddrRange{Start: addr, End: addr + hostarch.PageSize})
		ts, err := v.mappable.Translate(ctx, mr, mr, at)
		if err != nil {
			var be *memmap.BusError
			if errors.As(err, &be) {
				return nil, &FaultError{Signo: int32(unix.SIGBUS), Code: BUS_ADRERR, Addr: addr, Err: unix.EFAULT}
			}
			return nil, fmt.Errorf("translating %v: %w", mr, err)
		}
		if len(ts) == 0 || !ts[0].Source.Contains(mr.Start) || ts[0].File != mm.mf {
			return nil, fmt.Errorf("translating %v: bad translation: %w", mr, unix.EFAULT)
		}
		p = &page{off: ts[0].Offset + (mr.Start - ts[0].Source.Start)}
		mm.pages[addr] = p
	}
	if at.Write && v.private && (!p.owned || p.cow) {
		if err := mm.copyPageLocked(addr, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// allocateAnonLocked allocates zeroed pages for [addr, end) stopping at
// the first resident page or after faultAroundPages.
func (mm *MemoryManager) allocateAnonLocked(addr, end hostarch.Addr) (*page, error) {
	n := uint64(1)
	for n < faultAroundPages && addr+hostarch.Addr(n*hostarch.PageSize) < end {
		if _, ok := mm.pages[addr+hostarch.Addr(n*hostarch.PageSize)]; ok {
			break
		}
		n++
	}
	fr, err := mm.mf.Allocate(n * hostarch.PageSize)
	if err != nil {
		return nil, fmt.Errorf("allocating %d pages: %w", n, unix.ENOMEM)
	}
	for i := uint64(0); i < n; i++ {
		mm.pages[addr+hostarch.Addr(i*hostarch.PageSize)] = &page{off: fr.Start + i*hostarch.PageSize, owned: true}
	}
	return mm.pages[addr], nil
}

// copyPageLocked gives the page at addr a private copy (breaking COW).
func (mm *MemoryManager) copyPageLocked(addr hostarch.Addr, p *page) error {
	fr, err := mm.mf.Allocate(hostarch.PageSize)
	if err != nil {
		return fmt.Errorf("copy-on-write: %w", unix.ENOMEM)
	}
	src, err := mm.mf.MapInternal(pgalloc.FileRange{Start: p.off, End: p.off + hostarch.PageSize})
	if err != nil {
		mm.mf.DecRef(fr)
		return fmt.Errorf("copy-on-write: %w", err)
	}
	dst, err := mm.mf.MapInternal(fr)
	if err != nil {
		mm.mf.DecRef(fr)
		return fmt.Errorf("copy-on-write: %w", err)
	}
	copy(dst, src)
	if p.owned {
		mm.mf.DecRef(pgalloc.FileRange{Start: p.off, End: p.off + hostarch.PageSize})
	}
	if p.mapped && mm.as != nil {
		mm.as.Unmap(addr, hostarch.PageSize)
	}
	*p = page{off: fr.Start, owned: true}
	return nil
}

// mapPerms is what a page may be mapped with in the platform: the vma's
// permissions, without write where a write must first copy.
func mapPerms(v *vma, p *page) hostarch.AccessType {
	at := v.perms
	if v.private && (!p.owned || p.cow) {
		at.Write = false
	}
	return at
}

// HandleFault serves an application page fault at addr for access at: it
// makes the page resident (allocating, translating or copying it) and maps
// it into the platform address space. A *FaultError says which signal the
// application gets instead.
func (mm *MemoryManager) HandleFault(ctx context.Context, addr hostarch.Addr, at hostarch.AccessType) error {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	v, err := mm.vmaForAccessLocked(addr)
	if err != nil {
		return err
	}
	if !permits(v.perms, at) {
		return segv(addr, SEGV_ACCERR)
	}
	pa := addr.RoundDown()
	p, err := mm.pageLocked(ctx, v, pa, at, v.end)
	if err != nil {
		var fe *FaultError
		if errors.As(err, &fe) {
			fe.Addr = addr
		}
		return err
	}
	if mm.as == nil {
		return nil
	}
	// Map the faulting page and the resident, unmapped pages contiguous
	// in the memory file after it (fault-around) in one call.
	perms := mapPerms(v, p)
	n := uint64(1)
	for ; n < faultAroundPages; n++ {
		a := pa + hostarch.Addr(n*hostarch.PageSize)
		q, ok := mm.pages[a]
		if a >= v.end || !ok || q.mapped || q.off != p.off+n*hostarch.PageSize || mapPerms(v, q) != perms {
			break
		}
	}
	if err := mm.as.MapFile(pa, p.off, n*hostarch.PageSize, perms, false); err != nil {
		return fmt.Errorf("mapping %v: %w", pa, err)
	}
	for i := uint64(0); i < n; i++ {
		q := mm.pages[pa+hostarch.Addr(i*hostarch.PageSize)]
		q.mapped, q.mappedWritable = true, perms.Write
	}
	return nil
}

// populateLocked makes [ar) resident and mapped (MAP_POPULATE).
func (mm *MemoryManager) populateLocked(ctx context.Context, v *vma, ar hostarch.AddrRange) error {
	at := hostarch.Read
	if v.perms.Write && !v.private {
		at = hostarch.Write
	}
	for addr := ar.Start; addr < ar.End; addr += hostarch.PageSize {
		p, err := mm.pageLocked(ctx, v, addr, at, ar.End)
		if err != nil {
			return err
		}
		if mm.as != nil && !p.mapped {
			perms := mapPerms(v, p)
			if err := mm.as.MapFile(addr, p.off, hostarch.PageSize, perms, true); err != nil {
				return fmt.Errorf("populating %v: %w", addr, err)
			}
			p.mapped, p.mappedWritable = true, perms.Write
		}
	}
	return nil
}

// forEachPage runs fn on the internal mapping of each page of
// [addr, addr+n), making pages resident for at; it stops at the first
// byte that cannot be accessed and returns the count done and EFAULT.
func (mm *MemoryManager) forEachPage(ctx context.Context, addr hostarch.Addr, n int, at hostarch.AccessType, opts usermem.IOOpts, fn func(b []byte, done int)) (int, error) {
	if n == 0 {
		return 0, nil
	}
	if _, ok := addr.AddLength(uint64(n)); !ok {
		return 0, unix.EFAULT
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	done := 0
	for done < n {
		cur := addr + hostarch.Addr(done)
		v, err := mm.vmaForAccessLocked(cur)
		if err != nil {
			return done, unix.EFAULT
		}
		if !opts.IgnorePermissions && !permits(v.perms, at) {
			return done, unix.EFAULT
		}
		pa := cur.RoundDown()
		// A copy for the Sentry with IgnorePermissions still copies
		// private pages before writing (ptrace POKE never writes to a
		// file through a private mapping).
		p, err := mm.pageLocked(ctx, v, pa, at, v.end)
		if err != nil {
			return done, unix.EFAULT
		}
		b, err := mm.mf.MapInternal(pgalloc.FileRange{Start: p.off, End: p.off + hostarch.PageSize})
		if err != nil {
			return done, fmt.Errorf("mapping memory file: %w", err)
		}
		b = b[cur.PageOffset():]
		if len(b) > n-done {
			b = b[:n-done]
		}
		fn(b, done)
		done += len(b)
	}
	return done, nil
}

// CopyOut implements usermem.IO.CopyOut.
func (mm *MemoryManager) CopyOut(ctx context.Context, addr hostarch.Addr, src []byte, opts usermem.IOOpts) (int, error) {
	return mm.forEachPage(ctx, addr, len(src), hostarch.Write, opts, func(b []byte, done int) {
		copy(b, src[done:])
	})
}

// CopyIn implements usermem.IO.CopyIn.
func (mm *MemoryManager) CopyIn(ctx context.Context, addr hostarch.Addr, dst []byte, opts usermem.IOOpts) (int, error) {
	return mm.forEachPage(ctx, addr, len(dst), hostarch.Read, opts, func(b []byte, done int) {
		copy(dst[done:], b)
	})
}

// ZeroOut implements usermem.IO.ZeroOut.
func (mm *MemoryManager) ZeroOut(ctx context.Context, addr hostarch.Addr, n int64, opts usermem.IOOpts) (int64, error) {
	if n < 0 || n > 1<<40 {
		return 0, unix.EINVAL
	}
	done, err := mm.forEachPage(ctx, addr, int(n), hostarch.Write, opts, func(b []byte, _ int) {
		clear(b)
	})
	return int64(done), err
}

var _ usermem.IO = (*MemoryManager)(nil)
