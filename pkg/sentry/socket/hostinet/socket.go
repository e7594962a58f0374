// Package hostinet owns the Sentry's AF_INET and AF_INET6 sockets under
// --network=host: each sandbox socket is a host socket the Sentry opens
// itself (non-blocking, close-on-exec) and drives with its own buffers, so
// no application address ever reaches the host. Socket options and ioctls
// pass through an allowlist; readiness comes from one host epoll instance
// (notifier.go). The sandbox then shares the host's addresses, ports and
// routes: less isolation than netstack, but the host's TCP/IP speed.
package hostinet

import (
	"context"
	"sync"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Provider makes host-backed sockets of one family; it implements
// kernel.SocketProvider.
type Provider struct {
	family int
	vfs    *vfs.VirtualFilesystem
}

var _ kernel.SocketProvider = (*Provider)(nil)

// NewProvider returns the provider of family (unix.AF_INET or
// unix.AF_INET6); socket files live in v's socket filesystem.
func NewProvider(v *vfs.VirtualFilesystem, family int) *Provider {
	return &Provider{family: family, vfs: v}
}

// Socket implements kernel.SocketProvider.
func (p *Provider) Socket(t *kernel.Task, stype, protocol int) (*vfs.FileDescription, error) {
	return p.NewSocket(ctxOf(t), stype, protocol)
}

// NewSocket is Socket for callers without a task (tests).
func (p *Provider) NewSocket(ctx context.Context, stype, protocol int) (*vfs.FileDescription, error) {
	if p.family == unix.AF_NETLINK {
		if stype != unix.SOCK_RAW && stype != unix.SOCK_DGRAM {
			return nil, unix.ESOCKTNOSUPPORT
		}
		if protocol != unix.NETLINK_ROUTE {
			return nil, unix.EPROTONOSUPPORT
		}
		fd, err := unix.Socket(unix.AF_NETLINK, stype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol)
		if err != nil {
			return nil, err
		}
		return p.newFile(ctx, fd, stype, protocol, unix.O_RDWR)
	}
	// For ping sockets the host decides (net.ipv4.ping_group_range).
	protocol, err := socket.InetProtocol(p.family, stype, protocol)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(p.family, stype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return nil, err
	}
	return p.newFile(ctx, fd, stype, protocol, unix.O_RDWR)
}

// Pair implements kernel.SocketProvider: socketpair(2) is AF_UNIX only.
func (p *Provider) Pair(*kernel.Task, int, int) (*vfs.FileDescription, *vfs.FileDescription, error) {
	return nil, nil, unix.EOPNOTSUPP
}

// newFile wraps host descriptor fd (owned from here on) in a socket file.
func (p *Provider) newFile(ctx context.Context, fd, stype, protocol int, flags uint32) (*vfs.FileDescription, error) {
	n, err := hostNotifier()
	if err != nil {
		unix.Close(fd)
		return nil, unix.ENOMEM
	}
	s := &sock{p: p, fd: fd, stype: stype, protocol: protocol, notifier: n}
	if err := n.add(fd, &s.queue); err != nil {
		unix.Close(fd)
		return nil, unix.ENOMEM
	}
	return socket.NewFile(p.vfs, auth.CredentialsFromContext(ctx), s, flags), nil
}

func ctxOf(t *kernel.Task) context.Context {
	if t == nil {
		return context.Background()
	}
	return t
}

// sock is one host-backed socket.
type sock struct {
	vfs.FileDescriptionDefaults
	socket.TimeoutOptions

	p        *Provider
	fd       int
	stype    int
	protocol int
	notifier *notifier
	queue    waiter.Queue

	releaseOnce sync.Once
}

var _ socket.Socket = (*sock)(nil)

// Release implements vfs.FileDescriptionImpl.
func (s *sock) Release(context.Context) {
	s.releaseOnce.Do(func() {
		s.notifier.remove(s.fd)
		unix.Close(s.fd)
		s.queue.Notify(waiter.EventHUp | waiter.EventIn | waiter.EventOut)
	})
}

// Readiness implements waiter.Waitable by asking the host.
func (s *sock) Readiness(mask waiter.EventMask) waiter.EventMask {
	fds := []unix.PollFd{{Fd: int32(s.fd), Events: int16(mask.ToLinux() & 0xffff)}}
	for {
		_, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0
		}
		return waiter.EventMaskFromLinux(uint32(uint16(fds[0].Revents))) & (mask | waiter.EventErr | waiter.EventHUp)
	}
}

// EventRegister implements waiter.Waitable.
func (s *sock) EventRegister(e *waiter.Entry) error {
	s.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (s *sock) EventUnregister(e *waiter.Entry) { s.queue.EventUnregister(e) }

// Read implements vfs.FileDescriptionImpl: read(2) is recv(2) without flags.
func (s *sock) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	n, _, _, _, err := s.recv(ctx, dst, 0, false, nil)
	return n, err
}

