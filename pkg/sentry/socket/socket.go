// Package socket owns what every socket family shares in the Sentry: the
// Socket interface that the socket syscalls call, the control messages
// that travel with sendmsg/recvmsg, and the encoding of socket addresses.
// The families themselves live in subpackages (unix, netstack, netlink)
// and reach the syscalls through kernel.SocketProvider.
package socket

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
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
	// Protocol are messages of other kinds (IP_PKTINFO, IP_TTL,
	// IPV6_HOPLIMIT, SCM_TIMESTAMPNS …), in order. On receive a family
	// builds each itself (hostinet rebuilds what the host kernel gave,
	// field by field); they go out after the ones above. On send they are
	// every message of a level other than SOL_SOCKET, unchecked: the
	// family validates what it uses.
	Protocol []ControlMessage
}

// ControlMessage is one cmsg: its level, type and data (no header).
type ControlMessage struct {
	Level, Type int32
	Data        []byte
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

// The additions below (helper 5) are additive: the interface above is
// unchanged. They are what every family would otherwise write again.

// SendMsg ownership: a family keeps its own references on the files of
// control.Rights it holds on to (IncRef); the caller drops its own
// afterwards whatever the outcome.

// FromFile returns f's Socket, or false when f is not a socket (the
// socket syscalls then fail with ENOTSOCK).
func FromFile(f *vfs.FileDescription) (Socket, bool) {
	s, ok := f.Impl().(Socket)
	return s, ok
}

// DefaultBufferSize is the default SO_SNDBUF and SO_RCVBUF (Linux's
// net.core.wmem_default and rmem_default: 208 KiB).
const DefaultBufferSize = 212992

// MinBufferSize is the smallest buffer SO_SNDBUF and SO_RCVBUF give.
const MinBufferSize = 4608

// MaxBufferSize caps SO_SNDBUF and SO_RCVBUF (net.core.wmem_max; Linux
// stores twice the requested value, capped by this).
const MaxBufferSize = 4 << 20

// BufferSizeFromOpt is the value Linux stores for setsockopt(SO_SNDBUF or
// SO_RCVBUF, v): twice v, clamped to [MinBufferSize, MaxBufferSize].
func BufferSizeFromOpt(v int32) int64 {
	n := int64(v)
	if n > MaxBufferSize/2 {
		n = MaxBufferSize / 2
	}
	n *= 2
	if n < MinBufferSize {
		n = MinBufferSize
	}
	return n
}

// Int32Opt decodes an int socket option value (EINVAL when shorter than
// an int, as Linux's SOL_SOCKET options are).
func Int32Opt(opt []byte) (int32, error) {
	if len(opt) < 4 {
		return 0, unix.EINVAL
	}
	return int32(binary.LittleEndian.Uint32(opt)), nil
}

// Int32Bytes encodes an int socket option value.
func Int32Bytes(v int32) []byte {
	return binary.LittleEndian.AppendUint32(make([]byte, 0, 4), uint32(v))
}

// BoolBytes encodes a boolean socket option as the int 0 or 1.
func BoolBytes(b bool) []byte {
	if b {
		return Int32Bytes(1)
	}
	return Int32Bytes(0)
}

// sizeofTimeval is sizeof(struct timeval) on amd64.
const sizeofTimeval = 16

// TimeoutOptions holds SO_RCVTIMEO and SO_SNDTIMEO; families embed it to
// get Socket.Timeouts and the options' encoding.
type TimeoutOptions struct {
	recv, send atomic.Int64 // nanoseconds; 0 waits forever
}

// Timeouts implements Socket.Timeouts.
func (o *TimeoutOptions) Timeouts() (recv, send time.Duration) {
	return time.Duration(o.recv.Load()), time.Duration(o.send.Load())
}

// GetTimeoutOpt answers getsockopt of SO_RCVTIMEO/SO_SNDTIMEO (ok false
// for other options): a struct timeval.
func (o *TimeoutOptions) GetTimeoutOpt(level, name int) (val []byte, ok bool) {
	if level != unix.SOL_SOCKET {
		return nil, false
	}
	var d time.Duration
	switch name {
	case unix.SO_RCVTIMEO_OLD:
		d = time.Duration(o.recv.Load())
	case unix.SO_SNDTIMEO_OLD:
		d = time.Duration(o.send.Load())
	default:
		return nil, false
	}
	b := make([]byte, sizeofTimeval)
	binary.LittleEndian.PutUint64(b, uint64(d/time.Second))
	binary.LittleEndian.PutUint64(b[8:], uint64(d%time.Second/time.Microsecond))
	return b, true
}

// SetTimeoutOpt handles setsockopt of SO_RCVTIMEO/SO_SNDTIMEO (ok false
// for other options) as Linux's sock_set_timeout does: a short value is
// EINVAL, tv_usec outside [0, 1e6) is EDOM, and {0, 0}, negative
// seconds and times too large to represent all mean "wait forever".
func (o *TimeoutOptions) SetTimeoutOpt(level, name int, opt []byte) (ok bool, err error) {
	if level != unix.SOL_SOCKET || (name != unix.SO_RCVTIMEO_OLD && name != unix.SO_SNDTIMEO_OLD) {
		return false, nil
	}
	if len(opt) < sizeofTimeval {
		return true, unix.EINVAL
	}
	sec := int64(binary.LittleEndian.Uint64(opt))
	usec := int64(binary.LittleEndian.Uint64(opt[8:]))
	if usec < 0 || usec >= 1000000 {
		return true, unix.EDOM
	}
	var d time.Duration
	switch {
	case sec < 0:
		d = 0
	case sec >= int64(math.MaxInt64/time.Second)-1:
		d = 0
	default:
		d = time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond
	}
	if name == unix.SO_RCVTIMEO_OLD {
		o.recv.Store(int64(d))
	} else {
		o.send.Store(int64(d))
	}
	return true, nil
}

// sockfsMagic is SOCKFS_MAGIC (statfs f_type of a socket).
const sockfsMagic = 0x534F434B

// sockfs is the per-VFS filesystem socket files live in, as Linux's
// sockfs: mounted nowhere, one inode per socket.
type sockfs struct {
	fs    *vfs.Filesystem
	mount *vfs.Mount
	ino   atomic.Uint64
}

type sockfsImpl struct{}

func (sockfsImpl) Release(context.Context) {}

// sockfses maps *vfs.VirtualFilesystem to its *sockfs; a sync.Map keeps
// socket creation free of a global lock once the filesystem exists.
var sockfses sync.Map

func sockfsOf(v *vfs.VirtualFilesystem) *sockfs {
	if s, ok := sockfses.Load(v); ok {
		return s.(*sockfs)
	}
	s := &sockfs{}
	s.fs = v.NewFilesystem(sockfsImpl{})
	root := s.fs.NewDentry(&sockInode{ino: s.ino.Add(1), mode: unix.S_IFDIR | 0o555})
	root.IncRef()
	s.mount = v.NewDisconnectedMount(s.fs, root)
	actual, _ := sockfses.LoadOrStore(v, s)
	return actual.(*sockfs)
}

// sockInode is a socket's inode: S_IFSOCK|0777 owned by its creator, as
// fstat(2) shows a Linux socket.
type sockInode struct {
	vfs.InodeDefaults
	ino  uint64
	mode uint32
	uid  auth.UID
	gid  auth.GID
	born unix.StatxTimestamp
}

func (*sockInode) IncRef()                       {}
func (*sockInode) DecRef(context.Context)        {}
func (i *sockInode) Mode() uint32                { return i.mode }
func (i *sockInode) Owner() (auth.UID, auth.GID) { return i.uid, i.gid }

// Open implements vfs.Inode: a socket cannot be reopened (/proc/N/fd).
func (*sockInode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return nil, unix.ENXIO
}

// Stat implements vfs.Inode.
func (i *sockInode) Stat(context.Context, uint32) (vfs.Statx, error) {
	return vfs.Statx{Mask: unix.STATX_BASIC_STATS, Blksize: 4096, Nlink: 1, Mode: uint16(i.mode), Ino: i.ino,
		Uid: uint32(i.uid), Gid: uint32(i.gid), Atime: i.born, Mtime: i.born, Ctime: i.born}, nil
}

// StatFS implements vfs.Inode.
func (*sockInode) StatFS(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: sockfsMagic, Bsize: 4096, Frsize: 4096, Namelen: 255}, nil
}

// NewFile returns a socket file description (one reference) for impl,
// with a sockfs inode owned by creds' effective IDs. flags are the
// status flags (O_RDWR is implied; O_NONBLOCK for SOCK_NONBLOCK).
func NewFile(v *vfs.VirtualFilesystem, creds *auth.Credentials, impl Socket, flags uint32) *vfs.FileDescription {
	s := sockfsOf(v)
	now := time.Now()
	ino := &sockInode{ino: s.ino.Add(1), mode: unix.S_IFSOCK | 0o777,
		born: unix.StatxTimestamp{Sec: now.Unix(), Nsec: uint32(now.Nanosecond())}}
	if creds != nil {
		ino.uid, ino.gid = creds.EffectiveUID, creds.EffectiveGID
	}
	d := s.fs.NewDentry(ino)
	vd := vfs.MakeVirtualDentry(s.mount, d)
	f := vfs.NewFileDescription(impl, flags&^unix.O_ACCMODE|unix.O_RDWR, vd)
	return f
}
