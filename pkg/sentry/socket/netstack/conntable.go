package netstack

import (
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
	// UID and Inode are the socket file's owner and inode number (the N
	// of the socket:[N] fd links).
	UID   uint32
	Inode uint64

	s     *sock
	ep    tcpip.Endpoint
	tcpSt tcp.State
}

// LinuxTCPListen is TCP_LISTEN, a listener's ConnEntry.State.
const LinuxTCPListen = 10

// Connections lists the sockets of protocol (unix.IPPROTO_TCP or
// unix.IPPROTO_UDP) that Linux keeps in its lookup tables: TCP sockets
// listening or in a connection, and bound UDP sockets; in inode order.
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
		e.Local, _ = ep.LocalAddress()
		remote, rerr := ep.RemoteAddress()
		if rerr == nil {
			e.Remote = remote
		}
		if trans == tcp.ProtocolNumber {
			st, ok := tcpState(ep)
			if !ok || st == tcp.StateInitial || st == tcp.StateBound || st == tcp.StateClosed {
				continue
			}
			e.State, e.tcpSt = linuxTCPState(st), st
			if st == tcp.StateListen {
				e.RecvQueue, _ = ep.GetSockOpt(tcpip.AcceptQueueSizeOption)
			} else {
				e.SendQueue, _ = ep.GetSockOpt(tcpip.SendQueueSizeOption)
				e.RecvQueue, _ = ep.GetSockOpt(tcpip.ReceiveQueueSizeOption)
			}
		} else {
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
	return out
}

// TCPInfo is the socket's struct tcp_info as getsockopt(TCP_INFO)
// returns it; nil for UDP.
func (e *ConnEntry) TCPInfo() []byte {
	if e.Protocol != unix.IPPROTO_TCP {
		return nil
	}
	return e.s.tcpInfo(e.ep)
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
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if e.Family == unix.AF_INET6 {
		return e.s.opts.tclass, e.s.opts.v6only
	}
	return e.s.opts.tos, false
}
