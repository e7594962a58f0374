package netstack

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"golang.org/x/sys/unix"
)

func BenchmarkTCPBulkLoopback(b *testing.B) {
	c, a := connectedPair(b, newEnv(b))
	sockettest.BenchTCPBulk(b, c.Socket, a.Socket)
}

func BenchmarkTCPPingPongLoopback(b *testing.B) {
	c, a := connectedPair(b, newEnv(b))
	for _, s := range []*tsock{c, a} {
		if err := s.setInt(unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			b.Fatal(err)
		}
	}
	sockettest.BenchTCPPingPong(b, c.Socket, a.Socket)
}

// BenchmarkHostTCPBulkLoopback is the same transfer through the host
// kernel's loopback, as the reference the netstack figure compares to.
func BenchmarkHostTCPBulkLoopback(b *testing.B) {
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Skipf("host socket: %v", err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Skipf("host loopback: %v", err)
	}
	unix.Listen(l, 1)
	sa, _ := unix.Getsockname(l)
	c, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(c)
	if err := unix.Connect(c, sa); err != nil {
		b.Fatal(err)
	}
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(a)
	const chunk = 64 << 10
	b.SetBytes(chunk)
	total := b.N * chunk
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, chunk)
		for got := 0; got < total; {
			n, err := unix.Read(a, buf)
			if err != nil || n == 0 {
				return
			}
			got += n
		}
	}()
	buf := make([]byte, chunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for p := buf; len(p) > 0; {
			n, err := unix.Write(c, p)
			if err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
	}
	<-done
}
