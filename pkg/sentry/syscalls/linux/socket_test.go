package linux

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"golang.org/x/sys/unix"
)

// sockTask is a task with AF_UNIX sockets and a scratch area for
// syscall arguments.
type sockTask struct {
	t    testing.TB
	task *kernel.Task
	mem  hostarch.Addr
}

// newSockTasks makes n tasks (processes) of one kernel that has AF_UNIX.
func newSockTasks(t testing.TB, n int) []*sockTask {
	t.Helper()
	mf, err := pgalloc.New("socket-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	k, err := kernel.New(kernel.Config{MemoryFile: mf, Syscalls: Table()})
	if err != nil {
		t.Fatal(err)
	}
	kerneltest.RegisterSockets(k)
	ctx := context.Background()
	path := staticTrue(t)
	root, err := kerneltest.NewRoot(ctx, k.VFS(), mf, path)
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	var out []*sockTask
	for range n {
		tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{Filename: path, Argv: []string{"t"}, Root: root, Umask: 0o022})
		if err != nil {
			t.Fatal(err)
		}
		task := tg.Leader()
		t.Cleanup(func() {
			task.FDTable().RemoveRange(ctx, 0, ^uint32(0), false)
			task.MemoryManager().DecUsers(ctx)
			task.FDTable().DecRef(ctx)
			task.FSContext().DecRef(ctx)
		})
		a, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 8*4096, uintptr(linux.PROT_READ|linux.PROT_WRITE), linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &sockTask{t: t, task: task, mem: hostarch.Addr(a)})
	}
	return out
}

func (s *sockTask) call(nr uintptr, a ...uintptr) (uintptr, error) {
	return s.task.ExecuteSyscall(nr, args(a...))
}

// must is call that fails the test on an error.
func (s *sockTask) must(nr uintptr, a ...uintptr) uintptr {
	s.t.Helper()
	v, err := s.call(nr, a...)
	if err != nil {
		s.t.Fatalf("%s: %v", linux.SyscallName(nr), err)
	}
	return v
}

// at is the scratch address off bytes in.
func (s *sockTask) at(off int) uintptr { return uintptr(s.mem) + uintptr(off) }

func (s *sockTask) put(off int, b []byte) uintptr {
	s.task.CopyOut(s.mem+hostarch.Addr(off), b)
	return s.at(off)
}

func (s *sockTask) get(off, n int) []byte {
	b := make([]byte, n)
	s.task.CopyIn(s.mem+hostarch.Addr(off), b)
	return b
}

func (s *sockTask) u32(off int) uint32 { return binary.LittleEndian.Uint32(s.get(off, 4)) }

func (s *sockTask) putU32(off int, v uint32) uintptr {
	return s.put(off, binary.LittleEndian.AppendUint32(nil, v))
}

// pair makes a socketpair and returns its descriptors.
func (s *sockTask) pair(stype int) (uintptr, uintptr) {
	s.t.Helper()
	s.must(linux.SYS_SOCKETPAIR, unix.AF_UNIX, uintptr(stype), 0, s.at(0))
	return uintptr(s.u32(0)), uintptr(s.u32(4))
}

// sockaddrUn builds a sockaddr_un for path (abstract when it starts
// with NUL), returning its length.
func sockaddrUn(path string) []byte {
	return append([]byte{unix.AF_UNIX, 0}, path...)
}

// msghdr lays out a struct msghdr at off with one iovec [buf, buf+n)
// and a control buffer [ctl, ctl+ctlLen); it returns its address.
func (s *sockTask) msghdr(off int, name uintptr, nameLen int, buf uintptr, n int, ctl uintptr, ctlLen int) uintptr {
	iov := make([]byte, 16)
	binary.LittleEndian.PutUint64(iov, uint64(buf))
	binary.LittleEndian.PutUint64(iov[8:], uint64(n))
	iovAddr := s.put(off+64, iov)
	m := make([]byte, sizeofMsghdr)
	binary.LittleEndian.PutUint64(m[0:], uint64(name))
	binary.LittleEndian.PutUint32(m[8:], uint32(nameLen))
	binary.LittleEndian.PutUint64(m[16:], uint64(iovAddr))
	binary.LittleEndian.PutUint64(m[24:], 1)
	binary.LittleEndian.PutUint64(m[32:], uint64(ctl))
	binary.LittleEndian.PutUint64(m[40:], uint64(ctlLen))
	return s.put(off, m)
}

