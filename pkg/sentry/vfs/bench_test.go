package vfs_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

func benchEnv(b *testing.B) (*env, *vfs.PathOperation) {
	e := newEnv(b)
	e.must(e.mkdir("/usr", 0o755))
	e.must(e.mkdir("/usr/lib", 0o755))
	e.writeFile("/usr/lib/file", "x")
	return e, vfstest.Pop(e.root, "/usr/lib/file")
}

func BenchmarkStat(b *testing.B) {
	e, pop := benchEnv(b)
	opts := &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.vfs.StatAt(e.ctx, e.creds, pop, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenClose(b *testing.B) {
	e, pop := benchEnv(b)
	opts := &vfs.OpenOptions{Flags: unix.O_RDONLY}
	b.ReportAllocs()
	for b.Loop() {
		fd, err := e.vfs.OpenAt(e.ctx, e.creds, pop, opts)
		if err != nil {
			b.Fatal(err)
		}
		fd.DecRef(e.ctx)
	}
}

func BenchmarkStatParallel(b *testing.B) {
	e, pop := benchEnv(b)
	opts := &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.vfs.StatAt(e.ctx, e.creds, pop, opts); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
