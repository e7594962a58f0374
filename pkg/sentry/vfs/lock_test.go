package vfs_test

import (
	"context"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func TestFlock(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "x")
	open := func() *vfs.FileDescription {
		fd, err := e.open("/f", unix.O_RDONLY, 0)
		e.must(err)
		return fd
	}
	a, b := open(), open()
	defer b.DecRef(e.ctx)
	wantErr(t, "a LOCK_SH", a.LockBSD(e.ctx, vfs.ReadLock, false), nil)
	wantErr(t, "b LOCK_SH alongside", b.LockBSD(e.ctx, vfs.ReadLock, false), nil)
	wantErr(t, "b LOCK_EX against a's LOCK_SH", b.LockBSD(e.ctx, vfs.WriteLock, false), unix.EWOULDBLOCK)
	b.UnlockBSD(e.ctx)
	wantErr(t, "a upgrades", a.LockBSD(e.ctx, vfs.WriteLock, false), nil)
	wantErr(t, "b LOCK_SH against LOCK_EX", b.LockBSD(e.ctx, vfs.ReadLock, false), unix.EWOULDBLOCK)

	done := make(chan error)
	go func() { done <- b.LockBSD(e.ctx, vfs.WriteLock, true) }()
	select {
	case err := <-done:
		t.Fatalf("blocking flock returned early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	a.DecRef(e.ctx) // closing the last reference releases a's lock
	if err := <-done; err != nil {
		t.Fatalf("blocking flock: %v", err)
	}
	// An interrupted wait returns the Blocker's error.
	c := open()
	defer c.DecRef(e.ctx)
	cctx, cancel := context.WithCancel(e.ctx)
	bctx := waiter.ContextWithBlocker(e.ctx, waiter.ContextBlocker{Ctx: cctx, Err: unix.EINTR})
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	wantErr(t, "interrupted flock", c.LockBSD(bctx, vfs.ReadLock, true), unix.EINTR)
}

func TestPOSIXLocks(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "0123456789")
	rw, err := e.open("/f", unix.O_RDWR, 0)
	e.must(err)
	defer rw.DecRef(e.ctx)
	ro, err := e.open("/f", unix.O_RDONLY, 0)
	e.must(err)
	defer ro.DecRef(e.ctx)
	p1, p2 := "proc1", "proc2"
	rng := func(s, e uint64) vfs.LockRange { return vfs.LockRange{Start: s, End: e} }

	wantErr(t, "write lock on read-only fd", ro.LockPOSIX(e.ctx, p1, 1, vfs.WriteLock, rng(0, 1), false), unix.EBADF)
	e.must(rw.LockPOSIX(e.ctx, p1, 1, vfs.WriteLock, rng(0, 100), false))
	// p1 unlocks the middle; p2 may then lock inside the hole only.
	e.must(rw.LockPOSIX(e.ctx, p1, 1, vfs.UnlockType, rng(40, 60), false))
	wantErr(t, "p2 in the hole", rw.LockPOSIX(e.ctx, p2, 2, vfs.WriteLock, rng(40, 60), false), nil)
	wantErr(t, "p2 overlapping p1's left part", rw.LockPOSIX(e.ctx, p2, 2, vfs.ReadLock, rng(30, 45), false), unix.EAGAIN)
	info, err := ro.TestPOSIX(e.ctx, p2, vfs.ReadLock, rng(0, 10))
	e.must(err)
	if info.Type != vfs.WriteLock || info.PID != 1 || info.Range != rng(0, 40) {
		t.Errorf("F_GETLK = %+v", info)
	}
	info, _ = ro.TestPOSIX(e.ctx, p1, vfs.WriteLock, rng(0, 10))
	if info.Type != vfs.UnlockType {
		t.Errorf("own locks never conflict: %+v", info)
	}
	// p1 downgrades to read; p2 can share-read it.
	e.must(rw.LockPOSIX(e.ctx, p1, 1, vfs.ReadLock, rng(0, 40), false))
	wantErr(t, "p2 read over p1 read", ro.LockPOSIX(e.ctx, p2, 2, vfs.ReadLock, rng(0, 40), false), nil)

	// A blocked F_SETLKW wakes when the conflicting lock goes.
	done := make(chan error)
	go func() { done <- rw.LockPOSIX(e.ctx, p2, 2, vfs.WriteLock, rng(60, 70), true) }()
	select {
	case err := <-done:
		t.Fatalf("F_SETLKW returned early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	rw.UnlockPOSIX(e.ctx, p1, rng(0, vfs.LockEOF))
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Ranges from whence.
	rw.Seek(e.ctx, 4, unix.SEEK_SET)
	for _, c := range []struct {
		start, length int64
		whence        int16
		want          vfs.LockRange
		err           error
	}{
		{2, 3, unix.SEEK_SET, rng(2, 5), nil},
		{1, 0, unix.SEEK_CUR, rng(5, vfs.LockEOF), nil},
		{-2, 2, unix.SEEK_END, rng(8, 10), nil},
		{5, -3, unix.SEEK_SET, rng(2, 5), nil},
		{1, -3, unix.SEEK_SET, vfs.LockRange{}, unix.EINVAL},
		{-20, 1, unix.SEEK_CUR, vfs.LockRange{}, unix.EINVAL},
	} {
		got, err := rw.ComputeLockRange(e.ctx, c.start, c.length, c.whence)
		wantErr(t, "ComputeLockRange", err, c.err)
		if err == nil && got != c.want {
			t.Errorf("ComputeLockRange(%d, %d, %d) = %v, want %v", c.start, c.length, c.whence, got, c.want)
		}
	}
	_ = vfstest.Pop
}

// Closing any descriptor of a file releases the process's record locks on
// it, even one opened after the lock was taken that never locked
// (fcntl(2)).
func TestUnlockPOSIXThroughAnotherDescription(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "0123456789")
	e.writeFile("/g", "")
	locker, err := e.open("/f", unix.O_RDWR, 0)
	e.must(err)
	defer locker.DecRef(e.ctx)
	other, err := e.open("/f", unix.O_RDONLY, 0)
	e.must(err)
	defer other.DecRef(e.ctx)
	unrelated, err := e.open("/g", unix.O_RDONLY, 0)
	e.must(err)
	defer unrelated.DecRef(e.ctx)
	all := vfs.LockRange{Start: 0, End: vfs.LockEOF}

	e.must(locker.LockPOSIX(e.ctx, "p1", 1, vfs.WriteLock, all, false))
	// Another file's close leaves the lock alone.
	unrelated.UnlockPOSIX(e.ctx, "p1", all)
	wantErr(t, "p2 while p1 holds the lock", locker.LockPOSIX(e.ctx, "p2", 2, vfs.WriteLock, all, false), unix.EAGAIN)
	// Another process's close through the second description too.
	other.UnlockPOSIX(e.ctx, "p2", all)
	wantErr(t, "p2 after its own close", locker.LockPOSIX(e.ctx, "p2", 2, vfs.WriteLock, all, false), unix.EAGAIN)
	other.UnlockPOSIX(e.ctx, "p1", all)
	wantErr(t, "p2 after p1 closed another fd", locker.LockPOSIX(e.ctx, "p2", 2, vfs.WriteLock, all, false), nil)
}
