package gofer

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

const pageSize = hostarch.PageSize

// maxFileSize is MAX_LFS_FILESIZE.
const maxFileSize = int64(1<<63 - 1)

// handle is an opened fid and, when the Gofer donated one, the host
// descriptor of the same open file.
type handle struct {
	file *p9.ClientFile
	host *os.File
	fd   int
}

func (h *handle) close() {
	if h.host != nil {
		h.host.Close()
	}
	if h.file != nil {
		h.file.Close(context.Background())
	}
	*h = handle{fd: -1}
}

// cpage is one cached page of file data in the memory file.
type cpage struct {
	fr    pgalloc.FileRange
	b     []byte
	dirty bool
}

// mapping is one address range that maps the file.
type mapping struct {
	ms       memmap.MappingSpace
	ar       hostarch.AddrRange
	offset   uint64
	writable bool
}

// regularData is a regular file's open handles and page cache. Handles are
// per inode: every file description of the inode shares them (the vfs has
// checked permissions), so a second open costs no round trip, and the page
// cache has a descriptor to fill from and write back to whoever opened it.
type regularData struct {
	// openMu serialises opening handles (round trips) without holding mu.
	openMu sync.Mutex
	// openFiles counts file descriptions, for write-back on last close.
	openFiles atomic.Int64
	// writeMu serialises writes and truncation (as Linux's inode lock
	// does) without being taken by Translate, so a write may copy from a
	// mapping of the file it writes.
	writeMu sync.Mutex

	// mu guards everything below. Reads hold it for reading; host
	// writes, truncation and the page cache for writing.
	mu       sync.RWMutex
	rh, wh   handle // readable, writable (may be the same open fid)
	size     int64
	pages    map[uint64]*cpage // by page index
	mappings []mapping
	// writableMappings counts shared writable mappings: while there is
	// one, translated pages are treated as dirty (the memory manager
	// maps them writable and reports no later stores).
	writableMappings int
}

func (d *regularData) hasDirtyLocked() bool {
	for _, p := range d.pages {
		if p.dirty {
			return true
		}
	}
	return false
}

// setHandleLocked installs h as the readable and/or writable handle where
// none is set; a handle that ends up unused is closed.
func (d *regularData) setHandleLocked(h handle, r, w bool) {
	if h.host != nil {
		h.fd = int(h.host.Fd())
	} else {
		h.fd = -1
	}
	used := false
	if r && d.rh.file == nil {
		d.rh, used = h, true
	}
	if w && d.wh.file == nil {
		d.wh, used = h, true
	}
	if !used {
		h.close()
	}
}

// ensureHandle opens the handles flags need, once per inode.
func (d *regularData) ensureHandle(ctx context.Context, i *inode, flags uint32) error {
	acc := flags & unix.O_ACCMODE
	needR := acc == unix.O_RDONLY || acc == unix.O_RDWR
	needW := acc == unix.O_WRONLY || acc == unix.O_RDWR
	d.mu.RLock()
	have := (!needR || d.rh.file != nil) && (!needW || d.wh.file != nil)
	d.mu.RUnlock()
	if have {
		return nil
	}
	d.openMu.Lock()
	defer d.openMu.Unlock()
	d.mu.RLock()
	needR = needR && d.rh.file == nil
	needW = needW && d.wh.file == nil
	d.mu.RUnlock()
	if !needR && !needW {
		return nil
	}
	install := func(fl uint32) error {
		h, err := i.openHandle(ctx, fl)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.setHandleLocked(h, fl != unix.O_WRONLY, fl != unix.O_RDONLY)
		d.mu.Unlock()
		return nil
	}
	if needW {
		// Read-write serves both directions (and the page cache); fall
		// back to write-only where the host refuses reading.
		err := install(unix.O_RDWR)
		if err == nil {
			return nil
		}
		if err != unix.EACCES && err != unix.EPERM {
			return err
		}
		if err := install(unix.O_WRONLY); err != nil {
			return err
		}
	}
	if needR {
		return install(unix.O_RDONLY)
	}
	return nil
}

