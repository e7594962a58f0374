package vfs_test

import (
	"context"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// magicFS is a filesystem whose root holds one magic link, "link", to a
// fixed file, like /proc/self/fd/N.
type magicFS struct{ target vfs.VirtualDentry }

type magicFSImpl struct{}

func (magicFSImpl) Release(context.Context) {}

func (m magicFS) Name() string { return "magic" }

func (m magicFS) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, _ *auth.Credentials, _ string, _ vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	fs := v.NewFilesystem(magicFSImpl{})
	d := fs.NewDentry(&magicDir{target: m.target})
	d.IncRef()
	return fs, d, nil
}

type magicNode struct{ vfs.InodeDefaults }

func (magicNode) IncRef()                     {}
func (magicNode) DecRef(context.Context)      {}
func (magicNode) Owner() (auth.UID, auth.GID) { return 0, 0 }
func (magicNode) SetStat(context.Context, *vfs.SetStatOptions) error {
	return unix.EPERM
}
func (magicNode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return nil, unix.ENXIO
}

type magicDir struct {
	magicNode
	target vfs.VirtualDentry
}

func (*magicDir) Mode() uint32 { return unix.S_IFDIR | 0o555 }
func (*magicDir) Stat(context.Context, uint32) (vfs.Statx, error) {
	return vfs.Statx{Mode: unix.S_IFDIR | 0o555, Ino: 1}, nil
}
func (d *magicDir) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	if name == "link" {
		return &magicLink{target: d.target}, nil
	}
	return nil, unix.ENOENT
}

type magicLink struct {
	magicNode
	target vfs.VirtualDentry
}

func (*magicLink) Mode() uint32 { return unix.S_IFLNK | 0o777 }
func (*magicLink) Stat(context.Context, uint32) (vfs.Statx, error) {
	return vfs.Statx{Mode: unix.S_IFLNK | 0o777, Ino: 2}, nil
}
func (*magicLink) Readlink(context.Context) (string, error) { return "/not/a/real/path", nil }
func (l *magicLink) ResolveMagicLink(context.Context) (vfs.VirtualDentry, error) {
	l.target.IncRef()
	return l.target, nil
}

func TestMagicLinks(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/d", 0o755))
	e.writeFile("/d/f", "target")
	e.must(e.mkdir("/proc", 0o755))
	f, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/d/f"), nil)
	e.must(err)
	defer f.DecRef(e.ctx)
	d, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/d"), nil)
	e.must(err)
	defer d.DecRef(e.ctx)
	e.must(e.vfs.RegisterFilesystemType("magic", magicFS{target: f}))
	e.must(e.vfs.RegisterFilesystemType("magicdir", dirMagicFS{magicFS{target: d}}))
	_, err = e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/proc"), "magic", &vfs.MountOptions{})
	e.must(err)
	if got, err := e.readFile("/proc/link"); err != nil || got != "target" {
		t.Errorf("through magic link: %q %v", got, err)
	}
	fd, err := e.open("/proc/link", unix.O_CREAT|unix.O_RDONLY, 0o644)
	if err != nil {
		t.Errorf("O_CREAT through magic link: %v", err)
	} else {
		fd.DecRef(e.ctx)
	}
	pop := e.pop("/proc/link")
	pop.Resolve = linux.RESOLVE_NO_MAGICLINKS
	_, err = e.vfs.OpenAt(e.ctx, e.creds, pop, &vfs.OpenOptions{Flags: unix.O_RDONLY})
	wantErr(t, "RESOLVE_NO_MAGICLINKS", err, unix.ELOOP)
	if target, _ := e.vfs.ReadlinkAt(e.ctx, e.creds, e.pop("/proc/link")); target != "/not/a/real/path" {
		t.Errorf("readlink of magic link = %q", target)
	}
	// A magic link to a directory continues the walk from there.
	e.must(e.mkdir("/proc2", 0o755))
	_, err = e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/proc2"), "magicdir", &vfs.MountOptions{})
	e.must(err)
	if got, err := e.readFile("/proc2/link/f"); err != nil || got != "target" {
		t.Errorf("walk through magic dir link: %q %v", got, err)
	}
	_ = vfstest.Pop
}

type dirMagicFS struct{ magicFS }

func (dirMagicFS) Name() string { return "magicdir" }
