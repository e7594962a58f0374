// Package unix owns AF_UNIX sockets in the Sentry (unix(7)): SOCK_STREAM,
// SOCK_DGRAM and SOCK_SEQPACKET; socketpair; names bound in the
// filesystem (an S_IFSOCK file holding the socket as its
// vfs.BoundEndpoint) and in the abstract namespace; listen backlogs and
// accept queues; SCM_RIGHTS and SCM_CREDENTIALS; shutdown; buffer
// accounting, readiness and the socket options and ioctls Linux gives
// these sockets.
//
// Locking: each socket's mu guards its receive queue and state. Data
// paths take only the receiving socket's mu (a sender reads its own
// fields under its own mu first, never holding both). Changes of
// connection state (connect, accept, listen, release) are serialised by
// the Provider's connMu, which no data path takes.
package unix

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/waiter"
	sys "golang.org/x/sys/unix"
)

// sizeofSockaddrUn is sizeof(struct sockaddr_un); pathOffset is
// offsetof(struct sockaddr_un, sun_path).
const (
	sizeofSockaddrUn = 110
	pathOffset       = 2
)

// Provider creates the AF_UNIX sockets of one kernel and owns its
// abstract namespace (one per network namespace; the Sentry has one).
type Provider struct {
	// connMu serialises connection state changes (see the package doc).
	connMu sync.Mutex

	abstractMu sync.Mutex
	abstract   map[string]*sock
	autobind   uint32

	// inflight counts descriptors in flight per real UID, bounded by the
	// sender's RLIMIT_NOFILE as Linux's too_many_unix_fds does.
	inflightMu sync.Mutex
	inflight   map[auth.UID]int

	// reg lists the live sockets for /proc/net/unix.
	reg registry
}

// NewProvider returns an AF_UNIX provider; register it with
// k.RegisterSocketProvider(unix.AF_UNIX, p).
func NewProvider() *Provider {
	return &Provider{abstract: make(map[string]*sock), inflight: make(map[auth.UID]int)}
}

// Register makes a new Provider the kernel's AF_UNIX family.
func Register(k *kernel.Kernel) {
	k.RegisterSocketProvider(sys.AF_UNIX, NewProvider())
}

var _ kernel.SocketProvider = (*Provider)(nil)

// checkType maps socket(2)'s type and protocol to the socket type:
// SOCK_RAW is SOCK_DGRAM for AF_UNIX, as in Linux.
func checkType(stype, protocol int) (int, error) {
	if protocol != 0 && protocol != sys.PF_UNIX {
		return 0, sys.EPROTONOSUPPORT
	}
	switch stype {
	case sys.SOCK_STREAM, sys.SOCK_DGRAM, sys.SOCK_SEQPACKET:
		return stype, nil
	case sys.SOCK_RAW:
		return sys.SOCK_DGRAM, nil
	}
	return 0, sys.ESOCKTNOSUPPORT
}

// Socket implements kernel.SocketProvider.
func (p *Provider) Socket(t *kernel.Task, stype, protocol int) (*vfs.FileDescription, error) {
	st, err := checkType(stype, protocol)
	if err != nil {
		return nil, err
	}
	s := p.newSock(st)
	return p.newFile(t.Kernel().VFS(), t.Credentials(), s, 0), nil
}

// Pair implements kernel.SocketProvider: two connected sockets, each the
// other's SO_PEERCRED the creator.
func (p *Provider) Pair(t *kernel.Task, stype, protocol int) (*vfs.FileDescription, *vfs.FileDescription, error) {
	st, err := checkType(stype, protocol)
	if err != nil {
		return nil, nil, err
	}
	a, b := p.newSock(st), p.newSock(st)
	a.peer, b.peer = b, a
	a.connected, b.connected = true, true
	cred := credsOf(t)
	a.peerCred, b.peerCred = cred, cred
	a.hasPeerCred, b.hasPeerCred = true, true
	v := t.Kernel().VFS()
	return p.newFile(v, t.Credentials(), a, 0), p.newFile(v, t.Credentials(), b, 0), nil
}