func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, sizeofCmsghdr, cmsgAlign(sizeofCmsghdr+len(data)))
	binary.LittleEndian.PutUint64(b, uint64(sizeofCmsghdr+len(data)))
	binary.LittleEndian.PutUint32(b[8:], uint32(level))
	binary.LittleEndian.PutUint32(b[12:], uint32(typ))
	b = append(b, data...)
	for len(b) < cap(b) {
		b = append(b, 0)
	}
	return b
}

func fdsBytes(fds ...uint32) []byte {
	var b []byte
	for _, fd := range fds {
		b = binary.LittleEndian.AppendUint32(b, fd)
	}
	return b
}

func TestSocketArgumentErrors(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	for _, c := range []struct {
		name             string
		family, stype, p uintptr
		want             error
	}{
		{"family out of range", 9999, unix.SOCK_STREAM, 0, unix.EAFNOSUPPORT},
		{"family without provider", unix.AF_APPLETALK, unix.SOCK_DGRAM, 0, unix.EAFNOSUPPORT},
		{"unknown type flags", unix.AF_UNIX, unix.SOCK_STREAM | 0x100, 0, unix.EINVAL},
		{"type unix lacks", unix.AF_UNIX, unix.SOCK_RDM, 0, unix.ESOCKTNOSUPPORT},
		{"type past SOCK_MAX", unix.AF_UNIX, 11, 0, unix.EINVAL},
		{"bad protocol", unix.AF_UNIX, unix.SOCK_STREAM, 7, unix.EPROTONOSUPPORT},
	} {
		if _, err := s.call(linux.SYS_SOCKET, c.family, c.stype, c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: socket = %v, want %v", c.name, err, c.want)
		}
	}
	// A non-socket descriptor is ENOTSOCK, a closed one EBADF.
	s.must(linux.SYS_PIPE, s.at(0))
	pipeFD := uintptr(s.u32(0))
	for _, nr := range []uintptr{linux.SYS_LISTEN, linux.SYS_SHUTDOWN, linux.SYS_GETSOCKNAME, linux.SYS_SENDTO, linux.SYS_RECVFROM, linux.SYS_GETSOCKOPT} {
		if _, err := s.call(nr, pipeFD, 0, s.at(100), 0, 0, 0); !errors.Is(err, unix.ENOTSOCK) {
			t.Errorf("%s on a pipe: %v, want ENOTSOCK", linux.SyscallName(nr), err)
		}
		if _, err := s.call(nr, 999, 0, s.at(100), 0, 0, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("%s on a closed fd: %v, want EBADF", linux.SyscallName(nr), err)
		}
	}
	fd := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if fl := s.must(linux.SYS_FCNTL, fd, linux.F_GETFL); fl&linux.O_NONBLOCK == 0 || fl&linux.O_ACCMODE != linux.O_RDWR {
		t.Errorf("F_GETFL = %#x, want O_RDWR|O_NONBLOCK", fl)
	}
	if fl := s.must(linux.SYS_FCNTL, fd, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Errorf("F_GETFD = %d, want FD_CLOEXEC", fl)
	}
	// Address lengths beyond sockaddr_storage or negative are EINVAL.
	for _, l := range []uintptr{129, ^uintptr(0)} {
		if _, err := s.call(linux.SYS_BIND, fd, s.at(200), l); !errors.Is(err, unix.EINVAL) {
			t.Errorf("bind with addrlen %d: %v, want EINVAL", int32(l), err)
		}
	}
	if _, err := s.call(linux.SYS_SHUTDOWN, fd, 3); !errors.Is(err, unix.EINVAL) {
		t.Errorf("shutdown(3): %v, want EINVAL", err)
	}
	if _, err := s.call(linux.SYS_ACCEPT4, fd, 0, 0, 0x1); !errors.Is(err, unix.EINVAL) {
		t.Errorf("accept4 with a bad flag: %v, want EINVAL", err)
	}
	// fstat shows a socket.
	st := s.at(1024)
	s.must(linux.SYS_FSTAT, fd, st)
	if mode := s.u32(1024 + 24); mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("fstat mode %#o, want S_IFSOCK", mode)
	}
}

