package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// ssProgram listens on an ephemeral port of 127.0.0.1 and a UDP port of
// ::1, then runs ss, which lists sockets over NETLINK_SOCK_DIAG
// (pkg/sentry/socket/netlink/sockdiag.go), and prints the ports and
// ss's output.
const ssProgram = `
import socket, subprocess
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(5)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("::1", 0))
x = socket.socket(socket.AF_UNIX)
x.bind("\0carapace-e2e-diag")
x.listen(7)
print("ports", l.getsockname()[1], u.getsockname()[1])
# The same listing straight from NETLINK_SOCK_DIAG, so a fallback of ss
# to /proc/net cannot hide a broken netlink answer.
import struct
nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << 10) + bytes(48)
nl.send(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req)
sports, done = [], False
while not done:
    d = nl.recv(65536)
    off = 0
    while off < len(d):
        n, typ = struct.unpack_from("=IH", d, off)
        if typ == 3:
            done = True
        elif typ == 20:
            sports.append(struct.unpack_from(">H", d, off + 20)[0])
        off += (n + 3) & ~3
print("diag listeners", *sports)
for args in (["-tan"], ["-tlnp"], ["-uan"], ["-xlp"]):
    r = subprocess.run(["/usr/bin/ss"] + args, capture_output=True, text=True)
    print("ss", *args, "exit", r.returncode, r.stderr.strip())
    print(r.stdout)
`

// TestSockDiagSS: Debian's ss inside the sandbox shows a python3
// listener, its owning process (ss -p maps inodes through /proc/*/fd),
// a bound UDP socket and an AF_UNIX listener (unix_diag).
func TestSockDiagSS(t *testing.T) {
	e := needPython(t)
	if _, err := os.Stat("/usr/bin/ss"); err != nil {
		t.Skip("needs /usr/bin/ss (iproute2) in the sandbox")
	}
	cmd, output := doCommand(t, e, "none", "/usr/bin/python3", "-c", ssProgram)
	err := cmd.Run()
	out, errOut := output()
	if err != nil {
		t.Fatalf("python3 with ss: %v; stdout %s; stderr %s", err, out, errOut)
	}
	m := regexp.MustCompile(`ports (\d+) (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ports printed: %s", out)
	}
	tcpPort, udpPort := m[1], m[2]
	if !strings.Contains(out, "diag listeners "+tcpPort+"\n") {
		t.Errorf("the NETLINK_SOCK_DIAG dump does not list the listener on port %s alone:\n%s", tcpPort, out)
	}
	sections := strings.Split(out, "ss ")
	if len(sections) != 5 {
		t.Fatalf("output has %d ss runs, want 4:\n%s", len(sections)-1, out)
	}
	for _, s := range sections[1:] {
		if !strings.Contains(s, "exit 0") {
			t.Errorf("ss failed:\n%s", s)
		}
	}
	listen := regexp.MustCompile(`(?m)^LISTEN\s+0\s+\d+\s+127\.0\.0\.1:` + tcpPort + `\s+0\.0\.0\.0:\*`)
	if !listen.MatchString(sections[1]) {
		t.Errorf("ss -tan does not show the listener on 127.0.0.1:%s:\n%s", tcpPort, sections[1])
	}
	if !listen.MatchString(sections[2]) || !strings.Contains(sections[2], `users:(("python3",pid=1,fd=3))`) {
		t.Errorf("ss -tlnp does not show python3 (pid 1, fd 3) on 127.0.0.1:%s:\n%s", tcpPort, sections[2])
	}
	if !regexp.MustCompile(`(?m)^UNCONN\s+0\s+0\s+\[::1\]:` + udpPort + `\s`).MatchString(sections[3]) {
		t.Errorf("ss -uan does not show the UDP socket on [::1]:%s:\n%s", udpPort, sections[3])
	}
	if !regexp.MustCompile(`(?m)^u_str\s+LISTEN\s+0\s+7\s+@carapace-e2e-diag\s+\d+\s.*users:\(\("python3",pid=1,fd=5\)\)`).MatchString(sections[4]) {
		t.Errorf("ss -xlp does not show python3's abstract listener (fd 5):\n%s", sections[4])
	}
}
