package boot

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket/netlink"
	"carapace.dev/carapace/pkg/sentry/socket/netstack"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/link/fdbased"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/runsc/config"
	"golang.org/x/sys/unix"
)

// HostLink is one interface of the Sentry's network namespace (a veth end
// Docker or CNI made) that netstack takes over: an AF_PACKET socket bound
// to it and the configuration to mirror.
type HostLink struct {
	Name    string
	Index   int
	MTU     int
	MAC     tcpip.LinkAddress
	FD      int
	Address []tcpip.AddressWithPrefix
	// Routes through this interface (gateway zero for on-link).
	Routes []stack.RouteEntry
}

var (
	hostLinksMu sync.Mutex
	hostLinks   []HostLink
)

// CaptureHostLinks is for --network=sandbox: it must run in `runsc boot`
// before the Sentry drops its capabilities (AF_PACKET sockets need
// CAP_NET_RAW, removing addresses CAP_NET_ADMIN). It takes over every up,
// non-loopback interface of the network namespace (the veth Docker or CNI
// made): records its addresses and routes, opens a packet socket on it and
// removes its addresses from the host kernel, so that only netstack
// answers for them. setupNetwork later hands the links to netstack.
func CaptureHostLinks() error {
	links, err := captureHostLinks(nil)
	if err != nil {
		return err
	}
	hostLinksMu.Lock()
	hostLinks = links
	hostLinksMu.Unlock()
	return nil
}

// captureHostLinks does CaptureHostLinks for the interfaces keep accepts
// (all when keep is nil).
func captureHostLinks(keep func(name string) bool) ([]HostLink, error) {
	all, err := hostLinksFromKernel()
	if err != nil {
		return nil, err
	}
	var links []HostLink
	fail := func(err error) ([]HostLink, error) {
		for _, l := range links {
			unix.Close(l.FD)
		}
		return nil, err
	}
	for _, l := range all {
		if keep != nil && !keep(l.Name) {
			continue
		}
		fd, err := openPacketSocket(l.Index)
		if err != nil {
			return fail(fmt.Errorf("taking over %s: %w", l.Name, err))
		}
		l.FD = fd
		links = append(links, l)
		for _, a := range l.Address {
			if err := deleteHostAddress(l.Index, a); err != nil {
				return fail(fmt.Errorf("removing %s from %s: %w", a, l.Name, err))
			}
		}
	}
	return links, nil
}

// deleteHostAddress removes an address from a host interface
// (RTM_DELADDR), taking its prefix route with it.
func deleteHostAddress(index int, a tcpip.AddressWithPrefix) error {
	fam := byte(unix.AF_INET)
	if a.Address.Len() == 16 {
		fam = unix.AF_INET6
	}
	ifa := []byte{fam, byte(a.PrefixLen), 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(ifa[4:], uint32(index))
	attr := make([]byte, 4+a.Address.Len())
	binary.LittleEndian.PutUint16(attr, uint16(len(attr)))
	binary.LittleEndian.PutUint16(attr[2:], unix.IFA_LOCAL)
	if fam == unix.AF_INET6 {
		binary.LittleEndian.PutUint16(attr[2:], unix.IFA_ADDRESS)
	}
	a.Address.CopyTo(attr[4:])
	_, err := netlinkExchange(unix.RTM_DELADDR, unix.NLM_F_REQUEST|unix.NLM_F_ACK, append(ifa, attr...))
	return err
}

// hostLinksFromKernel reads the namespace's up, non-loopback interfaces
// with their addresses and routes over netlink. (Package net would do,
// but it drags in the cgo resolver, and the Sentry must stay static.)
func hostLinksFromKernel() ([]HostLink, error) {
	linkMsgs, err := netlinkDump(unix.RTM_GETLINK, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("reading interfaces: %w", err)
	}
	addrMsgs, err := netlinkDump(unix.RTM_GETADDR, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("reading addresses: %w", err)
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, err
	}
	var links []HostLink
	for _, m := range linkMsgs {
		if m.Type != unix.RTM_NEWLINK || len(m.Payload) < 16 {
			continue
		}
		index := int(int32(le32(m.Payload[4:])))
		flags := le32(m.Payload[8:])
		if flags&unix.IFF_LOOPBACK != 0 || flags&unix.IFF_UP == 0 {
			continue
		}
		attrs, ok := netlink.ParseAttrs(m.Payload[16:])
		if !ok {
			continue
		}
		l := HostLink{Index: index, FD: -1}
		for _, a := range attrs {
			switch a.Type {
			case unix.IFLA_IFNAME:
				l.Name = strings.TrimRight(string(a.Value), "\x00")
			case unix.IFLA_MTU:
				if len(a.Value) == 4 {
					l.MTU = int(le32(a.Value))
				}
			case unix.IFLA_ADDRESS:
				copy(l.MAC[:], a.Value)
			}
		}
		for _, am := range addrMsgs {
			if am.Type != unix.RTM_NEWADDR || len(am.Payload) < 8 || int(int32(le32(am.Payload[4:]))) != index {
				continue
			}
			aattrs, _ := netlink.ParseAttrs(am.Payload[8:])
			for _, a := range aattrs {
				if a.Type == unix.IFA_ADDRESS && (len(a.Value) == 4 || len(a.Value) == 16) {
					l.Address = append(l.Address, tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.Value), PrefixLen: int(am.Payload[1])})
				}
			}
		}
		for _, r := range routes {
			if r.NIC == tcpip.NICID(index) {
				l.Routes = append(l.Routes, r)
			}
		}
		links = append(links, l)
	}
	return links, nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// openPacketSocket opens an AF_PACKET socket that sends and receives whole
