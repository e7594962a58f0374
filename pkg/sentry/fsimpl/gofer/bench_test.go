package gofer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// Each benchmark has a gofer case (through the vfs, the 9P client and an
// in-process fsgofer) and a native case (the same host syscalls directly).

func BenchmarkStatCached(b *testing.B) {
	e := newEnv(b, envOpts{})
	e.must(os.MkdirAll(e.hostPath("a/b/c"), 0o755))
	e.must(os.WriteFile(e.hostPath("a/b/c/f"), []byte("x"), 0o644))
	b.Run("gofer", func(b *testing.B) {
		pop := e.pop("/a/b/c/f")
		opts := &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS}
		for b.Loop() {
			if _, err := e.v.StatAt(e.ctx, e.creds, pop, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("native", func(b *testing.B) {
		p := e.hostPath("a/b/c/f")
		var st unix.Stat_t
		for b.Loop() {
			if err := unix.Stat(p, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkOpenReadClose(b *testing.B) {
	e := newEnv(b, envOpts{})
	e.must(os.WriteFile(e.hostPath("small"), make([]byte, 4096), 0o644))
	buf := make([]byte, 4096)
	b.Run("gofer", func(b *testing.B) {
		pop := e.pop("/small")
		opts := &vfs.OpenOptions{Flags: unix.O_RDONLY}
		seq := vfstest.Seq(buf)
		for b.Loop() {
			fd, err := e.v.OpenAt(e.ctx, e.creds, pop, opts)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := fd.Read(e.ctx, seq, vfs.ReadOptions{}); err != nil || n != 4096 {
				b.Fatal(n, err)
			}
			fd.DecRef(e.ctx)
		}
	})
	b.Run("native", func(b *testing.B) {
		p := e.hostPath("small")
		for b.Loop() {
			fd, err := unix.Open(p, unix.O_RDONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := unix.Read(fd, buf); err != nil || n != 4096 {
				b.Fatal(n, err)
			}
			unix.Close(fd)
		}
	})
}

func BenchmarkSequentialRead100MiB(b *testing.B) {
	const size = 100 << 20
	e := newEnv(b, envOpts{})
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	f, err := os.Create(e.hostPath("big"))
	e.must(err)
	for i := 0; i < size/len(chunk); i++ {
		f.Write(chunk)
	}
	f.Close()
	b.Run("gofer", func(b *testing.B) {
		b.SetBytes(size)
		seq := vfstest.Seq(chunk)
		for b.Loop() {
			fd := e.open("/big", unix.O_RDONLY)
			var total int64
			for {
				n, err := fd.Read(e.ctx, seq, vfs.ReadOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
				total += n
			}
			fd.DecRef(e.ctx)
			if total != size {
				b.Fatalf("read %d", total)
			}
		}
	})
	b.Run("native", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			fd, err := unix.Open(e.hostPath("big"), unix.O_RDONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			var total int
			for {
				n, err := unix.Read(fd, chunk)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
				total += n
			}
			unix.Close(fd)
			if total != size {
				b.Fatalf("read %d", total)
			}
		}
	})
}

func BenchmarkReaddir10000(b *testing.B) {
	const n = 10000
	e := newEnv(b, envOpts{})
	e.must(os.Mkdir(e.hostPath("d"), 0o755))
	for i := 0; i < n; i++ {
		f, err := os.Create(filepath.Join(e.hostPath("d"), fmt.Sprintf("file-%05d", i)))
		e.must(err)
		f.Close()
	}
	b.Run("gofer", func(b *testing.B) {
		for b.Loop() {
			fd := e.open("/d", unix.O_RDONLY|unix.O_DIRECTORY)
			count := 0
			if err := fd.IterDirents(e.ctx, func(vfs.Dirent) bool { count++; return true }); err != nil {
				b.Fatal(err)
			}
			fd.DecRef(e.ctx)
			if count != n+2 {
				b.Fatalf("%d entries", count)
			}
		}
	})
	b.Run("native", func(b *testing.B) {
		buf := make([]byte, 64<<10)
		for b.Loop() {
			fd, err := unix.Open(e.hostPath("d"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				b.Fatal(err)
			}
			for {
				k, err := unix.Getdents(fd, buf)
				if err != nil {
					b.Fatal(err)
				}
				if k == 0 {
					break
				}
			}
			unix.Close(fd)
		}
	})
}

// BenchmarkStatRevalidation is the cost of the shared cache policy's
// per-component revalidation against the exclusive policy's trust, for a
// stat of a cached four-component path.
func BenchmarkStatRevalidation(b *testing.B) {
	for _, c := range []struct {
		name   string
		policy gofer.CachePolicy
	}{{"exclusive", gofer.CacheExclusive}, {"shared", gofer.CacheShared}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, envOpts{cache: c.policy})
			e.must(os.MkdirAll(e.hostPath("a/b/c"), 0o755))
			e.must(os.WriteFile(e.hostPath("a/b/c/f"), []byte("x"), 0o644))
			pop := e.pop("/a/b/c/f")
			opts := &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS}
			for b.Loop() {
				if _, err := e.v.StatAt(e.ctx, e.creds, pop, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
