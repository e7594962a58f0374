package vfs_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// FuzzPathResolution walks arbitrary application paths with arbitrary
// resolve flags through a tree with symlinks, loops and a mount. Nothing
// may panic, every error must be an errno, and whatever resolves must stat
// the same when re-resolved from its own getcwd-style path.
func FuzzPathResolution(f *testing.F) {
	for _, s := range []string{"/", "", ".", "..", "/a/b/../c", "a//b/", "/l1", "/loop", "/m/x/../..", "/abs/..", strings4096(), "/a/\x00b", "/dl/"} {
		f.Add(s, uint64(0), true)
	}
	f.Add("/abs", uint64(0x08), false)
	f.Add("../../a", uint64(0x10), true)
	f.Fuzz(func(t *testing.T, path string, resolve uint64, follow bool) {
		e := newEnv(t)
		e.must(e.mkdir("/a", 0o755))
		e.must(e.mkdir("/a/b", 0o755))
		e.must(e.mkdir("/m", 0o755))
		e.writeFile("/a/c", "c")
		e.must(e.symlink("a/b", "/l1"))
		e.must(e.symlink("loop", "/loop"))
		e.must(e.symlink("/a", "/abs"))
		e.must(e.symlink("nowhere", "/dl"))
		if _, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/m"), "tmpfs", &vfs.MountOptions{}); err != nil {
			t.Fatal(err)
		}
		e.must(e.mkdir("/m/x", 0o755))
		pop := &vfs.PathOperation{Root: e.root, Start: e.root, Path: path, FollowFinalSymlink: follow, Resolve: resolve & 0x1f}
		vd, err := e.vfs.GetDentryAt(e.ctx, e.creds, pop, nil)
		if err != nil {
			if _, ok := err.(unix.Errno); !ok {
				t.Fatalf("non-errno error %T %v", err, err)
			}
			return
		}
		defer vd.DecRef(e.ctx)
		p, err := e.vfs.PathnameWithDeleted(e.ctx, e.root, vd)
		if err != nil {
			t.Fatal(err)
		}
		st1, err := e.vfs.StatAt(e.ctx, e.creds, &vfs.PathOperation{Root: e.root, Start: vd, AllowEmptyPath: true}, &vfs.StatOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st2, err := e.lstat(p)
		if err != nil {
			t.Fatalf("re-resolving %q (from %q): %v", p, path, err)
		}
		if st1.Ino != st2.Ino || st1.Dev_minor != st2.Dev_minor {
			t.Fatalf("%q resolved to %q, which names another file", path, p)
		}
	})
}

func strings4096() string {
	b := make([]byte, 4096)
	for i := range b {
		b[i] = 'a'
		if i%2 == 0 {
			b[i] = '/'
		}
	}
	return string(b)
}
