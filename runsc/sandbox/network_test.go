package sandbox

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"carapace.dev/carapace/runsc/control"
	"golang.org/x/sys/unix"
)

// inTestNetns runs f on a thread in a new network namespace; the thread
// stays locked and ends with the goroutine, so the namespace goes away
// with the test's interfaces in it.
func inTestNetns(t *testing.T, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with us
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare(CLONE_NEWNET): %v", err)
			return
		}
		f()
	}()
	<-done
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCaptureLinks(t *testing.T) {
	inTestNetns(t, func() {
		run(t, "ip", "link", "add", "cvA", "type", "veth", "peer", "name", "cvB")
		run(t, "ip", "link", "set", "cvB", "mtu", "1400")
		run(t, "ip", "addr", "add", "10.97.0.2/24", "dev", "cvB")
		run(t, "ip", "addr", "add", "10.97.0.1/24", "dev", "cvA")
		run(t, "ip", "addr", "add", "2001:db8::2/64", "dev", "cvB", "nodad")
		run(t, "ip", "link", "set", "cvA", "up")
		run(t, "ip", "link", "set", "cvB", "up")
		run(t, "ip", "route", "add", "10.96.0.0/16", "via", "10.97.0.1", "dev", "cvB")
		run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8::1", "dev", "cvB")
		// Down interfaces and ones without Ethernet framing stay the
		// kernel's.
		run(t, "ip", "link", "add", "cvC", "type", "veth", "peer", "name", "cvD")
		run(t, "ip", "addr", "add", "10.94.0.1/24", "dev", "cvC")
		// Up but without an address: nothing for netstack to serve.
		run(t, "ip", "link", "set", "cvD", "up")
		tun := exec.Command("ip", "tuntap", "add", "cvtun", "mode", "tun").Run() == nil
		if tun {
			run(t, "ip", "link", "set", "cvtun", "up")
		}

		c, err := CaptureLinks(nil)
		if err != nil {
			t.Fatalf("CaptureLinks: %v", err)
		}
		defer c.Close()
		var names []string
		var b control.Link
		for _, l := range c.Links {
			names = append(names, l.Name)
			if l.Name == "cvB" {
				b = l
			}
		}
		if len(names) != 2 || b.Name == "" || !strings.Contains(strings.Join(names, ","), "cvA") || len(c.Files) != 2 {
			t.Fatalf("captured %v with %d sockets, want cvA and cvB", names, len(c.Files))
		}
		if b.MTU != 1400 {
			t.Errorf("cvB: mtu %d, want 1400", b.MTU)
		}
		if out := run(t, "ip", "-o", "link", "show", "dev", "cvB"); !strings.Contains(out, "link/ether "+formatMAC(b.MAC)+" ") {
			t.Errorf("cvB MAC %x, ip says %s", b.MAC, out)
		}
		has := func(ps []netip.Prefix, s string) bool {
			for _, p := range ps {
				if p == netip.MustParsePrefix(s) {
					return true
				}
			}
			return false
		}
		if !has(b.Addresses, "10.97.0.2/24") || !has(b.Addresses, "2001:db8::2/64") {
			t.Errorf("cvB addresses %v", b.Addresses)
		}
		hasRoute := func(dst, gw string) bool {
			for _, r := range b.Routes {
				if r.Destination == netip.MustParsePrefix(dst) && (gw == "" && !r.Gateway.IsValid() || gw != "" && r.Gateway == netip.MustParseAddr(gw)) {
					return true
				}
			}
			return false
		}
		if !hasRoute("10.96.0.0/16", "10.97.0.1") || !hasRoute("10.97.0.0/24", "") || !hasRoute("::/0", "2001:db8::1") {
			t.Errorf("cvB routes %+v", b.Routes)
		}
		// What was read passes the Sentry's validation.
		if _, err := control.DecodeRequest(mustEncode(t, c.Links), len(c.Files)); err != nil {
			t.Errorf("captured links fail validation: %v", err)
		}
		for _, f := range c.Files {
			if d, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || d != unix.AF_PACKET {
				t.Errorf("socket domain %d, %v; want AF_PACKET", d, err)
			}
		}
		if out := run(t, "ip", "addr", "show", "dev", "cvB"); !strings.Contains(out, "10.97.0.2") {
			t.Errorf("capturing alone removed cvB's address:\n%s", out)
		}
		// Only the chosen interfaces are taken.
		c2, err := CaptureLinks(func(n string) bool { return n == "cvA" })
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if len(c2.Links) != 1 || c2.Links[0].Name != "cvA" {
			t.Errorf("keep cvA captured %+v", c2.Links)
		}
		if err := c.RemoveHostAddresses(); err != nil {
			t.Fatalf("RemoveHostAddresses: %v", err)
		}
		if out := run(t, "ip", "addr", "show", "dev", "cvB"); strings.Contains(out, "10.97.0.2") || strings.Contains(out, "2001:db8::2") {
			t.Errorf("cvB keeps its addresses:\n%s", out)
		}
	})
}

