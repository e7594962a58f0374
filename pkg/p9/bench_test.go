package p9

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

func benchClient(b *testing.B, packet bool) (*ClientFile, *ClientFile) {
	fs := newMemFS()
	n := fs.newNode(unix.S_IFREG|0o644, 0, 0)
	n.data = make([]byte, 4096)
	fs.root.children["f"] = n
	c := serve(b, fs, packet)
	root := attach(b, c)
	_, f, err := root.Walk(context.Background(), []string{"f"})
	must(b, err)
	_, _, _, err = f.Open(context.Background(), unix.O_RDONLY)
	must(b, err)
	b.Cleanup(func() { root.Close(context.Background()); f.Close(context.Background()) })
	return root, f
}

// BenchmarkGetattrRoundTrip is one Tgetattr/Rgetattr over a stream
// socketpair against an in-memory File.
func BenchmarkGetattrRoundTrip(b *testing.B) {
	_, f := benchClient(b, false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := f.GetAttr(ctx, AttrAll); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetattrRoundTripSeqpacket(b *testing.B) {
	_, f := benchClient(b, true)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := f.GetAttr(ctx, AttrAll); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetattrParallel measures pipelined requests from many goroutines.
func BenchmarkGetattrParallel(b *testing.B) {
	_, f := benchClient(b, false)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, _, err := f.GetAttr(ctx, AttrAll); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRead4K(b *testing.B) {
	_, f := benchClient(b, false)
	ctx := context.Background()
	buf := make([]byte, 4096)
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := f.ReadAt(ctx, buf, 0); err != nil || n != 4096 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkEncodeDecodeRgetattr(b *testing.B) {
	m := &Rgetattr{Valid: AttrAll, Attr: Attr{Mode: 0o100644, Size: 1234}}
	buf := make([]byte, 0, 256)
	var out Rgetattr
	b.ReportAllocs()
	for b.Loop() {
		buf = EncodeMessage(buf[:0], 1, m)
		if err := decodeInto(&out, buf[HeaderSize:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookup is a name lookup with attributes, the commonest request of
// the Sentry: one Twalkgetattr, against Twalk then Tgetattr (TwoMessages),
// which is how it was done before the extension.
func BenchmarkLookup(b *testing.B) {
	root, _ := benchClient(b, false)
	ctx := context.Background()
	names := []string{"f"}
	b.Run("Twalkgetattr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, _, _, _, err := root.WalkGetAttr(ctx, names, AttrBasic)
			if err != nil {
				b.Fatal(err)
			}
			f.CloseAsync()
		}
	})
	b.Run("TwoMessages", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, f, err := root.Walk(ctx, names)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := f.GetAttr(ctx, AttrBasic); err != nil {
				b.Fatal(err)
			}
			f.CloseAsync()
		}
	})
}
