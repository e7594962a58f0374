package tmpfs

import (
	"context"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// mapping is one address range that maps a regular file.
type mapping struct {
	ms       memmap.MappingSpace
	ar       hostarch.AddrRange
	offset   uint64
	writable bool
}

// mappable makes a regular file's pages mappable. Translations point
// straight at the file's pages in the memory file, so shared mappings and
// read/write see the same bytes.
type mappable struct {
	inode *inode
}

var _ memmap.Mappable = mappable{}

// ConfigureMMap implements vfs.FileDescriptionImpl.
func (f *regularFile) ConfigureMMap(_ context.Context, fd *vfs.FileDescription, opts *memmap.MMapOpts) error {
	if opts.Offset+opts.Length < opts.Offset {
		return unix.EOVERFLOW
	}
	if !opts.Private {
		d := f.inode.data
		d.mu.RLock()
		sealed := d.seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0
		d.mu.RUnlock()
		if sealed {
			// A write-sealed memfd maps shared only read-only, and
			// mprotect may not add write later.
			if opts.Perms.Write {
				return unix.EPERM
			}
			opts.MaxPerms.Write = false
		}
	}
	opts.Mappable = mappable{f.inode}
	if opts.MappingIdentity == nil {
		fd.IncRef()
		opts.MappingIdentity = fd
	}
	return nil
}

// AddMapping implements memmap.Mappable.
func (m mappable) AddMapping(_ context.Context, ms memmap.MappingSpace, ar hostarch.AddrRange, offset uint64, writable bool) error {
	d := m.inode.data
	d.mu.Lock()
	d.mappings = append(d.mappings, mapping{ms, ar, offset, writable})
	d.mu.Unlock()
	return nil
}

// RemoveMapping implements memmap.Mappable.
func (m mappable) RemoveMapping(_ context.Context, ms memmap.MappingSpace, ar hostarch.AddrRange, offset uint64, writable bool) {
	d := m.inode.data
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, mp := range d.mappings {
		if mp.ms == ms && mp.ar == ar && mp.offset == offset && mp.writable == writable {
			d.mappings = append(d.mappings[:i], d.mappings[i+1:]...)
			return
		}
	}
}

// CopyMapping implements memmap.Mappable.
func (m mappable) CopyMapping(ctx context.Context, ms memmap.MappingSpace, _, dstAR hostarch.AddrRange, offset uint64, writable bool) error {
	return m.AddMapping(ctx, ms, dstAR, offset, writable)
}

// Translate implements memmap.Mappable: the pages backing required (and
// of optional, what already exists or is within the file), allocating
// pages of holes. Offsets at or beyond the page-rounded file size are a
// bus error.
func (m mappable) Translate(_ context.Context, required, optional memmap.MappableRange, _ hostarch.AccessType) ([]memmap.Translation, error) {
	d := m.inode.data
	fs := m.inode.fs
	d.mu.Lock()
	defer d.mu.Unlock()
	eof, _ := hostarch.PageRoundUp(uint64(d.size))
	if required.End > eof {
		if required.Start >= eof {
			return nil, &memmap.BusError{Err: fmt.Errorf("offset %#x beyond EOF %#x: %w", required.Start, eof, unix.EFAULT)}
		}
		required.End = eof
	}
	if optional.End > eof {
		optional.End = eof
	}
	if optional.Start > required.Start || optional.End < required.End {
		optional = required
	}
	var ts []memmap.Translation
	for off := optional.Start &^ (pageSize - 1); off < optional.End; off += pageSize {
		idx := off / pageSize
		p, ok := d.pages[idx]
		if !ok {
			if !required.Contains(off) {
				continue // an optional hole: leave it for a later fault
			}
			var err error
			if p, err = d.pageForWrite(fs, idx); err != nil {
				return ts, err
			}
		}
		src := memmap.MappableRange{Start: off, End: off + pageSize}
		if n := len(ts); n > 0 && ts[n-1].Source.End == off && ts[n-1].Offset+ts[n-1].Source.Length() == p.fr.Start {
			ts[n-1].Source.End = src.End
			continue
		}
		ts = append(ts, memmap.Translation{Source: src, File: fs.mf, Offset: p.fr.Start, Perms: hostarch.AnyAccess})
	}
	return ts, nil
}

// invalidateBeyondLocked drops every mapping of file offsets from off on,
// private copies included, after a truncation. Call with mu held.
func (d *regularData) invalidateBeyondLocked(off uint64) {
	for _, mp := range d.mappings {
		end := mp.offset + uint64(mp.ar.Length())
		if end <= off {
			continue
		}
		start := mp.ar.Start
		if off > mp.offset {
			start += hostarch.Addr(off - mp.offset)
		}
		mp.ms.Invalidate(hostarch.AddrRange{Start: start, End: mp.ar.End}, memmap.InvalidateOpts{InvalidatePrivate: true})
	}
}
