package unix_test

import (
	"bytes"
	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/socket"
	sunix "carapace.dev/carapace/pkg/sentry/socket/unix"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// env is a platform-less kernel with one task and an AF_UNIX provider.
type env struct {
	t    testing.TB
	task *kernel.Task
	p    *sunix.Provider
}

func newEnv(t testing.TB) *env {
	t.Helper()
	k := kerneltest.NewKernel(t, "unix-test")
	p := sunix.NewProvider()
	k.RegisterSocketProvider(unix.AF_UNIX, p)
	return &env{t: t, task: kerneltest.NewTestTask(t, k), p: p}
}

func (e *env) pair(stype int) (*vfs.FileDescription, *vfs.FileDescription, socket.Socket, socket.Socket) {
	e.t.Helper()
	a, b, err := e.p.Pair(e.task, stype, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	sa, _ := socket.FromFile(a)
	sb, _ := socket.FromFile(b)
	return a, b, sa, sb
}

func (e *env) send(s socket.Socket, data string, to []byte, cm socket.ControlMessages) (int64, error) {
	return s.SendMsg(e.task, sockettest.Seq([]byte(data)), to, 0, cm)
}

func (e *env) recv(s socket.Socket, n int, flags int) (string, int, socket.ControlMessages, error) {
	buf := make([]byte, n)
	got, mflags, _, cm, err := s.RecvMsg(e.task, sockettest.Seq(buf), flags, false)
	return string(buf[:min(int(got), n)]), mflags, cm, err
}

func TestStreamEOFAndHangupReadiness(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_STREAM)
	defer b.DecRef(e.task)
	if r := b.Readiness(waiter.AllEvents); r&waiter.EventIn != 0 || r&waiter.EventOut == 0 {
		t.Fatalf("idle readiness %#x, want writable only", r)
	}
	ent, ch := waiter.NewChannelEntry(waiter.EventIn | waiter.EventRdHUp)
	b.EventRegister(ent)
	defer b.EventUnregister(ent)
	if _, err := e.send(sa, "abc", nil, socket.ControlMessages{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("no EventIn notification after a send")
	}
	a.DecRef(e.task)
	r := b.Readiness(waiter.AllEvents)
	if r&(waiter.EventHUp|waiter.EventRdHUp|waiter.EventIn) != waiter.EventHUp|waiter.EventRdHUp|waiter.EventIn {
		t.Fatalf("readiness after peer close %#x, want IN|HUP|RDHUP", r)
	}
	if got, _, _, err := e.recv(sb, 10, 0); err != nil || got != "abc" {
		t.Fatalf("recv = %q, %v", got, err)
	}
	if got, _, _, err := e.recv(sb, 10, 0); err != nil || got != "" {
		t.Fatalf("recv at EOF = %q, %v; want 0, nil", got, err)
	}
	if _, err := e.send(sb, "x", nil, socket.ControlMessages{}); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("send to a closed peer: %v, want EPIPE", err)
	}
}

func TestCloseWithUnreadDataResetsPeer(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_STREAM)
	defer a.DecRef(e.task)
	e.send(sa, "unread", nil, socket.ControlMessages{})
	b.DecRef(e.task)
	if _, _, _, err := e.recv(sa, 10, 0); !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("recv after the peer closed with unread data: %v, want ECONNRESET", err)
	}
	if a.Readiness(waiter.AllEvents)&waiter.EventErr != 0 {
		t.Fatal("the error is still pending after it was reported")
	}
	_ = sb
}

