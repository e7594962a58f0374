package netlink

import (
	"context"
	"encoding/binary"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/tcpip"
	"golang.org/x/sys/unix"
)

// NETLINK_SOCK_DIAG (sock_diag(7)): what `ss` asks to list the sandbox's
// TCP and UDP sockets. Requests are SOCK_DIAG_BY_FAMILY with struct
// inet_diag_req_v2 (or the older TCPDIAG_GETSOCK with struct
// inet_diag_req), either a dump filtered by a state bitmask and ports,
// or one socket named by its inet_diag_sockid. Answers are struct
// inet_diag_msg with the attributes the stack can fill. The sockets come
// from the AF_INET and AF_INET6 providers' connection tables, the same
// walk /proc/net/tcp prints, so inode numbers agree with it and with
// the socket:[N] fd links.

// sock_diag message types and wire sizes (linux/sock_diag.h,
// linux/inet_diag.h).
const (
	tcpDiagGetSock   = 18 // TCPDIAG_GETSOCK: struct inet_diag_req, TCP
	dccpDiagGetSock  = 19 // DCCPDIAG_GETSOCK
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY

	sockDiagReqSize   = 2  // struct sock_diag_req
	inetDiagReqV2Size = 56 // struct inet_diag_req_v2
	inetDiagReqSize   = 60 // struct inet_diag_req (TCPDIAG_GETSOCK)
	inetDiagSockIDLen = 48 // struct inet_diag_sockid
	inetDiagMsgSize   = 72 // struct inet_diag_msg

	inetDiagNoCookie = ^uint32(0)
	// afMax is AF_MAX: sdiag_family at or beyond it is EINVAL.
	afMax = 46
	// flagCapped is NLM_F_CAPPED: an acknowledgement without the request.
	flagCapped = 0x100
)

// INET_DIAG_* attribute types. The first eight can be asked for with
// bit (type-1) of idiag_ext.
const (
	inetDiagMeminfo   = 1
	inetDiagInfo      = 2
	inetDiagCong      = 4
	inetDiagTOS       = 5
	inetDiagTClass    = 6
	inetDiagSKMeminfo = 7
	inetDiagShutdown  = 8
	inetDiagSKV6Only  = 11
)

// skMeminfoVars is SK_MEMINFO_VARS: the u32s of INET_DIAG_SKMEMINFO.
const skMeminfoVars = 9

// linuxTCPClose is TCP_CLOSE, the state of an unconnected UDP socket.
const linuxTCPClose = 7

// ConnSource is what sock_diag reads from a family's provider:
// netstack.Provider implements it.
type ConnSource interface {
	Connections(protocol int) []netstack.ConnEntry
}

// diagSource finds the provider of family whose sockets sock_diag
// lists: the calling task's kernel's, or the one a test installed. The
// caller asserts the interface it needs (ConnSource, UnixSource).
func (p *Provider) diagSource(ctx context.Context, family int) any {
	if p.diagSources != nil {
		return p.diagSources[family]
	}
	t, ok := ctx.(*kernel.Task)
	if !ok || t == nil {
		return nil
	}
	sp, err := t.Kernel().SocketProvider(family)
	if err != nil {
		return nil
	}
	return sp
}

// diagRequest is struct inet_diag_req_v2 (the old inet_diag_req is
// converted to it).
type diagRequest struct {
	family, protocol, ext uint8
	states                uint32
	sport, dport          uint16 // host order
	src, dst              [16]byte
	cookie                [2]uint32
	// attrs are the request's attributes (INET_DIAG_REQ_BYTECODE …).
	attrs []byte
}

// parseSockID reads struct inet_diag_sockid (ports and addresses are in
// network order on the wire).
func (r *diagRequest) parseSockID(b []byte) {
	r.sport = binary.BigEndian.Uint16(b)
	r.dport = binary.BigEndian.Uint16(b[2:])
	copy(r.src[:], b[4:20])
	copy(r.dst[:], b[20:36])
	r.cookie[0] = binary.LittleEndian.Uint32(b[40:])
	r.cookie[1] = binary.LittleEndian.Uint32(b[44:])
}

