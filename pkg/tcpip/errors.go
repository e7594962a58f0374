package tcpip

import "golang.org/x/sys/unix"

// Error is a stack error. Errors are compared by identity against the
// package's sentinel values; each carries the errno a socket call returns.
type Error struct {
	msg   string
	errno unix.Errno
}

func newError(msg string, errno unix.Errno) *Error { return &Error{msg: msg, errno: errno} }

func (e *Error) Error() string { return e.msg }

// Errno is the Linux errno for e. ErrClosedForReceive maps to 0: the
// socket layer turns it into a zero-length read (end of stream).
func (e *Error) Errno() unix.Errno { return e.errno }

// The stack's errors.
var (
	ErrUnknownProtocol       = newError("unknown protocol", unix.EINVAL)
	ErrUnknownNICID          = newError("unknown nic id", unix.EINVAL)
	ErrDuplicateNICID        = newError("duplicate nic id", unix.EEXIST)
	ErrDuplicateAddress      = newError("duplicate address", unix.EEXIST)
	ErrBadAddress            = newError("bad address", unix.EFAULT)
	ErrNoRoute               = newError("no route", unix.ENETUNREACH)
	ErrNetworkUnreachable    = newError("network is unreachable", unix.ENETUNREACH)
	ErrHostUnreachable       = newError("host is unreachable", unix.EHOSTUNREACH)
	ErrAlreadyBound          = newError("endpoint already bound", unix.EINVAL)
	ErrInvalidEndpointState  = newError("endpoint is in invalid state", unix.EINVAL)
	ErrAlreadyConnecting     = newError("endpoint is already connecting", unix.EALREADY)
	ErrAlreadyConnected      = newError("endpoint is already connected", unix.EISCONN)
	ErrNoPortAvailable       = newError("no ports are available", unix.EAGAIN)
	ErrPortInUse             = newError("port is in use", unix.EADDRINUSE)
	ErrBadLocalAddress       = newError("bad local address", unix.EADDRNOTAVAIL)
	ErrClosedForSend         = newError("endpoint is closed for send", unix.EPIPE)
	ErrClosedForReceive      = newError("endpoint is closed for receive", 0)
	ErrWouldBlock            = newError("operation would block", unix.EAGAIN)
	ErrConnectionRefused     = newError("connection was refused", unix.ECONNREFUSED)
	ErrTimeout               = newError("operation timed out", unix.ETIMEDOUT)
	ErrConnectStarted        = newError("connection attempt started", unix.EINPROGRESS)
	ErrNotConnected          = newError("endpoint not connected", unix.ENOTCONN)
	ErrConnectionReset       = newError("connection reset by peer", unix.ECONNRESET)
	ErrConnectionAborted     = newError("connection aborted", unix.ECONNABORTED)
	ErrInvalidOptionValue    = newError("invalid option value specified", unix.EINVAL)
	ErrUnknownProtocolOption = newError("unknown option for protocol", unix.ENOPROTOOPT)
	ErrMessageTooLong        = newError("message too long", unix.EMSGSIZE)
	ErrNoBufferSpace         = newError("no buffer space available", unix.ENOBUFS)
	ErrBroadcastDisabled     = newError("broadcast socket option disabled", unix.EACCES)
	ErrNotSupported          = newError("operation not supported", unix.EOPNOTSUPP)
	ErrDestinationRequired   = newError("destination address is required", unix.EDESTADDRREQ)
	ErrAddressFamily         = newError("address family not supported", unix.EAFNOSUPPORT)
	ErrInvalidArgument       = newError("invalid argument", unix.EINVAL)
)
