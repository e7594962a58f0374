// Package sockettest holds what the socket families' tests share: the
// loopback TCP benchmarks every AF_INET implementation (netstack,
// hostinet) runs through the Socket interface, so their figures compare
// directly, the blocking helpers tests and benchmarks wait with, and the
// socket-with-its-file handle the tests hold.
package sockettest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Seq is an IOSequence over b, standing in for application memory.
func Seq(b []byte) usermem.IOSequence {
	s, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	return s
}

// Sock is a socket under test and the file that holds it.
type Sock struct {
	socket.Socket
	FD     *vfs.FileDescription
	closed bool
}

// NewSock takes over the test's reference to fd, a socket's file; the end
// of tb drops it unless Close has.
func NewSock(tb testing.TB, fd *vfs.FileDescription) *Sock {
	s := &Sock{Socket: fd.Impl().(socket.Socket), FD: fd}
	tb.Cleanup(s.Close)
	return s
}

// Close drops the test's reference once, as close(2) of the last
// descriptor does.
func (s *Sock) Close() {
	if !s.closed {
		s.closed = true
		s.FD.DecRef(context.Background())
	}
}

// WaitReady blocks until s has one of mask, as the syscall layer does
// between EAGAIN and a retry, woken by s's notifications only; after 10
// seconds it fails tb.
func WaitReady(tb testing.TB, s socket.Socket, mask waiter.EventMask) {
	tb.Helper()
	e, ch := waiter.NewChannelEntry(mask)
	s.EventRegister(e)
	defer s.EventUnregister(e)
	deadline := time.After(10 * time.Second)
	for s.Readiness(mask) == 0 {
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("timed out waiting for events %#x", mask)
		}
	}
}

// Blocker does what the syscall layer does for a blocking call: retry on
// EAGAIN after waiting for readiness, with one preallocated entry.
type Blocker struct {
	s  socket.Socket
	e  waiter.Entry
	ch chan struct{}
}

// NewBlocker registers for mask on s until tb ends.
func NewBlocker(tb testing.TB, s socket.Socket, mask waiter.EventMask) *Blocker {
	b := &Blocker{s: s, ch: make(chan struct{}, 1)}
	b.e.Init(waiter.ChannelListener(b.ch), mask)
	s.EventRegister(&b.e)
	tb.Cleanup(func() { s.EventUnregister(&b.e) })
	return b
}

// Wait returns once s is ready for the mask (or hung up, or in error).
func (b *Blocker) Wait() {
	if b.s.Readiness(b.e.Mask|waiter.EventHUp|waiter.EventErr) != 0 {
		return
	}
	<-b.ch
}

// BenchTCPBulk streams b.N chunks of 64 KiB from c to a, both ends of a
// connected TCP pair.
func BenchTCPBulk(b *testing.B, c, a socket.Socket) {
	const chunk = 64 << 10
	b.SetBytes(chunk)
	total := int64(b.N) * chunk
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		rb := NewBlocker(b, a, waiter.EventIn)
		dst := Seq(buf)
		for got := int64(0); got < total; {
			n, _, _, _, err := a.RecvMsg(nil, dst, 0, false)
			if errors.Is(err, unix.EAGAIN) {
				rb.Wait()
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
	wb := NewBlocker(b, c, waiter.EventOut)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src := Seq(buf)
		for src.NumBytes() > 0 {
			n, err := c.SendMsg(nil, src, nil, 0, socket.ControlMessages{})
			if errors.Is(err, unix.EAGAIN) {
				wb.Wait()
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

// BenchTCPPingPong bounces one byte between c and a (TCP_NODELAY set by
// the caller) b.N times.
func BenchTCPPingPong(b *testing.B, c, a socket.Socket) {
	go func() {
		one := make([]byte, 1)
		rb := NewBlocker(b, a, waiter.EventIn)
		for {
			n, _, _, _, err := a.RecvMsg(nil, Seq(one), 0, false)
			if errors.Is(err, unix.EAGAIN) {
				rb.Wait()
				continue
			}
			if err != nil || n == 0 {
				return
			}
			if _, err := a.SendMsg(nil, Seq(one), nil, 0, socket.ControlMessages{}); err != nil {
				return
			}
		}
	}()
	one := make([]byte, 1)
	rb := NewBlocker(b, c, waiter.EventIn)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.SendMsg(nil, Seq(one), nil, 0, socket.ControlMessages{}); err != nil {
			b.Fatal(err)
		}
		for {
			n, _, _, _, err := c.RecvMsg(nil, Seq(one), 0, false)
			if errors.Is(err, unix.EAGAIN) {
				rb.Wait()
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

// AllowPingSockets lets root's group open host ICMP echo (ping) sockets
// for the rest of the test, as distributions that enable unprivileged ping
// do (net.ipv4.ping_group_range), and puts the host's setting back
// afterwards, so that host-side ping tests run rather than skip. Without
// root, or where gid 0 is already allowed, it changes nothing.
func AllowPingSockets(t testing.TB) {
	const knob = "/proc/sys/net/ipv4/ping_group_range"
	old, err := os.ReadFile(knob)
	if err != nil || os.Geteuid() != 0 {
		return
	}
	var lo, hi int
	if _, err := fmt.Sscanf(string(old), "%d %d", &lo, &hi); err == nil && lo <= 0 && hi >= 0 {
		return
	}
	if err := os.WriteFile(knob, []byte("0 0"), 0o644); err != nil {
		t.Logf("cannot allow ping sockets: %v", err)
		return
	}
	t.Cleanup(func() {
		if err := os.WriteFile(knob, old, 0o644); err != nil {
			t.Errorf("restoring %s to %q: %v", knob, old, err)
		}
	})
}
