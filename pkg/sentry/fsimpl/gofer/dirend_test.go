package gofer_test

import (
	"os"
	"sort"
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// Once a listing has reached its end, reading on without a rewind stays at
// the end (POSIX leaves entries added after opendir unspecified, and asking
// the Gofer again would cost a round trip per probe); a rewind lists afresh
// and shows what was added.
func TestReaddirEndRememberedUntilRewind(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.Mkdir(e.hostPath("d"), 0o755))
	for _, n := range []string{"a", "b"} {
		f, err := os.Create(e.hostPath("d/" + n))
		e.must(err)
		f.Close()
	}
	fd := e.open("/d", unix.O_RDONLY|unix.O_DIRECTORY)
	defer fd.DecRef(e.ctx)
	names, err := vfstest.ReadDir(e.ctx, fd)
	e.must(err)
	sort.Strings(names)
	if want := []string{".", "..", "a", "b"}; len(names) != len(want) || names[2] != "a" || names[3] != "b" {
		t.Fatalf("listing %v, want %v", names, want)
	}
	f, err := os.Create(e.hostPath("d/c"))
	e.must(err)
	f.Close()
	more := 0
	e.must(fd.IterDirents(e.ctx, func(vfs.Dirent) bool { more++; return true }))
	if more != 0 {
		t.Fatalf("%d entries past the end without a rewind", more)
	}
	_, err = fd.Seek(e.ctx, 0, unix.SEEK_SET)
	e.must(err)
	names, err = vfstest.ReadDir(e.ctx, fd)
	e.must(err)
	sort.Strings(names)
	if len(names) != 5 || names[4] != "c" {
		t.Fatalf("listing after rewind %v, want the new entry c", names)
	}
}
