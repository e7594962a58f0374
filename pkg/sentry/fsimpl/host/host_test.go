package host_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
	"unsafe"

	"carapace.dev/carapace/pkg/sentry/fsimpl/host"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func newFS(t *testing.T) (context.Context, *host.Filesystem) {
	t.Helper()
	ctx := context.Background()
	fs := host.NewFilesystem(vfs.New())
	t.Cleanup(func() { fs.Release(ctx) })
	return ctx, fs
}

func importFD(t *testing.T, ctx context.Context, fs *host.Filesystem, hostFD int, opts host.ImportOptions) *vfs.FileDescription {
	t.Helper()
	fd, err := fs.ImportFD(ctx, hostFD, opts)
	if err != nil {
		unix.Close(hostFD)
		t.Fatalf("import: %v", err)
	}
	t.Cleanup(func() { fd.DecRef(ctx) })
	return fd
}

// waitReady waits for mask on fd the way the syscall layer does: register,
// re-check, block (bounded so that a broken notifier fails the test).
func waitReady(t *testing.T, fd *vfs.FileDescription, mask waiter.EventMask) waiter.EventMask {
	t.Helper()
	e, ch := waiter.NewChannelEntry(mask)
	if err := fd.EventRegister(e); err != nil {
		t.Fatal(err)
	}
	defer fd.EventUnregister(e)
	for {
		if r := fd.Readiness(mask); r != 0 {
			return r
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("no readiness notification")
		}
	}
}

func TestPipe(t *testing.T) {
	ctx, fs := newFS(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r := importFD(t, ctx, fs, p[0], host.ImportOptions{})
	w := importFD(t, ctx, fs, p[1], host.ImportOptions{})
	if r.StatusFlags()&unix.O_ACCMODE != unix.O_RDONLY || w.StatusFlags()&unix.O_ACCMODE != unix.O_WRONLY {
		t.Fatalf("flags %#x %#x", r.StatusFlags(), w.StatusFlags())
	}
	if _, err := vfstest.Read(ctx, r, 10); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("empty pipe read: %v", err)
	}
	if got := r.Readiness(waiter.EventIn); got != 0 {
		t.Fatalf("empty pipe readiness %#x", got)
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(10 * time.Millisecond)
		_, err := vfstest.Write(ctx, w, []byte("hello"))
		done <- err
	}()
	if got := waitReady(t, r, waiter.EventIn); got&waiter.EventIn == 0 {
		t.Fatalf("readiness %#x", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// FIONREAD passes through.
	buf := make([]byte, 4)
	if _, err := r.Ioctl(ctx, &usermem.BytesIO{Bytes: buf}, unix.SYS_IOCTL, [6]uintptr{0, unix.TIOCINQ, 0}); err != nil || binary.LittleEndian.Uint32(buf) != 5 {
		t.Fatalf("FIONREAD = %v, %v", buf, err)
	}
	if b, err := vfstest.Read(ctx, r, 10); err != nil || string(b) != "hello" {
		t.Fatalf("read %q %v", b, err)
	}
	if _, err := r.Seek(ctx, 0, unix.SEEK_SET); !errors.Is(err, unix.ESPIPE) {
		t.Fatalf("seek on pipe: %v", err)
	}
	if _, err := r.PRead(ctx, vfstest.Seq(buf), 0, vfs.ReadOptions{}); !errors.Is(err, unix.ESPIPE) {
		t.Fatalf("pread on pipe: %v", err)
	}
	if _, err := r.Ioctl(ctx, &usermem.BytesIO{Bytes: make([]byte, 64)}, unix.SYS_IOCTL, [6]uintptr{0, unix.TCGETS, 0}); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TCGETS on a pipe: %v", err)
	}
	st, err := r.Stat(ctx, vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Fatalf("stat %+v %v", st, err)
	}
	// Fill the pipe: writes stop with EAGAIN, never block.
	big := make([]byte, 1<<20)
	n, err := vfstest.Write(ctx, w, big)
	if err != nil || n <= 0 || n >= int64(len(big)) {
		t.Fatalf("filling write = %d, %v", n, err)
	}
	if _, err := vfstest.Write(ctx, w, big); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("write to full pipe: %v", err)
	}
	if w.Readiness(waiter.EventOut) != 0 {
		t.Fatal("full pipe writable")
	}
	// Drain it; then closing the writer gives the reader EOF and HUP.
	for {
		if _, err := vfstest.Read(ctx, r, 1<<16); err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				t.Fatal(err)
			}
			break
		}
	}
	w.DecRef(ctx)
	w.IncRef() // balanced by the cleanup
	if got := waitReady(t, r, waiter.EventIn); got&waiter.EventHUp == 0 {
		t.Fatalf("readiness after writer closed %#x", got)
	}
	if b, err := vfstest.Read(ctx, r, 10); err != nil || len(b) != 0 {
		t.Fatalf("read at EOF %q %v", b, err)
	}
}

