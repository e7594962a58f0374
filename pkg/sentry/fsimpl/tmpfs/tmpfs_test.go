package tmpfs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

type env struct {
	t     testing.TB
	ctx   context.Context
	v     *vfs.VirtualFilesystem
	root  vfs.VirtualDentry
	creds *auth.Credentials
}

func newEnv(t testing.TB, data string) *env {
	t.Helper()
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	return &env{t: t, ctx: auth.ContextWithCredentials(ctx, creds), v: v, root: root, creds: creds}
}

func (e *env) open(path string, flags uint32) *vfs.FileDescription {
	e.t.Helper()
	fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(e.root, path), &vfs.OpenOptions{Flags: flags, Mode: 0o644})
	if err != nil {
		e.t.Fatalf("open %q: %v", path, err)
	}
	return fd
}

func (e *env) stat(path string) vfs.Statx {
	e.t.Helper()
	st, err := e.v.StatAt(e.ctx, e.creds, vfstest.Pop(e.root, path), &vfs.StatOptions{})
	if err != nil {
		e.t.Fatalf("stat %q: %v", path, err)
	}
	return st
}

func TestDataAcrossPagesAndHoles(t *testing.T) {
	e := newEnv(t, "")
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	data := make([]byte, 3*4096+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if n, err := fd.PWrite(e.ctx, vfstest.Seq(data), 5000, vfs.WriteOptions{}); err != nil || n != int64(len(data)) {
		t.Fatalf("pwrite = %d, %v", n, err)
	}
	st := e.stat("/f")
	if st.Size != uint64(5000+len(data)) {
		t.Fatalf("size %d", st.Size)
	}
	got := make([]byte, st.Size+10)
	n, err := fd.PRead(e.ctx, vfstest.Seq(got), 0, vfs.ReadOptions{})
	if err != nil || n != int64(st.Size) {
		t.Fatalf("pread = %d, %v", n, err)
	}
	for i := 0; i < 5000; i++ {
		if got[i] != 0 {
			t.Fatalf("hole byte %d = %d", i, got[i])
		}
	}
	if !slices.Equal(got[5000:n], data) {
		t.Fatal("data mismatch")
	}
	// The first page was never written: SEEK_DATA skips it.
	if off, err := fd.Seek(e.ctx, 0, unix.SEEK_DATA); err != nil || off != 4096 {
		t.Errorf("SEEK_DATA = %d, %v", off, err)
	}
	if off, err := fd.Seek(e.ctx, 4096, unix.SEEK_HOLE); err != nil || off != int64(st.Size) {
		t.Errorf("SEEK_HOLE = %d, %v", off, err)
	}
	if _, err := fd.Seek(e.ctx, int64(st.Size), unix.SEEK_DATA); !errors.Is(err, unix.ENXIO) {
		t.Errorf("SEEK_DATA at EOF: %v", err)
	}
	if off, err := fd.Seek(e.ctx, -10, unix.SEEK_END); err != nil || off != int64(st.Size)-10 {
		t.Errorf("SEEK_END = %d, %v", off, err)
	}
	if _, err := fd.Seek(e.ctx, -1, unix.SEEK_SET); !errors.Is(err, unix.EINVAL) {
		t.Errorf("negative seek: %v", err)
	}
	// Truncate down then up: the cut bytes read back as zeros.
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 5001}))
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 9000}))
	n, _ = fd.PRead(e.ctx, vfstest.Seq(got), 0, vfs.ReadOptions{})
	if n != 9000 || got[5000] != data[0] || got[5001] != 0 || got[8999] != 0 {
		t.Errorf("after truncate: n=%d %d %d %d", n, got[5000], got[5001], got[8999])
	}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestENOSPCAndStatfs(t *testing.T) {
	e := newEnv(t, "size=8k")
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	n, err := vfstest.Write(e.ctx, fd, make([]byte, 3*4096))
	if n != 2*4096 || err != nil {
		t.Errorf("write beyond size= : n=%d err=%v, want a short write of 8192", n, err)
	}
	if _, err := vfstest.Write(e.ctx, fd, []byte("x")); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("write on full fs: %v", err)
	}
	sfs, err := e.v.StatFSAt(e.ctx, e.creds, vfstest.Pop(e.root, "/"))
	e.must(err)
	if sfs.Type != 0x01021994 || sfs.Blocks != 2 || sfs.Bfree != 0 || sfs.Namelen != 255 {
		t.Errorf("statfs = %+v", sfs)
	}
	e.must(e.v.UnlinkAt(e.ctx, e.creds, vfstest.Pop(e.root, "/f")))
	// Still open: the pages stay allocated until the last close.
	if sfs, _ := e.v.StatFSAt(e.ctx, e.creds, vfstest.Pop(e.root, "/")); sfs.Bfree != 0 {
		t.Errorf("pages of an open unlinked file freed early")
	}
	fd.DecRef(e.ctx)
	fd = e.open("/g", unix.O_CREAT|unix.O_RDWR) // deferred DecRef closes this one
	if sfs, _ := e.v.StatFSAt(e.ctx, e.creds, vfstest.Pop(e.root, "/")); sfs.Bfree != 2 {
		t.Errorf("pages not freed after last close: bfree %d", sfs.Bfree)
	}
	for _, bad := range []string{"size=abc", "mode=999", "bogus=1"} {
		v := vfs.New()
		v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{})
		_, err := v.NewMountNamespace(e.ctx, e.creds, "", tmpfs.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{Data: bad}})
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("option %q: %v", bad, err)
		}
	}
}