// openHandle opens a clone of i's fid with flags.
func (i *inode) openHandle(ctx context.Context, flags uint32) (handle, error) {
	f, _, _, host, err := i.file.CloneOpen(ctx, p9.OpenFlags(flags))
	if err != nil {
		return handle{}, err
	}
	return handle{file: f, host: host}, nil
}

// ioBufPool holds the bounce buffers between host descriptors and
// IOSequences.
var ioBufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// readHost reads from the readable handle at off. Call with mu held.
func (d *regularData) readHostLocked(ctx context.Context, p []byte, off int64) (int, error) {
	if d.rh.file == nil {
		return 0, unix.EBADF
	}
	if d.rh.fd < 0 {
		return d.rh.file.ReadAt(ctx, p, uint64(off))
	}
	done := 0
	for done < len(p) {
		n, err := unix.Pread(d.rh.fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			break
		}
		done += n
	}
	return done, nil
}

// writeHostLocked writes p at off through the writable handle.
func (d *regularData) writeHostLocked(ctx context.Context, p []byte, off int64) (int, error) {
	if d.wh.file == nil {
		return 0, unix.EBADF
	}
	if d.wh.fd < 0 {
		return d.wh.file.WriteAt(ctx, p, uint64(off))
	}
	done := 0
	for done < len(p) {
		n, err := unix.Pwrite(d.wh.fd, p[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// hostSizeLocked asks the host for the file size.
func (d *regularData) hostSizeLocked(ctx context.Context, i *inode) (int64, error) {
	for _, h := range []*handle{&d.wh, &d.rh} {
		if h.fd >= 0 {
			var st unix.Stat_t
			if err := unix.Fstat(h.fd, &st); err != nil {
				return 0, err
			}
			return st.Size, nil
		}
	}
	_, _, attr, err := i.file.GetAttr(ctx, p9.AttrSize)
	return int64(attr.Size), err
}

// readAt copies file bytes from off into dst: cached pages from the
// cache, the rest from the host. No lock is held while copying to dst:
// dst may be a mapping of this very file, whose fault takes mu.
func (d *regularData) readAt(ctx context.Context, dst usermem.IOSequence, off int64) (int64, error) {
	bp := ioBufPool.Get().(*[]byte)
	defer ioBufPool.Put(bp)
	buf := *bp
	want := dst.NumBytes()
	var done int64
	for done < want {
		chunk := min(int64(len(buf)), want-done)
		d.mu.RLock()
		n, err := d.readLocked(ctx, buf[:chunk], off+done)
		d.mu.RUnlock()
		if n > 0 {
			c, cerr := dst.CopyOut(ctx, buf[:n])
			done += int64(c)
			if cerr != nil {
				return done, cerr
			}
			dst = dst.DropFirst(int64(c))
		}
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		if int64(n) < chunk {
			break // end of file
		}
	}
	return done, nil
}

// readLocked fills b from off; fewer bytes mean end of file. Call with mu
// held.
func (d *regularData) readLocked(ctx context.Context, b []byte, off int64) (int, error) {
	if len(d.pages) == 0 {
		return d.readHostLocked(ctx, b, off)
	}
	done := 0
	for done < len(b) {
		pos := off + int64(done)
		idx, po := uint64(pos)/pageSize, uint64(pos)%pageSize
		n := min(len(b)-done, int(pageSize-po))
		if p, ok := d.pages[idx]; ok {
			if pos >= d.size {
				break
			}
			n = min(n, int(d.size-pos))
			copy(b[done:done+n], p.b[po:])
			done += n
			if done < len(b) && pos+int64(n) >= d.size {
				break
			}
			continue
		}
		c, err := d.readHostLocked(ctx, b[done:done+n], pos)
		done += c
		if err != nil {
			return done, err
		}
		if c < n {
			break
		}
	}
	return done, nil
}

// writeAt writes src at off (at the end of the host file if appending),
// updating cached pages it covers. It returns the bytes written and the
// offset after them. writeMu makes the whole write atomic with respect to
// other writes and truncation; mu is held only around each host write, not
// while copying from src (which may be a mapping of this file).
func (d *regularData) writeAt(ctx context.Context, i *inode, src usermem.IOSequence, off int64, appending bool) (int64, int64, error) {
	bp := ioBufPool.Get().(*[]byte)
	defer ioBufPool.Put(bp)
	buf := *bp
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if appending {
		d.mu.RLock()
		sz, err := d.hostSizeLocked(ctx, i)
		cached := d.size
		d.mu.RUnlock()
		if err != nil {
			return 0, off, err
		}
		off = max(sz, cached)
	}
	want := src.NumBytes()
	if want > maxFileSize-off {
		want = maxFileSize - off
		if want == 0 {
			return 0, off, unix.EFBIG
		}
	}
	var done int64
	var err error
	for done < want {
		chunk := min(int64(len(buf)), want-done)
		c, cerr := src.CopyIn(ctx, buf[:chunk])
		if c == 0 {
			err = cerr
			break
		}
		d.mu.Lock()
		n, werr := d.writeHostLocked(ctx, buf[:c], off+done)
		if n > 0 {
			d.updateCacheLocked(buf[:n], off+done)
			if end := off + done + int64(n); end > d.size {
				d.size = end
			}
		}
		d.mu.Unlock()
		done += int64(n)
		src = src.DropFirst(int64(n))
		if werr != nil {
			err = werr
			break
		}
		if cerr != nil {
			err = cerr
			break
		}
		if n < c {
			break
		}
	}
	if done > 0 {
		i.invalidateAttrs()
		return done, off + done, nil
	}
	return 0, off, err
}

// updateCacheLocked copies bytes just written to the host at off into the
// cached pages they cover, so mappings see them.
func (d *regularData) updateCacheLocked(b []byte, off int64) {
	if len(d.pages) == 0 {
		return
	}
	for len(b) > 0 {
		idx, po := uint64(off)/pageSize, uint64(off)%pageSize
		n := min(len(b), int(pageSize-po))
		if p, ok := d.pages[idx]; ok {
			copy(p.b[po:], b[:n])
		}
		b, off = b[n:], off+int64(n)
	}
}

// truncate sets the size on the host (with any other attributes of the
// same setattr) and in the cache.
func (d *regularData) truncate(ctx context.Context, i *inode, size int64, valid p9.SetAttrMask, a p9.SetAttr) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	a.Size = uint64(size)
	err := i.file.SetAttr(ctx, valid|p9.SetAttrSize, a)
	i.invalidateAttrs()
	if err != nil {
		return err
	}
	if valid&p9.SetAttrMode != 0 {
		i.mode.Store(i.mode.Load()&unix.S_IFMT | a.Mode)
	}
	if size < d.size {
		first := (uint64(size) + pageSize - 1) / pageSize
		d.invalidateBeyondLocked(first * pageSize)
		for idx, p := range d.pages {
			if idx >= first {
				i.fs.mf.DecRef(p.fr)
				delete(d.pages, idx)
			}
		}
		if po := uint64(size) % pageSize; po != 0 {
			if p, ok := d.pages[uint64(size)/pageSize]; ok {
				clear(p.b[po:])
			}
		}
	}
	d.size = size
	return nil
}

// invalidateBeyondLocked drops every mapping of offsets from off on,
// private copies included (they must fault with SIGBUS now).
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

// writebackLocked writes dirty pages to the host. Pages stay dirty while a
// shared writable mapping may still store into them unseen.
func (d *regularData) writebackLocked(ctx context.Context, i *inode) error {
	var firstErr error
	for idx, p := range d.pages {
		if !p.dirty {
			continue
		}
		start := int64(idx * pageSize)
		if start >= d.size {
			p.dirty = false
			continue
		}
		n := min(int64(pageSize), d.size-start)
		if d.wh.file == nil {
			firstErr = fmt.Errorf("gofer: writing back inode %d: no writable handle: %w", i.ino, unix.EBADF)
			continue
		}
		if _, err := d.writeHostLocked(ctx, p.b[:n], start); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("gofer: writing back inode %d at %#x: %w", i.ino, start, err)
			}
			continue
		}
		if d.writableMappings == 0 {
			p.dirty = false
		}
	}
	return firstErr
}

// dropClean forgets clean cached pages of a file nobody maps, so that the
// next mapping reads the host's current bytes.
func (d *regularData) dropClean(mf *pgalloc.MemoryFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.mappings) != 0 {
		return
	}
	for idx, p := range d.pages {
		if !p.dirty {
			mf.DecRef(p.fr)
			delete(d.pages, idx)
		}
	}
}