func TestSocketpairTransferAndOptions(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, b := s.pair(unix.SOCK_STREAM)
	s.put(100, []byte("hello"))
	if n := s.must(linux.SYS_WRITE, a, s.at(100), 5); n != 5 {
		t.Fatalf("write = %d", n)
	}
	s.put(110, []byte(" world"))
	s.must(linux.SYS_SENDTO, a, s.at(110), 6, 0, 0, 0)
	// A stream merges the writes.
	if n := s.must(linux.SYS_RECVFROM, b, s.at(200), 100, 0, 0, 0); n != 11 || string(s.get(200, 11)) != "hello world" {
		t.Fatalf("recv = %d %q", n, s.get(200, 11))
	}
	if _, err := s.call(linux.SYS_RECVFROM, b, s.at(200), 100, unix.MSG_DONTWAIT, 0, 0); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("recv on empty with MSG_DONTWAIT: %v", err)
	}
	// getsockopt: type, domain, truncation to the given length.
	s.putU32(300, 4)
	s.must(linux.SYS_GETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_TYPE, s.at(304), s.at(300))
	if v := s.u32(304); v != unix.SOCK_STREAM {
		t.Errorf("SO_TYPE = %d", v)
	}
	s.putU32(300, 4)
	s.must(linux.SYS_GETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_DOMAIN, s.at(304), s.at(300))
	if v := s.u32(304); v != unix.AF_UNIX {
		t.Errorf("SO_DOMAIN = %d", v)
	}
	s.putU32(300, 4)
	s.must(linux.SYS_GETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_SNDBUF, s.at(304), s.at(300))
	if v := s.u32(304); v != 212992 {
		t.Errorf("default SO_SNDBUF = %d, want 212992", v)
	}
	s.putU32(308, 10000)
	s.must(linux.SYS_SETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_SNDBUF, s.at(308), 4)
	s.putU32(300, 4)
	s.must(linux.SYS_GETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_SNDBUF, s.at(304), s.at(300))
	if v := s.u32(304); v != 20000 {
		t.Errorf("SO_SNDBUF after setting 10000 = %d, want 20000 (doubled)", v)
	}
	// SO_PEERCRED of a socketpair is the creator; a 2-byte buffer gets
	// 2 bytes and the length says so.
	s.putU32(300, 12)
	s.must(linux.SYS_GETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_PEERCRED, s.at(304), s.at(300))
	if pid, uid := s.u32(304), s.u32(308); pid != uint32(s.task.ThreadGroup().ID()) || uid != 0 || s.u32(300) != 12 {
		t.Errorf("SO_PEERCRED = pid %d uid %d len %d", pid, uid, s.u32(300))
	}
	s.putU32(300, 2)
	s.must(linux.SYS_GETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_PEERCRED, s.at(304), s.at(300))
	if s.u32(300) != 2 {
		t.Errorf("truncated getsockopt length = %d, want 2", s.u32(300))
	}
	if _, err := s.call(linux.SYS_GETSOCKOPT, a, unix.SOL_TCP, 1, s.at(304), s.at(300)); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("SOL_TCP option on AF_UNIX: %v, want EOPNOTSUPP", err)
	}
	// FIONREAD and SIOCOUTQ.
	s.must(linux.SYS_WRITE, a, s.at(100), 5)
	s.must(linux.SYS_IOCTL, b, unix.SIOCINQ, s.at(320))
	if v := s.u32(320); v != 5 {
		t.Errorf("SIOCINQ = %d, want 5", v)
	}
	s.must(linux.SYS_IOCTL, a, unix.SIOCOUTQ, s.at(320))
	if v := s.u32(320); v != 5 {
		t.Errorf("SIOCOUTQ = %d, want 5", v)
	}
	// Shutdown of writes gives the peer EOF after the data.
	s.must(linux.SYS_SHUTDOWN, a, unix.SHUT_WR)
	if n := s.must(linux.SYS_READ, b, s.at(200), 100); n != 5 {
		t.Fatalf("read before EOF = %d", n)
	}
	if n := s.must(linux.SYS_READ, b, s.at(200), 100); n != 0 {
		t.Fatalf("read after shutdown = %d, want EOF", n)
	}
	if _, err := s.call(linux.SYS_WRITE, a, s.at(100), 5); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write after SHUT_WR: %v, want EPIPE", err)
	}
}

