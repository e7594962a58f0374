package boot

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/sandbox"
	"golang.org/x/sys/unix"
)

// inNewNetns runs f on a thread in a new network namespace. The thread
// stays locked and dies with the goroutine, so the namespace never leaks
// into other goroutines and disappears when its last socket closes.
func inNewNetns(t testing.TB, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare(CLONE_NEWNET): %v", err)
			return
		}
		f()
	}()
	<-done
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// waitEP waits for mask on a tcpip endpoint.
func waitEP(t testing.TB, ep tcpip.Endpoint, mask tcpip.EventMask) {
	t.Helper()
	e, ch := tcpip.NewChannelEntry()
	ep.WaitQueue().EventRegister(e, mask)
	defer ep.WaitQueue().EventUnregister(e)
	for ep.Readiness(mask) == 0 {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %#x", mask)
		}
	}
}

func readAllEP(t testing.TB, ep tcpip.Endpoint) string {
	t.Helper()
	var got []byte
	for {
		w := tcpip.SliceWriter{Buf: make([]byte, 4096)}
		_, err := ep.Read(&w, tcpip.ReadOptions{})
		switch err {
		case nil:
			got = append(got, w.Bytes()...)
		case tcpip.ErrWouldBlock:
			waitEP(t, ep, tcpip.EventIn)
		case tcpip.ErrClosedForReceive:
			return string(got)
		default:
			t.Fatalf("read: %v", err)
		}
	}
}

