package pipe_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func newPipe(t testing.TB, flags uint32) (context.Context, *vfs.FileDescription, *vfs.FileDescription) {
	t.Helper()
	ctx := context.Background()
	pfs := pipe.NewFilesystem(vfs.New())
	r, w, err := pfs.NewPipe(ctx, auth.NewRoot(), flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.DecRef(ctx)
		w.DecRef(ctx)
	})
	return ctx, r, w
}

func TestPipeBasics(t *testing.T) {
	ctx, r, w := newPipe(t, unix.O_NONBLOCK)
	if _, err := vfstest.Read(ctx, r, 10); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("read on empty pipe: %v", err)
	}
	if _, err := vfstest.Read(ctx, w, 10); !errors.Is(err, unix.EBADF) {
		t.Errorf("read on write end: %v", err)
	}
	if r.Readiness(waiter.ReadableEvents) != 0 {
		t.Errorf("empty pipe readable")
	}
	if w.Readiness(waiter.WritableEvents) == 0 {
		t.Errorf("empty pipe not writable")
	}
	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	r.EventRegister(e)
	defer r.EventUnregister(e)
	if n, err := vfstest.Write(ctx, w, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write = %d %v", n, err)
	}
	select {
	case <-ch:
	default:
		t.Errorf("reader not notified by write")
	}
	if r.Readiness(waiter.ReadableEvents) == 0 {
		t.Errorf("pipe with data not readable")
	}
	b, err := vfstest.Read(ctx, r, 3)
	if string(b) != "hel" || err != nil {
		t.Errorf("read = %q %v", b, err)
	}
	b, _ = vfstest.Read(ctx, r, 10)
	if string(b) != "lo" {
		t.Errorf("second read = %q", b)
	}
	st, err := r.Stat(ctx, vfs.StatOptions{})
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("pipe stat mode %o %v", st.Mode, err)
	}
	if _, _, err := pipe.NewFilesystem(vfs.New()).NewPipe(ctx, auth.NewRoot(), unix.O_TRUNC); !errors.Is(err, unix.EINVAL) {
		t.Errorf("pipe2 with bad flags: %v", err)
	}
}

func TestPipeFullAtomicAndCapacity(t *testing.T) {
	ctx, r, w := newPipe(t, unix.O_NONBLOCK)
	p := pipe.FromFile(w)
	if p.Size() != 65536 {
		t.Errorf("default capacity %d", p.Size())
	}
	if n, err := vfstest.Write(ctx, w, make([]byte, 65536-100)); n != 65536-100 || err != nil {
		t.Fatalf("fill: %d %v", n, err)
	}
	// 200 bytes <= PIPE_BUF do not fit: nothing is written.
	if n, err := vfstest.Write(ctx, w, make([]byte, 200)); n != 0 || !errors.Is(err, unix.EAGAIN) {
		t.Errorf("atomic write into 100 free bytes: %d %v", n, err)
	}
	if w.Readiness(waiter.WritableEvents) != 0 {
		t.Errorf("nearly full pipe (< PIPE_BUF free) reported writable")
	}
	// Writes larger than PIPE_BUF may be partial.
	if n, err := vfstest.Write(ctx, w, make([]byte, 5000)); n != 100 || err != nil {
		t.Errorf("large write into 100 free bytes: %d %v", n, err)
	}
	if _, err := vfstest.Write(ctx, w, []byte("x")); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("write to full pipe: %v", err)
	}
	if _, err := p.SetSize(4096); !errors.Is(err, unix.EBUSY) {
		t.Errorf("shrink below content: %v", err)
	}
	vfstest.Read(ctx, r, 1<<17)
	for _, c := range []struct{ req, want int64 }{{0, 4096}, {1, 4096}, {4097, 8192}, {65537, 131072}, {1 << 20, 1 << 20}} {
		got, err := p.SetSize(c.req)
		if err != nil || got != c.want {
			t.Errorf("F_SETPIPE_SZ(%d) = %d %v, want %d", c.req, got, err, c.want)
		}
	}
	if _, err := p.SetSize(1<<20 + 1); !errors.Is(err, unix.EPERM) {
		t.Errorf("above pipe-max-size: %v", err)
	}
	if _, err := p.SetSize(-1); !errors.Is(err, unix.EINVAL) {
		t.Errorf("negative size: %v", err)
	}
}

func TestPipeEOFAndEPIPE(t *testing.T) {
	ctx := context.Background()
	pfs := pipe.NewFilesystem(vfs.New())
	r, w, _ := pfs.NewPipe(ctx, auth.NewRoot(), unix.O_NONBLOCK)
	vfstest.Write(ctx, w, []byte("last"))
	w.DecRef(ctx)
	if r.Readiness(waiter.EventHUp) == 0 {
		t.Errorf("no POLLHUP after writer closed")
	}
	if b, _ := vfstest.Read(ctx, r, 10); string(b) != "last" {
		t.Errorf("data lost on writer close: %q", b)
	}
	if b, err := vfstest.Read(ctx, r, 10); len(b) != 0 || err != nil {
		t.Errorf("EOF expected, got %q %v", b, err)
	}
	r.DecRef(ctx)

	r, w, _ = pfs.NewPipe(ctx, auth.NewRoot(), 0)
	e, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	w.EventRegister(e)
	r.DecRef(ctx)
	select {
	case <-ch:
	default:
		t.Errorf("writer not woken by reader close")
	}
	w.EventUnregister(e)
	if _, err := vfstest.Write(ctx, w, []byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Errorf("write without readers: %v", err)
	}
	if w.Readiness(waiter.WritableEvents)&waiter.EventErr == 0 {
		t.Errorf("no POLLERR on write end without readers")
	}
	w.DecRef(ctx)
}