func TestSendOnClosedPeerRaisesSIGPIPE(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, b := s.pair(unix.SOCK_STREAM)
	s.must(linux.SYS_CLOSE, b)
	if _, err := s.call(linux.SYS_SENDTO, a, s.at(100), 1, unix.MSG_NOSIGNAL, 0, 0); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("send to a closed peer: %v, want EPIPE", err)
	}
	if s.task.PendingSignals().Contains(linux.SIGPIPE) {
		t.Fatal("MSG_NOSIGNAL still raised SIGPIPE")
	}
	if _, err := s.call(linux.SYS_SENDTO, a, s.at(100), 1, 0, 0, 0); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("send to a closed peer: %v, want EPIPE", err)
	}
	if !s.task.PendingSignals().Contains(linux.SIGPIPE) {
		t.Fatal("EPIPE without MSG_NOSIGNAL did not raise SIGPIPE")
	}
}

func TestBindConnectAcceptAddresses(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	srv := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	addr := sockaddrUn("/sock")
	s.put(100, addr)
	s.must(linux.SYS_BIND, srv, s.at(100), uintptr(len(addr)))
	if _, err := s.call(linux.SYS_BIND, srv, s.at(100), uintptr(len(addr))); !errors.Is(err, unix.EINVAL) {
		t.Errorf("second bind: %v, want EINVAL", err)
	}
	other := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if _, err := s.call(linux.SYS_BIND, other, s.at(100), uintptr(len(addr))); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind to a used path: %v, want EADDRINUSE", err)
	}
	cl := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if _, err := s.call(linux.SYS_CONNECT, cl, s.at(100), uintptr(len(addr))); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("connect before listen: %v, want ECONNREFUSED", err)
	}
	s.put(150, sockaddrUn("/missing"))
	if _, err := s.call(linux.SYS_CONNECT, cl, s.at(150), 10); !errors.Is(err, unix.ENOENT) {
		t.Errorf("connect to a missing path: %v, want ENOENT", err)
	}
	s.must(linux.SYS_LISTEN, srv, 0)
	s.must(linux.SYS_CONNECT, cl, s.at(100), uintptr(len(addr)))
	// Backlog 0 admits one waiting connection; the next would block.
	cl2 := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if _, err := s.call(linux.SYS_CONNECT, cl2, s.at(100), uintptr(len(addr))); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("connect to a full backlog: %v, want EAGAIN", err)
	}
	// accept4 reports the (unbound) peer's address, truncated to the
	// buffer with the full length returned.
	s.putU32(300, 1)
	conn := s.must(linux.SYS_ACCEPT4, srv, s.at(304), s.at(300), unix.SOCK_CLOEXEC)
	if l := s.u32(300); l != 2 {
		t.Errorf("accepted peer address length %d, want 2 (unbound)", l)
	}
	if fl := s.must(linux.SYS_FCNTL, conn, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Errorf("accept4(SOCK_CLOEXEC) F_GETFD = %d", fl)
	}
	// getpeername of the client is the server's path; a short buffer is
	// filled and the full length returned.
	s.putU32(300, 4)
	s.must(linux.SYS_GETPEERNAME, cl, s.at(304), s.at(300))
	if l := s.u32(300); l != uint32(len(addr)+1) || string(s.get(304, 4)) != string(addr[:4]) {
		t.Errorf("getpeername = %q len %d, want prefix of %q len %d", s.get(304, 4), l, addr, len(addr)+1)
	}
	s.putU32(300, 128)
	s.must(linux.SYS_GETSOCKNAME, conn, s.at(304), s.at(300))
	if got := string(s.get(304, int(s.u32(300)))); got != string(append(addr, 0)) {
		t.Errorf("accepted socket's name %q, want the listener's", got)
	}
	s.must(linux.SYS_FCNTL, srv, linux.F_SETFL, linux.O_NONBLOCK)
	if _, err := s.call(linux.SYS_ACCEPT, srv, 0, 0); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("accept on an empty non-blocking listener: %v, want EAGAIN", err)
	}
	// The bound path is a socket file.
	s.put(400, []byte("/sock\x00"))
	s.must(linux.SYS_STAT, s.at(400), s.at(1024))
	if mode := s.u32(1024 + 24); mode&unix.S_IFMT != unix.S_IFSOCK || mode&0o777 != 0o755 {
		t.Errorf("bound path mode %#o, want socket 0755 (umask 022)", mode)
	}
}

