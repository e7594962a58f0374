package vfs_test

import (
	"context"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// env is a VFS with a tmpfs root, acting as creds.
type env struct {
	t     testing.TB
	ctx   context.Context
	vfs   *vfs.VirtualFilesystem
	root  vfs.VirtualDentry
	creds *auth.Credentials
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{Data: "mode=0755"}})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	return &env{t: t, ctx: ctx, vfs: v, root: root, creds: creds}
}

// as returns a copy of e acting with other credentials.
func (e *env) as(c *auth.Credentials) *env {
	n := *e
	n.creds = c
	return &n
}

func (e *env) pop(path string) *vfs.PathOperation { return vfstest.Pop(e.root, path) }

func (e *env) mkdir(path string, mode uint32) error {
	return e.vfs.MkdirAt(e.ctx, e.creds, e.pop(path), &vfs.MkdirOptions{Mode: mode})
}

func (e *env) open(path string, flags, mode uint32) (*vfs.FileDescription, error) {
	return e.vfs.OpenAt(e.ctx, e.creds, e.pop(path), &vfs.OpenOptions{Flags: flags, Mode: mode})
}

func (e *env) create(path string, mode uint32) error {
	fd, err := e.open(path, unix.O_CREAT|unix.O_WRONLY, mode)
	if err == nil {
		fd.DecRef(e.ctx)
	}
	return err
}

func (e *env) writeFile(path string, data string) {
	e.t.Helper()
	fd, err := e.open(path, unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC, 0o644)
	if err != nil {
		e.t.Fatalf("open %q: %v", path, err)
	}
	defer fd.DecRef(e.ctx)
	if _, err := vfstest.Write(e.ctx, fd, []byte(data)); err != nil {
		e.t.Fatalf("write %q: %v", path, err)
	}
}

func (e *env) readFile(path string) (string, error) {
	fd, err := e.open(path, unix.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer fd.DecRef(e.ctx)
	b, err := vfstest.Read(e.ctx, fd, 1<<16)
	return string(b), err
}

func (e *env) symlink(target, path string) error {
	return e.vfs.SymlinkAt(e.ctx, e.creds, e.pop(path), target)
}

func (e *env) stat(path string) (vfs.Statx, error) {
	return e.vfs.StatAt(e.ctx, e.creds, e.pop(path), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
}

func (e *env) lstat(path string) (vfs.Statx, error) {
	return e.vfs.StatAt(e.ctx, e.creds, vfstest.NoFollow(e.pop(path)), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: unexpected error %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func user(uid uint32, gid uint32, extra ...uint32) *auth.Credentials {
	var gids []auth.GID
	for _, g := range extra {
		gids = append(gids, auth.GID(g))
	}
	return auth.NewUser(auth.UID(uid), auth.GID(gid), gids)
}
