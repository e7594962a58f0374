package hostinet

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// NewNetlinkProvider returns the AF_NETLINK provider of --network=host:
// NETLINK_ROUTE sockets on the host, so `ip` and getifaddrs describe the
// host's interfaces, limited to read-only requests (checkNetlinkRequest)
// and no multicast groups.
func NewNetlinkProvider(p *Provider) *Provider {
	return &Provider{family: unix.AF_NETLINK, vfs: p.vfs}
}

// readOnlyRequests are the rtnetlink message types a sandbox may send:
// the RTM_GET* of links, addresses, routes, neighbours and rules.
var readOnlyRequests = map[uint16]bool{
	unix.RTM_GETLINK:  true,
	unix.RTM_GETADDR:  true,
	unix.RTM_GETROUTE: true,
	unix.RTM_GETNEIGH: true,
	unix.RTM_GETRULE:  true,
}

// sizeofSockaddrNL is sizeof(struct sockaddr_nl).
const sizeofSockaddrNL = 12

// checkNetlinkAddr accepts a sockaddr_nl naming no multicast group and,
// unless bind is set (where the port id is the socket's own), the kernel.
func checkNetlinkAddr(addr []byte, bind bool) error {
	if len(addr) < sizeofSockaddrNL {
		return unix.EINVAL
	}
	if binary.LittleEndian.Uint16(addr) != unix.AF_NETLINK {
		return unix.EINVAL
	}
	pid := binary.LittleEndian.Uint32(addr[4:])
	groups := binary.LittleEndian.Uint32(addr[8:])
	if groups != 0 {
		// Multicast subscriptions would stream the host's events; not
		// offered.
		return unix.EPERM
	}
	if !bind && pid != 0 {
		// Only the kernel is reachable, never another host process.
		return unix.EPERM
	}
	return nil
}

// checkNetlinkRequest accepts a buffer whose netlink messages are all
// read-only rtnetlink requests: EINVAL when not even the first message is
// well framed, EPERM for any other message. It walks the buffer as the
// kernel's netlink_rcv_skb does, which stops silently at the first
// malformed header (iproute2 sends its whole request struct, with zeroed
// space after the message): what it checks is exactly what the host acts
// on.
func checkNetlinkRequest(b []byte) error {
	first := true
	for len(b) >= unix.NLMSG_HDRLEN {
		l := binary.LittleEndian.Uint32(b)
		typ := binary.LittleEndian.Uint16(b[4:])
		flags := binary.LittleEndian.Uint16(b[6:])
		if l < unix.NLMSG_HDRLEN || uint64(l) > uint64(len(b)) {
			break
		}
		// Creation flags share bits with the dump flags of GET requests
		// (NLM_F_ROOT/MATCH/ATOMIC), so the type alone decides.
		if !readOnlyRequests[typ] || flags&unix.NLM_F_REQUEST == 0 {
			return unix.EPERM
		}
		first = false
		next := min((uint64(l)+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), uint64(len(b)))
		b = b[next:]
	}
	if first {
		return unix.EINVAL
	}
	return nil
}