func TestAbstractAndAutobind(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	s.put(100, sockaddrUn("\x00abs"))
	s.must(linux.SYS_BIND, a, s.at(100), 6)
	b := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if _, err := s.call(linux.SYS_BIND, b, s.at(100), 6); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("abstract name reuse: %v, want EADDRINUSE", err)
	}
	// bind with only the family autobinds to "\0" + 5 hex digits.
	s.must(linux.SYS_BIND, b, s.at(100), 2)
	s.putU32(300, 128)
	s.must(linux.SYS_GETSOCKNAME, b, s.at(304), s.at(300))
	name := s.get(304, int(s.u32(300)))
	if len(name) != 8 || name[2] != 0 {
		t.Fatalf("autobind name %q, want 8 bytes starting with NUL", name)
	}
	for _, c := range name[3:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			t.Fatalf("autobind name %q is not hex", name)
		}
	}
	// A datagram to the abstract name arrives with the sender's name.
	s.put(200, []byte("dgram"))
	s.must(linux.SYS_SENDTO, b, s.at(200), 5, 0, s.at(100), 6)
	s.putU32(300, 128)
	if n := s.must(linux.SYS_RECVFROM, a, s.at(400), 3, unix.MSG_TRUNC, s.at(304), s.at(300)); n != 5 {
		t.Errorf("recvfrom(MSG_TRUNC) into 3 bytes = %d, want the real length 5", n)
	}
	if from := s.get(304, int(s.u32(300))); string(from) != string(name) {
		t.Errorf("sender address %q, want %q", from, name)
	}
	// Closing frees the abstract name.
	s.must(linux.SYS_CLOSE, a)
	c := s.must(linux.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	s.must(linux.SYS_BIND, c, s.at(100), 6)
}

func TestScmRightsRoundTripAndTruncation(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, b := s.pair(unix.SOCK_DGRAM)
	s.must(linux.SYS_PIPE, s.at(0))
	r, w := uintptr(s.u32(0)), uintptr(s.u32(4))
	ctl := cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdsBytes(uint32(w), uint32(w)))
	s.put(100, []byte("x"))
	ctlAddr := s.put(512, ctl)
	s.must(linux.SYS_SENDMSG, a, s.msghdr(1024, 0, 0, s.at(100), 1, ctlAddr, len(ctl)), 0)
	// Received with MSG_CMSG_CLOEXEC: two new descriptors for the pipe.
	rctl := s.at(2048)
	mh := s.msghdr(1024, 0, 0, s.at(200), 10, rctl, 64)
	if n := s.must(linux.SYS_RECVMSG, b, mh, unix.MSG_CMSG_CLOEXEC); n != 1 {
		t.Fatalf("recvmsg = %d", n)
	}
	got := s.get(2048, 24)
	if l := binary.LittleEndian.Uint64(got); l != 24 || binary.LittleEndian.Uint32(got[12:]) != unix.SCM_RIGHTS {
		t.Fatalf("control message %x", got)
	}
	if cl := binary.LittleEndian.Uint64(s.get(1024+40, 8)); cl != 24 {
		t.Errorf("msg_controllen = %d, want 24", cl)
	}
	fd1 := uintptr(binary.LittleEndian.Uint32(got[16:]))
	fd2 := uintptr(binary.LittleEndian.Uint32(got[20:]))
	if fl := s.must(linux.SYS_FCNTL, fd1, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Errorf("received fd flags %d, want FD_CLOEXEC", fl)
	}
	s.put(300, []byte("via"))
	s.must(linux.SYS_WRITE, fd1, s.at(300), 3)
	if n := s.must(linux.SYS_READ, r, s.at(310), 10); n != 3 {
		t.Errorf("read through the passed pipe = %d", n)
	}
	// A control buffer with room for one descriptor of two: MSG_CTRUNC,
	// and the other is closed, not leaked.
	s.must(linux.SYS_SENDMSG, a, s.msghdr(1024, 0, 0, s.at(100), 1, ctlAddr, len(ctl)), 0)
	mh = s.msghdr(1024, 0, 0, s.at(200), 10, rctl, 20)
	s.must(linux.SYS_RECVMSG, b, mh, 0)
	if fl := s.u32(1024 + 48); fl&unix.MSG_CTRUNC == 0 {
		t.Errorf("msg_flags %#x, want MSG_CTRUNC", fl)
	}
	if l := binary.LittleEndian.Uint64(s.get(2048, 8)); l != 20 {
		t.Errorf("truncated cmsg_len = %d, want 20", l)
	}
	// Files sent and never received are closed with the socket: once
	// every write end is gone, the pipe reads EOF.
	s.must(linux.SYS_SENDMSG, a, s.msghdr(1024, 0, 0, s.at(100), 1, ctlAddr, len(ctl)), 0)
	s.must(linux.SYS_CLOSE, w)
	s.must(linux.SYS_CLOSE, fd1)
	s.must(linux.SYS_CLOSE, fd2)
	s.must(linux.SYS_CLOSE, uintptr(binary.LittleEndian.Uint32(s.get(2048+16, 4))))
	s.must(linux.SYS_CLOSE, b)
	s.must(linux.SYS_FCNTL, r, linux.F_SETFL, linux.O_NONBLOCK)
	if n, err := s.call(linux.SYS_READ, r, s.at(310), 10); n != 0 || err != nil {
		t.Errorf("pipe read after the in-flight write ends were dropped = %d, %v; want EOF", n, err)
	}
}

