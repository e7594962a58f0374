package filter

import (
	"carapace.dev/carapace/pkg/seccomp"
	"carapace.dev/carapace/pkg/sentry/socket/hostinet"
	"golang.org/x/sys/unix"
)

// hostNetworkRules are the calls of pkg/sentry/socket/hostinet, present
// only with --network=host: host TCP, UDP, ping and NETLINK_ROUTE sockets
// the Sentry opens non-blocking and close-on-exec with the exact protocol
// (hostinet checks netlink requests are read-only before sending), driven
// through descriptors it owns. sendmsg, recvmsg, shutdown and the epoll
// calls of its notifier are allowed already (Rules, the Go runtime's),
// whatever their flags: hostinet's control messages (IP_PKTINFO, IP_TTL,
// timestamps, MSG_ERRQUEUE's extended errors) need no rule of their own,
// only the options that turn them on, which AllowedOptions lists.
func hostNetworkRules() *seccomp.RuleSet {
	s := seccomp.NewRuleSet()
	allow := seccomp.ActionAllow
	eq := seccomp.EqualTo
	anyArg := seccomp.AnyValue()
	const flags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	for _, sock := range []struct{ family, stype, protocol uint64 }{
		{unix.AF_INET, unix.SOCK_STREAM | flags, unix.IPPROTO_TCP},
		{unix.AF_INET, unix.SOCK_DGRAM | flags, unix.IPPROTO_UDP},
		{unix.AF_INET, unix.SOCK_DGRAM | flags, unix.IPPROTO_ICMP},
		{unix.AF_INET6, unix.SOCK_STREAM | flags, unix.IPPROTO_TCP},
		{unix.AF_INET6, unix.SOCK_DGRAM | flags, unix.IPPROTO_UDP},
		{unix.AF_INET6, unix.SOCK_DGRAM | flags, unix.IPPROTO_ICMPV6},
		{unix.AF_NETLINK, unix.SOCK_RAW | flags, unix.NETLINK_ROUTE},
		{unix.AF_NETLINK, unix.SOCK_DGRAM | flags, unix.NETLINK_ROUTE},
	} {
		s.Add(unix.SYS_SOCKET, allow, eq(sock.family), eq(sock.stype), eq(sock.protocol))
	}
	s.Allow(unix.SYS_BIND, unix.SYS_LISTEN, unix.SYS_CONNECT, unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME)
	s.Add(unix.SYS_ACCEPT4, allow, anyArg, anyArg, anyArg, eq(flags))
	for _, o := range hostinet.AllowedOptions() {
		s.Add(unix.SYS_GETSOCKOPT, allow, anyArg, eq(uint64(o[0])), eq(uint64(o[1])))
		s.Add(unix.SYS_SETSOCKOPT, allow, anyArg, eq(uint64(o[0])), eq(uint64(o[1])))
	}
	for _, req := range hostinet.HostIoctls {
		s.Add(unix.SYS_IOCTL, allow, anyArg, eq(req))
	}
	return s
}
