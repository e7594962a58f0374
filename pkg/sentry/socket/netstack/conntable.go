package netstack

import (
	"cmp"
	"slices"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
	"golang.org/x/sys/unix"
)

// ConnEntry is one socket of the kernel's connection tables: what
// /proc/net/{tcp,udp}[6] print and sock_diag (NETLINK_SOCK_DIAG)
// answers. Both read them from Provider.Connections, so they always
// agree, inode numbers included.
type ConnEntry struct {
	// Family is the socket's own family (AF_INET or AF_INET6).
	Family int
	// Protocol is unix.IPPROTO_TCP or unix.IPPROTO_UDP.
	Protocol int
	// State is in Linux's TCP_* numbering; a UDP socket is
	// TCP_ESTABLISHED when connected and TCP_CLOSE otherwise, as Linux
	// reports it.
	State uint8
	// Local and Remote are the socket's addresses as its endpoint has
	// them (Remote is zero when there is no peer).
	Local, Remote tcpip.FullAddress
	// RecvQueue and SendQueue are the bytes waiting to be read and not
	// yet acknowledged; for a listener RecvQueue is the accept queue's
	// length, as Linux shows it.
	RecvQueue, SendQueue int
	// Backlog is a listener's listen(2) backlog (sk_max_ack_backlog),
	// which sock_diag reports as a listener's send queue.
	Backlog int
	// UID and Inode are the socket file's owner and inode number (the N
	// of the socket:[N] fd links). A connection the user closed that is
	// still finishing keeps its socket's UID and has Inode 0; one in
	// TIME-WAIT (Linux's timewait mini-socket) has both 0.
	UID   uint32
	Inode uint64
	// Timer is the pending TCP timer in Linux's numbering (1
	// retransmission, 2 keepalive, 3 TIME-WAIT, 4 zero-window probe; 0
	// none), Expires the time until it fires and Retransmits the
	// retransmissions (or unanswered probes) it has counted.
	Timer       uint8
	Expires     time.Duration
	Retransmits int
	// TimeWait marks what Linux lists as a timewait mini-socket: a
	// connection in TIME-WAIT, or closed by the user in FIN-WAIT-2. It
	// has no socket options and sock_diag gives it no attributes.
	TimeWait bool

	s     *sock // nil for a connection no socket ever owned
	ep    tcpip.Endpoint
	tcpSt tcp.State
}

// snapshotter is the TCP endpoint's view for the socket listings.
type snapshotter interface{ Snapshot() tcp.Snapshot }

// ownerSetter lets a closed socket stay findable from its endpoint.
type ownerSetter interface{ SetOwner(any) }

// orphan records s as the owner of its endpoints before close(2)
// releases them, so that the listings can still give a connection that
// goes on closing in the background its socket's owner and family.
func orphan(s *sock) {
	s.mu.Lock()
	ep, v4 := s.ep, s.v4
	s.mu.Unlock()
	for _, e := range [...]tcpip.Endpoint{ep, v4} {
		if o, ok := e.(ownerSetter); ok {
			o.SetOwner(s)
		}
	}
}

// fillTCP sets e's TCP fields from the endpoint's snapshot.
func (e *ConnEntry) fillTCP(sn *tcp.Snapshot) {
	e.State, e.tcpSt = linuxTCPState(sn.State), sn.State
	e.Local = sn.Local
	if sn.State != tcp.StateListen {
		e.Remote = tcpip.FullAddress{Addr: sn.Remote.Addr, Port: sn.Remote.Port}
	}
	e.Timer, e.Expires, e.Retransmits = uint8(sn.Timer), sn.Expires, sn.Retransmits
	if sn.State == tcp.StateListen {
		e.RecvQueue = sn.AcceptQueue
		// The socket layer listens with backlog+1, the accept queue's
		// true capacity on Linux; the endpoint caps it at somaxconn.
		e.Backlog = sn.Backlog
		if e.Backlog < somaxconn {
			e.Backlog--
		}
	} else {
		e.RecvQueue, e.SendQueue = sn.RecvQueue, sn.SendQueue
	}
}

// somaxconn is net.core.somaxconn, the cap of a listen(2) backlog.
const somaxconn = 4096

// listedTCPState reports whether Linux keeps a socket in st in its
// lookup tables, which the listings walk.
func listedTCPState(st tcp.State) bool {
	return st != tcp.StateInitial && st != tcp.StateBound && st != tcp.StateClosed
}

