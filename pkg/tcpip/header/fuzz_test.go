package header

import (
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
)

func seedIPv4(f *testing.F) {
	b := make([]byte, 28)
	IPv4(b).Encode(IPv4Fields{TotalLength: 28, TTL: 64, Protocol: 17, Src: tcpip.ParseAddress("1.2.3.4"), Dst: tcpip.ParseAddress("5.6.7.8")})
	f.Add(b)
	o := make([]byte, 28)
	IPv4(o).Encode(IPv4Fields{TotalLength: 28, TTL: 64, Options: []byte{7, 7, 4, 0, 0, 0, 0, 0}})
	f.Add(o)
	f.Add([]byte{0x45})
}

func FuzzIPv4(f *testing.F) {
	seedIPv4(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		// A packet split anywhere after its header parses as the joined
		// one when its total length covers both parts, and only then.
		cut := len(b) / 2
		if len(b) > 0 {
			cut = int(b[len(b)-1]) % (len(b) + 1)
		}
		whole, werr := ParseIPv4(b)
		if sh, serr := ParseIPv4Split(b[:cut], len(b)-cut); serr == nil {
			if werr != nil || int(whole.TotalLength()) != len(b) || len(sh) != cut {
				t.Fatalf("split at %d parsed (%d bytes) but whole: %v", cut, len(sh), werr)
			}
		} else if werr == nil && int(whole.TotalLength()) == len(b) && whole.HeaderLength() <= cut {
			t.Fatalf("split at %d refused (%v) a packet that parses whole", cut, serr)
		}
		h, err := ParseIPv4(b)
		if err != nil {
			return
		}
		_ = h.Payload()
		_, _, _ = h.SourceAddress(), h.FragmentOffset(), h.IsFragment()
		it := h.Options()
		for {
			_, _, ok, err := it.Next()
			if !ok || err != nil {
				break
			}
		}
	})
}

func FuzzIPv6(f *testing.F) {
	b := make([]byte, 48)
	IPv6(b).Encode(IPv6Fields{PayloadLength: 8, NextHeader: IPv6ExtFragment})
	f.Add(b)
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		// A packet split anywhere after its fixed header parses as the
		// joined one when its payload length covers both parts.
		cut := len(b) / 2
		if len(b) > 0 {
			cut = int(b[len(b)-1]) % (len(b) + 1)
		}
		whole, werr := ParseIPv6(b)
		if sh, serr := ParseIPv6Split(b[:cut], len(b)-cut); serr == nil {
			if werr != nil || len(whole) != len(b) || len(sh) != cut {
				t.Fatalf("split at %d parsed (%d bytes) but whole: %v", cut, len(sh), werr)
			}
		} else if werr == nil && len(whole) == len(b) && cut >= IPv6MinimumSize {
			t.Fatalf("split at %d refused (%v) a packet that parses whole", cut, serr)
		}
		h, err := ParseIPv6(b)
		if err != nil {
			return
		}
		it := h.ExtensionHeaders()
		for i := 0; ; i++ {
			e, ok, err := it.Next()
			if err != nil || !ok {
				break
			}
			if e.Type == IPv6ExtFragment {
				_, _, _ = e.FragmentOffset(), e.MoreFragments(), e.FragmentID()
			}
		}
		_, up, off := it.UpperLayer()
		if off+len(up) != len(h.Payload()) {
			t.Fatalf("upper layer offset %d + len %d != payload %d", off, len(up), len(h.Payload()))
		}
	})
}

func FuzzTCP(f *testing.F) {
	var ob [40]byte
	opts := ob[:EncodeTCPOptions(ob[:], &TCPOptions{HasMSS: true, MSS: 1400, HasTS: true, SACKPermitted: true, HasWS: true, WindowScale: 3})]
	seg := make([]byte, 20+len(opts))
	EncodeTCP(seg, &TCPFields{Flags: TCPFlagSyn, Options: opts}, tcpip.Address{}, tcpip.Address{})
	f.Add(seg)
	f.Add([]byte{5, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseTCP(b)
		if !ok {
			return
		}
		o, ok := ParseTCPOptions(h.OptionBytes())
		_ = h.Payload()
		if ok && o.NumSACKBlocks > TCPMaxSACKBlocks {
			t.Fatal("too many SACK blocks")
		}
		var out [40]byte
		if n := EncodeTCPOptions(out[:], &o); n > 40 || n%4 != 0 {
			t.Fatalf("re-encoded options length %d", n)
		}
	})
}

func FuzzTCPOptions(f *testing.F) {
	f.Add([]byte{2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) { ParseTCPOptions(b) })
}

func FuzzUDP(f *testing.F) {
	u := make([]byte, 10)
	EncodeUDP(u, 1, 2, tcpip.ParseAddress("1.1.1.1"), tcpip.ParseAddress("2.2.2.2"))
	f.Add(u)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseUDP(b)
		if !ok {
			return
		}
		if int(h.Length()) != len(h) {
			t.Fatal("length mismatch")
		}
		h.IsChecksumValid(tcpip.ParseAddress("1.1.1.1"), tcpip.ParseAddress("2.2.2.2"))
		_ = h.Payload()
	})
}

func FuzzICMPv4(f *testing.F) {
	b := make([]byte, 8)
	EncodeICMPv4(b, ICMPv4Echo, 0, 0)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, ok := ParseICMPv4(b); ok {
			_, _, _ = m.Type(), m.Ident(), m.Payload()
		}
	})
}

func FuzzICMPv6NDP(f *testing.F) {
	src, dst := tcpip.ParseAddress("fe80::1"), tcpip.ParseAddress("fe80::2")
	mac := tcpip.LinkAddress{2}
	b := make([]byte, 32)
	EncodeNDPNeighbor(b, ICMPv6NeighborAdvert, NDPNAFlagSolicited, src, &mac)
	SetICMPv6Checksum(b, src, dst)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseICMPv6(b, src, dst)
		if len(b) >= ICMPv6MinimumSize {
			ParseNDPNeighbor(ICMPv6(b))
		}
	})
}

func FuzzARP(f *testing.F) {
	b := make([]byte, ARPSize)
	EncodeARP(b, ARPReply, tcpip.LinkAddress{1}, tcpip.ParseAddress("1.1.1.1"), tcpip.LinkAddress{2}, tcpip.ParseAddress("2.2.2.2"))
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, ok := ParseARP(b); ok {
			_, _, _ = a.Op(), a.SenderProtocol(), a.TargetHardware()
		}
	})
}

func FuzzEthernet(f *testing.F) {
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, ok := ParseEthernet(b); ok {
			_, _, _ = e.Type(), e.SourceAddress(), e.DestinationAddress()
		}
	})
}