func TestRegularFile(t *testing.T) {
	ctx, fs := newFS(t)
	path := t.TempDir() + "/f"
	data := bytes.Repeat([]byte("0123456789"), 20000) // over several bounce buffers
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Skipf("chown needs root: %v", err)
	}
	hfd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd := importFD(t, ctx, fs, hfd, host.ImportOptions{})
	got, err := vfstest.Read(ctx, fd, len(data)+10)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if off, err := fd.Seek(ctx, 5, unix.SEEK_SET); err != nil || off != 5 {
		t.Fatalf("seek %d %v", off, err)
	}
	if b, err := vfstest.Read(ctx, fd, 3); err != nil || string(b) != "567" {
		t.Fatalf("read after seek %q %v", b, err)
	}
	if n, err := fd.PWrite(ctx, vfstest.Seq([]byte("ab")), 0, vfs.WriteOptions{}); err != nil || n != 2 {
		t.Fatalf("pwrite %d %v", n, err)
	}
	b := make([]byte, 4)
	if n, err := fd.PRead(ctx, vfstest.Seq(b), 0, vfs.ReadOptions{}); err != nil || n != 4 || string(b) != "ab23" {
		t.Fatalf("pread %q %d %v", b, n, err)
	}
	var hst unix.Stat_t
	if err := unix.Stat(path, &hst); err != nil {
		t.Fatal(err)
	}
	st, err := fd.Stat(ctx, vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil || st.Ino != hst.Ino || st.Size != uint64(len(data)) || st.Uid != 1234 || st.Gid != 5678 || st.Mode != unix.S_IFREG|0o640 {
		t.Fatalf("stat %+v %v (host ino %d)", st, err, hst.Ino)
	}
	if fd.Readiness(waiter.ReadableEvents|waiter.WritableEvents) != waiter.ReadableEvents|waiter.WritableEvents {
		t.Fatal("regular file not always ready")
	}
	if _, err := fd.Ioctl(ctx, &usermem.BytesIO{Bytes: make([]byte, 64)}, unix.SYS_IOCTL, [6]uintptr{0, unix.TIOCGWINSZ, 0}); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TIOCGWINSZ on a file: %v", err)
	}
}

func TestDevNull(t *testing.T) {
	ctx, fs := newFS(t)
	hfd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/null: %v", err)
	}
	fd := importFD(t, ctx, fs, hfd, host.ImportOptions{})
	if n, err := vfstest.Write(ctx, fd, []byte("discard")); err != nil || n != 7 {
		t.Fatalf("write %d %v", n, err)
	}
	if b, err := vfstest.Read(ctx, fd, 10); err != nil || len(b) != 0 {
		t.Fatalf("read %q %v", b, err)
	}
	st, err := fd.Stat(ctx, vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev_major != 1 || st.Rdev_minor != 3 {
		t.Fatalf("stat %+v %v", st, err)
	}
}

// openPTY returns a host pty pair (master, slave).
func openPTY(t *testing.T) (int, int) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		t.Fatal(err)
	}
	s, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(m)
		t.Skipf("opening pts %d: %v", n, err)
	}
	t.Cleanup(func() { unix.Close(m) })
	return m, s
}

type fakeJobControl struct{ fg int32 }

func (j *fakeJobControl) Foreground(context.Context) (int32, error) { return j.fg, nil }
func (j *fakeJobControl) SetForeground(_ context.Context, pgid int32) error {
	if pgid == 666 {
		return unix.EPERM
	}
	j.fg = pgid
	return nil
}

func ioctl(ctx context.Context, fd *vfs.FileDescription, cmd uintptr, mem []byte) error {
	_, err := fd.Ioctl(ctx, &usermem.BytesIO{Bytes: mem}, unix.SYS_IOCTL, [6]uintptr{0, cmd, 0})
	return err
}

