package boot

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket/hostinet"
	"carapace.dev/carapace/pkg/sentry/socket/netlink"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/fdbased"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/control"
	"golang.org/x/sys/unix"
)

// sandboxNetwork is the Sentry's network stack and the interfaces
// installed in it since boot.
type sandboxNetwork struct {
	mode config.Network
	s    *stack.Stack

	mu      sync.Mutex
	closed  bool
	nextNIC tcpip.NICID
	// closers stop the links (loopback first), in the order made.
	closers []func()
}

// activeNetwork is the stack of this Sentry, for the control server's
// network request (one sandbox per Sentry process).
var activeNetwork atomic.Pointer[sandboxNetwork]

// setupNetwork builds the sandbox's network stack for mode and registers
// the AF_INET, AF_INET6 and AF_NETLINK socket providers with k. Every
// mode has loopback (127.0.0.1/8, ::1/128); with --network=sandbox, runsc
// start hands over the namespace's interfaces later (installLinks); with
// --network=host AF_INET, AF_INET6 and read-only NETLINK_ROUTE sockets are
// host sockets the Sentry opens (pkg/sentry/socket/hostinet). The
// returned function stops the stack's link goroutines.
func setupNetwork(k *kernel.Kernel, v *vfs.VirtualFilesystem, mode config.Network) (func(), error) {
	n, err := newSandboxNetwork(mode)
	if err != nil {
		return nil, err
	}
	for family, p := range n.socketProviders(v) {
		k.RegisterSocketProvider(family, p)
	}
	activeNetwork.Store(n)
	return func() {
		activeNetwork.CompareAndSwap(n, nil)
		n.close()
	}, nil
}

// socketProviders are the AF_INET, AF_INET6 and AF_NETLINK providers of
// the network's mode.
func (n *sandboxNetwork) socketProviders(v *vfs.VirtualFilesystem) map[int]kernel.SocketProvider {
	if n.mode == config.NetworkHost {
		// Sockets are the host's (hostinet), and NETLINK_ROUTE dumps
		// describe the host's interfaces; the stack stays idle.
		inet := hostinet.NewProvider(v, unix.AF_INET)
		return map[int]kernel.SocketProvider{
			unix.AF_INET:    inet,
			unix.AF_INET6:   hostinet.NewProvider(v, unix.AF_INET6),
			unix.AF_NETLINK: hostinet.NewNetlinkProvider(inet),
		}
	}
	return map[int]kernel.SocketProvider{
		unix.AF_INET:    netstack.NewProvider(v, n.s, unix.AF_INET),
		unix.AF_INET6:   netstack.NewProvider(v, n.s, unix.AF_INET6),
		unix.AF_NETLINK: netlink.NewProvider(v, n.s),
	}
}

// newSandboxNetwork builds the stack of mode with its loopback.
func newSandboxNetwork(mode config.Network) (*sandboxNetwork, error) {
	s := netstack.NewStack()
	lo, err := netstack.AddLoopback(s)
	if err != nil {
		return nil, err
	}
	return &sandboxNetwork{mode: mode, s: s, nextNIC: netstack.LoopbackNICID + 1, closers: []func(){lo.Close}}, nil
}

// close stops every link, last made first.
func (n *sandboxNetwork) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// installNetwork serves the control server's network request: the
// interfaces runsc captured (validated by package control), whose packet
// sockets are files, in order. It owns files.
func installNetwork(args *control.NetworkArgs, files []*os.File) error {
	n := activeNetwork.Load()
	if n == nil {
		closeFiles(files)
		return errors.New("network: the sandbox has no network stack")
	}
	return n.installLinks(args.Links, files)
}

// installLinks creates a NIC per link on its packet socket and copies the
// link's addresses and routes into the stack: all of them, or (on error)
// none. It owns files.
func (n *sandboxNetwork) installLinks(links []control.Link, files []*os.File) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.mode != config.NetworkSandbox || len(links) != len(files) {
		closeFiles(files)
		return fmt.Errorf("network: this sandbox (--network=%s) takes no interfaces", n.mode)
	}
	for _, nic := range n.s.NICs() {
		for _, l := range links {
			if nic.Name() == l.Name {
				closeFiles(files)
				return fmt.Errorf("network: the sandbox already has an interface %s: %w", l.Name, unix.EEXIST)
			}
		}
	}
	routes := n.s.RouteTable()
	var added []tcpip.NICID
	var closers []func()
	for i, l := range links {
		id := n.nextNIC + tcpip.NICID(i)
		c, err := attachLink(n.s, id, l, files[i])
		if err != nil {
			closeFiles(files[i+1:])
			for j := len(added) - 1; j >= 0; j-- {
				n.s.RemoveNIC(added[j])
				closers[j]()
			}
			n.s.SetRouteTable(routes)
			return err
		}
		added = append(added, id)
		closers = append(closers, c)
	}
	n.nextNIC += tcpip.NICID(len(links))
	n.closers = append(n.closers, closers...)
	return nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// attachLink creates NIC id on packet socket f and copies l's addresses
// and routes into the stack. On error f is closed and the NIC removed.
func attachLink(s *stack.Stack, id tcpip.NICID, l control.Link, f *os.File) (func(), error) {
	// The file stays referenced by closeLink, so it is not finalized
	// (and its descriptor closed) under the endpoint.
	ep, err := fdbased.New(fdbased.Options{FD: int(f.Fd()), MTU: uint32(l.MTU), Address: tcpip.LinkAddress(l.MAC), Ethernet: true})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("network: link %s: %w", l.Name, err)
	}
	closeLink := func() {
		ep.Close()
		f.Close()
	}
	if err := s.CreateNIC(id, l.Name, ep); err != nil {
		closeLink()
		return nil, fmt.Errorf("network: NIC %s: %v", l.Name, err)
	}
	fail := func(err error) (func(), error) {
		s.RemoveNIC(id)
		closeLink()
		return nil, err
	}
	for _, a := range l.Addresses {
		proto := ipv4.ProtocolNumber
		if a.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		awp := tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.Addr().AsSlice()), PrefixLen: a.Bits()}
		if err := s.AddAddress(id, proto, awp); err != nil {
			return fail(fmt.Errorf("network: address %s on %s: %v", a, l.Name, err))
		}
	}
	for _, r := range l.Routes {
		e := stack.RouteEntry{Destination: tcpip.NewSubnet(tcpip.AddrFromSlice(r.Destination.Addr().AsSlice()), r.Destination.Bits()), NIC: id}
		if r.Gateway.IsValid() {
			e.Gateway = tcpip.AddrFromSlice(r.Gateway.AsSlice())
		}
		s.AddRoute(e)
	}
	log.Infof("network: %s (%s, mtu %d) with %v", l.Name, tcpip.LinkAddress(l.MAC), l.MTU, l.Addresses)
	return closeLink, nil
}
