package kernel

import (
	"context"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// FDFlags are the per-descriptor flags (as opposed to the status flags,
// which belong to the open file description).
type FDFlags struct {
	CloseOnExec bool
}

type fdEntry struct {
	file  *vfs.FileDescription
	flags FDFlags
}

// FDTable maps descriptors to open file descriptions. It is shared by
// CLONE_FILES tasks (reference counted) and copied by fork.
type FDTable struct {
	refs atomic.Int64
	mu   sync.Mutex
	fds  []fdEntry // index = descriptor; nil file = free
	// lowestFree is a hint: no descriptor below it is free.
	lowestFree int32
}

// NewFDTable returns an empty table with one reference.
func NewFDTable() *FDTable {
	t := &FDTable{}
	t.refs.Store(1)
	return t
}

// IncRef adds a sharer.
func (t *FDTable) IncRef() { t.refs.Add(1) }

// DecRef drops a sharer; the last closes every file.
func (t *FDTable) DecRef(ctx context.Context) {
	if t.refs.Add(-1) != 0 {
		return
	}
	t.mu.Lock()
	fds := t.fds
	t.fds = nil
	t.mu.Unlock()
	for _, e := range fds {
		if e.file != nil {
			closeFile(ctx, e.file)
		}
	}
}

// Fork returns a copy holding its own references to the same files.
func (t *FDTable) Fork() *FDTable {
	n := NewFDTable()
	t.mu.Lock()
	defer t.mu.Unlock()
	n.fds = make([]fdEntry, len(t.fds))
	for i, e := range t.fds {
		if e.file != nil {
			e.file.IncRef()
		}
		n.fds[i] = e
	}
	n.lowestFree = t.lowestFree
	return n
}

// Get returns the file at fd with a reference the caller must DecRef.
func (t *FDTable) Get(fd int32) (*vfs.FileDescription, FDFlags, bool) {
	t.mu.Lock()
	if fd < 0 || int(fd) >= len(t.fds) || t.fds[fd].file == nil {
		t.mu.Unlock()
		return nil, FDFlags{}, false
	}
	e := t.fds[fd]
	e.file.IncRef()
	t.mu.Unlock()
	return e.file, e.flags, true
}

// GetFile is Get without the flags: nil when fd is not open.
func (t *FDTable) GetFile(fd int32) *vfs.FileDescription {
	f, _, _ := t.Get(fd)
	return f
}

// NewFD installs file at the lowest free descriptor >= minFD below limit
// (RLIMIT_NOFILE) and takes a reference to it.
func (t *FDTable) NewFD(minFD int32, limit uint64, file *vfs.FileDescription, flags FDFlags) (int32, error) {
	if minFD < 0 {
		return -1, unix.EINVAL
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	start := max(minFD, t.lowestFree)
	for fd := start; ; fd++ {
		if uint64(fd) >= limit {
			return -1, unix.EMFILE
		}
		if int(fd) >= len(t.fds) {
			t.fds = append(t.fds, make([]fdEntry, int(fd)+1-len(t.fds))...)
		}
		if t.fds[fd].file == nil {
			file.IncRef()
			t.fds[fd] = fdEntry{file, flags}
			if start == t.lowestFree {
				t.lowestFree = fd + 1
			}
			return fd, nil
		}
	}
}

// NewFDs installs files at the lowest free descriptors (pipe(2)); on
// failure none is installed.
func (t *FDTable) NewFDs(ctx context.Context, limit uint64, files []*vfs.FileDescription, flags FDFlags) ([]int32, error) {
	fds := make([]int32, 0, len(files))
	for _, f := range files {
		fd, err := t.NewFD(0, limit, f, flags)
		if err != nil {
			for _, d := range fds {
				t.Remove(ctx, d)
			}
			return nil, err
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// SetFD installs file at fd, closing what was there (dup2).
func (t *FDTable) SetFD(ctx context.Context, fd int32, limit uint64, file *vfs.FileDescription, flags FDFlags) error {
	if fd < 0 || uint64(fd) >= limit {
		return unix.EBADF
	}
	file.IncRef()
	t.mu.Lock()
	if int(fd) >= len(t.fds) {
		t.fds = append(t.fds, make([]fdEntry, int(fd)+1-len(t.fds))...)
	}
	old := t.fds[fd].file
	t.fds[fd] = fdEntry{file, flags}
	t.mu.Unlock()
	if old != nil {
		closeFile(ctx, old)
	}
	return nil
}

// Remove closes fd.
func (t *FDTable) Remove(ctx context.Context, fd int32) error {
	t.mu.Lock()
	if fd < 0 || int(fd) >= len(t.fds) || t.fds[fd].file == nil {
		t.mu.Unlock()
		return unix.EBADF
	}
	f := t.fds[fd].file
	t.fds[fd] = fdEntry{}
	if fd < t.lowestFree {
		t.lowestFree = fd
	}
	t.mu.Unlock()
	closeFile(ctx, f)
	return nil
}

// GetFlags returns fd's flags (fcntl F_GETFD).
func (t *FDTable) GetFlags(fd int32) (FDFlags, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || int(fd) >= len(t.fds) || t.fds[fd].file == nil {
		return FDFlags{}, unix.EBADF
	}
	return t.fds[fd].flags, nil
}

// SetFlags changes fd's flags (fcntl F_SETFD).
func (t *FDTable) SetFlags(fd int32, flags FDFlags) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fd < 0 || int(fd) >= len(t.fds) || t.fds[fd].file == nil {
		return unix.EBADF
	}
	t.fds[fd].flags = flags
	return nil
}

// lockOwner is the owner of the POSIX record locks a close through ctx
// drops: the calling task's process (fcntl(2): closing any descriptor of
// a file releases the process's locks on it).
func lockOwner(ctx context.Context) any {
	if t, ok := ctx.(*Task); ok {
		return t.tg
	}
	return nil
}

// closeFile drops the table's reference to f, releasing the closing
// process's record locks first.
func closeFile(ctx context.Context, f *vfs.FileDescription) {
	if owner := lockOwner(ctx); owner != nil {
		f.UnlockPOSIX(ctx, owner, vfs.LockRange{Start: 0, End: vfs.LockEOF})
	}
	f.DecRef(ctx)
}

// closeOnExec closes descriptors marked FD_CLOEXEC (execve).
func (t *FDTable) closeOnExec(ctx context.Context) {
	t.mu.Lock()
	var closing []*vfs.FileDescription
	for i, e := range t.fds {
		if e.file != nil && e.flags.CloseOnExec {
			closing = append(closing, e.file)
			t.fds[i] = fdEntry{}
			if int32(i) < t.lowestFree {
				t.lowestFree = int32(i)
			}
		}
	}
	t.mu.Unlock()
	for _, f := range closing {
		closeFile(ctx, f)
	}
}

// RemoveRange closes (or, with cloexecOnly, marks close-on-exec) every
// open descriptor in [first, last] (close_range(2)).
func (t *FDTable) RemoveRange(ctx context.Context, first, last uint32, cloexecOnly bool) {
	t.mu.Lock()
	var closing []*vfs.FileDescription
	for i := uint64(first); i <= uint64(last) && i < uint64(len(t.fds)); i++ {
		e := &t.fds[i]
		if e.file == nil {
			continue
		}
		if cloexecOnly {
			e.flags.CloseOnExec = true
			continue
		}
		closing = append(closing, e.file)
		*e = fdEntry{}
		if int32(i) < t.lowestFree {
			t.lowestFree = int32(i)
		}
	}
	t.mu.Unlock()
	for _, f := range closing {
		closeFile(ctx, f)
	}
}
