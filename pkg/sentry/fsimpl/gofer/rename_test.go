package gofer_test

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// rename(2) over an existing name replaces it atomically on the host: a
// host reader of the target never finds it missing.
func TestRenameOverIsAtomic(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("target"), []byte("v0"), 0o644))
	var stop atomic.Bool
	var missing atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := os.Lstat(e.hostPath("target")); errors.Is(err, fs.ErrNotExist) {
				missing.Add(1)
			}
		}
	}()
	for n := 0; n < 200; n++ {
		fd := e.open("/tmp.new", unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC)
		fd.DecRef(e.ctx)
		e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/tmp.new"), e.pop("/target"), &vfs.RenameOptions{}))
	}
	stop.Store(true)
	wg.Wait()
	if m := missing.Load(); m != 0 {
		t.Errorf("the host saw the target missing %d times during renames over it", m)
	}
	if _, err := os.Lstat(e.hostPath("tmp.new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("source still on the host: %v", err)
	}
}

// The replaced file stays usable through a descriptor opened before, and
// the new name shows the moved file.
func TestRenameOverKeepsOpenReplacedFile(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("a"), []byte("A"), 0o644))
	e.must(os.WriteFile(e.hostPath("b"), []byte("B"), 0o644))
	old := e.open("/b", unix.O_RDONLY)
	defer old.DecRef(e.ctx)
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/a"), e.pop("/b"), &vfs.RenameOptions{}))
	if got := readAll(t, e.ctx, old); string(got) != "B" {
		t.Errorf("replaced file reads %q", got)
	}
	fd := e.open("/b", unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	if got := readAll(t, e.ctx, fd); string(got) != "A" {
		t.Errorf("/b reads %q after rename", got)
	}
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/a"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Errorf("stat /a after rename: %v", err)
	}
	wantNlink := func(fd *vfs.FileDescription, n uint32) {
		t.Helper()
		st, err := fd.Stat(e.ctx, vfs.StatOptions{Mask: unix.STATX_NLINK})
		if err != nil || st.Nlink != n {
			t.Errorf("nlink = %d, %v; want %d", st.Nlink, err, n)
		}
	}
	wantNlink(old, 0)
	wantNlink(fd, 1)
}
