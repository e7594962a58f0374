package netlink

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	unixsock "carapace.dev/carapace/pkg/sentry/socket/unix"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// diagEnv is a sandbox stack with its AF_INET, AF_INET6 and netlink
// providers, the netlink one reading the other two's tables.
type diagEnv struct {
	tb     testing.TB
	ctx    context.Context
	v4, v6 *netstack.Provider
	nl     *Provider
}

func newDiagEnv(tb testing.TB) *diagEnv {
	s := netstack.NewStack()
	lo, err := netstack.AddLoopback(s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(lo.Close)
	v := vfs.New()
	e := &diagEnv{tb: tb, ctx: context.Background(), v4: netstack.NewProvider(v, s, unix.AF_INET), v6: netstack.NewProvider(v, s, unix.AF_INET6), nl: NewProvider(v, s)}
	e.nl.diagSources = map[int]any{unix.AF_INET: e.v4, unix.AF_INET6: e.v6}
	return e
}

// tsock is a socket under test with its file, closed when the test ends.
type tsock struct {
	socket.Socket
	fd *vfs.FileDescription
}

func (e *diagEnv) wrap(fd *vfs.FileDescription) *tsock {
	e.tb.Cleanup(func() { fd.DecRef(context.Background()) })
	return &tsock{Socket: fd.Impl().(socket.Socket), fd: fd}
}

func (e *diagEnv) socket(p *netstack.Provider, stype int) *tsock {
	e.tb.Helper()
	fd, err := p.NewSocket(e.ctx, stype, 0)
	if err != nil {
		e.tb.Fatal(err)
	}
	return e.wrap(fd)
}

func (s *tsock) inode(tb testing.TB) uint64 {
	st, err := s.fd.Inode().Stat(context.Background(), unix.STATX_INO)
	if err != nil {
		tb.Fatal(err)
	}
	return st.Ino
}

// sockaddr encodes a sockaddr_in or sockaddr_in6 for addr:port.
func sockaddr(addr string, port uint16) []byte {
	a := tcpip.ParseAddress(addr)
	if a.Len() == 4 {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint16(b, unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], port)
		a.CopyTo(b[4:])
		return b
	}
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	a.CopyTo(b[8:])
	return b
}

func portOf(name []byte) uint16 { return binary.BigEndian.Uint16(name[2:]) }

