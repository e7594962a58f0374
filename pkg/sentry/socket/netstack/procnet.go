package netstack

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
	"golang.org/x/sys/unix"
)

// registry is the set of a provider's live sockets, which /proc/net's
// connection tables list. It is touched on socket creation and close
// only, never on the data path.
type registry struct {
	mu    sync.Mutex
	socks map[*sock]struct{}
}

func (r *registry) add(s *sock) {
	r.mu.Lock()
	if r.socks == nil {
		r.socks = make(map[*sock]struct{})
	}
	r.socks[s] = struct{}{}
	r.mu.Unlock()
}

// remove drops s from the registry on close(2); its endpoints remember
// it (orphan) for the connection's remaining life.
func (r *registry) remove(s *sock) {
	orphan(s)
	r.mu.Lock()
	delete(r.socks, s)
	r.mu.Unlock()
}

// snapshot returns the live sockets in inode order.
func (r *registry) snapshot() []*sock {
	r.mu.Lock()
	out := make([]*sock, 0, len(r.socks))
	for s := range r.socks {
		out = append(out, s)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *sock) int { return cmp.Compare(a.ino, b.ino) })
	return out
}

// track records the socket file's inode and owner for /proc/net and adds
// the socket to the provider's registry.
func (p *Provider) track(ctx context.Context, s *sock, fd *vfs.FileDescription) {
	if st, err := fd.Inode().Stat(ctx, unix.STATX_INO|unix.STATX_UID); err == nil {
		s.ino, s.uid = st.Ino, st.Uid
	}
	p.socks.add(s)
}

// ProcNet returns the contents of the /proc/net file name that this
// provider's family answers: tcp, udp, dev, route and snmp for AF_INET;
// tcp6, udp6 and if_inet6 for AF_INET6. ok is false for other names.
func (p *Provider) ProcNet(name string) (content []byte, ok bool) {
	var b bytes.Buffer
	v6 := p.family == unix.AF_INET6
	switch {
	case name == "tcp" && !v6, name == "tcp6" && v6:
		p.writeConnTable(&b, tcp.ProtocolNumber)
	case name == "udp" && !v6, name == "udp6" && v6:
		p.writeConnTable(&b, udp.ProtocolNumber)
	case name == "dev" && !v6:
		writeDev(&b, p.stack)
	case name == "route" && !v6:
		writeRoute(&b, p.stack)
	case name == "snmp" && !v6:
		p.writeSNMP(&b)
	case name == "if_inet6" && v6:
		writeIfInet6(&b, p.stack)
	default:
		return nil, false
	}
	return b.Bytes(), true
}

// Line widths of Linux's fixed-width tables (seq_pad): tcp4 rows are
// padded to TMPSZ-1 = 149 characters, udp4 and route rows to 127.
const (
	tcp4Width  = 149
	udp4Width  = 127
	routeWidth = 127
)

func padLine(b *bytes.Buffer, start, width int) {
	for b.Len()-start < width {
		b.WriteByte(' ')
	}
	b.WriteByte('\n')
}

// procHexAddr writes an address as Linux's %08X of each __be32 word does
// on a little-endian machine: each 4-byte group byte-reversed.
func procHexAddr(b *bytes.Buffer, a tcpip.Address, v6 bool) {
	if v6 {
		a = mapV4(a)
		if a.Len() == 0 {
			a = tcpip.AddrFrom16([16]byte{})
		}
		w := a.As16()
		for i := 0; i < 16; i += 4 {
			fmt.Fprintf(b, "%02X%02X%02X%02X", w[i+3], w[i+2], w[i+1], w[i])
		}
		return
	}
	w := a.As4()
	fmt.Fprintf(b, "%02X%02X%02X%02X", w[3], w[2], w[1], w[0])
}

const (
	linuxTCPClose       = 7
	linuxTCPEstablished = 1
)

