package unix

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/waiter"
	sys "golang.org/x/sys/unix"
)

// storedIntOpts are SOL_SOCKET int options an AF_UNIX socket accepts and
// reports back without their changing anything here, with their
// defaults.
var storedIntOpts = map[int]int32{
	sys.SO_REUSEADDR: 0, sys.SO_REUSEPORT: 0, sys.SO_KEEPALIVE: 0, sys.SO_BROADCAST: 0,
	sys.SO_DONTROUTE: 0, sys.SO_OOBINLINE: 0, sys.SO_PRIORITY: 0, sys.SO_RCVLOWAT: 1,
	sys.SO_SNDLOWAT: 1, sys.SO_PASSSEC: 0, sys.SO_TIMESTAMP_OLD: 0, sys.SO_TIMESTAMPNS_OLD: 0,
	sys.SO_NO_CHECK: 0, sys.SO_MARK: 0, sys.SO_BUSY_POLL: 0, sys.SO_ZEROCOPY: 0, sys.SO_SELECT_ERR_QUEUE: 0,
}

// sizeofLinger is struct linger.
const sizeofLinger = 8

// GetSockOpt implements socket.Socket. AF_UNIX has only SOL_SOCKET
// options (other levels: EOPNOTSUPP, as Linux's sock_no_getsockopt).
func (s *sock) GetSockOpt(t *kernel.Task, level, name int, optLen int) ([]byte, error) {
	if level != sys.SOL_SOCKET {
		return nil, sys.EOPNOTSUPP
	}
	if v, ok := s.GetTimeoutOpt(level, name); ok {
		return v, nil
	}
	switch name {
	case sys.SO_TYPE:
		return socket.Int32Bytes(int32(s.stype)), nil
	case sys.SO_DOMAIN:
		return socket.Int32Bytes(sys.AF_UNIX), nil
	case sys.SO_PROTOCOL:
		return socket.Int32Bytes(0), nil
	case sys.SO_ERROR:
		s.mu.Lock()
		e := s.err
		s.err = 0
		s.mu.Unlock()
		return socket.Int32Bytes(int32(e)), nil
	case sys.SO_ACCEPTCONN:
		s.mu.Lock()
		l := s.listening
		s.mu.Unlock()
		return socket.BoolBytes(l), nil
	case sys.SO_PASSCRED:
		return socket.BoolBytes(s.passcred.Load()), nil
	case sys.SO_SNDBUF:
		return socket.Int32Bytes(int32(s.sndBuf.Load())), nil
	case sys.SO_RCVBUF:
		return socket.Int32Bytes(int32(s.rcvBuf.Load())), nil
	case sys.SO_PEERCRED:
		s.mu.Lock()
		c, ok := s.peerCred, s.hasPeerCred
		s.mu.Unlock()
		if !ok {
			// Linux's cred_to_ucred without a peer: pid 0, IDs -1.
			c = ucred{pid: 0, uid: ^uint32(0), gid: ^uint32(0)}
		}
		b := make([]byte, 12)
		binary.LittleEndian.PutUint32(b, uint32(pidFor(t, c.pid)))
		binary.LittleEndian.PutUint32(b[4:], c.uid)
		binary.LittleEndian.PutUint32(b[8:], c.gid)
		return b, nil
	case sys.SO_LINGER:
		s.mu.Lock()
		v, ok := s.opts[name]
		s.mu.Unlock()
		if !ok {
			v = make([]byte, sizeofLinger)
		}
		return append([]byte(nil), v...), nil
	}
	if def, ok := storedIntOpts[name]; ok {
		s.mu.Lock()
		v, ok := s.opts[name]
		s.mu.Unlock()
		if !ok {
			return socket.Int32Bytes(def), nil
		}
		return append([]byte(nil), v...), nil
	}
	return nil, sys.ENOPROTOOPT
}

// SetSockOpt implements socket.Socket.
func (s *sock) SetSockOpt(t *kernel.Task, level, name int, opt []byte) error {
	if level != sys.SOL_SOCKET {
		return sys.EOPNOTSUPP
	}
	if ok, err := s.SetTimeoutOpt(level, name, opt); ok {
		return err
	}
	switch name {
	case sys.SO_PASSCRED:
		v, err := socket.Int32Opt(opt)
		if err != nil {
			return err
		}
		s.passcred.Store(v != 0)
		return nil
	case sys.SO_SNDBUF, sys.SO_SNDBUFFORCE:
		v, err := socket.Int32Opt(opt)
		if err != nil {
			return err
		}
		s.sndBuf.Store(socket.BufferSizeFromOpt(v))
		s.queue.Notify(waiter.WritableEvents)
		return nil
	case sys.SO_RCVBUF, sys.SO_RCVBUFFORCE:
		v, err := socket.Int32Opt(opt)
		if err != nil {
			return err
		}
		s.rcvBuf.Store(socket.BufferSizeFromOpt(v))
		return nil
	case sys.SO_LINGER:
		if len(opt) < sizeofLinger {
			return sys.EINVAL
		}
		s.store(name, opt[:sizeofLinger])
		return nil
	}
	if _, ok := storedIntOpts[name]; ok {
		v, err := socket.Int32Opt(opt)
		if err != nil {
			return err
		}
		// Boolean options read back as 0 or 1, as Linux stores them.
		if name != sys.SO_PRIORITY && name != sys.SO_RCVLOWAT && name != sys.SO_SNDLOWAT && name != sys.SO_MARK && name != sys.SO_BUSY_POLL && v != 0 {
			v = 1
		}
		if name == sys.SO_RCVLOWAT && v <= 0 {
			v = 1
		}
		s.store(name, socket.Int32Bytes(v))
		return nil
	}
	return sys.ENOPROTOOPT
}

func (s *sock) store(name int, v []byte) {
	s.mu.Lock()
	if s.opts == nil {
		s.opts = make(map[int][]byte)
	}
	s.opts[name] = append([]byte(nil), v...)
	s.mu.Unlock()
}
