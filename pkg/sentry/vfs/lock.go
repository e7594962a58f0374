package vfs

import (
	"context"
	"math"
	"sync"

	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// LockType is the kind of a file lock.
type LockType int

// Lock types (F_RDLCK/F_WRLCK/F_UNLCK, LOCK_SH/LOCK_EX/LOCK_UN).
const (
	ReadLock LockType = iota
	WriteLock
	UnlockType
)

// LockEOF as a range end means "to the end of the file, however it grows".
const LockEOF = math.MaxUint64

// LockRange is the byte range [Start, End) of a record lock.
type LockRange struct {
	Start, End uint64
}

func (r LockRange) overlaps(o LockRange) bool { return r.Start < o.End && o.Start < r.End }

// posixLock is one owner's lock on a range.
type posixLock struct {
	owner any
	pid   int32
	typ   LockType
	r     LockRange
}

// fileLocks are the locks of one inode.
type fileLocks struct {
	mu sync.Mutex
	// bsd holds flock(2) locks by open file description.
	bsd map[*FileDescription]LockType
	// posix holds fcntl(2) record locks, each owner's disjoint and sorted.
	posix []posixLock
	// changed is closed (and replaced) whenever a lock is released, to
	// wake waiters.
	changed chan struct{}
	// users counts operations in progress (waiters included); guarded
	// by VirtualFilesystem.locksMu.
	users int
}

func (l *fileLocks) wakeLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

func (l *fileLocks) waitChanLocked() <-chan struct{} {
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// locks returns the lock state of fd's inode, creating it, and counts the
// caller as a user until putLocks.
func (fd *FileDescription) locks() *fileLocks {
	v := fd.vd.dentry.fs.vfs
	ino := fd.vd.dentry.inode
	v.locksMu.Lock()
	defer v.locksMu.Unlock()
	if v.fileLocks == nil {
		v.fileLocks = make(map[Inode]*fileLocks)
	}
	l, ok := v.fileLocks[ino]
	if !ok {
		l = &fileLocks{}
		v.fileLocks[ino] = l
		v.lockedInodes.Add(1)
	}
	l.users++
	return l
}

// existingLocks is locks for callers that only release: nil (and no
// user counted) when fd's inode has no lock state.
func (fd *FileDescription) existingLocks() *fileLocks {
	v := fd.vd.dentry.fs.vfs
	if v.lockedInodes.Load() == 0 {
		return nil
	}
	v.locksMu.Lock()
	defer v.locksMu.Unlock()
	l, ok := v.fileLocks[fd.vd.dentry.inode]
	if !ok {
		return nil
	}
	l.users++
	return l
}

// putLocks ends a use of l, forgetting it when it holds no lock and nobody
// uses it, so that the table only holds inodes that are locked.
func (fd *FileDescription) putLocks(l *fileLocks) {
	v := fd.vd.dentry.fs.vfs
	v.locksMu.Lock()
	defer v.locksMu.Unlock()
	l.users--
	if l.users > 0 {
		return
	}
	l.mu.Lock()
	empty := len(l.bsd) == 0 && len(l.posix) == 0
	l.mu.Unlock()
	if empty {
		delete(v.fileLocks, fd.vd.dentry.inode)
		v.lockedInodes.Add(-1)
	}
}

// wait blocks until ch is closed, through the context's Blocker.
func waitLock(ctx context.Context, ch <-chan struct{}) error {
	return waiter.BlockerFromContext(ctx).Block(ch)
}

// LockBSD is flock(2) with LOCK_SH (ReadLock) or LOCK_EX (WriteLock): the
// lock belongs to the open file description. Without block, a conflict
// fails with EWOULDBLOCK.
func (fd *FileDescription) LockBSD(ctx context.Context, typ LockType, block bool) error {
	if typ == UnlockType {
		fd.UnlockBSD(ctx)
		return nil
	}
	l := fd.locks()
	defer fd.putLocks(l)
	fd.hasLocks.Store(true)
	for {
		l.mu.Lock()
		conflict := false
		for other, t := range l.bsd {
			if other != fd && (t == WriteLock || typ == WriteLock) {
				conflict = true
				break
			}
		}
		if !conflict {
			if l.bsd == nil {
				l.bsd = make(map[*FileDescription]LockType)
			}
			old, had := l.bsd[fd]
			l.bsd[fd] = typ
			if had && old == WriteLock && typ == ReadLock {
				l.wakeLocked() // a downgrade can admit readers
			}
			l.mu.Unlock()
			return nil
		}
		if !block {
			l.mu.Unlock()
			return unix.EWOULDBLOCK
		}
		// Converting a lock first releases it (flock(2)), so waiting
		// does not deadlock two converting readers.
		if _, had := l.bsd[fd]; had {
			delete(l.bsd, fd)
			l.wakeLocked()
		}
		ch := l.waitChanLocked()
		l.mu.Unlock()
		if err := waitLock(ctx, ch); err != nil {
			return err
		}
	}
}

// UnlockBSD is flock(LOCK_UN).
func (fd *FileDescription) UnlockBSD(ctx context.Context) {
	if !fd.hasLocks.Load() {
		return
	}
	l := fd.locks()
	defer fd.putLocks(l)
	l.mu.Lock()
	if _, ok := l.bsd[fd]; ok {
		delete(l.bsd, fd)
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// ComputeLockRange turns a struct flock's l_whence/l_start/l_len into a
// range, relative to fd's offset or size as whence says (fcntl(2)).
func (fd *FileDescription) ComputeLockRange(ctx context.Context, start, length int64, whence int16) (LockRange, error) {
	var base int64
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		off, err := fd.Seek(ctx, 0, unix.SEEK_CUR)
		if err != nil {
			return LockRange{}, err
		}
		base = off
	case unix.SEEK_END:
		st, err := fd.Stat(ctx, StatOptions{Mask: unix.STATX_SIZE})
		if err != nil {
			return LockRange{}, err
		}
		base = int64(st.Size)
	default:
		return LockRange{}, unix.EINVAL
	}
	s := base + start
	if (start > 0 && s < base) || s < 0 {
		return LockRange{}, unix.EINVAL
	}
	switch {
	case length == 0:
		return LockRange{uint64(s), LockEOF}, nil
	case length > 0:
		e := s + length
		if e < s {
			return LockRange{}, unix.EOVERFLOW
		}
		return LockRange{uint64(s), uint64(e)}, nil
	default:
		// A negative length locks the bytes before start.
		if s+length < 0 {
			return LockRange{}, unix.EINVAL
		}
		return LockRange{uint64(s + length), uint64(s)}, nil
	}
}

// conflictLocked returns the first lock of another owner that conflicts.
func (l *fileLocks) conflictLocked(owner any, typ LockType, r LockRange) (posixLock, bool) {
	for _, pl := range l.posix {
		if pl.owner != owner && pl.r.overlaps(r) && (typ == WriteLock || pl.typ == WriteLock) {
			return pl, true
		}
	}
	return posixLock{}, false
}

// setLocked gives owner typ over r (UnlockType removes), splitting and
// merging owner's existing locks.
func (l *fileLocks) setLocked(owner any, pid int32, typ LockType, r LockRange) {
	out := l.posix[:0:0]
	for _, pl := range l.posix {
		if pl.owner != owner || !pl.r.overlaps(r) {
			out = append(out, pl)
			continue
		}
		if pl.r.Start < r.Start {
			left := pl
			left.r.End = r.Start
			out = append(out, left)
		}
		if pl.r.End > r.End {
			right := pl
			right.r.Start = r.End
			out = append(out, right)
		}
	}
	if typ != UnlockType {
		nl := posixLock{owner: owner, pid: pid, typ: typ, r: r}
		// Merge with adjacent locks of the same owner and type.
		merged := out[:0]
		for _, pl := range out {
			if pl.owner == owner && pl.typ == typ && (pl.r.End == nl.r.Start || nl.r.End == pl.r.Start) {
				nl.r.Start = min(nl.r.Start, pl.r.Start)
				nl.r.End = max(nl.r.End, pl.r.End)
				continue
			}
			merged = append(merged, pl)
		}
		out = append(merged, nl)
	}
	l.posix = out
}

// LockPOSIX is F_SETLK/F_SETLKW (owner: the process) and F_OFD_SETLK
// (owner: the file description). A conflict fails with EAGAIN unless block.
// The access mode must allow the lock type (EBADF).
func (fd *FileDescription) LockPOSIX(ctx context.Context, owner any, pid int32, typ LockType, r LockRange, block bool) error {
	if typ == ReadLock && !fd.readable || typ == WriteLock && !fd.writable {
		return unix.EBADF
	}
	if r.End <= r.Start {
		return unix.EINVAL
	}
	l := fd.locks()
	defer fd.putLocks(l)
	fd.hasLocks.Store(true)
	for {
		l.mu.Lock()
		if typ == UnlockType {
			l.setLocked(owner, pid, typ, r)
			l.wakeLocked()
			l.mu.Unlock()
			return nil
		}
		if _, c := l.conflictLocked(owner, typ, r); !c {
			l.setLocked(owner, pid, typ, r)
			// Replacing a write lock by a read lock can admit readers.
			l.wakeLocked()
			l.mu.Unlock()
			return nil
		}
		if !block {
			l.mu.Unlock()
			return unix.EAGAIN
		}
		ch := l.waitChanLocked()
		l.mu.Unlock()
		if err := waitLock(ctx, ch); err != nil {
			return err
		}
	}
}

// UnlockPOSIX drops owner's locks in r; the kernel calls it with the whole
// range when a process closes any FD of the file (fcntl(2)), whether or
// not that FD was the one used to lock.
func (fd *FileDescription) UnlockPOSIX(ctx context.Context, owner any, r LockRange) {
	l := fd.existingLocks()
	if l == nil {
		return
	}
	defer fd.putLocks(l)
	l.mu.Lock()
	l.setLocked(owner, 0, UnlockType, r)
	l.wakeLocked()
	l.mu.Unlock()
}

// LockInfo describes a conflicting lock (F_GETLK).
type LockInfo struct {
	Type  LockType
	Range LockRange
	PID   int32
}

// TestPOSIX is F_GETLK: the first lock that would block owner from taking
// typ over r, or Type UnlockType if none would.
func (fd *FileDescription) TestPOSIX(ctx context.Context, owner any, typ LockType, r LockRange) (LockInfo, error) {
	if typ == UnlockType {
		return LockInfo{}, unix.EINVAL
	}
	l := fd.locks()
	defer fd.putLocks(l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if pl, c := l.conflictLocked(owner, typ, r); c {
		return LockInfo{Type: pl.typ, Range: pl.r, PID: pl.pid}, nil
	}
	return LockInfo{Type: UnlockType}, nil
}

// releaseLocks drops fd's flock and OFD locks when it is closed.
func (fd *FileDescription) releaseLocks(ctx context.Context) {
	if !fd.hasLocks.Load() {
		return
	}
	fd.UnlockBSD(ctx)
	fd.UnlockPOSIX(ctx, fd, LockRange{0, LockEOF})
}
