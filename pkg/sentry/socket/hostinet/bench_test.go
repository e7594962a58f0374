package hostinet

import (
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// These mirror netstack's BenchmarkTCPBulkLoopback and
// BenchmarkTCPPingPongLoopback, so the two families compare directly.

// blocker does what the syscall layer does for a blocking call: retry on
// EAGAIN after waiting for readiness, with one preallocated entry.
type blocker struct {
	s  *tsock
	e  waiter.Entry
	ch chan struct{}
}

func newBlocker(s *tsock, mask waiter.EventMask) *blocker {
	b := &blocker{s: s, ch: make(chan struct{}, 1)}
	b.e.Init(waiter.ChannelListener(b.ch), mask)
	s.EventRegister(&b.e)
	s.e.t.Cleanup(func() { s.EventUnregister(&b.e) })
	return b
}

func (b *blocker) wait() {
	if b.s.Readiness(b.e.Mask|waiter.EventHUp|waiter.EventErr) != 0 {
		return
	}
	<-b.ch
}

func connectedPair(tb testing.TB, e *env) (*tsock, *tsock) {
	l := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := l.Bind(nil, inet4(loopback4, 0)); err != nil {
		tb.Fatal(err)
	}
	if err := l.Listen(nil, 1); err != nil {
		tb.Fatal(err)
	}
	name, _ := l.SockName(nil)
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(name); err != nil {
		tb.Fatal(err)
	}
	return c, l.accept()
}

func BenchmarkTCPBulkLoopback(b *testing.B) {
	e := newEnv(b)
	c, a := connectedPair(b, e)
	const chunk = 64 << 10
	b.SetBytes(chunk)
	total := int64(b.N) * chunk
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		rb := newBlocker(a, waiter.EventIn)
		dst := seq(buf)
		for got := int64(0); got < total; {
			n, _, _, _, err := a.RecvMsg(nil, dst, 0, false)
			if errors.Is(err, unix.EAGAIN) {
				rb.wait()
				continue
			}
			if err != nil || n == 0 {
				done <- err
				return
			}
			got += n
		}
		done <- nil
	}()
	buf := make([]byte, chunk)
	wb := newBlocker(c, waiter.EventOut)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src := seq(buf)
		for src.NumBytes() > 0 {
			n, err := c.SendMsg(nil, src, nil, 0, socket.ControlMessages{})
			if errors.Is(err, unix.EAGAIN) {
				wb.wait()
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			src = src.DropFirst(n)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkTCPPingPongLoopback(b *testing.B) {
	e := newEnv(b)
	c, a := connectedPair(b, e)
	for _, s := range []*tsock{c, a} {
		if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_NODELAY, socket.Int32Bytes(1)); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		one := make([]byte, 1)
		rb := newBlocker(a, waiter.EventIn)
		for {
			n, _, _, _, err := a.RecvMsg(nil, seq(one), 0, false)
			if errors.Is(err, unix.EAGAIN) {
				rb.wait()
				continue
			}
			if err != nil || n == 0 {
				return
			}
			if _, err := a.SendMsg(nil, seq(one), nil, 0, socket.ControlMessages{}); err != nil {
				return
			}
		}
	}()
	one := make([]byte, 1)
	rb := newBlocker(c, waiter.EventIn)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.SendMsg(nil, seq(one), nil, 0, socket.ControlMessages{}); err != nil {
			b.Fatal(err)
		}
		for {
			n, _, _, _, err := c.RecvMsg(nil, seq(one), 0, false)
			if errors.Is(err, unix.EAGAIN) {
				rb.wait()
				continue
			}
			if err != nil || n != 1 {
				b.Fatalf("recv = %d, %v", n, err)
			}
			break
		}
	}
	b.StopTimer()
	c.Shutdown(nil, unix.SHUT_RDWR)
}