// sync writes back dirty pages and flushes the host file.
func (d *regularData) sync(ctx context.Context, i *inode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.writebackLocked(ctx, i)
	if d.wh.fd >= 0 {
		if e := unix.Fsync(d.wh.fd); e != nil && err == nil {
			err = e
		}
	} else if d.wh.file != nil {
		if e := d.wh.file.FSync(ctx, false); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// release writes back and frees the cache and closes the handles.
func (d *regularData) release(ctx context.Context, i *inode) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writebackLocked(ctx, i); err != nil {
		log.Warningf("%v", err)
	}
	for idx, p := range d.pages {
		i.fs.mf.DecRef(p.fr)
		delete(d.pages, idx)
	}
	if d.wh.file == d.rh.file {
		d.rh = handle{fd: -1}
	}
	d.rh.close()
	d.wh.close()
}

// regularFile is an open regular file.
type regularFile struct {
	vfs.FileDescriptionDefaults
	inode *inode
	offMu sync.Mutex
	off   int64
}

// Release implements vfs.FileDescriptionImpl: the last close writes back
// pages dirtied through mappings.
func (f *regularFile) Release(ctx context.Context) {
	d := f.inode.data
	if d.openFiles.Add(-1) == 0 {
		d.mu.Lock()
		if err := d.writebackLocked(ctx, f.inode); err != nil {
			log.Warningf("%v", err)
		}
		d.mu.Unlock()
	}
}

// Read implements vfs.FileDescriptionImpl.
func (f *regularFile) Read(ctx context.Context, fd *vfs.FileDescription, dst usermem.IOSequence, opts vfs.ReadOptions) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	n, err := f.inode.data.readAt(ctx, dst, f.off)
	f.off += n
	return n, err
}

