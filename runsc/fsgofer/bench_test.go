package fsgofer

import (
	"os"
	"path/filepath"
	"testing"

	"carapace.dev/carapace/pkg/p9"
	"golang.org/x/sys/unix"
)

func benchSetup(b *testing.B) (*p9.ClientFile, *p9.ClientFile, *os.File) {
	root := b.TempDir()
	must(b, os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
	must(b, os.WriteFile(filepath.Join(root, "a", "b", "file"), make([]byte, 4096), 0o644))
	_, r := connect(b, Mount{HostPath: root})
	f := walk(b, r, "a", "b", "file")
	_, _, host, err := f.Open(bg, unix.O_RDONLY)
	must(b, err)
	b.Cleanup(func() { host.Close() })
	return r, f, host
}

// BenchmarkGetattr is a Tgetattr round trip served from the host (fstatat on
// the O_PATH fd).
func BenchmarkGetattr(b *testing.B) {
	_, f, _ := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := f.GetAttr(bg, p9.AttrAll); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWalkGetattrClunk walks three components, stats the result and
// clunks it: the cost of an uncached path lookup from the Sentry.
func BenchmarkWalkGetattrClunk(b *testing.B) {
	r, _, _ := benchSetup(b)
	names := []string{"a", "b", "file"}
	b.ReportAllocs()
	for b.Loop() {
		f, _, _, _, err := r.WalkGetAttr(bg, names, p9.AttrAll)
		if err != nil {
			b.Fatal(err)
		}
		f.Close(bg)
	}
}

// BenchmarkRead4KVia9P reads 4 KiB with Tread.
func BenchmarkRead4KVia9P(b *testing.B) {
	_, f, _ := benchSetup(b)
	buf := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := f.ReadAt(bg, buf, 0); err != nil || n != 4096 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkRead4KViaDonatedFD reads 4 KiB with pread on the donated fd.
func BenchmarkRead4KViaDonatedFD(b *testing.B) {
	_, _, host := benchSetup(b)
	fd := int(host.Fd())
	buf := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := unix.Pread(fd, buf, 0); err != nil || n != 4096 {
			b.Fatal(n, err)
		}
	}
}
