package overlay_test

import (
	"encoding/binary"
	"slices"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/inotify"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// TestInotifyDeleteSelfAtLastClose checks that a file of the lower layer,
// removed through the overlay while open, is reported deleted
// (IN_DELETE_SELF, IN_IGNORED) at its last close, not at the unlink,
// which reports IN_ATTRIB as on Linux.
func TestInotifyDeleteSelfAtLastClose(t *testing.T) {
	e := newEnv(t)
	inFD, err := inotify.New(e.ctx, e.v, unix.IN_NONBLOCK)
	e.must(err)
	defer inFD.DecRef(e.ctx)
	masks := func() []uint32 {
		b, err := vfstest.Read(e.ctx, inFD, 4096)
		if err == unix.EAGAIN {
			return nil
		}
		e.must(err)
		var out []uint32
		for len(b) >= 16 {
			out = append(out, binary.LittleEndian.Uint32(b[4:]))
			b = b[16+binary.LittleEndian.Uint32(b[12:]):]
		}
		return out
	}
	for _, p := range []string{"/file", "/dir/a"} {
		fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(p), &vfs.OpenOptions{Flags: unix.O_RDONLY})
		e.must(err)
		vd, err := e.v.GetDentryAt(e.ctx, e.creds, e.pop(p), nil)
		e.must(err)
		_, err = inotify.FromFile(inFD).AddWatch(vd, unix.IN_ATTRIB|unix.IN_DELETE_SELF)
		vd.DecRef(e.ctx)
		e.must(err)
		e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop(p)))
		if got := masks(); !slices.Equal(got, []uint32{unix.IN_ATTRIB}) {
			t.Errorf("%s: events at unlink %#x, want IN_ATTRIB only", p, got)
		}
		fd.DecRef(e.ctx)
		if got := masks(); !slices.Equal(got, []uint32{unix.IN_DELETE_SELF, unix.IN_IGNORED}) {
			t.Errorf("%s: events at close %#x, want IN_DELETE_SELF, IN_IGNORED", p, got)
		}
	}
}
