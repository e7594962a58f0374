package devpts_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

type hooks struct {
	mu   sync.Mutex
	sigs []unix.Signal
	fg   int32
}

func (h *hooks) Signal(_ *devpts.Terminal, s unix.Signal) {
	h.mu.Lock()
	h.sigs = append(h.sigs, s)
	h.mu.Unlock()
}
func (h *hooks) Foreground(context.Context, *devpts.Terminal) (int32, error) { return h.fg, nil }
func (h *hooks) SetForeground(_ context.Context, _ *devpts.Terminal, pg int32) error {
	h.fg = pg
	return nil
}
func (h *hooks) take() []unix.Signal {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sigs
	h.sigs = nil
	return s
}

type env struct {
	t     *testing.T
	ctx   context.Context
	v     *vfs.VirtualFilesystem
	creds *auth.Credentials
	root  vfs.VirtualDentry
	h     *hooks
}

func newEnv(t *testing.T) *env {
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(devpts.Name, devpts.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	h := &hooks{}
	ns, err := v.NewMountNamespace(ctx, creds, "", devpts.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{InternalData: &devpts.Options{Hooks: h}}})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	return &env{t: t, ctx: auth.ContextWithCredentials(ctx, creds), v: v, creds: creds, root: root, h: h}
}

func (e *env) open(path string) (*vfs.FileDescription, error) {
	return e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(e.root, path), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NONBLOCK})
}

func (e *env) ioctl(fd *vfs.FileDescription, cmd uint, mem []byte) error {
	_, err := fd.Ioctl(e.ctx, &usermem.BytesIO{Bytes: mem}, unix.SYS_IOCTL, [6]uintptr{0, uintptr(cmd), 0})
	return err
}

// pair opens a pty: master and unlocked replica.
func (e *env) pair() (*vfs.FileDescription, *vfs.FileDescription) {
	e.t.Helper()
	m, err := e.open("/ptmx")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.DecRef(e.ctx) })
	b := make([]byte, 4)
	if err := e.ioctl(m, unix.TIOCGPTN, b); err != nil {
		e.t.Fatal(err)
	}
	name := "/" + itoa(binary.LittleEndian.Uint32(b))
	if _, err := e.open(name); !errors.Is(err, unix.EIO) {
		e.t.Fatalf("open of locked replica: %v", err)
	}
	if err := e.ioctl(m, unix.TIOCSPTLCK, make([]byte, 4)); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.open(name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.DecRef(e.ctx) })
	return m, r
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func (e *env) write(fd *vfs.FileDescription, s string) {
	e.t.Helper()
	if n, err := vfstest.Write(e.ctx, fd, []byte(s)); err != nil || n != int64(len(s)) {
		e.t.Fatalf("write %q: %d %v", s, n, err)
	}
}