func (p *Provider) newSock(stype int) *sock {
	s := &sock{p: p, stype: stype}
	s.sndBuf.Store(socket.DefaultBufferSize)
	s.rcvBuf.Store(socket.DefaultBufferSize)
	return s
}

// ucred is struct ucred.
type ucred struct {
	pid      int32
	uid, gid uint32
}

// credsOf is the task's SO_PEERCRED view: tgid (the root ID; readers
// see it in their PID namespace) and effective IDs.
func credsOf(t *kernel.Task) ucred {
	c := t.Credentials()
	return ucred{pid: int32(t.ThreadGroup().ID()), uid: uint32(c.EffectiveUID), gid: uint32(c.EffectiveGID)}
}

// Shutdown bits, as Linux's sk_shutdown.
const (
	shutRcv  = 1
	shutSend = 2
	shutBoth = shutRcv | shutSend
)

// sock is one AF_UNIX socket.
type sock struct {
	vfs.FileDescriptionDefaults
	socket.TimeoutOptions

	p     *Provider
	stype int
	queue waiter.Queue

	// inflight is what this socket has sent that its receivers have not
	// read yet (Linux's sk_wmem_alloc); sends wait while it reaches
	// sndBuf.
	inflight       atomic.Int64
	sndBuf, rcvBuf atomic.Int64
	passcred       atomic.Bool

	mu sync.Mutex
	// addr is the bound address as getsockname reports it (nil: unbound);
	// abstractName is set for a name in the abstract namespace.
	addr         []byte
	abstractName string
	// peer is the connected peer (stream/seqpacket: the other end; dgram:
	// the default destination). connected stays true after the peer goes.
	peer      *sock
	connected bool
	listening bool
	backlog   int
	acceptq   []*sock
	// connectWaiters are sockets waiting for room in acceptq.
	connectWaiters map[*sock]struct{}
	shutdown       int
	err            sys.Errno
	closed         bool
	// rq is the receive queue; rqBytes its data bytes.
	rq      []*message
	rqBytes int64

	peerCred    ucred
	hasPeerCred bool
	// opts holds the SOL_SOCKET options that are stored and reported but
	// change nothing here (SO_REUSEADDR, SO_KEEPALIVE …).
	opts map[int][]byte
}

// message is one datagram, or one write's segment of a stream.
type message struct {
	data []byte
	// off is how much of a stream segment has been read.
	off int
	// from is the sender's bound address (nil when unbound).
	from   []byte
	sender *sock
	// cost is what the message charges the sender's inflight.
	cost   int64
	cred   ucred
	rights []*vfs.FileDescription
	// rightsUID is whose in-flight count the rights are charged to.
	rightsUID auth.UID
}

// Type implements socket.Socket.
func (s *sock) Type() (family, stype, protocol int) { return sys.AF_UNIX, s.stype, 0 }

func (s *sock) connectionOriented() bool { return s.stype != sys.SOCK_DGRAM }

// Release implements vfs.FileDescriptionImpl: the socket closes; a
// connected peer sees EOF (ECONNRESET if this end left data unread),
// pending connections are refused and files in flight to this socket
// are closed.
func (s *sock) Release(ctx context.Context) {
	p := s.p
	p.untrack(s)
	p.connMu.Lock()
	s.mu.Lock()
	s.closed = true
	peer := s.peer
	pending := s.acceptq
	s.acceptq = nil
	waiters := s.connectWaiters
	s.connectWaiters = nil
	rq := s.rq
	s.rq, s.rqBytes = nil, 0
	unread := len(rq) > 0
	abstract := s.abstractName
	s.mu.Unlock()
	if peer != nil && s.connectionOriented() {
		peer.mu.Lock()
		if peer.peer == s {
			peer.shutdown = shutBoth
			if unread {
				peer.err = sys.ECONNRESET
			}
		}
		peer.mu.Unlock()
	}
	p.connMu.Unlock()
	if abstract != "" {
		p.abstractMu.Lock()
		if p.abstract[abstract] == s {
			delete(p.abstract, abstract)
		}
		p.abstractMu.Unlock()
	}
	if peer != nil && s.connectionOriented() {
		peer.queue.Notify(waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp | waiter.EventRdHUp)
	}
	for c := range waiters {
		c.queue.Notify(waiter.WritableEvents)
	}
	for _, m := range rq {
		s.dropMessage(ctx, m)
	}
	// Connections never accepted go with the listener.
	for _, ns := range pending {
		ns.Release(ctx)
	}
}

