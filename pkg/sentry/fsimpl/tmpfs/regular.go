package tmpfs

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

const pageSize = hostarch.PageSize

// maxFileSize is MAX_LFS_FILESIZE.
const maxFileSize = int64(1<<63 - 1)

// page is one page of file data in the memory file, with the Sentry's
// mapping of it kept so that I/O does not go through the allocator lock.
type page struct {
	fr pgalloc.FileRange
	b  []byte
}

// regularData is a regular file's contents: a sparse set of pages, holes
// reading as zeros.
type regularData struct {
	mu    sync.RWMutex
	size  int64
	pages map[uint64]page // by page index
	// mappings are the address ranges that map the file (mmap).
	mappings []mapping
	// seals are the memfd seals (F_ADD_SEALS); files that are not
	// sealable memfds carry F_SEAL_SEAL, as on Linux.
	seals uint32
}

var zeroPage [pageSize]byte

// truncateLocked sets the size, freeing whole pages past it and zeroing the
// tail of a partial last page. Call with mu held for writing.
func (r *regularData) truncateLocked(fs *filesystem, size int64) {
	if size < r.size {
		first := (uint64(size) + pageSize - 1) / pageSize
		r.invalidateBeyondLocked(first * pageSize)
		for idx, p := range r.pages {
			if idx >= first {
				fs.mf.DecRef(p.fr)
				fs.unreserve(pageSize)
				delete(r.pages, idx)
			}
		}
		if off := uint64(size) % pageSize; off != 0 {
			if p, ok := r.pages[uint64(size)/pageSize]; ok {
				clear(p.b[off:])
			}
		}
	}
	r.size = size
}

// pageForWrite returns page idx, allocating it. Call with mu held for
// writing.
func (r *regularData) pageForWrite(fs *filesystem, idx uint64) (page, error) {
	if p, ok := r.pages[idx]; ok {
		return p, nil
	}
	if err := fs.reserve(pageSize); err != nil {
		return page{}, err
	}
	fr, err := fs.mf.Allocate(pageSize)
	if err != nil {
		fs.unreserve(pageSize)
		return page{}, unix.ENOMEM
	}
	b, err := fs.mf.MapInternal(fr)
	if err != nil {
		fs.mf.DecRef(fr)
		fs.unreserve(pageSize)
		return page{}, unix.ENOMEM
	}
	p := page{fr: fr, b: b}
	r.pages[idx] = p
	return p, nil
}

// readAt copies file bytes from off into dst.
func (r *regularData) readAt(ctx context.Context, dst usermem.IOSequence, off int64) (int64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if off >= r.size {
		return 0, nil
	}
	want := min(dst.NumBytes(), r.size-off)
	var done int64
	for done < want {
		pos := uint64(off + done)
		idx, po := pos/pageSize, pos%pageSize
		n := min(int64(pageSize-po), want-done)
		src := zeroPage[po : po+uint64(n)]
		if p, ok := r.pages[idx]; ok {
			src = p.b[po : po+uint64(n)]
		}
		c, err := dst.CopyOut(ctx, src)
		done += int64(c)
		if err != nil {
			return done, err
		}
		dst = dst.DropFirst(int64(c))
	}
	return done, nil
}

// writeAt copies src into the file at off (at the end if appending),
// returning the bytes written and the offset after them.
func (r *regularData) writeAt(ctx context.Context, fs *filesystem, src usermem.IOSequence, off int64, appending bool) (int64, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if appending {
		off = r.size
	}
	if r.seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0 {
		return 0, off, unix.EPERM
	}
	want := src.NumBytes()
	if r.seals&unix.F_SEAL_GROW != 0 {
		if off >= r.size {
			return 0, off, unix.EPERM
		}
		want = min(want, r.size-off)
	}
	if want > maxFileSize-off {
		want = maxFileSize - off
		if want == 0 {
			return 0, off, unix.EFBIG
		}
	}
	var done int64
	var err error
	for done < want {
		pos := uint64(off + done)
		idx, po := pos/pageSize, pos%pageSize
		n := min(int64(pageSize-po), want-done)
		var p page
		p, err = r.pageForWrite(fs, idx)
		if err != nil {
			break
		}
		var c int
		c, err = src.CopyIn(ctx, p.b[po:po+uint64(n)])
		done += int64(c)
		if err != nil {
			break
		}
		src = src.DropFirst(int64(c))
	}
	if end := off + done; end > r.size {
		r.size = end
	}
	if done > 0 {
		return done, off + done, nil
	}
	return 0, off, err
}

