package tcp

import (
	"bytes"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

// snapshotOf finds the snapshot of the endpoint with the given local and
// remote ports among Snapshots(s).
func snapshotOf(t *testing.T, all []Snapshot, lport, rport uint16) Snapshot {
	t.Helper()
	for _, sn := range all {
		if sn.Local.Port == lport && sn.Remote.Port == rport {
			return sn
		}
	}
	t.Fatalf("no endpoint %d->%d among %+v", lport, rport, all)
	return Snapshot{}
}

func TestSnapshotTimeWaitAfterClose(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	c.SetOwner("client socket")
	cport := c.id.LocalPort
	c.Close()
	p.Pump(nil)
	s.Close()
	p.Pump(nil)
	sn := snapshotOf(t, Snapshots(p.A), cport, 80)
	if sn.State != StateTimeWait || !sn.Orphaned || sn.Owner != "client socket" {
		t.Fatalf("closed client: %+v", sn)
	}
	if sn.Timer != TimerTimeWait || sn.Expires != TimeWaitDuration || sn.Family != 4 {
		t.Fatalf("TIME-WAIT timer: %+v", sn)
	}
	p.Manual.Advance(TimeWaitDuration / 4)
	if sn := snapshotOf(t, Snapshots(p.A), cport, 80); sn.Expires != 3*TimeWaitDuration/4 {
		t.Fatalf("expiry after a quarter: %v", sn.Expires)
	}
	p.Manual.Advance(TimeWaitDuration)
	if all := Snapshots(p.A); len(all) != 0 {
		t.Fatalf("TIME-WAIT outlived its timer: %+v", all)
	}
}

func TestSnapshotListenerQueues(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	ln := newEP(t, p.B)
	ln.Bind(tcpip.FullAddress{Port: 80})
	ln.Listen(7)
	for range 3 {
		c := newEP(t, p.A)
		c.Connect(tcpip.FullAddress{Addr: testutil.AddrB, Port: 80})
		p.Pump(nil)
	}
	sn := snapshotOf(t, Snapshots(p.B), 80, 0)
	if sn.State != StateListen || sn.AcceptQueue != 3 || sn.Backlog != 7 || sn.Timer != TimerNone {
		t.Fatalf("listener: %+v", sn)
	}
	// The three queued connections are registered and listed too, owned
	// by no socket yet.
	if n := len(Snapshots(p.B)); n != 4 {
		t.Fatalf("%d endpoints on B, want listener + 3", n)
	}
}

func TestSnapshotRetransmitAndKeepaliveTimers(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, _, _ := dial(t, p)
	c.SetSockOpt(tcpip.KeepaliveEnabledOption, 1)
	sn := c.Snapshot()
	if sn.Timer != TimerKeepalive || sn.Expires != DefaultKeepaliveIdle {
		t.Fatalf("idle with keepalive: %+v", sn)
	}
	// Data the peer never sees: the retransmission timer runs, and after
	// it fires once, the retransmission is counted.
	c.Write(bytes.NewReader([]byte("lost")), tcpip.WriteOptions{})
	sn = c.Snapshot()
	if sn.Timer != TimerRetransmit || sn.Expires <= 0 || sn.Expires > time.Second || sn.SendQueue != 4 {
		t.Fatalf("unacknowledged data: %+v", sn)
	}
	rto := c.rto
	p.Manual.Advance(rto)
	if sn := c.Snapshot(); sn.Timer != TimerRetransmit || sn.Retransmits != 1 || sn.Expires != 2*rto {
		t.Fatalf("after one timeout: %+v", sn)
	}
}
