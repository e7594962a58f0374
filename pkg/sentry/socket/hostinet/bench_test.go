package hostinet

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"golang.org/x/sys/unix"
)

// The loopback benchmarks are sockettest's, which netstack runs too, so
// the two families compare directly.

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
	c, a := connectedPair(b, newEnv(b))
	sockettest.BenchTCPBulk(b, c.Socket, a.Socket)
}

func BenchmarkTCPPingPongLoopback(b *testing.B) {
	c, a := connectedPair(b, newEnv(b))
	for _, s := range []*tsock{c, a} {
		if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_NODELAY, socket.Int32Bytes(1)); err != nil {
			b.Fatal(err)
		}
	}
	sockettest.BenchTCPPingPong(b, c.Socket, a.Socket)
}
