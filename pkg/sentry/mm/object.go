package mm

import (
	"context"
	"fmt"
	"io"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"golang.org/x/sys/unix"
)

func pgRange(off uint64) pgalloc.FileRange {
	return pgalloc.FileRange{Start: off, End: off + hostarch.PageSize}
}

// MemoryObject is a fixed-size, reference-counted object whose bytes live
// in the memory file, allocated a page at a time on first use: the backing
// of shared anonymous mappings, and an in-memory file image for loading
// programs before a filesystem exists. It implements memmap.Mappable and
// memmap.MappingIdentity.
type MemoryObject struct {
	mf   *pgalloc.MemoryFile
	size uint64

	mu    sync.Mutex
	refs  int64
	pages map[uint64]uint64 // page index → memory-file offset
}

// NewMemoryObject returns a zero-filled object of size bytes (rounded up to
// pages) with one reference.
func NewMemoryObject(mf *pgalloc.MemoryFile, size uint64) (*MemoryObject, error) {
	s, ok := hostarch.PageRoundUp(size)
	if !ok || s == 0 {
		return nil, unix.EINVAL
	}
	return &MemoryObject{mf: mf, size: size, refs: 1, pages: make(map[uint64]uint64)}, nil
}

// Size returns the object's size in bytes.
func (o *MemoryObject) Size() uint64 { return o.size }

// IncRef implements memmap.MappingIdentity.
func (o *MemoryObject) IncRef() {
	o.mu.Lock()
	o.refs++
	o.mu.Unlock()
}

// DecRef implements memmap.MappingIdentity; the last reference frees the
// pages.
func (o *MemoryObject) DecRef(ctx context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refs--
	if o.refs > 0 {
		return
	}
	if o.refs < 0 {
		panic("mm: MemoryObject.DecRef without a reference")
	}
	for _, off := range o.pages {
		o.mf.DecRef(pgRange(off))
	}
	o.pages = nil
}

// pageLocked returns the memory-file offset of page index i, allocating it.
func (o *MemoryObject) pageLocked(i uint64) (uint64, error) {
	if off, ok := o.pages[i]; ok {
		return off, nil
	}
	if o.pages == nil {
		return 0, fmt.Errorf("memory object used after release: %w", unix.EFAULT)
	}
	fr, err := o.mf.Allocate(hostarch.PageSize)
	if err != nil {
		return 0, fmt.Errorf("allocating object page: %w", unix.ENOMEM)
	}
	o.pages[i] = fr.Start
	return fr.Start, nil
}

// rw copies between p and the object at off, page by page.
func (o *MemoryObject) rw(p []byte, off int64, write bool) (int, error) {
	if off < 0 {
		return 0, unix.EINVAL
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	done := 0
	for done < len(p) {
		cur := uint64(off) + uint64(done)
		if cur >= o.size {
			if write {
				return done, unix.EFBIG
			}
			break
		}
		fo, err := o.pageLocked(cur / hostarch.PageSize)
		if err != nil {
			return done, err
		}
		b, err := o.mf.MapInternal(pgRange(fo))
		if err != nil {
			return done, err
		}
		b = b[cur%hostarch.PageSize:]
		if rem := o.size - cur; uint64(len(b)) > rem {
			b = b[:rem]
		}
		var n int
		if write {
			n = copy(b, p[done:])
		} else {
			n = copy(p[done:], b)
		}
		done += n
	}
	if !write && done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// ReadAt reads from the object like io.ReaderAt.
func (o *MemoryObject) ReadAt(p []byte, off int64) (int, error) { return o.rw(p, off, false) }

// WriteAt writes into the object; writing past its size fails with EFBIG.
func (o *MemoryObject) WriteAt(p []byte, off int64) (int, error) { return o.rw(p, off, true) }

// AddMapping implements memmap.Mappable. The object never moves its pages,
// so it need not track who maps it.
func (o *MemoryObject) AddMapping(context.Context, memmap.MappingSpace, hostarch.AddrRange, uint64, bool) error {
	return nil
}

// RemoveMapping implements memmap.Mappable.
func (o *MemoryObject) RemoveMapping(context.Context, memmap.MappingSpace, hostarch.AddrRange, uint64, bool) {
}

// CopyMapping implements memmap.Mappable.
func (o *MemoryObject) CopyMapping(context.Context, memmap.MappingSpace, hostarch.AddrRange, hostarch.AddrRange, uint64, bool) error {
	return nil
}

// Translate implements memmap.Mappable: one translation per page of
// required; offsets at or past the size (rounded up to a page) are a bus
// error.
func (o *MemoryObject) Translate(ctx context.Context, required, optional memmap.MappableRange, at hostarch.AccessType) ([]memmap.Translation, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	limit, _ := hostarch.PageRoundUp(o.size)
	if required.End > limit {
		return nil, &memmap.BusError{Err: unix.EFAULT}
	}
	var ts []memmap.Translation
	for off := hostarch.PageRoundDown(required.Start); off < required.End; off += hostarch.PageSize {
		fo, err := o.pageLocked(off / hostarch.PageSize)
		if err != nil {
			return ts, err
		}
		ts = append(ts, memmap.Translation{
			Source: memmap.MappableRange{Start: off, End: off + hostarch.PageSize},
			File:   o.mf, Offset: fo, Perms: hostarch.AnyAccess,
		})
	}
	return ts, nil
}

// ConfigureMMap fills in opts to map this object (the shape file
// descriptions give mmap).
func (o *MemoryObject) ConfigureMMap(ctx context.Context, opts *memmap.MMapOpts) error {
	opts.Mappable = o
	opts.MappingIdentity = o
	return nil
}

var (
	_ memmap.Mappable        = (*MemoryObject)(nil)
	_ memmap.MappingIdentity = (*MemoryObject)(nil)
)
