package vfs_test

import (
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

func TestRemountAndRecursiveBind(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/a", 0o755))
	e.must(e.mkdir("/b", 0o755))
	m, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/a"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	e.must(e.mkdir("/a/sub", 0o755))
	_, err = e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/a/sub"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	e.writeFile("/a/sub/f", "inner")

	// Remount read-only with flags; only a mount's root may be named.
	wantErr(t, "remount of a non-root", e.vfs.RemountAt(e.ctx, e.creds, e.pop("/a/sub/f"), true, 0), unix.EINVAL)
	wantErr(t, "remount unprivileged", e.vfs.RemountAt(e.ctx, user(1, 1), e.pop("/a"), true, 0), unix.EPERM)
	e.must(e.vfs.RemountAt(e.ctx, e.creds, e.pop("/a"), true, unix.MS_NOEXEC|unix.MS_NOSUID))
	if !m.ReadOnly() || m.Flags() != unix.MS_NOEXEC|unix.MS_NOSUID {
		t.Errorf("after remount: ro %v flags %#x", m.ReadOnly(), m.Flags())
	}
	wantErr(t, "create on a read-only remount", e.create("/a/new", 0o644), unix.EROFS)
	e.must(e.vfs.RemountAt(e.ctx, e.creds, e.pop("/a"), false, 0))
	e.must(e.create("/a/new", 0o644))

	// A plain bind leaves the submount behind; MS_REC brings it.
	e.must(e.mkdir("/plain", 0o755))
	_, err = e.vfs.BindAt(e.ctx, e.creds, e.pop("/a"), e.pop("/plain"), false)
	e.must(err)
	if _, err := e.readFile("/plain/sub/f"); err == nil {
		t.Errorf("non-recursive bind shows the submount's file")
	}
	_, err = e.vfs.BindTreeAt(e.ctx, e.creds, e.pop("/a"), e.pop("/b"), false)
	e.must(err)
	if got, err := e.readFile("/b/sub/f"); got != "inner" || err != nil {
		t.Errorf("recursive bind: %q, %v", got, err)
	}
	// Unmounting the copy leaves the original.
	e.must(e.vfs.UmountAt(e.ctx, e.creds, e.pop("/b/sub"), &vfs.UmountOptions{}))
	if got, err := e.readFile("/a/sub/f"); got != "inner" || err != nil {
		t.Errorf("original submount after unmounting its copy: %q, %v", got, err)
	}
}

func TestPivotRoot(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/new", 0o755))
	_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/new"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	e.must(e.mkdir("/new/old", 0o755))
	e.writeFile("/new/hello", "new root")
	e.writeFile("/marker", "old root")

	wantErr(t, "new root not a mount", func() error {
		_, err := e.vfs.PivotRoot(e.ctx, e.creds, e.root, e.pop("/new/old"), e.pop("/new/old"))
		return err
	}(), unix.EINVAL)
	// Linux answers EBUSY for a path on the current root mount before
	// looking at where put_old is.
	wantErr(t, "put_old on the current root mount", func() error {
		_, err := e.vfs.PivotRoot(e.ctx, e.creds, e.root, e.pop("/new"), e.pop("/"))
		return err
	}(), unix.EBUSY)
	wantErr(t, "new root on the current root mount", func() error {
		_, err := e.vfs.PivotRoot(e.ctx, e.creds, e.root, e.pop("/"), e.pop("/new/old"))
		return err
	}(), unix.EBUSY)
	e.must(e.mkdir("/elsewhere", 0o755))
	_, err = e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/elsewhere"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	wantErr(t, "put_old outside new root", func() error {
		_, err := e.vfs.PivotRoot(e.ctx, e.creds, e.root, e.pop("/new"), e.pop("/elsewhere"))
		return err
	}(), unix.EINVAL)
	wantErr(t, "unprivileged", func() error {
		_, err := e.vfs.PivotRoot(e.ctx, user(1, 1), e.root, e.pop("/new"), e.pop("/new/old"))
		return err
	}(), unix.EPERM)

	nr, err := e.vfs.PivotRoot(e.ctx, e.creds, e.root, e.pop("/new"), e.pop("/new/old"))
	e.must(err)
	defer nr.DecRef(e.ctx)
	after := e.as(e.creds)
	after.root = nr
	if got, err := after.readFile("/hello"); got != "new root" || err != nil {
		t.Errorf("/hello from the new root: %q, %v", got, err)
	}
	if got, err := after.readFile("/old/marker"); got != "old root" || err != nil {
		t.Errorf("/old/marker: %q, %v", got, err)
	}
	// The old root can now be detached, as container runtimes do.
	after.must(after.vfs.UmountAt(after.ctx, after.creds, after.pop("/old"), &vfs.UmountOptions{Detach: true}))
	if _, err := after.readFile("/old/marker"); err == nil {
		t.Errorf("old root still visible after umount -l")
	}
}

