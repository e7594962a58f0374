package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
