package inotify_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/inotify"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

type env struct {
	t     testing.TB
	ctx   context.Context
	v     *vfs.VirtualFilesystem
	root  vfs.VirtualDentry
	creds *auth.Credentials
}

func newEnv(t testing.TB) *env {
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ctx = auth.ContextWithCredentials(ctx, creds)
	ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	return &env{t: t, ctx: ctx, v: v, root: root, creds: creds}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pop(p string) *vfs.PathOperation { return vfstest.Pop(e.root, p) }

func (e *env) instance() (*vfs.FileDescription, *inotify.Instance) {
	f, err := inotify.New(e.ctx, e.v, unix.IN_NONBLOCK)
	e.must(err)
	e.t.Cleanup(func() { f.DecRef(e.ctx) })
	return f, inotify.FromFile(f)
}

func (e *env) watch(in *inotify.Instance, path string, mask uint32) int32 {
	e.t.Helper()
	vd, err := e.v.GetDentryAt(e.ctx, e.creds, e.pop(path), nil)
	e.must(err)
	defer vd.DecRef(e.ctx)
	wd, err := in.AddWatch(vd, mask)
	e.must(err)
	return wd
}

func (e *env) writeFile(path, data string) {
	e.t.Helper()
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(path), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644})
	e.must(err)
	defer fd.DecRef(e.ctx)
	if data != "" {
		_, err = vfstest.Write(e.ctx, fd, []byte(data))
		e.must(err)
	}
}

type ev struct {
	wd           int32
	mask, cookie uint32
	name         string
}

func (ev ev) String() string {
	return fmt.Sprintf("{wd %d mask %#x cookie %d %q}", ev.wd, ev.mask, ev.cookie, ev.name)
}