// read returns what a read gives, "" with EAGAIN as "<again>".
func (e *env) read(fd *vfs.FileDescription) string {
	e.t.Helper()
	b, err := vfstest.Read(e.ctx, fd, 256)
	if errors.Is(err, unix.EAGAIN) {
		return "<again>"
	}
	if err != nil {
		e.t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestCanonicalEditingAndEcho(t *testing.T) {
	e := newEnv(t)
	m, r := e.pair()
	e.write(m, "xy")
	if got := e.read(r); got != "<again>" {
		t.Fatalf("partial line readable: %q", got)
	}
	if r.Readiness(waiter.EventIn) != 0 {
		t.Fatal("replica readable without a line")
	}
	e.write(m, "\x7fz\n")
	if got := e.read(r); got != "xz\n" {
		t.Fatalf("line %q", got)
	}
	if got := e.read(m); got != "xy\b \bz\r\n" {
		t.Fatalf("echo %q", got)
	}
	e.write(m, "abc\x15d\n") // ^U kills the line
	if got := e.read(r); got != "d\n" {
		t.Fatalf("after kill %q", got)
	}
	e.read(m)
	e.write(m, "one two\x17three\n") // ^W erases a word
	if got := e.read(r); got != "one three\n" {
		t.Fatalf("after werase %q", got)
	}
	// Two lines are read one at a time; ^D ends a line without a newline
	// and on an empty line reads as end of file.
	e.write(m, "l1\nl2\n")
	if a, b := e.read(r), e.read(r); a != "l1\n" || b != "l2\n" {
		t.Fatalf("lines %q %q", a, b)
	}
	e.write(m, "ab\x04\x04")
	if got := e.read(r); got != "ab" {
		t.Fatalf("^D line %q", got)
	}
	if got := e.read(r); got != "" {
		t.Fatalf("^D on empty line %q", got)
	}
	// \r becomes \n (ICRNL).
	e.write(m, "cr\r")
	if got := e.read(r); got != "cr\n" {
		t.Fatalf("ICRNL %q", got)
	}
}

func TestSignalsThroughHooks(t *testing.T) {
	e := newEnv(t)
	m, r := e.pair()
	e.write(m, "pending\x03")
	if got := e.h.take(); !slices.Equal(got, []unix.Signal{unix.SIGINT}) {
		t.Fatalf("signals %v", got)
	}
	if got := e.read(m); got != "pending^C" {
		t.Fatalf("echo %q", got)
	}
	e.write(m, "\n")
	if got := e.read(r); got != "\n" {
		t.Fatalf("^C did not flush the line: %q", got)
	}
	e.write(m, "\x1a\x1c")
	if got := e.h.take(); !slices.Equal(got, []unix.Signal{unix.SIGTSTP, unix.SIGQUIT}) {
		t.Fatalf("signals %v", got)
	}
	// Window size: set on the master, seen on the replica, SIGWINCH raised.
	ws := unix.Winsize{Row: 40, Col: 100}
	wb := unsafe.Slice((*byte)(unsafe.Pointer(&ws)), unsafe.Sizeof(ws))
	if err := e.ioctl(m, unix.TIOCSWINSZ, wb); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(wb))
	if err := e.ioctl(r, unix.TIOCGWINSZ, got); err != nil || !slices.Equal(got, wb) {
		t.Fatalf("winsize %v %v", got, err)
	}
	if s := e.h.take(); !slices.Equal(s, []unix.Signal{unix.SIGWINCH}) {
		t.Fatalf("signals %v", s)
	}
	// Foreground group through the hooks.
	pg := make([]byte, 4)
	binary.LittleEndian.PutUint32(pg, 77)
	if err := e.ioctl(r, unix.TIOCSPGRP, pg); err != nil || e.h.fg != 77 {
		t.Fatalf("TIOCSPGRP %v fg %d", err, e.h.fg)
	}
	out := make([]byte, 4)
	if err := e.ioctl(r, unix.TIOCGPGRP, out); err != nil || binary.LittleEndian.Uint32(out) != 77 {
		t.Fatalf("TIOCGPGRP %v %v", out, err)
	}
	// With ISIG off, ^C is data.
	var tm unix.Termios
	tb := unsafe.Slice((*byte)(unsafe.Pointer(&tm)), 36)
	if err := e.ioctl(r, unix.TCGETS, tb); err != nil {
		t.Fatal(err)
	}
	tm.Lflag &^= unix.ISIG
	if err := e.ioctl(r, unix.TCSETS, tb); err != nil {
		t.Fatal(err)
	}
	e.write(m, "\x03\n")
	if got := e.read(r); got != "\x03\n" || len(e.h.take()) != 0 {
		t.Fatalf("^C without ISIG: %q", got)
	}
}

func TestRawMode(t *testing.T) {
	e := newEnv(t)
	m, r := e.pair()
	var tm unix.Termios
	tb := unsafe.Slice((*byte)(unsafe.Pointer(&tm)), 36)
	if err := e.ioctl(r, unix.TCGETS, tb); err != nil {
		t.Fatal(err)
	}
	if tm.Lflag&unix.ICANON == 0 || tm.Oflag&unix.ONLCR == 0 {
		t.Fatalf("default termios %+v", tm)
	}
	e.write(m, "half") // pending canonical input becomes readable in raw mode
	e.read(m)
	tm.Lflag &^= unix.ICANON | unix.ECHO
	tm.Oflag &^= unix.OPOST
	if err := e.ioctl(r, unix.TCSETS, tb); err != nil {
		t.Fatal(err)
	}
	if got := e.read(r); got != "half" {
		t.Fatalf("after leaving canonical mode %q", got)
	}
	e.write(m, "q")
	if r.Readiness(waiter.EventIn) == 0 {
		t.Fatal("raw byte not readable")
	}
	if got := e.read(r); got != "q" {
		t.Fatalf("raw read %q", got)
	}
	if got := e.read(m); got != "<again>" {
		t.Fatalf("echo with ECHO off: %q", got)
	}
	e.write(r, "a\nb")
	if got := e.read(m); got != "a\nb" {
		t.Fatalf("output without OPOST %q", got)
	}
	// VMIN=0: a read with nothing there returns 0 at once.
	tm.Cc[unix.VMIN] = 0
	if err := e.ioctl(r, unix.TCSETS, tb); err != nil {
		t.Fatal(err)
	}
	if got := e.read(r); got != "" {
		t.Fatalf("VMIN=0 read %q", got)
	}
}

func TestOutputAndHangup(t *testing.T) {
	e := newEnv(t)
	m, err := e.open("/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	e.ioctl(m, unix.TIOCSPTLCK, make([]byte, 4))
	r, err := e.open("/0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ioctl(r, unix.TIOCGPTN, make([]byte, 4)); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TIOCGPTN on replica: %v", err)
	}
	e.write(r, "hi\n")
	if got := e.read(m); got != "hi\r\n" {
		t.Fatalf("master reads %q", got)
	}
	if got := e.read(m); got != "<again>" {
		t.Fatalf("empty master %q", got)
	}
	fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(e.root, "/"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		t.Fatal(err)
	}
	names, _ := vfstest.ReadDir(e.ctx, fd)
	fd.DecRef(e.ctx)
	if !slices.Equal(names, []string{".", "..", "ptmx", "0"}) {
		t.Fatalf("ls %v", names)
	}
	st, err := e.v.StatAt(e.ctx, e.creds, vfstest.Pop(e.root, "/0"), &vfs.StatOptions{})
	if err != nil || st.Rdev_major != 136 || st.Rdev_minor != 0 || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("stat /0 %+v %v", st, err)
	}
	// The replica going away: master reads EIO.
	r.DecRef(e.ctx)
	if _, err := vfstest.Read(e.ctx, m, 10); !errors.Is(err, unix.EIO) {
		t.Fatalf("master read after replica closed: %v", err)
	}
	if m.Readiness(waiter.EventIn)&waiter.EventHUp == 0 {
		t.Fatal("no HUP on master")
	}
	r2, err := e.open("/0")
	if err != nil {
		t.Fatal(err)
	}
	// The master going away: replica reads end of file, writes EIO; the
	// number is free again.
	m.DecRef(e.ctx)
	if got := e.read(r2); got != "" {
		t.Fatalf("replica read after hangup %q", got)
	}
	if _, err := vfstest.Write(e.ctx, r2, []byte("x")); !errors.Is(err, unix.EIO) {
		t.Fatalf("replica write after hangup: %v", err)
	}
	r2.DecRef(e.ctx)
	if _, err := e.open("/0"); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("open of freed pty: %v", err)
	}
	m2, err := e.open("/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.DecRef(e.ctx)
	b := make([]byte, 4)
	if err := e.ioctl(m2, unix.TIOCGPTN, b); err != nil || binary.LittleEndian.Uint32(b) != 0 {
		t.Fatalf("reused number %v %v", b, err)
	}
	// Non-tty ioctls are ENOTTY.
	if err := e.ioctl(m2, 0x5499, b); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("unknown ioctl %v", err)
	}
}

