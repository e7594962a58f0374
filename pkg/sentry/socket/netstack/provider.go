// Package netstack owns the Sentry's AF_INET and AF_INET6 sockets: TCP,
// UDP and ICMP echo ("ping") sockets implemented over the endpoints of
// pkg/tcpip, with Linux's socket-address checks, socket options, ioctls
// and readiness. A Provider per family is registered with the kernel at
// boot; every socket it makes lives on that sandbox's own stack.
package netstack

import (
	"context"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/network/ipv6"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/icmp"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
	"golang.org/x/sys/unix"
)

// Provider makes the sockets of one family (AF_INET or AF_INET6) on one
// stack; it implements kernel.SocketProvider.
type Provider struct {
	family int
	stack  *stack.Stack
	vfs    *vfs.VirtualFilesystem
	socks  registry
}

var _ kernel.SocketProvider = (*Provider)(nil)

// NewProvider returns the provider of family (unix.AF_INET or
// unix.AF_INET6) over s; socket files live in v's socket filesystem.
func NewProvider(v *vfs.VirtualFilesystem, s *stack.Stack, family int) *Provider {
	return &Provider{family: family, stack: s, vfs: v}
}

// Stack is the provider's network stack.
func (p *Provider) Stack() *stack.Stack { return p.stack }

// Socket implements kernel.SocketProvider.
func (p *Provider) Socket(t *kernel.Task, stype, protocol int) (*vfs.FileDescription, error) {
	return p.NewSocket(ctxOf(t), stype, protocol)
}

// transports maps the protocols of socket.InetProtocol to the stack's.
var transports = map[int]tcpip.TransportProtocolNumber{
	unix.IPPROTO_TCP:    tcp.ProtocolNumber,
	unix.IPPROTO_UDP:    udp.ProtocolNumber,
	unix.IPPROTO_ICMP:   icmp.ProtocolNumber4,
	unix.IPPROTO_ICMPV6: icmp.ProtocolNumber6,
}

// NewSocket is Socket for callers without a task (tests, the Sentry).
func (p *Provider) NewSocket(ctx context.Context, stype, protocol int) (*vfs.FileDescription, error) {
	netProto := ipv4.ProtocolNumber
	if p.family == unix.AF_INET6 {
		netProto = ipv6.ProtocolNumber
	}
	protocol, err := socket.InetProtocol(p.family, stype, protocol)
	if err != nil {
		return nil, err
	}
	trans := transports[protocol]
	ep, terr := p.stack.NewEndpoint(trans, netProto, nil)
	if terr == tcpip.ErrUnknownProtocol {
		return nil, unix.EPROTONOSUPPORT
	}
	if terr != nil {
		return nil, errnoOf(terr)
	}
	return p.newFile(ctx, newSock(p, stype, protocol, trans, ep), unix.O_RDWR), nil
}

// Pair implements kernel.SocketProvider: socketpair(2) is AF_UNIX only.
func (p *Provider) Pair(*kernel.Task, int, int) (*vfs.FileDescription, *vfs.FileDescription, error) {
	return nil, nil, unix.EOPNOTSUPP
}

func (p *Provider) newFile(ctx context.Context, s *sock, flags uint32) *vfs.FileDescription {
	fd := socket.NewFile(p.vfs, auth.CredentialsFromContext(ctx), s, flags)
	p.track(ctx, s, fd)
	return fd
}
