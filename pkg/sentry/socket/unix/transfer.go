package unix

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	sys "golang.org/x/sys/unix"
)

// dgramOverhead is what each datagram charges its sender beyond its
// bytes (Linux charges an skb's truesize), so that empty datagrams are
// bounded too.
const dgramOverhead = 512

// taskOf returns the task behind ctx (nil outside a task: tests).
func taskOf(ctx context.Context) *kernel.Task {
	t, _ := ctx.(*kernel.Task)
	return t
}

// senderCred is what SCM_CREDENTIALS carries when the sender gave none:
// its tgid and real IDs. The PID is kept as the kernel's root ID and
// shown to the receiver in its own PID namespace.
func senderCred(t *kernel.Task, given *socket.Credentials) ucred {
	if given != nil {
		pid := given.PID
		if t != nil {
			// A PID naming nothing (allowed with CAP_SYS_ADMIN) reads as 0.
			root, _ := t.RootIDOf(kernel.ThreadID(given.PID))
			pid = int32(root)
		}
		return ucred{pid: pid, uid: given.UID, gid: given.GID}
	}
	if t == nil {
		return ucred{}
	}
	c := t.Credentials()
	return ucred{pid: int32(t.ThreadGroup().ID()), uid: uint32(c.RealUID), gid: uint32(c.RealGID)}
}

// Read implements vfs.FileDescriptionImpl: recv(2) without flags; files
// passed with the data are closed.
func (s *sock) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	n, _, _, cm, err := s.RecvMsg(taskOf(ctx), dst, 0, false)
	cm.Release(ctx)
	return n, err
}

// Write implements vfs.FileDescriptionImpl: send(2) without flags.
func (s *sock) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	return s.SendMsg(taskOf(ctx), src, nil, 0, socket.ControlMessages{})
}

// takeRights makes the message's own references on the files being
// sent and charges them to the sender.
func (s *sock) takeRights(t *kernel.Task, m *message, cm socket.ControlMessages) error {
	if len(cm.Rights) == 0 {
		return nil
	}
	if t != nil {
		uid, err := s.p.charge(t, len(cm.Rights))
		if err != nil {
			return err
		}
		m.rightsUID = uid
	} else {
		s.p.inflightMu.Lock()
		s.p.inflight[0] += len(cm.Rights)
		s.p.inflightMu.Unlock()
	}
	m.rights = make([]*vfs.FileDescription, len(cm.Rights))
	for i, f := range cm.Rights {
		f.IncRef()
		m.rights[i] = f
	}
	return nil
}

// maxSegment bounds one stream segment, and the buffers kept in
// msgPool.
const maxSegment = 64 << 10

// msgPool recycles messages and their data buffers, so that steady
// traffic allocates nothing per send.
var msgPool = sync.Pool{New: func() any { return new(message) }}

// newMessage returns a message whose data holds n bytes read from src
// (fewer on a partial fault; EFAULT when nothing could be read).
func newMessage(ctx context.Context, src usermem.IOSequence, n int64) (*message, error) {
	m := msgPool.Get().(*message)
	if int64(cap(m.data)) < n {
		m.data = make([]byte, n, max(n, 256))
	}
	m.data = m.data[:n]
	if n == 0 {
		return m, nil
	}
	got, err := src.CopyIn(ctx, m.data)
	if got == 0 && err != nil {
		freeMessage(m)
		return nil, sys.EFAULT
	}
	m.data = m.data[:got]
	return m, nil
}

// freeMessage returns a message no queue holds any more to the pool.
func freeMessage(m *message) {
	data := m.data[:0]
	if cap(data) > maxSegment {
		data = nil
	}
	*m = message{data: data}
	msgPool.Put(m)
}

// SendMsg implements socket.Socket.
func (s *sock) SendMsg(t *kernel.Task, src usermem.IOSequence, to []byte, flags int, cm socket.ControlMessages) (int64, error) {
	if flags&sys.MSG_OOB != 0 {
		return 0, sys.EOPNOTSUPP
	}
	var ctx context.Context = context.Background()
	if t != nil {
		ctx = t
	}
	switch s.stype {
	case sys.SOCK_STREAM:
		return s.sendStream(ctx, t, src, to, cm)
	case sys.SOCK_SEQPACKET:
		s.mu.Lock()
		connected := s.connected
		s.mu.Unlock()
		if !connected {
			return 0, sys.ENOTCONN
		}
		return s.sendDgram(ctx, t, src, nil, cm)
	default:
		return s.sendDgram(ctx, t, src, to, cm)
	}
}