func TestPacketMode(t *testing.T) {
	ctx, r, w := newPipe(t, unix.O_NONBLOCK|unix.O_DIRECT)
	vfstest.Write(ctx, w, []byte("one"))
	vfstest.Write(ctx, w, []byte("twotwo"))
	if b, _ := vfstest.Read(ctx, r, 100); string(b) != "one" {
		t.Errorf("packet 1 = %q", b)
	}
	// A short read consumes the whole packet.
	if b, _ := vfstest.Read(ctx, r, 3); string(b) != "two" {
		t.Errorf("packet 2 = %q", b)
	}
	if _, err := vfstest.Read(ctx, r, 100); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("rest of truncated packet not discarded: %v", err)
	}
	// Packets longer than PIPE_BUF are split.
	vfstest.Write(ctx, w, make([]byte, 5000))
	if b, _ := vfstest.Read(ctx, r, 10000); len(b) != 4096 {
		t.Errorf("first split packet %d bytes", len(b))
	}
	if b, _ := vfstest.Read(ctx, r, 10000); len(b) != 904 {
		t.Errorf("second split packet %d bytes", len(b))
	}
	// Without O_DIRECT, writes merge into a stream.
	w.SetStatusFlags(unix.O_NONBLOCK)
	vfstest.Write(ctx, w, []byte("ab"))
	vfstest.Write(ctx, w, []byte("cd"))
	if b, _ := vfstest.Read(ctx, r, 10); string(b) != "abcd" {
		t.Errorf("stream read = %q", b)
	}
}

func TestFIONREAD(t *testing.T) {
	ctx, r, w := newPipe(t, 0)
	vfstest.Write(ctx, w, []byte("12345"))
	mem := &usermem.BytesIO{Bytes: make([]byte, 4)}
	if _, err := r.Ioctl(ctx, mem, 16, [6]uintptr{0, linux.FIONREAD, 0}); err != nil {
		t.Fatal(err)
	}
	if mem.Bytes[0] != 5 {
		t.Errorf("FIONREAD = %v", mem.Bytes)
	}
}

// TestConcurrentAtomicWrites has writers racing small writes: each must
// arrive whole (PIPE_BUF atomicity), never interleaved.
func TestConcurrentAtomicWrites(t *testing.T) {
	ctx, r, w := newPipe(t, unix.O_NONBLOCK)
	const writers, perWriter, size = 4, 100, 1000
	var wg sync.WaitGroup
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('a' + i)}, size)
			for j := 0; j < perWriter; {
				n, err := vfstest.Write(ctx, w, msg)
				if errors.Is(err, unix.EAGAIN) {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				if err != nil || n != size {
					t.Errorf("write = %d %v", n, err)
					return
				}
				j++
			}
		}()
	}
	got := 0
	buf := make([]byte, 0, size)
	for got < writers*perWriter*size {
		b, err := vfstest.Read(ctx, r, size-len(buf))
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		buf = append(buf, b...)
		got += len(b)
		if len(buf) == size {
			if bytes.Count(buf, buf[:1]) != size {
				t.Fatalf("interleaved write: %q...", buf[:20])
			}
			buf = buf[:0]
		}
	}
	wg.Wait()
}

func fifoEnv(t *testing.T) (context.Context, *vfs.VirtualFilesystem, vfs.VirtualDentry) {
	ctx := context.Background()
	v := vfs.New()
	v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{})
	ns, err := v.NewMountNamespace(ctx, auth.NewRoot(), "", tmpfs.Name, &vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	if err := v.MknodAt(ctx, auth.NewRoot(), vfstest.Pop(root, "/fifo"), &vfs.MknodOptions{Mode: unix.S_IFIFO | 0o666}); err != nil {
		t.Fatal(err)
	}
	return ctx, v, root
}

