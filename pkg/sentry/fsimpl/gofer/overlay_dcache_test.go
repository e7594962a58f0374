package gofer_test

import (
	"fmt"
	"os"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/fsimpl/overlay"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// Under an overlay (the container root's layout), walking a large lower
// tree keeps the Gofer's inodes (and so its open descriptors) bounded.
func TestOverlayOverGoferWalkIsBounded(t *testing.T) {
	const limit, dirs, files = 32, 20, 50
	e := newEnv(t, envOpts{dcacheLimit: limit})
	for d := 0; d < dirs; d++ {
		e.must(os.Mkdir(e.hostPath(fmt.Sprint("d", d)), 0o755))
		for f := 0; f < files; f++ {
			e.must(os.WriteFile(e.hostPath(fmt.Sprintf("d%d/f%d", d, f)), nil, 0o644))
		}
	}
	if err := e.v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	if err := e.v.RegisterFilesystemType(overlay.Name, overlay.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	uns, err := e.v.NewMountNamespace(e.ctx, e.creds, "", tmpfs.Name, &vfs.MountOptions{})
	e.must(err)
	upper := uns.Root()
	defer upper.DecRef(e.ctx)
	ons, err := e.v.NewMountNamespace(e.ctx, e.creds, "", overlay.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		InternalData: &overlay.Options{Lower: e.root, Upper: upper, DentryCacheLimit: limit}}})
	e.must(err)
	oroot := ons.Root()
	defer oroot.DecRef(e.ctx)
	var walk func(p string)
	walk = func(p string) {
		fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(oroot, p+"/"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
		e.must(err)
		names, err := vfstest.ReadDir(e.ctx, fd)
		fd.DecRef(e.ctx)
		e.must(err)
		for _, n := range names {
			if n == "." || n == ".." {
				continue
			}
			c := p + "/" + n
			st, err := e.v.StatAt(e.ctx, e.creds, vfstest.NoFollow(vfstest.Pop(oroot, c)), &vfs.StatOptions{})
			e.must(err)
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				walk(c)
			}
		}
	}
	before := countFDs(t)
	walk("")
	if n := countFDs(t) - before; n > 300 { // 1000 files walked
		t.Errorf("%d more host descriptors (the Gofer's) after the walk", n)
	}
	if n := gofer.LiveInodes(e.root.Mount().Filesystem()); n > 3*limit+dirs {
		t.Errorf("%d gofer inodes live after walking %d names through the overlay", n, dirs*files)
	}
}
