package epoll_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// BenchmarkWait100OneReady is epoll_wait's work on 100 watched eventfds of
// which one is ready (level-triggered, so it stays ready).
func BenchmarkWait100OneReady(b *testing.B) {
	e := newEnv(b)
	_, ep := e.epoll()
	var files []*vfs.FileDescription
	for i := range 100 {
		f := e.eventfd()
		files = append(files, f)
		if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, f, int32(i), ev(unix.EPOLLIN, uint64(i))); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, f := range files {
			f.DecRef(e.ctx)
		}
	}()
	e.signal(files[57])
	evs := make([]unix.EpollEvent, 16)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := ep.ReadEvents(evs); n != 1 || err != nil {
			b.Fatal(n, err)
		}
	}
}
