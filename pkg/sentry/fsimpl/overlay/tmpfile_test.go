package overlay_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// O_TMPFILE in a lower directory makes the file in the upper layer, and
// linkat gives it a name the overlay and the upper layer both show.
func TestOverlayTmpfile(t *testing.T) {
	e := newEnv(t)
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir"), &vfs.OpenOptions{Flags: unix.O_TMPFILE | unix.O_RDWR, Mode: 0o600})
	e.must(err)
	defer fd.DecRef(e.ctx)
	if _, err := vfstest.Write(e.ctx, fd, []byte("tmp")); err != nil {
		t.Fatal(err)
	}
	self := &vfs.PathOperation{Root: e.root, Start: fd.VirtualDentry(), AllowEmptyPath: true}
	e.must(e.v.LinkAt(e.ctx, e.creds, self, e.pop("/dir/kept")))
	for _, root := range []vfs.VirtualDentry{e.root, e.upper} {
		f, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(root, "/dir/kept"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
		e.must(err)
		got, err := vfstest.Read(e.ctx, f, 16)
		f.DecRef(e.ctx)
		if err != nil || string(got) != "tmp" {
			t.Errorf("kept reads %q, %v", got, err)
		}
	}
	if err := e.v.LinkAt(e.ctx, e.creds, self, e.pop("/dir/twice")); err != unix.ENOENT {
		t.Errorf("second link: %v, want ENOENT", err)
	}
	// The lower directory's entries are all still there.
	d, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	e.must(err)
	names, err := vfstest.ReadDir(e.ctx, d)
	d.DecRef(e.ctx)
	e.must(err)
	if len(names) != 6 { // . .. a b sub kept
		t.Errorf("readdir %v", names)
	}
}
