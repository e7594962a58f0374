package netlink

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	unixsock "carapace.dev/carapace/pkg/sentry/socket/unix"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// kernelEnv is a platform-less kernel with a task and every socket
// family registered, so sock_diag finds its sources the way it does in
// the Sentry: through the calling task's kernel.
type kernelEnv struct {
	t    *testing.T
	task *kernel.Task
	nl   *Provider
	v4   *netstack.Provider
}

func newKernelEnv(t *testing.T) *kernelEnv {
	k := kerneltest.NewKernel(t, "netlink-test")
	s := newStack(t)
	e := &kernelEnv{t: t, nl: NewProvider(k.VFS(), s), v4: netstack.NewProvider(k.VFS(), s, unix.AF_INET)}
	k.RegisterSocketProvider(unix.AF_UNIX, unixsock.NewProvider())
	k.RegisterSocketProvider(unix.AF_INET, e.v4)
	k.RegisterSocketProvider(unix.AF_NETLINK, e.nl)
	e.task = kerneltest.NewTestTask(t, k)
	return e
}

func (e *kernelEnv) socket(family, stype, protocol int) (*vfs.FileDescription, socket.Socket) {
	e.t.Helper()
	p, err := e.task.Kernel().SocketProvider(family)
	if err != nil {
		e.t.Fatal(err)
	}
	fd, err := p.Socket(e.task, stype, protocol)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { fd.DecRef(context.Background()) })
	s, _ := socket.FromFile(fd)
	return fd, s
}

