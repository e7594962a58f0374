package tcp

import (
	"bytes"
	"io"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/loopback"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// Blocking helpers built on the endpoint's wait queue, for real-clock
// tests and benchmarks.

func waitFor(tb testing.TB, ep tcpip.Endpoint, mask tcpip.EventMask, try func() bool) {
	entry, ch := tcpip.NewChannelEntry()
	ep.WaitQueue().EventRegister(entry, mask)
	defer ep.WaitQueue().EventUnregister(entry)
	deadline := time.After(10 * time.Second)
	for !try() {
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("timed out waiting for events %#x", mask)
		}
	}
}

func writeFull(tb testing.TB, ep tcpip.Endpoint, data []byte) {
	r := bytes.NewReader(data)
	waitFor(tb, ep, tcpip.EventOut, func() bool {
		if _, err := ep.Write(r, tcpip.WriteOptions{}); err != nil && err != tcpip.ErrWouldBlock {
			tb.Fatalf("Write: %v", err)
		}
		return r.Len() == 0
	})
}

func readFull(tb testing.TB, ep tcpip.Endpoint, n int, w io.Writer) {
	got := 0
	lw := &countingWriter{w: w}
	waitFor(tb, ep, tcpip.EventIn, func() bool {
		lw.limit = n - got
		res, err := ep.Read(lw, tcpip.ReadOptions{})
		if err != nil && err != tcpip.ErrWouldBlock {
			tb.Fatalf("Read: %v", err)
		}
		got += res.Count
		return got >= n
	})
}

type countingWriter struct {
	w     io.Writer
	limit int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	short := false
	if len(p) > c.limit {
		p, short = p[:c.limit], true
	}
	n, err := c.w.Write(p)
	c.limit -= n
	if err == nil && short {
		err = io.ErrShortWrite
	}
	return n, err
}

func connectReal(tb testing.TB, client, server *stack.Stack, addr tcpip.Address) (tcpip.Endpoint, tcpip.Endpoint) {
	np := ipv4.ProtocolNumber
	if addr.Len() == 16 {
		np = ipv6.ProtocolNumber
	}
	ln, _ := server.NewEndpoint(ProtocolNumber, np, nil)
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(16)
	c, _ := client.NewEndpoint(ProtocolNumber, np, nil)
	c.SetSockOpt(tcpip.NoDelayOption, 1)
	var s tcpip.Endpoint
	waitFor(tb, ln, tcpip.EventIn, func() bool {
		if s == nil {
			c.Connect(tcpip.FullAddress{Addr: addr, Port: 80})
		}
		var err *tcpip.Error
		s, _, err = ln.Accept()
		return err == nil
	})
	waitFor(tb, c, tcpip.EventOut, func() bool { return c.Readiness(tcpip.EventOut) != 0 })
	s.SetSockOpt(tcpip.NoDelayOption, 1)
	ln.Close()
	return c, s
}

func loopbackStack(tb testing.TB) (*stack.Stack, *loopback.Endpoint) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{NewProtocol},
	})
	lo := loopback.New()
	s.CreateNIC(1, "lo", lo)
	s.AddAddress(1, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("127.0.0.1"), PrefixLen: 8})
	s.AddAddress(1, ipv6.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress("::1"), PrefixLen: 128})
	return s, lo
}

func TestLoopbackRealClock(t *testing.T) {
	s, lo := loopbackStack(t)
	defer lo.Close()
	c, srv := connectReal(t, s, s, tcpip.ParseAddress("127.0.0.1"))
	defer c.Close()
	defer srv.Close()
	data := pattern(1 << 20)
	done := make(chan struct{})
	var got bytes.Buffer
	go func() { defer close(done); readFull(t, srv, len(data), &got) }()
	writeFull(t, c, data)
	<-done
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("loopback stream corrupted")
	}
}

func TestRealClockPair(t *testing.T) {
	p := newPair(t, testutil.PairOptions{Clock: tcpip.NewStdClock()})
	p.Run()
	defer p.Stop()
	c, s := connectReal(t, p.A, p.B, testutil.AddrB)
	defer c.Close()
	defer s.Close()
	data := pattern(2 << 20)
	done := make(chan struct{})
	var got bytes.Buffer
	go func() { defer close(done); readFull(t, s, len(data), &got) }()
	writeFull(t, c, data)
	<-done
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("stream corrupted")
	}
}

func benchBulk(b *testing.B, c, s tcpip.Endpoint) {
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		readFull(b, s, len(chunk)*b.N, io.Discard)
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		writeFull(b, c, chunk)
	}
	<-done
}

func BenchmarkBulkChannel(b *testing.B) {
	p := newPair(b, testutil.PairOptions{Clock: tcpip.NewStdClock(), QueueLen: 4096, MTU: 1500})
	p.Run()
	defer p.Stop()
	c, s := connectReal(b, p.A, p.B, testutil.AddrB)
	defer c.Close()
	defer s.Close()
	benchBulk(b, c, s)
}

func BenchmarkBulkLoopback(b *testing.B) {
	st, lo := loopbackStack(b)
	defer lo.Close()
	c, s := connectReal(b, st, st, tcpip.ParseAddress("127.0.0.1"))
	defer c.Close()
	defer s.Close()
	benchBulk(b, c, s)
}

func BenchmarkRequestResponse1Byte(b *testing.B) {
	p := newPair(b, testutil.PairOptions{Clock: tcpip.NewStdClock()})
	p.Run()
	defer p.Stop()
	c, s := connectReal(b, p.A, p.B, testutil.AddrB)
	defer c.Close()
	defer s.Close()
	go func() {
		var one bytes.Buffer
		for i := 0; i < b.N; i++ {
			one.Reset()
			readFull(b, s, 1, &one)
			writeFull(b, s, one.Bytes())
		}
	}()
	var one bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		writeFull(b, c, []byte{byte(i)})
		one.Reset()
		readFull(b, c, 1, &one)
	}
}

// Loopback segments are views of the sender's send queue, whose chunks
// are recycled (from pools every stack shares) once acknowledged and
// read. Several connections stream at once, so chunks one releases are
// refilled by another, while readers take odd sizes and lag behind: any
// view kept without a reference would see its bytes overwritten.
// One connection runs over IPv6, whose segments arrive split too.
func TestLoopbackSharedChunksStayIntact(t *testing.T) {
	const conns, size = 3, 12 << 20
	data := pattern(size)
	errs := make(chan string, 2*conns)
	for i := 0; i < conns; i++ {
		s, lo := loopbackStack(t)
		defer lo.Close()
		addr := tcpip.ParseAddress("127.0.0.1")
		if i == 0 {
			addr = tcpip.ParseAddress("::1")
		}
		c, srv := connectReal(t, s, s, addr)
		defer c.Close()
		defer srv.Close()
		go func() {
			var got bytes.Buffer
			for len(data)-got.Len() > 0 {
				// Odd read sizes leave partly read views queued.
				readFull(t, srv, min(len(data)-got.Len(), 1+got.Len()%70001), &got)
			}
			if !bytes.Equal(got.Bytes(), data) {
				errs <- "stream corrupted"
				return
			}
			errs <- ""
		}()
		go func() {
			for off := 0; off < len(data); {
				n := min(len(data)-off, 1+(off*7)%300000)
				writeFull(t, c, data[off:off+n])
				off += n
			}
			errs <- ""
		}()
	}
	for i := 0; i < 2*conns; i++ {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}