// writeConnTable writes /proc/net/{tcp,tcp6,udp,udp6}: Linux lists the
// sockets in its lookup tables, i.e. TCP sockets listening or in a
// connection, and bound UDP sockets.
func (p *Provider) writeConnTable(b *bytes.Buffer, proto tcpip.TransportProtocolNumber) {
	v6 := p.family == unix.AF_INET6
	isTCP := proto == tcp.ProtocolNumber
	const hdr = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	const hdr6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	switch {
	case isTCP && v6:
		b.WriteString(hdr6 + "\n")
	case isTCP:
		start := b.Len()
		b.WriteString(hdr)
		padLine(b, start, tcp4Width)
	case v6:
		b.WriteString(hdr6 + " ref pointer drops\n")
	default:
		start := b.Len()
		b.WriteString(" " + hdr + " ref pointer drops")
		padLine(b, start, udp4Width)
	}
	protocol := unix.IPPROTO_UDP
	if isTCP {
		protocol = unix.IPPROTO_TCP
	}
	for sl, e := range p.Connections(protocol) {
		local, remote, state := e.Local, e.Remote, e.State
		txq, rxq := e.SendQueue, e.RecvQueue
		listening := state == LinuxTCPListen
		start := b.Len()
		if isTCP {
			fmt.Fprintf(b, "%4d: ", sl)
		} else {
			fmt.Fprintf(b, "%5d: ", sl)
		}
		procHexAddr(b, local.Addr, v6)
		fmt.Fprintf(b, ":%04X ", local.Port)
		procHexAddr(b, remote.Addr, v6)
		// tr, tm->when (clock ticks of USER_HZ 100), retrnsmt and
		// timeout (unanswered probes) from the TCP timer.
		retrnsmt, probes := e.Retransmits, 0
		if e.Timer == uint8(tcp.TimerKeepalive) || e.Timer == uint8(tcp.TimerProbe) {
			retrnsmt, probes = 0, e.Retransmits
		}
		fmt.Fprintf(b, ":%04X %02X %08X:%08X %02X:%08X %08X %5d %8d %d ",
			remote.Port, state, txq, rxq, e.Timer, clockTicks(e.Expires), retrnsmt, e.UID, probes, e.Inode)
		switch {
		case e.TimeWait:
			// A timewait mini-socket's refcount and address.
			b.WriteString("3 0000000000000000")
		case !isTCP:
			b.WriteString("2 0000000000000000 0")
		case listening:
			// refcnt, sk, rto, ato, quick|pingpong, cwnd, fastopen queue.
			b.WriteString("1 0000000000000000 100 0 0 10 0")
		default:
			b.WriteString("1 0000000000000000 20 4 0 10 -1")
		}
		if v6 {
			b.WriteByte('\n')
		} else if isTCP {
			padLine(b, start, tcp4Width)
		} else {
			padLine(b, start, udp4Width)
		}
	}
}

// clockTicks converts a timer's remaining time to clock_t units
// (USER_HZ = 100 a second), rounding up as jiffies do.
func clockTicks(d time.Duration) int64 {
	const tick = time.Second / 100
	return int64((d + tick - 1) / tick)
}

// writeDev writes /proc/net/dev's per-interface counters.
func writeDev(b *bytes.Buffer, s *stack.Stack) {
	b.WriteString("Inter-|   Receive                                                |  Transmit\n")
	b.WriteString(" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	nics := s.NICs()
	slices.SortFunc(nics, func(a, b *stack.NIC) int { return int(a.ID() - b.ID()) })
	for _, n := range nics {
		st := n.Stats()
		fmt.Fprintf(b, "%6s: %7d %7d %4d %4d %4d %5d %10d %9d %8d %7d %4d %4d %4d %5d %7d %10d\n",
			n.Name(), st.RxBytes, st.RxPackets, 0, st.RxDrops, 0, 0, 0, 0,
			st.TxBytes, st.TxPackets, st.TxErrs, 0, 0, 0, 0, 0)
	}
}

// writeRoute writes /proc/net/route: the IPv4 routes of the main table
// (routes on loopback live in Linux's local table and are not shown).
func writeRoute(b *bytes.Buffer, s *stack.Stack) {
	start := b.Len()
	b.WriteString("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT")
	padLine(b, start, routeWidth)
	for _, r := range s.RouteTable() {
		if r.Destination.ID().Len() != 4 {
			continue
		}
		n := s.NIC(r.NIC)
		if n == nil || n.LinkEndpoint().Capabilities()&stack.CapabilityLoopback != 0 {
			continue
		}
		flags := unix.RTF_UP
		gw := r.Gateway
		if gw.Len() == 4 && !gw.Unspecified() {
			flags |= unix.RTF_GATEWAY
		} else {
			gw = tcpip.AddrFrom4([4]byte{})
		}
		if r.Destination.Prefix() == 32 {
			flags |= unix.RTF_HOST
		}
		mask := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{255, 255, 255, 255}), r.Destination.Prefix()).ID()
		start := b.Len()
		b.WriteString(n.Name())
		b.WriteByte('\t')
		procHexAddr(b, r.Destination.ID(), false)
		b.WriteByte('\t')
		procHexAddr(b, gw, false)
		fmt.Fprintf(b, "\t%04X\t0\t0\t0\t", flags)
		procHexAddr(b, mask, false)
		b.WriteString("\t0\t0\t0")
		padLine(b, start, routeWidth)
	}
}