// parseDiagReqV2 decodes struct inet_diag_req_v2; ok is false when the
// payload is too short.
func parseDiagReqV2(b []byte) (r diagRequest, ok bool) {
	if len(b) < inetDiagReqV2Size {
		return r, false
	}
	r.family, r.protocol, r.ext = b[0], b[1], b[2]
	r.states = binary.LittleEndian.Uint32(b[4:])
	r.parseSockID(b[8:])
	r.attrs = b[inetDiagReqV2Size:]
	return r, true
}

// parseDiagReqCompat decodes the old struct inet_diag_req of
// TCPDIAG_GETSOCK and DCCPDIAG_GETSOCK.
func parseDiagReqCompat(b []byte, protocol uint8) (r diagRequest, ok bool) {
	if len(b) < inetDiagReqSize {
		return r, false
	}
	r.family, r.protocol, r.ext = b[0], protocol, b[3]
	r.parseSockID(b[4:])
	r.states = binary.LittleEndian.Uint32(b[4+inetDiagSockIDLen:])
	r.attrs = b[inetDiagReqSize:]
	return r, true
}

// diagSources gives the socket provider of a family (nil if none).
type diagSources func(family int) any

// connSource is family's connection table, or nil.
func (f diagSources) connSource(family int) ConnSource {
	cs, _ := f(family).(ConnSource)
	return cs
}

// handleDiag processes one NETLINK_SOCK_DIAG message and returns the
// datagrams of its answer, as the kernel's sock_diag_rcv does.
func handleDiag(m Message, pid uint32, sources diagSources) [][]byte {
	if m.Flags&flagRequest == 0 || m.Type < msgMinType {
		return diagAck(m, pid, 0)
	}
	var (
		req diagRequest
		ok  bool
	)
	replyType := m.Type
	switch m.Type {
	case tcpDiagGetSock, dccpDiagGetSock:
		proto := uint8(unix.IPPROTO_TCP)
		if m.Type == dccpDiagGetSock {
			proto = unix.IPPROTO_DCCP
		}
		if req, ok = parseDiagReqCompat(m.Payload, proto); !ok {
			return diagAck(m, pid, unix.EINVAL)
		}
	case sockDiagByFamily, sockDestroy:
		if len(m.Payload) < sockDiagReqSize || m.Payload[0] >= afMax {
			return diagAck(m, pid, unix.EINVAL)
		}
		if m.Payload[0] == unix.AF_UNIX && m.Type == sockDiagByFamily {
			return handleUnixDiag(m, pid, sources)
		}
		if fam := m.Payload[0]; fam != unix.AF_INET && fam != unix.AF_INET6 && fam != unix.AF_UNIX {
			return diagAck(m, pid, unix.ENOENT) // no handler for the family
		}
		if m.Type == sockDestroy {
			// Closing other processes' sockets is not offered.
			return diagAck(m, pid, unix.EOPNOTSUPP)
		}
		if req, ok = parseDiagReqV2(m.Payload); !ok {
			return diagAck(m, pid, unix.EINVAL)
		}
	default:
		return diagAck(m, pid, unix.EINVAL)
	}
	if req.family != unix.AF_INET && req.family != unix.AF_INET6 {
		return diagAck(m, pid, unix.EINVAL)
	}
	if _, ok := ParseAttrs(req.attrs); !ok {
		return diagAck(m, pid, unix.EINVAL)
	}
	if m.Flags&flagDump != 0 {
		return dumpDiag(m, replyType, pid, &req, sources)
	}
	e, errno := findDiag(&req, sources)
	if errno != 0 {
		return diagAck(m, pid, errno)
	}
	var w diagWriter
	w.inetMsg(&e, replyType, 0, m.Seq, pid, req.ext)
	out := w.finish()
	if m.Flags&flagAck != 0 {
		out = append(out, diagAck(m, pid, 0)...)
	}
	return out
}