func TestTerminal(t *testing.T) {
	ctx, fs := newFS(t)
	m, s := openPTY(t)
	jc := &fakeJobControl{fg: 42}
	fd := importFD(t, ctx, fs, s, host.ImportOptions{JobControl: jc})

	// TCGETS matches the host; TCSETS changes the host terminal.
	mem := make([]byte, 64)
	if err := ioctl(ctx, fd, unix.TCGETS, mem); err != nil {
		t.Fatal(err)
	}
	ht, err := unix.IoctlGetTermios(s, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem[:36], unsafe.Slice((*byte)(unsafe.Pointer(ht)), 36)) {
		t.Fatal("TCGETS differs from the host's termios")
	}
	lflag := binary.LittleEndian.Uint32(mem[12:16])
	binary.LittleEndian.PutUint32(mem[12:16], lflag&^unix.ECHO)
	if err := ioctl(ctx, fd, unix.TCSETS, mem); err != nil {
		t.Fatal(err)
	}
	if ht, _ := unix.IoctlGetTermios(s, unix.TCGETS); ht.Lflag&unix.ECHO != 0 {
		t.Fatal("TCSETS did not clear ECHO on the host")
	}
	// Window size round trip.
	ws := make([]byte, 8)
	binary.LittleEndian.PutUint16(ws[0:], 33)
	binary.LittleEndian.PutUint16(ws[2:], 120)
	if err := ioctl(ctx, fd, unix.TIOCSWINSZ, ws); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if err := ioctl(ctx, fd, unix.TIOCGWINSZ, got); err != nil || !bytes.Equal(got, ws) {
		t.Fatalf("TIOCGWINSZ %v %v", got, err)
	}
	if hw, _ := unix.IoctlGetWinsize(m, unix.TIOCGWINSZ); hw.Row != 33 || hw.Col != 120 {
		t.Fatalf("host winsize %+v", hw)
	}
	// The foreground group is the hook's.
	pg := make([]byte, 4)
	if err := ioctl(ctx, fd, unix.TIOCGPGRP, pg); err != nil || binary.LittleEndian.Uint32(pg) != 42 {
		t.Fatalf("TIOCGPGRP %v %v", pg, err)
	}
	binary.LittleEndian.PutUint32(pg, 7)
	if err := ioctl(ctx, fd, unix.TIOCSPGRP, pg); err != nil || jc.fg != 7 {
		t.Fatalf("TIOCSPGRP: %v, fg %d", err, jc.fg)
	}
	binary.LittleEndian.PutUint32(pg, 666)
	if err := ioctl(ctx, fd, unix.TIOCSPGRP, pg); !errors.Is(err, unix.EPERM) {
		t.Fatalf("hook refusal not passed on: %v", err)
	}
	if err := ioctl(ctx, fd, 0x5401ff, pg); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("unknown ioctl: %v", err)
	}
	// Data both ways; the slave read waits for input without blocking.
	if _, err := vfstest.Read(ctx, fd, 10); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of idle terminal: %v", err)
	}
	if _, err := vfstest.Write(ctx, fd, []byte("out")); err != nil {
		t.Fatal(err)
	}
	hb := make([]byte, 16)
	if n, err := unix.Read(m, hb); err != nil || string(hb[:n]) != "out" {
		t.Fatalf("master read %q %v", hb[:n], err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		unix.Write(m, []byte("in\n"))
	}()
	waitReady(t, fd, waiter.EventIn)
	if b, err := vfstest.Read(ctx, fd, 10); err != nil || string(b) != "in\n" {
		t.Fatalf("slave read %q %v", b, err)
	}
	if _, err := fd.Seek(ctx, 0, unix.SEEK_CUR); !errors.Is(err, unix.ESPIPE) {
		t.Fatalf("seek on tty: %v", err)
	}
}

func TestTerminalWithoutHookKeepsGroup(t *testing.T) {
	ctx, fs := newFS(t)
	_, s := openPTY(t)
	fd := importFD(t, ctx, fs, s, host.ImportOptions{})
	pg := make([]byte, 4)
	// Nobody's controlling terminal yet: tcgetpgrp fails as on Linux.
	if err := ioctl(ctx, fd, unix.TIOCGPGRP, pg); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TIOCGPGRP before any TIOCSPGRP: %v, want ENOTTY", err)
	}
	binary.LittleEndian.PutUint32(pg, 9)
	if err := ioctl(ctx, fd, unix.TIOCSPGRP, pg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if err := ioctl(ctx, fd, unix.TIOCGPGRP, got); err != nil || binary.LittleEndian.Uint32(got) != 9 {
		t.Fatalf("TIOCGPGRP %v %v", got, err)
	}
}

func TestCloseClosesHostFD(t *testing.T) {
	ctx := context.Background()
	fs := host.NewFilesystem(vfs.New())
	defer fs.Release(ctx)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	fd, err := fs.ImportFD(ctx, p[0], host.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fd.DecRef(ctx)
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Fatalf("host fd still open after the last reference: %v", err)
	}
}

// reopen is open("/proc/self/fd/N") of fd: the VFS opens the file the
// magic link names, as it does here from the file's own dentry.
func reopen(ctx context.Context, v *vfs.VirtualFilesystem, fd *vfs.FileDescription, flags uint32) (*vfs.FileDescription, error) {
	vd := fd.VirtualDentry()
	return v.OpenAt(ctx, auth.NewRoot(), &vfs.PathOperation{Root: vd, Start: vd, AllowEmptyPath: true}, &vfs.OpenOptions{Flags: flags})
}