// PRead implements vfs.FileDescriptionImpl.
func (f *regularFile) PRead(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, offset int64, _ vfs.ReadOptions) (int64, error) {
	return f.inode.data.readAt(ctx, dst, offset)
}

// Write implements vfs.FileDescriptionImpl.
func (f *regularFile) Write(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	if src.NumBytes() == 0 {
		return 0, nil
	}
	n, end, err := f.inode.data.writeAt(ctx, f.inode, src, f.off, fd.StatusFlags()&unix.O_APPEND != 0)
	f.off = end
	return n, f.syncIfAsked(ctx, fd, n, err)
}

// syncIfAsked makes O_SYNC and O_DSYNC writes durable before returning
// (the Gofer's descriptors are opened without them).
func (f *regularFile) syncIfAsked(ctx context.Context, fd *vfs.FileDescription, n int64, err error) error {
	if err != nil || n == 0 || fd.StatusFlags()&(unix.O_SYNC|unix.O_DSYNC) == 0 {
		return err
	}
	return f.inode.data.sync(ctx, f.inode)
}

// PWrite implements vfs.FileDescriptionImpl. As on Linux, O_APPEND makes
// pwrite append too.
func (f *regularFile) PWrite(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, offset int64, _ vfs.WriteOptions) (int64, error) {
	if src.NumBytes() == 0 {
		return 0, nil
	}
	n, _, err := f.inode.data.writeAt(ctx, f.inode, src, offset, fd.StatusFlags()&unix.O_APPEND != 0)
	return n, f.syncIfAsked(ctx, fd, n, err)
}