func TestFIFOOpen(t *testing.T) {
	ctx, v, root := fifoEnv(t)
	open := func(ctx context.Context, flags uint32) (*vfs.FileDescription, error) {
		return v.OpenAt(ctx, auth.NewRoot(), vfstest.Pop(root, "/fifo"), &vfs.OpenOptions{Flags: flags})
	}
	if _, err := open(ctx, unix.O_WRONLY|unix.O_NONBLOCK); !errors.Is(err, unix.ENXIO) {
		t.Errorf("O_WRONLY|O_NONBLOCK without reader: %v", err)
	}
	r, err := open(ctx, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		t.Fatalf("O_RDONLY|O_NONBLOCK without writer: %v", err)
	}
	if b, err := vfstest.Read(ctx, r, 1); len(b) != 0 || err != nil {
		t.Errorf("read of writerless FIFO should be EOF: %q %v", b, err)
	}
	if r.Readiness(waiter.EventHUp) != 0 {
		t.Errorf("POLLHUP before any writer")
	}
	w, err := open(ctx, unix.O_WRONLY|unix.O_NONBLOCK)
	if err != nil {
		t.Fatalf("O_WRONLY|O_NONBLOCK with a reader: %v", err)
	}
	vfstest.Write(ctx, w, []byte("via fifo"))
	if b, _ := vfstest.Read(ctx, r, 100); string(b) != "via fifo" {
		t.Errorf("fifo data %q", b)
	}
	w.DecRef(ctx)
	r.DecRef(ctx)

	// A blocking reader waits for a writer.
	done := make(chan *vfs.FileDescription)
	go func() {
		fd, err := open(ctx, unix.O_RDONLY)
		if err != nil {
			t.Error(err)
		}
		done <- fd
	}()
	select {
	case <-done:
		t.Fatal("blocking O_RDONLY open returned without a writer")
	case <-time.After(20 * time.Millisecond):
	}
	w, err = open(ctx, unix.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	r = <-done
	r.DecRef(ctx)
	w.DecRef(ctx)

	// An interrupted blocking open fails with the Blocker's error and
	// leaves no end open.
	cctx, cancel := context.WithCancel(ctx)
	bctx := waiter.ContextWithBlocker(ctx, waiter.ContextBlocker{Ctx: cctx, Err: linux.ERESTARTSYS})
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := open(bctx, unix.O_WRONLY); !errors.Is(err, linux.ERESTARTSYS) {
		t.Errorf("interrupted open: %v", err)
	}
	// The interrupted writer must not count as open: a nonblocking
	// reader then sees EOF, not EAGAIN.
	r, err = open(ctx, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := vfstest.Read(ctx, r, 1); len(b) != 0 || err != nil {
		t.Errorf("interrupted writer still counted: %v", err)
	}
	r.DecRef(ctx)
	rw, err := open(ctx, unix.O_RDWR)
	if err != nil {
		t.Fatalf("O_RDWR FIFO open: %v", err)
	}
	rw.DecRef(ctx)
}

// TestReopenAnonymousPipe is open("/proc/self/fd/N") of a pipe(2) end:
// Linux opens the same pipe with the requested access and, unlike a
// FIFO, never waits for a peer, even when the other end is closed
// (`echo x | cat /proc/self/fd/0`).
func TestReopenAnonymousPipe(t *testing.T) {
	ctx := context.Background()
	v := vfs.New()
	r, w, err := pipe.NewFilesystem(v).NewPipe(ctx, auth.NewRoot(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.DecRef(ctx)
	reopen := func(fd *vfs.FileDescription, flags uint32) (*vfs.FileDescription, error) {
		vd := fd.VirtualDentry()
		return v.OpenAt(ctx, auth.NewRoot(), &vfs.PathOperation{Root: vd, Start: vd, AllowEmptyPath: true}, &vfs.OpenOptions{Flags: flags})
	}
	if n, err := vfstest.Write(ctx, w, []byte("x\n")); n != 2 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	w2, err := reopen(r, unix.O_WRONLY)
	if err != nil {
		t.Fatalf("reopening the read end for writing: %v", err)
	}
	w.DecRef(ctx)
	if n, err := vfstest.Write(ctx, w2, []byte("y\n")); n != 2 || err != nil {
		t.Fatalf("write through the reopened end = %d, %v", n, err)
	}
	w2.DecRef(ctx)

	// Every writer is gone now: a blocking read-only reopen must not wait.
	done := make(chan error, 1)
	var r2 *vfs.FileDescription
	go func() {
		var err error
		r2, err = reopen(r, unix.O_RDONLY)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reopening for reading: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reopening an anonymous pipe waited for a writer")
	}
	defer r2.DecRef(ctx)
	if b, err := vfstest.Read(ctx, r2, 10); string(b) != "x\ny\n" || err != nil {
		t.Errorf("read through the reopened end = %q, %v", b, err)
	}
	if b, err := vfstest.Read(ctx, r2, 10); len(b) != 0 || err != nil {
		t.Errorf("read after every writer closed = %q, %v; want EOF", b, err)
	}
	// No reader waits either: a write-only reopen of a pipe with readers
	// succeeds under O_NONBLOCK, and O_ACCMODE 3 is refused.
	if w3, err := reopen(r, unix.O_WRONLY|unix.O_NONBLOCK); err != nil {
		t.Errorf("O_WRONLY|O_NONBLOCK reopen: %v", err)
	} else {
		w3.DecRef(ctx)
	}
	if _, err := reopen(r, unix.O_ACCMODE); err == nil {
		t.Errorf("reopen with O_ACCMODE 3 succeeded")
	}
}
