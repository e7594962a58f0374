package overlay

import (
	"context"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// fileFD is an open non-directory: it forwards to a file description of
// the layer file. A regular file opened read-only before it was copied up
// moves to the upper copy at its next operation (as Linux does since
// 4.19), so that every open file sees the same data.
type fileFD struct {
	inode *inode
	flags uint32
	inner atomic.Pointer[vfs.FileDescription]
	// current is set once inner is the upper file, or for files that
	// never move (non-regular files, whose data is not the layer's).
	current atomic.Bool

	mu sync.Mutex
	// stale holds files replaced by a move to the upper: a concurrent
	// operation may still be using one, so they go at Release.
	stale []*vfs.FileDescription
}

func (i *inode) newFileFD(ctx context.Context, flags uint32) (*fileFD, error) {
	in, err := i.openReal(ctx, flags)
	if err != nil {
		return nil, err
	}
	f := &fileFD{inode: i, flags: flags}
	f.inner.Store(in)
	f.current.Store(i.upperVD() != nil || i.Mode()&unix.S_IFMT != unix.S_IFREG)
	return f, nil
}

// get returns the layer file to use, with fd's status flags applied.
func (f *fileFD) get(ctx context.Context, fd *vfs.FileDescription) (*vfs.FileDescription, error) {
	in := f.inner.Load()
	if !f.current.Load() && f.inode.upperVD() != nil {
		var err error
		if in, err = f.moveUp(ctx); err != nil {
			return nil, err
		}
	}
	want := fd.StatusFlags() | in.StatusFlags()&unix.O_NOATIME
	if in.StatusFlags() != want {
		in.SetStatusFlags(want)
	}
	return in, nil
}

// moveUp switches to the upper copy at the same file offset.
func (f *fileFD) moveUp(ctx context.Context) (*vfs.FileDescription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.inner.Load()
	if f.current.Load() {
		return old, nil
	}
	off, err := old.Seek(ctx, 0, unix.SEEK_CUR)
	if err != nil {
		return nil, err
	}
	in, err := f.inode.openReal(ctx, f.flags)
	if err != nil {
		return nil, err
	}
	if _, err := in.Seek(ctx, off, unix.SEEK_SET); err != nil {
		in.DecRef(ctx)
		return nil, err
	}
	f.stale = append(f.stale, old)
	f.inner.Store(in)
	f.current.Store(true)
	return in, nil
}

// Release implements vfs.FileDescriptionImpl.
func (f *fileFD) Release(ctx context.Context) {
	f.inner.Load().DecRef(ctx)
	f.mu.Lock()
	stale := f.stale
	f.stale = nil
	f.mu.Unlock()
	for _, s := range stale {
		s.DecRef(ctx)
	}
}

// Read implements vfs.FileDescriptionImpl.
func (f *fileFD) Read(ctx context.Context, fd *vfs.FileDescription, dst usermem.IOSequence, opts vfs.ReadOptions) (int64, error) {
	in, err := f.get(ctx, fd)
	if err != nil {
		return 0, err
	}
	return in.Read(ctx, dst, opts)
}

// PRead implements vfs.FileDescriptionImpl.
func (f *fileFD) PRead(ctx context.Context, fd *vfs.FileDescription, dst usermem.IOSequence, offset int64, opts vfs.ReadOptions) (int64, error) {
	in, err := f.get(ctx, fd)
	if err != nil {
		return 0, err
	}
	return in.PRead(ctx, dst, offset, opts)
}

// Write implements vfs.FileDescriptionImpl.
func (f *fileFD) Write(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, opts vfs.WriteOptions) (int64, error) {
	in, err := f.get(ctx, fd)
	if err != nil {
		return 0, err
	}
	return in.Write(ctx, src, opts)
}

// PWrite implements vfs.FileDescriptionImpl.
func (f *fileFD) PWrite(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, offset int64, opts vfs.WriteOptions) (int64, error) {
	in, err := f.get(ctx, fd)
	if err != nil {
		return 0, err
	}
	return in.PWrite(ctx, src, offset, opts)
}

// Seek implements vfs.FileDescriptionImpl.
func (f *fileFD) Seek(ctx context.Context, fd *vfs.FileDescription, offset int64, whence int32) (int64, error) {
	in, err := f.get(ctx, fd)
	if err != nil {
		return 0, err
	}
	return in.Seek(ctx, offset, whence)
}

// IterDirents implements vfs.FileDescriptionImpl.
func (f *fileFD) IterDirents(context.Context, *vfs.FileDescription, func(vfs.Dirent) bool) error {
	return unix.ENOTDIR
}

// Ioctl implements vfs.FileDescriptionImpl.
func (f *fileFD) Ioctl(ctx context.Context, fd *vfs.FileDescription, io usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error) {
	in, err := f.get(ctx, fd)
	if err != nil {
		return 0, err
	}
	return in.Ioctl(ctx, io, sysno, args)
}

// ConfigureMMap implements vfs.FileDescriptionImpl. A writable shared
// mapping must write the upper copy, so it copies up first; the mapping
// keeps the overlay file (not the layer's) alive and named.
func (f *fileFD) ConfigureMMap(ctx context.Context, fd *vfs.FileDescription, opts *memmap.MMapOpts) error {
	if !opts.Private && (opts.Perms.Write || opts.MaxPerms.Write) && f.inode.Mode()&unix.S_IFMT == unix.S_IFREG {
		if err := f.inode.copyUp(ctx, copyAll); err != nil {
			return err
		}
	}
	in, err := f.get(ctx, fd)
	if err != nil {
		return err
	}
	setIdentity := opts.MappingIdentity == nil
	if setIdentity {
		fd.IncRef()
		opts.MappingIdentity = fd
	}
	if err := in.ConfigureMMap(ctx, opts); err != nil {
		if setIdentity {
			opts.MappingIdentity = nil
			fd.DecRef(ctx)
		}
		return err
	}
	return nil
}

// Sync implements vfs.FileDescriptionImpl.
func (f *fileFD) Sync(ctx context.Context) error { return f.inner.Load().Sync(ctx) }

// Allocate implements vfs.FileDescriptionImpl.
func (f *fileFD) Allocate(ctx context.Context, mode, offset, length uint64) error {
	in := f.inner.Load()
	return in.Allocate(ctx, mode, offset, length)
}

// Readiness implements waiter.Waitable.
func (f *fileFD) Readiness(mask waiter.EventMask) waiter.EventMask {
	return f.inner.Load().Readiness(mask)
}

// EventRegister implements waiter.Waitable.
func (f *fileFD) EventRegister(e *waiter.Entry) error { return f.inner.Load().EventRegister(e) }

// EventUnregister implements waiter.Waitable.
func (f *fileFD) EventUnregister(e *waiter.Entry) { f.inner.Load().EventUnregister(e) }

// dirFD is an open directory. Its listing is a snapshot taken when it is
// read from offset 0, so offsets stay valid while the layers change.
type dirFD struct {
	vfs.FileDescriptionDefaults
	inode *inode

	mu       sync.Mutex
	off      int64
	snapshot []vfs.Dirent
	filled   bool
}

// IterDirents implements vfs.FileDescriptionImpl.
func (f *dirFD) IterDirents(ctx context.Context, fd *vfs.FileDescription, cb func(vfs.Dirent) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.filled || f.off == 0 {
		es, err := f.inode.mergedEntries(ctx)
		if err != nil {
			return err
		}
		f.snapshot, f.filled = es, true
	}
	f.off = iterSnapshot(f.inode, f.snapshot, f.off, vfs.ParentIno(ctx, fd.VirtualDentry()), cb)
	return nil
}

// Seek implements vfs.FileDescriptionImpl.
func (f *dirFD) Seek(_ context.Context, _ *vfs.FileDescription, offset int64, whence int32) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return vfs.MoveDirOffset(&f.off, offset, whence)
}

// Read implements vfs.FileDescriptionImpl.
func (f *dirFD) Read(context.Context, *vfs.FileDescription, usermem.IOSequence, vfs.ReadOptions) (int64, error) {
	return 0, unix.EISDIR
}

var (
	_ vfs.FileDescriptionImpl = (*fileFD)(nil)
	_ vfs.FileDescriptionImpl = (*dirFD)(nil)
)