func TestReopenPipe(t *testing.T) {
	ctx := context.Background()
	v := vfs.New()
	fs := host.NewFilesystem(v)
	defer fs.Release(ctx)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(p[1], []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[1]) // `echo x | cat /dev/stdin`: the writer is gone
	in, err := fs.ImportFD(ctx, p[0], host.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reopen(ctx, v, in, unix.O_WRONLY); !errors.Is(err, unix.EACCES) {
		t.Errorf("reopening a read-only host pipe for writing = %v, want EACCES", err)
	}
	r, err := reopen(ctx, v, in, unix.O_RDONLY)
	if err != nil {
		t.Fatalf("reopening stdin: %v", err)
	}
	in.DecRef(ctx) // the reopening outlives the original
	if st, err := r.Stat(ctx, vfs.StatOptions{}); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("stat of the reopening = %o, %v", st.Mode, err)
	}
	if b, err := vfstest.Read(ctx, r, 10); string(b) != "x\n" || err != nil {
		t.Errorf("read through the reopening = %q, %v", b, err)
	}
	if b, err := vfstest.Read(ctx, r, 10); len(b) != 0 || err != nil {
		t.Errorf("read at EOF = %q, %v", b, err)
	}
	r.DecRef(ctx)
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("imported host fd still open after both files closed: %v", err)
	}
}

func TestReopenRegularFile(t *testing.T) {
	ctx := context.Background()
	v := vfs.New()
	fs := host.NewFilesystem(v)
	defer fs.Release(ctx)
	path := t.TempDir() + "/f"
	if err := os.WriteFile(path, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	hfd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := fs.ImportFD(ctx, hfd, host.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer orig.DecRef(ctx)
	if b, _ := vfstest.Read(ctx, orig, 4); string(b) != "0123" {
		t.Fatalf("read = %q", b)
	}
	// A reopening is a new open file description: its own offset.
	r, err := reopen(ctx, v, orig, unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := vfstest.Read(ctx, r, 3); string(b) != "012" || err != nil {
		t.Errorf("reopening read = %q, %v; want from offset 0", b, err)
	}
	if b, _ := vfstest.Read(ctx, orig, 2); string(b) != "45" {
		t.Errorf("original read after the reopening's = %q; its offset moved", b)
	}
	if n, err := r.Seek(ctx, -2, unix.SEEK_END); n != 8 || err != nil {
		t.Errorf("SEEK_END = %d, %v", n, err)
	}
	if b, _ := vfstest.Read(ctx, r, 5); string(b) != "89" {
		t.Errorf("read after seek = %q", b)
	}
	r.DecRef(ctx)

	// O_APPEND writes at the end; O_TRUNC truncates the host file
	// (`cmd >> /dev/stdout`, `cmd > /dev/stdout`).
	a, err := reopen(ctx, v, orig, unix.O_WRONLY|unix.O_APPEND)
	if err != nil {
		t.Fatal(err)
	}
	vfstest.Write(ctx, a, []byte("AB"))
	a.DecRef(ctx)
	if got, _ := os.ReadFile(path); string(got) != "0123456789AB" {
		t.Errorf("after O_APPEND write: %q", got)
	}
	w, err := reopen(ctx, v, orig, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	vfstest.Write(ctx, w, []byte("new"))
	w.DecRef(ctx)
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Errorf("after O_TRUNC reopen and write: %q", got)
	}
}

// TestSharedDescriptionStaysBlocking imports three dups of one terminal
// description, as a shell's stdio are: the first import makes the host
// description non-blocking for the Sentry, and the later ones must still
// show the application the blocking file it was given.
func TestSharedDescriptionStaysBlocking(t *testing.T) {
	ctx, fs := newFS(t)
	_, s := openPTY(t)
	var fds []*vfs.FileDescription
	for i := 0; i < 3; i++ {
		d, err := unix.Dup(s)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, importFD(t, ctx, fs, d, host.ImportOptions{}))
	}
	for i, fd := range fds {
		if fd.StatusFlags()&unix.O_NONBLOCK != 0 {
			t.Errorf("import %d of a blocking terminal shows O_NONBLOCK", i)
		}
	}
	// A description that was non-blocking stays so for the application.
	p := make([]int, 2)
	if err := unix.Pipe2(p, unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	w2, err := unix.Dup(p[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []int{p[1], w2} {
		if fd := importFD(t, ctx, fs, d, host.ImportOptions{}); fd.StatusFlags()&unix.O_NONBLOCK == 0 {
			t.Errorf("a non-blocking pipe imported as blocking")
		}
	}
}
