package tcp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/link/channel"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/testutil"
)

var fuzzFilter func(*channel.Endpoint, channel.Packet) []channel.Packet

// FuzzSegment feeds arbitrary segments, with valid checksums, to a
// listening endpoint and to an established connection. Nothing may
// panic, and the connection's invariants must hold afterwards. Some
// arrive split as loopback delivers them (headers and payload apart,
// the checksum sometimes vouched for), cut at the TCP header's end or
// anywhere.
func FuzzSegment(f *testing.F) {
	var ob [40]byte
	opts := ob[:header.EncodeTCPOptions(ob[:], &header.TCPOptions{HasMSS: true, MSS: 1, HasWS: true, WindowScale: 14, HasTS: true, SACKPermitted: true})]
	syn := make([]byte, 20+len(opts))
	header.EncodeTCP(syn, &header.TCPFields{SrcPort: 1234, DstPort: 80, Seq: 1, Flags: header.TCPFlagSyn, Window: 0, Options: opts}, testutil.AddrA, testutil.AddrB)
	f.Add(syn, true)
	f.Add(syn, false)
	data := make([]byte, 25)
	header.EncodeTCP(data, &header.TCPFields{SrcPort: 1234, DstPort: 80, Seq: 100, Ack: 5, Flags: header.TCPFlagAck | header.TCPFlagFin, Window: 100}, testutil.AddrA, testutil.AddrB)
	f.Add(data, false)
	sackOpts := header.TCPOptions{NumSACKBlocks: 2}
	sackOpts.SACKBlocks[0] = header.SACKBlock{Start: 0, End: 5}
	sackOpts.SACKBlocks[1] = header.SACKBlock{Start: 0xffffff00, End: 3}
	so := ob[:header.EncodeTCPOptions(ob[:], &sackOpts)]
	sack := make([]byte, 20+len(so))
	header.EncodeTCP(sack, &header.TCPFields{SrcPort: 1234, DstPort: 80, Flags: header.TCPFlagAck, Window: 10, Options: so}, testutil.AddrA, testutil.AddrB)
	sack[12] |= 1 // ask the harness for live sequence numbers
	f.Add(sack, false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, header.TCPFlagRst}, false)
	f.Fuzz(func(t *testing.T, seg []byte, toListener bool) {
		p := newPair(t, testutil.PairOptions{})
		c, s, _ := dial(t, p)
		c.Write(bytes.NewReader([]byte("hello")), tcpip.WriteOptions{})
		p.Pump(nil)
		if len(seg) < header.TCPMinimumSize {
			seg = append(seg, make([]byte, header.TCPMinimumSize-len(seg))...)
		}
		seg = append([]byte(nil), seg...)
		if len(seg) > 1400 {
			seg = seg[:1400]
		}
		// Aim the segment at one of the endpoints; sometimes use the
		// connection's real sequence numbers so deep paths are reached.
		srcPort := c.id.LocalPort
		if toListener {
			srcPort = 5555
		}
		binary.BigEndian.PutUint16(seg[0:], srcPort)
		binary.BigEndian.PutUint16(seg[2:], 80)
		if seg[12]&1 == 1 {
			binary.BigEndian.PutUint32(seg[4:], s.rcvNxt+uint32(seg[5]))
			binary.BigEndian.PutUint32(seg[8:], s.sndUna+uint32(seg[9]&7))
		}
		seg[16], seg[17] = 0, 0
		binary.BigEndian.PutUint16(seg[16:], ^header.Checksum(seg, header.PseudoHeaderChecksum(ProtocolNumber, testutil.AddrA, testutil.AddrB, uint16(len(seg)))))
		ip := make([]byte, 20+len(seg))
		copy(ip[20:], seg)
		header.IPv4(ip).Encode(header.IPv4Fields{TotalLength: uint16(len(ip)), TTL: 64, Protocol: 6, Src: testutil.AddrA, Dst: testutil.AddrB})
		if mode := seg[19] & 3; mode != 0 {
			cut := 20 + int(seg[18])%(len(seg)+1)
			if mode == 1 {
				cut = 20 + min(int(seg[12]>>4)*4, len(seg))
			}
			pkt := stack.NewSplitInboundPacket(ip[:cut], ip[cut:])
			pkt.TransportChecksumTrusted = mode != 3
			p.B.NIC(1).DeliverNetworkPacket(tcpip.LinkAddress{}, ipv4.ProtocolNumber, pkt)
		} else {
			p.LinkB.InjectInbound(ipv4.ProtocolNumber, ip)
		}
		p.Pump(fuzzFilter)
		for i := 0; i < 5; i++ {
			if d, ok := p.Manual.NextDeadline(); ok {
				p.Manual.Advance(d)
				p.Pump(nil)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.rcvUsed < 0 || s.rcvUsed > s.rcvBufSize || seqGT(s.sndUna, s.sndMax) || seqGT(s.sndNxt, s.sndMax) {
			t.Fatalf("invariants broken: rcvUsed %d una %d nxt %d max %d", s.rcvUsed, s.sndUna, s.sndNxt, s.sndMax)
		}
	})
}
