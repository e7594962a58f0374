package netlink

import (
	"bytes"
	"encoding/binary"
	"slices"

	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"golang.org/x/sys/unix"
)

// rtnetlink message sizes (linux/rtnetlink.h, linux/if_link.h).
const (
	ifinfomsgSize  = 16
	ifaddrmsgSize  = 8
	rtmsgSize      = 12
	linkStatsSize  = 24 * 4 // struct rtnl_link_stats
	linkStats64Siz = 24 * 8 // struct rtnl_link_stats64
	txQueueLen     = 1000
	ifOperUp       = 6
	ifOperUnknown  = 0
	// maxDatagram bounds one datagram of a dump, like the kernel's dump
	// skbs, so readers with a page-sized buffer see whole messages.
	maxDatagram = 4096
)

// routeHandler answers NETLINK_ROUTE requests from the stack's state.
type routeHandler struct {
	stack *stack.Stack
}

// handle processes one request and returns the datagrams of its answer.
func (h *routeHandler) handle(m Message, pid uint32) [][]byte {
	if m.Flags&flagRequest == 0 {
		return nil // Only requests are processed, as the kernel does.
	}
	if m.Type < msgMinType {
		return h.ack(m, pid, 0)
	}
	// Either bit of NLM_F_DUMP asks for a dump, as rtnetlink reads it.
	dump := m.Flags&flagDump != 0
	var msgs [][]byte
	var errno unix.Errno
	switch m.Type {
	case unix.RTM_GETLINK:
		msgs, errno = h.getLink(m, pid, dump)
	case unix.RTM_GETADDR:
		if !dump {
			errno = unix.EOPNOTSUPP
			break
		}
		msgs = h.dumpAddrs(m, pid)
	case unix.RTM_GETROUTE:
		if !dump {
			errno = unix.EOPNOTSUPP
			break
		}
		msgs = h.dumpRoutes(m, pid)
	case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_SETLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR,
		unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		// The sandbox's network is configured from outside.
		errno = unix.EPERM
	default:
		errno = unix.EOPNOTSUPP
	}
	if errno != 0 {
		return h.ack(m, pid, errno)
	}
	if dump {
		msgs = append(msgs, doneMessage(m.Seq, pid))
		return pack(msgs)
	}
	out := pack(msgs)
	if m.Flags&flagAck != 0 {
		out = append(out, h.ack(m, pid, 0)...)
	}
	return out
}

// ack is an NLMSG_ERROR answer; with errno 0 it is sent only if asked for.
func (h *routeHandler) ack(m Message, pid uint32, errno unix.Errno) [][]byte {
	if errno == 0 && m.Flags&flagAck == 0 {
		return nil
	}
	return [][]byte{errorMessage(m, pid, int32(errno))}
}

