package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// vethNet is a veth pair between the host's network namespace (hostIf,
// hostIP) and a container's (sandboxIf, sandboxIP), on a /24 chosen from
// this process's pid so that concurrent test runs do not collide.
type vethNet struct {
	hostIf, sandboxIf string
	hostIP, sandboxIP string
}

func newVethNet(t *testing.T) *vethNet {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	pid := os.Getpid()
	net := fmt.Sprintf("10.%d.%d", 200+pid%50, (pid/50)%250)
	v := &vethNet{
		hostIf: fmt.Sprintf("e2eh%d", pid), sandboxIf: fmt.Sprintf("e2es%d", pid),
		hostIP: net + ".1", sandboxIP: net + ".2",
	}
	ipCmd(t, "link", "add", v.hostIf, "type", "veth", "peer", "name", v.sandboxIf)
	t.Cleanup(func() {
		// Gone already if its peer's namespace went away.
		if exec.Command("ip", "link", "show", v.hostIf).Run() == nil {
			if out, err := exec.Command("ip", "link", "del", v.hostIf).CombinedOutput(); err != nil {
				t.Errorf("ip link del %s: %v: %s", v.hostIf, err, out)
			}
		}
	})
	ipCmd(t, "addr", "add", v.hostIP+"/24", "dev", v.hostIf)
	ipCmd(t, "link", "set", v.hostIf, "up")
	return v
}

// configureSandboxEnd moves the sandbox end into the namespace at nsPath
// and configures it there, as libnetwork or a CNI plugin does.
func (v *vethNet) configureSandboxEnd(t *testing.T, nsPath string) {
	t.Helper()
	// ip takes a namespace name (under /var/run/netns) or a pid.
	ipCmd(t, "link", "set", v.sandboxIf, "netns", filepath.Base(nsPath))
	in := func(args ...string) { inNetns(t, nsPath, args...) }
	in("addr", "add", v.sandboxIP+"/24", "dev", v.sandboxIf)
	in("link", "set", v.sandboxIf, "up")
	in("route", "add", "default", "via", v.hostIP)
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs ip in the network namespace at nsPath.
func inNetns(t *testing.T, nsPath string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s in %s: %v: %s", strings.Join(args, " "), nsPath, err, out)
	}
	return string(out)
}

// bigSize is the transfer measured host → sandbox.
const bigSize = 100 << 20

// hostServer serves /hello and /big (bigSize bytes) on addr until the
// test ends.
func hostServer(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the host to %s", r.RemoteAddr[:strings.LastIndexByte(r.RemoteAddr, ':')])
	})
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(bigSize))
		for n := 0; n < bigSize; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// sandboxProgram fetches /hello from the host and prints it, serves one
// TCP connection on port 8080 (after printing "listening"), then fetches
// /big and prints its size and the seconds it took.
const sandboxProgram = `
import socket, sys, time, urllib.request
url = sys.argv[1]
print(urllib.request.urlopen(url + "/hello", timeout=20).read().decode(), flush=True)
s = socket.socket()
s.bind(("0.0.0.0", 8080))
s.listen(1)
print("listening", flush=True)
c, peer = s.accept()
c.sendall(("hello from the sandbox to " + peer[0]).encode())
c.close()
start = time.time()
r = urllib.request.urlopen(url + "/big", timeout=60)
n = 0
while True:
    b = r.read(1 << 20)
    if not b:
        break
    n += len(b)
print("big %d %.3f" % (n, time.time() - start), flush=True)
`