func (s *sock) sendStream(ctx context.Context, t *kernel.Task, src usermem.IOSequence, to []byte, cm socket.ControlMessages) (int64, error) {
	s.mu.Lock()
	shut, peer, connected, from := s.shutdown, s.peer, s.connected, s.addr
	s.mu.Unlock()
	if to != nil {
		if connected {
			return 0, sys.EISCONN
		}
		return 0, sys.EOPNOTSUPP
	}
	if !connected {
		return 0, sys.ENOTCONN
	}
	if shut&shutSend != 0 || peer == nil {
		return 0, sys.EPIPE
	}
	if src.NumBytes() == 0 {
		return 0, nil
	}
	var done int64
	for src.NumBytes() > 0 {
		room := s.sndBuf.Load() - s.inflight.Load()
		if room <= 0 {
			break
		}
		want := min(src.NumBytes(), room, maxSegment)
		m, err := newMessage(ctx, src, want)
		if err != nil {
			if done > 0 {
				break
			}
			return 0, err
		}
		n := int64(len(m.data))
		m.from, m.sender, m.cost, m.cred = from, s, n, senderCred(t, cm.Credentials)
		if done == 0 {
			// Files travel with the first segment.
			if err := s.takeRights(t, m, cm); err != nil {
				freeMessage(m)
				return 0, err
			}
		}
		s.inflight.Add(n)
		peer.mu.Lock()
		if peer.closed || peer.shutdown&shutRcv != 0 {
			peer.mu.Unlock()
			s.consumed(m)
			s.p.releaseRights(ctx, m)
			freeMessage(m)
			if done > 0 {
				break
			}
			return 0, sys.EPIPE
		}
		peer.rq = append(peer.rq, m)
		peer.rqBytes += n
		peer.mu.Unlock()
		// m belongs to the reader now: it may already be freed.
		peer.queue.Notify(waiter.ReadableEvents)
		done += n
		src = src.DropFirst(n)
		if n < want {
			break // a fault cut the copy short
		}
	}
	if done == 0 {
		return 0, sys.EAGAIN
	}
	return done, nil
}

func (s *sock) sendDgram(ctx context.Context, t *kernel.Task, src usermem.IOSequence, to []byte, cm socket.ControlMessages) (int64, error) {
	s.mu.Lock()
	shut, peer := s.shutdown, s.peer
	s.mu.Unlock()
	if shut&shutSend != 0 {
		return 0, sys.EPIPE
	}
	target := peer
	if to != nil {
		var err error
		if target, err = s.lookup(t, to); err != nil {
			return 0, err
		}
	} else if target == nil {
		return 0, sys.ENOTCONN
	}
	n := src.NumBytes()
	if n > s.sndBuf.Load()-32 {
		return 0, sys.EMSGSIZE
	}
	if s.inflight.Load() >= s.sndBuf.Load() {
		return 0, sys.EAGAIN
	}
	if s.passcred.Load() {
		if err := s.autobind(); err != nil {
			return 0, err
		}
	}
	m, err := newMessage(ctx, src, n)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	m.from = s.addr
	s.mu.Unlock()
	m.sender, m.cost, m.cred = s, int64(len(m.data))+dgramOverhead, senderCred(t, cm.Credentials)
	if err := s.takeRights(t, m, cm); err != nil {
		freeMessage(m)
		return 0, err
	}
	size := int64(len(m.data))
	s.inflight.Add(m.cost)
	target.mu.Lock()
	err = nil
	switch {
	case target.closed:
		if s.stype == sys.SOCK_SEQPACKET {
			err = sys.EPIPE
		} else {
			err = sys.ECONNREFUSED
		}
	case s.stype == sys.SOCK_DGRAM && target.peer != nil && target.peer != s:
		err = sys.EPERM
	case target.shutdown&shutRcv != 0:
		err = sys.EPIPE
	}
	if err != nil {
		target.mu.Unlock()
		s.consumed(m)
		s.p.releaseRights(ctx, m)
		freeMessage(m)
		if err == sys.ECONNREFUSED && target == peer {
			// Linux forgets a dead datagram peer once it has said so.
			s.mu.Lock()
			if s.peer == target {
				s.peer, s.connected = nil, false
			}
			s.mu.Unlock()
		}
		return 0, err
	}
	target.rq = append(target.rq, m)
	target.rqBytes += size
	target.mu.Unlock()
	target.queue.Notify(waiter.ReadableEvents)
	return size, nil
}