// Write implements vfs.FileDescriptionImpl: write(2) is send(2) without flags.
func (s *sock) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	return s.send(ctx, src, nil, nil, 0)
}

// Type implements socket.Socket.
func (s *sock) Type() (family, stype, protocol int) { return s.p.family, s.stype, s.protocol }

// maxAddrLen is sizeof(struct sockaddr_storage).
const maxAddrLen = 128

// checkAddr refuses addresses of other families before the host sees
// them (AF_UNSPEC is connect's "dissolve the association").
func (s *sock) checkAddr(addr []byte, unspecOK bool) error {
	if s.p.family == unix.AF_NETLINK {
		return checkNetlinkAddr(addr, !unspecOK)
	}
	if len(addr) < 2 {
		return unix.EINVAL
	}
	if len(addr) > maxAddrLen {
		addr = addr[:maxAddrLen]
	}
	fam := int(uint16(addr[0]) | uint16(addr[1])<<8)
	switch {
	case fam == s.p.family:
	case fam == unix.AF_INET && s.p.family == unix.AF_INET6:
		// The host answers (EINVAL or EAFNOSUPPORT) as Linux does.
	case fam == unix.AF_UNSPEC && unspecOK:
	case fam == unix.AF_UNSPEC && s.p.family == unix.AF_INET:
		// bind(AF_UNSPEC, INADDR_ANY) is accepted by Linux for
		// compatibility; the host decides.
	default:
		return unix.EAFNOSUPPORT
	}
	return nil
}

func clampAddr(addr []byte) []byte {
	if len(addr) > maxAddrLen {
		return addr[:maxAddrLen]
	}
	return addr
}

func sockaddrCall(nr uintptr, fd int, addr []byte) error {
	_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&addr[0])), uintptr(len(addr)))
	if e != 0 {
		return e
	}
	return nil
}

// Bind implements socket.Socket.
func (s *sock) Bind(_ *kernel.Task, addr []byte) error {
	if err := s.checkAddr(addr, false); err != nil {
		return err
	}
	return sockaddrCall(unix.SYS_BIND, s.fd, clampAddr(addr))
}

// Listen implements socket.Socket.
func (s *sock) Listen(_ *kernel.Task, backlog int) error {
	if s.stype != unix.SOCK_STREAM {
		return unix.EOPNOTSUPP
	}
	return unix.Listen(s.fd, backlog)
}

// Connect implements socket.Socket: EINPROGRESS and the later SO_ERROR
// come from the host.
func (s *sock) Connect(_ *kernel.Task, addr []byte) error {
	if err := s.checkAddr(addr, true); err != nil {
		return err
	}
	return sockaddrCall(unix.SYS_CONNECT, s.fd, clampAddr(addr))
}

// Accept implements socket.Socket.
func (s *sock) Accept(t *kernel.Task, flags int) (*vfs.FileDescription, []byte, error) {
	var buf [maxAddrLen]byte
	l := uint32(len(buf))
	nfd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return nil, nil, e
	}
	var fflags uint32 = unix.O_RDWR
	if flags&unix.SOCK_NONBLOCK != 0 {
		fflags |= unix.O_NONBLOCK
	}
	f, err := s.p.newFile(ctxOf(t), int(nfd), s.stype, s.protocol, fflags)
	if err != nil {
		return nil, nil, err
	}
	return f, append([]byte(nil), buf[:min(int(l), len(buf))]...), nil
}

// Shutdown implements socket.Socket.
func (s *sock) Shutdown(_ *kernel.Task, how int) error {
	if how < unix.SHUT_RD || how > unix.SHUT_RDWR {
		return unix.EINVAL
	}
	return unix.Shutdown(s.fd, how)
}