func (s *tsock) port(tb testing.TB) uint16 {
	name, err := s.SockName(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return portOf(name)
}

// wait blocks until s is ready for mask.
var wait = sockettest.WaitReady

func (e *diagEnv) listener(p *netstack.Provider, addr string) (*tsock, uint16) {
	e.tb.Helper()
	l := e.socket(p, unix.SOCK_STREAM)
	if err := l.Bind(nil, sockaddr(addr, 0)); err != nil {
		e.tb.Fatal(err)
	}
	if err := l.Listen(nil, 64); err != nil {
		e.tb.Fatal(err)
	}
	return l, l.port(e.tb)
}

// connect returns a connected client and the listener's accepted end.
func (e *diagEnv) connect(p *netstack.Provider, l *tsock, addr string, port uint16) (c, a *tsock) {
	e.tb.Helper()
	c = e.socket(p, unix.SOCK_STREAM)
	if err := c.Connect(nil, sockaddr(addr, port)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		e.tb.Fatal(err)
	}
	wait(e.tb, c, waiter.EventOut)
	for {
		fd, _, err := l.Accept(nil, 0)
		if errors.Is(err, unix.EAGAIN) {
			wait(e.tb, l, waiter.EventIn)
			continue
		}
		if err != nil {
			e.tb.Fatal(err)
		}
		return c, e.wrap(fd)
	}
}

func (e *diagEnv) diagSock() socket.Socket {
	e.tb.Helper()
	fd, err := e.nl.NewSocket(e.ctx, unix.SOCK_RAW, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		e.tb.Fatal(err)
	}
	return e.wrap(fd).Socket
}

// diagReq builds struct inet_diag_req_v2.
type diagReq struct {
	family, protocol, ext uint8
	states                uint32
	sport, dport          uint16
	src, dst              string
	cookie                [2]uint32
}

func (r diagReq) bytes() []byte {
	b := make([]byte, inetDiagReqV2Size)
	b[0], b[1], b[2] = r.family, r.protocol, r.ext
	binary.LittleEndian.PutUint32(b[4:], r.states)
	binary.BigEndian.PutUint16(b[8:], r.sport)
	binary.BigEndian.PutUint16(b[10:], r.dport)
	if r.src != "" {
		tcpip.ParseAddress(r.src).CopyTo(b[12:])
	}
	if r.dst != "" {
		tcpip.ParseAddress(r.dst).CopyTo(b[28:])
	}
	binary.LittleEndian.PutUint32(b[48:], r.cookie[0])
	binary.LittleEndian.PutUint32(b[52:], r.cookie[1])
	return b
}

var noCookie = [2]uint32{inetDiagNoCookie, inetDiagNoCookie}

// diagEntry is a decoded inet_diag_msg with its attributes.
type diagEntry struct {
	typ, flags         uint16
	family, state      uint8
	sport, dport       uint16
	src, dst           [16]byte
	cookie             [2]uint32
	rqueue, wqueue     uint32
	uid, inode         uint32
	timer, retrans     uint8
	expires            uint32 // milliseconds
	attrs              map[uint16][]byte
	doneStatus, errnum int32
	done, isErr        bool
}

// converse sends one request and reads every datagram of the answer
// (until NLMSG_DONE or NLMSG_ERROR, or nothing more is queued).
func converse(tb testing.TB, s socket.Socket, typ, flags uint16, payload []byte) []diagEntry {
	tb.Helper()
	// nlmsg_len counts the payload exactly, padding excluded.
	req := newMessage(typ, flags, 42, 0, payload).done()
	binary.LittleEndian.PutUint32(req, uint32(headerSize+len(payload)))
	if n, err := s.SendMsg(nil, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != nil || n != int64(len(req)) {
		tb.Fatalf("send = %d, %v", n, err)
	}
	var out []diagEntry
	buf := make([]byte, 32<<10)
	for {
		n, mflags, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, false)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		if mflags&unix.MSG_TRUNC != 0 {
			tb.Fatal("datagram truncated")
		}
		for _, m := range ParseMessages(buf[:n]) {
			if m.Seq != 42 {
				tb.Errorf("seq %d, want 42", m.Seq)
			}
			d := diagEntry{typ: m.Type, flags: m.Flags}
			switch {
			case m.Type == msgDone:
				d.done = true
				d.doneStatus = int32(binary.LittleEndian.Uint32(m.Payload))
			case m.Type == msgError:
				d.isErr = true
				d.errnum = -int32(binary.LittleEndian.Uint32(m.Payload))
			default:
				if len(m.Payload) < inetDiagMsgSize {
					tb.Fatalf("message of %d bytes", len(m.Payload))
				}
				p := m.Payload
				d.family, d.state = p[0], p[1]
				d.timer, d.retrans, d.expires = p[2], p[3], binary.LittleEndian.Uint32(p[52:])
				d.sport, d.dport = binary.BigEndian.Uint16(p[4:]), binary.BigEndian.Uint16(p[6:])
				copy(d.src[:], p[8:24])
				copy(d.dst[:], p[24:40])
				d.cookie = [2]uint32{binary.LittleEndian.Uint32(p[44:]), binary.LittleEndian.Uint32(p[48:])}
				d.rqueue, d.wqueue = binary.LittleEndian.Uint32(p[56:]), binary.LittleEndian.Uint32(p[60:])
				d.uid, d.inode = binary.LittleEndian.Uint32(p[64:]), binary.LittleEndian.Uint32(p[68:])
				attrs, ok := ParseAttrs(p[inetDiagMsgSize:])
				if !ok {
					tb.Fatalf("malformed attributes %x", p[inetDiagMsgSize:])
				}
				d.attrs = map[uint16][]byte{}
				for _, a := range attrs {
					d.attrs[a.Type] = a.Value
				}
			}
			out = append(out, d)
			if d.done || d.isErr {
				return out
			}
		}
	}
}

func dump(tb testing.TB, s socket.Socket, r diagReq) []diagEntry {
	tb.Helper()
	got := converse(tb, s, sockDiagByFamily, flagRequest|flagDump, r.bytes())
	if len(got) == 0 || !got[len(got)-1].done {
		tb.Fatalf("dump not ended by NLMSG_DONE: %+v", got)
	}
	if st := got[len(got)-1].doneStatus; st != 0 {
		tb.Fatalf("NLMSG_DONE status %d", st)
	}
	for _, d := range got[:len(got)-1] {
		if d.typ != sockDiagByFamily || d.flags&flagMulti == 0 {
			tb.Errorf("dump message type %d flags %#x", d.typ, d.flags)
		}
	}
	return got[:len(got)-1]
}

func find(es []diagEntry, sport, dport uint16) *diagEntry {
	for i := range es {
		if es[i].sport == sport && es[i].dport == dport {
			return &es[i]
		}
	}
	return nil
}

var v4lo = [16]byte{127, 0, 0, 1}

const allStates = 0xffffffff

func TestSockDiagDumpTCP(t *testing.T) {
	e := newDiagEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	c, a := e.connect(e.v4, l, "127.0.0.1", port)
	cport := c.port(t)
	// Data the accepted end has not read shows as its receive queue.
	if _, err := c.SendMsg(nil, sockettest.Seq([]byte("hello")), nil, 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	wait(t, a, waiter.EventIn)
	nl := e.diagSock()
	got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates, cookie: noCookie})
	if len(got) != 3 {
		t.Fatalf("dump has %d sockets, want 3: %+v", len(got), got)
	}
	for _, w := range []struct {
		name         string
		s            *tsock
		sport, dport uint16
		state        uint8
		dst          [16]byte
	}{
		{"listener", l, port, 0, 10, [16]byte{}},
		{"client", c, cport, port, 1, v4lo},
		{"accepted", a, port, cport, 1, v4lo},
	} {
		d := find(got, w.sport, w.dport)
		if d == nil {
			t.Errorf("%s %d→%d missing", w.name, w.sport, w.dport)
			continue
		}
		if d.family != unix.AF_INET || d.state != w.state || d.src != v4lo || d.dst != w.dst {
			t.Errorf("%s: family %d state %d src %x dst %x", w.name, d.family, d.state, d.src, d.dst)
		}
		ino := w.s.inode(t)
		if uint64(d.inode) != ino || d.cookie != [2]uint32{uint32(ino), uint32(ino >> 32)} {
			t.Errorf("%s: inode %d cookie %v, want %d", w.name, d.inode, d.cookie, ino)
		}
		if sh, ok := d.attrs[inetDiagShutdown]; !ok || len(sh) != 1 || sh[0] != 0 {
			t.Errorf("%s: INET_DIAG_SHUTDOWN %v", w.name, sh)
		}
		if _, ok := d.attrs[inetDiagInfo]; ok {
			t.Errorf("%s: INET_DIAG_INFO sent unasked", w.name)
		}
	}
	if d := find(got, port, cport); d != nil && d.rqueue != 5 {
		t.Errorf("accepted end's rqueue %d, want 5", d.rqueue)
	}
	// The inode numbers are those /proc/net/tcp prints.
	tab, _ := e.v4.ProcNet("tcp")
	for _, d := range got {
		if !strings.Contains(string(tab), fmt.Sprintf(" %d ", d.inode)) {
			t.Errorf("inode %d not in /proc/net/tcp:\n%s", d.inode, tab)
		}
	}

	// The state bitmask and the port filters.
	if got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: 1 << 10}); len(got) != 1 || got[0].sport != port {
		t.Errorf("LISTEN-only dump: %+v", got)
	}
	if got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: 1 << 1}); len(got) != 2 {
		t.Errorf("ESTABLISHED-only dump has %d sockets, want 2", len(got))
	}
	if got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates, sport: cport}); len(got) != 1 || got[0].dport != port {
		t.Errorf("sport filter: %+v", got)
	}
	if got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates, dport: cport}); len(got) != 2 {
		// The accepted end, and the listener (whose dport is not checked).
		t.Errorf("dport filter kept %d sockets, want 2", len(got))
	}
	// IPv4 sockets are not in the IPv6 table.
	if got := dump(t, nl, diagReq{family: unix.AF_INET6, protocol: unix.IPPROTO_TCP, states: allStates}); len(got) != 0 {
		t.Errorf("AF_INET6 dump lists %d IPv4 sockets", len(got))
	}
}

