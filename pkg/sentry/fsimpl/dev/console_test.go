package dev_test

import (
	"encoding/binary"
	"errors"
	"strconv"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/dev"
	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// TestConsoleIsTheTerminal checks /dev/console: ENODEV without a
// console, and once the container's terminal (a devpts replica) is set,
// a new open file of that same pty, so what is written to the console
// reaches the pty's master.
func TestConsoleIsTheTerminal(t *testing.T) {
	ctx, v, root := setup(t)
	creds := auth.NewRoot()
	st, err := v.StatAt(ctx, creds, vfstest.Pop(root, "/dev/console"), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil || st.Mode != unix.S_IFCHR|0o600 || st.Rdev_major != 5 || st.Rdev_minor != 1 {
		t.Fatalf("stat /dev/console = mode %o rdev %d:%d, %v; want a 0600 char device 5:1", st.Mode, st.Rdev_major, st.Rdev_minor, err)
	}
	openConsole := func() (*vfs.FileDescription, error) {
		return v.OpenAt(ctx, creds, vfstest.Pop(root, "/dev/console"), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY | unix.O_NONBLOCK})
	}
	if _, err := openConsole(); !errors.Is(err, unix.ENODEV) {
		t.Fatalf("open /dev/console without a console: %v, want ENODEV", err)
	}

	// A pty, as runsc makes for a terminal container.
	if err := v.RegisterFilesystemType(devpts.Name, devpts.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.MountAt(ctx, creds, "devpts", vfstest.Pop(root, "/dev/pts"), devpts.Name, &vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	openRW := func(p string) *vfs.FileDescription {
		t.Helper()
		fd, err := v.OpenAt(ctx, creds, vfstest.Pop(root, p), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY | unix.O_NONBLOCK})
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		t.Cleanup(func() { fd.DecRef(ctx) })
		return fd
	}
	master := openRW("/dev/pts/ptmx")
	ioctl := func(fd *vfs.FileDescription, cmd uint, mem []byte) {
		t.Helper()
		if _, err := fd.Ioctl(ctx, &usermem.BytesIO{Bytes: mem}, unix.SYS_IOCTL, [6]uintptr{0, uintptr(cmd), 0}); err != nil {
			t.Fatalf("ioctl %#x: %v", cmd, err)
		}
	}
	n := make([]byte, 4)
	ioctl(master, unix.TIOCGPTN, n)
	ioctl(master, unix.TIOCSPTLCK, make([]byte, 4))
	replica, err := v.OpenAt(ctx, creds, vfstest.Pop(root, "/dev/pts/"+strconv.Itoa(int(binary.LittleEndian.Uint32(n)))), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetConsole(ctx, v, replica); err != nil {
		t.Fatal(err)
	}

	cons, err := openConsole()
	if err != nil {
		t.Fatalf("open /dev/console with a console: %v", err)
	}
	want, _ := devpts.TerminalFromFile(replica)
	if got, ok := devpts.TerminalFromFile(cons); !ok || got != want {
		t.Fatalf("/dev/console is terminal %v (%v), want the replica's %v", got, ok, want)
	}
	// Termios answers as on any terminal (isatty(3)).
	ioctl(cons, unix.TCGETS, make([]byte, 60))
	if _, err := vfstest.Write(ctx, cons, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := vfstest.Read(ctx, master, 64); err != nil || string(b) != "hello\r\n" {
		t.Errorf("master read %q, %v; want the console's output", b, err)
	}
	// The console itself does not hold the pty open: once every opened
	// replica is closed, the master sees EIO, as it would without one.
	cons.DecRef(ctx)
	replica.DecRef(ctx)
	if _, err := vfstest.Read(ctx, master, 64); !errors.Is(err, unix.EIO) {
		t.Errorf("master read with the replica closed: %v, want EIO", err)
	}

	if err := dev.SetConsole(ctx, v, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := openConsole(); !errors.Is(err, unix.ENODEV) {
		t.Errorf("open /dev/console after the console was removed: %v, want ENODEV", err)
	}
}

// TestSetConsoleNeedsTheDriver: a VFS without dev.Register has no
// console to set.
func TestSetConsoleNeedsTheDriver(t *testing.T) {
	if err := dev.SetConsole(t.Context(), vfs.New(), nil); !errors.Is(err, unix.ENODEV) {
		t.Errorf("SetConsole on a bare VFS: %v, want ENODEV", err)
	}
}
