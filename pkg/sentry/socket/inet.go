package socket

import "golang.org/x/sys/unix"

// InetProtocol checks socket(2)'s type and protocol for an AF_INET or
// AF_INET6 socket as the Sentry's inet families (netstack, hostinet)
// serve them, and returns the socket's protocol: IPPROTO_TCP for a
// stream; IPPROTO_UDP, or IPPROTO_ICMP / IPPROTO_ICMPV6 (ping sockets)
// for a datagram socket. A raw socket is EPERM, on which ping falls back
// to an ICMP datagram socket as it does for an unprivileged user on
// Linux; another type is ESOCKTNOSUPPORT, another protocol
// EPROTONOSUPPORT.
func InetProtocol(family, stype, protocol int) (int, error) {
	switch stype {
	case unix.SOCK_STREAM:
		if protocol != 0 && protocol != unix.IPPROTO_TCP {
			return 0, unix.EPROTONOSUPPORT
		}
		return unix.IPPROTO_TCP, nil
	case unix.SOCK_DGRAM:
		switch {
		case protocol == 0 || protocol == unix.IPPROTO_UDP:
			return unix.IPPROTO_UDP, nil
		case family == unix.AF_INET && protocol == unix.IPPROTO_ICMP,
			family == unix.AF_INET6 && protocol == unix.IPPROTO_ICMPV6:
			return protocol, nil
		}
		return 0, unix.EPROTONOSUPPORT
	case unix.SOCK_RAW:
		return 0, unix.EPERM
	}
	return 0, unix.ESOCKTNOSUPPORT
}
