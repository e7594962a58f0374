package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// `runsc do --network=sandbox` makes its own veth pair (runsc/sandbox/
// veth.go): these tests reach a server of the test through it, from
// inside the sandbox, and check that the pair is gone afterwards.

// doNetworkProgram finds the default gateway (the host end of the veth)
// in /proc/net/route, prints its own `ip addr`, then fetches the path
// argv[2] from the server on port argv[1] there and prints the answer.
const doNetworkProgram = `
import socket, struct, subprocess, sys, urllib.request
gw = None
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if f[1] == "00000000":
        gw = socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
print("gateway", gw, flush=True)
print(subprocess.run(["ip", "addr"], capture_output=True, text=True).stdout, flush=True)
url = "http://%s:%s%s" % (gw, sys.argv[1], sys.argv[2])
print(urllib.request.urlopen(url, timeout=30).read().decode(), flush=True)
`

// doServer answers /hello/<n> with the caller's address once n requests
// have arrived (so that n sandboxes are known to exist at once), and
// reports each request's local address — the host end's — on arrived.
type doServer struct {
	port    string
	arrived chan netip.Addr
	mu      sync.Mutex
	waiting []chan struct{}
}

func newDoServer(t *testing.T) *doServer {
	t.Helper()
	// All addresses: the host end's is chosen by runsc at run time.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &doServer{arrived: make(chan netip.Addr, 16)}
	_, s.port, _ = net.SplitHostPort(ln.Addr().String())
	mux := http.NewServeMux()
	mux.HandleFunc("/hello/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		s.arrived <- netip.MustParseAddrPort(local.String()).Addr()
		release := make(chan struct{})
		s.mu.Lock()
		s.waiting = append(s.waiting, release)
		if len(s.waiting) >= n {
			for _, c := range s.waiting {
				close(c)
			}
			s.waiting = nil
		}
		s.mu.Unlock()
		select {
		case <-release:
		case <-time.After(30 * time.Second):
			http.Error(w, "the other sandboxes never came", http.StatusGatewayTimeout)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "hello from the host to %s", host)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// doCommand is `runsc --root=… --network=mode do args…` with its output
// in files (see env.runsc).
func doCommand(t *testing.T, e *env, mode string, args ...string) (*exec.Cmd, func() (string, string)) {
	t.Helper()
	cmd := exec.Command(runscBin, append([]string{"--root=" + e.root, "--network=" + mode, "do"}, args...)...)
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close(); stderr.Close() })
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Dir = "/"
	return cmd, func() (string, string) {
		o, _ := os.ReadFile(stdout.Name())
		er, _ := os.ReadFile(stderr.Name())
		return string(o), string(er)
	}
}

// interfaceWith names the host interface carrying addr, or "".
func interfaceWith(t *testing.T, addr netip.Addr) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == addr {
				return i.Name
			}
		}
	}
	return ""
}

func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func needDoNetwork(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	for _, p := range []string{"/usr/bin/python3", "/usr/sbin/ip"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s in the sandbox", p)
		}
	}
	return e
}

// checkDoOutput checks one sandbox's output: an eth0 with its address,
// and the server's answer to that address through the gateway.
func checkDoOutput(t *testing.T, out string, hostEnd netip.Addr) netip.Addr {
	t.Helper()
	if !strings.Contains(out, "gateway "+hostEnd.String()+"\n") {
		t.Errorf("the sandbox's gateway is not the host end %s:\n%s", hostEnd, out)
	}
	i := strings.Index(out, "hello from the host to ")
	if i < 0 {
		t.Fatalf("no answer from the host:\n%s", out)
	}
	sandboxAddr, err := netip.ParseAddr(strings.TrimSpace(out[i+len("hello from the host to "):]))
	if err != nil {
		t.Fatalf("bad answer: %v\n%s", err, out)
	}
	if !strings.Contains(out, ": eth0: ") || !strings.Contains(out, "inet "+sandboxAddr.String()+"/30") {
		t.Errorf("`ip addr` in the sandbox does not show eth0 with %s/30:\n%s", sandboxAddr, out)
	}
	if !strings.Contains(out, "inet6 fe80::") {
		t.Errorf("`ip addr` in the sandbox shows no IPv6 link-local address:\n%s", out)
	}
	if p, _ := hostEnd.Prefix(30); !p.Contains(sandboxAddr) || sandboxAddr == hostEnd {
		t.Errorf("sandbox address %s is not the host end %s's /30 peer", sandboxAddr, hostEnd)
	}
	return sandboxAddr
}

