package hostinet

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// udpPair is a UDP receiver bound to addr's loopback and a sender
// connected to it.
func (e *env) udpPair(p *Provider, rx, tx []byte) (r, s *tsock) {
	e.t.Helper()
	r = e.socket(p, unix.SOCK_DGRAM, 0)
	if err := r.Bind(nil, rx); err != nil {
		e.t.Fatal(err)
	}
	name, err := r.SockName(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	binary.BigEndian.PutUint16(tx[2:], portOf(name))
	s = e.socket(p, unix.SOCK_DGRAM, 0)
	if err := s.Connect(nil, tx); err != nil {
		e.t.Fatal(err)
	}
	return r, s
}

func (s *tsock) setInt(t *testing.T, level, name, v int) {
	t.Helper()
	if err := s.SetSockOpt(nil, level, name, socket.Int32Bytes(int32(v))); err != nil {
		t.Fatalf("setsockopt(%d, %d): %v", level, name, err)
	}
}

// recvWithControl waits for a datagram and returns it with its control
// messages keyed by level and type.
func (s *tsock) recvWithControl(t *testing.T, flags int) ([]byte, int, map[[2]int32][]byte) {
	t.Helper()
	buf := make([]byte, 2048)
	for {
		n, mflags, _, cm, err := s.RecvMsg(nil, sockettest.Seq(buf), flags, true)
		if errors.Is(err, unix.EAGAIN) {
			s.wait(waiter.EventIn | waiter.EventErr)
			continue
		}
		if err != nil {
			t.Fatalf("recvmsg: %v", err)
		}
		out := map[[2]int32][]byte{}
		for _, m := range cm.Protocol {
			out[[2]int32{m.Level, m.Type}] = m.Data
		}
		return buf[:n], mflags, out
	}
}

func hostDefaultTTL(t *testing.T) uint32 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_default_ttl")
	if err != nil {
		return 64
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

func loIndex(t *testing.T) uint32 {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no host lo: %v", err)
	}
	return uint32(lo.Index)
}

// TestControlMessagesIPv4: IP_PKTINFO, IP_TTL, IP_TOS and SO_TIMESTAMP
// come through for a UDP datagram over the host's loopback, and IP_TOS
// sent as a control message is what the receiver sees.
func TestControlMessagesIPv4(t *testing.T) {
	e := newEnv(t)
	r, s := e.udpPair(e.v4, inet4(loopback4, 0), inet4(loopback4, 0))
	for _, o := range [][2]int{
		{unix.IPPROTO_IP, unix.IP_PKTINFO}, {unix.IPPROTO_IP, unix.IP_RECVTTL},
		{unix.IPPROTO_IP, unix.IP_RECVTOS}, {unix.SOL_SOCKET, unix.SO_TIMESTAMP},
	} {
		r.setInt(t, o[0], o[1], 1)
	}
	before := time.Now()
	tos := []socket.ControlMessage{{Level: unix.IPPROTO_IP, Type: unix.IP_TOS, Data: socket.Int32Bytes(0x28)}}
	if _, err := s.SendMsg(nil, sockettest.Seq([]byte("ping")), nil, 0, socket.ControlMessages{Protocol: tos}); err != nil {
		t.Fatalf("sendmsg with IP_TOS: %v", err)
	}
	data, _, cm := r.recvWithControl(t, 0)
	if string(data) != "ping" {
		t.Fatalf("got %q", data)
	}
	pi := cm[[2]int32{unix.IPPROTO_IP, unix.IP_PKTINFO}]
	if len(pi) != 12 || binary.LittleEndian.Uint32(pi) != loIndex(t) || [4]byte(pi[8:12]) != loopback4 || [4]byte(pi[4:8]) != loopback4 {
		t.Errorf("IP_PKTINFO %x, want ifindex %d and 127.0.0.1", pi, loIndex(t))
	}
	if ttl := cm[[2]int32{unix.IPPROTO_IP, unix.IP_TTL}]; len(ttl) != 4 || binary.LittleEndian.Uint32(ttl) != hostDefaultTTL(t) {
		t.Errorf("IP_TTL %x, want %d", ttl, hostDefaultTTL(t))
	}
	if got := cm[[2]int32{unix.IPPROTO_IP, unix.IP_TOS}]; len(got) != 1 || got[0] != 0x28 {
		t.Errorf("IP_TOS %x, want 28", got)
	}
	ts := cm[[2]int32{unix.SOL_SOCKET, unix.SO_TIMESTAMP}]
	if len(ts) != 16 {
		t.Fatalf("SCM_TIMESTAMP %x", ts)
	}
	at := time.Unix(int64(binary.LittleEndian.Uint64(ts)), int64(binary.LittleEndian.Uint64(ts[8:]))*1000)
	if at.Before(before.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("SCM_TIMESTAMP %v, not near %v", at, before)
	}
	if len(cm) != 4 {
		t.Errorf("%d control messages, want 4: %v", len(cm), cm)
	}
}

// TestTimestampNS: SO_TIMESTAMPNS gives a struct timespec.
func TestTimestampNS(t *testing.T) {
	e := newEnv(t)
	r, s := e.udpPair(e.v4, inet4(loopback4, 0), inet4(loopback4, 0))
	r.setInt(t, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	before := time.Now()
	s.sendAll([]byte("x"))
	_, _, cm := r.recvWithControl(t, 0)
	ts := cm[[2]int32{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}]
	if len(ts) != 16 {
		t.Fatalf("SCM_TIMESTAMPNS %x (all: %v)", ts, cm)
	}
	at := time.Unix(int64(binary.LittleEndian.Uint64(ts)), int64(binary.LittleEndian.Uint64(ts[8:])))
	if d := at.Sub(before); d < -time.Second || d > 5*time.Second {
		t.Errorf("SCM_TIMESTAMPNS %v is %v from the send", at, d)
	}
}

// TestControlMessagesIPv6: IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS,
// with the hop limit and traffic class chosen by the sender's control
// messages.
func TestControlMessagesIPv6(t *testing.T) {
	e := newEnv(t)
	lo6 := [16]byte{15: 1}
	probe, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	err = unix.Bind(probe, &unix.SockaddrInet6{Addr: lo6})
	unix.Close(probe)
	if err != nil {
		t.Skipf("no ::1 on the host: %v", err)
	}
	r, s := e.udpPair(e.v6, inet6(lo6, 0), inet6(lo6, 0))
	for _, o := range []int{unix.IPV6_RECVPKTINFO, unix.IPV6_RECVHOPLIMIT, unix.IPV6_RECVTCLASS} {
		r.setInt(t, unix.IPPROTO_IPV6, o, 1)
	}
	ctl := []socket.ControlMessage{
		{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_HOPLIMIT, Data: socket.Int32Bytes(7)},
		{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_TCLASS, Data: socket.Int32Bytes(0x20)},
	}
	if _, err := s.SendMsg(nil, sockettest.Seq([]byte("six")), nil, 0, socket.ControlMessages{Protocol: ctl}); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
	_, _, cm := r.recvWithControl(t, 0)
	pi := cm[[2]int32{unix.IPPROTO_IPV6, unix.IPV6_PKTINFO}]
	if len(pi) != 20 || [16]byte(pi[:16]) != lo6 || binary.LittleEndian.Uint32(pi[16:]) != loIndex(t) {
		t.Errorf("IPV6_PKTINFO %x", pi)
	}
	if hl := cm[[2]int32{unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT}]; len(hl) != 4 || binary.LittleEndian.Uint32(hl) != 7 {
		t.Errorf("IPV6_HOPLIMIT %x, want 7", hl)
	}
	if tc := cm[[2]int32{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}]; len(tc) != 4 || binary.LittleEndian.Uint32(tc) != 0x20 {
		t.Errorf("IPV6_TCLASS %x, want 0x20", tc)
	}
}

// TestRecvErrQueue: with IP_RECVERR, the ICMP port unreachable for a
// datagram to a closed port is read with MSG_ERRQUEUE as a
// sock_extended_err naming 127.0.0.1.
func TestRecvErrQueue(t *testing.T) {
	e := newEnv(t)
	// A port nobody listens on: bind, note it, close.
	tmp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(tmp.LocalAddr().(*net.UDPAddr).Port)
	tmp.Close()
	s := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	s.setInt(t, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	if err := s.Connect(nil, inet4(loopback4, port)); err != nil {
		t.Fatal(err)
	}
	s.sendAll([]byte("anyone?"))
	s.wait(waiter.EventErr)
	data, mflags, cm := s.recvWithControl(t, unix.MSG_ERRQUEUE)
	if string(data) != "anyone?" || mflags&unix.MSG_ERRQUEUE == 0 {
		t.Errorf("error queue gave %q flags %#x", data, mflags)
	}
	ee := cm[[2]int32{unix.IPPROTO_IP, unix.IP_RECVERR}]
	if len(ee) != 32 {
		t.Fatalf("IP_RECVERR %x (all: %v)", ee, cm)
	}
	const originICMP = 2
	if unix.Errno(binary.LittleEndian.Uint32(ee)) != unix.ECONNREFUSED || ee[4] != originICMP || ee[5] != 3 || ee[6] != 3 {
		t.Errorf("sock_extended_err %x: want ECONNREFUSED from ICMP 3/3", ee[:16])
	}
	if binary.LittleEndian.Uint16(ee[16:]) != unix.AF_INET || [4]byte(ee[20:24]) != loopback4 {
		t.Errorf("offender %x, want 127.0.0.1", ee[16:])
	}
}

func TestSendControlChecks(t *testing.T) {
	i32 := func(v int32) []byte { return socket.Int32Bytes(v) }
	for _, c := range []struct {
		name   string
		family int
		stype  int
		msg    socket.ControlMessage
		ok     bool
	}{
		{"ttl 0", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TTL, Data: i32(0)}, false},
		{"ttl 255", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TTL, Data: i32(255)}, true},
		{"ttl short", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TTL, Data: []byte{9}}, false},
		{"tos byte", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TOS, Data: []byte{0x10}}, true},
		{"tos 256", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TOS, Data: i32(256)}, false},
		{"tos 2 bytes", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TOS, Data: []byte{1, 0}}, false},
		{"pktinfo 11", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_PKTINFO, Data: make([]byte, 11)}, false},
		{"pktinfo", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_PKTINFO, Data: make([]byte, 12)}, true},
		{"IP_RETOPTS not forwarded", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_RETOPTS, Data: make([]byte, 4)}, false},
		{"ipv6 level on AF_INET ignored", unix.AF_INET, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IPV6, Type: 999, Data: nil}, true},
		{"hoplimit -1", unix.AF_INET6, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_HOPLIMIT, Data: i32(-1)}, true},
		{"hoplimit 256", unix.AF_INET6, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_HOPLIMIT, Data: i32(256)}, false},
		{"tclass -2", unix.AF_INET6, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_TCLASS, Data: i32(-2)}, false},
		{"in6_pktinfo short", unix.AF_INET6, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_PKTINFO, Data: make([]byte, 19)}, false},
		{"unknown ipv6 type", unix.AF_INET6, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.IPPROTO_IPV6, Type: unix.IPV6_RTHDR, Data: make([]byte, 8)}, false},
		{"other level ignored", unix.AF_INET6, unix.SOCK_DGRAM, socket.ControlMessage{Level: unix.SOL_UDP, Type: 103, Data: make([]byte, 2)}, true},
		{"stream ignores all", unix.AF_INET, unix.SOCK_STREAM, socket.ControlMessage{Level: unix.IPPROTO_IP, Type: unix.IP_TTL, Data: i32(0)}, true},
	} {
		out, err := sendControl(c.family, c.stype, []socket.ControlMessage{c.msg})
		if c.ok != (err == nil) {
			t.Errorf("%s: err %v", c.name, err)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", c.name, err)
		}
		if len(out)%8 != 0 {
			t.Errorf("%s: encoding of %d bytes is not aligned", c.name, len(out))
		}
	}
}

