package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// With --network=host the sandbox's AF_INET sockets are host sockets
// (pkg/sentry/socket/hostinet): the sandbox and the test share the host's
// loopback. The Sentry runs under its seccomp filter in kill mode, so
// these runs also check the filter's host-network rules.

func needPython(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3 in the sandbox")
	}
	return e
}

// TestHostNetworkClient: urllib in the sandbox fetches from an HTTP
// server of the test bound to the host's 127.0.0.1.
func TestHostNetworkClient(t *testing.T) {
	e := needPython(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/from-the-host"
	cmd, output := doCommand(t, e, "host", "/usr/bin/python3", "-c",
		"import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())", url)
	err = cmd.Run()
	out, errOut := output()
	if err != nil || out != "hello /from-the-host\n" {
		t.Fatalf("runsc --network=host do urllib: %v, stdout %q, stderr %s", err, out, errOut)
	}
}

// hostServerProgram listens on an ephemeral port of 127.0.0.1, prints the
// port, and answers one connection with its data upper-cased.
const hostServerProgram = `
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
data = b""
while not data.endswith(b"\n"):
    data += c.recv(100)
c.sendall(data.upper())
c.close()
`

// TestHostNetworkServer: a server in the sandbox is reached from the host.
func TestHostNetworkServer(t *testing.T) {
	e := needPython(t)
	cmd, output := doCommand(t, e, "host", "/usr/bin/python3", "-c", hostServerProgram)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(pr).ReadString('\n')
		lines <- strings.TrimSpace(l)
		io.Copy(io.Discard, pr)
	}()
	var port string
	select {
	case port = <-lines:
	case <-time.After(60 * time.Second):
		_, errOut := output()
		t.Fatalf("the sandbox never printed its port; stderr %s", errOut)
	}
	c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", port), 10*time.Second)
	if err != nil {
		_, errOut := output()
		t.Fatalf("connecting to the sandbox's server on %q: %v; stderr %s", port, err, errOut)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("carapace\n")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "CARAPACE\n" {
		t.Fatalf("reply %q, %v; want CARAPACE", got, err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			_, errOut := output()
			t.Fatalf("sandbox: %v; stderr %s", err, errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sandbox did not exit after serving")
	}
}

// TestHostNetworkNetlink: `ip link` in the sandbox lists the host's
// interfaces (NETLINK_ROUTE dumps forwarded read-only), and changing one
// is refused.
func TestHostNetworkNetlink(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat("/usr/sbin/ip"); err != nil {
		t.Skip("needs /usr/sbin/ip in the sandbox")
	}
	before, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	cmd, output := doCommand(t, e, "host", "/usr/sbin/ip", "-o", "link")
	err = cmd.Run()
	out, errOut := output()
	if err != nil {
		t.Fatalf("ip -o link: %v; stderr %s", err, errOut)
	}
	after, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	// Only interfaces present before and after the dump must be in it:
	// other tests' sandboxes add and remove veths meanwhile.
	for _, i := range before {
		if !hasInterface(after, i.Name) {
			continue
		}
		if !strings.Contains(out, fmt.Sprintf("%d: %s:", i.Index, i.Name)) && !strings.Contains(out, fmt.Sprintf("%d: %s@", i.Index, i.Name)) {
			t.Errorf("ip -o link in the sandbox does not list the host's %d: %s:\n%s", i.Index, i.Name, out)
		}
	}
	cmd, output = doCommand(t, e, "host", "/usr/sbin/ip", "link", "set", "lo", "mtu", "1280")
	if err := cmd.Run(); err == nil {
		t.Fatal("ip link set lo mtu 1280 succeeded from the sandbox")
	}
	if lo, err := net.InterfaceByName("lo"); err == nil && lo.MTU == 1280 {
		t.Fatal("the sandbox changed the host's lo")
	}
}

// ancillaryProgram exercises recvmsg's control messages on a UDP socket
// over loopback: IP_PKTINFO, IP_TTL, IP_TOS (chosen by the sender's own
// control message) and SO_TIMESTAMP, whole and in buffers too short for
// them (MSG_CTRUNC), a control message Linux refuses (IP_TTL 0), and
// IP_RECVERR's extended error for a datagram to a closed port, read with
// MSG_ERRQUEUE (which never blocks).
const ancillaryProgram = `
import socket, struct, time
IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, SO_TIMESTAMP = 8, 12, 13, 29
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 0))
for opt in (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS):
    r.setsockopt(socket.IPPROTO_IP, opt, 1)
r.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def show(name, bufsize):
    s.sendmsg([b"hi"], [(socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", 0x28))], 0, r.getsockname())
    data, anc, flags, _ = r.recvmsg(100, bufsize)
    print(name, data, "ctrunc" if flags & socket.MSG_CTRUNC else "whole")
    for level, typ, d in anc:
        if (level, typ) == (socket.SOL_SOCKET, SO_TIMESTAMP):
            sec, usec = struct.unpack("qq", d) if len(d) == 16 else (0, 0)
            print(" ", level, typ, len(d), "near-now" if abs(sec + usec / 1e6 - time.time()) < 5 else "FAR")
        else:
            print(" ", level, typ, d.hex())
show("full", 1024)
show("short", socket.CMSG_SPACE(16) + socket.CMSG_LEN(4))
show("tiny", 10)
try:
    s.sendmsg([b"x"], [(socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", 0))], 0, r.getsockname())
    print("ttl0 sent")
except OSError as e:
    print("ttl0 errno", e.errno)
IP_RECVERR = 11
e = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
e.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
try:
    e.recvmsg(10, 100, socket.MSG_ERRQUEUE)
except BlockingIOError:
    print("empty error queue: EAGAIN at once")
closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
closed.bind(("127.0.0.1", 0))
dead = closed.getsockname()
closed.close()
e.connect(dead)
e.send(b"anyone?")
time.sleep(0.3)
data, anc, flags, _ = e.recvmsg(100, 1024, socket.MSG_ERRQUEUE)
print("errqueue", data, "MSG_ERRQUEUE" if flags & socket.MSG_ERRQUEUE else "")
for level, typ, d in anc:
    print(" ", level, typ, d.hex())
`

// TestHostNetworkAncillaryData: with --network=host, recvmsg's control
// messages (rebuilt by hostinet from an allowlist) and their truncation
// are exactly what the same program gets natively.
func TestHostNetworkAncillaryData(t *testing.T) {
	e := needPython(t)
	native, err := exec.Command("/usr/bin/python3", "-c", ancillaryProgram).CombinedOutput()
	if err != nil {
		t.Fatalf("native run: %v\n%s", err, native)
	}
	if !strings.Contains(string(native), "0 8 01000000") {
		t.Skipf("the host's loopback is not ifindex 1; native output:\n%s", native)
	}
	cmd, output := doCommand(t, e, "host", "/usr/bin/python3", "-c", ancillaryProgram)
	err = cmd.Run()
	out, errOut := output()
	if err != nil {
		t.Fatalf("sandbox run: %v; stdout %s; stderr %s", err, out, errOut)
	}
	if out != string(native) {
		t.Errorf("control messages differ from Linux's.\nsandbox:\n%s\nnative:\n%s", out, native)
	}
	for _, want := range []string{"full b'hi' whole", "  0 2 ", "  0 1 28", "near-now", "short b'hi' ctrunc", "ttl0 errno 22",
		"empty error queue: EAGAIN at once", "errqueue b'anyone?' MSG_ERRQUEUE", "  0 11 6f000000020303"} {
		if !strings.Contains(out, want) {
			t.Errorf("sandbox output lacks %q:\n%s", want, out)
		}
	}
}
