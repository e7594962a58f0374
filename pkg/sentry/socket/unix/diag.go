package unix

import (
	"cmp"
	"slices"

	sys "golang.org/x/sys/unix"
)

// DiagSocket is one AF_UNIX socket as unix_diag (NETLINK_SOCK_DIAG,
// `ss -x`) reports it.
type DiagSocket struct {
	Type int
	// State is Linux's sk_state: TCP_LISTEN, TCP_ESTABLISHED once
	// connected, TCP_CLOSE otherwise.
	State uint8
	// Inode is the socket file's inode number (that of socket:[N]).
	Inode uint64
	// Name is sun_path as bound: a path with its NUL, an abstract name
	// with its leading NUL; nil when unbound.
	Name []byte
	// HasPeer is set for a connected socket; PeerInode is then the
	// peer's inode (0 while the peer waits in an accept queue).
	HasPeer   bool
	PeerInode uint64
	// Pending are, for a listener, the inodes of the sockets whose
	// connections wait to be accepted.
	Pending []uint64
	// RecvQueue and SendQueue are bytes unread and bytes sent not yet
	// read by the peer; for a listener, connections waiting and the
	// backlog, as Linux reports them.
	RecvQueue, SendQueue uint32
	RcvBuf, SndBuf       uint32
	Shutdown             uint8
}

// regEntry is one registered socket and its file's inode number.
type regEntry struct {
	s   *sock
	ino uint64
}

// sorted returns the registered sockets in inode order.
func (r *registry) sorted() []regEntry {
	r.mu.Lock()
	rows := make([]regEntry, 0, len(r.socks))
	for s, ino := range r.socks {
		rows = append(rows, regEntry{s, ino})
	}
	r.mu.Unlock()
	slices.SortFunc(rows, func(a, b regEntry) int { return cmp.Compare(a.ino, b.ino) })
	return rows
}

func (r *registry) inode(s *sock) uint64 {
	if s == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.socks[s]
}

// Linux's sk_state values for AF_UNIX sockets.
const (
	stateEstablished = 1
	stateClose       = 7
	stateListen      = 10
)

// DiagSockets lists the provider's sockets that have a file, in inode
// order. Connection state cannot change during the walk (connMu).
func (p *Provider) DiagSockets() []DiagSocket {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	rows := p.reg.sorted()
	out := make([]DiagSocket, 0, len(rows))
	for _, r := range rows {
		s := r.s
		d := DiagSocket{Type: s.stype, Inode: r.ino, State: stateClose}
		s.mu.Lock()
		if len(s.addr) > pathOffset {
			d.Name = append([]byte(nil), s.addr[pathOffset:]...)
		}
		peer := s.peer
		pending := slices.Clone(s.acceptq)
		switch {
		case s.listening:
			d.State = stateListen
			d.RecvQueue, d.SendQueue = uint32(len(s.acceptq)), uint32(s.backlog)
		case s.connected:
			d.State = stateEstablished
		}
		if !s.listening {
			if s.stype == sys.SOCK_DGRAM {
				if len(s.rq) > 0 {
					d.RecvQueue = uint32(len(s.rq[0].data))
				}
			} else {
				d.RecvQueue = uint32(s.rqBytes)
			}
			d.SendQueue = uint32(s.inflight.Load())
		}
		d.Shutdown = uint8(s.shutdown)
		s.mu.Unlock()
		d.RcvBuf, d.SndBuf = uint32(s.rcvBuf.Load()), uint32(s.sndBuf.Load())
		if peer != nil {
			d.HasPeer, d.PeerInode = true, p.reg.inode(peer)
		}
		for _, ns := range pending {
			ns.mu.Lock()
			client := ns.peer
			ns.mu.Unlock()
			d.Pending = append(d.Pending, p.reg.inode(client))
		}
		out = append(out, d)
	}
	return out
}