// checkSandboxNetwork runs sandboxProgram in container id (created with
// out as its output) against the host server and checks both
// directions and the bulk transfer.
func checkSandboxNetwork(t *testing.T, e *env, out *outputFile, id string, v *vethNet) {
	t.Helper()
	e.must("start", id)
	out.waitFor("hello from the host to " + v.sandboxIP)
	out.waitFor("listening")
	// The sandbox's own view (netlink served by the Sentry) shows the
	// interface with its address.
	if addrs := e.must("exec", id, "ip", "-4", "-o", "addr", "show", "dev", v.sandboxIf); !strings.Contains(addrs, v.sandboxIP+"/24") {
		t.Errorf("ip addr inside the sandbox: %q, want %s/24 on %s", addrs, v.sandboxIP, v.sandboxIf)
	}
	conn, err := net.DialTimeout("tcp", v.sandboxIP+":8080", 10*time.Second)
	if err != nil {
		t.Fatalf("host → sandbox: %v", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	conn.Close()
	if want := "hello from the sandbox to " + v.hostIP; err != nil || string(got) != want {
		t.Errorf("host → sandbox: read %q, %v; want %q", got, err, want)
	}
	deadline := time.Now().Add(90 * time.Second)
	var n int
	var secs float64
	for {
		data, _ := os.ReadFile(out.f.Name())
		if i := strings.Index(string(data), "big "); i >= 0 && strings.Contains(string(data[i:]), "\n") {
			fmt.Sscanf(string(data[i:]), "big %d %f", &n, &secs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bulk transfer never finished; output %q", data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n != bigSize {
		t.Errorf("the sandbox received %d bytes of /big, want %d", n, bigSize)
	} else if secs > 0 {
		t.Logf("host → sandbox over the veth: %d MB in %.2fs = %.1f MB/s", n>>20, secs, float64(n)/secs/(1<<20))
	}
	e.waitStatus(id, "stopped")
	e.must("delete", id)
}

// TestSandboxNetworkNamespacePath is CNI's way: the container's network
// namespace exists, with a configured veth end, before `runsc create`;
// the spec names it. runsc start hands the interface to netstack: the
// sandbox reaches the host and the host reaches the sandbox.
func TestSandboxNetworkNamespacePath(t *testing.T) {
	e := newEnv(t)
	nsPath := netnsAdd(t)
	v := newVethNet(t)
	v.configureSandboxEnd(t, nsPath)
	url := hostServer(t, v.hostIP)
	bundle := e.bundle([]string{"python3", "-c", sandboxProgram, url}, func(s *specs.Spec) {
		s.Linux.Namespaces = []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: nsPath},
		}
	})
	out := newOutput(t)
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "net"); code != 0 {
		t.Fatalf("create: exit %d: %s", code, msg)
	}
	checkSandboxNetwork(t, e, out, "net", v)
	// The host kernel gave the address up to netstack.
	if addrs := inNetns(t, nsPath, "-4", "addr", "show", "dev", v.sandboxIf); strings.Contains(addrs, v.sandboxIP) {
		t.Errorf("%s still on the host's %s:\n%s", v.sandboxIP, v.sandboxIf, addrs)
	}
}

// TestSandboxNetworkPrestartHook is Docker's way: runsc makes the
// network namespace, and a prestart hook (libnetwork-setkey's place)
// moves the veth end into the Sentry's namespace, found by the pid in
// the state the hook reads, before create returns.
func TestSandboxNetworkPrestartHook(t *testing.T) {
	e := newEnv(t)
	v := newVethNet(t)
	url := hostServer(t, v.hostIP)
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs iproute2's ip command")
	}
	// The hook reads the OCI state on stdin and configures the sandbox's
	// namespace through /proc/PID/ns/net.
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("needs util-linux's nsenter")
	}
	hook := fmt.Sprintf(`set -e
pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
%[1]s link set %[2]s netns $pid
%[5]s --net=/proc/$pid/ns/net %[1]s addr add %[3]s/24 dev %[2]s
%[5]s --net=/proc/$pid/ns/net %[1]s link set %[2]s up
%[5]s --net=/proc/$pid/ns/net %[1]s route add default via %[4]s
`, ipPath, v.sandboxIf, v.sandboxIP, v.hostIP, nsenter)
	bundle := e.bundle([]string{"python3", "-c", sandboxProgram, url}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", hook}}}}
	})
	out := newOutput(t)
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "hooknet"); code != 0 {
		t.Fatalf("create: exit %d: %s", code, msg)
	}
	checkSandboxNetwork(t, e, out, "hooknet", v)
}