// diagAck is NLMSG_ERROR with errno, or an acknowledgement (errno 0)
// when the request asked for one.
func diagAck(m Message, pid uint32, errno unix.Errno) [][]byte {
	if errno == 0 && m.Flags&flagAck == 0 {
		return nil
	}
	b := errorMessage(m, pid, int32(errno))
	if errno == 0 {
		binary.LittleEndian.PutUint16(b[6:], flagCapped)
	}
	return [][]byte{b}
}

// diagProtocol reports whether protocol has a sock_diag handler here.
func diagProtocol(p uint8) bool { return p == unix.IPPROTO_TCP || p == unix.IPPROTO_UDP }

// dumpDiag answers a dump: every socket of the family and protocol whose
// state is in the bitmask and whose ports match the non-zero ones of the
// request (a listener's is its local port only), then NLMSG_DONE. A
// protocol without a handler ends the dump with -ENOENT in NLMSG_DONE,
// as Linux does.
func dumpDiag(m Message, replyType uint16, pid uint32, req *diagRequest, sources diagSources) [][]byte {
	var w diagWriter
	status := int32(0)
	if !diagProtocol(req.protocol) {
		status = -int32(unix.ENOENT)
	} else if src := sources.connSource(int(req.family)); src != nil {
		for _, e := range src.Connections(int(req.protocol)) {
			if req.states&(1<<e.State) == 0 {
				continue
			}
			if req.sport != 0 && e.Local.Port != req.sport {
				continue
			}
			if req.dport != 0 && e.State != netstack.LinuxTCPListen && e.Remote.Port != req.dport {
				continue
			}
			w.inetMsg(&e, replyType, flagMulti, m.Seq, pid, req.ext)
		}
	}
	w.begin(msgDone, flagMulti, m.Seq, pid)
	var st [4]byte
	binary.LittleEndian.PutUint32(st[:], uint32(status))
	w.put(st[:])
	w.end()
	return w.finish()
}

// addrKey is an address in the 16-byte form inet_diag_sockid carries:
// IPv4 addresses v4-mapped, none all zeros.
func addrKey(a tcpip.Address) [16]byte {
	switch a.Len() {
	case 4:
		v := a.As4()
		return [16]byte{10: 0xff, 11: 0xff, 12: v[0], 13: v[1], 14: v[2], 15: v[3]}
	case 16:
		return a.As16()
	}
	return [16]byte{}
}

func wildcard(a tcpip.Address) bool { return a.Len() == 0 || a.Unspecified() }

func isV4Mapped(k [16]byte) bool {
	return k[10] == 0xff && k[11] == 0xff && k == [16]byte{10: 0xff, 11: 0xff, 12: k[12], 13: k[13], 14: k[14], 15: k[15]}
}

