package gofer_test

import (
	"os"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

func readFile(e *env, path string) string {
	e.t.Helper()
	fd := e.open(path, unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	return string(readAll(e.t, e.ctx, fd))
}

// In shared mode a cached name that the host replaced or removed is looked
// up again; a descriptor opened before keeps the file it opened.
func TestSharedRevalidatesCachedNames(t *testing.T) {
	e := newEnv(t, envOpts{cache: gofer.CacheShared})
	e.must(os.WriteFile(e.hostPath("f"), []byte("old"), 0o644))
	e.must(os.MkdirAll(e.hostPath("d/sub"), 0o755))
	e.must(os.WriteFile(e.hostPath("d/sub/x"), []byte("x"), 0o644))
	if got := readFile(e, "/f"); got != "old" {
		t.Fatalf("read %q", got)
	}
	oldIno := e.stat("/f").Ino
	held := e.open("/f", unix.O_RDONLY)
	defer held.DecRef(e.ctx)
	e.stat("/d/sub/x")

	// Replace /f on the host by rename over it.
	e.must(os.WriteFile(e.hostPath("f.new"), []byte("new contents"), 0o644))
	e.must(os.Rename(e.hostPath("f.new"), e.hostPath("f")))
	st := e.stat("/f")
	var hs unix.Stat_t
	e.must(unix.Stat(e.hostPath("f"), &hs))
	if st.Ino == oldIno || st.Ino != hs.Ino || st.Size != 12 {
		t.Errorf("after host rename-over: ino %d (old %d, host %d) size %d", st.Ino, oldIno, hs.Ino, st.Size)
	}
	if got := readFile(e, "/f"); got != "new contents" {
		t.Errorf("reads %q after host rename-over", got)
	}
	if got := readAll(t, e.ctx, held); string(got) != "old" {
		t.Errorf("descriptor opened before reads %q", got)
	}

	// Remove a cached directory tree on the host.
	e.must(os.RemoveAll(e.hostPath("d")))
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/d/sub/x"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Errorf("stat of a host-removed tree: %v", err)
	}
	// And make a non-directory where the directory was.
	e.must(os.WriteFile(e.hostPath("d"), []byte("file now"), 0o644))
	if st := e.stat("/d"); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("/d mode %o, want a regular file", st.Mode)
	}
	// The sandbox can create over a name the host removed.
	e.must(os.Remove(e.hostPath("d")))
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/d"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, Mode: 0o600})
	if err != nil {
		t.Fatalf("O_EXCL create where the host removed the file: %v", err)
	}
	fd.DecRef(e.ctx)
}

// Exclusive mode keeps trusting its cache: no revalidation round trips.
func TestExclusiveDoesNotRevalidateNames(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("f"), []byte("old"), 0o644))
	ino := e.stat("/f").Ino
	e.must(os.WriteFile(e.hostPath("f.new"), []byte("new"), 0o644))
	e.must(os.Rename(e.hostPath("f.new"), e.hostPath("f")))
	if st := e.stat("/f"); st.Ino != ino {
		t.Errorf("exclusive mode looked the name up again: ino %d, cached %d", st.Ino, ino)
	}
}

// A directory replaced in the middle of a cached path is seen by the
// next walk (one Twalk checks the whole cached run of names).
func TestSharedRevalidatesMidPath(t *testing.T) {
	e := newEnv(t, envOpts{cache: gofer.CacheShared})
	e.must(os.MkdirAll(e.hostPath("a/b/c"), 0o755))
	e.must(os.WriteFile(e.hostPath("a/b/c/f"), []byte("old"), 0o644))
	if got := readFile(e, "/a/b/c/f"); got != "old" {
		t.Fatalf("read %q", got)
	}
	e.must(os.MkdirAll(e.hostPath("new/c"), 0o755))
	e.must(os.WriteFile(e.hostPath("new/c/f"), []byte("replaced"), 0o644))
	e.must(os.RemoveAll(e.hostPath("a/b")))
	e.must(os.Rename(e.hostPath("new"), e.hostPath("a/b")))
	if got := readFile(e, "/a/b/c/f"); got != "replaced" {
		t.Errorf("after the host replaced a/b: read %q", got)
	}
	e.must(os.Remove(e.hostPath("a/b/c/f")))
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/a/b/c/f"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Errorf("stat after the host removed the file: %v", err)
	}
	// Deeper than one Twalk can carry (16 names).
	deep := "x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x"
	e.must(os.MkdirAll(e.hostPath(deep), 0o755))
	e.must(os.WriteFile(e.hostPath(deep+"/f"), []byte("deep"), 0o644))
	for i := 0; i < 2; i++ {
		if got := readFile(e, "/"+deep+"/f"); got != "deep" {
			t.Errorf("deep read %d: %q", i, got)
		}
	}
}