// TestSandboxNetworkNoLinks: a sandbox namespace with only loopback (and
// --network=none) starts as before; loopback works inside.
func TestSandboxNetworkNoLinks(t *testing.T) {
	e := newEnv(t)
	prog := `import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
c = socket.create_connection(s.getsockname()); a, _ = s.accept()
c.sendall(b"loopback ok"); print(a.recv(100).decode())`
	for _, mode := range []string{"sandbox", "none"} {
		out, stderr, code := e.runsc("--network="+mode, "run", "--bundle", e.bundle([]string{"python3", "-c", prog}, nil), "lo-"+mode)
		if code != 0 || out != "loopback ok\n" {
			t.Errorf("--network=%s: exit %d, %q, %q", mode, code, out, stderr)
		}
	}
}

// checkDockerBridge runs a container of d on a user-defined bridge
// network: libnetwork's prestart hook moves the veth into the Sentry's
// namespace, runsc start hands it to netstack, and the container fetches
// from a server on the bridge's host address.
func checkDockerBridge(t *testing.T, d *dockerd) {
	pid := os.Getpid()
	prefix := fmt.Sprintf("10.%d.%d", 150+pid%50, (pid/50)%250)
	name := fmt.Sprintf("e2ebr%d", pid)
	if _, stderr, code := d.docker(nil, "network", "create", "--driver=bridge", "--subnet="+prefix+".0/24",
		"--gateway="+prefix+".1", "-o", "com.docker.network.bridge.name="+name, name); code != 0 {
		t.Skipf("this dockerd has no bridge network: %s", stderr)
	}
	defer func() {
		if _, stderr, code := d.docker(nil, "network", "rm", name); code != 0 {
			t.Errorf("docker network rm: %s", stderr)
		}
	}()
	url := hostServer(t, prefix+".1")
	out, stderr, code := d.docker(nil, "run", "--rm", "--runtime=runsc", "--network="+name, "carapace-busybox",
		"/bin/busybox", "wget", "-q", "-O", "-", url+"/hello")
	if want := "hello from the host to " + prefix + ".2"; code != 0 || out != want {
		t.Errorf("docker run --network=%s wget: exit %d, %q, %q; want %q", name, code, out, stderr, want)
	}
}

// TestSandboxNetworkIPv6: the veth's IPv6 addresses and routes reach
// netstack too (neighbour discovery over the packet socket).
func TestSandboxNetworkIPv6(t *testing.T) {
	e := newEnv(t)
	nsPath := netnsAdd(t)
	v := newVethNet(t)
	v.configureSandboxEnd(t, nsPath)
	pid := os.Getpid()
	host6, sandbox6 := fmt.Sprintf("fd00:e2e:%x::1", pid&0xffff), fmt.Sprintf("fd00:e2e:%x::2", pid&0xffff)
	ipCmd(t, "addr", "add", host6+"/64", "dev", v.hostIf, "nodad")
	inNetns(t, nsPath, "addr", "add", sandbox6+"/64", "dev", v.sandboxIf, "nodad")
	url := hostServer(t, "["+host6+"]")
	prog := `import socket, sys, urllib.request
print(urllib.request.urlopen(sys.argv[1] + "/hello", timeout=20).read().decode(), flush=True)
s = socket.socket(socket.AF_INET6)
s.bind(("::", 8080))
s.listen(1)
print("listening", flush=True)
c, peer = s.accept()
c.sendall(("hello from the sandbox to " + peer[0]).encode())
c.close()`
	bundle := e.bundle([]string{"python3", "-c", prog, url}, func(s *specs.Spec) {
		s.Linux.Namespaces = []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: nsPath},
		}
	})
	out := newOutput(t)
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "net6"); code != 0 {
		t.Fatalf("create: exit %d: %s", code, msg)
	}
	e.must("start", "net6")
	out.waitFor("hello from the host to [" + sandbox6 + "]")
	out.waitFor("listening")
	conn, err := net.DialTimeout("tcp", "["+sandbox6+"]:8080", 10*time.Second)
	if err != nil {
		t.Fatalf("host → sandbox over IPv6: %v", err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	conn.Close()
	if want := "hello from the sandbox to " + host6; err != nil || string(got) != want {
		t.Errorf("host → sandbox over IPv6: read %q, %v; want %q", got, err, want)
	}
	e.waitStatus("net6", "stopped")
	e.must("delete", "net6")
}
