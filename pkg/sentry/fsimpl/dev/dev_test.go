package dev_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/dev"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

func setup(t *testing.T) (context.Context, *vfs.VirtualFilesystem, vfs.VirtualDentry) {
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Register(v); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	if err := v.MkdirAt(ctx, creds, vfstest.Pop(root, "/dev"), &vfs.MkdirOptions{Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.MountAt(ctx, creds, "dev", vfstest.Pop(root, "/dev"), dev.Name, &vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	return ctx, v, root
}

func TestMemoryDevices(t *testing.T) {
	ctx, v, root := setup(t)
	// An unprivileged user uses them too (mode 0666).
	u := auth.NewUser(1000, 1000, nil)
	open := func(name string) *vfs.FileDescription {
		fd, err := v.OpenAt(ctx, u, vfstest.Pop(root, "/dev/"+name), &vfs.OpenOptions{Flags: unix.O_RDWR})
		if err != nil {
			t.Fatalf("open /dev/%s: %v", name, err)
		}
		t.Cleanup(func() { fd.DecRef(ctx) })
		return fd
	}
	null := open("null")
	if b, err := vfstest.Read(ctx, null, 10); len(b) != 0 || err != nil {
		t.Errorf("read /dev/null = %q %v", b, err)
	}
	if n, err := vfstest.Write(ctx, null, make([]byte, 12345)); n != 12345 || err != nil {
		t.Errorf("write /dev/null = %d %v", n, err)
	}
	zero := open("zero")
	buf := bytes.Repeat([]byte{0xff}, 10000)
	if n, err := zero.Read(ctx, vfstest.Seq(buf), vfs.ReadOptions{}); n != 10000 || err != nil || !bytes.Equal(buf, make([]byte, 10000)) {
		t.Errorf("read /dev/zero = %d %v", n, err)
	}
	full := open("full")
	if _, err := vfstest.Write(ctx, full, []byte("x")); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("write /dev/full: %v", err)
	}
	if b, _ := vfstest.Read(ctx, full, 4); !bytes.Equal(b, make([]byte, 4)) {
		t.Errorf("read /dev/full = %v", b)
	}
	for _, name := range []string{"random", "urandom"} {
		fd := open(name)
		a, _ := vfstest.Read(ctx, fd, 64)
		b, _ := vfstest.Read(ctx, fd, 64)
		if len(a) != 64 || bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 64)) {
			t.Errorf("/dev/%s does not look random", name)
		}
	}
	st, err := v.StatAt(ctx, u, vfstest.Pop(root, "/dev/null"), &vfs.StatOptions{})
	if err != nil || st.Rdev_major != 1 || st.Rdev_minor != 3 || st.Mode != unix.S_IFCHR|0o666 {
		t.Errorf("stat /dev/null: %d:%d %o %v", st.Rdev_major, st.Rdev_minor, st.Mode, err)
	}
	if target, err := v.ReadlinkAt(ctx, u, vfstest.Pop(root, "/dev/fd")); target != "/proc/self/fd" || err != nil {
		t.Errorf("/dev/fd -> %q %v", target, err)
	}
	st, _ = v.StatAt(ctx, u, vfstest.Pop(root, "/dev/shm"), &vfs.StatOptions{})
	if st.Mode != unix.S_IFDIR|0o1777 {
		t.Errorf("/dev/shm mode %o", st.Mode)
	}
	// /dev is a tmpfs: users may not add to it, root may.
	if err := v.MknodAt(ctx, u, vfstest.Pop(root, "/dev/x"), &vfs.MknodOptions{Mode: unix.S_IFREG | 0o644}); !errors.Is(err, unix.EACCES) {
		t.Errorf("user creates in /dev: %v", err)
	}
}

// TestDefaultNodes checks /dev against the OCI runtime spec's default
// devices and the links every container has; /dev/tty without a
// controlling terminal (no driver registered) opens with ENXIO, as on
// Linux.
func TestDefaultNodes(t *testing.T) {
	ctx, v, root := setup(t)
	u := auth.NewUser(1000, 1000, nil)
	for _, c := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		st, err := v.StatAt(ctx, u, vfstest.NoFollow(vfstest.Pop(root, "/dev/"+c.name)), &vfs.StatOptions{})
		if err != nil || st.Mode != unix.S_IFCHR|0o666 || st.Rdev_major != c.major || st.Rdev_minor != c.minor {
			t.Errorf("/dev/%s: mode %o, %d:%d, %v; want a 0666 character device %d:%d", c.name, st.Mode, st.Rdev_major, st.Rdev_minor, err, c.major, c.minor)
		}
	}
	for name, want := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	} {
		if got, err := v.ReadlinkAt(ctx, u, vfstest.Pop(root, "/dev/"+name)); got != want || err != nil {
			t.Errorf("/dev/%s -> %q, %v; want %q", name, got, err, want)
		}
	}
	for _, dir := range []string{"pts", "shm"} {
		if st, err := v.StatAt(ctx, u, vfstest.Pop(root, "/dev/"+dir), &vfs.StatOptions{}); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("/dev/%s: mode %o, %v; want a directory", dir, st.Mode, err)
		}
	}
	if _, err := v.OpenAt(ctx, u, vfstest.Pop(root, "/dev/tty"), &vfs.OpenOptions{Flags: unix.O_RDWR}); !errors.Is(err, unix.ENXIO) {
		t.Errorf("open /dev/tty without a controlling terminal = %v, want ENXIO", err)
	}
}