// Ethernet frames on interface index.
func openPacketSocket(index int) (int, error) {
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind(AF_PACKET, %d): %w", index, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// hostRoutes reads the main routing table of the namespace (IPv4 and
// IPv6) with a netlink dump.
func hostRoutes() ([]stack.RouteEntry, error) {
	var out []stack.RouteEntry
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		msgs, err := netlinkDump(unix.RTM_GETROUTE, fam)
		if err != nil {
			return nil, fmt.Errorf("reading routes: %w", err)
		}
		for _, m := range msgs {
			if m.Type != unix.RTM_NEWROUTE || len(m.Payload) < 12 {
				continue
			}
			if m.Payload[4] != unix.RT_TABLE_MAIN || m.Payload[7] != unix.RTN_UNICAST {
				continue
			}
			attrs, ok := netlink.ParseAttrs(m.Payload[12:])
			if !ok {
				continue
			}
			prefix := int(m.Payload[1])
			var dst, gw tcpip.Address
			var oif uint32
			for _, a := range attrs {
				switch a.Type {
				case unix.RTA_DST:
					dst = tcpip.AddrFromSlice(a.Value)
				case unix.RTA_GATEWAY:
					gw = tcpip.AddrFromSlice(a.Value)
				case unix.RTA_OIF:
					if len(a.Value) == 4 {
						oif = le32(a.Value)
					}
				}
			}
			if dst.Len() == 0 {
				if fam == unix.AF_INET {
					dst = tcpip.AddrFrom4([4]byte{})
				} else {
					dst = tcpip.AddrFrom16([16]byte{})
				}
			}
			out = append(out, stack.RouteEntry{Destination: tcpip.NewSubnet(dst, prefix), Gateway: gw, NIC: tcpip.NICID(oif)})
		}
	}
	return out, nil
}

// netlinkDump sends one dump request to the host kernel and collects the
// answer up to NLMSG_DONE.
func netlinkDump(typ uint16, family int) ([]netlink.Message, error) {
	payload := make([]byte, 12) // room for the largest header (rtmsg)
	payload[0] = byte(family)
	return netlinkExchange(typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, payload)
}