// familyOfSnapshot is the socket family of an endpoint no socket owns.
func familyOfSnapshot(sn *tcp.Snapshot) int {
	if sn.Family == 16 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// orphanTCP lists the provider's TCP connections that no open socket
// owns: closed by the user and still closing (Inode 0, the socket's
// UID), in TIME-WAIT (UID and Inode 0), or waiting in a listener's
// accept queue (Inode 0 and, as a clone of its listener, the UID of the
// listener on its port in listenerUIDs).
func (p *Provider) orphanTCP(listenerUIDs map[uint16]uint32) []ConnEntry {
	var out []ConnEntry
	for _, sn := range tcp.Snapshots(p.stack) {
		if !listedTCPState(sn.State) || !(sn.Orphaned || sn.Pending) {
			continue
		}
		owner, _ := sn.Owner.(*sock)
		family := familyOfSnapshot(&sn)
		if owner != nil {
			family = owner.family
		}
		if family != p.family {
			continue
		}
		e := ConnEntry{Family: family, Protocol: unix.IPPROTO_TCP, s: owner, ep: sn.Endpoint}
		e.fillTCP(&sn)
		e.TimeWait = sn.State == tcp.StateTimeWait || (sn.State == tcp.StateFinWait2 && sn.Orphaned)
		switch {
		case e.TimeWait:
		case owner != nil:
			e.UID = owner.uid
		case sn.Pending:
			e.UID = listenerUIDs[sn.Local.Port]
		}
		if e.TimeWait {
			e.RecvQueue, e.SendQueue = 0, 0
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ConnEntry) int {
		return cmp.Or(cmp.Compare(a.Local.Port, b.Local.Port), cmp.Compare(a.Remote.Port, b.Remote.Port))
	})
	return out
}

// LinuxTCPListen is TCP_LISTEN, a listener's ConnEntry.State.
const LinuxTCPListen = 10

// Connections lists the sockets of protocol (unix.IPPROTO_TCP or
// unix.IPPROTO_UDP) that Linux keeps in its lookup tables: TCP sockets
// listening or in a connection, and bound UDP sockets, in inode order;
// then the TCP connections no open socket owns (see orphanTCP).
func (p *Provider) Connections(protocol int) []ConnEntry {
	var trans tcpip.TransportProtocolNumber
	switch protocol {
	case unix.IPPROTO_TCP:
		trans = tcp.ProtocolNumber
	case unix.IPPROTO_UDP:
		trans = udp.ProtocolNumber
	default:
		return nil
	}
	socks := p.socks.snapshot()
	out := make([]ConnEntry, 0, len(socks))
	for _, s := range socks {
		if s.trans != trans {
			continue
		}
		ep := s.endpoint()
		e := ConnEntry{Family: s.family, Protocol: protocol, UID: s.uid, Inode: s.ino, s: s, ep: ep}
		if trans == tcp.ProtocolNumber {
			sn, ok := ep.(snapshotter)
			if !ok {
				continue
			}
			snap := sn.Snapshot()
			if !listedTCPState(snap.State) {
				continue
			}
			e.fillTCP(&snap)
		} else {
			e.Local, _ = ep.LocalAddress()
			remote, rerr := ep.RemoteAddress()
			if rerr == nil {
				e.Remote = remote
			}
			if e.Local.Port == 0 {
				continue
			}
			e.State = linuxTCPClose
			if rerr == nil {
				e.State = linuxTCPEstablished
			}
			e.RecvQueue, _ = ep.GetSockOpt(tcpip.ReceiveQueueSizeOption)
		}
		out = append(out, e)
	}
	if trans == tcp.ProtocolNumber {
		listenerUIDs := make(map[uint16]uint32)
		for _, e := range out {
			if e.State == LinuxTCPListen {
				listenerUIDs[e.Local.Port] = e.UID
			}
		}
		out = append(out, p.orphanTCP(listenerUIDs)...)
	}
	return out
}

// TCPInfo is the socket's struct tcp_info as getsockopt(TCP_INFO)
// returns it; nil for UDP.
func (e *ConnEntry) TCPInfo() []byte {
	if e.Protocol != unix.IPPROTO_TCP {
		return nil
	}
	var s *sock // tcpInfo reads only the endpoint
	return s.tcpInfo(e.ep)
}

// Congestion is the TCP congestion control algorithm's name ("" for UDP).
func (e *ConnEntry) Congestion() string {
	if e.Protocol != unix.IPPROTO_TCP {
		return ""
	}
	v, _ := e.ep.GetSockOpt(tcpip.CongestionControlOption)
	for name, n := range congestionControls {
		if n == v {
			return name
		}
	}
	return ""
}

// Linux's sk_shutdown bits.
const (
	rcvShutdown  = 1
	sendShutdown = 2
)

// Shutdown is sk_shutdown (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2) as far as the
// connection's state shows it: the peer's FIN closes the receive side,
// our own FIN the send side. An explicit shutdown(SHUT_RD) leaves no
// trace in the state and is not reported.
func (e *ConnEntry) Shutdown() uint8 {
	if e.Protocol != unix.IPPROTO_TCP {
		return 0
	}
	st := e.tcpSt
	var v uint8
	switch st {
	case tcp.StateCloseWait, tcp.StateLastAck, tcp.StateClosing, tcp.StateTimeWait:
		v |= rcvShutdown
	}
	switch st {
	case tcp.StateFinWait1, tcp.StateFinWait2, tcp.StateClosing, tcp.StateTimeWait, tcp.StateLastAck:
		v |= sendShutdown
	}
	return v
}

// Buffers are SO_RCVBUF and SO_SNDBUF in bytes.
func (e *ConnEntry) Buffers() (rcv, snd int) {
	rcv, _ = e.ep.GetSockOpt(tcpip.ReceiveBufferSizeOption)
	snd, _ = e.ep.GetSockOpt(tcpip.SendBufferSizeOption)
	return rcv, snd
}

// TOS is IP_TOS (AF_INET) or IPV6_TCLASS (AF_INET6); V6Only IPV6_V6ONLY.
func (e *ConnEntry) TOS() (tos int, v6only bool) {
	if e.s == nil {
		tos, _ = e.ep.GetSockOpt(tcpip.TOSOption)
		return tos, false
	}
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if e.Family == unix.AF_INET6 {
		return e.s.opts.tclass, e.s.opts.v6only
	}
	return e.s.opts.tos, false
}
