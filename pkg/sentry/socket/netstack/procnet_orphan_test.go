package netstack

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"golang.org/x/sys/unix"
)

// waitRow polls /proc/net/tcp until exactly one row contains substr.
func waitRow(t *testing.T, p *Provider, substr string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tab := procNet(t, p, "tcp")
		if rows := rowsWith(tab, substr); len(rows) == 1 {
			return strings.Fields(rows[0])
		}
		if time.Now().After(deadline) {
			t.Fatalf("no row with %q in\n%s", substr, tab)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// findConn returns the entry of conns from lport to rport.
func findConn(conns []ConnEntry, lport, rport uint16) *ConnEntry {
	for i := range conns {
		if conns[i].Local.Port == lport && conns[i].Remote.Port == rport {
			return &conns[i]
		}
	}
	return nil
}

func TestProcNetTimeWaitAfterClose(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", port)); err != nil {
		t.Fatal(err)
	}
	a, _ := l.accept()
	cname, _ := c.SockName(nil)
	cport := portOf(cname)
	// The client closes first and ends in TIME-WAIT once the server
	// closes too; it is listed with no socket: uid and inode 0.
	c.close()
	a.close()
	f := waitRow(t, e.v4, fmt.Sprintf("0100007F:%04X 0100007F:%04X 06 ", cport, port))
	if f[4] != "00000000:00000000" || f[7] != "0" || f[9] != "0" {
		t.Errorf("TIME-WAIT row %q: want empty queues, uid 0, inode 0", f)
	}
	tr, when, ok := strings.Cut(f[5], ":")
	ticks, err := strconv.ParseUint(when, 16, 64)
	if !ok || tr != "03" || err != nil || ticks == 0 || ticks > 6000 {
		t.Errorf("TIME-WAIT timer %q: want 03 and at most 60 s (6000 ticks)", f[5])
	}
	ce := findConn(e.v4.Connections(unix.IPPROTO_TCP), cport, port)
	if ce == nil || ce.State != 6 || !ce.TimeWait || ce.Timer != 3 || ce.Expires <= 0 || ce.Expires > tcp.TimeWaitDuration {
		t.Fatalf("Connections: %+v", ce)
	}
	if ce.TCPInfo() == nil || ce.Shutdown() != rcvShutdown|sendShutdown {
		t.Errorf("TIME-WAIT entry: tcp_info %v, shutdown %d", ce.TCPInfo(), ce.Shutdown())
	}
	// Not in the IPv6 table.
	if strings.Contains(procNet(t, e.v6, "tcp6"), fmt.Sprintf(":%04X", cport)) {
		t.Errorf("IPv4 TIME-WAIT connection in /proc/net/tcp6")
	}
}

func TestProcNetListenerQueues(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1") // backlog 16
	l.fd.Impl().(*sock).uid = 1000
	for range 3 {
		c := e.socket(e.v4, unix.SOCK_STREAM, 0)
		if err := c.connect(inet("127.0.0.1", port)); err != nil {
			t.Fatal(err)
		}
	}
	f := waitRow(t, e.v4, fmt.Sprintf("0100007F:%04X 00000000:0000 0A 00000000:00000003 ", port))
	st, _ := l.fd.Inode().Stat(e.ctx, unix.STATX_INO)
	if f[9] != fmt.Sprint(st.Ino) || f[5] != "00:00000000" {
		t.Errorf("listener row %q", f)
	}
	conns := e.v4.Connections(unix.IPPROTO_TCP)
	ln := findConn(conns, port, 0)
	if ln == nil || ln.RecvQueue != 3 || ln.Backlog != 16 {
		t.Fatalf("listener entry %+v: want RecvQueue 3, Backlog 16", ln)
	}
	// The three connections waiting in the accept queue are listed with
	// no socket, as Linux lists them.
	pending := 0
	for _, ce := range conns {
		if ce.Local.Port == port && ce.Remote.Port != 0 {
			if ce.Inode != 0 || ce.State != 1 || ce.UID != 1000 {
				t.Errorf("queued connection %+v: want ESTABLISHED, inode 0, the listener's uid", ce)
			}
			pending++
		}
	}
	if pending != 3 {
		t.Errorf("%d queued connections listed, want 3", pending)
	}
}

// A connection closed while its data waits on a zero window lingers in
// FIN-WAIT-1 with no socket: inode 0, the closed socket's uid, and the
// zero-window probe timer.
func TestProcNetClosedConnectionLingers(t *testing.T) {
	e := newEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	if err := l.setInt(unix.SOL_SOCKET, unix.SO_RCVBUF, 4096); err != nil {
		t.Fatal(err)
	}
	c := e.socket(e.v4, unix.SOCK_STREAM, 0)
	if err := c.connect(inet("127.0.0.1", port)); err != nil {
		t.Fatal(err)
	}
	a, _ := l.accept()
	_ = a
	cname, _ := c.SockName(nil)
	cport := portOf(cname)
	if n, err := c.send(make([]byte, 64<<10), nil, unix.MSG_DONTWAIT); err != nil || n == 0 {
		t.Fatalf("send = %d, %v", n, err)
	}
	c.fd.Impl().(*sock).uid = 1000
	c.close()
	f := waitRow(t, e.v4, fmt.Sprintf("0100007F:%04X 0100007F:%04X 04 ", cport, port))
	tx, _, _ := strings.Cut(f[4], ":")
	if n, _ := strconv.ParseUint(tx, 16, 64); n == 0 || f[7] != "1000" || f[9] != "0" {
		t.Errorf("lingering row %q: want unsent data, uid 1000, inode 0", f)
	}
	ce := findConn(e.v4.Connections(unix.IPPROTO_TCP), cport, port)
	if ce == nil || ce.TimeWait || ce.UID != 1000 || (ce.Timer != 4 && ce.Timer != 1) {
		t.Fatalf("lingering entry %+v: want uid 1000 and a probe or retransmission timer", ce)
	}
}