// RecvMsg implements socket.Socket.
func (s *sock) RecvMsg(t *kernel.Task, dst usermem.IOSequence, flags int, wantAddr bool) (int64, int, []byte, socket.ControlMessages, error) {
	if flags&sys.MSG_OOB != 0 {
		return 0, 0, nil, socket.ControlMessages{}, sys.EOPNOTSUPP
	}
	var ctx context.Context = context.Background()
	if t != nil {
		ctx = t
	}
	if s.stype == sys.SOCK_STREAM {
		return s.recvStream(ctx, dst, flags)
	}
	return s.recvDgram(ctx, dst, flags)
}

// emptyLocked is a receive on an empty queue: a pending error, EOF after
// shutdown, or EAGAIN.
func (s *sock) emptyLocked() error {
	if s.err != 0 {
		err := s.err
		s.err = 0
		return err
	}
	if s.shutdown&shutRcv != 0 {
		return nil
	}
	return sys.EAGAIN
}

// credControl returns the SCM_CREDENTIALS of m when the receiver t asked
// for them with SO_PASSCRED, the PID as t's namespace sees it.
func (s *sock) credControl(t *kernel.Task, m *message) *socket.Credentials {
	if !s.passcred.Load() {
		return nil
	}
	return &socket.Credentials{PID: pidFor(t, m.cred.pid), UID: m.cred.uid, GID: m.cred.gid}
}

// pidFor translates a root PID for t's PID namespace (0 if not visible).
func pidFor(t *kernel.Task, root int32) int32 {
	if t == nil {
		return root
	}
	return int32(t.IDOf(kernel.ThreadID(root)))
}

// rightsOf hands the receiver the message's files: the message's own
// references when it is consumed, new ones for MSG_PEEK.
func (s *sock) rightsOf(m *message, peek bool) []*vfs.FileDescription {
	if len(m.rights) == 0 {
		return nil
	}
	r := append([]*vfs.FileDescription(nil), m.rights...)
	if peek {
		for _, f := range r {
			f.IncRef()
		}
		return r
	}
	s.p.uncharge(m.rightsUID, len(m.rights))
	m.rights = nil
	return r
}

func (s *sock) recvStream(ctx context.Context, dst usermem.IOSequence, flags int) (int64, int, []byte, socket.ControlMessages, error) {
	var cm socket.ControlMessages
	peek := flags&sys.MSG_PEEK != 0
	s.mu.Lock()
	if !s.connected || s.listening {
		s.mu.Unlock()
		return 0, 0, nil, cm, sys.EINVAL
	}
	if len(s.rq) == 0 {
		err := s.emptyLocked()
		s.mu.Unlock()
		return 0, 0, nil, cm, err
	}
	if dst.NumBytes() == 0 {
		s.mu.Unlock()
		return 0, 0, nil, cm, nil
	}
	var done int64
	var from []byte
	var senderBuf [2]*sock
	senders := senderBuf[:0]
	var freeBuf [8]*message
	consumed := 0
	for i, m := range s.rq {
		if i > 0 && dst.NumBytes() == 0 {
			break
		}
		if i > 0 {
			// A read stops where files were passed and, with
			// SO_PASSCRED, where the sender's credentials change.
			if len(m.rights) > 0 || len(cm.Rights) > 0 || (cm.Credentials != nil && m.cred != s.rq[0].cred) {
				break
			}
		} else {
			from = m.from
			cm.Credentials = s.credControl(taskOf(ctx), m)
		}
		if r := s.rightsOf(m, peek); r != nil {
			cm.Rights = r
		}
		chunk := m.data[m.off:]
		n, err := dst.CopyOut(ctx, chunk[:min(int64(len(chunk)), dst.NumBytes())])
		if n == 0 && err != nil && done == 0 && len(chunk) > 0 {
			s.mu.Unlock()
			cm.Release(ctx)
			return 0, 0, nil, socket.ControlMessages{}, sys.EFAULT
		}
		done += int64(n)
		dst = dst.DropFirst(int64(n))
		if !peek {
			m.off += n
			s.rqBytes -= int64(n)
			if m.sender != nil {
				m.sender.inflight.Add(-int64(n))
				m.cost -= int64(n)
				senders = appendSender(senders, m.sender)
			}
			if m.off == len(m.data) {
				consumed++
			}
		}
		if n < len(chunk) || err != nil {
			break
		}
	}
	var freed []*message
	if consumed > 0 {
		freed = append(freeBuf[:0], s.rq[:consumed]...)
		s.dequeueLocked(consumed)
	}
	s.mu.Unlock()
	for _, m := range freed {
		freeMessage(m)
	}
	for _, snd := range senders {
		snd.queue.Notify(waiter.WritableEvents)
	}
	return done, 0, from, cm, nil
}