func TestCloneMountNamespace(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/m", 0o755))
	e.must(e.mkdir("/later", 0o755))
	_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/m"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	e.writeFile("/m/f", "shared fs")
	cwd, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/m"), nil)
	e.must(err)
	defer cwd.DecRef(e.ctx)

	ns, vds := e.vfs.CloneMountNamespace(e.ctx, e.root.Mount().Namespace(), []vfs.VirtualDentry{e.root, cwd})
	c := e.as(e.creds)
	c.root = vds[0]
	defer func() {
		vds[0].DecRef(e.ctx)
		vds[1].DecRef(e.ctx)
		ns.DecRef(e.ctx)
	}()
	if vds[1].Mount() == cwd.Mount() || vds[1].Dentry() != cwd.Dentry() {
		t.Errorf("cwd not mapped into the copy")
	}
	// Same filesystems: a file written in one tree shows in the other.
	if got, err := c.readFile("/m/f"); got != "shared fs" || err != nil {
		t.Errorf("copy reads %q, %v", got, err)
	}
	// Mounts made in the copy stay there, and unmounts too.
	_, err = c.vfs.MountAt(c.ctx, c.creds, "", c.pop("/later"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	c.writeFile("/later/only-in-copy", "x")
	if _, err := e.readFile("/later/only-in-copy"); err == nil {
		t.Errorf("a mount made in the copy shows in the original")
	}
	e.must(c.vfs.UmountAt(c.ctx, c.creds, c.pop("/m"), &vfs.UmountOptions{Detach: true}))
	if got, err := e.readFile("/m/f"); got != "shared fs" || err != nil {
		t.Errorf("the original lost its mount when the copy unmounted: %q, %v", got, err)
	}
	if _, err := c.readFile("/m/f"); err == nil {
		t.Errorf("the copy still shows what it unmounted")
	}
}

func TestMoveMountAndNodev(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/from", 0o755))
	e.must(e.mkdir("/to", 0o755))
	_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/from"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	e.writeFile("/from/f", "moved")
	e.must(e.mkdir("/from/inner", 0o755))
	wantErr(t, "move below itself", e.vfs.MoveMountAt(e.ctx, e.creds, e.pop("/from"), e.pop("/from/inner")), unix.ELOOP)
	wantErr(t, "move a non-mount", e.vfs.MoveMountAt(e.ctx, e.creds, e.pop("/to"), e.pop("/from")), unix.EINVAL)
	e.must(e.vfs.MoveMountAt(e.ctx, e.creds, e.pop("/from"), e.pop("/to")))
	if got, err := e.readFile("/to/f"); got != "moved" || err != nil {
		t.Errorf("/to/f: %q, %v", got, err)
	}
	if _, err := e.readFile("/from/f"); err == nil {
		t.Errorf("/from still shows the moved mount")
	}
	// nodev: device nodes there do not open.
	e.must(e.vfs.MknodAt(e.ctx, e.creds, e.pop("/to/null"), &vfs.MknodOptions{Mode: unix.S_IFCHR | 0o666, DevMajor: 1, DevMinor: 3}))
	e.must(e.vfs.RemountAt(e.ctx, e.creds, e.pop("/to"), false, unix.MS_NODEV))
	_, err = e.open("/to/null", unix.O_RDONLY, 0)
	wantErr(t, "device on a nodev mount", err, unix.EACCES)
}

// TestNoexecAndNosuid checks what MS_NOEXEC and MS_NOSUID mean for files
// on the mount: execve's check (EACCES), no executable mapping (EPERM,
// and none by a later mprotect), no set-id on exec.
func TestNoexecAndNosuid(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/nx", 0o755))
	_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/nx"), tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	e.writeFile("/nx/prog", "#!/bin/sh\n")
	e.writeFile("/prog", "#!/bin/sh\n")
	open := func(p string) *vfs.FileDescription {
		fd, err := e.open(p, unix.O_RDONLY, 0)
		e.must(err)
		t.Cleanup(func() { fd.DecRef(e.ctx) })
		return fd
	}
	before := open("/nx/prog")
	if err := before.CheckExecMount(); err != nil || !before.SetIDAllowed() {
		t.Errorf("plain mount: CheckExecMount %v, SetIDAllowed %v", err, before.SetIDAllowed())
	}
	e.must(e.vfs.RemountAt(e.ctx, e.creds, e.pop("/nx"), false, unix.MS_NOEXEC|unix.MS_NOSUID))
	for _, fd := range []*vfs.FileDescription{before, open("/nx/prog")} {
		wantErr(t, "CheckExecMount on noexec", fd.CheckExecMount(), unix.EACCES)
		if fd.SetIDAllowed() {
			t.Errorf("SetIDAllowed on a nosuid mount")
		}
		x := memmap.MMapOpts{Length: 4096, Private: true, Perms: hostarch.AccessType{Read: true, Execute: true}, MaxPerms: hostarch.AnyAccess}
		wantErr(t, "PROT_EXEC mmap on noexec", fd.ConfigureMMap(e.ctx, &x), unix.EPERM)
		r := memmap.MMapOpts{Length: 4096, Private: true, Perms: hostarch.Read, MaxPerms: hostarch.AnyAccess}
		fd.ConfigureMMap(e.ctx, &r) // the file system's answer does not matter here
		if r.MaxPerms.Execute {
			t.Errorf("a mapping of a noexec file may later become executable")
		}
	}
	// The root mount is unaffected.
	if err := open("/prog").CheckExecMount(); err != nil {
		t.Errorf("CheckExecMount on the root: %v", err)
	}
}