// TestRecvControlRebuilds: messages outside the allowlist, or of the
// wrong size, are dropped; the others are copies, not host memory.
func TestRecvControlRebuilds(t *testing.T) {
	var b []byte
	add := func(level, typ int32, data []byte) {
		h := make([]byte, 16)
		binary.LittleEndian.PutUint64(h, uint64(16+len(data)))
		binary.LittleEndian.PutUint32(h[8:], uint32(level))
		binary.LittleEndian.PutUint32(h[12:], uint32(typ))
		b = append(b, h...)
		b = append(b, data...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	add(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{3, 0, 0, 0})      // never forwarded
	add(unix.IPPROTO_IP, unix.IP_TTL, []byte{64, 0, 0, 0})         // kept
	add(unix.IPPROTO_IP, unix.IP_TTL, []byte{64, 0})               // wrong size
	add(unix.IPPROTO_IP, unix.IP_OPTIONS, []byte{1, 1, 1, 1})      // not allowed
	add(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, []byte{5, 0, 0, 0}) // kept
	add(unix.IPPROTO_IP, unix.IP_RECVERR, append(make([]byte, 16), // kept, offender rebuilt
		2, 0, 0, 0, 127, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef))
	got := recvControl(b)
	if len(got) != 3 {
		t.Fatalf("kept %d messages, want 3: %+v", len(got), got)
	}
	if got[0].Type != unix.IP_TTL || got[1].Type != unix.IPV6_HOPLIMIT || got[2].Type != unix.IP_RECVERR {
		t.Errorf("order or types wrong: %+v", got)
	}
	if off := got[2].Data[16:]; binary.LittleEndian.Uint16(off) != unix.AF_INET || [4]byte(off[4:8]) != loopback4 || [8]byte(off[8:]) != [8]byte{} {
		t.Errorf("offender not rebuilt: %x", off)
	}
	b[16+16] = 99 // the host buffer changing later must not show
	if got[0].Data[0] != 64 {
		t.Errorf("a kept message aliases the host buffer")
	}
}

// FuzzRecvControl: any host buffer yields only allowed messages of
// their exact sizes.
func FuzzRecvControl(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 64, 0, 0, 0})
	f.Add(make([]byte, 64))
	sizes := map[[2]int32][]int{
		{unix.SOL_SOCKET, unix.SO_TIMESTAMP}:    {16},
		{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}:  {16},
		{unix.IPPROTO_IP, unix.IP_PKTINFO}:      {12},
		{unix.IPPROTO_IP, unix.IP_TTL}:          {4},
		{unix.IPPROTO_IP, unix.IP_TOS}:          {1},
		{unix.IPPROTO_IP, unix.IP_RECVERR}:      {32},
		{unix.IPPROTO_IPV6, unix.IPV6_PKTINFO}:  {20},
		{unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT}: {4},
		{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:   {4},
		{unix.IPPROTO_IPV6, unix.IPV6_RECVERR}:  {44},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range recvControl(b) {
			ok := false
			for _, n := range sizes[[2]int32{m.Level, m.Type}] {
				ok = ok || n == len(m.Data)
			}
			if !ok {
				t.Fatalf("message %d/%d of %d bytes passed", m.Level, m.Type, len(m.Data))
			}
		}
	})
}

// FuzzSendControl: no input panics the encoder, and what it accepts is
// a well-formed cmsg buffer.
func FuzzSendControl(f *testing.F) {
	f.Add(int32(unix.IPPROTO_IP), int32(unix.IP_TOS), []byte{1}, true)
	f.Add(int32(unix.IPPROTO_IPV6), int32(unix.IPV6_PKTINFO), make([]byte, 20), false)
	f.Fuzz(func(t *testing.T, level, typ int32, data []byte, v4 bool) {
		fam := unix.AF_INET6
		if v4 {
			fam = unix.AF_INET
		}
		out, err := sendControl(fam, unix.SOCK_DGRAM, []socket.ControlMessage{{Level: level, Type: typ, Data: data}})
		if err != nil {
			return
		}
		for b := out; ; {
			l, ty, _, rest, ok := nextCmsg(b)
			if !ok {
				break
			}
			b = rest
			if l != level || ty != typ {
				t.Fatalf("encoded %d/%d for %d/%d", l, ty, level, typ)
			}
		}
	})
}
