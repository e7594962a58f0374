package netstack

import (
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func setLinger(t *testing.T, s *tsock, on, secs int) {
	t.Helper()
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, uint32(on))
	binary.LittleEndian.PutUint32(b[4:], uint32(secs))
	if err := s.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_LINGER, b); err != nil {
		t.Fatal(err)
	}
}

// fillUntilFull writes until the stream takes no more: the peer's window
// and this socket's send buffer are full.
func fillUntilFull(t *testing.T, s *tsock) int {
	t.Helper()
	chunk := make([]byte, 64<<10)
	total := 0
	for {
		n, err := s.send(chunk, nil, 0)
		if errors.Is(err, unix.EAGAIN) {
			return total
		}
		if err != nil {
			t.Fatal(err)
		}
		total += int(n)
	}
}

func TestLingerTimeoutEndsTheWaitButNotTheConnection(t *testing.T) {
	e := newEnv(t)
	c, a := connectedPair(t, e)
	sent := fillUntilFull(t, c)
	setLinger(t, c, 1, 1)
	c.close() // returns after about a second: the peer has not read yet
	// Linux does not reset the connection when the linger time runs
	// out; the queued data is still delivered, then EOF.
	n := 0
	buf := make([]byte, 64<<10)
	for {
		m, _, _, _, err := a.RecvMsg(nil, sockettest.Seq(buf), 0, false)
		if errors.Is(err, unix.EAGAIN) {
			a.waitFor(waiter.EventIn | waiter.EventHUp)
			continue
		}
		if err != nil {
			t.Fatalf("peer of a lingering close that timed out: %v after %d bytes, want all %d then EOF", err, n, sent)
		}
		if m == 0 {
			break
		}
		n += int(m)
	}
	if n != sent {
		t.Errorf("peer read %d bytes then EOF, want all %d", n, sent)
	}
}

func TestLingerWaitsForDataToDrain(t *testing.T) {
	e := newEnv(t)
	c, a := connectedPair(t, e)
	sent := fillUntilFull(t, c)
	setLinger(t, c, 1, 30)
	got := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 64<<10)
		for {
			m, _, _, _, err := a.RecvMsg(nil, sockettest.Seq(buf), 0, false)
			if errors.Is(err, unix.EAGAIN) {
				a.waitFor(waiter.EventIn)
				continue
			}
			if err != nil || m == 0 {
				got <- n
				if err != nil {
					t.Errorf("reader: %v", err)
				}
				return
			}
			n += int(m)
		}
	}()
	c.close() // returns once the reader has taken everything
	if n := <-got; n != sent {
		t.Errorf("peer read %d bytes then EOF, want all %d", n, sent)
	}
}
