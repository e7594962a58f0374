package pipe_test

import (
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// BenchmarkPingPong bounces one byte between two goroutines over two pipes,
// waiting the way the syscall layer does: EAGAIN, then a waiter entry.
func BenchmarkPingPong(b *testing.B) {
	ctx, r1, w1 := newPipe(b, unix.O_NONBLOCK)
	_, r2, w2 := newPipe(b, unix.O_NONBLOCK)
	msg := vfstest.Seq([]byte{1})
	readBlocking := func(fd *vfs.FileDescription, buf []byte) {
		dst := vfstest.Seq(buf)
		for {
			n, err := fd.Read(ctx, dst, vfs.ReadOptions{})
			if n > 0 || (err != nil && !errors.Is(err, unix.EAGAIN)) {
				return
			}
			e, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
			fd.EventRegister(e)
			if fd.Readiness(waiter.ReadableEvents) == 0 {
				<-ch
			}
			fd.EventUnregister(e)
		}
	}
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 1)
		for {
			readBlocking(r1, buf)
			if buf[0] == 0 {
				close(done)
				return
			}
			w2.Write(ctx, msg, vfs.WriteOptions{})
		}
	}()
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		w1.Write(ctx, msg, vfs.WriteOptions{})
		readBlocking(r2, buf)
	}
	w1.Write(ctx, vfstest.Seq([]byte{0}), vfs.WriteOptions{})
	<-done
}

func BenchmarkWriteRead4K(b *testing.B) {
	ctx, r, w := newPipe(b, unix.O_NONBLOCK)
	src := vfstest.Seq(make([]byte, 4096))
	dst := vfstest.Seq(make([]byte, 4096))
	b.SetBytes(4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(ctx, src, vfs.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Read(ctx, dst, vfs.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