// seekData implements SEEK_DATA (data=true) and SEEK_HOLE: pages that were
// never written are holes.
func (r *regularData) seekData(off int64, data bool) (int64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if off >= r.size {
		return 0, unix.ENXIO
	}
	for pos := off; pos < r.size; {
		idx := uint64(pos) / pageSize
		_, present := r.pages[idx]
		if present == data {
			return pos, nil
		}
		pos = int64((idx + 1) * pageSize)
	}
	if data {
		return 0, unix.ENXIO
	}
	return r.size, nil // the implicit hole at the end
}

// regularFile is an open regular file.
type regularFile struct {
	vfs.FileDescriptionDefaults
	inode *inode
	offMu sync.Mutex
	off   int64
}

// Read implements vfs.FileDescriptionImpl.
func (f *regularFile) Read(ctx context.Context, fd *vfs.FileDescription, dst usermem.IOSequence, opts vfs.ReadOptions) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	n, err := f.PRead(ctx, fd, dst, f.off, opts)
	f.off += n
	return n, err
}

// PRead implements vfs.FileDescriptionImpl.
func (f *regularFile) PRead(ctx context.Context, fd *vfs.FileDescription, dst usermem.IOSequence, offset int64, _ vfs.ReadOptions) (int64, error) {
	n, err := f.inode.data.readAt(ctx, dst, offset)
	if fd.StatusFlags()&unix.O_NOATIME == 0 {
		f.inode.touch(true, false, false)
	}
	return n, err
}

// Write implements vfs.FileDescriptionImpl.
func (f *regularFile) Write(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	n, end, err := f.write(ctx, fd, src, f.off)
	f.off = end
	return n, err
}

// PWrite implements vfs.FileDescriptionImpl. As on Linux, O_APPEND makes
// pwrite append too.
func (f *regularFile) PWrite(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, offset int64, _ vfs.WriteOptions) (int64, error) {
	n, _, err := f.write(ctx, fd, src, offset)
	return n, err
}

func (f *regularFile) write(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, offset int64) (int64, int64, error) {
	if src.NumBytes() == 0 {
		return 0, offset, nil
	}
	n, end, err := f.inode.data.writeAt(ctx, f.inode.fs, src, offset, fd.StatusFlags()&unix.O_APPEND != 0)
	if n > 0 {
		i := f.inode
		i.mu.Lock()
		i.touchLocked(false, true, true)
		// A write by anyone clears set-user-ID, and set-group-ID where
		// group execute makes it meaningful (inode(7)).
		if m := i.mode.Load(); m&unix.S_ISUID != 0 || m&(unix.S_ISGID|0o010) == unix.S_ISGID|0o010 {
			i.mode.Store(m &^ (unix.S_ISUID | unix.S_ISGID))
		}
		i.mu.Unlock()
	}
	return n, end, err
}

// Seek implements vfs.FileDescriptionImpl.
func (f *regularFile) Seek(_ context.Context, _ *vfs.FileDescription, offset int64, whence int32) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	d := f.inode.data
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		offset += f.off
	case unix.SEEK_END:
		d.mu.RLock()
		offset += d.size
		d.mu.RUnlock()
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		if offset < 0 {
			return 0, unix.ENXIO
		}
		o, err := d.seekData(offset, whence == unix.SEEK_DATA)
		if err != nil {
			return 0, err
		}
		offset = o
	default:
		return 0, unix.EINVAL
	}
	if offset < 0 {
		return 0, unix.EINVAL
	}
	f.off = offset
	return offset, nil
}