func TestSockDiagExtensions(t *testing.T) {
	e := newDiagEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	e.connect(e.v4, l, "127.0.0.1", port)
	nl := e.diagSock()
	ext := uint8(1<<(inetDiagInfo-1) | 1<<(inetDiagCong-1) | 1<<(inetDiagMeminfo-1) | 1<<(inetDiagSKMeminfo-1) | 1<<(inetDiagTOS-1))
	got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates, ext: ext})
	if len(got) != 3 {
		t.Fatalf("%d sockets", len(got))
	}
	for _, d := range got {
		info := d.attrs[inetDiagInfo]
		if len(info) < 104 || info[0] != d.state {
			t.Errorf("INET_DIAG_INFO %x for state %d", info, d.state)
		}
		if cong := d.attrs[inetDiagCong]; string(cong) != "reno\x00" {
			t.Errorf("INET_DIAG_CONG %q", cong)
		}
		if mi := d.attrs[inetDiagMeminfo]; len(mi) != 16 {
			t.Errorf("INET_DIAG_MEMINFO %x", mi)
		}
		sm := d.attrs[inetDiagSKMeminfo]
		if len(sm) != skMeminfoVars*4 || binary.LittleEndian.Uint32(sm[4:]) == 0 {
			t.Errorf("INET_DIAG_SKMEMINFO %x (rcvbuf must be set)", sm)
		}
		if tos, ok := d.attrs[inetDiagTOS]; !ok || len(tos) != 1 {
			t.Errorf("INET_DIAG_TOS %x", tos)
		}
		if d.state == 1 {
			// An established connection has negotiated an MSS.
			if mss := binary.LittleEndian.Uint32(info[16:]); mss == 0 {
				t.Errorf("tcpi_snd_mss 0")
			}
		}
	}
}

