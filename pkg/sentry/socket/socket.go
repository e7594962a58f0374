// Package socket owns what every socket family shares in the Sentry: the
// Socket interface that the socket syscalls call, the control messages
// that travel with sendmsg/recvmsg, and the encoding of socket addresses.
// The families themselves live in subpackages (unix, netstack, netlink)
// and reach the syscalls through kernel.SocketProvider.
package socket

import (
	"context"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
)

// Socket is the implementation of a socket file. Like every file in the
// Sentry it never blocks: an operation that would wait returns EAGAIN and
// the syscall layer waits for readiness (EventIn for accept and receive,
// EventOut for send and connect) and retries, honouring O_NONBLOCK,
// MSG_DONTWAIT and the socket's timeouts.
type Socket interface {
	vfs.FileDescriptionImpl

	// Bind, Listen and Connect take the address exactly as the application
	// passed it (a struct sockaddr of the family's layout).
	Bind(t *kernel.Task, addr []byte) error
	Listen(t *kernel.Task, backlog int) error
	// Connect starts a connection. A connection that cannot complete at
	// once returns EINPROGRESS; the syscall layer then waits for EventOut
	// (unless non-blocking) and reads the outcome with SO_ERROR.
	Connect(t *kernel.Task, addr []byte) error
	// Accept takes one connection from the accept queue, or EAGAIN.
	// flags holds SOCK_NONBLOCK for the new file; the syscall layer
	// handles SOCK_CLOEXEC. peer is the new connection's peer address
	// (nil when the family has none to give).
	Accept(t *kernel.Task, flags int) (nfd *vfs.FileDescription, peer []byte, err error)
	Shutdown(t *kernel.Task, how int) error

	// SockName and PeerName return the addresses getsockname(2) and
	// getpeername(2) copy out (untruncated; the syscall layer truncates
	// and reports the full length).
	SockName(t *kernel.Task) ([]byte, error)
	PeerName(t *kernel.Task) ([]byte, error)

	// GetSockOpt returns the option's value, at most optLen bytes long
	// unless the option's Linux semantics say otherwise.
	GetSockOpt(t *kernel.Task, level, name int, optLen int) ([]byte, error)
	SetSockOpt(t *kernel.Task, level, name int, opt []byte) error

	// SendMsg sends src to the connected peer, or to to when it is not nil.
	// flags are the MSG_* flags of sendmsg(2). It returns the bytes sent:
	// a stream socket may send less than asked before it would block.
	SendMsg(t *kernel.Task, src usermem.IOSequence, to []byte, flags int, control ControlMessages) (int64, error)
	// RecvMsg receives into dst. flags are the MSG_* flags of recvmsg(2)
	// (MSG_PEEK, MSG_TRUNC, MSG_WAITALL is the syscall layer's). It
	// returns the bytes received (for MSG_TRUNC on a datagram socket, the
	// datagram's real length), the msg_flags to report, the sender's
	// address when wantAddr, and the control messages received.
	RecvMsg(t *kernel.Task, dst usermem.IOSequence, flags int, wantAddr bool) (n int64, msgFlags int, from []byte, control ControlMessages, err error)

	// Type returns the family, type and protocol, for SO_DOMAIN, SO_TYPE,
	// SO_PROTOCOL and /proc.
	Type() (family, stype, protocol int)
	// Timeouts returns SO_RCVTIMEO and SO_SNDTIMEO (0: wait forever).
	Timeouts() (recv, send time.Duration)
}

// ControlMessages are the ancillary data of one sendmsg or recvmsg, in the
// Sentry's form; the syscall layer converts them from and to cmsg buffers.
type ControlMessages struct {
	// Rights are the files of SCM_RIGHTS (AF_UNIX only). A receiver that
	// does not install them must DecRef them.
	Rights []*vfs.FileDescription
	// Credentials are those of SCM_CREDENTIALS (AF_UNIX only).
	Credentials *Credentials
	// Timestamp is SO_TIMESTAMP's receive time, when enabled.
	Timestamp    time.Time
	HasTimestamp bool
	// Inq is TCP_INQ's count of bytes left to read, when enabled.
	Inq    int32
	HasInq bool
}

// Credentials are the pid, uid and gid of SCM_CREDENTIALS, as seen from
// the receiver's namespaces.
type Credentials struct {
	PID int32
	UID uint32
	GID uint32
}

// Release drops the references held by the control messages' files.
func (c *ControlMessages) Release(ctx context.Context) {
	for _, f := range c.Rights {
		f.DecRef(ctx)
	}
	c.Rights = nil
}
