package netlink

import (
	"encoding/binary"
	"testing"

	"carapace.dev/carapace/pkg/tcpip/stack"
)

func TestLinkStatsLayout(t *testing.T) {
	st := stack.NICStats{RxPackets: 1, TxPackets: 2, RxBytes: 3, TxBytes: 4, TxErrs: 6, RxDrops: 7}
	b32 := linkStats(st, 4)
	b64 := linkStats(st, 8)
	if len(b32) != linkStatsSize || len(b64) != linkStats64Siz {
		t.Fatalf("sizes %d, %d", len(b32), len(b64))
	}
	// rtnl_link_stats order: rx_packets, tx_packets, rx_bytes, tx_bytes,
	// rx_errors, tx_errors, rx_dropped.
	want := []uint64{1, 2, 3, 4, 0, 6, 7}
	for i, w := range want {
		if g := binary.LittleEndian.Uint32(b32[i*4:]); uint64(g) != w {
			t.Errorf("rtnl_link_stats field %d = %d, want %d", i, g, w)
		}
		if g := binary.LittleEndian.Uint64(b64[i*8:]); g != w {
			t.Errorf("rtnl_link_stats64 field %d = %d, want %d", i, g, w)
		}
	}
}
