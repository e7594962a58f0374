package tcp

import (
	"math"
	"time"
)

// CUBIC congestion control (RFC 9438). The window grows as a cubic
// function of the time since the last congestion event, centred on the
// window where that loss happened (W_max): fast far below it, flat near
// it, probing faster again beyond it. Windows are kept in segments as
// floats, as the RFC writes them; the endpoint's cwnd stays in bytes.
const (
	cubicC    = 0.4 // RFC 9438 §5.1
	cubicBeta = 0.7 // multiplicative decrease factor
	// cubicAlpha is the Reno-friendly additive increase, 3(1-β)/(1+β).
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

type cubicState struct {
	wMax     float64       // window at the last congestion event, segments
	wLastMax float64       // W_max before that, for fast convergence
	k        float64       // seconds for the cubic to climb back to wMax
	epoch    time.Duration // start of this avoidance epoch; 0: not begun
	started  bool
	wEst     float64 // the Reno-friendly estimate, segments
	cwnd     float64 // fractional window, segments
}

// onLoss is the congestion event (RFC 9438 §4.6, §4.7 fast
// convergence): it returns the new slow-start threshold in segments.
func (c *cubicState) onLoss(cwndSegs float64) float64 {
	if cwndSegs < c.wLastMax {
		c.wLastMax = cwndSegs
		c.wMax = cwndSegs * (1 + cubicBeta) / 2
	} else {
		c.wMax = cwndSegs
		c.wLastMax = cwndSegs
	}
	c.started = false
	return math.Max(cwndSegs*cubicBeta, 2)
}

// onAck grows the window in congestion avoidance for acked segments'
// worth of acknowledged data, at time now with smoothed RTT rtt, and
// returns the new window in segments (RFC 9438 §4.2–§4.4).
func (c *cubicState) onAck(cwndSegs, ackedSegs float64, now, rtt time.Duration) float64 {
	if !c.started {
		c.started = true
		c.epoch = now
		c.cwnd = cwndSegs
		if cwndSegs < c.wMax {
			c.k = math.Cbrt((c.wMax - cwndSegs) / cubicC)
		} else {
			c.k = 0
			c.wMax = cwndSegs
		}
		c.wEst = cwndSegs
	}
	if math.Abs(c.cwnd-cwndSegs) >= 1 {
		c.cwnd = cwndSegs // the endpoint changed it (recovery, etc.)
	}
	t := (now - c.epoch).Seconds()
	target := c.window(t + rtt.Seconds())
	target = math.Min(math.Max(target, c.cwnd), 1.5*c.cwnd)
	c.wEst += cubicAlpha * ackedSegs / c.cwnd
	if c.window(t) < c.wEst {
		c.cwnd = math.Max(c.cwnd, c.wEst) // Reno-friendly region
	} else {
		c.cwnd += (target - c.cwnd) / c.cwnd * ackedSegs
	}
	return c.cwnd
}

// window is W_cubic(t) = C(t-K)^3 + W_max.
func (c *cubicState) window(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d + c.wMax
}