func TestSendmsgControlErrors(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, _ := s.pair(unix.SOCK_DGRAM)
	s.put(100, []byte("x"))
	for _, c := range []struct {
		name string
		ctl  []byte
		want error
	}{
		{"bad descriptor", cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdsBytes(500)), unix.EBADF},
		{"unknown SOL_SOCKET type", cmsg(unix.SOL_SOCKET, 99, nil), unix.EINVAL},
		{"cmsg_len past the buffer", func() []byte { b := cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, fdsBytes(0)); b[0] = 200; return b }(), unix.EINVAL},
		{"short credentials", cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, make([]byte, 8)), unix.EINVAL},
		{"someone else's pid", cmsg(unix.SOL_SOCKET, unix.SCM_CREDENTIALS, fdsBytes(4242, 0, 0)), nil},
	} {
		ctlAddr := s.put(512, c.ctl)
		_, err := s.call(linux.SYS_SENDMSG, a, s.msghdr(1024, 0, 0, s.at(100), 1, ctlAddr, len(c.ctl)), 0)
		if c.want == nil {
			// Root (CAP_SYS_ADMIN) may claim any pid.
			if err != nil {
				t.Errorf("%s as root: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Too many iovecs is EMSGSIZE; a huge control buffer ENOBUFS.
	mh := s.msghdr(1024, 0, 0, s.at(100), 1, 0, 0)
	s.put(1024+24, binary.LittleEndian.AppendUint64(nil, 1025))
	if _, err := s.call(linux.SYS_SENDMSG, a, mh, 0); !errors.Is(err, unix.EMSGSIZE) {
		t.Errorf("msg_iovlen 1025: %v, want EMSGSIZE", err)
	}
	mh = s.msghdr(1024, 0, 0, s.at(100), 1, s.at(512), 1<<30)
	if _, err := s.call(linux.SYS_SENDMSG, a, mh, 0); !errors.Is(err, unix.ENOBUFS) {
		t.Errorf("1 GiB control buffer: %v, want ENOBUFS", err)
	}
	if _, err := s.call(linux.SYS_SENDMSG, a, 0, 0); !errors.Is(err, unix.EFAULT) {
		t.Errorf("sendmsg(NULL): %v, want EFAULT", err)
	}
}

func TestPasscredGivesCredentials(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, b := s.pair(unix.SOCK_SEQPACKET)
	s.putU32(300, 1)
	s.must(linux.SYS_SETSOCKOPT, b, unix.SOL_SOCKET, unix.SO_PASSCRED, s.at(300), 4)
	s.put(100, []byte("pkt"))
	s.must(linux.SYS_WRITE, a, s.at(100), 3)
	mh := s.msghdr(1024, 0, 0, s.at(200), 10, s.at(2048), 64)
	s.must(linux.SYS_RECVMSG, b, mh, 0)
	got := s.get(2048, 28)
	if binary.LittleEndian.Uint64(got) != 28 || binary.LittleEndian.Uint32(got[12:]) != unix.SCM_CREDENTIALS {
		t.Fatalf("control %x, want SCM_CREDENTIALS", got)
	}
	if pid := binary.LittleEndian.Uint32(got[16:]); pid != uint32(s.task.ThreadGroup().ID()) {
		t.Errorf("credentials pid %d", pid)
	}
}

func TestMmsgCalls(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, b := s.pair(unix.SOCK_DGRAM)
	s.put(100, []byte("onetwo!"))
	// Two mmsghdrs: "one" and "two!".
	m0 := s.msghdr(1024, 0, 0, s.at(100), 3, 0, 0)
	s.msghdr(1024+sizeofMmsghdr, 0, 0, s.at(103), 4, 0, 0)
	// msghdr places its iovec at off+64, which is the next entry: move
	// the iovecs elsewhere.
	iov0 := s.put(3000, append(binary.LittleEndian.AppendUint64(nil, uint64(s.at(100))), binary.LittleEndian.AppendUint64(nil, 3)...))
	iov1 := s.put(3016, append(binary.LittleEndian.AppendUint64(nil, uint64(s.at(103))), binary.LittleEndian.AppendUint64(nil, 4)...))
	s.put(1024+16, binary.LittleEndian.AppendUint64(nil, uint64(iov0)))
	s.put(1024+sizeofMmsghdr+16, binary.LittleEndian.AppendUint64(nil, uint64(iov1)))
	if n := s.must(linux.SYS_SENDMMSG, a, m0, 2, 0); n != 2 {
		t.Fatalf("sendmmsg = %d", n)
	}
	if l0, l1 := s.u32(1024+sizeofMsghdr), s.u32(1024+sizeofMmsghdr+sizeofMsghdr); l0 != 3 || l1 != 4 {
		t.Errorf("msg_len = %d, %d", l0, l1)
	}
	// recvmmsg with room for 3 and MSG_WAITFORONE gets the 2 there are.
	for i := 0; i < 3; i++ {
		iov := s.put(3100+16*i, append(binary.LittleEndian.AppendUint64(nil, uint64(s.at(4000+100*i))), binary.LittleEndian.AppendUint64(nil, 50)...))
		s.msghdr(5000+sizeofMmsghdr*i, 0, 0, 0, 0, 0, 0)
		s.put(5000+sizeofMmsghdr*i+16, binary.LittleEndian.AppendUint64(nil, uint64(iov)))
		s.put(5000+sizeofMmsghdr*i+24, binary.LittleEndian.AppendUint64(nil, 1))
	}
	if n := s.must(linux.SYS_RECVMMSG, b, s.at(5000), 3, unix.MSG_WAITFORONE, 0); n != 2 {
		t.Fatalf("recvmmsg = %d, want 2", n)
	}
	if got := string(s.get(4000, 3)) + string(s.get(4100, 4)); got != "onetwo!" {
		t.Errorf("received %q", got)
	}
	if l := s.u32(5000 + sizeofMmsghdr + sizeofMsghdr); l != 4 {
		t.Errorf("second msg_len = %d", l)
	}
}

func TestBlockingWaitsTimeoutsAndSignals(t *testing.T) {
	ts := newSockTasks(t, 2)
	s, peer := ts[0], ts[1]
	a, b := s.pair(unix.SOCK_STREAM)
	// Give the peer task the other end.
	f, _, _ := s.task.FDTable().Get(int32(a))
	pa, err := peer.task.FDTable().NewFD(0, 1024, f, kernel.FDFlags{})
	f.DecRef(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A blocking MSG_WAITALL receive is woken by two later sends and
	// returns once all 6 bytes came.
	peer.put(0, []byte("abcdef"))
	done := make(chan struct{})
	var n uintptr
	var rerr error
	go func() {
		n, rerr = s.call(linux.SYS_RECVFROM, b, s.at(100), 6, unix.MSG_WAITALL, 0, 0)
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	peer.must(linux.SYS_WRITE, uintptr(pa), peer.at(0), 3)
	time.Sleep(10 * time.Millisecond)
	peer.must(linux.SYS_WRITE, uintptr(pa), peer.at(3), 3)
	<-done
	if rerr != nil || n != 6 || string(s.get(100, 6)) != "abcdef" {
		t.Fatalf("MSG_WAITALL recv = %d %q, %v", n, s.get(100, 6), rerr)
	}
	// SO_RCVTIMEO: an empty blocking receive gives EAGAIN when it passes.
	tv := binary.LittleEndian.AppendUint64(nil, 0)
	tv = binary.LittleEndian.AppendUint64(tv, 20000) // 20ms
	s.put(200, tv)
	s.must(linux.SYS_SETSOCKOPT, b, unix.SOL_SOCKET, unix.SO_RCVTIMEO, s.at(200), 16)
	if _, err := s.call(linux.SYS_RECVFROM, b, s.at(100), 6, 0, 0, 0); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("recv past SO_RCVTIMEO: %v, want EAGAIN", err)
	}
	s.putU32(300, 16)
	s.must(linux.SYS_GETSOCKOPT, b, unix.SOL_SOCKET, unix.SO_RCVTIMEO, s.at(304), s.at(300))
	if usec := binary.LittleEndian.Uint64(s.get(312, 8)); usec != 20000 {
		t.Errorf("SO_RCVTIMEO reads back %dus", usec)
	}
	s.put(200, binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 0), 1000000))
	if _, err := s.call(linux.SYS_SETSOCKOPT, b, unix.SOL_SOCKET, unix.SO_RCVTIMEO, s.at(200), 16); !errors.Is(err, unix.EDOM) {
		t.Errorf("tv_usec 1e6: %v, want EDOM", err)
	}
	// A pending signal interrupts a wait with a timeout as EINTR, and
	// one without as ERESTARTSYS.
	s.task.SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGUSR1), Code: linux.SI_USER})
	if _, err := s.call(linux.SYS_RECVFROM, b, s.at(100), 6, 0, 0, 0); !errors.Is(err, unix.EINTR) {
		t.Errorf("interrupted recv with SO_RCVTIMEO: %v, want EINTR", err)
	}
	_, c := s.pair(unix.SOCK_STREAM)
	if _, err := s.call(linux.SYS_RECVFROM, c, s.at(100), 6, 0, 0, 0); !errors.Is(err, linux.ERESTARTSYS) {
		t.Errorf("interrupted recv: %v, want ERESTARTSYS", err)
	}
}