func formatMAC(b []byte) string {
	var parts []string
	for _, x := range b {
		parts = append(parts, strconv.FormatUint(uint64(x)|0x100, 16)[1:])
	}
	return strings.Join(parts, ":")
}

func mustEncode(t *testing.T, links []control.Link) []byte {
	t.Helper()
	data, err := control.Encode(&control.Request{Version: control.Version, Method: control.MethodNetwork, Network: &control.NetworkArgs{Links: links}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// HandOffNetwork enters another process's namespace, sends what it
// captured there, and only then takes the addresses from the kernel; it
// leaves its own namespace and loopback-only ones alone.
func TestHandOffNetwork(t *testing.T) {
	inTestNetns(t, func() {
		called := false
		send := func(c *CapturedLinks) error { called = true; return nil }
		if err := HandOffNetwork(os.Getpid(), send); err != nil || called {
			t.Errorf("own namespace: %v, send called %v", err, called)
		}

		// A child in a namespace of its own (this thread's is the test's).
		child := exec.Command("sleep", "60")
		child.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { child.Process.Kill(); child.Wait() }()
		pid := strconv.Itoa(child.Process.Pid)
		if err := HandOffNetwork(child.Process.Pid, send); err != nil || called {
			t.Errorf("loopback-only namespace: %v, send called %v", err, called)
		}

		run(t, "ip", "link", "add", "cvH", "type", "veth", "peer", "name", "cvS")
		run(t, "ip", "link", "set", "cvS", "netns", pid)
		in := func(args ...string) string {
			return run(t, "nsenter", append([]string{"--net=/proc/" + pid + "/ns/net", "ip"}, args...)...)
		}
		in("addr", "add", "10.95.0.2/24", "dev", "cvS")
		in("link", "set", "cvS", "up")

		failing := func(c *CapturedLinks) error { return errors.New("sandbox said no") }
		if err := HandOffNetwork(child.Process.Pid, failing); err == nil || !strings.Contains(err.Error(), "said no") {
			t.Errorf("failed send: %v", err)
		}
		if out := in("addr", "show", "dev", "cvS"); !strings.Contains(out, "10.95.0.2") {
			t.Errorf("a failed hand-off removed the address:\n%s", out)
		}
		var sent []control.Link
		var fds int
		err := HandOffNetwork(child.Process.Pid, func(c *CapturedLinks) error {
			sent, fds = c.Links, len(c.FDs())
			return nil
		})
		if err != nil || len(sent) != 1 || sent[0].Name != "cvS" || fds != 1 {
			t.Fatalf("hand-off: %v, sent %+v with %d fds", err, sent, fds)
		}
		if out := in("addr", "show", "dev", "cvS"); strings.Contains(out, "10.95.0.2") {
			t.Errorf("the address stayed with the kernel after the hand-off:\n%s", out)
		}
		// This thread is back in its own namespace.
		if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"); err != nil {
			t.Fatal(err)
		}
		if out := run(t, "ip", "link", "show", "cvH"); !strings.Contains(out, "cvH") {
			t.Errorf("not back in the test namespace: %s", out)
		}
	})
}