func (s *sock) name(nr uintptr) ([]byte, error) {
	var buf [maxAddrLen]byte
	l := uint32(len(buf))
	_, _, e := unix.Syscall(nr, uintptr(s.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return nil, e
	}
	return append([]byte(nil), buf[:min(int(l), len(buf))]...), nil
}

// SockName implements socket.Socket.
func (s *sock) SockName(*kernel.Task) ([]byte, error) { return s.name(unix.SYS_GETSOCKNAME) }

// PeerName implements socket.Socket.
func (s *sock) PeerName(*kernel.Task) ([]byte, error) { return s.name(unix.SYS_GETPEERNAME) }

// bounceSize is the largest piece moved through the host per call: a
// whole UDP datagram fits.
const bounceSize = 64 << 10

var bounces = sync.Pool{New: func() any { b := make([]byte, bounceSize); return &b }}

// sendFlags are the MSG_* flags passed on to the host; MSG_DONTWAIT and
// MSG_NOSIGNAL are always added (files never block; SIGPIPE is the
// syscall layer's to deliver, not the Sentry's to receive).
const sendFlags = unix.MSG_OOB | unix.MSG_DONTROUTE | unix.MSG_MORE | unix.MSG_EOR | unix.MSG_CONFIRM

// SendMsg implements socket.Socket.
func (s *sock) SendMsg(t *kernel.Task, src usermem.IOSequence, to []byte, flags int, control socket.ControlMessages) (int64, error) {
	if len(control.Rights) != 0 || control.Credentials != nil {
		return 0, unix.EINVAL
	}
	if to != nil {
		if err := s.checkAddr(to, true); err != nil {
			return 0, err
		}
		to = clampAddr(to)
	}
	ctrl, err := sendControl(s.p.family, s.stype, control.Protocol)
	if err != nil {
		return 0, err
	}
	return s.send(ctxOf(t), src, to, ctrl, flags)
}

// send writes src to the host socket; ctrl, already checked and
// re-encoded (sendControl), goes with a datagram.
func (s *sock) send(ctx context.Context, src usermem.IOSequence, to, ctrl []byte, flags int) (int64, error) {
	bp := bounces.Get().(*[]byte)
	defer bounces.Put(bp)
	buf := *bp
	hostFlags := flags&sendFlags | unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
	if s.stype != unix.SOCK_STREAM {
		// A datagram goes whole or not at all.
		n := src.NumBytes()
		if n > bounceSize {
			buf = make([]byte, n)
		}
		c, err := src.CopyIn(ctx, buf[:n])
		if err != nil && c == 0 && n != 0 {
			return 0, err
		}
		if s.p.family == unix.AF_NETLINK {
			if err := checkNetlinkRequest(buf[:c]); err != nil {
				return 0, err
			}
		}
		sent, err := sendmsg(s.fd, buf[:c], to, ctrl, hostFlags)
		return int64(sent), err
	}
	var total int64
	for src.NumBytes() > 0 || total == 0 {
		c, cerr := src.CopyIn(ctx, buf[:min(src.NumBytes(), int64(len(buf)))])
		if cerr != nil && c == 0 {
			if total > 0 {
				return total, nil
			}
			return 0, cerr
		}
		sent, err := sendmsg(s.fd, buf[:c], to, nil, hostFlags)
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return 0, err
		}
		total += int64(sent)
		if sent < c || c == 0 {
			break
		}
		src = src.DropFirst(int64(sent))
	}
	return total, nil
}

func sendmsg(fd int, b, to, ctrl []byte, flags int) (int, error) {
	var iov unix.Iovec
	var msg unix.Msghdr
	if len(b) > 0 {
		iov.Base = &b[0]
		iov.SetLen(len(b))
		msg.Iov = &iov
		msg.Iovlen = 1
	}
	if len(to) > 0 {
		msg.Name = &to[0]
		msg.Namelen = uint32(len(to))
	}
	if len(ctrl) > 0 {
		msg.Control = &ctrl[0]
		msg.SetControllen(len(ctrl))
	}
	n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// recvFlags are the MSG_* flags passed on to the host (MSG_WAITALL is
// the syscall layer's). MSG_ERRQUEUE reads the extended errors of
// IP_RECVERR.
const recvFlags = unix.MSG_OOB | unix.MSG_PEEK | unix.MSG_TRUNC | unix.MSG_ERRQUEUE

// resultFlags are the msg_flags the host reports that reach the caller.
const resultFlags = unix.MSG_TRUNC | unix.MSG_OOB | unix.MSG_EOR | unix.MSG_ERRQUEUE | unix.MSG_CTRUNC

// RecvMsg implements socket.Socket. The host's control messages come
// back rebuilt from an allowlist (control.go); the syscall layer writes
// them into the caller's buffer, truncating as Linux does.
func (s *sock) RecvMsg(t *kernel.Task, dst usermem.IOSequence, flags int, wantAddr bool) (int64, int, []byte, socket.ControlMessages, error) {
	if s.p.family == unix.AF_NETLINK {
		n, mflags, from, _, err := s.recv(ctxOf(t), dst, flags, wantAddr, nil)
		return n, mflags, from, socket.ControlMessages{}, err
	}
	var ctrl [recvControlSpace]byte
	n, mflags, from, clen, err := s.recv(ctxOf(t), dst, flags, wantAddr, ctrl[:])
	var cm socket.ControlMessages
	if err == nil && clen > 0 {
		cm.Protocol = recvControl(ctrl[:clen])
	}
	return n, mflags, from, cm, err
}

// recv reads from the host socket into dst, and the host's control
// messages into ctrl (whose used length it returns) when ctrl is not nil.
func (s *sock) recv(ctx context.Context, dst usermem.IOSequence, flags int, wantAddr bool, ctrl []byte) (int64, int, []byte, int, error) {
	bp := bounces.Get().(*[]byte)
	defer bounces.Put(bp)
	buf := (*bp)[:min(dst.NumBytes(), bounceSize)]
	var from [maxAddrLen]byte
	var iov unix.Iovec
	var msg unix.Msghdr
	if len(buf) > 0 {
		iov.Base = &buf[0]
		iov.SetLen(len(buf))
		msg.Iov = &iov
		msg.Iovlen = 1
	}
	if wantAddr {
		msg.Name = &from[0]
		msg.Namelen = uint32(len(from))
	}
	if len(ctrl) > 0 {
		msg.Control = &ctrl[0]
		msg.SetControllen(len(ctrl))
	}
	hostFlags := flags&recvFlags | unix.MSG_DONTWAIT
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), uintptr(hostFlags))
	if e != 0 {
		return 0, 0, nil, 0, e
	}
	n := int(r)
	if c := min(n, len(buf)); c > 0 {
		if w, err := dst.CopyOut(ctx, buf[:c]); err != nil {
			if w == 0 {
				return 0, 0, nil, 0, err
			}
			n = w
		}
	}
	var addr []byte
	if wantAddr && msg.Namelen > 0 {
		addr = append([]byte(nil), from[:min(int(msg.Namelen), len(from))]...)
	}
	clen := 0
	if len(ctrl) > 0 {
		clen = min(int(msg.Controllen), len(ctrl))
	}
	return int64(n), int(msg.Flags) & resultFlags, addr, clen, nil
}