// pack groups messages into datagrams of at most maxDatagram bytes.
func pack(msgs [][]byte) [][]byte {
	var out [][]byte
	var cur []byte
	for _, m := range msgs {
		if len(cur) > 0 && len(cur)+len(m) > maxDatagram {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, m...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// requestFamily is the address family a dump request asks for: the first
// byte of its payload (rtgenmsg, ifinfomsg, ifaddrmsg and rtmsg all start
// with it), AF_UNSPEC when absent.
func requestFamily(m Message) uint8 {
	if len(m.Payload) == 0 {
		return unix.AF_UNSPEC
	}
	return m.Payload[0]
}

func (h *routeHandler) getLink(m Message, pid uint32, dump bool) ([][]byte, unix.Errno) {
	ifs := netstack.Interfaces(h.stack)
	if dump {
		out := make([][]byte, 0, len(ifs))
		for i := range ifs {
			out = append(out, linkMessage(&ifs[i], m.Seq, pid, flagMulti))
		}
		return out, 0
	}
	if len(m.Payload) < ifinfomsgSize {
		return nil, unix.EINVAL
	}
	index := int32(binary.LittleEndian.Uint32(m.Payload[4:]))
	attrs, ok := ParseAttrs(m.Payload[ifinfomsgSize:])
	if !ok {
		return nil, unix.EINVAL
	}
	var name []byte
	for _, a := range attrs {
		if a.Type == unix.IFLA_IFNAME {
			name = bytes.TrimRight(a.Value, "\x00")
		}
	}
	for i := range ifs {
		if (index > 0 && ifs[i].Index == index) || (index <= 0 && name != nil && ifs[i].Name == string(name)) {
			return [][]byte{linkMessage(&ifs[i], m.Seq, pid, 0)}, 0
		}
	}
	return nil, unix.ENODEV
}

// linkMessage is RTM_NEWLINK for one interface: what `ip link` prints
// and getifaddrs(3) reads for AF_PACKET entries.
func linkMessage(i *netstack.Interface, seq, pid uint32, flags uint16) []byte {
	fixed := make([]byte, ifinfomsgSize)
	fixed[0] = unix.AF_UNSPEC
	binary.LittleEndian.PutUint16(fixed[2:], i.Type)
	binary.LittleEndian.PutUint32(fixed[4:], uint32(i.Index))
	binary.LittleEndian.PutUint32(fixed[8:], i.Flags)
	m := newMessage(unix.RTM_NEWLINK, flags, seq, pid, fixed)
	m.attrString(unix.IFLA_IFNAME, i.Name)
	m.attrU32(unix.IFLA_TXQLEN, txQueueLen)
	oper := uint8(ifOperUp)
	if i.Type == unix.ARPHRD_LOOPBACK {
		oper = ifOperUnknown // as Linux reports lo
	}
	m.attrU8(unix.IFLA_OPERSTATE, oper)
	m.attrU8(unix.IFLA_LINKMODE, 0)
	m.attrU32(unix.IFLA_MTU, i.MTU)
	m.attrString(unix.IFLA_QDISC, "noqueue")
	m.attrU32(unix.IFLA_GROUP, 0)
	m.attr(unix.IFLA_ADDRESS, i.HWAddr[:])
	bcast := tcpip.BroadcastLinkAddress
	if i.Type == unix.ARPHRD_LOOPBACK {
		bcast = tcpip.LinkAddress{}
	}
	m.attr(unix.IFLA_BROADCAST, bcast[:])
	m.attr(unix.IFLA_STATS, linkStats(i.Stats, 4))
	m.attr(unix.IFLA_STATS64, linkStats(i.Stats, 8))
	return m.done()
}

// linkStats encodes struct rtnl_link_stats (width 4) or rtnl_link_stats64
// (width 8): rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
// tx_errors, rx_dropped lead it; the rest stay zero.
func linkStats(st stack.NICStats, width int) []byte {
	b := make([]byte, linkStatsSize)
	if width == 8 {
		b = make([]byte, linkStats64Siz)
	}
	for i, v := range []uint64{st.RxPackets, st.TxPackets, st.RxBytes, st.TxBytes, 0, st.TxErrs, st.RxDrops} {
		if width == 4 {
			binary.LittleEndian.PutUint32(b[i*4:], uint32(v))
		} else {
			binary.LittleEndian.PutUint64(b[i*8:], v)
		}
	}
	return b
}

func (h *routeHandler) dumpAddrs(m Message, pid uint32) [][]byte {
	fam := requestFamily(m)
	var out [][]byte
	for _, i := range netstack.Interfaces(h.stack) {
		for _, a := range i.Address {
			af := uint8(unix.AF_INET)
			if a.Address.Len() == 16 {
				af = unix.AF_INET6
			}
			if fam != unix.AF_UNSPEC && fam != af {
				continue
			}
			out = append(out, addrMessage(&i, a, af, m.Seq, pid))
		}
	}
	return out
}

// addrScope is the scope `ip addr` shows: host for loopback addresses,
// link for IPv6 link-local, global otherwise.
func addrScope(a tcpip.Address) uint8 {
	if a.IsLoopback() {
		return unix.RT_SCOPE_HOST
	}
	if b := a.As16(); a.Len() == 16 && b[0] == 0xfe && b[1]&0xc0 == 0x80 {
		return unix.RT_SCOPE_LINK
	}
	return unix.RT_SCOPE_UNIVERSE
}

// addrMessage is RTM_NEWADDR for one address.
func addrMessage(i *netstack.Interface, a tcpip.AddressWithPrefix, af uint8, seq, pid uint32) []byte {
	fixed := make([]byte, ifaddrmsgSize)
	fixed[0] = af
	fixed[1] = uint8(a.PrefixLen)
	fixed[2] = unix.IFA_F_PERMANENT
	fixed[3] = addrScope(a.Address)
	binary.LittleEndian.PutUint32(fixed[4:], uint32(i.Index))
	m := newMessage(unix.RTM_NEWADDR, flagMulti, seq, pid, fixed)
	addr := a.Address.AsSlice()
	m.attr(unix.IFA_ADDRESS, addr)
	if af == unix.AF_INET {
		m.attr(unix.IFA_LOCAL, addr)
		if i.Type != unix.ARPHRD_LOOPBACK && a.PrefixLen < 31 {
			m.attr(unix.IFA_BROADCAST, a.Subnet().Broadcast().AsSlice())
		}
		m.attrString(unix.IFA_LABEL, i.Name)
	}
	m.attrU32(unix.IFA_FLAGS, unix.IFA_F_PERMANENT)
	// struct ifa_cacheinfo: preferred and valid lifetimes forever.
	ci := make([]byte, 16)
	binary.LittleEndian.PutUint32(ci, 0xffffffff)
	binary.LittleEndian.PutUint32(ci[4:], 0xffffffff)
	m.attr(unix.IFA_CACHEINFO, ci)
	return m.done()
}

func (h *routeHandler) dumpRoutes(m Message, pid uint32) [][]byte {
	fam := requestFamily(m)
	ifs := netstack.Interfaces(h.stack)
	loopback := func(nic tcpip.NICID) bool {
		for _, i := range ifs {
			if i.Index == int32(nic) {
				return i.Type == unix.ARPHRD_LOOPBACK
			}
		}
		return false
	}
	routes := h.stack.RouteTable()
	// Most specific first within a family, as `ip route` lists them.
	slices.SortStableFunc(routes, func(a, b stack.RouteEntry) int {
		return a.Destination.ID().Len() - b.Destination.ID().Len()
	})
	var out [][]byte
	for _, r := range routes {
		af := uint8(unix.AF_INET)
		if r.Destination.ID().Len() == 16 {
			af = unix.AF_INET6
		}
		if fam != unix.AF_UNSPEC && fam != af {
			continue
		}
		lo := loopback(r.NIC)
		if lo && af == unix.AF_INET6 {
			// Linux lists ::1 in the main table as well as the local one.
			out = append(out, routeMessage(r, af, false, tcpip.Address{}, m.Seq, pid))
		}
		out = append(out, routeMessage(r, af, lo, h.preferredSource(r), m.Seq, pid))
	}
	return out
}

// preferredSource is the address the stack would send from on r's NIC.
func (h *routeHandler) preferredSource(r stack.RouteEntry) tcpip.Address {
	n := h.stack.NIC(r.NIC)
	if n == nil {
		return tcpip.Address{}
	}
	for _, a := range n.Addresses() {
		if a.Address.Len() == r.Destination.ID().Len() && (r.Destination.Contains(a.Address) || r.Gateway.Len() != 0) {
			return a.Address
		}
	}
	return tcpip.Address{}
}

// routeMessage is RTM_NEWROUTE for one route. Routes over loopback belong
// to the local table, as Linux keeps them, so `ip route` (the main table)
// shows only the others.
func routeMessage(r stack.RouteEntry, af uint8, loopback bool, src tcpip.Address, seq, pid uint32) []byte {
	fixed := make([]byte, rtmsgSize)
	fixed[0] = af
	fixed[1] = uint8(r.Destination.Prefix())
	table := uint8(unix.RT_TABLE_MAIN)
	fixed[5] = unix.RTPROT_KERNEL
	fixed[6] = unix.RT_SCOPE_LINK
	fixed[7] = unix.RTN_UNICAST
	switch {
	case loopback:
		table = unix.RT_TABLE_LOCAL
		fixed[6] = unix.RT_SCOPE_HOST
		fixed[7] = unix.RTN_LOCAL
	case r.Gateway.Len() != 0 && !r.Gateway.Unspecified():
		fixed[5] = unix.RTPROT_BOOT
		fixed[6] = unix.RT_SCOPE_UNIVERSE
	}
	if af == unix.AF_INET6 {
		fixed[6] = unix.RT_SCOPE_UNIVERSE // IPv6 routes carry no scope
	}
	fixed[4] = table
	m := newMessage(unix.RTM_NEWROUTE, flagMulti, seq, pid, fixed)
	m.attrU32(unix.RTA_TABLE, uint32(table))
	if r.Destination.Prefix() > 0 {
		m.attr(unix.RTA_DST, r.Destination.ID().AsSlice())
	}
	if src.Len() != 0 && af == unix.AF_INET {
		m.attr(unix.RTA_PREFSRC, src.AsSlice())
	}
	if r.Gateway.Len() != 0 && !r.Gateway.Unspecified() {
		m.attr(unix.RTA_GATEWAY, r.Gateway.AsSlice())
	}
	if af == unix.AF_INET6 {
		if !loopback {
			m.attrU32(unix.RTA_PRIORITY, 256) // the kernel's default IPv6 metric
		}
		m.attrU8(unix.RTA_PREF, 0) // ICMPV6_ROUTER_PREF_MEDIUM
	}
	m.attrU32(unix.RTA_OIF, uint32(r.NIC))
	return m.done()
}
