package tcp

import (
	"bytes"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// zeroWindowPair connects A to B with B's receive buffer set to rcvBuf
// and fills it from A until A's send window is zero.
func zeroWindowPair(t *testing.T, rcvBuf int, data []byte) (p *testutil.Pair, c, s *endpoint, rest []byte) {
	t.Helper()
	p = newPair(t, testutil.PairOptions{})
	ln := newEP(t, p.B)
	ln.SetSockOpt(tcpip.ReceiveBufferSizeOption, rcvBuf)
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(1)
	c = newEP(t, p.A)
	c.SetSockOpt(tcpip.SendBufferSizeOption, 4<<20)
	c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
	p.Pump(nil)
	se, _, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s = se.(*endpoint)
	rest = data
	for i := 0; i < 100 && len(rest) > 0; i++ {
		n, err := c.Write(bytes.NewReader(rest), tcpip.WriteOptions{})
		if err != nil && err != tcpip.ErrWouldBlock {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
		if p.Pump(nil) == 0 {
			break
		}
	}
	if c.sndWnd != 0 {
		t.Fatalf("sender window %d, want 0 (receiver holds %d)", c.sndWnd, s.rcvUsed)
	}
	return p, c, s, rest
}

// drain reads from s while writing the rest of the data to c and,
// once all is written, closing c; it returns what s read up to EOF.
func drain(t *testing.T, p *testutil.Pair, c, s *endpoint, rest []byte) ([]byte, bool) {
	t.Helper()
	var got bytes.Buffer
	closed := false
	for i := 0; i < 20000; i++ {
		if len(rest) > 0 {
			n, err := c.Write(bytes.NewReader(rest), tcpip.WriteOptions{})
			if err != nil && err != tcpip.ErrWouldBlock {
				t.Fatalf("Write: %v", err)
			}
			rest = rest[n:]
		}
		if len(rest) == 0 && !closed {
			c.Close()
			closed = true
		}
		if _, err := s.Read(&got, tcpip.ReadOptions{}); err == tcpip.ErrClosedForReceive {
			return got.Bytes(), true
		}
		if p.Pump(nil) == 0 {
			d, ok := p.Manual.NextDeadline()
			if !ok {
				break
			}
			p.Manual.Advance(d)
		}
	}
	return got.Bytes(), false
}

// A window scaled down to zero can still hide free bytes below one scale
// unit; the peer then keeps a probe's byte and ACKs SND.UNA+1. The
// sender must take that ACK (and every later one) instead of treating it
// as acknowledging unsent data, or the window update that follows a
// read is ignored and the connection stalls for good.
func TestZeroWindowLongerThanRTOThenReadsResume(t *testing.T) {
	data := pattern(3 << 20)
	// Not a multiple of the window scale unit, so that a few bytes stay
	// free when the advertised window reaches zero.
	p, c, s, rest := zeroWindowPair(t, 1<<20-7, data)
	if s.rcvWS == 0 || s.rcvWindow() == 0 || s.lastRcvAdv != 0 {
		t.Fatalf("setup: want hidden free space behind a zero window: ws %d, free %d, advertised %d", s.rcvWS, s.rcvWindow(), s.lastRcvAdv)
	}
	// Stay shut across several persist timeouts (each longer than the
	// RTO): probes go out and are answered.
	start := p.Manual.Now()
	for p.Manual.Now()-start < 10*time.Second {
		d, ok := p.Manual.NextDeadline()
		if !ok {
			t.Fatal("no persist timer while the window is zero")
		}
		p.Manual.Advance(d)
		p.Pump(nil)
	}
	if c.State() != StateEstablished {
		t.Fatalf("sender state %v after probing", c.State())
	}
	got, eof := drain(t, p, c, s, rest)
	if !bytes.Equal(got, data) || !eof {
		t.Fatalf("receiver got %d of %d bytes (EOF %v) after the window reopened", len(got), len(data), eof)
	}
}

// The same with an exactly full window (the probe's byte is refused) and
// the FIN queued behind the data before the pause.
func TestZeroWindowWithQueuedFINDeliversAll(t *testing.T) {
	data := pattern(1 << 20)
	p, c, s, rest := zeroWindowPair(t, 64<<10, data)
	if len(rest) > 0 {
		t.Fatalf("send buffer took only %d of %d bytes", len(data)-len(rest), len(data))
	}
	c.Close()
	p.Pump(nil)
	for i := 0; i < 8; i++ {
		d, ok := p.Manual.NextDeadline()
		if !ok {
			t.Fatal("no persist timer while the window is zero")
		}
		p.Manual.Advance(d)
		p.Pump(nil)
	}
	got, eof := drain(t, p, c, s, nil)
	if !bytes.Equal(got, data) || !eof {
		t.Fatalf("receiver got %d of %d bytes (EOF %v) after the window reopened", len(got), len(data), eof)
	}
}

// Probes back the persist timer off to many seconds; once the window
// opens, a lost data segment must be resent after the RTO estimate, not
// after that backoff.
func TestWindowReopenRestoresRetransmissionTimer(t *testing.T) {
	data := pattern(1 << 20)
	p, c, s, _ := zeroWindowPair(t, 64<<10, data)
	start := p.Manual.Now()
	for p.Manual.Now()-start < 30*time.Second {
		d, ok := p.Manual.NextDeadline()
		if !ok {
			t.Fatal("no persist timer while the window is zero")
		}
		p.Manual.Advance(d)
		p.Pump(nil)
	}
	if c.rto < 8*time.Second {
		t.Fatalf("setup: persist backoff only reached %v", c.rto)
	}
	// Read everything queued: the window update reopens A's window, and
	// the whole flight A sends after it is lost, so that only the
	// retransmission timer (not fast retransmit) can recover it.
	var got bytes.Buffer
	readAll(s)
	dropped := 0
	lossy := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		if _, ok := isData(pkt); ok && from == p.LinkA {
			dropped++
			return nil
		}
		return []channel.Packet{pkt}
	}
	p.Pump(lossy)
	if dropped == 0 {
		t.Fatal("no data sent after the window update")
	}
	if c.rto > time.Second {
		t.Fatalf("RTO %v after the window reopened, want the estimate (≤ 1s)", c.rto)
	}
	if c.rtxDeadline-p.Manual.Now() > time.Second {
		t.Fatalf("retransmission timer due in %v", c.rtxDeadline-p.Manual.Now())
	}
	p.Manual.Advance(time.Second)
	p.Pump(nil)
	s.Read(&got, tcpip.ReadOptions{})
	if got.Len() == 0 {
		t.Fatal("lost segment not resent within a second of the window reopening")
	}
}