// IPv6 address scopes as /proc/net/if_inet6 prints them (IPV6_ADDR_*
// scope bits) and IFA_F_PERMANENT.
const (
	scopeGlobal     = 0x00
	scopeLoopback   = 0x10
	scopeLinkLocal  = 0x20
	scopeSiteLocal  = 0x40
	ifaFPermanent   = 0x80
	ipv6AddressSize = 16
)

func ipv6Scope(a tcpip.Address) int {
	w := a.As16()
	switch {
	case a.IsLoopback():
		return scopeLoopback
	case w[0] == 0xfe && w[1]&0xc0 == 0x80:
		return scopeLinkLocal
	case w[0] == 0xfe && w[1]&0xc0 == 0xc0:
		return scopeSiteLocal
	}
	return scopeGlobal
}

// writeIfInet6 writes /proc/net/if_inet6: one line per IPv6 address.
func writeIfInet6(b *bytes.Buffer, s *stack.Stack) {
	for _, i := range Interfaces(s) {
		for _, a := range i.Address {
			if a.Address.Len() != ipv6AddressSize {
				continue
			}
			w := a.Address.As16()
			for _, c := range w {
				fmt.Fprintf(b, "%02x", c)
			}
			fmt.Fprintf(b, " %02x %02x %02x %02x %8s\n", i.Index, a.PrefixLen, ipv6Scope(a.Address), ifaFPermanent, i.Name)
		}
	}
}

// writeSNMP writes /proc/net/snmp with the fields of Linux 4.4; the
// counters the stack keeps are filled in, the others are zero.
func (p *Provider) writeSNMP(b *bytes.Buffer) {
	st := p.stack.Stats()
	rcvd, sent := st.PacketsReceived.Load(), st.PacketsSent.Load()
	b.WriteString("Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates\n")
	fmt.Fprintf(b, "Ip: 2 64 %d %d 0 0 %d 0 %d %d 0 %d %d 0 0 %d 0 0 0\n",
		rcvd, st.MalformedPackets.Load(), st.UnknownProtocol.Load(), rcvd, sent, st.NoRoute.Load(),
		st.ReassemblyTimeouts.Load(), st.FragmentsDropped.Load())
	b.WriteString("Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps\n")
	b.WriteString("Icmp: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
	b.WriteString("Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n")
	estab := 0
	for _, s := range p.socks.snapshot() {
		if st, ok := tcpState(s.endpoint()); ok && (st == tcp.StateEstablished || st == tcp.StateCloseWait) {
			estab++
		}
	}
	fmt.Fprintf(b, "Tcp: 1 200 120000 -1 0 0 0 0 %d 0 0 0 0 0 0\n", estab)
	b.WriteString("Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti\n")
	fmt.Fprintf(b, "Udp: 0 0 0 0 %d 0 0 0\n", st.UDPReceiveBufferFull.Load())
	b.WriteString("UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti\n")
	b.WriteString("UdpLite: 0 0 0 0 0 0 0 0\n")
}