func TestSockDiagIPv6(t *testing.T) {
	e := newDiagEnv(t)
	l, port := e.listener(e.v6, "::1")
	nl := e.diagSock()
	got := dump(t, nl, diagReq{family: unix.AF_INET6, protocol: unix.IPPROTO_TCP, states: allStates})
	if len(got) != 1 {
		t.Fatalf("%d sockets", len(got))
	}
	d := got[0]
	if d.family != unix.AF_INET6 || d.sport != port || d.src != [16]byte{15: 1} || uint64(d.inode) != l.inode(t) {
		t.Errorf("IPv6 listener: %+v", d)
	}
	if v, ok := d.attrs[inetDiagSKV6Only]; !ok || len(v) != 1 {
		t.Errorf("INET_DIAG_SKV6ONLY missing: %v", d.attrs)
	}
	if got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates}); len(got) != 0 {
		t.Errorf("AF_INET dump lists IPv6 sockets: %+v", got)
	}
	// Connections do not say whether they are IPv6-only; TCLASS and TOS
	// come when asked.
	e.connect(e.v6, l, "::1", port)
	ext := uint8(1<<(inetDiagTOS-1) | 1<<(inetDiagTClass-1))
	for _, d := range dump(t, nl, diagReq{family: unix.AF_INET6, protocol: unix.IPPROTO_TCP, states: allStates, ext: ext}) {
		_, only := d.attrs[inetDiagSKV6Only]
		if only != (d.state == 10) {
			t.Errorf("state %d: INET_DIAG_SKV6ONLY present %v", d.state, only)
		}
		if len(d.attrs[inetDiagTOS]) != 1 || len(d.attrs[inetDiagTClass]) != 1 {
			t.Errorf("state %d: TOS %x TCLASS %x", d.state, d.attrs[inetDiagTOS], d.attrs[inetDiagTClass])
		}
	}
	// Exact lookup by the IPv6 address.
	one := converse(t, nl, sockDiagByFamily, flagRequest, diagReq{family: unix.AF_INET6, protocol: unix.IPPROTO_TCP, sport: port, src: "::1", cookie: noCookie}.bytes())
	if len(one) != 1 || one[0].isErr || one[0].sport != port {
		t.Errorf("exact IPv6 lookup: %+v", one)
	}
}

