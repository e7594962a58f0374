package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/socket/netlink"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/control"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file is the privileged half of --network=sandbox, run by the runsc
// CLI: Docker's libnetwork prestart hook and CNI set the veth up in the
// Sentry's network namespace after the Sentry has dropped its capabilities,
// so the CLI enters that namespace, opens a packet socket on each
// interface, reads its configuration, and hands both to the Sentry
// (runsc/boot/network.go installs them into netstack). The host kernel
// then loses the addresses so that only netstack answers for them.

// CapturedLinks are the interfaces of a network namespace taken for
// netstack: their configuration and one AF_PACKET socket each.
type CapturedLinks struct {
	Links []control.Link
	// Files are the packet sockets, in the order of Links.
	Files []*os.File
	// index are the host interface indexes, in the order of Links.
	index []int
}

// Close closes the packet sockets (the Sentry keeps its copies).
func (c *CapturedLinks) Close() {
	for _, f := range c.Files {
		f.Close()
	}
	c.Files = nil
}

// FDs are the descriptors of Files.
func (c *CapturedLinks) FDs() []int {
	fds := make([]int, len(c.Files))
	for i, f := range c.Files {
		fds[i] = int(f.Fd())
	}
	return fds
}

// HandOffNetwork gives the Sentry with host pid sentryPid the interfaces
// of its network namespace: it captures them there, calls send with them
// (which passes them over the control socket), and once send succeeded
// removes their addresses from the host kernel. A namespace with no
// interface but loopback is left alone (send is not called), and so is
// this process's own namespace: its interfaces are the host's.
func HandOffNetwork(sentryPid int, send func(*CapturedLinks) error) error {
	path := "/proc/" + strconv.Itoa(sentryPid) + "/ns/net"
	same, err := sameNamespace(path, "/proc/self/ns/net")
	if err != nil {
		return err
	}
	if same {
		log.Warningf("network: the sandbox shares runsc's network namespace; not taking its interfaces")
		return nil
	}
	return inNamespaces([]nsJoin{{flag: unix.CLONE_NEWNET, path: path}}, func() error {
		c, err := CaptureLinks(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if len(c.Links) == 0 {
			return nil
		}
		if err := send(c); err != nil {
			return err
		}
		return c.RemoveHostAddresses()
	})
}

// sameNamespace says whether two namespace files name one namespace.
func sameNamespace(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, fmt.Errorf("network namespace of the sandbox: %w", err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, fmt.Errorf("own network namespace: %w", err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// CaptureLinks takes the up, non-loopback Ethernet interfaces with
// addresses of the calling thread's network namespace that keep accepts (all when keep is
// nil): reads their configuration and opens a packet socket on each. The
// host keeps its addresses until RemoveHostAddresses.
func CaptureLinks(keep func(name string) bool) (*CapturedLinks, error) {
	links, index, err := linksFromKernel()
	if err != nil {
		return nil, err
	}
	c := &CapturedLinks{}
	for i, l := range links {
		if keep != nil && !keep(l.Name) {
			continue
		}
		if len(l.Addresses) == 0 {
			// Nothing to serve; and an interface another sandbox took
			// over already (`docker --network=container:`) looks so.
			log.Infof("network: %s has no address; netstack does not take it", l.Name)
			continue
		}
		if len(c.Links) == control.MaxLinks {
			log.Warningf("network: more than %d interfaces; %s and later ones are not taken", control.MaxLinks, l.Name)
			break
		}
		f, err := openPacketSocket(index[i])
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("taking over %s: %w", l.Name, err)
		}
		c.Links = append(c.Links, l)
		c.Files = append(c.Files, f)
		c.index = append(c.index, index[i])
	}
	return c, nil
}

// RemoveHostAddresses deletes the captured links' addresses from the host
// kernel (which takes their prefix routes too), so that it neither
// answers ARP or neighbour solicitations for them nor resets connections
// meant for netstack. It runs in the links' namespace.
func (c *CapturedLinks) RemoveHostAddresses() error {
	var errs []error
	for i, l := range c.Links {
		for _, a := range l.Addresses {
			if err := deleteHostAddress(c.index[i], a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("removing %s from %s: %w", a, l.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// deleteHostAddress removes an address from a host interface
// (RTM_DELADDR with an ifaddrmsg naming it).
func deleteHostAddress(index int, a netip.Prefix) error {
	fam, attrType := byte(unix.AF_INET), uint16(unix.IFA_LOCAL)
	if a.Addr().Is6() {
		fam, attrType = unix.AF_INET6, unix.IFA_ADDRESS
	}
	ip := a.Addr().AsSlice()
	msg := make([]byte, 8+4+len(ip))
	msg[0], msg[1] = fam, byte(a.Bits())
	binary.LittleEndian.PutUint32(msg[4:], uint32(index))
	binary.LittleEndian.PutUint16(msg[8:], uint16(4+len(ip)))
	binary.LittleEndian.PutUint16(msg[10:], attrType)
	copy(msg[12:], ip)
	_, err := netlinkExchange(unix.RTM_DELADDR, unix.NLM_F_REQUEST|unix.NLM_F_ACK, msg)
	return err
}

// linksFromKernel reads the namespace's up, non-loopback Ethernet
// interfaces with their addresses and routes over netlink, and their
// host indexes. (Package net would do, but it drags in the cgo resolver.)
func linksFromKernel() ([]control.Link, []int, error) {
	linkMsgs, err := netlinkDump(unix.RTM_GETLINK, unix.AF_UNSPEC)
	if err != nil {
		return nil, nil, fmt.Errorf("reading interfaces: %w", err)
	}
	addrMsgs, err := netlinkDump(unix.RTM_GETADDR, unix.AF_UNSPEC)
	if err != nil {
		return nil, nil, fmt.Errorf("reading addresses: %w", err)
	}
	routes, err := hostRoutes()
	if err != nil {
		return nil, nil, err
	}
	var links []control.Link
	var indexes []int
	for _, m := range linkMsgs {
		// ifinfomsg: family, pad, type u16, index s32, flags u32, change u32.
		if m.Type != unix.RTM_NEWLINK || len(m.Payload) < 16 {
			continue
		}
		arpType := binary.LittleEndian.Uint16(m.Payload[2:])
		index := int(int32(binary.LittleEndian.Uint32(m.Payload[4:])))
		flags := binary.LittleEndian.Uint32(m.Payload[8:])
		if flags&unix.IFF_LOOPBACK != 0 || flags&unix.IFF_UP == 0 {
			continue
		}
		attrs, ok := netlink.ParseAttrs(m.Payload[16:])
		if !ok {
			continue
		}
		var l control.Link
		for _, a := range attrs {
			switch a.Type {
			case unix.IFLA_IFNAME:
				l.Name = strings.TrimRight(string(a.Value), "\x00")
			case unix.IFLA_MTU:
				if len(a.Value) == 4 {
					l.MTU = int(binary.LittleEndian.Uint32(a.Value))
				}
			case unix.IFLA_ADDRESS:
				l.MAC = append([]byte(nil), a.Value...)
			}
		}
		if arpType != unix.ARPHRD_ETHER || len(l.MAC) != 6 {
			log.Warningf("network: %s is not an Ethernet interface (type %d); netstack does not take it", l.Name, arpType)
			continue
		}
		l.Addresses = addressesOf(index, addrMsgs)
		for _, r := range routes {
			if r.oif == index {
				l.Routes = append(l.Routes, r.Route)
			}
		}
		links = append(links, l)
		indexes = append(indexes, index)
	}
	return links, indexes, nil
}

// addressesOf picks interface index's addresses from an RTM_GETADDR
// dump: the local address (IFA_LOCAL, which differs from IFA_ADDRESS on
// point-to-point links) with its prefix length.
func addressesOf(index int, addrMsgs []netlink.Message) []netip.Prefix {
	var out []netip.Prefix
	for _, m := range addrMsgs {
		// ifaddrmsg: family, prefixlen, flags, scope, index u32.
		if m.Type != unix.RTM_NEWADDR || len(m.Payload) < 8 || int(int32(binary.LittleEndian.Uint32(m.Payload[4:]))) != index {
			continue
		}
		attrs, _ := netlink.ParseAttrs(m.Payload[8:])
		var local, addr netip.Addr
		for _, a := range attrs {
			ip, ok := netip.AddrFromSlice(a.Value)
			if !ok {
				continue
			}
			switch a.Type {
			case unix.IFA_LOCAL:
				local = ip
			case unix.IFA_ADDRESS:
				addr = ip
			}
		}
		if local.IsValid() {
			addr = local
		}
		if p := netip.PrefixFrom(addr, int(m.Payload[1])); p.IsValid() {
			out = append(out, p)
		}
	}
	return out
}

// hostRoute is a route of the main table and its output interface.
type hostRoute struct {
	control.Route
	oif int
}

// hostRoutes reads the unicast routes of the namespace's main table
// (IPv4 and IPv6).
func hostRoutes() ([]hostRoute, error) {
	var out []hostRoute
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		msgs, err := netlinkDump(unix.RTM_GETROUTE, fam)
		if err != nil {
			return nil, fmt.Errorf("reading routes: %w", err)
		}
		for _, m := range msgs {
			// rtmsg: family, dst_len, src_len, tos, table, protocol,
			// scope, type, flags u32.
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
			dst := netip.IPv4Unspecified()
			if fam == unix.AF_INET6 {
				dst = netip.IPv6Unspecified()
			}
			var r hostRoute
			for _, a := range attrs {
				switch a.Type {
				case unix.RTA_DST:
					if ip, ok := netip.AddrFromSlice(a.Value); ok {
						dst = ip
					}
				case unix.RTA_GATEWAY:
					if ip, ok := netip.AddrFromSlice(a.Value); ok {
						r.Gateway = ip
					}
				case unix.RTA_OIF:
					if len(a.Value) == 4 {
						r.oif = int(int32(binary.LittleEndian.Uint32(a.Value)))
					}
				}
			}
			p, err := dst.Prefix(int(m.Payload[1]))
			if err != nil || r.oif == 0 || (r.Gateway.IsValid() && r.Gateway.Is4() != dst.Is4()) {
				continue
			}
			r.Destination = p
			out = append(out, r)
		}
	}
	return out, nil
}

// openPacketSocket opens an AF_PACKET socket that sends and receives whole
// Ethernet frames on interface index. It stays blocking: the Sentry's
// fdbased endpoint makes it non-blocking itself.
func openPacketSocket(index int) (*os.File, error) {
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind(AF_PACKET, %d): %w", index, err)
	}
	return os.NewFile(uintptr(fd), "packet-socket"), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// netlinkDump sends one dump request to the kernel and collects the
// answer up to NLMSG_DONE.
func netlinkDump(typ uint16, family int) ([]netlink.Message, error) {
	payload := make([]byte, 12) // room for the largest header (rtmsg)
	payload[0] = byte(family)
	return netlinkExchange(typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, payload)
}

// netlinkExchange sends one request to the kernel and returns the
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
					if e := int32(binary.LittleEndian.Uint32(m.Payload)); e != 0 {
						return nil, unix.Errno(-e)
					}
				}
				return out, nil
			}
			out = append(out, m)
		}
	}
}

// StartSentryWithControl starts the Sentry as StartSentry does, but gives
// it the listening control socket ctl (control.Listen): init is then held
// until a start request, which leaves room to hand the Sentry its network
// first (`runsc do --network=sandbox`). Requests sent before the Sentry
// serves wait in the socket's backlog; the caller should close ctl once
// this returns, so that they fail if the Sentry dies instead.
func StartSentryWithControl(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, g *Gofer, stdio [3]*os.File, ctl *os.File) (*Sentry, error) {
	return startSentry(runscBin, conf, spec, bundleDir, g, stdio, []extraFile{{"control-fd", ctl}}, false)
}