func TestDatagramBoundariesPeekAndTrunc(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_DGRAM)
	defer a.DecRef(e.task)
	defer b.DecRef(e.task)
	e.send(sa, "first", nil, socket.ControlMessages{})
	e.send(sa, "", nil, socket.ControlMessages{})
	e.send(sa, "third!", nil, socket.ControlMessages{})
	if got, fl, _, _ := e.recv(sb, 3, unix.MSG_PEEK); got != "fir" || fl&unix.MSG_TRUNC == 0 {
		t.Fatalf("peek = %q flags %#x", got, fl)
	}
	if got, fl, _, _ := e.recv(sb, 3, 0); got != "fir" || fl&unix.MSG_TRUNC == 0 {
		t.Fatalf("truncated recv = %q flags %#x", got, fl)
	}
	if got, _, _, err := e.recv(sb, 10, 0); got != "" || err != nil {
		t.Fatalf("empty datagram = %q, %v", got, err)
	}
	buf := make([]byte, 2)
	n, _, _, _, err := sb.RecvMsg(e.task, sockettest.Seq(buf), unix.MSG_TRUNC, false)
	if err != nil || n != 6 {
		t.Fatalf("MSG_TRUNC recv = %d, %v; want the real length 6", n, err)
	}
	if _, _, _, err := e.recv(sb, 10, 0); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("empty queue: %v, want EAGAIN", err)
	}
}

func TestSeqpacketBoundariesAndEOF(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_SEQPACKET)
	defer b.DecRef(e.task)
	e.send(sa, "one", nil, socket.ControlMessages{})
	e.send(sa, "two", nil, socket.ControlMessages{})
	if got, _, _, _ := e.recv(sb, 10, 0); got != "one" {
		t.Fatalf("first packet %q", got)
	}
	a.DecRef(e.task)
	if got, _, _, _ := e.recv(sb, 10, 0); got != "two" {
		t.Fatalf("second packet %q", got)
	}
	if got, _, _, err := e.recv(sb, 10, 0); got != "" || err != nil {
		t.Fatalf("after the peer closed: %q, %v; want EOF", got, err)
	}
}

func TestDgramAddressingErrors(t *testing.T) {
	e := newEnv(t)
	mk := func(stype int) (*vfs.FileDescription, socket.Socket) {
		f, err := e.p.Socket(e.task, stype, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.DecRef(e.task) })
		s, _ := socket.FromFile(f)
		return f, s
	}
	_, srv := mk(unix.SOCK_DGRAM)
	name := []byte{unix.AF_UNIX, 0, 0, 'd'}
	if err := srv.Bind(e.task, name); err != nil {
		t.Fatal(err)
	}
	_, other := mk(unix.SOCK_DGRAM)
	_, third := mk(unix.SOCK_DGRAM)
	third.Bind(e.task, []byte{unix.AF_UNIX, 0, 0, 't'})
	// srv connected to third accepts datagrams only from third.
	if err := srv.Connect(e.task, []byte{unix.AF_UNIX, 0, 0, 't'}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(other, "x", name, socket.ControlMessages{}); !errors.Is(err, unix.EPERM) {
		t.Errorf("send to a socket connected elsewhere: %v, want EPERM", err)
	}
	if _, err := e.send(third, "x", name, socket.ControlMessages{}); err != nil {
		t.Errorf("send from its peer: %v", err)
	}
	_, stream := mk(unix.SOCK_STREAM)
	if err := stream.Connect(e.task, name); !errors.Is(err, unix.EPROTOTYPE) {
		t.Errorf("stream connect to a datagram socket: %v, want EPROTOTYPE", err)
	}
	if _, err := e.send(other, "x", nil, socket.ControlMessages{}); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("unaddressed send on an unconnected datagram socket: %v, want ENOTCONN", err)
	}
	if _, err := e.send(other, "x", []byte{unix.AF_UNIX, 0, 0, 'n', 'o'}, socket.ControlMessages{}); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("send to an unused abstract name: %v, want ECONNREFUSED", err)
	}
	if err := other.Bind(e.task, []byte{unix.AF_INET, 0, 'x'}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bind with AF_INET: %v, want EINVAL", err)
	}
	if err := other.Listen(e.task, 1); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("listen on a datagram socket: %v, want EOPNOTSUPP", err)
	}
}