// read returns the queued events, decoding the wire format.
func read(t *testing.T, ctx context.Context, f *vfs.FileDescription) []ev {
	t.Helper()
	b, err := vfstest.Read(ctx, f, 8192)
	if err == unix.EAGAIN {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []ev
	for len(b) > 0 {
		if len(b) < 16 {
			t.Fatalf("short record: %d bytes", len(b))
		}
		l := binary.LittleEndian.Uint32(b[12:])
		if l%16 != 0 || 16+int(l) > len(b) {
			t.Fatalf("name length %d", l)
		}
		e := ev{wd: int32(binary.LittleEndian.Uint32(b)), mask: binary.LittleEndian.Uint32(b[4:]), cookie: binary.LittleEndian.Uint32(b[8:]),
			name: strings.TrimRight(string(b[16:16+l]), "\x00")}
		out = append(out, e)
		b = b[16+l:]
	}
	return out
}

func TestDirectoryEvents(t *testing.T) {
	e := newEnv(t)
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/d"), &vfs.MkdirOptions{Mode: 0o755}))
	f, in := e.instance()
	wd := e.watch(in, "/d", unix.IN_ALL_EVENTS)
	e.writeFile("/d/f", "x")
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/d/sub"), &vfs.MkdirOptions{Mode: 0o755}))
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/d/f"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600}))
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/d/f"), e.pop("/d/g"), &vfs.RenameOptions{}))
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/d/g")))
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/d/sub")))
	got := read(t, e.ctx, f)
	want := []ev{
		{wd, unix.IN_CREATE, 0, "f"},
		{wd, unix.IN_OPEN, 0, "f"},
		{wd, unix.IN_MODIFY, 0, "f"},
		{wd, unix.IN_CLOSE_WRITE, 0, "f"},
		{wd, unix.IN_CREATE | unix.IN_ISDIR, 0, "sub"},
		{wd, unix.IN_ATTRIB, 0, "f"},
		{wd, unix.IN_MOVED_FROM, 0, "f"},
		{wd, unix.IN_MOVED_TO, 0, "g"},
		{wd, unix.IN_DELETE, 0, "g"},
		{wd, unix.IN_DELETE | unix.IN_ISDIR, 0, "sub"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %v\nwant %v", got, want)
	}
	for i := range want {
		g := got[i]
		if want[i].mask&(unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0 {
			if g.cookie == 0 || g.cookie != got[6].cookie {
				t.Errorf("event %d: cookie %d (from's %d)", i, g.cookie, got[6].cookie)
			}
			g.cookie = 0
		}
		if g != want[i] {
			t.Errorf("event %d = %v, want %v", i, g, want[i])
		}
	}
}

func TestFileWatchSelfEvents(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "")
	f, in := e.instance()
	wd := e.watch(in, "/f", unix.IN_OPEN|unix.IN_CLOSE_NOWRITE|unix.IN_ATTRIB|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF)
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/f"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	e.must(err)
	fd.DecRef(e.ctx)
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/f"), e.pop("/g"), &vfs.RenameOptions{}))
	e.must(e.v.LinkAt(e.ctx, e.creds, e.pop("/g"), e.pop("/h")))
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/g"))) // a name remains: IN_ATTRIB
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/h")))
	got := read(t, e.ctx, f)
	want := []ev{
		{wd, unix.IN_OPEN, 0, ""},
		{wd, unix.IN_CLOSE_NOWRITE, 0, ""},
		{wd, unix.IN_MOVE_SELF, 0, ""},
		// link and the first unlink both report IN_ATTRIB (the link
		// count), back to back: they coalesce into one.
		{wd, unix.IN_ATTRIB, 0, ""},
		{wd, unix.IN_DELETE_SELF, 0, ""},
		{wd, unix.IN_IGNORED, 0, ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %v\nwant   %v", got, want)
	}
	if err := in.RmWatch(e.ctx, wd); err != unix.EINVAL {
		t.Errorf("rm_watch of an ended watch: %v", err)
	}
}

func TestWatchFlags(t *testing.T) {
	e := newEnv(t)
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/d"), &vfs.MkdirOptions{Mode: 0o755}))
	e.writeFile("/file", "")
	f, in := e.instance()
	vd, err := e.v.GetDentryAt(e.ctx, e.creds, e.pop("/file"), nil)
	e.must(err)
	defer vd.DecRef(e.ctx)
	if _, err := in.AddWatch(vd, unix.IN_CREATE|unix.IN_ONLYDIR); err != unix.ENOTDIR {
		t.Errorf("IN_ONLYDIR on a file: %v", err)
	}
	if _, err := in.AddWatch(vd, 0); err != unix.EINVAL {
		t.Errorf("empty mask: %v", err)
	}
	wd := e.watch(in, "/d", unix.IN_CREATE)
	if again := e.watch(in, "/d", unix.IN_DELETE); again != wd {
		t.Errorf("second watch of one inode: wd %d, want %d", again, wd)
	}
	e.writeFile("/d/a", "") // IN_CREATE no longer in the mask
	if evs := read(t, e.ctx, f); len(evs) != 0 {
		t.Errorf("events after the mask was replaced: %v", evs)
	}
	e.watch(in, "/d", unix.IN_CREATE|unix.IN_MASK_ADD)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/d/a")))
	e.writeFile("/d/b", "")
	if evs := read(t, e.ctx, f); fmt.Sprint(evs) != fmt.Sprint([]ev{{wd, unix.IN_DELETE, 0, "a"}, {wd, unix.IN_CREATE, 0, "b"}}) {
		t.Errorf("after IN_MASK_ADD: %v", evs)
	}
	dv, err := e.v.GetDentryAt(e.ctx, e.creds, e.pop("/d"), nil)
	e.must(err)
	defer dv.DecRef(e.ctx)
	if _, err := in.AddWatch(dv, unix.IN_CREATE|0x10000000 /* IN_MASK_CREATE */); err != unix.EEXIST {
		t.Errorf("IN_MASK_CREATE on a watched inode: %v", err)
	}

	// IN_ONESHOT: one event, then IN_IGNORED.
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/o"), &vfs.MkdirOptions{Mode: 0o755}))
	owd := e.watch(in, "/o", unix.IN_CREATE|unix.IN_ONESHOT)
	e.writeFile("/o/1", "")
	e.writeFile("/o/2", "")
	if evs := read(t, e.ctx, f); fmt.Sprint(evs) != fmt.Sprint([]ev{{owd, unix.IN_CREATE, 0, "1"}, {owd, unix.IN_IGNORED, 0, ""}}) {
		t.Errorf("IN_ONESHOT: %v", evs)
	}

	// IN_EXCL_UNLINK: no events about a child once it is unlinked.
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/x"), &vfs.MkdirOptions{Mode: 0o755}))
	e.writeFile("/x/f", "")
	open, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/x/f"), &vfs.OpenOptions{Flags: unix.O_WRONLY})
	e.must(err)
	defer open.DecRef(e.ctx)
	xwd := e.watch(in, "/x", unix.IN_MODIFY|unix.IN_DELETE|unix.IN_EXCL_UNLINK)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/x/f")))
	_, err = vfstest.Write(e.ctx, open, []byte("z"))
	e.must(err)
	if evs := read(t, e.ctx, f); fmt.Sprint(evs) != fmt.Sprint([]ev{{xwd, unix.IN_DELETE, 0, "f"}}) {
		t.Errorf("IN_EXCL_UNLINK: %v", evs)
	}

	// rm_watch reports IN_IGNORED; the descriptor is then unknown.
	e.must(in.RmWatch(e.ctx, wd))
	if evs := read(t, e.ctx, f); fmt.Sprint(evs) != fmt.Sprint([]ev{{wd, unix.IN_IGNORED, 0, ""}}) {
		t.Errorf("rm_watch: %v", evs)
	}
	if err := in.RmWatch(e.ctx, wd); err != unix.EINVAL {
		t.Errorf("second rm_watch: %v", err)
	}
}

func TestReadRulesAndReadiness(t *testing.T) {
	e := newEnv(t)
	f, in := e.instance()
	wd := e.watch(in, "/", unix.IN_CREATE|unix.IN_MODIFY)
	if f.Readiness(waiter.ReadableEvents) != 0 {
		t.Errorf("readable with nothing queued")
	}
	e.writeFile("/name", "")
	if f.Readiness(waiter.ReadableEvents) == 0 {
		t.Errorf("not readable with an event queued")
	}
	// The record is 16 bytes and the name padded to 16: 32 in all.
	if _, err := vfstest.Read(e.ctx, f, 16); err != unix.EINVAL {
		t.Errorf("16-byte read of a named event: %v", err)
	}
	b, err := vfstest.Read(e.ctx, f, 32)
	if err != nil || len(b) != 32 {
		t.Fatalf("32-byte read: %d bytes, %v", len(b), err)
	}
	// Identical successive events coalesce.
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/name"), &vfs.OpenOptions{Flags: unix.O_WRONLY})
	e.must(err)
	defer fd.DecRef(e.ctx)
	for range 3 {
		_, err := vfstest.Write(e.ctx, fd, []byte("x"))
		e.must(err)
	}
	if evs := read(t, e.ctx, f); fmt.Sprint(evs) != fmt.Sprint([]ev{{wd, unix.IN_MODIFY, 0, "name"}}) {
		t.Errorf("coalescing: %v", evs)
	}
	// A full queue ends in one IN_Q_OVERFLOW.
	for i := 0; i < inotify.MaxQueuedEvents+10; i++ {
		e.writeFile(fmt.Sprint("/n", i), "")
	}
	var last ev
	total := 0
	for {
		evs := read(t, e.ctx, f)
		if len(evs) == 0 {
			break
		}
		total += len(evs)
		last = evs[len(evs)-1]
	}
	if total != inotify.MaxQueuedEvents+1 || last.mask != unix.IN_Q_OVERFLOW || last.wd != -1 {
		t.Errorf("%d events ending in %v; want %d ending in IN_Q_OVERFLOW", total, last, inotify.MaxQueuedEvents+1)
	}
}

func TestInitFlags(t *testing.T) {
	e := newEnv(t)
	if _, err := inotify.New(e.ctx, e.v, 0x1); err != unix.EINVAL {
		t.Errorf("bad flags: %v", err)
	}
	f, err := inotify.New(e.ctx, e.v, 0)
	e.must(err)
	defer f.DecRef(e.ctx)
	if f.StatusFlags()&unix.O_NONBLOCK != 0 {
		t.Errorf("O_NONBLOCK without IN_NONBLOCK")
	}
}

// TestDeleteSelfWaitsForLastUser checks Linux's timing of IN_DELETE_SELF
// (measured on Linux 6.18): unlink(2) reports IN_ATTRIB at once; the
// deletion comes when the last user of the removed name (an open file, a
// held directory) lets go, and is reported per name.
func TestDeleteSelfWaitsForLastUser(t *testing.T) {
	e := newEnv(t)
	f, in := e.instance()
	const mask = unix.IN_ATTRIB | unix.IN_DELETE_SELF
	expect := func(what string, want ...ev) {
		t.Helper()
		if got := read(t, e.ctx, f); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: events %v\nwant %v", what, got, want)
		}
	}

	// An open file: IN_ATTRIB at unlink, the deletion at the last close.
	e.writeFile("/a", "x")
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/a"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	e.must(err)
	dup := fd
	dup.IncRef()
	wa := e.watch(in, "/a", mask)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/a")))
	expect("unlink of an open file", ev{wa, unix.IN_ATTRIB, 0, ""})
	fd.DecRef(e.ctx)
	expect("first of two closes")
	dup.DecRef(e.ctx)
	expect("last close", ev{wa, unix.IN_DELETE_SELF, 0, ""}, ev{wa, unix.IN_IGNORED, 0, ""})

	// Nothing holds the name: all at once.
	e.writeFile("/b", "")
	wb := e.watch(in, "/b", mask)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/b")))
	expect("unlink of an unused file", ev{wb, unix.IN_ATTRIB, 0, ""}, ev{wb, unix.IN_DELETE_SELF, 0, ""}, ev{wb, unix.IN_IGNORED, 0, ""})

	// Per name: the file is open through /c, and /c2 goes last while
	// nobody uses it, so the deletion is reported then.
	e.writeFile("/c", "")
	fc, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/c"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	e.must(err)
	e.must(e.v.LinkAt(e.ctx, e.creds, e.pop("/c"), e.pop("/c2")))
	wc := e.watch(in, "/c", mask)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/c")))
	expect("unlink of one of two names", ev{wc, unix.IN_ATTRIB, 0, ""})
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/c2")))
	expect("unlink of the unused last name", ev{wc, unix.IN_ATTRIB, 0, ""}, ev{wc, unix.IN_DELETE_SELF, 0, ""}, ev{wc, unix.IN_IGNORED, 0, ""})
	fc.DecRef(e.ctx)
	expect("close after the watch ended")

	// A directory held (as a working directory would be): no IN_ATTRIB
	// for rmdir, and IN_DELETE_SELF without IN_ISDIR when let go.
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/d"), &vfs.MkdirOptions{Mode: 0o755}))
	held, err := e.v.GetDentryAt(e.ctx, e.creds, e.pop("/d"), nil)
	e.must(err)
	wdir := e.watch(in, "/d", mask)
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/d")))
	expect("rmdir of a held directory")
	held.DecRef(e.ctx)
	expect("directory let go", ev{wdir, unix.IN_DELETE_SELF, 0, ""}, ev{wdir, unix.IN_IGNORED, 0, ""})

	// A rename over a watched file replaces it: IN_ATTRIB, then the
	// deletion; over a directory the IN_ATTRIB has IN_ISDIR.
	e.writeFile("/f", "")
	e.writeFile("/g", "")
	wg := e.watch(in, "/g", mask)
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/f"), e.pop("/g"), &vfs.RenameOptions{}))
	expect("rename over a file", ev{wg, unix.IN_ATTRIB, 0, ""}, ev{wg, unix.IN_DELETE_SELF, 0, ""}, ev{wg, unix.IN_IGNORED, 0, ""})
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/h"), &vfs.MkdirOptions{Mode: 0o755}))
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/i"), &vfs.MkdirOptions{Mode: 0o755}))
	wi := e.watch(in, "/i", mask)
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/h"), e.pop("/i"), &vfs.RenameOptions{}))
	expect("rename over a directory", ev{wi, unix.IN_ATTRIB | unix.IN_ISDIR, 0, ""}, ev{wi, unix.IN_DELETE_SELF, 0, ""}, ev{wi, unix.IN_IGNORED, 0, ""})
}

// BenchmarkUnlinkWatchedFile measures the unlink of a watched file with
// its events (IN_ATTRIB, IN_DELETE_SELF, IN_IGNORED) read back.
func BenchmarkUnlinkWatchedFile(b *testing.B) {
	e := newEnv(b)
	f, err := inotify.New(e.ctx, e.v, unix.IN_NONBLOCK)
	if err != nil {
		b.Fatal(err)
	}
	defer f.DecRef(e.ctx)
	in := inotify.FromFile(f)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/f"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644})
		if err != nil {
			b.Fatal(err)
		}
		vd := fd.VirtualDentry()
		if _, err := in.AddWatch(vd, unix.IN_ATTRIB|unix.IN_DELETE_SELF); err != nil {
			b.Fatal(err)
		}
		fd.DecRef(e.ctx)
		if err := e.v.UnlinkAt(e.ctx, e.creds, e.pop("/f")); err != nil {
			b.Fatal(err)
		}
		if n, err := f.Read(e.ctx, vfstest.Seq(buf), vfs.ReadOptions{}); err != nil || n != 3*16 {
			b.Fatalf("read %d bytes of events, %v; want three events", n, err)
		}
	}
}
