package gofer_test

import (
	"fmt"
	"os"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// A walk over many names (find /) keeps only the cache's limit of unused
// dentries and the inodes (fids) behind them; what is in use stays, and
// forgotten names are found again with the same identity.
func TestDentryCacheIsBounded(t *testing.T) {
	const limit, dirs, files = 64, 10, 60
	e := newEnv(t, envOpts{dcacheLimit: limit})
	for d := 0; d < dirs; d++ {
		e.must(os.Mkdir(e.hostPath(fmt.Sprint("d", d)), 0o755))
		for f := 0; f < files; f++ {
			e.must(os.WriteFile(e.hostPath(fmt.Sprintf("d%d/f%d", d, f)), []byte(fmt.Sprint(d, f)), 0o644))
		}
	}
	// Keep one file open and one directory as a working directory would
	// be: referenced.
	held := e.open("/d0/f0", unix.O_RDWR)
	defer held.DecRef(e.ctx)
	cwd, err := e.v.GetDentryAt(e.ctx, e.creds, e.pop("/d1"), nil)
	e.must(err)
	defer cwd.DecRef(e.ctx)

	inos := make(map[string]uint64)
	for d := 0; d < dirs; d++ {
		for f := 0; f < files; f++ {
			p := fmt.Sprintf("/d%d/f%d", d, f)
			inos[p] = e.stat(p).Ino
		}
	}
	fs := e.root.Mount().Filesystem()
	if n := fs.CachedDentries(); n > limit {
		t.Errorf("%d unused dentries cached, limit %d", n, limit)
	}
	// Live inodes: the cached ones, the referenced ones and the
	// directories above them, far fewer than the tree's 611.
	if n := gofer.LiveInodes(fs); n > limit+dirs+4 {
		t.Errorf("%d inodes live after walking %d names", n, dirs*files)
	}
	// Everything is still reachable, with the same inode numbers.
	for p, ino := range inos {
		if got := e.stat(p).Ino; got != ino {
			t.Fatalf("%s: ino %d after eviction, was %d", p, got, ino)
		}
	}
	// The open file's dentry stayed: a write through it is what the path
	// reads.
	if _, err := held.Write(e.ctx, vfstest.Seq([]byte("XY")), vfs.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	fd := e.open("/d0/f0", unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	if got := readAll(t, e.ctx, fd); string(got) != "XY0" { // over "0 0"
		t.Errorf("path reads %q after writing through the held descriptor", got)
	}
	// The held directory still resolves relative paths.
	st, err := e.v.StatAt(e.ctx, e.creds, vfstest.Pop(cwd, "f3"), &vfs.StatOptions{})
	if err != nil || st.Ino != inos["/d1/f3"] {
		t.Errorf("relative stat from the held directory: %v ino %d", err, st.Ino)
	}
}

// BenchmarkWalkManyNames stats names round-robin over a tree larger than
// the dentry cache, so that most lookups evict one name and miss.
func BenchmarkWalkManyNames(b *testing.B) {
	for _, limit := range []int{-1, 256} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			e := newEnv(b, envOpts{dcacheLimit: limit})
			const n = 1024
			pops := make([]*vfs.PathOperation, n)
			for i := range pops {
				e.must(os.WriteFile(e.hostPath(fmt.Sprint("f", i)), nil, 0o644))
				pops[i] = e.pop(fmt.Sprint("/f", i))
			}
			opts := &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS}
			i := 0
			for b.Loop() {
				if _, err := e.v.StatAt(e.ctx, e.creds, pops[i%n], opts); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// Lookups, opens and renames racing with eviction from a tiny cache keep
// every name resolvable to its file.
func TestDentryEvictionUnderConcurrency(t *testing.T) {
	e := newEnv(t, envOpts{dcacheLimit: 4})
	const n = 40
	for i := 0; i < n; i++ {
		e.must(os.WriteFile(e.hostPath(fmt.Sprint("f", i)), []byte(fmt.Sprint(i)), 0o644))
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func(g int) {
			for r := 0; r < 50; r++ {
				i := (g*13 + r*7) % n
				fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(fmt.Sprint("/f", i)), &vfs.OpenOptions{Flags: unix.O_RDONLY})
				if err != nil {
					done <- fmt.Errorf("open f%d: %w", i, err)
					return
				}
				b, err := vfstest.Read(e.ctx, fd, 16)
				fd.DecRef(e.ctx)
				if err != nil || string(b) != fmt.Sprint(i) {
					done <- fmt.Errorf("f%d reads %q, %v", i, b, err)
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if c := e.root.Mount().Filesystem().CachedDentries(); c > 4 {
		t.Errorf("%d cached, limit 4", c)
	}
}