// Allocate implements vfs.FileDescriptionImpl: mode 0 and
// FALLOC_FL_KEEP_SIZE allocate pages, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE
// zeroes a range; other modes are not supported.
func (f *regularFile) Allocate(_ context.Context, mode, offset, length uint64) error {
	end := offset + length
	if length == 0 || end < offset || end > uint64(maxFileSize) {
		return unix.EINVAL
	}
	if mode == unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE {
		return f.punchHole(offset, end)
	}
	if mode&^unix.FALLOC_FL_KEEP_SIZE != 0 {
		return unix.EOPNOTSUPP
	}
	d := f.inode.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 && int64(end) > d.size && d.seals&unix.F_SEAL_GROW != 0 {
		return unix.EPERM
	}
	for idx := offset / pageSize; idx*pageSize < end; idx++ {
		if _, err := d.pageForWrite(f.inode.fs, idx); err != nil {
			return err
		}
	}
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 && int64(end) > d.size {
		d.size = int64(end)
	}
	return nil
}

// punchHole makes [start, end) read as zeros without changing the size:
// pages wholly inside the range are freed (so the hole costs no memory),
// the partial pages at its edges are zeroed in place.
func (f *regularFile) punchHole(start, end uint64) error {
	d := f.inode.data
	d.mu.Lock()
	if d.seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0 {
		d.mu.Unlock()
		return unix.EPERM
	}
	firstWhole := (start + pageSize - 1) / pageSize
	endWhole := end / pageSize // exclusive
	for _, edge := range [2]uint64{start / pageSize, (end - 1) / pageSize} {
		if edge >= firstWhole && edge < endWhole {
			continue
		}
		if p, ok := d.pages[edge]; ok {
			lo, hi := edge*pageSize, edge*pageSize+pageSize
			clear(p.b[max(start, lo)-lo : min(end, hi)-lo])
		}
	}
	if firstWhole < endWhole {
		// Shared mappings must fault the freed pages in anew; private
		// copies already made stay, as with Linux's shmem.
		d.invalidateRangeLocked(firstWhole*pageSize, endWhole*pageSize)
		fs := f.inode.fs
		if endWhole-firstWhole <= uint64(len(d.pages)) {
			for idx := firstWhole; idx < endWhole; idx++ {
				if p, ok := d.pages[idx]; ok {
					d.freePageLocked(fs, idx, p)
				}
			}
		} else {
			for idx, p := range d.pages {
				if idx >= firstWhole && idx < endWhole {
					d.freePageLocked(fs, idx, p)
				}
			}
		}
	}
	d.mu.Unlock()
	i := f.inode
	i.mu.Lock()
	i.touchLocked(false, true, true)
	i.mu.Unlock()
	return nil
}

// freePageLocked returns page idx to the memory file. Call with mu held
// for writing.
func (r *regularData) freePageLocked(fs *filesystem, idx uint64, p page) {
	fs.mf.DecRef(p.fr)
	fs.unreserve(pageSize)
	delete(r.pages, idx)
}

// invalidateRangeLocked drops shared translations of file offsets
// [start, end). Call with mu held.
func (r *regularData) invalidateRangeLocked(start, end uint64) {
	for _, mp := range r.mappings {
		mEnd := mp.offset + uint64(mp.ar.Length())
		lo, hi := max(start, mp.offset), min(end, mEnd)
		if lo >= hi {
			continue
		}
		ar := hostarch.AddrRange{
			Start: mp.ar.Start + hostarch.Addr(lo-mp.offset),
			End:   mp.ar.Start + hostarch.Addr(hi-mp.offset),
		}
		mp.ms.Invalidate(ar, memmap.InvalidateOpts{})
	}
}