// dequeueLocked removes the first n messages, keeping the queue's
// backing array (shifting is cheap: queues are short).
func (s *sock) dequeueLocked(n int) {
	k := copy(s.rq, s.rq[n:])
	clear(s.rq[k:])
	s.rq = s.rq[:k]
}

func appendSender(l []*sock, s *sock) []*sock {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

func (s *sock) recvDgram(ctx context.Context, dst usermem.IOSequence, flags int) (int64, int, []byte, socket.ControlMessages, error) {
	var cm socket.ControlMessages
	peek := flags&sys.MSG_PEEK != 0
	s.mu.Lock()
	if s.stype == sys.SOCK_SEQPACKET && !s.connected {
		s.mu.Unlock()
		if s.listening {
			return 0, 0, nil, cm, sys.EINVAL
		}
		return 0, 0, nil, cm, sys.ENOTCONN
	}
	if len(s.rq) == 0 {
		err := s.emptyLocked()
		s.mu.Unlock()
		return 0, 0, nil, cm, err
	}
	m := s.rq[0]
	n, err := dst.CopyOut(ctx, m.data[:min(int64(len(m.data)), dst.NumBytes())])
	if n == 0 && err != nil && len(m.data) > 0 && dst.NumBytes() > 0 {
		s.mu.Unlock()
		return 0, 0, nil, cm, sys.EFAULT
	}
	var msgFlags int
	ret := int64(n)
	if len(m.data) > n {
		msgFlags |= sys.MSG_TRUNC
		if flags&sys.MSG_TRUNC != 0 {
			ret = int64(len(m.data))
		}
	}
	cm.Credentials = s.credControl(taskOf(ctx), m)
	cm.Rights = s.rightsOf(m, peek)
	from := m.from
	if !peek {
		s.dequeueLocked(1)
		s.rqBytes -= int64(len(m.data))
	}
	s.mu.Unlock()
	if !peek {
		s.consumed(m)
		if sender := m.sender; sender != nil {
			sender.queue.Notify(waiter.WritableEvents)
		}
		freeMessage(m)
	}
	return ret, msgFlags, from, cm, nil
}

// Ioctl implements vfs.FileDescriptionImpl: FIONREAD/SIOCINQ and
// SIOCOUTQ.
func (s *sock) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, _ uintptr, args [6]uintptr) (uintptr, error) {
	var v int64
	switch args[1] {
	case sys.SIOCINQ:
		s.mu.Lock()
		switch {
		case s.listening:
			s.mu.Unlock()
			return 0, sys.EINVAL
		case s.stype == sys.SOCK_DGRAM:
			if len(s.rq) > 0 {
				v = int64(len(s.rq[0].data))
			}
		default:
			v = s.rqBytes
		}
		s.mu.Unlock()
	case sys.SIOCOUTQ:
		v = s.inflight.Load()
	default:
		return 0, sys.ENOTTY
	}
	if _, err := io.CopyOut(ctx, hostarch.Addr(args[2]), socket.Int32Bytes(int32(min(v, 1<<31-1))), usermem.IOOpts{}); err != nil {
		return 0, sys.EFAULT
	}
	return 0, nil
}