func TestTwoPTYsAreIndependent(t *testing.T) {
	e := newEnv(t)
	m1, r1 := e.pair()
	m2, r2 := e.pair()
	e.write(m1, "one\n")
	e.write(m2, "two\n")
	if a, b := e.read(r2), e.read(r1); a != "two\n" || b != "one\n" {
		t.Fatalf("cross talk: %q %q", a, b)
	}
}

func TestPtmxDeviceNode(t *testing.T) {
	e := newEnv(t)
	dev, err := devpts.PtmxDevice(e.root.Mount().Filesystem())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.v.RegisterDevice(vfs.CharDevice, devpts.PtmxMajor, devpts.PtmxMinor, dev); err != nil {
		t.Fatal(err)
	}
	// Open through the device registry, as a /dev/ptmx node of another
	// filesystem would.
	impl, err := e.v.OpenDeviceSpecialFile(e.ctx, e.root, vfs.CharDevice, devpts.PtmxMajor, devpts.PtmxMinor, unix.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	m := vfs.NewFileDescription(impl, unix.O_RDWR|unix.O_NONBLOCK, e.root)
	defer m.DecRef(e.ctx)
	tt, ok := devpts.TerminalFromFile(m)
	if !ok || tt.Index() != 0 {
		t.Fatalf("terminal %v %v", tt, ok)
	}
	if err := e.ioctl(m, unix.TIOCSPTLCK, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	r, err := e.open("/0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.DecRef(e.ctx)
	e.write(r, "x")
	if got := e.read(m); got != "x" {
		t.Fatalf("master read %q", got)
	}
	anon := e.v.NewAnonVirtualDentry("x")
	defer anon.DecRef(e.ctx)
	if _, err := devpts.PtmxDevice(anon.Mount().Filesystem()); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("PtmxDevice of a non-devpts: %v", err)
	}
}
