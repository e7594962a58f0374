package vfs_test

import (
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

func TestOpenTmpfile(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/d", 0o777))
	fd, err := e.open("/d", unix.O_TMPFILE|unix.O_RDWR, 0o640)
	e.must(err)
	defer fd.DecRef(e.ctx)
	dir, err := e.open("/d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	e.must(err)
	names, err := vfstest.ReadDir(e.ctx, dir)
	dir.DecRef(e.ctx)
	e.must(err)
	if len(names) != 2 {
		t.Errorf("directory lists %v, want only . and ..", names)
	}
	if _, err := vfstest.Write(e.ctx, fd, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	st, err := fd.Stat(e.ctx, vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	e.must(err)
	if st.Nlink != 0 || st.Mode != unix.S_IFREG|0o640 || st.Size != 2 {
		t.Errorf("stat nlink %d mode %o size %d", st.Nlink, st.Mode, st.Size)
	}
	if p, _ := e.vfs.PathnameWithDeleted(e.ctx, e.root, fd.VirtualDentry()); !strings.HasPrefix(p, "/d/#") || !strings.HasSuffix(p, " (deleted)") {
		t.Errorf("fd path %q", p)
	}
	// linkat(fd, "", AT_EMPTY_PATH) names it, once.
	self := &vfs.PathOperation{Root: e.root, Start: fd.VirtualDentry(), AllowEmptyPath: true}
	e.must(e.vfs.LinkAt(e.ctx, e.creds, self, e.pop("/d/named")))
	if got, err := e.readFile("/d/named"); got != "hi" || err != nil {
		t.Errorf("named file reads %q, %v", got, err)
	}
	wantErr(t, "second link", e.vfs.LinkAt(e.ctx, e.creds, self, e.pop("/d/again")), unix.ENOENT)

	// O_EXCL: never linkable.
	ex, err := e.open("/d", unix.O_TMPFILE|unix.O_WRONLY|unix.O_EXCL, 0o600)
	e.must(err)
	defer ex.DecRef(e.ctx)
	wantErr(t, "link of O_EXCL tmpfile", e.vfs.LinkAt(e.ctx, e.creds, &vfs.PathOperation{Root: e.root, Start: ex.VirtualDentry(), AllowEmptyPath: true}, e.pop("/d/x")), unix.ENOENT)

	for _, c := range []struct {
		what  string
		path  string
		flags uint32
		as    *env
		want  error
	}{
		{"read-only", "/d", unix.O_TMPFILE | unix.O_RDONLY, e, unix.EINVAL},
		{"with O_CREAT", "/d", unix.O_TMPFILE | unix.O_RDWR | unix.O_CREAT, e, unix.EINVAL},
		{"not a directory", "/d/named", unix.O_TMPFILE | unix.O_RDWR, e, unix.ENOTDIR},
		{"missing", "/nope", unix.O_TMPFILE | unix.O_RDWR, e, unix.ENOENT},
		{"no write permission", "/", unix.O_TMPFILE | unix.O_RDWR, e.as(user(1000, 1000)), unix.EACCES},
	} {
		f, err := c.as.open(c.path, c.flags, 0o600)
		if err == nil {
			f.DecRef(e.ctx)
		}
		wantErr(t, "O_TMPFILE "+c.what, err, c.want)
	}
}