// Seek implements vfs.FileDescriptionImpl. SEEK_DATA and SEEK_HOLE ask
// the host file.
func (f *regularFile) Seek(ctx context.Context, _ *vfs.FileDescription, offset int64, whence int32) (int64, error) {
	f.offMu.Lock()
	defer f.offMu.Unlock()
	d := f.inode.data
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		offset += f.off
	case unix.SEEK_END:
		d.mu.RLock()
		sz := d.size
		if f.inode.fs.shared {
			if hs, err := d.hostSizeLocked(ctx, f.inode); err == nil {
				sz = max(hs, sz)
			}
		}
		d.mu.RUnlock()
		offset += sz
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		d.mu.RLock()
		fd := d.rh.fd
		if fd < 0 {
			fd = d.wh.fd
		}
		if fd < 0 {
			d.mu.RUnlock()
			return 0, unix.EINVAL
		}
		o, err := unix.Seek(fd, offset, int(whence))
		d.mu.RUnlock()
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

// Sync implements vfs.FileDescriptionImpl (fsync, and msync of mappings).
func (f *regularFile) Sync(ctx context.Context) error { return f.inode.data.sync(ctx, f.inode) }

// Allocate implements vfs.FileDescriptionImpl with the host's fallocate.
func (f *regularFile) Allocate(_ context.Context, mode, offset, length uint64) error {
	d := f.inode.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.wh.fd < 0 {
		return unix.EOPNOTSUPP
	}
	if err := unix.Fallocate(d.wh.fd, uint32(mode), int64(offset), int64(length)); err != nil {
		return err
	}
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 && int64(offset+length) > d.size {
		d.size = int64(offset + length)
	}
	f.inode.invalidateAttrs()
	return nil
}

// ConfigureMMap implements vfs.FileDescriptionImpl.
func (f *regularFile) ConfigureMMap(ctx context.Context, fd *vfs.FileDescription, opts *memmap.MMapOpts) error {
	if opts.Offset+opts.Length < opts.Offset {
		return unix.EOVERFLOW
	}
	// Pages are filled through a readable handle even when this file
	// description was opened write-only.
	if err := f.inode.data.ensureHandle(ctx, f.inode, unix.O_RDONLY); err != nil {
		return err
	}
	opts.Mappable = mappable{f.inode}
	if opts.MappingIdentity == nil {
		fd.IncRef()
		opts.MappingIdentity = fd
	}
	return nil
}

// mappable is a regular file as a memmap.Mappable.
type mappable struct{ inode *inode }

var _ memmap.Mappable = mappable{}

// AddMapping implements memmap.Mappable.
func (m mappable) AddMapping(_ context.Context, ms memmap.MappingSpace, ar hostarch.AddrRange, offset uint64, writable bool) error {
	d := m.inode.data
	d.mu.Lock()
	d.mappings = append(d.mappings, mapping{ms, ar, offset, writable})
	if writable {
		d.writableMappings++
	}
	d.mu.Unlock()
	return nil
}

// RemoveMapping implements memmap.Mappable: unmapping a shared writable
// mapping writes back what it may have dirtied.
func (m mappable) RemoveMapping(ctx context.Context, ms memmap.MappingSpace, ar hostarch.AddrRange, offset uint64, writable bool) {
	d := m.inode.data
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, mp := range d.mappings {
		if mp.ms == ms && mp.ar == ar && mp.offset == offset && mp.writable == writable {
			d.mappings = append(d.mappings[:k], d.mappings[k+1:]...)
			if writable {
				d.writableMappings--
				if err := d.writebackLocked(ctx, m.inode); err != nil {
					log.Warningf("%v", err)
				}
			}
			return
		}
	}
}

// CopyMapping implements memmap.Mappable.
func (m mappable) CopyMapping(ctx context.Context, ms memmap.MappingSpace, _, dstAR hostarch.AddrRange, offset uint64, writable bool) error {
	return m.AddMapping(ctx, ms, dstAR, offset, writable)
}

// maxFill bounds the pages one Translate reads beyond what is required.
const maxFill = 64 * pageSize

// Translate implements memmap.Mappable: cached pages, filling missing ones
// from the host (required, plus up to maxFill of optional). Offsets at or
// beyond the page-rounded size are a bus error.
func (m mappable) Translate(ctx context.Context, required, optional memmap.MappableRange, at hostarch.AccessType) ([]memmap.Translation, error) {
	i := m.inode
	d := i.data
	d.mu.Lock()
	defer d.mu.Unlock()
	eof, _ := hostarch.PageRoundUp(uint64(d.size))
	if required.End > eof {
		if required.Start >= eof {
			return nil, &memmap.BusError{Err: fmt.Errorf("offset %#x beyond EOF %#x: %w", required.Start, eof, unix.EFAULT)}
		}
		required.End = eof
	}
	fill := required
	if optional.Start <= required.Start && optional.End >= required.End {
		fill.Start = max(optional.Start, required.Start-min(required.Start, maxFill))
		fill.End = min(optional.End, required.End+maxFill, eof)
	}
	fill.Start &^= pageSize - 1
	if err := d.fillLocked(ctx, i.fs.mf, fill, required); err != nil {
		return nil, err
	}
	var ts []memmap.Translation
	for off := fill.Start; off < fill.End; off += pageSize {
		p, ok := d.pages[off/pageSize]
		if !ok {
			continue // an optional page that could not be filled
		}
		if d.writableMappings > 0 {
			p.dirty = true
		}
		src := memmap.MappableRange{Start: off, End: off + pageSize}
		if n := len(ts); n > 0 && ts[n-1].Source.End == off && ts[n-1].Offset+ts[n-1].Source.Length() == p.fr.Start {
			ts[n-1].Source.End = src.End
			continue
		}
		ts = append(ts, memmap.Translation{Source: src, File: i.fs.mf, Offset: p.fr.Start, Perms: hostarch.AnyAccess})
	}
	return ts, nil
}

// fillLocked caches every page of fill, reading runs of missing pages from
// the host in one read each. Failing to fill a page of required is an
// error; other pages are optional.
func (d *regularData) fillLocked(ctx context.Context, mf *pgalloc.MemoryFile, fill, required memmap.MappableRange) error {
	if d.pages == nil {
		d.pages = make(map[uint64]*cpage)
	}
	for off := fill.Start; off < fill.End; {
		if _, ok := d.pages[off/pageSize]; ok {
			off += pageSize
			continue
		}
		end := off + pageSize
		for end < fill.End {
			if _, ok := d.pages[end/pageSize]; ok {
				break
			}
			end += pageSize
		}
		err := d.fillRunLocked(ctx, mf, off, end)
		if err != nil {
			if required.Start < end && off < required.End {
				return err
			}
		}
		off = end
	}
	return nil
}

// fillRunLocked reads [start, end) (page aligned, all missing) into new
// pages.
func (d *regularData) fillRunLocked(ctx context.Context, mf *pgalloc.MemoryFile, start, end uint64) error {
	fr, err := mf.Allocate(end - start)
	if err != nil {
		return unix.ENOMEM
	}
	b, err := mf.MapInternal(fr)
	if err != nil {
		mf.DecRef(fr)
		return unix.ENOMEM
	}
	// Bytes past EOF in the last page must read as zero: the memory file
	// gives zeroed pages.
	want := int64(end - start)
	if rem := d.size - int64(start); rem < want {
		want = max(rem, 0)
	}
	if want > 0 {
		if _, err := d.readHostLocked(ctx, b[:want], int64(start)); err != nil {
			mf.DecRef(fr)
			return err
		}
	}
	for off := start; off < end; off += pageSize {
		k := off - start
		d.pages[off/pageSize] = &cpage{
			fr: pgalloc.FileRange{Start: fr.Start + k, End: fr.Start + k + pageSize},
			b:  b[k : k+pageSize : k+pageSize],
		}
	}
	return nil
}
