package sandbox

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPickVethSubnetSkipsUsedOnesAndWraps(t *testing.T) {
	subnets := 1 << (30 - vethPool.Bits())
	first, ok := pickVethSubnet(0, nil)
	if !ok || first != netip.MustParsePrefix("169.254.128.0/30") {
		t.Fatalf("pickVethSubnet(0) = %v, %v; want 169.254.128.0/30", first, ok)
	}
	used := map[netip.Prefix]bool{first: true, netip.MustParsePrefix("169.254.128.4/30"): true}
	if got, _ := pickVethSubnet(0, used); got != netip.MustParsePrefix("169.254.128.8/30") {
		t.Errorf("with the first two used: %v, want 169.254.128.8/30", got)
	}
	// Starting at the last subnet, a used last one wraps to the first
	// free one; a start beyond the pool wraps too.
	last := netip.MustParsePrefix("169.254.255.252/30")
	if got, _ := pickVethSubnet(subnets-1, nil); got != last {
		t.Errorf("pickVethSubnet(last) = %v, want %v", got, last)
	}
	if got, _ := pickVethSubnet(subnets-1, map[netip.Prefix]bool{last: true, first: true}); got != netip.MustParsePrefix("169.254.128.4/30") {
		t.Errorf("wrapping past a used last and first: %v", got)
	}
	if got, _ := pickVethSubnet(subnets+2, nil); got != netip.MustParsePrefix("169.254.128.8/30") {
		t.Errorf("pickVethSubnet(pool size + 2) = %v", got)
	}
	all := map[netip.Prefix]bool{}
	for i := range subnets {
		p, _ := pickVethSubnet(i, nil)
		all[p] = true
	}
	if len(all) != subnets {
		t.Fatalf("%d distinct subnets, want %d", len(all), subnets)
	}
	if _, ok := pickVethSubnet(7, all); ok {
		t.Error("a subnet was picked from a full pool")
	}
}

// processInNewNetns starts a sleeping process in a network namespace of
// its own, as the Sentry is; it is killed when the test ends.
func processInNewNetns(t *testing.T) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and veth pairs")
	}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestCreateVethConfiguresBothEndsAndDeletes(t *testing.T) {
	a, b := processInNewNetns(t), processInNewNetns(t)
	va, err := CreateVeth(a.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer va.Delete()
	vb, err := CreateVeth(b.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Delete()
	if va.HostAddress.Masked() == vb.HostAddress.Masked() {
		t.Errorf("two pairs share %v", va.HostAddress.Masked())
	}
	for _, v := range []*Veth{va, vb} {
		if v.HostName != "vrs"+strconv.Itoa(map[*Veth]int{va: a.Process.Pid, vb: b.Process.Pid}[v]) {
			t.Errorf("host end named %q", v.HostName)
		}
		if !vethPool.Contains(v.HostAddress.Addr()) || v.HostAddress.Masked() != v.SandboxAddress.Masked() || v.HostAddress.Addr() == v.SandboxAddress.Addr() {
			t.Errorf("addresses %v and %v are not two of one /30 of %v", v.HostAddress, v.SandboxAddress, vethPool)
		}
	}
	// The host end carries its address.
	links, index, err := linksFromKernel()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, l := range links {
		if l.Name == va.HostName {
			found = index[i] == va.hostIndex && len(l.Addresses) > 0 && slices.Contains(l.Addresses, va.HostAddress)
		}
	}
	if !found {
		t.Errorf("host end %s (index %d) with %v not among %+v", va.HostName, va.hostIndex, va.HostAddress, links)
	}
	// The inner end is what the hand-off takes: eth0 with both addresses
	// and the default route through the host end.
	err = inNamespaces([]nsJoin{{flag: unix.CLONE_NEWNET, path: "/proc/" + strconv.Itoa(a.Process.Pid) + "/ns/net"}}, func() error {
		c, err := CaptureLinks(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if len(c.Links) != 1 || c.Links[0].Name != VethInnerName {
			return fmt.Errorf("captured %+v, want %s alone", c.Links, VethInnerName)
		}
		l := c.Links[0]
		if len(l.Addresses) != 2 || !slices.Contains(l.Addresses, va.SandboxAddress) || !slices.Contains(l.Addresses, va.SandboxLinkLocal) {
			t.Errorf("inner addresses %v, want exactly %v and %v (no kernel-made link-local)", l.Addresses, va.SandboxAddress, va.SandboxLinkLocal)
		}
		def := false
		for _, r := range l.Routes {
			def = def || (r.Destination.Bits() == 0 && r.Gateway == va.HostAddress.Addr())
		}
		if !def {
			t.Errorf("no default route via %v in %+v", va.HostAddress.Addr(), l.Routes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := va.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := linkIndex(va.HostName); !errors.Is(err, unix.ENODEV) {
		t.Errorf("after Delete, looking %s up: %v, want ENODEV", va.HostName, err)
	}
	if err := va.Delete(); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
	// Without Delete, the pair goes with the namespace's last process.
	b.Process.Kill()
	b.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := linkIndex(vb.HostName); errors.Is(err, unix.ENODEV) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists 10s after its namespace's process died", vb.HostName)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
