package tcp

import (
	"bytes"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

func TestSACKRecoversMultipleLossesInOneRound(t *testing.T) {
	p := newPair(t, testutil.PairOptions{})
	c, s, _ := dial(t, p)
	if !c.sackOK || !s.sackOK {
		t.Fatal("SACK not negotiated")
	}
	mss := c.mss
	lost := map[uint32]bool{}
	firstLost := c.sndNxt + uint32(2*mss)
	for _, k := range []int{2, 5, 8} {
		lost[c.sndNxt+uint32(k*mss)] = true
	}
	// With SACK every hole is resent in the first recovery round, before
	// any partial ACK moves SND.UNA past the first hole; NewReno alone
	// would need a round trip per hole.
	unaAtRetransmit := map[uint32]uint32{}
	sent := map[uint32]int{}
	sawSACK := false
	filter := func(from *channel.Endpoint, pkt channel.Packet) []channel.Packet {
		tcp, data := isData(pkt)
		if from == p.LinkB {
			o, _ := header.ParseTCPOptions(tcp.OptionBytes())
			if o.NumSACKBlocks > 0 {
				sawSACK = true
			}
			return []channel.Packet{pkt}
		}
		if data {
			sent[tcp.Seq()]++
			if lost[tcp.Seq()] && sent[tcp.Seq()] == 1 {
				return nil
			}
			if sent[tcp.Seq()] == 2 {
				unaAtRetransmit[tcp.Seq()] = c.sndUna
			}
		}
		return []channel.Packet{pkt}
	}
	data := pattern(10 * mss)
	c.Write(bytes.NewReader(data), tcpip.WriteOptions{})
	p.Pump(filter)
	got, _ := readAll(s)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d of %d bytes without any timer", len(got), len(data))
	}
	if !sawSACK {
		t.Fatal("receiver sent no SACK blocks")
	}
	retransmits := 0
	for seq, n := range sent {
		if n > 1 {
			retransmits += n - 1
			if !lost[seq] {
				t.Errorf("retransmitted segment %d that was not lost", seq-c.iss)
			}
		}
	}
	for seq, una := range unaAtRetransmit {
		if una != firstLost {
			t.Errorf("hole %d resent after SND.UNA moved to %d: not SACK-driven", seq-c.iss, una-c.iss)
		}
	}
	if retransmits != 3 {
		t.Fatalf("%d retransmissions, want exactly the 3 lost segments", retransmits)
	}
}

func TestScoreboardMerge(t *testing.T) {
	e := &endpoint{sndUna: 100, sndMax: 1000, mss: 10}
	e.sndBuf.Fill(bytes.NewReader(make([]byte, 900)), 900, 900, sndChunkSize)
	for _, r := range []sackRange{{300, 400}, {500, 600}, {400, 450}, {200, 250}, {590, 700}} {
		e.addSACKed(r)
	}
	want := []sackRange{{200, 250}, {300, 450}, {500, 700}}
	if len(e.sacked) != len(want) {
		t.Fatalf("scoreboard %v", e.sacked)
	}
	for i := range want {
		if e.sacked[i] != want[i] {
			t.Fatalf("scoreboard %v, want %v", e.sacked, want)
		}
	}
	if seq, n, ok := e.nextHole(100); !ok || seq != 100 || n != 10 {
		t.Fatalf("first hole %d+%d %v", seq, n, ok)
	}
	if seq, n, ok := e.nextHole(205); !ok || seq != 250 || n != 10 {
		t.Fatalf("hole after 205: %d+%d %v", seq, n, ok)
	}
	if _, _, ok := e.nextHole(700); ok {
		t.Fatal("hole past the highest SACKed byte")
	}
	e.sndUna = 320
	e.trimScoreboard()
	if e.sacked[0] != (sackRange{320, 450}) || len(e.sacked) != 2 {
		t.Fatalf("after trim %v", e.sacked)
	}
	if e.pipe() != int(e.sndMax-e.sndUna)-130-200 {
		t.Fatalf("pipe %d", e.pipe())
	}
}