// TestRightsReferences checks SCM_RIGHTS bookkeeping: a file in flight
// is held by the message, counted, and closed when the receiving socket
// goes without receiving it; a received file is the receiver's.
func TestRightsReferences(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_STREAM)
	defer a.DecRef(e.task)
	v := e.task.Kernel().VFS()
	var released atomic.Int32
	f := kerneltest.NewWriterFile(v, nil)
	f.OnRelease(func(context.Context) { released.Add(1) })
	if _, err := e.send(sa, "fd", nil, socket.ControlMessages{Rights: []*vfs.FileDescription{f, f}}); err != nil {
		t.Fatal(err)
	}
	if n := e.p.InflightFDs(); n != 2 {
		t.Fatalf("in flight %d, want 2", n)
	}
	// Peek hands out new references and leaves the message's.
	_, _, cm, _ := e.recv(sb, 1, unix.MSG_PEEK)
	if len(cm.Rights) != 2 || e.p.InflightFDs() != 2 {
		t.Fatalf("peek gave %d files, %d in flight", len(cm.Rights), e.p.InflightFDs())
	}
	cm.Release(e.task)
	f.DecRef(e.task) // the sender closes its descriptor
	if released.Load() != 0 {
		t.Fatal("file released while in flight")
	}
	b.DecRef(e.task) // the receiver goes without receiving
	if released.Load() != 1 || e.p.InflightFDs() != 0 {
		t.Fatalf("after the receiver closed: released %d, in flight %d", released.Load(), e.p.InflightFDs())
	}

	// Received files belong to the receiver; the read stops after them.
	c, d, sc, sd := e.pair(unix.SOCK_STREAM)
	defer c.DecRef(e.task)
	defer d.DecRef(e.task)
	g := kerneltest.NewWriterFile(v, nil)
	e.send(sc, "ab", nil, socket.ControlMessages{Rights: []*vfs.FileDescription{g}})
	e.send(sc, "cd", nil, socket.ControlMessages{})
	got, _, cm, err := e.recv(sd, 10, 0)
	if err != nil || got != "ab" || len(cm.Rights) != 1 || cm.Rights[0] != g {
		t.Fatalf("recv = %q, %d files, %v; want \"ab\" with the file", got, len(cm.Rights), err)
	}
	if e.p.InflightFDs() != 0 {
		t.Fatalf("in flight after receipt: %d", e.p.InflightFDs())
	}
	cm.Release(e.task)
	g.DecRef(e.task)
	if got, _, _, _ := e.recv(sd, 10, 0); got != "cd" {
		t.Fatalf("next read %q", got)
	}
}

func TestInflightLimit(t *testing.T) {
	e := newEnv(t)
	a, b, sa, _ := e.pair(unix.SOCK_DGRAM)
	defer a.DecRef(e.task)
	defer b.DecRef(e.task)
	e.task.SetCredentials(auth.NewUser(1000, 1000, nil))
	e.task.ThreadGroup().SetLimit(linux.RLIMIT_NOFILE, linux.Rlimit{Cur: 3, Max: 3})
	f := kerneltest.NewWriterFile(e.task.Kernel().VFS(), nil)
	defer f.DecRef(e.task)
	rights := socket.ControlMessages{Rights: []*vfs.FileDescription{f, f}}
	if _, err := e.send(sa, "1", nil, rights); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(sa, "2", nil, rights); !errors.Is(err, unix.ETOOMANYREFS) {
		t.Fatalf("past RLIMIT_NOFILE in flight: %v, want ETOOMANYREFS", err)
	}
}

func TestSndbufFullIsEAGAIN(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_STREAM)
	defer a.DecRef(e.task)
	defer b.DecRef(e.task)
	sa.SetSockOpt(e.task, unix.SOL_SOCKET, unix.SO_SNDBUF, socket.Int32Bytes(4096))
	big := make([]byte, 20000)
	n, err := sa.SendMsg(e.task, sockettest.Seq(big), nil, 0, socket.ControlMessages{})
	if err != nil || n != 8192 {
		t.Fatalf("send into an 8192-byte buffer = %d, %v", n, err)
	}
	if a.Readiness(waiter.EventOut) != 0 {
		t.Fatal("writable with a full buffer")
	}
	if _, err := sa.SendMsg(e.task, sockettest.Seq(big), nil, 0, socket.ControlMessages{}); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("send into a full buffer: %v, want EAGAIN", err)
	}
	ent, ch := waiter.NewChannelEntry(waiter.EventOut)
	a.EventRegister(ent)
	defer a.EventUnregister(ent)
	e.recv(sb, 8000, 0)
	select {
	case <-ch:
	default:
		t.Fatal("no EventOut after the reader drained")
	}
	if a.Readiness(waiter.EventOut) == 0 {
		t.Fatal("not writable after draining")
	}
}

