package overlay_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// Stat and open+read of a lower file through the overlay, against the
// same on the lower tmpfs directly.
func benchStat(b *testing.B, overlay bool) {
	e := newEnv(b)
	root := e.lower
	if overlay {
		root = e.root
	}
	pop := vfstest.Pop(root, "/dir/sub/x")
	opts := &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.v.StatAt(e.ctx, e.creds, pop, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatOverlayLower(b *testing.B) { benchStat(b, true) }
func BenchmarkStatTmpfs(b *testing.B)        { benchStat(b, false) }

func benchOpenRead(b *testing.B, overlay bool) {
	e := newEnv(b)
	root := e.lower
	if overlay {
		root = e.root
	}
	pop := vfstest.Pop(root, "/dir/sub/x")
	buf := make([]byte, 64)
	seq := vfstest.Seq(buf)
	b.ReportAllocs()
	for b.Loop() {
		fd, err := e.v.OpenAt(e.ctx, e.creds, pop, &vfs.OpenOptions{Flags: unix.O_RDONLY})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := fd.Read(e.ctx, seq, vfs.ReadOptions{}); err != nil || n != 1 {
			b.Fatal(n, err)
		}
		fd.DecRef(e.ctx)
	}
}

func BenchmarkOpenReadOverlayLower(b *testing.B) { benchOpenRead(b, true) }
func BenchmarkOpenReadTmpfs(b *testing.B)        { benchOpenRead(b, false) }