// TestVethTakeover is --network=sandbox end to end on the link level: a
// veth pair in a test namespace, the host kernel on one end (10.99.0.1)
// and netstack on the other (10.99.0.2, taken over from the kernel), and
// TCP both ways plus a ping from the kernel.
func TestVethTakeover(t *testing.T) {
	inNewNetns(t, func() {
		ip(t, "link", "add", "cvA", "type", "veth", "peer", "name", "cvB")
		ip(t, "addr", "add", "10.99.0.1/24", "dev", "cvA")
		ip(t, "addr", "add", "10.99.0.2/24", "dev", "cvB")
		ip(t, "link", "set", "cvA", "up")
		ip(t, "link", "set", "cvB", "up")
		ip(t, "route", "add", "10.98.0.0/16", "via", "10.99.0.1", "dev", "cvB")

		s, closeStack := takeOver(t, "cvB")
		defer closeStack()
		if out, _ := exec.Command("ip", "-4", "addr", "show", "dev", "cvB").Output(); strings.Contains(string(out), "10.99.0.2") {
			t.Errorf("10.99.0.2 still on the host's cvB after the takeover:\n%s", out)
		}
		var sawGateway bool
		for _, r := range s.RouteTable() {
			if r.Gateway == tcpip.ParseAddress("10.99.0.1") && r.Destination.Prefix() == 16 {
				sawGateway = true
			}
		}
		if !sawGateway {
			t.Errorf("route 10.98.0.0/16 via 10.99.0.1 not mirrored: %v", s.RouteTable())
		}

		// Host kernel → netstack.
		l, terr := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, nil)
		if terr != nil {
			t.Fatal(terr)
		}
		defer l.Close()
		if terr := l.Bind(tcpip.FullAddress{Addr: tcpip.ParseAddress("10.99.0.2"), Port: 8080}); terr != nil {
			t.Fatal(terr)
		}
		if terr := l.Listen(4); terr != nil {
			t.Fatal(terr)
		}
		// The kernel's side uses raw socket calls: package net would link
		// cgo into the test, and the Sentry's code must run without it.
		conn, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(conn)
		if err := unix.Connect(conn, &unix.SockaddrInet4{Port: 8080, Addr: [4]byte{10, 99, 0, 2}}); err != nil {
			t.Fatalf("kernel connect to netstack: %v", err)
		}
		waitEP(t, l, tcpip.EventIn)
		a, _, terr := l.Accept()
		if terr != nil {
			t.Fatal(terr)
		}
		defer a.Close()
		if _, err := unix.Write(conn, []byte("from the kernel")); err != nil {
			t.Fatal(err)
		}
		unix.Shutdown(conn, unix.SHUT_WR)
		if got := readAllEP(t, a); got != "from the kernel" {
			t.Errorf("netstack read %q", got)
		}

		// Netstack → host kernel, with a bulk transfer back.
		hl, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(hl)
		if err := unix.Bind(hl, &unix.SockaddrInet4{Addr: [4]byte{10, 99, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(hl, 1); err != nil {
			t.Fatal(err)
		}
		sa, _ := unix.Getsockname(hl)
		port := sa.(*unix.SockaddrInet4).Port
		payload := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB
		c, terr := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, nil)
		if terr != nil {
			t.Fatal(terr)
		}
		defer c.Close()
		if terr := c.Connect(tcpip.FullAddress{Addr: tcpip.ParseAddress("10.99.0.1"), Port: uint16(port)}); terr != tcpip.ErrConnectStarted && terr != nil {
			t.Fatalf("netstack connect: %v", terr)
		}
		hc, _, err := unix.Accept4(hl, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatalf("kernel accept: %v", err)
		}
		served := make(chan error, 1)
		go func() {
			defer unix.Close(hc)
			b := []byte(payload)
			for len(b) > 0 {
				n, err := unix.Write(hc, b)
				if err != nil {
					served <- err
					return
				}
				b = b[n:]
			}
			served <- nil
		}()
		if got := readAllEP(t, c); got != payload {
			t.Errorf("netstack received %d bytes from the kernel, want %d", len(got), len(payload))
		}
		if err := <-served; err != nil {
			t.Errorf("kernel side: %v", err)
		}

		// The kernel pings netstack.
		if _, err := exec.LookPath("ping"); err == nil {
			if out, err := exec.Command("ping", "-c", "1", "-W", "5", "10.99.0.2").CombinedOutput(); err != nil {
				t.Errorf("ping 10.99.0.2: %v\n%s", err, out)
			}
		}
	})
}

// vethPair makes cvA (kernel, 10.99.0.1) and cvB (taken over by netstack,
// 10.99.0.2) in the current namespace and returns the netstack stack.
func vethPair(t testing.TB) (*stack.Stack, func()) {
	ip(t, "link", "add", "cvA", "type", "veth", "peer", "name", "cvB")
	ip(t, "addr", "add", "10.99.0.1/24", "dev", "cvA")
	ip(t, "addr", "add", "10.99.0.2/24", "dev", "cvB")
	ip(t, "link", "set", "cvA", "up")
	ip(t, "link", "set", "cvB", "up")
	return takeOver(t, "cvB")
}

// takeOver does what runsc start and the Sentry do for --network=sandbox,
// in one process: captures interface name of the current namespace
// (runsc/sandbox), installs it into a new sandbox stack and removes its
// addresses from the host kernel.
func takeOver(t testing.TB, name string) (*stack.Stack, func()) {
	t.Helper()
	c, err := sandbox.CaptureLinks(func(n string) bool { return n == name })
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	defer c.Close()
	if len(c.Links) != 1 || c.Links[0].MTU != 1500 || len(c.Links[0].Addresses) == 0 || len(c.Links[0].MAC) != 6 {
		t.Fatalf("captured %+v", c.Links)
	}
	// What the Sentry receives went through the control protocol's
	// validation.
	data, err := control.Encode(&control.Request{Version: control.Version, Method: control.MethodNetwork, Network: &control.NetworkArgs{Links: c.Links}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := control.DecodeRequest(data, len(c.Files))
	if err != nil {
		t.Fatalf("captured links fail validation: %v", err)
	}
	n, err := newSandboxNetwork(config.NetworkSandbox)
	if err != nil {
		t.Fatal(err)
	}
	files := c.Files
	c.Files = nil // installLinks owns them
	if err := n.installLinks(req.Network.Links, files); err != nil {
		n.close()
		t.Fatalf("install: %v", err)
	}
	if err := c.RemoveHostAddresses(); err != nil {
		n.close()
		t.Fatalf("removing host addresses: %v", err)
	}
	return n.s, n.close
}

// BenchmarkVethKernelToNetstack measures TCP bulk throughput from the
// host kernel into netstack over a veth pair and an AF_PACKET socket.
func BenchmarkVethKernelToNetstack(b *testing.B) {
	inNewNetns(b, func() {
		s, closeStack := vethPair(b)
		defer closeStack()
		l, _ := s.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, nil)
		defer l.Close()
		if err := l.Bind(tcpip.FullAddress{Addr: tcpip.ParseAddress("10.99.0.2"), Port: 8080}); err != nil {
			b.Fatal(err)
		}
		l.Listen(1)
		conn, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(conn)
		if err := unix.Connect(conn, &unix.SockaddrInet4{Port: 8080, Addr: [4]byte{10, 99, 0, 2}}); err != nil {
			b.Fatal(err)
		}
		waitEP(b, l, tcpip.EventIn)
		a, _, terr := l.Accept()
		if terr != nil {
			b.Fatal(terr)
		}
		defer a.Close()
		const chunk = 64 << 10
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		b.ResetTimer()
		go func() {
			for i := 0; i < b.N; i++ {
				for p := buf; len(p) > 0; {
					n, err := unix.Write(conn, p)
					if err != nil {
						return
					}
					p = p[n:]
				}
			}
			unix.Shutdown(conn, unix.SHUT_WR)
		}()
		var got int
		for {
			w := tcpip.SliceWriter{Buf: buf}
			res, err := a.Read(&w, tcpip.ReadOptions{})
			if err == tcpip.ErrWouldBlock {
				waitEP(b, a, tcpip.EventIn)
				continue
			}
			if err != nil {
				break
			}
			got += res.Count
		}
		if got != b.N*chunk {
			b.Errorf("received %d bytes, want %d", got, b.N*chunk)
		}
	})
}

// installLinks takes all of a request's links or none, and only in
// --network=sandbox.
func TestInstallLinksAllOrNothing(t *testing.T) {
	inNewNetns(t, func() {
		ip(t, "link", "add", "cvA", "type", "veth", "peer", "name", "cvB")
		ip(t, "addr", "add", "10.99.0.2/24", "dev", "cvB")
		ip(t, "addr", "add", "10.99.0.1/24", "dev", "cvA")
		ip(t, "link", "set", "cvA", "up")
		ip(t, "link", "set", "cvB", "up")
		capture := func() *sandbox.CapturedLinks {
			c, err := sandbox.CaptureLinks(nil)
			if err != nil || len(c.Links) != 2 {
				t.Fatalf("capture: %+v, %v", c, err)
			}
			return c
		}

		none, err := newSandboxNetwork(config.NetworkNone)
		if err != nil {
			t.Fatal(err)
		}
		defer none.close()
		c := capture()
		files := c.Files
		c.Files = nil
		if err := none.installLinks(c.Links, files); err == nil {
			t.Errorf("--network=none took interfaces")
		}
		if len(none.s.NICs()) != 1 {
			t.Errorf("--network=none has %d NICs", len(none.s.NICs()))
		}

		n, err := newSandboxNetwork(config.NetworkSandbox)
		if err != nil {
			t.Fatal(err)
		}
		defer n.close()
		c = capture()
		links, files := c.Links, c.Files
		c.Files = nil
		links[1].MTU = 0 // fdbased refuses it: the second link fails
		if err := n.installLinks(links, files); err == nil {
			t.Fatalf("a link with MTU 0 was installed")
		}
		if len(n.s.NICs()) != 1 || len(n.s.RouteTable()) != len(none.s.RouteTable()) {
			t.Errorf("after a failed install: %d NICs, routes %v", len(n.s.NICs()), n.s.RouteTable())
		}

		c = capture()
		files = c.Files
		c.Files = nil
		if err := n.installLinks(c.Links, files); err != nil {
			t.Fatalf("install: %v", err)
		}
		if len(n.s.NICs()) != 3 {
			t.Errorf("%d NICs after install, want lo, cvA, cvB", len(n.s.NICs()))
		}
		c = capture()
		files = c.Files
		c.Files = nil
		if err := n.installLinks(c.Links, files); !errors.Is(err, unix.EEXIST) {
			t.Errorf("installing cvA and cvB twice: %v, want EEXIST", err)
		}
	})
}
