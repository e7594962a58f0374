package tcp

import (
	"bytes"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

func TestTCPInfoCountsRetransmissions(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	before := c.TCPInfo()
	if before.SndMSS <= 0 || before.SndCwnd <= 0 || before.RTO <= 0 || before.TotalRetrans != 0 {
		t.Fatalf("fresh connection info %+v", before)
	}
	if before.Options&tcpiOptTimestamps == 0 || before.Options&tcpiOptSACK == 0 {
		t.Errorf("options %#x lack timestamps or SACK, which the pair negotiates", before.Options)
	}
	dropped := 0
	lossy := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		if _, ok := isData(pkt); ok && from == p.LinkA && dropped < 1 {
			dropped++
			return nil
		}
		return []channel.Packet{pkt}
	}
	c.Write(bytes.NewReader([]byte("lost once")), tcpip.WriteOptions{})
	p.Pump(lossy)
	if i := c.TCPInfo(); i.Unacked != 1 {
		t.Errorf("unacked = %d with one segment in flight", i.Unacked)
	}
	p.Manual.Advance(c.rto)
	p.Pump(nil)
	if got, _ := readAll(s); string(got) != "lost once" {
		t.Fatalf("got %q", got)
	}
	after := c.TCPInfo()
	if after.TotalRetrans != 1 || after.Unacked != 0 {
		t.Errorf("after one RTO retransmission: total_retrans %d unacked %d, want 1 and 0", after.TotalRetrans, after.Unacked)
	}
	if after.RTO < MinRTO {
		t.Errorf("RTO %v below the minimum", after.RTO)
	}
}