func TestSendBlocksUntilRoom(t *testing.T) {
	ts := newSockTasks(t, 2)
	s, peer := ts[0], ts[1]
	a, b := s.pair(unix.SOCK_STREAM)
	f, _, _ := s.task.FDTable().Get(int32(b))
	pb, _ := peer.task.FDTable().NewFD(0, 1024, f, kernel.FDFlags{})
	f.DecRef(context.Background())
	s.putU32(0, 4608)
	s.must(linux.SYS_SETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_SNDBUF, s.at(0), 4)
	// 20000 bytes through a 9216-byte send buffer: the sender blocks
	// until the reader drains, and gets all of it through.
	const total = 20000
	done := make(chan error, 1)
	go func() {
		n, err := s.call(linux.SYS_SENDTO, a, s.at(4096), total, 0, 0, 0)
		if err == nil && n != total {
			err = errors.New("short send")
		}
		done <- err
	}()
	got := 0
	for got < total {
		n, err := peer.call(linux.SYS_READ, uintptr(pb), peer.at(0), 4096)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got += int(n)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocking send: %v", err)
	}
}

// BenchmarkSocketpairSendRecv is one 64-byte send(2) and recv(2) on an
// AF_UNIX stream pair, through the syscall layer.
func BenchmarkSocketpairSendRecv(b *testing.B) {
	s := newSockTasks(b, 1)[0]
	a, c := s.pair(unix.SOCK_STREAM)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.call(linux.SYS_SENDTO, a, s.at(100), 64, 0, 0, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := s.call(linux.SYS_RECVFROM, c, s.at(200), 64, 0, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
}
