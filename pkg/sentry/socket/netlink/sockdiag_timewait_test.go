package netlink

import (
	"context"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

const (
	stateTimeWait = 6
	stateListen   = 10
)

func TestSockDiagTimeWait(t *testing.T) {
	e := newDiagEnv(t)
	l, port := e.listener(e.v4, "127.0.0.1")
	// The client is closed by hand, so it is not wrapped.
	cfd, err := e.v4.NewSocket(e.ctx, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := cfd.Impl().(socket.Socket)
	if err := c.Connect(nil, sockaddr("127.0.0.1", port)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		t.Fatal(err)
	}
	wait(t, c, waiter.EventOut)
	wait(t, l, waiter.EventIn)
	afd, _, err := l.Accept(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := c.SockName(nil)
	cport := portOf(name)
	cfd.DecRef(context.Background()) // close(2): FIN from the client
	afd.DecRef(context.Background())

	nl := e.diagSock()
	var d *diagEntry
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: 1 << stateTimeWait, ext: 0xff})
		if d = find(got, cport, port); d != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TIME-WAIT connection %d→%d in %+v", cport, port, got)
		}
	}
	if d.state != stateTimeWait || d.timer != 3 || d.expires == 0 || d.expires > uint32(tcp.TimeWaitDuration.Milliseconds()) {
		t.Errorf("TIME-WAIT entry: state %d timer %d expires %d ms", d.state, d.timer, d.expires)
	}
	if d.uid != 0 || d.inode != 0 || d.rqueue != 0 || d.wqueue != 0 || d.retrans != 0 {
		t.Errorf("TIME-WAIT entry: uid %d inode %d queues %d/%d retrans %d, want all 0", d.uid, d.inode, d.rqueue, d.wqueue, d.retrans)
	}
	if len(d.attrs) != 0 {
		t.Errorf("TIME-WAIT entry has attributes %v; Linux sends none", d.attrs)
	}
	// The exact lookup finds it too.
	got := converse(t, nl, sockDiagByFamily, flagRequest, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP,
		sport: cport, dport: port, src: "127.0.0.1", dst: "127.0.0.1", cookie: noCookie}.bytes())
	if len(got) != 1 || got[0].state != stateTimeWait {
		t.Errorf("lookup of the TIME-WAIT connection: %+v", got)
	}
}

func TestSockDiagListenerQueues(t *testing.T) {
	e := newDiagEnv(t)
	l := e.socket(e.v4, unix.SOCK_STREAM)
	if err := l.Bind(nil, sockaddr("127.0.0.1", 0)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(nil, 7); err != nil {
		t.Fatal(err)
	}
	port := l.port(t)
	for range 3 {
		c := e.socket(e.v4, unix.SOCK_STREAM)
		if err := c.Connect(nil, sockaddr("127.0.0.1", port)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			t.Fatal(err)
		}
		wait(t, c, waiter.EventOut)
	}
	nl := e.diagSock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got := dump(t, nl, diagReq{family: unix.AF_INET, protocol: unix.IPPROTO_TCP, states: 1 << stateListen})
		d := find(got, port, 0)
		if d == nil {
			t.Fatalf("listener missing: %+v", got)
		}
		if d.rqueue == 3 {
			// ss shows these as Recv-Q and Send-Q of a listener.
			if d.wqueue != 7 || d.timer != 0 {
				t.Errorf("listener wqueue %d (want the backlog, 7), timer %d", d.wqueue, d.timer)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener rqueue %d, want 3", d.rqueue)
		}
	}
}