func TestTimestamps(t *testing.T) {
	e := newEnv(t, "")
	e.must(e.v.MkdirAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d"), &vfs.MkdirOptions{Mode: 0o755}))
	d0 := e.stat("/d")
	time.Sleep(2 * time.Millisecond)
	fd := e.open("/d/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	d1 := e.stat("/d")
	if !later(d1.Mtime, d0.Mtime) || !later(d1.Ctime, d0.Ctime) {
		t.Errorf("create did not update parent mtime/ctime")
	}
	f0 := e.stat("/d/f")
	time.Sleep(2 * time.Millisecond)
	vfstest.Write(e.ctx, fd, []byte("x"))
	f1 := e.stat("/d/f")
	if !later(f1.Mtime, f0.Mtime) || !later(f1.Ctime, f0.Ctime) || f1.Atime != f0.Atime {
		t.Errorf("write: mtime %v→%v ctime %v→%v atime %v→%v", f0.Mtime, f1.Mtime, f0.Ctime, f1.Ctime, f0.Atime, f1.Atime)
	}
	time.Sleep(2 * time.Millisecond)
	fd.PRead(e.ctx, vfstest.Seq(make([]byte, 1)), 0, vfs.ReadOptions{})
	f2 := e.stat("/d/f")
	if !later(f2.Atime, f1.Atime) || f2.Mtime != f1.Mtime {
		t.Errorf("read: atime %v→%v mtime changed %v", f1.Atime, f2.Atime, f2.Mtime != f1.Mtime)
	}
	time.Sleep(2 * time.Millisecond)
	e.must(e.v.SetStatAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d/f"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600}))
	f3 := e.stat("/d/f")
	if !later(f3.Ctime, f2.Ctime) || f3.Mtime != f2.Mtime {
		t.Errorf("chmod must change only ctime")
	}
}

func later(a, b unix.StatxTimestamp) bool {
	return a.Sec > b.Sec || (a.Sec == b.Sec && a.Nsec > b.Nsec)
}

func readdirAll(t *testing.T, e *env, fd *vfs.FileDescription) []string {
	names, err := vfstest.ReadDir(e.ctx, fd)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestReaddirStableOffsets(t *testing.T) {
	e := newEnv(t, "")
	e.must(e.v.MkdirAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d"), &vfs.MkdirOptions{Mode: 0o755}))
	for i := 0; i < 10; i++ {
		e.open(fmt.Sprintf("/d/f%d", i), unix.O_CREAT|unix.O_RDONLY).DecRef(e.ctx)
	}
	dir := e.open("/d", unix.O_RDONLY|unix.O_DIRECTORY)
	defer dir.DecRef(e.ctx)
	// Read five entries (".", "..", f0, f1, f2) and stop.
	var first []string
	// A callback returning false has not taken the entry (a full getdents
	// buffer): it must come again on the next call.
	dir.IterDirents(e.ctx, func(d vfs.Dirent) bool {
		if len(first) == 5 {
			return false
		}
		first = append(first, d.Name)
		return true
	})
	// Remove an entry already returned and one not yet returned, add one.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d/f1")))
	e.must(e.v.UnlinkAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d/f5")))
	e.open("/d/new", unix.O_CREAT|unix.O_RDONLY).DecRef(e.ctx)
	rest := readdirAll(t, e, dir)
	want := []string{"f3", "f4", "f6", "f7", "f8", "f9", "new"}
	if !slices.Equal(first, []string{".", "..", "f0", "f1", "f2"}) || !slices.Equal(rest, want) {
		t.Errorf("readdir = %v then %v; want then %v", first, rest, want)
	}
	// Seeking back to 0 restarts.
	if _, err := dir.Seek(e.ctx, 0, unix.SEEK_SET); err != nil {
		t.Fatal(err)
	}
	if all := readdirAll(t, e, dir); len(all) != 2+9 {
		t.Errorf("after rewind: %v", all)
	}
}

func TestReaddirOfRemovedDir(t *testing.T) {
	e := newEnv(t, "")
	e.must(e.v.MkdirAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d"), &vfs.MkdirOptions{Mode: 0o755}))
	dir := e.open("/d", unix.O_RDONLY)
	defer dir.DecRef(e.ctx)
	e.must(e.v.RmdirAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d")))
	if names := readdirAll(t, e, dir); len(names) != 0 {
		t.Errorf("removed dir lists %v", names)
	}
	if st, _ := dir.Stat(e.ctx, vfs.StatOptions{}); st.Nlink != 0 {
		t.Errorf("removed dir nlink %d", st.Nlink)
	}
}

func TestReaddirDotDotIno(t *testing.T) {
	e := newEnv(t, "")
	e.must(e.v.MkdirAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d"), &vfs.MkdirOptions{Mode: 0o755}))
	dir := e.open("/d", unix.O_RDONLY)
	defer dir.DecRef(e.ctx)
	inos := map[string]uint64{}
	dir.IterDirents(e.ctx, func(d vfs.Dirent) bool { inos[d.Name] = d.Ino; return true })
	if inos["."] != e.stat("/d").Ino || inos[".."] != e.stat("/").Ino {
		t.Errorf("dirent inos %v", inos)
	}
}

// TestConcurrentCreateUnlinkReaddir runs creators, unlinkers and readers on
// one directory; under -race it checks the locking, and each reader checks
// that no name is returned twice in one pass.
func TestConcurrentCreateUnlinkReaddir(t *testing.T) {
	e := newEnv(t, "")
	e.must(e.v.MkdirAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d"), &vfs.MkdirOptions{Mode: 0o777}))
	var wg sync.WaitGroup
	const workers, iters = 4, 200
	errs := make(chan error, 3*workers)
	for w := 0; w < workers; w++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(e.root, fmt.Sprintf("/d/w%d-%d", w, i)), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY, Mode: 0o644})
				if err != nil {
					errs <- err
					return
				}
				fd.DecRef(e.ctx)
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				err := e.v.UnlinkAt(e.ctx, e.creds, vfstest.Pop(e.root, fmt.Sprintf("/d/w%d-%d", w, i)))
				if err != nil && !errors.Is(err, unix.ENOENT) {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < iters/10; i++ {
				fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(e.root, "/d"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
				if err != nil {
					errs <- err
					return
				}
				seen := map[string]bool{}
				fd.IterDirents(e.ctx, func(d vfs.Dirent) bool {
					if seen[d.Name] {
						errs <- fmt.Errorf("readdir returned %q twice", d.Name)
						return false
					}
					seen[d.Name] = true
					return true
				})
				fd.DecRef(e.ctx)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Whatever survived is consistent between readdir and lookups.
	dir := e.open("/d", unix.O_RDONLY)
	defer dir.DecRef(e.ctx)
	for _, n := range readdirAll(t, e, dir)[2:] {
		e.stat("/d/" + n)
	}
}

// FuzzMountOptions feeds arbitrary mount(2) data to tmpfs: it must either
// mount or fail with EINVAL, never panic.
func FuzzMountOptions(f *testing.F) {
	for _, s := range []string{"", "size=1m", "mode=1777,uid=5,gid=6", "size=", "size=99999999999999999999g", "mode=8", ",,,", "size=1k,size=2k", "uid=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		ctx := context.Background()
		v := vfs.New()
		v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{})
		ns, err := v.NewMountNamespace(ctx, auth.NewRoot(), "", tmpfs.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{Data: data}})
		if err != nil {
			if !errors.Is(err, unix.EINVAL) {
				t.Fatalf("options %q: %v", data, err)
			}
			return
		}
		root := ns.Root()
		root.DecRef(ctx)
	})
}
