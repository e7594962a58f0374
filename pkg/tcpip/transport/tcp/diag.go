package tcp

import (
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// TimerKind names the pending timer of a connection as Linux's socket
// listings number it (the "tr" column of /proc/net/tcp, idiag_timer).
type TimerKind uint8

// Timer kinds; a connection shows the first pending one in this order:
// retransmission, zero-window probe, keepalive, then the TIME-WAIT (or
// orphaned FIN-WAIT-2) timer.
const (
	TimerNone       TimerKind = 0
	TimerRetransmit TimerKind = 1
	TimerKeepalive  TimerKind = 2
	TimerTimeWait   TimerKind = 3
	TimerProbe      TimerKind = 4
)

// Snapshot is a TCP endpoint's state as the socket listings show it,
// read under the endpoint's lock in one go.
type Snapshot struct {
	State State
	// Family is the address length of the endpoint's network protocol
	// (4 or 16).
	Family        int
	Local, Remote tcpip.FullAddress
	// RecvQueue is the bytes received and not read; SendQueue the bytes
	// written and not acknowledged.
	RecvQueue, SendQueue int
	// AcceptQueue is a listener's count of established connections
	// waiting for accept(2); Backlog its listen(2) limit as the endpoint
	// holds it.
	AcceptQueue, Backlog int
	// Timer is the pending timer, Expires the time until it fires (0 if
	// none or overdue), Retransmits the retransmissions of the current
	// segment (or the unanswered probes for the probe and keepalive
	// timers).
	Timer       TimerKind
	Expires     time.Duration
	Retransmits int
	// Orphaned says the user closed the endpoint: it lives on only to
	// finish the connection's close. Pending says it is a connection a
	// listener made that accept(2) has not returned. An endpoint that is
	// neither is its user's to list.
	Orphaned, Pending bool
	// Owner is what SetOwner recorded.
	Owner any
	// Endpoint is the endpoint itself, for its socket options.
	Endpoint tcpip.Endpoint
}

// SetOwner records the socket layer's handle for the endpoint, which
// Snapshot returns: after close(2), it is how a listing finds the
// socket's owner for an endpoint only the stack still knows.
func (e *endpoint) SetOwner(o any) {
	e.mu.Lock()
	e.owner = o
	e.mu.Unlock()
}

// Snapshot returns the endpoint's state for the socket listings.
func (e *endpoint) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	sn := Snapshot{
		State:     e.state,
		Family:    e.family(),
		Local:     tcpip.FullAddress{NIC: e.bindNIC, Addr: e.id.LocalAddress, Port: e.id.LocalPort},
		Remote:    tcpip.FullAddress{Addr: e.id.RemoteAddress, Port: e.id.RemotePort},
		RecvQueue: e.rcvUsed, SendQueue: e.sndBuf.Len(),
		AcceptQueue: len(e.acceptQ), Backlog: e.backlog,
		Orphaned: e.closed, Owner: e.owner, Endpoint: e,
		Pending: e.listener != nil && !e.handedOut.Load(),
	}
	var deadline time.Duration
	switch {
	case e.rtxArmed && e.probing && e.sndMax == e.sndUna:
		sn.Timer, deadline, sn.Retransmits = TimerProbe, e.rtxDeadline, e.retries
	case e.rtxArmed:
		sn.Timer, deadline, sn.Retransmits = TimerRetransmit, e.rtxDeadline, e.retries
	case e.keepArmed:
		sn.Timer, deadline, sn.Retransmits = TimerKeepalive, e.keepDeadline, e.keepProbes
	case e.stateTimer != nil && (e.state == StateTimeWait || (e.state == StateFinWait2 && e.closed)):
		sn.Timer, deadline = TimerTimeWait, e.stateDeadline
	}
	if sn.Timer != TimerNone {
		sn.Expires = max(deadline-e.clock.Now(), 0)
	}
	return sn
}

// Snapshots returns the state of every TCP endpoint registered with s:
// listeners and connections, those that no socket owns any more
// included (TIME-WAIT, closing after close(2), waiting to be accepted).
// Endpoints that are only bound, or not yet bound, are not registered and
// not listed.
func Snapshots(s *stack.Stack) []Snapshot {
	eps := s.TransportEndpoints(ProtocolNumber)
	out := make([]Snapshot, 0, len(eps))
	for _, ep := range eps {
		if e, ok := ep.(*endpoint); ok {
			out = append(out, e.Snapshot())
		}
	}
	return out
}