// benchSendRecv sends size bytes on one end of a pair of stype and
// receives them on the other, once per iteration.
func benchSendRecv(b *testing.B, stype, size int) {
	e := newEnv(b)
	fa, fb, sa, sb := e.pair(stype)
	defer fa.DecRef(e.task)
	defer fb.DecRef(e.task)
	src, dst := sockettest.Seq(make([]byte, size)), sockettest.Seq(make([]byte, size))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sa.SendMsg(e.task, src, nil, 0, socket.ControlMessages{}); err != nil {
			b.Fatal(err)
		}
		if _, _, _, _, err := sb.RecvMsg(e.task, dst, 0, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamSendRecv4K(b *testing.B) { benchSendRecv(b, unix.SOCK_STREAM, 4096) }

func BenchmarkDgramSendRecv64(b *testing.B) { benchSendRecv(b, unix.SOCK_DGRAM, 64) }

func TestLargeStreamWriteSpansSegments(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_STREAM)
	defer a.DecRef(e.task)
	defer b.DecRef(e.task)
	if n, err := sa.SendMsg(e.task, sockettest.Seq(nil), nil, 0, socket.ControlMessages{}); n != 0 || err != nil {
		t.Fatalf("empty write = %d, %v", n, err)
	}
	out := make([]byte, 150000)
	for i := range out {
		out[i] = byte(i * 7)
	}
	if n, err := sa.SendMsg(e.task, sockettest.Seq(out), nil, 0, socket.ControlMessages{}); n != int64(len(out)) || err != nil {
		t.Fatalf("150000-byte write into a 212992-byte buffer = %d, %v", n, err)
	}
	in := make([]byte, 200000)
	n, _, _, _, err := sb.RecvMsg(e.task, sockettest.Seq(in), 0, false)
	if err != nil || n != int64(len(out)) || !bytes.Equal(in[:n], out) {
		t.Fatalf("read back %d bytes, %v (equal %v)", n, err, bytes.Equal(in[:n], out))
	}
}

// TestConcurrentStreamIntegrity moves 2 MiB between two goroutines in
// uneven chunks, each waiting for readiness as the syscall layer does,
// and checks every byte arrives once and in order (pooled message
// buffers must never be reused while a reader holds them).
func TestConcurrentStreamIntegrity(t *testing.T) {
	e := newEnv(t)
	a, b, sa, sb := e.pair(unix.SOCK_STREAM)
	defer a.DecRef(e.task)
	defer b.DecRef(e.task)
	sa.SetSockOpt(e.task, unix.SOL_SOCKET, unix.SO_SNDBUF, socket.Int32Bytes(16384))
	const total = 2 << 20
	out := make([]byte, total)
	for i := range out {
		out[i] = byte(i*31 + i>>8)
	}
	errc := make(chan error, 1)
	go func() {
		ent, ch := waiter.NewChannelEntry(waiter.EventOut)
		a.EventRegister(ent)
		defer a.EventUnregister(ent)
		for off, step := 0, 1; off < total; step = step*7%70001 + 1 {
			end := min(off+step, total)
			n, err := sa.SendMsg(nil, sockettest.Seq(out[off:end]), nil, 0, socket.ControlMessages{})
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				errc <- err
				return
			}
			off += int(n)
			if n == 0 {
				<-ch
			}
		}
		errc <- nil
	}()
	ent, ch := waiter.NewChannelEntry(waiter.EventIn)
	b.EventRegister(ent)
	defer b.EventUnregister(ent)
	in := make([]byte, 0, total)
	buf := make([]byte, 3000)
	for len(in) < total {
		n, _, _, _, err := sb.RecvMsg(nil, sockettest.Seq(buf), 0, false)
		if errors.Is(err, unix.EAGAIN) {
			<-ch
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, out) {
		t.Fatal("data corrupted in transit")
	}
}