// dropMessage discards a message that will never be read.
func (s *sock) dropMessage(ctx context.Context, m *message) {
	s.consumed(m)
	s.p.releaseRights(ctx, m)
	if m.sender != nil {
		m.sender.queue.Notify(waiter.WritableEvents)
	}
	freeMessage(m)
}

// consumed returns a message's charge to its sender.
func (s *sock) consumed(m *message) {
	if m.sender != nil && m.cost != 0 {
		m.sender.inflight.Add(-m.cost)
		m.cost = 0
	}
}

// releaseRights closes the files of a message and uncharges them.
func (p *Provider) releaseRights(ctx context.Context, m *message) {
	if len(m.rights) == 0 {
		return
	}
	p.uncharge(m.rightsUID, len(m.rights))
	for _, f := range m.rights {
		f.DecRef(ctx)
	}
	m.rights = nil
}

// charge counts n more descriptors in flight for the sender, or returns
// ETOOMANYREFS past its RLIMIT_NOFILE (unless privileged).
func (p *Provider) charge(t *kernel.Task, n int) (auth.UID, error) {
	c := t.Credentials()
	uid := c.RealUID
	limit := int(min(t.ThreadGroup().Limit(linux.RLIMIT_NOFILE).Cur, 1<<30))
	p.inflightMu.Lock()
	defer p.inflightMu.Unlock()
	if p.inflight[uid]+n > limit && !c.HasCapability(auth.CAP_SYS_ADMIN) && !c.HasCapability(auth.CAP_SYS_RESOURCE) {
		return uid, sys.ETOOMANYREFS
	}
	p.inflight[uid] += n
	return uid, nil
}

func (p *Provider) uncharge(uid auth.UID, n int) {
	p.inflightMu.Lock()
	if p.inflight[uid] -= n; p.inflight[uid] <= 0 {
		delete(p.inflight, uid)
	}
	p.inflightMu.Unlock()
}

// InflightFDs returns how many descriptors are in flight (sent, not yet
// received or closed), for tests and /proc.
func (p *Provider) InflightFDs() int {
	p.inflightMu.Lock()
	defer p.inflightMu.Unlock()
	n := 0
	for _, c := range p.inflight {
		n += c
	}
	return n
}

// unixAddr is an unbound socket's address: the family alone.
var unixAddr = []byte{sys.AF_UNIX, 0}

// parsedAddr is a sockaddr_un decoded: a filesystem path, an abstract
// name (without its leading NUL), or autobind.
type parsedAddr struct {
	path     string
	abstract string
	isAbs    bool
	autobind bool
	// raw is the address getsockname reports for this name.
	raw []byte
}

// parseAddr decodes a sockaddr_un of the application's length, as
// Linux's unix_validate_addr and unix_mkname_bsd.
func parseAddr(addr []byte) (parsedAddr, error) {
	if len(addr) < pathOffset || len(addr) > sizeofSockaddrUn {
		return parsedAddr{}, sys.EINVAL
	}
	if fam := uint16(addr[0]) | uint16(addr[1])<<8; fam != sys.AF_UNIX {
		return parsedAddr{}, sys.EINVAL
	}
	if len(addr) == pathOffset {
		return parsedAddr{autobind: true}, nil
	}
	sp := addr[pathOffset:]
	if sp[0] == 0 {
		raw := append([]byte(nil), addr...)
		return parsedAddr{abstract: string(sp[1:]), isAbs: true, raw: raw}, nil
	}
	n := 0
	for n < len(sp) && sp[n] != 0 {
		n++
	}
	path := string(sp[:n])
	raw := append(append(append([]byte(nil), addr[:pathOffset]...), path...), 0)
	return parsedAddr{path: path, raw: raw}, nil
}

