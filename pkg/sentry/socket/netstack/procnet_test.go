package netstack

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func procNet(t *testing.T, p *Provider, name string) string {
	t.Helper()
	b, ok := p.ProcNet(name)
	if !ok {
		t.Fatalf("ProcNet(%q) not answered by family %d", name, p.family)
	}
	return string(b)
}

// rowsWith returns the table rows (header excluded) containing substr.
func rowsWith(table, substr string) []string {
	var out []string
	for i, l := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if i > 0 && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func TestProcNetTCP(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	tab := procNet(t, e.v4, "tcp")
	lines := strings.Split(tab, "\n")
	if !strings.HasPrefix(lines[0], "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode") || len(lines[0]) != tcp4Width {
		t.Errorf("header %q (%d chars)", lines[0], len(lines[0]))
	}
	// 127.0.0.1 is 0100007F in Linux's little-endian rendering.
	rows := rowsWith(tab, fmt.Sprintf("0100007F:%04X 00000000:0000 0A ", port))
	if len(rows) != 1 {
		t.Fatalf("listener row missing in\n%s", tab)
	}
	st, _ := l.fd.Inode().Stat(e.ctx, unix.STATX_INO)
	if f := strings.Fields(rows[0]); len(f) < 10 || f[9] != fmt.Sprint(st.Ino) || f[4] != "00000000:00000000" || len(rows[0]) != tcp4Width {
		t.Errorf("listener row %q: want inode %d, empty queues, width %d", rows[0], st.Ino, tcp4Width)
	}

	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", port)); err != nil {
		t.Fatal(err)
	}
	// Before accept the connection counts in the listener's rx_queue.
	waitAcceptable(t, l)
	if rows := rowsWith(procNet(t, e.v4, "tcp"), fmt.Sprintf("0100007F:%04X 00000000:0000 0A 00000000:00000001 ", port)); len(rows) != 1 {
		t.Errorf("listener with one pending connection: rx_queue not 1:\n%s", procNet(t, e.v4, "tcp"))
	}
	a, _ := l.accept()
	c.sendAll([]byte("12345"))
	a.waitFor(1)
	cname, _ := c.SockName(nil)
	tab = procNet(t, e.v4, "tcp")
	// The accepted end has 5 unread bytes.
	rows = rowsWith(tab, fmt.Sprintf("0100007F:%04X 0100007F:%04X 01 00000000:00000005", port, portOf(cname)))
	if len(rows) != 1 {
		t.Errorf("accepted connection row missing in\n%s", tab)
	}
	if rows := rowsWith(tab, fmt.Sprintf("0100007F:%04X 0100007F:%04X 01 ", portOf(cname), port)); len(rows) != 1 {
		t.Errorf("client row missing in\n%s", tab)
	}
	// An IPv4 table does not list IPv6 sockets, and closed sockets go.
	l6, p6 := e.listener(e.v6, "::1")
	_ = l6
	if strings.Contains(tab, fmt.Sprintf(":%04X 00000000:0000 0A", p6)) {
		t.Errorf("IPv6 listener in /proc/net/tcp")
	}
	tab6 := procNet(t, e.v6, "tcp6")
	if !strings.HasPrefix(tab6, "  sl  local_address                         remote_address                        st tx_queue") {
		t.Errorf("tcp6 header: %q", strings.SplitN(tab6, "\n", 2)[0])
	}
	if rows := rowsWith(tab6, fmt.Sprintf("00000000000000000000000001000000:%04X 00000000000000000000000000000000:0000 0A ", p6)); len(rows) != 1 {
		t.Errorf("::1 listener row missing in\n%s", tab6)
	}
	l.close()
	if rows := rowsWith(procNet(t, e.v4, "tcp"), fmt.Sprintf("0100007F:%04X 00000000:0000 0A ", port)); len(rows) != 0 {
		t.Errorf("closed listener still listed: %q", rows)
	}
	if _, ok := e.v4.ProcNet("tcp6"); ok {
		t.Errorf("the AF_INET provider answered tcp6")
	}
}

