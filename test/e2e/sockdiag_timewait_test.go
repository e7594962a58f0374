package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// timeWaitProgram makes one connection over the sandbox's loopback, the
// client closing first, leaves three connections unaccepted on a listener
// of backlog 4, then runs ss -tan and prints /proc/net/tcp.
const timeWaitProgram = `
import socket, subprocess
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
port = l.getsockname()[1]
c = socket.create_connection(("127.0.0.1", port))
s, _ = l.accept()
cport = c.getsockname()[1]
c.sendall(b"hi"); s.recv(2)
c.close()
s.recv(1)
s.close()
pending = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
print("ports", port, cport)
r = subprocess.run(["/usr/bin/ss", "-tan"], capture_output=True, text=True)
print(r.stdout)
print(open("/proc/net/tcp").read())
`

// TestSockDiagTimeWait: after a python3 client/server exchange in the
// sandbox, ss -tan shows the client's closed connection in TIME-WAIT
// (it has no socket any more) and the listener's accept queue and
// backlog as Recv-Q and Send-Q; /proc/net/tcp lists the same connection
// in state 06 with the TIME-WAIT timer (03).
func TestSockDiagTimeWait(t *testing.T) {
	e := needPython(t)
	if _, err := os.Stat("/usr/bin/ss"); err != nil {
		t.Skip("needs /usr/bin/ss (iproute2) in the sandbox")
	}
	cmd, output := doCommand(t, e, "none", "/usr/bin/python3", "-c", timeWaitProgram)
	err := cmd.Run()
	out, errOut := output()
	if err != nil {
		t.Fatalf("python3 with ss: %v; stdout %s; stderr %s", err, out, errOut)
	}
	m := regexp.MustCompile(`ports (\d+) (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ports printed: %s", out)
	}
	port, cport := m[1], m[2]
	if !regexp.MustCompile(`(?m)^TIME-WAIT\s+0\s+0\s+127\.0\.0\.1:` + cport + `\s+127\.0\.0\.1:` + port + `\s`).MatchString(out) {
		t.Errorf("ss -tan does not show 127.0.0.1:%s -> :%s in TIME-WAIT:\n%s", cport, port, out)
	}
	if !regexp.MustCompile(`(?m)^LISTEN\s+3\s+4\s+127\.0\.0\.1:` + port + `\s`).MatchString(out) {
		t.Errorf("ss -tan does not show the listener with Recv-Q 3 and Send-Q 4:\n%s", out)
	}
	hexPort := func(p string) string {
		n, _ := strconv.Atoi(p)
		return fmt.Sprintf("%04X", n)
	}
	row := regexp.MustCompile(`(?m)^\s*\d+: 0100007F:` + hexPort(cport) + ` 0100007F:` + hexPort(port) +
		` 06 00000000:00000000 03:[0-9A-F]{8} 00000000\s+0\s+0 0 `)
	if !row.MatchString(out) {
		t.Errorf("/proc/net/tcp has no TIME-WAIT row (state 06, timer 03, uid and inode 0):\n%s", out)
	}
}
