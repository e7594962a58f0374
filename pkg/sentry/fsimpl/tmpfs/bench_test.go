package tmpfs_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

func BenchmarkWrite4K(b *testing.B) {
	e := newEnv(b, "")
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	src := vfstest.Seq(make([]byte, 4096))
	b.SetBytes(4096)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		// Cycle over 256 pages so the file stays small.
		if _, err := fd.PWrite(e.ctx, src, (i%256)*4096, vfs.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkRead4K(b *testing.B) {
	e := newEnv(b, "")
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	fd.PWrite(e.ctx, vfstest.Seq(make([]byte, 256*4096)), 0, vfs.WriteOptions{})
	dst := vfstest.Seq(make([]byte, 4096))
	b.SetBytes(4096)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := fd.PRead(e.ctx, dst, (i%256)*4096, vfs.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