func TestSockDiagDualStackLookup(t *testing.T) {
	e := newDiagEnv(t)
	l, port := e.listener(e.v6, "::")
	nl := e.diagSock()
	// An IPv4 lookup finds a dual-stack listener, as Linux's does.
	for _, r := range []diagReq{
		{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1", cookie: noCookie},
		{family: unix.AF_INET6, protocol: unix.IPPROTO_TCP, sport: port, src: "::ffff:127.0.0.1", dst: "::ffff:0.0.0.0", cookie: noCookie},
	} {
		got := converse(t, nl, sockDiagByFamily, flagRequest, r.bytes())
		if len(got) != 1 || got[0].isErr || uint64(got[0].inode) != l.inode(t) || got[0].family != unix.AF_INET6 {
			t.Errorf("lookup %+v: %+v", r, got)
		}
	}
}

func TestSockDiagExact(t *testing.T) {
	e := newDiagEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	c, _ := e.connect(e.v4, l, "127.0.0.1", port)
	cport := c.port(t)
	nl := e.diagSock()
	exact := func(r diagReq, flags uint16) []diagEntry {
		return converse(t, nl, sockDiagByFamily, flagRequest|flags, r.bytes())
	}
	// The listener, by local address and port; any remote matches it.
	got := exact(diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1", dport: 9, dst: "10.1.2.3", cookie: noCookie}, 0)
	if len(got) != 1 || got[0].isErr || got[0].state != 10 || got[0].flags != 0 || got[0].typ != sockDiagByFamily {
		t.Fatalf("listener lookup: %+v", got)
	}
	cookie := got[0].cookie
	// The client connection by its four-tuple, ahead of the listener.
	got = exact(diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: cport, src: "127.0.0.1", dport: port, dst: "127.0.0.1", cookie: noCookie}, 0)
	if len(got) != 1 || got[0].isErr || got[0].state != 1 || uint64(got[0].inode) != c.inode(t) {
		t.Fatalf("connection lookup: %+v", got)
	}
	// The accepted end, not the listener, answers for port→cport.
	got = exact(diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1", dport: cport, dst: "127.0.0.1", cookie: noCookie}, 0)
	if len(got) != 1 || got[0].state != 1 {
		t.Fatalf("accepted-end lookup: %+v", got)
	}
	// The right cookie, with an acknowledgement asked for.
	got = exact(diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1", cookie: cookie}, flagAck)
	if len(got) != 2 || got[0].state != 10 || !got[1].isErr || got[1].errnum != 0 || got[1].flags != flagCapped {
		t.Fatalf("lookup with cookie and ack: %+v", got)
	}
	for name, r := range map[string]diagReq{
		"wrong cookie":   {family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1", cookie: [2]uint32{cookie[0] + 1, cookie[1]}},
		"no such port":   {family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: 1, src: "127.0.0.1", cookie: noCookie},
		"other address":  {family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.2", cookie: noCookie},
		"udp, not tcp":   {family: unix.AF_INET, protocol: unix.IPPROTO_UDP, dport: port, dst: "127.0.0.1", cookie: noCookie},
		"ipv6 table":     {family: unix.AF_INET6, protocol: unix.IPPROTO_TCP, sport: port, src: "::1", cookie: noCookie},
		"no sctp here":   {family: unix.AF_INET, protocol: unix.IPPROTO_SCTP, sport: port, src: "127.0.0.1", cookie: noCookie},
		"zero cookie no": {family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1"},
	} {
		got := exact(r, 0)
		if len(got) != 1 || !got[0].isErr || got[0].errnum != int32(unix.ENOENT) {
			t.Errorf("%s: %+v, want ENOENT", name, got)
		}
	}
}

func TestSockDiagUDP(t *testing.T) {
	e := newDiagEnv(t)
	u := e.socket(e.v4, unix.SOCK_DGRAM)
	if err := u.Bind(nil, sockaddr("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	uport := u.port(t)
	conn := e.socket(e.v4, unix.SOCK_DGRAM)
	if err := conn.Connect(nil, sockaddr("127.0.0.1", uport)); err != nil {
		t.Fatal(err)
	}
	cport := conn.port(t)
	// An unbound UDP socket is in no table.
	e.socket(e.v4, unix.SOCK_DGRAM)
	if _, err := conn.SendMsg(nil, sockettest.Seq([]byte("abc")), nil, 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	wait(t, u, waiter.EventIn)
	nl := e.diagSock()
	got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_UDP, states: allStates})
	if len(got) != 2 {
		t.Fatalf("UDP dump: %+v", got)
	}
	if d := find(got, uport, 0); d == nil || d.state != 7 || d.rqueue == 0 || uint64(d.inode) != u.inode(t) {
		t.Errorf("bound socket: %+v", d)
	}
	if d := find(got, cport, uport); d == nil || d.state != 1 {
		t.Errorf("connected socket: %+v", d)
	}
	if got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_UDP, states: 1 << 7}); len(got) != 1 || got[0].sport != uport {
		t.Errorf("TCP_CLOSE-only dump: %+v", got)
	}
	// UDP's exact lookup takes the local end from idiag_dst.
	one := converse(t, nl, sockDiagByFamily, flagRequest, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_UDP, dport: uport, dst: "127.0.0.1", cookie: noCookie}.bytes())
	if len(one) != 1 || one[0].isErr || one[0].sport != uport {
		t.Errorf("UDP lookup: %+v", one)
	}
	one = converse(t, nl, sockDiagByFamily, flagRequest, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_UDP, sport: uport, src: "127.0.0.1", cookie: noCookie}.bytes())
	if len(one) != 1 || !one[0].isErr || one[0].errnum != int32(unix.ENOENT) {
		t.Errorf("UDP lookup by idiag_src: %+v, want ENOENT", one)
	}
}

func TestSockDiagErrors(t *testing.T) {
	e := newDiagEnv(t)
	nl := e.diagSock()
	v2 := diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates}.bytes()
	for _, c := range []struct {
		name    string
		typ     uint16
		flags   uint16
		payload []byte
		errno   unix.Errno
	}{
		{"empty", sockDiagByFamily, flagRequest | flagDump, nil, unix.EINVAL},
		{"one byte", sockDiagByFamily, flagRequest | flagDump, []byte{unix.AF_INET}, unix.EINVAL},
		{"short v2", sockDiagByFamily, flagRequest | flagDump, v2[:inetDiagReqV2Size-1], unix.EINVAL},
		{"family past AF_MAX", sockDiagByFamily, flagRequest | flagDump, append([]byte{200}, v2[1:]...), unix.EINVAL},
		{"AF_UNSPEC", sockDiagByFamily, flagRequest | flagDump, append([]byte{unix.AF_UNSPEC}, v2[1:]...), unix.ENOENT},
		{"AF_PACKET", sockDiagByFamily, flagRequest | flagDump, append([]byte{unix.AF_PACKET}, v2[1:]...), unix.ENOENT},
		{"destroy", sockDestroy, flagRequest, v2, unix.EOPNOTSUPP},
		{"unknown type", 30, flagRequest | flagDump, v2, unix.EINVAL},
		{"bad attribute", sockDiagByFamily, flagRequest | flagDump, append(append([]byte{}, v2...), 9, 0, 1, 0), unix.EINVAL},
	} {
		got := converse(t, nl, c.typ, c.flags, c.payload)
		if len(got) != 1 || !got[0].isErr || got[0].errnum != int32(c.errno) {
			t.Errorf("%s: %+v, want errno %d", c.name, got, c.errno)
		}
	}
	// A protocol without a handler ends its dump with -ENOENT.
	got := converse(t, nl, sockDiagByFamily, flagRequest|flagDump, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_SCTP, states: allStates}.bytes())
	if len(got) != 1 || !got[0].done || got[0].doneStatus != -int32(unix.ENOENT) || got[0].flags != flagMulti {
		t.Errorf("SCTP dump: %+v", got)
	}
	// A message that is not a request is only acknowledged, if asked.
	got = converse(t, nl, sockDiagByFamily, flagDump|flagAck, v2)
	if len(got) != 1 || !got[0].isErr || got[0].errnum != 0 || got[0].flags != flagCapped {
		t.Errorf("non-request: %+v", got)
	}
	if got := converse(t, nl, sockDiagByFamily, flagDump, v2); len(got) != 0 {
		t.Errorf("non-request without ack answered: %+v", got)
	}
	// The socket says what it is.
	if _, _, proto := nl.Type(); proto != unix.NETLINK_SOCK_DIAG {
		t.Errorf("protocol %d", proto)
	}
	if b, err := nl.GetSockOpt(nil, unix.SOL_SOCKET, unix.SO_PROTOCOL, 4); err != nil || binary.LittleEndian.Uint32(b) != unix.NETLINK_SOCK_DIAG {
		t.Errorf("SO_PROTOCOL %v %v", b, err)
	}
	if _, err := e.nl.NewSocket(e.ctx, unix.SOCK_RAW, unix.NETLINK_AUDIT); !errors.Is(err, unix.EPROTONOSUPPORT) {
		t.Errorf("NETLINK_AUDIT: %v", err)
	}
}

// TestSockDiagCompat is the old TCPDIAG_GETSOCK request with struct
// inet_diag_req, answered with its own message type.
func TestSockDiagCompat(t *testing.T) {
	e := newDiagEnv(t)
	_, port := e.listener(e.v4, "127.0.0.1")
	nl := e.diagSock()
	req := make([]byte, inetDiagReqSize)
	req[0] = unix.AF_INET
	binary.LittleEndian.PutUint32(req[4+inetDiagSockIDLen:], allStates)
	got := converse(t, nl, tcpDiagGetSock, flagRequest|flagDump, req)
	if len(got) != 2 || got[0].typ != tcpDiagGetSock || got[0].sport != port || !got[1].done {
		t.Errorf("TCPDIAG_GETSOCK dump: %+v", got)
	}
	got = converse(t, nl, tcpDiagGetSock, flagRequest|flagDump, req[:inetDiagReqSize-1])
	if len(got) != 1 || got[0].errnum != int32(unix.EINVAL) {
		t.Errorf("short TCPDIAG_GETSOCK: %+v", got)
	}
}

// TestSockDiagLargeDump checks that a dump larger than the receive
// buffer arrives whole as the reader drains it.
func TestSockDiagLargeDump(t *testing.T) {
	e := newDiagEnv(t)
	const n = 100
	for i := 0; i < n; i++ {
		e.listener(e.v4, "127.0.0.1")
	}
	nl := e.diagSock()
	if err := nl.SetSockOpt(nil, unix.SOL_SOCKET, unix.SO_RCVBUF, []byte{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	ext := uint8(1 << (inetDiagInfo - 1))
	got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates, ext: ext})
	if len(got) != n {
		t.Errorf("dump delivered %d of %d sockets", len(got), n)
	}
	seen := map[uint32]bool{}
	for _, d := range got {
		if seen[d.inode] {
			t.Errorf("inode %d twice", d.inode)
		}
		seen[d.inode] = true
	}
}

func TestSockDiagDatagramSize(t *testing.T) {
	var w diagWriter
	for i := 0; i < 200; i++ {
		w.begin(sockDiagByFamily, flagMulti, 1, 2)
		w.put(make([]byte, inetDiagMsgSize))
		w.end()
	}
	out := w.finish()
	total := 0
	for _, d := range out {
		if len(d) > maxDatagram {
			t.Errorf("datagram of %d bytes", len(d))
		}
		msgs := ParseMessages(d)
		total += len(msgs)
		if len(msgs) == 0 || !bytes.Equal(d[:4], []byte{88, 0, 0, 0}) {
			t.Errorf("datagram does not start with an 88-byte message")
		}
	}
	if total != 200 {
		t.Errorf("%d messages, want 200", total)
	}
}

// FuzzSockDiag feeds arbitrary requests to the parser and handler: no
// panic, and every answer parses as netlink messages.
func FuzzSockDiag(f *testing.F) {
	e := newDiagEnv(f)
	l, port := e.listener(e.v4, "127.0.0.1")
	e.connect(e.v4, l, "127.0.0.1", port)
	u := e.socket(e.v6, unix.SOCK_DGRAM)
	if err := u.Bind(nil, sockaddr("::1", 0)); err != nil {
		f.Fatal(err)
	}
	e.nl.diagSources[unix.AF_UNIX] = unixsock.NewProvider()
	sources := func(family int) any { return e.nl.diagSources[family] }
	unixReq := make([]byte, unixDiagReqSize)
	unixReq[0] = unix.AF_UNIX
	f.Add(newMessage(sockDiagByFamily, flagRequest|flagDump, 1, 0, unixReq).done())
	f.Add(newMessage(sockDiagByFamily, flagRequest, 1, 0, append(unixReq[:8:8], 5, 0, 0, 0, 0xff, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)).done())
	f.Add(newMessage(sockDiagByFamily, flagRequest|flagDump, 1, 0, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates, ext: 0xff}.bytes()).done())
	f.Add(newMessage(sockDiagByFamily, flagRequest, 1, 0, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, sport: port, src: "127.0.0.1", cookie: noCookie}.bytes()).done())
	f.Add(newMessage(sockDiagByFamily, flagRequest|flagAck, 1, 0, diagReq{family: unix.AF_INET6, protocol: unix.IPPROTO_UDP, cookie: noCookie}.bytes()).done())
	f.Add(newMessage(tcpDiagGetSock, flagRequest|flagDump, 1, 0, make([]byte, inetDiagReqSize)).done())
	f.Add(newMessage(sockDiagByFamily, flagRequest|flagDump, 1, 0, append(diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_UDP}.bytes(), 8, 0, 1, 0, 1, 2, 3, 4)).done())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range ParseMessages(b) {
			for _, d := range handleDiag(m, 7, sources) {
				if len(d) < headerSize || len(ParseMessages(d)) == 0 {
					t.Fatalf("answer %x does not parse", d)
				}
			}
		}
	})
}

// BenchmarkSockDiagDump1000 times a full dump of 1000 TCP sockets (500
// connections, both ends) read back by the caller, as `ss -tan` does.
func BenchmarkSockDiagDump1000(b *testing.B) {
	e := newDiagEnv(b)
	l, port := e.listener(e.v4, "127.0.0.1")
	for i := 0; i < 500; i++ {
		e.connect(e.v4, l, "127.0.0.1", port)
	}
	nl := e.diagSock()
	req := newMessage(sockDiagByFamily, flagRequest|flagDump, 1, 0, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: 1 << 1}.bytes()).done()
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := nl.SendMsg(nil, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != nil {
			b.Fatal(err)
		}
		count := 0
	read:
		for {
			n, _, _, _, err := nl.RecvMsg(nil, sockettest.Seq(buf), 0, false)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range ParseMessages(buf[:n]) {
				if m.Type == msgDone {
					break read
				}
				count++
			}
		}
		if count != 1000 {
			b.Fatalf("dump listed %d sockets", count)
		}
	}
}
