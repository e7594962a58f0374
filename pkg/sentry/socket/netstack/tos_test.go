package netstack

import (
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func epTOS(t *testing.T, s *tsock) int {
	t.Helper()
	v, err := s.Socket.(*sock).endpoint().GetSockOpt(tcpip.TOSOption)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTOSReachesEndpoints(t *testing.T) {
	e := newEnv(t)
	u := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := u.setInt(unix.IPPROTO_IP, unix.IP_TOS, 0x10); err != nil {
		t.Fatal(err)
	}
	if got := epTOS(t, u); got != 0x10 {
		t.Errorf("AF_INET IP_TOS 0x10: endpoint TOS %#x", got)
	}
	// AF_INET6: IPV6_TCLASS marks IPv6 packets; IP_TOS takes over once
	// the socket moves to IPv4 for a mapped peer.
	u6 := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := u6.setInt(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0x20); err != nil {
		t.Fatal(err)
	}
	if err := u6.setInt(unix.IPPROTO_IP, unix.IP_TOS, 0x08); err != nil {
		t.Fatal(err)
	}
	if got := epTOS(t, u6); got != 0x20 {
		t.Errorf("AF_INET6 IPV6_TCLASS 0x20: endpoint TOS %#x", got)
	}
	if err := u6.connect(inet("::ffff:127.0.0.1", 9)); err != nil {
		t.Fatal(err)
	}
	if got := epTOS(t, u6); got != 0x08 {
		t.Errorf("AF_INET6 socket on IPv4: endpoint TOS %#x, want IP_TOS 0x08", got)
	}
}

func TestSOTimestampOnDatagrams(t *testing.T) {
	e := newEnv(t)
	u := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := u.setInt(unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1); err != nil {
		t.Fatal(err)
	}
	if v := u.getInt(unix.SOL_SOCKET, unix.SO_TIMESTAMP); v != 1 {
		t.Errorf("SO_TIMESTAMP reads back %d", v)
	}
	// Bound to [::] after the option: both halves stamp arrivals.
	if err := u.Bind(nil, inet("::", 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := u.SockName(nil)
	c := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	before := time.Now()
	if _, err := c.send([]byte("t"), inet("127.0.0.1", portOf(name)), 0); err != nil {
		t.Fatal(err)
	}
	u.waitFor(waiter.EventIn)
	time.Sleep(10 * time.Millisecond)
	buf := make([]byte, 4)
	_, _, _, cm, err := u.RecvMsg(nil, sockettest.Seq(buf), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if !cm.HasTimestamp || cm.Timestamp.Before(before) || time.Since(cm.Timestamp) < 10*time.Millisecond {
		t.Errorf("timestamp %v (has %v): want the arrival time, after %v and before the read", cm.Timestamp, cm.HasTimestamp, before)
	}
	if err := u.setInt(unix.SOL_SOCKET, unix.SO_TIMESTAMP, 0); err != nil {
		t.Fatal(err)
	}
	c.send([]byte("u"), inet("127.0.0.1", portOf(name)), 0)
	u.waitFor(waiter.EventIn)
	if _, _, _, cm, _ := u.RecvMsg(nil, sockettest.Seq(buf), 0, false); cm.HasTimestamp {
		t.Error("timestamp after SO_TIMESTAMP was cleared")
	}
}

func TestTCPCongestionSelectsCubic(t *testing.T) {
	e := newEnv(t)
	s := e.socket(e.v4, unix.SOCK_STREAM, 0)
	name := func() string {
		b, err := s.GetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_CONGESTION, 16)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range b {
			if c == 0 {
				return string(b[:i])
			}
		}
		return string(b)
	}
	if got := name(); got != "reno" {
		t.Errorf("default TCP_CONGESTION %q", got)
	}
	if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_CONGESTION, []byte("cubic\x00junk")); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "cubic" {
		t.Errorf("TCP_CONGESTION after setting cubic = %q", got)
	}
	if v, _ := s.Socket.(*sock).endpoint().GetSockOpt(tcpip.CongestionControlOption); v != tcpip.CongestionCubic {
		t.Errorf("endpoint algorithm %d, want CUBIC", v)
	}
	if err := s.SetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_CONGESTION, []byte("reno")); err != nil || name() != "reno" {
		t.Errorf("back to reno: %v, %q", err, name())
	}
}