func TestProcNetUDPDualStack(t *testing.T) {
	e := newEnv(t)
	u := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := u.Bind(nil, inet("::", 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := u.SockName(nil)
	tab := procNet(t, e.v6, "udp6")
	if !strings.HasSuffix(strings.SplitN(tab, "\n", 2)[0], "inode ref pointer drops") {
		t.Errorf("udp6 header %q", strings.SplitN(tab, "\n", 2)[0])
	}
	if rows := rowsWith(tab, fmt.Sprintf("00000000000000000000000000000000:%04X 00000000000000000000000000000000:0000 07 ", portOf(name))); len(rows) != 1 {
		t.Errorf("[::] UDP row missing in\n%s", tab)
	}
	// An AF_INET6 socket on an IPv4 endpoint shows its mapped address.
	c := e.socket(e.v6, unix.SOCK_DGRAM, 0)
	if err := c.connect(inet("::ffff:127.0.0.1", portOf(name))); err != nil {
		t.Fatal(err)
	}
	cname, _ := c.SockName(nil)
	tab = procNet(t, e.v6, "udp6")
	if rows := rowsWith(tab, fmt.Sprintf("0000000000000000FFFF00000100007F:%04X 0000000000000000FFFF00000100007F:%04X 01 ", portOf(cname), portOf(name))); len(rows) != 1 {
		t.Errorf("mapped connected row missing in\n%s", tab)
	}
	u4 := procNet(t, e.v4, "udp")
	if l := strings.SplitN(u4, "\n", 2)[0]; len(l) != udp4Width || !strings.HasPrefix(l, "   sl  local_address") {
		t.Errorf("udp header %q (%d chars)", l, len(l))
	}
}

func TestProcNetInterfaces(t *testing.T) {
	e := newEnv(t)
	before := procNet(t, e.v4, "dev")
	if !strings.HasPrefix(before, "Inter-|   Receive ") || len(rowsWith(before, "    lo: ")) != 1 {
		t.Fatalf("dev:\n%s", before)
	}
	// Loopback traffic shows in the counters.
	u := e.socket(e.v4, unix.SOCK_DGRAM, 0)
	if err := u.Bind(nil, inet("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	name, _ := u.SockName(nil)
	if _, err := u.send(make([]byte, 100), name, 0); err != nil {
		t.Fatal(err)
	}
	u.recvWait(200, 0)
	f := strings.Fields(rowsWith(procNet(t, e.v4, "dev"), "lo:")[0])
	// lo: rxbytes rxpackets ... txbytes(9) txpackets(10)
	if f[1] != "128" || f[2] != "1" || f[9] != "128" || f[10] != "1" {
		t.Errorf("lo counters after one 100-byte datagram (128 bytes with IPv4+UDP headers): %q", f)
	}
	if got, want := procNet(t, e.v6, "if_inet6"), "00000000000000000000000000000001 01 80 10 80       lo\n"; got != want {
		t.Errorf("if_inet6 = %q, want %q", got, want)
	}
	route := procNet(t, e.v4, "route")
	if lines := strings.Split(strings.TrimRight(route, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "Iface\tDestination\tGateway \tFlags") || len(lines[0]) != routeWidth {
		t.Errorf("route with loopback only = %q, want the header alone", route)
	}
	snmp := procNet(t, e.v4, "snmp")
	for _, p := range []string{"Ip: Forwarding", "Ip: 2 64 ", "Tcp: RtoAlgorithm", "Udp: InDatagrams"} {
		if !strings.Contains(snmp, p) {
			t.Errorf("snmp lacks %q:\n%s", p, snmp)
		}
	}
}

func waitAcceptable(t *testing.T, l *tsock) {
	t.Helper()
	l.waitFor(waiter.EventIn)
}

func TestTCPInfoFields(t *testing.T) {
	e := newEnv(t)
	c, a := connectedPair(t, e)
	c.sendAll([]byte("ping"))
	a.recvWait(4, 0)
	b, err := c.GetSockOpt(nil, unix.IPPROTO_TCP, unix.TCP_INFO, 104)
	if err != nil || len(b) != 104 {
		t.Fatalf("TCP_INFO = %d bytes, %v", len(b), err)
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	if b[0] != 1 { // TCP_ESTABLISHED
		t.Errorf("tcpi_state = %d", b[0])
	}
	if rto := u32(8); rto < 200000 {
		t.Errorf("tcpi_rto = %dus, below the 200ms minimum", rto)
	}
	if mss := u32(16); mss == 0 || u32(20) != mss {
		t.Errorf("tcpi_snd_mss %d, tcpi_rcv_mss %d", mss, u32(20))
	}
	if cwnd := u32(80); cwnd < 1 {
		t.Errorf("tcpi_snd_cwnd = %d", cwnd)
	}
	if u32(100) != 0 || b[2] != 0 {
		t.Errorf("retransmissions on a lossless loopback: total %d, current %d", u32(100), b[2])
	}
}
