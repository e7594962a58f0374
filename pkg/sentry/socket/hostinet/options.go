package hostinet

import (
	"unsafe"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket"
	"golang.org/x/sys/unix"
)

// optKey names a socket option.
type optKey struct{ level, name int }

// optSize bounds an option's value: set needs at least min bytes and
// passes at most max; get asks the host for at most max.
type optSize struct{ min, max int }

const intSize = 4

var (
	intOpt    = optSize{intSize, intSize}
	lingerOpt = optSize{8, 8}
)

// allowedOpts are the options the host sees; every other one is
// ENOPROTOOPT without reaching it. Options that would let the sandbox
// act outside its sockets (SO_BINDTODEVICE, SO_MARK, IP_TRANSPARENT, raw
// filters) are deliberately absent.
var allowedOpts = map[optKey]optSize{
	{unix.SOL_SOCKET, unix.SO_REUSEADDR}:  intOpt,
	{unix.SOL_SOCKET, unix.SO_REUSEPORT}:  intOpt,
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:  intOpt,
	{unix.SOL_SOCKET, unix.SO_LINGER}:     lingerOpt,
	{unix.SOL_SOCKET, unix.SO_RCVBUF}:     intOpt,
	{unix.SOL_SOCKET, unix.SO_SNDBUF}:     intOpt,
	{unix.SOL_SOCKET, unix.SO_ERROR}:      intOpt,
	{unix.SOL_SOCKET, unix.SO_BROADCAST}:  intOpt,
	{unix.SOL_SOCKET, unix.SO_OOBINLINE}:  intOpt,
	{unix.SOL_SOCKET, unix.SO_RCVLOWAT}:   intOpt,
	{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}: intOpt,

	{unix.IPPROTO_TCP, unix.TCP_NODELAY}:      intOpt,
	{unix.IPPROTO_TCP, unix.TCP_INFO}:         {0, int(unsafe.Sizeof(unix.TCPInfo{}))},
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}:     intOpt,
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}:    intOpt,
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:      intOpt,
	{unix.IPPROTO_TCP, unix.TCP_CONGESTION}:   {1, 16}, // TCP_CA_NAME_MAX
	{unix.IPPROTO_TCP, unix.TCP_MAXSEG}:       intOpt,
	{unix.IPPROTO_TCP, unix.TCP_CORK}:         intOpt,
	{unix.IPPROTO_TCP, unix.TCP_QUICKACK}:     intOpt,
	{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}: intOpt,
	{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT}: intOpt,
	{unix.IPPROTO_TCP, unix.TCP_LINGER2}:      intOpt,

	{unix.IPPROTO_IP, unix.IP_TTL}:                  intOpt,
	{unix.IPPROTO_IP, unix.IP_TOS}:                  {1, intSize},
	{unix.IPPROTO_IP, unix.IP_RECVERR}:              intOpt,
	{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER}:         intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}:           intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}:     intOpt,
	{unix.SOL_NETLINK, unix.NETLINK_EXT_ACK}:        intOpt,
	{unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK}: intOpt,
	{unix.SOL_NETLINK, unix.NETLINK_CAP_ACK}:        intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_TCLASS}:           intOpt,

	// The options that ask for control messages on receive; what the
	// host then gives is rebuilt from an allowlist (control.go).
	{unix.SOL_SOCKET, unix.SO_TIMESTAMP_OLD}:    intOpt,
	{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_OLD}:  intOpt,
	{unix.IPPROTO_IP, unix.IP_PKTINFO}:          intOpt,
	{unix.IPPROTO_IP, unix.IP_RECVTOS}:          intOpt,
	{unix.IPPROTO_IP, unix.IP_RECVTTL}:          intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO}:  intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT}: intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS}:   intOpt,
	{unix.IPPROTO_IPV6, unix.IPV6_RECVERR}:      intOpt,
}

// GetSockOpt implements socket.Socket.
func (s *sock) GetSockOpt(_ *kernel.Task, level, name int, optLen int) ([]byte, error) {
	if optLen < 0 {
		return nil, unix.EINVAL
	}
	if v, ok := s.GetTimeoutOpt(level, name); ok {
		return v, nil
	}
	if level == unix.SOL_SOCKET {
		switch name {
		case unix.SO_TYPE:
			return socket.Int32Bytes(int32(s.stype)), nil
		case unix.SO_DOMAIN:
			return socket.Int32Bytes(int32(s.p.family)), nil
		case unix.SO_PROTOCOL:
			return socket.Int32Bytes(int32(s.protocol)), nil
		}
	}
	size, ok := allowedOpts[optKey{level, name}]
	if !ok {
		return nil, unix.ENOPROTOOPT
	}
	buf := make([]byte, max(min(optLen, size.max), 0))
	l := uint32(len(buf))
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), uintptr(level), uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return nil, e
	}
	return buf[:min(int(l), len(buf))], nil
}

// SetSockOpt implements socket.Socket.
func (s *sock) SetSockOpt(_ *kernel.Task, level, name int, opt []byte) error {
	if ok, err := s.SetTimeoutOpt(level, name, opt); ok {
		return err
	}
	size, ok := allowedOpts[optKey{level, name}]
	if !ok || (level == unix.SOL_SOCKET && (name == unix.SO_ERROR || name == unix.SO_ACCEPTCONN)) ||
		(level == unix.IPPROTO_TCP && name == unix.TCP_INFO) {
		// Read-only options are ENOPROTOOPT on set, as Linux answers.
		return unix.ENOPROTOOPT
	}
	if len(opt) < size.min {
		return unix.EINVAL
	}
	opt = opt[:min(len(opt), size.max)]
	var p unsafe.Pointer
	if len(opt) > 0 {
		p = unsafe.Pointer(&opt[0])
	}
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(s.fd), uintptr(level), uintptr(name), uintptr(p), uintptr(len(opt)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// AllowedOptions lists the (level, name) pairs passed to the host, for
// the Sentry's seccomp rules.
func AllowedOptions() [][2]int {
	out := make([][2]int, 0, len(allowedOpts))
	for k := range allowedOpts {
		out = append(out, [2]int{k.level, k.name})
	}
	return out
}

// HostIoctls are the ioctl requests passed to the host, for the Sentry's
// seccomp rules.
var HostIoctls = []uint64{
	unix.SIOCINQ, unix.SIOCOUTQ, unix.SIOCGIFCONF,
	unix.SIOCGIFNAME, unix.SIOCGIFINDEX, unix.SIOCGIFFLAGS, unix.SIOCGIFMTU, unix.SIOCGIFADDR,
	unix.SIOCGIFNETMASK, unix.SIOCGIFBRDADDR, unix.SIOCGIFDSTADDR, unix.SIOCGIFHWADDR, unix.SIOCGIFMETRIC,
	unix.SIOCGIFTXQLEN,
}