func inodeOf(t *testing.T, fd *vfs.FileDescription) uint32 {
	st, err := fd.Inode().Stat(context.Background(), unix.STATX_INO)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// unixEntry is a decoded unix_diag_msg with its attributes.
type unixEntry struct {
	flags        uint16
	typ, state   uint8
	ino          uint32
	cookie       [2]uint32
	attrs        map[uint16][]byte
	done, isErr  bool
	errnum, stat int32
}

func (e *kernelEnv) unixConverse(s socket.Socket, flags uint16, states, ino, show uint32, cookie [2]uint32) []unixEntry {
	e.t.Helper()
	payload := make([]byte, unixDiagReqSize)
	payload[0] = unix.AF_UNIX
	binary.LittleEndian.PutUint32(payload[4:], states)
	binary.LittleEndian.PutUint32(payload[8:], ino)
	binary.LittleEndian.PutUint32(payload[12:], show)
	binary.LittleEndian.PutUint32(payload[16:], cookie[0])
	binary.LittleEndian.PutUint32(payload[20:], cookie[1])
	req := newMessage(sockDiagByFamily, flags, 9, 0, payload).done()
	if _, err := s.SendMsg(e.task, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != nil {
		e.t.Fatal(err)
	}
	var out []unixEntry
	buf := make([]byte, 32<<10)
	for {
		n, _, _, _, err := s.RecvMsg(e.task, sockettest.Seq(buf), 0, false)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range ParseMessages(buf[:n]) {
			u := unixEntry{flags: m.Flags}
			switch m.Type {
			case msgDone:
				u.done, u.stat = true, int32(binary.LittleEndian.Uint32(m.Payload))
			case msgError:
				u.isErr, u.errnum = true, -int32(binary.LittleEndian.Uint32(m.Payload))
			default:
				p := m.Payload
				if len(p) < unixDiagMsgSize || p[0] != unix.AF_UNIX {
					e.t.Fatalf("bad unix_diag_msg %x", p)
				}
				u.typ, u.state = p[1], p[2]
				u.ino = binary.LittleEndian.Uint32(p[4:])
				u.cookie = [2]uint32{binary.LittleEndian.Uint32(p[8:]), binary.LittleEndian.Uint32(p[12:])}
				attrs, ok := ParseAttrs(p[unixDiagMsgSize:])
				if !ok {
					e.t.Fatalf("bad attributes %x", p[unixDiagMsgSize:])
				}
				u.attrs = map[uint16][]byte{}
				for _, a := range attrs {
					u.attrs[a.Type] = a.Value
				}
			}
			out = append(out, u)
			if u.done || u.isErr {
				return out
			}
		}
	}
}

func byIno(es []unixEntry, ino uint32) *unixEntry {
	for i := range es {
		if es[i].ino == ino {
			return &es[i]
		}
	}
	return nil
}

func u32s(b []byte) []uint32 {
	var out []uint32
	for len(b) >= 4 {
		out = append(out, binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	return out
}

func TestUnixDiag(t *testing.T) {
	e := newKernelEnv(t)
	lfd, l := e.socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	name := append([]byte{unix.AF_UNIX, 0, 0}, "diag-test"...)
	if err := l.Bind(e.task, name); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(e.task, 3); err != nil {
		t.Fatal(err)
	}
	cfd, c := e.socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err := c.Connect(e.task, name); err != nil {
		t.Fatal(err)
	}
	p, _ := e.task.Kernel().SocketProvider(unix.AF_UNIX)
	pa, pb, err := p.Pair(e.task, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pa.DecRef(context.Background())
	defer pb.DecRef(context.Background())
	_, nl := e.socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_SOCK_DIAG)
	show := uint32(udiagShowName | udiagShowPeer | udiagShowIcons | udiagShowRQLen | udiagShowMeminfo)

	got := e.unixConverse(nl, flagRequest|flagDump, ^uint32(0), 0, show, noCookie)
	if len(got) == 0 || !got[len(got)-1].done || got[len(got)-1].stat != 0 {
		t.Fatalf("dump not ended by NLMSG_DONE: %+v", got)
	}
	lino, cino, aino, bino := inodeOf(t, lfd), inodeOf(t, cfd), inodeOf(t, pa), inodeOf(t, pb)
	ld := byIno(got, lino)
	if ld == nil || ld.state != 10 || ld.typ != unix.SOCK_STREAM || string(ld.attrs[unixDiagName]) != "\x00diag-test" || ld.flags&flagMulti == 0 {
		t.Fatalf("listener: %+v", ld)
	}
	if icons := u32s(ld.attrs[unixDiagIcons]); len(icons) != 1 || icons[0] != cino {
		t.Errorf("listener's pending connections %v, want [%d]", icons, cino)
	}
	if rq := u32s(ld.attrs[unixDiagRQLen]); len(rq) != 2 || rq[0] != 1 || rq[1] != 3 {
		t.Errorf("listener's RQLEN %v, want [1 3]", rq)
	}
	if _, ok := ld.attrs[unixDiagPeer]; ok {
		t.Errorf("listener has a peer")
	}
	cd := byIno(got, cino)
	if cd == nil || cd.state != 1 {
		t.Fatalf("client: %+v", cd)
	}
	// Its peer is still in the accept queue, without a file: inode 0.
	if peer, ok := cd.attrs[unixDiagPeer]; !ok || binary.LittleEndian.Uint32(peer) != 0 {
		t.Errorf("client's peer %x, want 0 before accept", peer)
	}
	if _, ok := cd.attrs[unixDiagName]; ok {
		t.Errorf("unbound client has a name")
	}
	for _, pair := range [][2]uint32{{aino, bino}, {bino, aino}} {
		d := byIno(got, pair[0])
		if d == nil || d.typ != unix.SOCK_DGRAM || d.state != 1 || binary.LittleEndian.Uint32(d.attrs[unixDiagPeer]) != pair[1] {
			t.Errorf("socketpair end %d: %+v", pair[0], d)
		}
		if sh, ok := d.attrs[unixDiagShutdown]; !ok || len(sh) != 1 {
			t.Errorf("UNIX_DIAG_SHUTDOWN missing")
		}
		if mi := d.attrs[unixDiagMeminfo]; len(mi) != skMeminfoVars*4 || binary.LittleEndian.Uint32(mi[4:]) == 0 {
			t.Errorf("UNIX_DIAG_MEMINFO %x", mi)
		}
	}

	// After accept the client's peer is the accepted socket's file.
	afd, _, err := l.Accept(e.task, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer afd.DecRef(context.Background())
	got = e.unixConverse(nl, flagRequest|flagDump, ^uint32(0), 0, show, noCookie)
	if d := byIno(got, cino); d == nil || binary.LittleEndian.Uint32(d.attrs[unixDiagPeer]) != inodeOf(t, afd) {
		t.Errorf("client's peer after accept: %+v", d)
	}
	if d := byIno(got, lino); d == nil || len(d.attrs[unixDiagIcons]) != 0 {
		t.Errorf("listener still has pending connections: %+v", d)
	}
	if d := byIno(got, inodeOf(t, afd)); d == nil || string(d.attrs[unixDiagName]) != "\x00diag-test" {
		t.Errorf("accepted socket carries the listener's name: %+v", d)
	}

	// The state filter.
	got = e.unixConverse(nl, flagRequest|flagDump, 1<<10, 0, 0, noCookie)
	if len(got) != 2 || got[0].ino != lino {
		t.Errorf("LISTEN-only dump: %+v", got)
	}

	// Exact lookups by inode.
	one := e.unixConverse(nl, flagRequest, 0, lino, udiagShowName, noCookie)
	if len(one) != 1 || one[0].isErr || one[0].ino != lino || one[0].flags != 0 {
		t.Fatalf("lookup of the listener: %+v", one)
	}
	if one = e.unixConverse(nl, flagRequest, 0, lino, 0, one[0].cookie); len(one) != 1 || one[0].isErr {
		t.Errorf("lookup with the socket's cookie: %+v", one)
	}
	for _, c := range []struct {
		name   string
		ino    uint32
		cookie [2]uint32
		errno  unix.Errno
	}{
		{"inode 0", 0, noCookie, unix.EINVAL},
		{"no such inode", 1 << 30, noCookie, unix.ENOENT},
		{"another cookie", lino, [2]uint32{lino + 1, 0}, unix.ESTALE},
	} {
		one := e.unixConverse(nl, flagRequest, 0, c.ino, 0, c.cookie)
		if len(one) != 1 || !one[0].isErr || one[0].errnum != int32(c.errno) {
			t.Errorf("%s: %+v, want %v", c.name, one, c.errno)
		}
	}
}

// TestSockDiagThroughKernel: with a task, sock_diag reads the kernel's
// registered AF_INET provider, as in the Sentry.
func TestSockDiagThroughKernel(t *testing.T) {
	e := newKernelEnv(t)
	lfd, l := e.socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := l.Bind(e.task, sockaddr("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(e.task, 4); err != nil {
		t.Fatal(err)
	}
	name, _ := l.SockName(e.task)
	_, nl := e.socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_SOCK_DIAG)
	req := newMessage(sockDiagByFamily, flagRequest|flagDump, 42, 0, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: allStates}.bytes()).done()
	if _, err := nl.SendMsg(e.task, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	n, _, _, _, err := nl.RecvMsg(e.task, sockettest.Seq(buf), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	msgs := ParseMessages(buf[:n])
	if len(msgs) != 2 || msgs[0].Type != sockDiagByFamily || msgs[1].Type != msgDone {
		t.Fatalf("answer: %+v", msgs)
	}
	p := msgs[0].Payload
	if binary.BigEndian.Uint16(p[4:]) != portOf(name) || binary.LittleEndian.Uint32(p[68:]) != inodeOf(t, lfd) {
		t.Errorf("listener entry %x", p)
	}
}