func TestDoNetworkSandbox(t *testing.T) {
	e := needDoNetwork(t)
	srv := newDoServer(t)
	cmd, output := doCommand(t, e, "sandbox", "/usr/bin/python3", "-c", doNetworkProgram, srv.port, "/hello/1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var hostEnd netip.Addr
	var veth string
	select {
	case hostEnd = <-srv.arrived:
		veth = interfaceWith(t, hostEnd)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
	}
	err := cmd.Wait()
	out, stderr := output()
	if err != nil {
		t.Fatalf("runsc do: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	if !strings.HasPrefix(veth, "vrs") {
		t.Fatalf("the host end %s is on interface %q, want a vrs<pid> veth", hostEnd, veth)
	}
	checkDoOutput(t, out, hostEnd)
	if interfaceExists(veth) {
		t.Errorf("%s is left after runsc do exited", veth)
	}
}

func TestDoNetworkConcurrentSandboxesGetDistinctAddresses(t *testing.T) {
	e := needDoNetwork(t)
	srv := newDoServer(t)
	const n = 2
	cmds := make([]*exec.Cmd, n)
	outputs := make([]func() (string, string), n)
	for i := range cmds {
		cmds[i], outputs[i] = doCommand(t, e, "sandbox", "/usr/bin/python3", "-c", doNetworkProgram, srv.port, fmt.Sprintf("/hello/%d", n))
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	hostEnds := map[netip.Addr]string{}
	for range n {
		select {
		case a := <-srv.arrived:
			hostEnds[a] = interfaceWith(t, a)
		case <-time.After(30 * time.Second):
			t.Error("a sandbox never reached the server")
		}
	}
	sandboxAddrs := map[netip.Addr]bool{}
	for i, cmd := range cmds {
		err := cmd.Wait()
		out, stderr := outputs[i]()
		if err != nil {
			t.Fatalf("runsc do %d: %v\nstdout:\n%s\nstderr:\n%s", i, err, out, stderr)
		}
		for h := range hostEnds {
			if strings.Contains(out, "gateway "+h.String()+"\n") {
				sandboxAddrs[checkDoOutput(t, out, h)] = true
			}
		}
	}
	if len(hostEnds) != n || len(sandboxAddrs) != n {
		t.Errorf("%d sandboxes got host ends %v and addresses %v; want all distinct", n, hostEnds, sandboxAddrs)
	}
	for _, veth := range hostEnds {
		if veth == "" || interfaceExists(veth) {
			t.Errorf("veth %q missing while running or left after exit", veth)
		}
	}
}

// A runsc killed outright runs no cleanup: the pair must go with the
// Sentry's network namespace (the Sentry dies with its parent).
func TestDoNetworkVethGoesWhenRunscIsKilled(t *testing.T) {
	e := needDoNetwork(t)
	srv := newDoServer(t)
	// Waits for a second request that never comes.
	cmd, output := doCommand(t, e, "sandbox", "/usr/bin/python3", "-c", doNetworkProgram, srv.port, "/hello/2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var veth string
	select {
	case a := <-srv.arrived:
		veth = interfaceWith(t, a)
	case <-time.After(30 * time.Second):
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !strings.HasPrefix(veth, "vrs") {
		out, stderr := output()
		t.Fatalf("no veth seen for the sandbox (%q)\nstdout:\n%s\nstderr:\n%s", veth, out, stderr)
	}
	// Namespaces are torn down asynchronously after their last user.
	deadline := time.Now().Add(10 * time.Second)
	for interfaceExists(veth) {
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there 10s after runsc was killed", veth)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDoNetworkNoneIsLoopbackOnly(t *testing.T) {
	e := needDoNetwork(t)
	cmd, output := doCommand(t, e, "none", "/usr/sbin/ip", "addr")
	err := cmd.Run()
	out, stderr := output()
	if err != nil {
		t.Fatalf("runsc do: %v\n%s", err, stderr)
	}
	// A veth for this sandbox would show inside as eth0 (its inner end is
	// made in the Sentry's namespace). The host's interface list is no
	// witness: other tests' sandboxes add and remove veths concurrently.
	if !strings.Contains(out, ": lo: ") || strings.Contains(out, "eth0") || strings.Count(out, "link/") != 1 {
		t.Errorf("--network=none: want loopback only, got:\n%s", out)
	}
}

func hasInterface(ifs []net.Interface, name string) bool {
	for _, i := range ifs {
		if i.Name == name {
			return true
		}
	}
	return false
}

// BenchmarkDoTrue times `runsc do /bin/true` whole, per network mode: the
// cost of the veth and the hand-off is the difference.
func BenchmarkDoTrue(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("runsc needs root")
	}
	root := b.TempDir()
	for _, mode := range []string{"none", "sandbox"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(runscBin, "--root="+root, "--network="+mode, "do", "/bin/true")
				cmd.Dir = "/"
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("runsc do /bin/true: %v: %s", err, out)
				}
			}
		})
	}
}
