package hostinet

import (
	"bytes"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"encoding/binary"
	"syscall"
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func nlAddr(pid, groups uint32) []byte {
	b := make([]byte, sizeofSockaddrNL)
	binary.LittleEndian.PutUint16(b, unix.AF_NETLINK)
	binary.LittleEndian.PutUint32(b[4:], pid)
	binary.LittleEndian.PutUint32(b[8:], groups)
	return b
}

// nlRequest is one netlink message of typ and flags with a zeroed body
// of bodyLen bytes.
func nlRequest(typ, flags uint16, bodyLen int) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+bodyLen)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint16(b[4:], typ)
	binary.LittleEndian.PutUint16(b[6:], flags)
	binary.LittleEndian.PutUint32(b[8:], 1)
	return b
}

// TestNetlinkDumpsHostLinks: RTM_GETLINK answers with the host's links.
func TestNetlinkDumpsHostLinks(t *testing.T) {
	e := newEnv(t)
	s := e.socket(NewNetlinkProvider(e.v4), unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err := s.Bind(nil, nlAddr(0, 0)); err != nil {
		t.Fatal(err)
	}
	req := nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, unix.SizeofIfInfomsg)
	if _, err := s.SendMsg(nil, sockettest.Seq(req), nlAddr(0, 0), 0, socket.ControlMessages{}); err != nil {
		t.Fatalf("RTM_GETLINK dump: %v", err)
	}
	var all []byte
	buf := make([]byte, 32<<10)
	for !bytes.Contains(all, []byte{unix.NLMSG_DONE, 0}) {
		n, _, _, _, err := s.RecvMsg(nil, sockettest.Seq(buf), 0, false)
		if err == unix.EAGAIN {
			s.wait(waiter.EventIn)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, buf[:n]...)
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 0 && msgs[len(msgs)-1].Header.Type == unix.NLMSG_DONE {
			break
		}
	}
	if !bytes.Contains(all, []byte("lo\x00")) {
		t.Fatal("the host's link dump does not name lo")
	}
}

func TestNetlinkRefusesWrites(t *testing.T) {
	e := newEnv(t)
	np := NewNetlinkProvider(e.v4)
	if _, err := np.NewSocket(e.ctx, unix.SOCK_RAW, unix.NETLINK_AUDIT); err != unix.EPROTONOSUPPORT {
		t.Errorf("NETLINK_AUDIT: %v, want EPROTONOSUPPORT", err)
	}
	s := e.socket(np, unix.SOCK_RAW, unix.NETLINK_ROUTE)
	if err := s.Bind(nil, nlAddr(0, 1<<(unix.RTNLGRP_LINK-1))); err != unix.EPERM {
		t.Errorf("bind to a multicast group: %v, want EPERM", err)
	}
	if err := s.Connect(nil, nlAddr(1234, 0)); err != unix.EPERM {
		t.Errorf("connect to a host process: %v, want EPERM", err)
	}
	for _, typ := range []uint16{unix.RTM_NEWLINK, unix.RTM_DELADDR, unix.RTM_NEWROUTE, unix.RTM_SETLINK} {
		req := nlRequest(typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK, unix.SizeofIfInfomsg)
		if _, err := s.SendMsg(nil, sockettest.Seq(req), nil, 0, socket.ControlMessages{}); err != unix.EPERM {
			t.Errorf("message type %d: %v, want EPERM", typ, err)
		}
	}
	// A read-only request followed by a write is refused as a whole.
	two := append(nlRequest(unix.RTM_GETADDR, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 8),
		nlRequest(unix.RTM_DELLINK, unix.NLM_F_REQUEST, unix.SizeofIfInfomsg)...)
	if _, err := s.SendMsg(nil, sockettest.Seq(two), nil, 0, socket.ControlMessages{}); err != unix.EPERM {
		t.Errorf("GETADDR+DELLINK: %v, want EPERM", err)
	}
	if err := s.SetSockOpt(nil, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, socket.Int32Bytes(unix.RTNLGRP_LINK)); err != unix.ENOPROTOOPT {
		t.Errorf("NETLINK_ADD_MEMBERSHIP: %v, want ENOPROTOOPT", err)
	}
}

func TestCheckNetlinkRequest(t *testing.T) {
	get := nlRequest(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 12)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"one dump", get, nil},
		{"two dumps", append(append([]byte(nil), get...), get...), nil},
		{"zeroed space after the message", append(append([]byte(nil), get...), make([]byte, 100)...), nil},
		{"a write after garbage is never reached", append(append(append([]byte(nil), get...), 0, 0, 0, 0), nlRequest(unix.RTM_NEWLINK, unix.NLM_F_REQUEST, 16)...), nil},
		{"empty", nil, unix.EINVAL},
		{"short header", get[:10], unix.EINVAL},
		{"length past the end", get[:20], unix.EINVAL},
		{"length below header", func() []byte { b := nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST, 0); b[0] = 4; return b }(), unix.EINVAL},
		{"no NLM_F_REQUEST", nlRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP, 16), unix.EPERM},
		{"NLMSG_NOOP", nlRequest(unix.NLMSG_NOOP, unix.NLM_F_REQUEST, 0), unix.EPERM},
	} {
		if err := checkNetlinkRequest(tc.b); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzCheckNetlinkRequest: any bytes get an answer, never a panic, and an
// accepted buffer holds only read-only requests.
func FuzzCheckNetlinkRequest(f *testing.F) {
	f.Add(nlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 16))
	f.Add(nlRequest(unix.RTM_NEWADDR, unix.NLM_F_REQUEST, 8))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 18, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkNetlinkRequest(b) != nil {
			return
		}
		// Walk it as the kernel does (netlink_rcv_skb).
		for len(b) >= 16 {
			l := binary.LittleEndian.Uint32(b)
			if l < 16 || uint64(l) > uint64(len(b)) {
				return
			}
			if typ := binary.LittleEndian.Uint16(b[4:]); !readOnlyRequests[typ] {
				t.Fatalf("accepted message type %d", typ)
			}
			b = b[min(int((l+3)&^3), len(b)):]
		}
	})
}