// Ioctl implements vfs.FileDescriptionImpl: queue sizes, and the host's
// interfaces read-only.
func (s *sock) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, _ uintptr, args [6]uintptr) (uintptr, error) {
	req, arg := args[1], hostarch.Addr(args[2])
	switch req {
	case unix.SIOCINQ, unix.SIOCOUTQ:
		v, err := unix.IoctlGetInt(s.fd, uint(req))
		if err != nil {
			return 0, err
		}
		_, err = io.CopyOut(ctx, arg, socket.Int32Bytes(int32(v)), usermem.IOOpts{})
		return 0, err
	case unix.SIOCGIFNAME, unix.SIOCGIFINDEX, unix.SIOCGIFFLAGS, unix.SIOCGIFMTU, unix.SIOCGIFADDR,
		unix.SIOCGIFNETMASK, unix.SIOCGIFBRDADDR, unix.SIOCGIFDSTADDR, unix.SIOCGIFHWADDR, unix.SIOCGIFMETRIC,
		unix.SIOCGIFTXQLEN:
		var ifr [ifreqSize]byte
		if _, err := io.CopyIn(ctx, arg, ifr[:], usermem.IOOpts{}); err != nil {
			return 0, err
		}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), req, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			return 0, e
		}
		_, err := io.CopyOut(ctx, arg, ifr[:], usermem.IOOpts{})
		return 0, err
	case unix.SIOCGIFCONF:
		return 0, s.ifconf(ctx, io, arg)
	}
	return 0, unix.ENOTTY
}

// ifreqSize and ifconfSize are sizeof(struct ifreq) and sizeof(struct ifconf).
const (
	ifreqSize  = 40
	ifconfSize = 16
	maxIfconf  = 64 << 10
)

// ifconf runs SIOCGIFCONF into a Sentry buffer and copies the records
// out to the application's, so its pointer never reaches the host.
func (s *sock) ifconf(ctx context.Context, io usermem.IO, arg hostarch.Addr) error {
	var ifc [ifconfSize]byte
	if _, err := io.CopyIn(ctx, arg, ifc[:], usermem.IOOpts{}); err != nil {
		return err
	}
	appLen := int32(uint32(ifc[0]) | uint32(ifc[1])<<8 | uint32(ifc[2])<<16 | uint32(ifc[3])<<24)
	appBuf := hostarch.Addr(*(*uint64)(unsafe.Pointer(&ifc[8])))
	if appLen < 0 {
		return unix.EINVAL
	}
	var hostBuf []byte
	l := min(appLen, maxIfconf)
	if appBuf != 0 && l > 0 {
		hostBuf = make([]byte, l)
	}
	type hostIfconf struct {
		len int32
		_   int32
		buf uintptr
	}
	h := hostIfconf{len: l}
	if hostBuf != nil {
		h.buf = uintptr(unsafe.Pointer(&hostBuf[0]))
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), unix.SIOCGIFCONF, uintptr(unsafe.Pointer(&h)))
	if e != 0 {
		return e
	}
	if hostBuf != nil && h.len > 0 {
		if _, err := io.CopyOut(ctx, appBuf, hostBuf[:h.len], usermem.IOOpts{}); err != nil {
			return err
		}
	}
	out := socket.Int32Bytes(h.len)
	_, err := io.CopyOut(ctx, arg, out, usermem.IOOpts{})
	return err
}