// findDiag looks up the one socket a request names, as the kernel's
// lookup does: TCP by its local (idiag_src, idiag_sport) and remote
// (idiag_dst, idiag_dport), a connection before a listener of the local
// address; UDP with source and destination swapped, "for historical
// reasons" (the local address is idiag_dst). IPv4 lookups, and IPv6 ones
// of v4-mapped addresses, also see IPv6 sockets carrying IPv4 traffic. A
// cookie other than INET_DIAG_NOCOOKIE must be the socket's; a miss is
// ENOENT.
func findDiag(req *diagRequest, sources diagSources) (netstack.ConnEntry, unix.Errno) {
	if !diagProtocol(req.protocol) {
		return netstack.ConnEntry{}, unix.ENOENT
	}
	local, lport, remote, rport := req.src, req.sport, req.dst, req.dport
	if req.protocol == unix.IPPROTO_UDP {
		local, lport, remote, rport = req.dst, req.dport, req.src, req.sport
	}
	v4 := req.family == unix.AF_INET
	if v4 {
		local = addrKey(tcpip.AddrFrom4([4]byte(local[:4])))
		remote = addrKey(tcpip.AddrFrom4([4]byte(remote[:4])))
	} else if isV4Mapped(local) && isV4Mapped(remote) {
		v4 = true
	}
	var cands []netstack.ConnEntry
	if v4 {
		if src := sources.connSource(unix.AF_INET); src != nil {
			cands = append(cands, src.Connections(int(req.protocol))...)
		}
	}
	if src := sources.connSource(unix.AF_INET6); src != nil {
		for _, e := range src.Connections(int(req.protocol)) {
			k := addrKey(e.Local.Addr)
			if v4 != (e.Local.Addr.Len() == 4 || isV4Mapped(k) || (wildcard(e.Local.Addr) && !v6Only(&e))) {
				continue
			}
			cands = append(cands, e)
		}
	}
	best, bestScore := -1, 0
	for i := range cands {
		e := &cands[i]
		if e.Local.Port != lport {
			continue
		}
		score := 0
		if addrKey(e.Local.Addr) == local {
			score = 2
		} else if wildcard(e.Local.Addr) {
			score = 1
		} else {
			continue
		}
		connected := e.Remote.Port != 0
		if connected {
			if e.Remote.Port != rport || addrKey(e.Remote.Addr) != remote {
				continue
			}
			score += 4 // an exact connection beats any listener
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return netstack.ConnEntry{}, unix.ENOENT
	}
	e := cands[best]
	if req.cookie != [2]uint32{inetDiagNoCookie, inetDiagNoCookie} && req.cookie != diagCookie(&e) {
		return netstack.ConnEntry{}, unix.ENOENT
	}
	return e, 0
}

func v6Only(e *netstack.ConnEntry) bool {
	_, only := e.TOS()
	return only
}

// diagCookie is the socket's idiag_cookie: its inode number, unique for
// the socket's life.
func diagCookie(e *netstack.ConnEntry) [2]uint32 {
	return [2]uint32{uint32(e.Inode), uint32(e.Inode >> 32)}
}

// diagWriter lays messages out into datagrams of at most maxDatagram
// bytes (a single larger message has one of its own), appending in
// place so a dump costs few allocations.
type diagWriter struct {
	out   [][]byte
	cur   []byte
	start int
}

func (w *diagWriter) begin(typ, flags uint16, seq, pid uint32) {
	if w.cur == nil {
		w.cur = make([]byte, 0, maxDatagram)
	}
	w.start = len(w.cur)
	w.cur = appendHeader(w.cur, typ, flags, seq, pid)
}

// put appends p padded to the netlink alignment.
func (w *diagWriter) put(p []byte) { w.cur = appendPadded(w.cur, p) }

func (w *diagWriter) attr(typ uint16, v []byte) { w.cur = appendAttr(w.cur, typ, v) }

func (w *diagWriter) attrU8(typ uint16, v uint8) { w.attr(typ, []byte{v}) }

// end sets the message's length and starts a new datagram if the
// message made this one too long.
func (w *diagWriter) end() {
	binary.LittleEndian.PutUint32(w.cur[w.start:], uint32(len(w.cur)-w.start))
	if len(w.cur) > maxDatagram && w.start > 0 {
		msg := w.cur[w.start:]
		w.out = append(w.out, w.cur[:w.start:w.start])
		w.cur = append(make([]byte, 0, max(maxDatagram, len(msg))), msg...)
	}
}

func (w *diagWriter) finish() [][]byte {
	if len(w.cur) > 0 {
		w.out = append(w.out, w.cur)
	}
	return w.out
}

// inetMsg appends struct inet_diag_msg for e and its attributes (none
// for a connection in TIME-WAIT, as Linux): always INET_DIAG_SHUTDOWN (and INET_DIAG_SKV6ONLY, see below); those
// idiag_ext asks for when the stack knows them: TOS, TCLASS, MEMINFO,
// SKMEMINFO, and for TCP INFO (struct tcp_info) and CONG.
func (w *diagWriter) inetMsg(e *netstack.ConnEntry, typ, flags uint16, seq, pid uint32, ext uint8) {
	w.begin(typ, flags, seq, pid)
	var b [inetDiagMsgSize]byte
	b[0] = uint8(e.Family)
	b[1] = e.State
	// idiag_timer, idiag_retrans and idiag_expires (milliseconds).
	b[2], b[3] = e.Timer, uint8(min(e.Retransmits, 255))
	binary.LittleEndian.PutUint32(b[52:], uint32(min(e.Expires.Milliseconds(), 1<<32-1)))
	binary.BigEndian.PutUint16(b[4:], e.Local.Port)
	binary.BigEndian.PutUint16(b[6:], e.Remote.Port)
	v6 := e.Family == unix.AF_INET6
	putAddr := func(dst []byte, a tcpip.Address) {
		k := addrKey(a)
		switch {
		case v6 && a.Len() != 0:
			copy(dst, k[:])
		case a.Len() == 4:
			copy(dst, k[12:])
		}
	}
	putAddr(b[8:24], e.Local.Addr)
	putAddr(b[24:40], e.Remote.Addr)
	cookie := diagCookie(e)
	binary.LittleEndian.PutUint32(b[44:], cookie[0])
	binary.LittleEndian.PutUint32(b[48:], cookie[1])
	binary.LittleEndian.PutUint32(b[56:], uint32(e.RecvQueue))
	wqueue := e.SendQueue
	if e.State == netstack.LinuxTCPListen {
		// For a listener Linux reports the accept queue's limit here.
		wqueue = e.Backlog
	}
	binary.LittleEndian.PutUint32(b[60:], uint32(wqueue))
	binary.LittleEndian.PutUint32(b[64:], e.UID)
	binary.LittleEndian.PutUint32(b[68:], uint32(e.Inode))
	w.put(b[:])
	if e.TimeWait {
		// A timewait mini-socket has no socket state to report.
		w.end()
		return
	}

	want := func(attr int) bool { return ext&(1<<(attr-1)) != 0 }
	w.attrU8(inetDiagShutdown, e.Shutdown())
	// As Linux: TOS for either family when asked, TCLASS for IPv6 when
	// asked, and IPv6 listening or unconnected sockets always say
	// whether they are IPv6-only.
	v6OnlyShown := v6 && (e.State == netstack.LinuxTCPListen || e.State == linuxTCPClose)
	if want(inetDiagTOS) || want(inetDiagTClass) || v6OnlyShown {
		tos, only := e.TOS()
		if want(inetDiagTOS) {
			w.attrU8(inetDiagTOS, uint8(tos))
		}
		if v6 && want(inetDiagTClass) {
			w.attrU8(inetDiagTClass, uint8(tos))
		}
		if v6OnlyShown {
			w.attrU8(inetDiagSKV6Only, uint8(boolInt(only)))
		}
	}
	if want(inetDiagMeminfo) || want(inetDiagSKMeminfo) {
		rcvBuf, sndBuf := e.Buffers()
		if want(inetDiagMeminfo) {
			// rmem, wmem queued, forward alloc, wmem in flight.
			var mi [16]byte
			binary.LittleEndian.PutUint32(mi[0:], uint32(e.RecvQueue))
			binary.LittleEndian.PutUint32(mi[4:], uint32(e.SendQueue))
			binary.LittleEndian.PutUint32(mi[12:], uint32(e.SendQueue))
			w.attr(inetDiagMeminfo, mi[:])
		}
		if want(inetDiagSKMeminfo) {
			// SK_MEMINFO_RMEM_ALLOC, RCVBUF, WMEM_ALLOC, SNDBUF, then
			// FWD_ALLOC, WMEM_QUEUED, OPTMEM, BACKLOG, DROPS.
			var sm [skMeminfoVars * 4]byte
			binary.LittleEndian.PutUint32(sm[0:], uint32(e.RecvQueue))
			binary.LittleEndian.PutUint32(sm[4:], uint32(rcvBuf))
			binary.LittleEndian.PutUint32(sm[8:], uint32(e.SendQueue))
			binary.LittleEndian.PutUint32(sm[12:], uint32(sndBuf))
			binary.LittleEndian.PutUint32(sm[20:], uint32(e.SendQueue))
			w.attr(inetDiagSKMeminfo, sm[:])
		}
	}
	if e.Protocol == unix.IPPROTO_TCP {
		if want(inetDiagInfo) {
			w.attr(inetDiagInfo, e.TCPInfo())
		}
		if want(inetDiagCong) {
			if name := e.Congestion(); name != "" {
				w.attr(inetDiagCong, append([]byte(name), 0))
			}
		}
	}
	w.end()
}