// netlinkExchange sends one request to the host kernel and returns the
// messages of its answer, up to NLMSG_DONE or the acknowledgement; an
// error acknowledgement is returned as its errno.
func netlinkExchange(typ uint16, flags uint16, payload []byte) ([]netlink.Message, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	req := make([]byte, 16+len(payload))
	binary.LittleEndian.PutUint32(req, uint32(len(req)))
	binary.LittleEndian.PutUint16(req[4:], typ)
	binary.LittleEndian.PutUint16(req[6:], flags)
	binary.LittleEndian.PutUint32(req[8:], 1)
	copy(req[16:], payload)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []netlink.Message
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, err
		}
		for _, m := range netlink.ParseMessages(append([]byte(nil), buf[:n]...)) {
			switch m.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Payload) >= 4 {
					if e := int32(le32(m.Payload)); e != 0 {
						return nil, unix.Errno(-e)
					}
				}
				return out, nil
			}
			out = append(out, m)
		}
	}
}

// setupNetwork builds the sandbox's network stack for mode and registers
// the AF_INET, AF_INET6 and AF_NETLINK socket providers with k. Every
// mode has loopback (127.0.0.1/8, ::1/128); --network=sandbox adds the
// interfaces CaptureHostLinks took over. The returned function stops the
// stack's link goroutines.
func setupNetwork(k *kernel.Kernel, v *vfs.VirtualFilesystem, mode config.Network) (func(), error) {
	var links []HostLink
	if mode == config.NetworkSandbox {
		hostLinksMu.Lock()
		links, hostLinks = hostLinks, nil
		hostLinksMu.Unlock()
	}
	s, closeAll, err := newSandboxStack(mode, links)
	if err != nil {
		return nil, err
	}
	k.RegisterSocketProvider(unix.AF_INET, netstack.NewProvider(v, s, unix.AF_INET))
	k.RegisterSocketProvider(unix.AF_INET6, netstack.NewProvider(v, s, unix.AF_INET6))
	k.RegisterSocketProvider(unix.AF_NETLINK, netlink.NewProvider(v, s))
	return closeAll, nil
}

// newSandboxStack builds the stack of mode: loopback, and the host links
// taken over for --network=sandbox.
func newSandboxStack(mode config.Network, links []HostLink) (*stack.Stack, func(), error) {
	s := netstack.NewStack()
	lo, err := netstack.AddLoopback(s)
	if err != nil {
		for _, l := range links {
			unix.Close(l.FD)
		}
		return nil, nil, err
	}
	closers := []func(){lo.Close}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if mode == config.NetworkHost {
		log.Warningf("--network=host: passing sockets through to the host is not implemented; the sandbox gets an isolated loopback-only network")
	}
	for i, l := range links {
		c, err := attachHostLink(s, tcpip.NICID(int(netstack.LoopbackNICID)+1+i), l)
		if err != nil {
			for _, rest := range links[i+1:] {
				unix.Close(rest.FD)
			}
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, c)
	}
	return s, closeAll, nil
}

// attachHostLink creates NIC id on l's packet socket and copies l's
// addresses and routes into the stack.
func attachHostLink(s *stack.Stack, id tcpip.NICID, l HostLink) (func(), error) {
	ep, err := fdbased.New(fdbased.Options{FD: l.FD, MTU: uint32(l.MTU), Address: l.MAC, Ethernet: true})
	if err != nil {
		unix.Close(l.FD)
		return nil, fmt.Errorf("link %s: %w", l.Name, err)
	}
	closeLink := func() {
		ep.Close()
		unix.Close(l.FD)
	}
	if err := s.CreateNIC(id, l.Name, ep); err != nil {
		closeLink()
		return nil, fmt.Errorf("NIC %s: %w", l.Name, err)
	}
	for _, a := range l.Address {
		proto := ipv4.ProtocolNumber
		if a.Address.Len() == 16 {
			proto = ipv6.ProtocolNumber
		}
		if err := s.AddAddress(id, proto, a); err != nil {
			closeLink()
			return nil, fmt.Errorf("address %s on %s: %w", a, l.Name, err)
		}
	}
	for _, r := range l.Routes {
		r.NIC = id
		s.AddRoute(r)
	}
	log.Infof("network: %s (%s, mtu %d) with %v", l.Name, l.MAC, l.MTU, l.Address)
	return closeLink, nil
}
