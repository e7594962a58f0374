package boot

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/socket/hostinet"
	"carapace.dev/carapace/pkg/sentry/socket/netlink"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/runsc/config"
	"golang.org/x/sys/unix"
)

// TestSocketProvidersByMode: --network=host gives host sockets (hostinet)
// for AF_INET, AF_INET6 and AF_NETLINK; the other modes netstack's.
func TestSocketProvidersByMode(t *testing.T) {
	v := vfs.New()
	for _, mode := range []config.Network{config.NetworkHost, config.NetworkNone, config.NetworkSandbox} {
		n, err := newSandboxNetwork(mode)
		if err != nil {
			t.Fatal(err)
		}
		ps := n.socketProviders(v)
		n.close()
		for _, family := range []int{unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK} {
			p := ps[family]
			var ok bool
			switch {
			case mode == config.NetworkHost:
				_, ok = p.(*hostinet.Provider)
			case family == unix.AF_NETLINK:
				_, ok = p.(*netlink.Provider)
			default:
				_, ok = p.(*netstack.Provider)
			}
			if !ok {
				t.Errorf("--network=%s: family %d has provider %T", mode, family, p)
			}
		}
	}
}
