package netstack

import (
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// readStream reads from s until want bytes arrived or, if untilEOF,
// until EOF, and returns the byte count and whether EOF was seen.
func readStream(t *testing.T, s *tsock, want int, untilEOF bool) (int, bool) {
	t.Helper()
	n := 0
	buf := make([]byte, 64<<10)
	for {
		m, _, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, false)
		if errors.Is(err, unix.EAGAIN) {
			s.waitFor(waiter.EventIn | waiter.EventHUp)
			continue
		}
		if err != nil {
			t.Fatalf("recv: %v after %d of %d bytes", err, n, want)
		}
		if m == 0 {
			return n, true
		}
		n += int(m)
		if n == want && !untilEOF {
			return n, false
		}
	}
}

// zeroWindowPause connects two loopback sockets, fills the stream until
// the sender gets EAGAIN (the receiver reads nothing: its window is
// zero) and keeps it so for longer than the retransmission timeout.
func zeroWindowPause(t *testing.T, closeSender bool) (receiver *tsock, sent int) {
	e := newEnv(t)
	c, a := connectedPair(t, e)
	sent = fillUntilFull(t, c)
	if closeSender {
		c.close()
	}
	time.Sleep(1500 * time.Millisecond) // > the initial 1 s RTO: probes go out
	return a, sent
}

func TestReaderPauseLongerThanRTOThenAllDataArrives(t *testing.T) {
	a, sent := zeroWindowPause(t, false)
	if n, _ := readStream(t, a, sent, false); n != sent {
		t.Errorf("peer read %d bytes, want all %d", n, sent)
	}
}

func TestSenderClosedDuringReaderPauseDeliversAllThenEOF(t *testing.T) {
	a, sent := zeroWindowPause(t, true)
	n, eof := readStream(t, a, sent, true)
	if n != sent || !eof {
		t.Errorf("peer read %d bytes (EOF %v), want all %d then EOF", n, eof, sent)
	}
}
