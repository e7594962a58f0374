package tcp

import (
	"bytes"
	"math"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// The window after a loss follows RFC 9438's curve: down to β·W_max,
// concave back up to W_max at t = K, then convex beyond it.
func TestCubicWindowCurve(t *testing.T) {
	var c cubicState
	const wMax = 100.0
	ss := c.onLoss(wMax)
	if ss != wMax*cubicBeta {
		t.Fatalf("ssthresh after loss at %v = %v, want %v", wMax, ss, wMax*cubicBeta)
	}
	wantK := math.Cbrt(wMax * (1 - cubicBeta) / cubicC)
	// A long RTT keeps the Reno-friendly estimate below the cubic curve.
	rtt := 100 * time.Millisecond
	w := ss
	var at []float64 // window at each RTT
	for now := time.Duration(1); now < 12*time.Second; now += rtt {
		// One RTT's worth of ACKs: w segments.
		w = c.onAck(w, w, now, rtt)
		at = append(at, w)
	}
	if math.Abs(c.k-wantK) > 1e-9 {
		t.Errorf("K = %v, want %v", c.k, wantK)
	}
	kIdx := int(wantK / rtt.Seconds())
	if got := at[kIdx]; math.Abs(got-wMax) > 2 {
		t.Errorf("window at K (%.2fs) = %.1f, want about W_max %v", wantK, got, wMax)
	}
	// Concave before K: the growth per RTT shrinks approaching W_max.
	early := at[kIdx/4+1] - at[kIdx/4]
	late := at[kIdx-kIdx/8] - at[kIdx-kIdx/8-1]
	if !(early > late && late >= 0) {
		t.Errorf("growth per RTT early %.3f, near K %.3f: want concave", early, late)
	}
	// Convex past K: growth speeds up again and passes W_max.
	past := at[len(at)-1] - at[len(at)-2]
	if past <= late || at[len(at)-1] <= wMax+10 {
		t.Errorf("after K: growth %.3f (near K %.3f), window %.1f: want convex probing past W_max", past, late, at[len(at)-1])
	}
}

func TestCubicFastConvergence(t *testing.T) {
	var c cubicState
	c.onLoss(100)
	c.onLoss(80) // a second loss below the previous W_max
	if want := 80 * (1 + cubicBeta) / 2; c.wMax != want {
		t.Errorf("W_max after a loss below the last = %v, want %v (fast convergence)", c.wMax, want)
	}
}

func TestCubicSelectableAndRecovers(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	if v, _ := c.GetSockOpt(tcpip.CongestionControlOption); v != tcpip.CongestionReno {
		t.Fatalf("default congestion control %d, want NewReno", v)
	}
	if err := c.SetSockOpt(tcpip.CongestionControlOption, tcpip.CongestionCubic); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSockOpt(tcpip.CongestionControlOption, 7); err == nil {
		t.Error("unknown algorithm accepted")
	}
	dropped := false
	drop := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		if _, ok := isData(pkt); ok && from == p.LinkA && !dropped {
			dropped = true
			return nil
		}
		return []channel.Packet{pkt}
	}
	c.mu.Lock()
	cwndBefore := c.cwnd
	c.mu.Unlock()
	data := pattern(8 * 1448)
	c.Write(bytes.NewReader(data), tcpip.WriteOptions{})
	p.Pump(drop)
	if got, _ := readAll(s); !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want %d", len(got), len(data))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// CUBIC backs off to β of the window, not NewReno's half the flight.
	if c.cubic == nil || c.cubic.wMax == 0 || c.ssthresh < int(float64(cwndBefore)*cubicBeta)-c.mss {
		t.Errorf("after a loss at cwnd %d: ssthresh %d, W_max %v", cwndBefore, c.ssthresh, c.cubic.wMax)
	}
}