// pathOp is the task's lookup of a bound socket's path.
func pathOp(t *kernel.Task, path string) (vfs.PathOperation, func()) {
	root := t.FSContext().Root()
	cwd := t.FSContext().WorkingDirectory()
	return vfs.PathOperation{Root: root, Start: cwd, Path: path}, func() {
		root.DecRef(t)
		cwd.DecRef(t)
	}
}

// Bind implements socket.Socket.
func (s *sock) Bind(t *kernel.Task, addr []byte) error {
	a, err := parseAddr(addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	bound := s.addr != nil
	s.mu.Unlock()
	if bound {
		return sys.EINVAL
	}
	if a.autobind {
		return s.autobind()
	}
	if a.isAbs {
		return s.bindAbstract(a)
	}
	pop, done := pathOp(t, a.path)
	defer done()
	creds := t.Credentials()
	// The socket is bound under connMu so a concurrent bind of the same
	// socket cannot leave two names.
	s.p.connMu.Lock()
	defer s.p.connMu.Unlock()
	if s.addr != nil {
		return sys.EINVAL
	}
	err = t.Kernel().VFS().MknodAt(t, creds, &pop, &vfs.MknodOptions{
		Mode: sys.S_IFSOCK | 0o777&^t.FSContext().Umask(), UID: creds.EffectiveUID, GID: creds.EffectiveGID,
		Endpoint: vfs.BoundEndpoint(s),
	})
	if err == sys.EEXIST {
		return sys.EADDRINUSE
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.addr = a.raw
	s.mu.Unlock()
	return nil
}

// bindAbstract takes a name in the abstract namespace.
func (s *sock) bindAbstract(a parsedAddr) error {
	p := s.p
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if s.addr != nil {
		return sys.EINVAL
	}
	p.abstractMu.Lock()
	defer p.abstractMu.Unlock()
	if _, used := p.abstract[a.abstract]; used {
		return sys.EADDRINUSE
	}
	p.abstract[a.abstract] = s
	s.mu.Lock()
	s.addr, s.abstractName = a.raw, a.abstract
	s.mu.Unlock()
	return nil
}

// autobind gives the socket an unused abstract name of five hex digits,
// as bind(2) with only sun_family does.
func (s *sock) autobind() error {
	p := s.p
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if s.addr != nil {
		return nil
	}
	p.abstractMu.Lock()
	defer p.abstractMu.Unlock()
	for range 1 << 20 {
		p.autobind = (p.autobind + 1) & 0xfffff
		name := fmt.Sprintf("%05x", p.autobind)
		if _, used := p.abstract[name]; used {
			continue
		}
		p.abstract[name] = s
		s.mu.Lock()
		s.addr = append([]byte{sys.AF_UNIX, 0, 0}, name...)
		s.abstractName = name
		s.mu.Unlock()
		return nil
	}
	return sys.ENOSPC
}

// lookup finds the socket an address names: ENOENT-like errors from the
// VFS for paths, ECONNREFUSED for an abstract name nobody holds or a
// socket that has closed.
func (s *sock) lookup(t *kernel.Task, addr []byte) (*sock, error) {
	a, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	if a.autobind || t == nil {
		// Only a task has a root and cwd to resolve names from.
		return nil, sys.EINVAL
	}
	var target *sock
	if a.isAbs {
		s.p.abstractMu.Lock()
		target = s.p.abstract[a.abstract]
		s.p.abstractMu.Unlock()
	} else {
		pop, done := pathOp(t, a.path)
		ep, err := t.Kernel().VFS().BoundEndpointAt(t, t.Credentials(), &pop)
		done()
		if err != nil {
			return nil, err
		}
		target, _ = ep.(*sock)
	}
	if target == nil || target.p != s.p {
		return nil, sys.ECONNREFUSED
	}
	target.mu.Lock()
	closed := target.closed
	target.mu.Unlock()
	if closed {
		return nil, sys.ECONNREFUSED
	}
	if target.stype != s.stype {
		return nil, sys.EPROTOTYPE
	}
	return target, nil
}

// Listen implements socket.Socket.
func (s *sock) Listen(t *kernel.Task, backlog int) error {
	if !s.connectionOriented() {
		return sys.EOPNOTSUPP
	}
	s.p.connMu.Lock()
	defer s.p.connMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil || s.connected {
		return sys.EINVAL
	}
	s.listening = true
	s.backlog = max(backlog, 0)
	// A client connecting to this socket sees its creator's credentials
	// as SO_PEERCRED, taken at listen time as in Linux.
	s.peerCred, s.hasPeerCred = credsOf(t), true
	return nil
}

// Connect implements socket.Socket.
func (s *sock) Connect(t *kernel.Task, addr []byte) error {
	if !s.connectionOriented() {
		return s.connectDgram(t, addr)
	}
	target, err := s.lookup(t, addr)
	if err != nil {
		return err
	}
	if s.passcred.Load() {
		if err := s.autobind(); err != nil {
			return err
		}
	}
	p := s.p
	p.connMu.Lock()
	s.mu.Lock()
	switch {
	case s.listening:
		s.mu.Unlock()
		p.connMu.Unlock()
		return sys.EINVAL
	case s.connected:
		s.mu.Unlock()
		p.connMu.Unlock()
		return sys.EISCONN
	}
	s.mu.Unlock()
	target.mu.Lock()
	if !target.listening || target.closed || target.shutdown&shutRcv != 0 {
		target.mu.Unlock()
		p.connMu.Unlock()
		return sys.ECONNREFUSED
	}
	// Linux lets backlog+1 connections wait (unix_recvq_full).
	if len(target.acceptq) > target.backlog {
		if target.connectWaiters == nil {
			target.connectWaiters = make(map[*sock]struct{})
		}
		target.connectWaiters[s] = struct{}{}
		target.mu.Unlock()
		p.connMu.Unlock()
		return sys.EAGAIN
	}
	ns := p.newSock(s.stype)
	ns.addr = target.addr
	ns.peer, ns.connected = s, true
	ns.peerCred, ns.hasPeerCred = credsOf(t), true
	ns.passcred.Store(target.passcred.Load())
	ns.sndBuf.Store(target.sndBuf.Load())
	ns.rcvBuf.Store(target.rcvBuf.Load())
	target.acceptq = append(target.acceptq, ns)
	peerCred := target.peerCred
	target.mu.Unlock()
	s.mu.Lock()
	s.peer, s.connected = ns, true
	s.peerCred, s.hasPeerCred = peerCred, true
	s.mu.Unlock()
	p.connMu.Unlock()
	target.queue.Notify(waiter.ReadableEvents)
	s.queue.Notify(waiter.WritableEvents)
	return nil
}

// connectDgram sets (or with AF_UNSPEC clears) a datagram socket's
// default destination.
func (s *sock) connectDgram(t *kernel.Task, addr []byte) error {
	var target *sock
	if !(len(addr) >= 2 && addr[0] == sys.AF_UNSPEC && addr[1] == 0) {
		var err error
		if target, err = s.lookup(t, addr); err != nil {
			return err
		}
		if s.passcred.Load() {
			if err := s.autobind(); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	old := s.peer
	s.peer, s.connected = target, target != nil
	// Leaving a peer drops what is queued (Linux's
	// unix_dgram_disconnected): a connected socket hears only its peer.
	var dropped []*message
	if old != nil && old != target {
		dropped = s.rq
		s.rq, s.rqBytes = nil, 0
	}
	s.mu.Unlock()
	for _, m := range dropped {
		s.dropMessage(t, m)
	}
	return nil
}

// Accept implements socket.Socket.
func (s *sock) Accept(t *kernel.Task, flags int) (*vfs.FileDescription, []byte, error) {
	if !s.connectionOriented() {
		return nil, nil, sys.EOPNOTSUPP
	}
	s.p.connMu.Lock()
	s.mu.Lock()
	if !s.listening {
		s.mu.Unlock()
		s.p.connMu.Unlock()
		return nil, nil, sys.EINVAL
	}
	if len(s.acceptq) == 0 {
		s.mu.Unlock()
		s.p.connMu.Unlock()
		return nil, nil, sys.EAGAIN
	}
	ns := s.acceptq[0]
	s.acceptq[0] = nil
	s.acceptq = s.acceptq[1:]
	waiters := s.connectWaiters
	s.connectWaiters = nil
	s.mu.Unlock()
	peer := ns.peer
	s.p.connMu.Unlock()
	for c := range waiters {
		c.queue.Notify(waiter.WritableEvents)
	}
	var peerAddr []byte
	if peer != nil {
		peer.mu.Lock()
		peerAddr = peer.addr
		peer.mu.Unlock()
	}
	if peerAddr == nil {
		peerAddr = unixAddr
	}
	var fl uint32
	if flags&sys.SOCK_NONBLOCK != 0 {
		fl = sys.O_NONBLOCK
	}
	return s.p.newFile(t.Kernel().VFS(), t.Credentials(), ns, fl), append([]byte(nil), peerAddr...), nil
}

// Shutdown implements socket.Socket: this end stops receiving and/or
// sending, and a connected stream or seqpacket peer sees the mirror.
func (s *sock) Shutdown(t *kernel.Task, how int) error {
	mode := how + 1 // SHUT_RD → shutRcv, SHUT_WR → shutSend
	s.p.connMu.Lock()
	s.mu.Lock()
	s.shutdown |= mode
	peer := s.peer
	s.mu.Unlock()
	if peer != nil && s.connectionOriented() {
		pm := 0
		if mode&shutRcv != 0 {
			pm |= shutSend
		}
		if mode&shutSend != 0 {
			pm |= shutRcv
		}
		peer.mu.Lock()
		peer.shutdown |= pm
		peer.mu.Unlock()
	}
	s.p.connMu.Unlock()
	ev := waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp | waiter.EventRdHUp
	s.queue.Notify(ev)
	if peer != nil && s.connectionOriented() {
		peer.queue.Notify(ev)
	}
	return nil
}

// SockName implements socket.Socket.
func (s *sock) SockName(*kernel.Task) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		return append([]byte(nil), unixAddr...), nil
	}
	return append([]byte(nil), s.addr...), nil
}

// PeerName implements socket.Socket.
func (s *sock) PeerName(*kernel.Task) ([]byte, error) {
	s.mu.Lock()
	peer := s.peer
	s.mu.Unlock()
	if peer == nil {
		return nil, sys.ENOTCONN
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if s.connectionOriented() && peer.closed {
		return nil, sys.ENOTCONN
	}
	if peer.addr == nil {
		return append([]byte(nil), unixAddr...), nil
	}
	return append([]byte(nil), peer.addr...), nil
}

// EventRegister implements waiter.Waitable.
func (s *sock) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *sock) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }

// Readiness implements waiter.Waitable, as Linux's unix_poll and
// unix_dgram_poll.
func (s *sock) Readiness(mask waiter.EventMask) waiter.EventMask {
	s.mu.Lock()
	var r waiter.EventMask
	if s.err != 0 {
		r |= waiter.EventErr
	}
	if s.shutdown == shutBoth {
		r |= waiter.EventHUp
	}
	if s.shutdown&shutRcv != 0 {
		r |= waiter.EventRdHUp | waiter.ReadableEvents
	}
	if len(s.rq) > 0 || len(s.acceptq) > 0 {
		r |= waiter.ReadableEvents
	}
	if s.connectionOriented() && !s.connected && !s.listening {
		r |= waiter.EventHUp
	}
	writable := !s.listening && s.inflight.Load()*4 <= s.sndBuf.Load()
	s.mu.Unlock()
	if writable {
		r |= waiter.WritableEvents | waiter.EventWrBand
	}
	return r & (mask | waiter.EventErr | waiter.EventHUp)
}
