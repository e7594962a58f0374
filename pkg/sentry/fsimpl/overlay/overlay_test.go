package overlay_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/overlay"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

type env struct {
	t            testing.TB
	ctx          context.Context
	v            *vfs.VirtualFilesystem
	creds        *auth.Credentials
	lower, upper vfs.VirtualDentry
	root         vfs.VirtualDentry // the overlay's
	lowerBefore  map[string]string
}

// newEnv builds a lower tmpfs holding:
//
//	/file        "lower data"   0644 uid 1000, xattr user.k=v
//	/link     -> file
//	/dir/        0755
//	/dir/a       "a"
//	/dir/b       "b"
//	/dir/sub/x   "x"
//	/empty/      0755
//	/fifo        FIFO
//
// an empty upper tmpfs, and the overlay of the two.
func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	if err := v.RegisterFilesystemType(overlay.Name, overlay.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ctx = auth.ContextWithCredentials(ctx, creds)
	mk := func() vfs.VirtualDentry {
		ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ns.Root()
	}
	e := &env{t: t, ctx: ctx, v: v, creds: creds, lower: mk(), upper: mk()}
	l := e.lower
	e.must(v.MkdirAt(ctx, creds, vfstest.Pop(l, "/dir"), &vfs.MkdirOptions{Mode: 0o755}))
	e.must(v.MkdirAt(ctx, creds, vfstest.Pop(l, "/dir/sub"), &vfs.MkdirOptions{Mode: 0o755}))
	e.must(v.MkdirAt(ctx, creds, vfstest.Pop(l, "/empty"), &vfs.MkdirOptions{Mode: 0o755}))
	for p, data := range map[string]string{"/file": "lower data", "/dir/a": "a", "/dir/b": "b", "/dir/sub/x": "x"} {
		fd, err := v.OpenAt(ctx, creds, vfstest.Pop(l, p), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644})
		e.must(err)
		_, err = vfstest.Write(ctx, fd, []byte(data))
		e.must(err)
		fd.DecRef(ctx)
	}
	e.must(v.SetStatAt(ctx, creds, vfstest.Pop(l, "/file"), &vfs.SetStatOptions{Mask: unix.STATX_UID, UID: 1000}))
	e.must(v.SetXattrAt(ctx, creds, vfstest.Pop(l, "/file"), "user.k", "v", 0))
	e.must(v.SymlinkAt(ctx, creds, vfstest.Pop(l, "/link"), "file"))
	e.must(v.MknodAt(ctx, creds, vfstest.Pop(l, "/fifo"), &vfs.MknodOptions{Mode: unix.S_IFIFO | 0o644}))
	e.lowerBefore = e.snapshot(l)

	ns, err := v.NewMountNamespace(ctx, creds, "", overlay.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		InternalData: &overlay.Options{Lower: e.lower, Upper: e.upper}}})
	if err != nil {
		t.Fatal(err)
	}
	e.root = ns.Root()
	t.Cleanup(func() {
		if !t.Failed() {
			e.checkLowerUntouched()
		}
		e.root.DecRef(ctx)
		e.lower.DecRef(ctx)
		e.upper.DecRef(ctx)
	})
	return e
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pop(path string) *vfs.PathOperation { return vfstest.Pop(e.root, path) }

// snapshot describes every file of a tree: type, mode, owner, size,
// times, inode number, link count, xattrs and contents.
func (e *env) snapshot(root vfs.VirtualDentry) map[string]string {
	out := make(map[string]string)
	var walk func(p string)
	walk = func(p string) {
		pp := vfstest.NoFollow(vfstest.Pop(root, p))
		st, err := e.v.StatAt(e.ctx, e.creds, pp, &vfs.StatOptions{})
		e.must(err)
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d ino=%d nlink=%d mtime=%d.%d ctime=%d.%d rdev=%d:%d",
			st.Mode, st.Uid, st.Gid, st.Size, st.Ino, st.Nlink, st.Mtime.Sec, st.Mtime.Nsec, st.Ctime.Sec, st.Ctime.Nsec, st.Rdev_major, st.Rdev_minor)
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			// Regular files' atime too: the overlay reads lower files
			// with O_NOATIME. (Readdir and readlink of the lower do
			// touch it, as on Linux.)
			desc += fmt.Sprintf(" atime=%d.%d", st.Atime.Sec, st.Atime.Nsec)
		}
		xs, err := e.v.ListXattrAt(e.ctx, e.creds, pp)
		e.must(err)
		for _, x := range xs {
			val, _ := e.v.GetXattrAt(e.ctx, e.creds, pp, x)
			desc += fmt.Sprintf(" %s=%s", x, val)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			desc += " data=" + e.readFile(root, p)
		case unix.S_IFLNK:
			t, err := e.v.ReadlinkAt(e.e(), e.creds, pp)
			e.must(err)
			desc += " target=" + t
		case unix.S_IFDIR:
			fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(root, p), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
			e.must(err)
			names, err := vfstest.ReadDir(e.ctx, fd)
			fd.DecRef(e.ctx)
			e.must(err)
			for _, n := range names {
				if n != "." && n != ".." {
					walk(strings.TrimSuffix(p, "/") + "/" + n)
				}
			}
		}
		out[p] = desc
	}
	walk("/")
	return out
}

func (e *env) e() context.Context { return e.ctx }

func (e *env) checkLowerUntouched() {
	e.t.Helper()
	after := e.snapshot(e.lower)
	if !maps.Equal(after, e.lowerBefore) {
		for k, v := range after {
			if e.lowerBefore[k] != v {
				e.t.Errorf("lower %s changed:\n  before %q\n  after  %q", k, e.lowerBefore[k], v)
			}
		}
		for k := range e.lowerBefore {
			if _, ok := after[k]; !ok {
				e.t.Errorf("lower %s disappeared", k)
			}
		}
	}
}

func (e *env) readFile(root vfs.VirtualDentry, p string) string {
	e.t.Helper()
	fd, err := e.v.OpenAt(e.ctx, e.creds, vfstest.Pop(root, p), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_NOATIME})
	e.must(err)
	defer fd.DecRef(e.ctx)
	b, err := vfstest.Read(e.ctx, fd, 1<<16)
	e.must(err)
	return string(b)
}

func (e *env) read(p string) string { return e.readFile(e.root, p) }

func (e *env) write(p string, flags uint32, data string) {
	e.t.Helper()
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(p), &vfs.OpenOptions{Flags: flags, Mode: 0o644})
	e.must(err)
	defer fd.DecRef(e.ctx)
	_, err = vfstest.Write(e.ctx, fd, []byte(data))
	e.must(err)
}

func (e *env) stat(root vfs.VirtualDentry, p string) (vfs.Statx, error) {
	return e.v.StatAt(e.ctx, e.creds, vfstest.NoFollow(vfstest.Pop(root, p)), &vfs.StatOptions{})
}

func (e *env) mustStat(p string) vfs.Statx {
	e.t.Helper()
	st, err := e.stat(e.root, p)
	e.must(err)
	return st
}

func (e *env) ls(p string) []string {
	e.t.Helper()
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(p), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	e.must(err)
	defer fd.DecRef(e.ctx)
	names, err := vfstest.ReadDir(e.ctx, fd)
	e.must(err)
	sort.Strings(names)
	return names
}

func (e *env) inUpper(p string) bool {
	_, err := e.stat(e.upper, p)
	return err == nil
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestReadsComeFromLower(t *testing.T) {
	e := newEnv(t)
	if got := e.read("/file"); got != "lower data" {
		t.Fatalf("read %q", got)
	}
	if got := e.read("/link"); got != "lower data" {
		t.Fatalf("read via symlink %q", got)
	}
	if got := e.ls("/dir"); !slices.Equal(got, []string{".", "..", "a", "b", "sub"}) {
		t.Fatalf("ls /dir = %v", got)
	}
	ost := e.mustStat("/file")
	lst, _ := e.stat(e.lower, "/file")
	if ost.Ino != lst.Ino || ost.Uid != 1000 || ost.Size != lst.Size || ost.Mode != lst.Mode {
		t.Fatalf("overlay stat %+v vs lower %+v", ost, lst)
	}
	rootSt := e.mustStat("/")
	if ost.Dev_minor != rootSt.Dev_minor || ost.Dev_minor == lst.Dev_minor {
		t.Fatalf("st_dev: file %d root %d lower %d", ost.Dev_minor, rootSt.Dev_minor, lst.Dev_minor)
	}
	if v, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/file"), "user.k"); err != nil || v != "v" {
		t.Fatalf("xattr = %q, %v", v, err)
	}
	if e.inUpper("/file") || e.inUpper("/dir") {
		t.Fatal("reading copied something up")
	}
}

func TestCopyUpOnOpenForWrite(t *testing.T) {
	e := newEnv(t)
	before := e.mustStat("/dir/sub/x")
	ro, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir/sub/x"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	e.must(err)
	defer ro.DecRef(e.ctx)
	e.write("/dir/sub/x", unix.O_WRONLY|unix.O_APPEND, "yz")
	if got := e.read("/dir/sub/x"); got != "xyz" {
		t.Fatalf("after append: %q", got)
	}
	// A file opened before the copy-up reads the copy too.
	if b, err := vfstest.Read(e.ctx, ro, 10); err != nil || string(b) != "xyz" {
		t.Fatalf("old read-only fd reads %q, %v", b, err)
	}
	after := e.mustStat("/dir/sub/x")
	if after.Ino != before.Ino || after.Size != 3 {
		t.Fatalf("ino %d -> %d, size %d", before.Ino, after.Ino, after.Size)
	}
	if !e.inUpper("/dir/sub/x") || !e.inUpper("/dir/sub") {
		t.Fatal("no copy in upper")
	}
	if got := e.readFile(e.upper, "/dir/sub/x"); got != "xyz" {
		t.Fatalf("upper holds %q", got)
	}
	// Parents keep their inode numbers and the lower's other entries.
	if got := e.ls("/dir"); !slices.Equal(got, []string{".", "..", "a", "b", "sub"}) {
		t.Fatalf("ls /dir = %v", got)
	}
	lst, _ := e.stat(e.lower, "/dir")
	if st := e.mustStat("/dir"); st.Ino != lst.Ino {
		t.Fatalf("dir ino %d, lower %d", st.Ino, lst.Ino)
	}
}

func TestCopyUpKeepsAttributes(t *testing.T) {
	e := newEnv(t)
	before := e.mustStat("/file")
	e.write("/file", unix.O_RDWR, "LOWER")
	after := e.mustStat("/file")
	if after.Uid != 1000 || after.Mode != before.Mode || after.Ino != before.Ino {
		t.Fatalf("after copy-up %+v, before %+v", after, before)
	}
	if v, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/file"), "user.k"); err != nil || v != "v" {
		t.Fatalf("xattr after copy-up = %q, %v", v, err)
	}
	xs, err := e.v.ListXattrAt(e.ctx, e.creds, e.pop("/file"))
	e.must(err)
	if !slices.Equal(xs, []string{"user.k"}) {
		t.Fatalf("listxattr shows %v", xs)
	}
	if got := e.read("/file"); got != "LOWER data" {
		t.Fatalf("read %q", got)
	}
}

func TestCopyUpOnSetStatAndXattr(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		op    func(e *env, pop *vfs.PathOperation) error
		check func(e *env, st vfs.Statx) error
	}{
		{"truncate", "/file", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetStatAt(e.ctx, e.creds, p, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 5})
		}, func(e *env, st vfs.Statx) error {
			if got := e.read("/file"); got != "lower" {
				return fmt.Errorf("content %q", got)
			}
			return nil
		}},
		{"open O_TRUNC", "/file", func(e *env, p *vfs.PathOperation) error {
			fd, err := e.v.OpenAt(e.ctx, e.creds, p, &vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_TRUNC})
			if err == nil {
				fd.DecRef(e.ctx)
			}
			return err
		}, func(e *env, st vfs.Statx) error {
			if st.Size != 0 {
				return fmt.Errorf("size %d", st.Size)
			}
			return nil
		}},
		{"chmod", "/dir/a", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetStatAt(e.ctx, e.creds, p, &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600})
		}, func(e *env, st vfs.Statx) error {
			if st.Mode&0o7777 != 0o600 {
				return fmt.Errorf("mode %o", st.Mode)
			}
			return nil
		}},
		{"chown dir", "/dir/sub", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetStatAt(e.ctx, e.creds, p, &vfs.SetStatOptions{Mask: unix.STATX_UID | unix.STATX_GID, UID: 7, GID: 8})
		}, func(e *env, st vfs.Statx) error {
			if st.Uid != 7 || st.Gid != 8 {
				return fmt.Errorf("owner %d:%d", st.Uid, st.Gid)
			}
			if got := e.ls("/dir/sub"); !slices.Equal(got, []string{".", "..", "x"}) {
				return fmt.Errorf("ls %v", got)
			}
			return nil
		}},
		{"lchown symlink", "/link", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetStatAt(e.ctx, e.creds, vfstest.NoFollow(p), &vfs.SetStatOptions{Mask: unix.STATX_UID, UID: 9})
		}, func(e *env, st vfs.Statx) error {
			if st.Uid != 9 || st.Mode&unix.S_IFMT != unix.S_IFLNK {
				return fmt.Errorf("uid %d mode %o", st.Uid, st.Mode)
			}
			if t, err := e.v.ReadlinkAt(e.ctx, e.creds, e.pop("/link")); err != nil || t != "file" {
				return fmt.Errorf("readlink %q %v", t, err)
			}
			return nil
		}},
		{"utimes", "/dir/b", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetStatAt(e.ctx, e.creds, p, &vfs.SetStatOptions{Mask: unix.STATX_MTIME | unix.STATX_ATIME,
				Atime: unix.Timespec{Sec: 100}, Mtime: unix.Timespec{Sec: 200}})
		}, func(e *env, st vfs.Statx) error {
			if st.Mtime.Sec != 200 || st.Atime.Sec != 100 {
				return fmt.Errorf("times %d %d", st.Atime.Sec, st.Mtime.Sec)
			}
			return nil
		}},
		{"setxattr", "/empty", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetXattrAt(e.ctx, e.creds, p, "user.new", "1", 0)
		}, func(e *env, st vfs.Statx) error {
			if v, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/empty"), "user.new"); err != nil || v != "1" {
				return fmt.Errorf("getxattr %q %v", v, err)
			}
			return nil
		}},
		{"removexattr", "/file", func(e *env, p *vfs.PathOperation) error {
			return e.v.RemoveXattrAt(e.ctx, e.creds, p, "user.k")
		}, func(e *env, st vfs.Statx) error {
			if _, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/file"), "user.k"); !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("getxattr after remove: %v", err)
			}
			return nil
		}},
		{"chmod fifo", "/fifo", func(e *env, p *vfs.PathOperation) error {
			return e.v.SetStatAt(e.ctx, e.creds, p, &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600})
		}, func(e *env, st vfs.Statx) error {
			if st.Mode != unix.S_IFIFO|0o600 {
				return fmt.Errorf("mode %o", st.Mode)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.mustStat(tc.path)
			if e.inUpper(tc.path) {
				t.Fatal("already in upper")
			}
			e.must(tc.op(e, e.pop(tc.path)))
			after := e.mustStat(tc.path)
			if after.Ino != before.Ino {
				t.Fatalf("inode number changed %d -> %d", before.Ino, after.Ino)
			}
			if !e.inUpper(tc.path) {
				t.Fatal("not copied up")
			}
			if err := tc.check(e, after); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPrivateXattrsHidden(t *testing.T) {
	e := newEnv(t)
	e.write("/file", unix.O_WRONLY, "x") // copy-up sets the origin xattr
	if _, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/file"), "trusted.overlay.origin"); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("origin xattr visible: %v", err)
	}
	wantErr(t, "set private xattr", e.v.SetXattrAt(e.ctx, e.creds, e.pop("/file"), "trusted.overlay.opaque", "y", 0), unix.EPERM)
}

func TestUnlinkLowerThenRecreate(t *testing.T) {
	e := newEnv(t)
	old := e.mustStat("/dir/a")
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/a")))
	_, err := e.stat(e.root, "/dir/a")
	wantErr(t, "stat after unlink", err, unix.ENOENT)
	if got := e.ls("/dir"); !slices.Equal(got, []string{".", "..", "b", "sub"}) {
		t.Fatalf("ls after unlink = %v", got)
	}
	// The upper holds a whiteout.
	wst, err := e.stat(e.upper, "/dir/a")
	if err != nil || wst.Mode&unix.S_IFMT != unix.S_IFCHR || wst.Rdev_major != 0 || wst.Rdev_minor != 0 {
		t.Fatalf("whiteout: %+v %v", wst, err)
	}
	e.write("/dir/a", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, "new")
	if got := e.read("/dir/a"); got != "new" {
		t.Fatalf("recreated reads %q", got)
	}
	if st := e.mustStat("/dir/a"); st.Ino == old.Ino {
		t.Fatal("recreated file has the old inode number")
	}
	if got := e.ls("/dir"); !slices.Equal(got, []string{".", "..", "a", "b", "sub"}) {
		t.Fatalf("ls after recreate = %v", got)
	}
	// Unlinking an upper-only name that hides a lower one whites it out again.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/a")))
	_, err = e.stat(e.root, "/dir/a")
	wantErr(t, "stat after second unlink", err, unix.ENOENT)
}

func TestUpperOnlyFiles(t *testing.T) {
	e := newEnv(t)
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/new"), &vfs.MkdirOptions{Mode: 0o700}))
	e.write("/new/f", unix.O_CREAT|unix.O_WRONLY, "hello")
	st := e.mustStat("/new/f")
	ust, _ := e.stat(e.upper, "/new/f")
	if st.Ino != ust.Ino|1<<63 {
		t.Fatalf("upper-only ino %#x, upper %#x", st.Ino, ust.Ino)
	}
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/new/f"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o640}))
	if st := e.mustStat("/new/f"); st.Mode&0o777 != 0o640 {
		t.Fatalf("mode %o", st.Mode)
	}
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/new/f")))
	if e.inUpper("/new/f") {
		t.Fatal("unlink of an upper-only file left something (a needless whiteout?)")
	}
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/new")))
	if e.inUpper("/new") {
		t.Fatal("rmdir left the upper directory")
	}
	// readdir inode numbers match stat's for every kind of entry.
	e.write("/dir/a", unix.O_WRONLY, "A")
	e.write("/dir/c", unix.O_CREAT|unix.O_WRONLY, "C")
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	e.must(err)
	defer fd.DecRef(e.ctx)
	e.must(fd.IterDirents(e.ctx, func(d vfs.Dirent) bool {
		if st := e.mustStat("/dir/" + d.Name); st.Ino != d.Ino {
			t.Errorf("%s: dirent ino %d, stat ino %d", d.Name, d.Ino, st.Ino)
		}
		return true
	}))
}

func TestRmdirAndOpaqueRecreate(t *testing.T) {
	e := newEnv(t)
	wantErr(t, "rmdir non-empty lower dir", e.v.RmdirAt(e.ctx, e.creds, e.pop("/dir/sub")), unix.ENOTEMPTY)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/sub/x")))
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/dir/sub")))
	_, err := e.stat(e.root, "/dir/sub")
	wantErr(t, "stat removed dir", err, unix.ENOENT)
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/dir/sub"), &vfs.MkdirOptions{Mode: 0o755}))
	if got := e.ls("/dir/sub"); !slices.Equal(got, []string{".", ".."}) {
		t.Fatalf("re-created dir shows %v", got)
	}
	_, err = e.stat(e.root, "/dir/sub/x")
	wantErr(t, "stat old entry of opaque dir", err, unix.ENOENT)
	// An opaque dir can be removed again.
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/dir/sub")))
	// A lower empty directory can be removed directly.
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/empty")))
	if got := e.ls("/"); !slices.Equal(got, []string{".", "..", "dir", "fifo", "file", "link"}) {
		t.Fatalf("ls / = %v", got)
	}
}

func TestRename(t *testing.T) {
	e := newEnv(t)
	lowerFile := e.mustStat("/file")
	// A lower file renamed: its name is whited out, the inode number kept.
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/file"), e.pop("/dir/moved"), &vfs.RenameOptions{}))
	_, err := e.stat(e.root, "/file")
	wantErr(t, "old name", err, unix.ENOENT)
	if got := e.read("/dir/moved"); got != "lower data" {
		t.Fatalf("moved file reads %q", got)
	}
	if st := e.mustStat("/dir/moved"); st.Ino != lowerFile.Ino {
		t.Fatal("rename changed the inode number")
	}
	// An upper file renamed over a lower file replaces it.
	e.write("/new", unix.O_CREAT|unix.O_WRONLY, "upper")
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/new"), e.pop("/dir/b"), &vfs.RenameOptions{}))
	if got := e.read("/dir/b"); got != "upper" {
		t.Fatalf("replaced file reads %q", got)
	}
	if got := e.ls("/dir"); !slices.Equal(got, []string{".", "..", "a", "b", "moved", "sub"}) {
		t.Fatalf("ls /dir = %v", got)
	}
	// A name freed by rename can be taken again (over its whiteout).
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/dir/moved"), e.pop("/file"), &vfs.RenameOptions{}))
	if got := e.read("/file"); got != "lower data" {
		t.Fatalf("moved back reads %q", got)
	}
	// Directories with a lower part: EXDEV.
	wantErr(t, "rename lower dir", e.v.RenameAt(e.ctx, e.creds, e.pop("/dir/sub"), e.pop("/sub2"), &vfs.RenameOptions{}), unix.EXDEV)
	// An upper directory renamed over an empty lower directory does not
	// merge with it, and one renamed to a whited-out lower name neither.
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/updir"), &vfs.MkdirOptions{Mode: 0o755}))
	e.write("/updir/in", unix.O_CREAT|unix.O_WRONLY, "in")
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/updir"), e.pop("/empty"), &vfs.RenameOptions{}))
	if got := e.ls("/empty"); !slices.Equal(got, []string{".", "..", "in"}) {
		t.Fatalf("ls /empty = %v", got)
	}
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/sub/x")))
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/dir/sub")))
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/empty"), e.pop("/dir/sub"), &vfs.RenameOptions{}))
	if got := e.ls("/dir/sub"); !slices.Equal(got, []string{".", "..", "in"}) {
		t.Fatalf("ls /dir/sub = %v", got)
	}
	_, err = e.stat(e.root, "/empty")
	wantErr(t, "stat /empty after move", err, unix.ENOENT)
	// Renaming over a non-empty lower dir fails.
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/d2"), &vfs.MkdirOptions{Mode: 0o755}))
	wantErr(t, "rename over non-empty", e.v.RenameAt(e.ctx, e.creds, e.pop("/d2"), e.pop("/dir"), &vfs.RenameOptions{}), unix.ENOTEMPTY)
	// RENAME_NOREPLACE onto a whited-out name works; onto a lower name fails.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/a")))
	e.write("/nr", unix.O_CREAT|unix.O_WRONLY, "nr")
	wantErr(t, "noreplace onto lower", e.v.RenameAt(e.ctx, e.creds, e.pop("/nr"), e.pop("/link"), &vfs.RenameOptions{Flags: unix.RENAME_NOREPLACE}), unix.EEXIST)
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/nr"), e.pop("/dir/a"), &vfs.RenameOptions{Flags: unix.RENAME_NOREPLACE}))
	if got := e.read("/dir/a"); got != "nr" {
		t.Fatalf("/dir/a reads %q", got)
	}
	// RENAME_EXCHANGE of a lower file and an upper file.
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/dir/a"), e.pop("/file"), &vfs.RenameOptions{Flags: unix.RENAME_EXCHANGE}))
	if a, f := e.read("/dir/a"), e.read("/file"); a != "lower data" || f != "nr" {
		t.Fatalf("after exchange: a=%q file=%q", a, f)
	}
}

func TestLinkCopiesUp(t *testing.T) {
	e := newEnv(t)
	st := e.mustStat("/dir/a")
	e.must(e.v.LinkAt(e.ctx, e.creds, e.pop("/dir/a"), e.pop("/hard")))
	h := e.mustStat("/hard")
	a := e.mustStat("/dir/a")
	if h.Ino != st.Ino || a.Ino != st.Ino || h.Nlink != 2 {
		t.Fatalf("link: ino %d/%d (was %d), nlink %d", h.Ino, a.Ino, st.Ino, h.Nlink)
	}
	e.write("/hard", unix.O_WRONLY|unix.O_APPEND, "!")
	if got := e.read("/dir/a"); got != "a!" {
		t.Fatalf("write through link not seen: %q", got)
	}
	// A link onto a whited-out name.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/b")))
	e.must(e.v.LinkAt(e.ctx, e.creds, e.pop("/hard"), e.pop("/dir/b")))
	if got := e.read("/dir/b"); got != "a!" {
		t.Fatalf("/dir/b reads %q", got)
	}
}

func TestReaddirMergedStableOffsets(t *testing.T) {
	e := newEnv(t)
	for i := range 20 {
		e.write(fmt.Sprintf("/dir/u%02d", i), unix.O_CREAT|unix.O_WRONLY, "u")
	}
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/b")))
	want := []string{".", ".."}
	want = append(want, "a", "sub")
	for i := range 20 {
		want = append(want, fmt.Sprintf("u%02d", i))
	}
	sort.Strings(want)
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	e.must(err)
	defer fd.DecRef(e.ctx)
	// Read three entries at a time, changing the directory in between:
	// every entry of the opening listing comes exactly once.
	var got []string
	var offs []int64
	for round := 0; ; round++ {
		n := 0
		e.must(fd.IterDirents(e.ctx, func(d vfs.Dirent) bool {
			if n == 3 {
				return false
			}
			n++
			got = append(got, d.Name)
			offs = append(offs, d.NextOff)
			return true
		}))
		if n == 0 {
			break
		}
		e.write(fmt.Sprintf("/dir/late%d", round), unix.O_CREAT|unix.O_WRONLY, "")
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listing\n got %v\nwant %v", got, want)
	}
	// Seeking to a d_off returned earlier resumes after that entry.
	_, err = fd.Seek(e.ctx, offs[4], unix.SEEK_SET)
	e.must(err)
	var next string
	e.must(fd.IterDirents(e.ctx, func(d vfs.Dirent) bool { next = d.Name; return false }))
	_, err = fd.Seek(e.ctx, offs[4], unix.SEEK_SET)
	e.must(err)
	var again string
	e.must(fd.IterDirents(e.ctx, func(d vfs.Dirent) bool { again = d.Name; return false }))
	if next == "" || next != again {
		t.Fatalf("seek to offset: %q then %q", next, again)
	}
	// Rewinding shows the new entries.
	_, err = fd.Seek(e.ctx, 0, unix.SEEK_SET)
	e.must(err)
	names, err := vfstest.ReadDir(e.ctx, fd)
	e.must(err)
	if !slices.Contains(names, "late0") || slices.Contains(names, "b") {
		t.Fatalf("after rewind: %v", names)
	}
}

func TestMMapSharedWritableCopiesUp(t *testing.T) {
	e := newEnv(t)
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir/a"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	e.must(err)
	defer fd.DecRef(e.ctx)
	// A private or read-only mapping leaves the file in the lower.
	ro := memmap.MMapOpts{Length: hostarch.PageSize, Perms: hostarch.Read, MaxPerms: hostarch.Read}
	e.must(fd.ConfigureMMap(e.ctx, &ro))
	if ro.Mappable == nil || ro.MappingIdentity == nil {
		t.Fatal("no mappable")
	}
	ro.MappingIdentity.DecRef(e.ctx)
	if e.inUpper("/dir/a") {
		t.Fatal("read-only mapping copied up")
	}
	rw := memmap.MMapOpts{Length: hostarch.PageSize, Perms: hostarch.ReadWrite, MaxPerms: hostarch.ReadWrite}
	e.must(fd.ConfigureMMap(e.ctx, &rw))
	defer rw.MappingIdentity.DecRef(e.ctx)
	if !e.inUpper("/dir/a") {
		t.Fatal("writable shared mapping did not copy up")
	}
	if rw.MappingIdentity != fd {
		t.Fatalf("mapping identity is %T, want the overlay file", rw.MappingIdentity)
	}
	// The mapping translates to the upper copy's pages: a write through
	// the fd of the copy shows in the translation's source range.
	ts, err := rw.Mappable.Translate(e.ctx, memmap.MappableRange{Start: 0, End: hostarch.PageSize}, memmap.MappableRange{Start: 0, End: hostarch.PageSize}, hostarch.Read)
	if err != nil || len(ts) == 0 {
		t.Fatalf("translate: %v %v", ts, err)
	}
}

func TestStatFS(t *testing.T) {
	e := newEnv(t)
	st, err := e.v.StatFSAt(e.ctx, e.creds, e.pop("/dir"))
	e.must(err)
	ust, _ := e.v.StatFSAt(e.ctx, e.creds, vfstest.Pop(e.upper, "/"))
	if st.Type != 0x794c7630 || st.Blocks != ust.Blocks {
		t.Fatalf("statfs %+v, upper %+v", st, ust)
	}
}

func TestPermissionsStillChecked(t *testing.T) {
	e := newEnv(t)
	user := auth.NewUser(1000, 1000, nil)
	uctx := auth.ContextWithCredentials(e.ctx, user)
	// /dir/a is root's 0644: the user may read but not write.
	_, err := e.v.OpenAt(uctx, user, e.pop("/dir/a"), &vfs.OpenOptions{Flags: unix.O_WRONLY})
	wantErr(t, "user write root file", err, unix.EACCES)
	if e.inUpper("/dir/a") {
		t.Fatal("a refused open copied up")
	}
	// /file is the user's.
	fd, err := e.v.OpenAt(uctx, user, e.pop("/file"), &vfs.OpenOptions{Flags: unix.O_WRONLY})
	e.must(err)
	fd.DecRef(uctx)
	// A new file in the overlay gets the creator's ownership.
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/dir"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o777}))
	fd, err = e.v.OpenAt(uctx, user, e.pop("/dir/mine"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o600})
	e.must(err)
	fd.DecRef(uctx)
	if st := e.mustStat("/dir/mine"); st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o777 != 0o600 {
		t.Fatalf("new file %d:%d %o", st.Uid, st.Gid, st.Mode)
	}
}

func TestFIFOThroughOverlay(t *testing.T) {
	e := newEnv(t)
	r, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/fifo"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_NONBLOCK})
	e.must(err)
	defer r.DecRef(e.ctx)
	w, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/fifo"), &vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_NONBLOCK})
	e.must(err)
	defer w.DecRef(e.ctx)
	if _, err := vfstest.Write(e.ctx, w, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if b, err := vfstest.Read(e.ctx, r, 10); err != nil || string(b) != "ping" {
		t.Fatalf("fifo read %q %v", b, err)
	}
	if _, err := vfstest.Read(e.ctx, r, 10); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("empty fifo read: %v", err)
	}
	if e.inUpper("/fifo") {
		t.Fatal("fifo copied up by open")
	}
}

func TestConcurrentCopyUp(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir/sub/x"), &vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_APPEND})
			if err != nil {
				errs <- err
				return
			}
			defer fd.DecRef(e.ctx)
			if _, err := vfstest.Write(e.ctx, fd, []byte{byte('0' + i)}); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/dir/sub/x"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
			if err != nil {
				errs <- err
				return
			}
			defer fd.DecRef(e.ctx)
			if b, err := vfstest.Read(e.ctx, fd, 64); err != nil || len(b) == 0 || b[0] != 'x' {
				errs <- fmt.Errorf("concurrent read %q %v", b, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := e.read("/dir/sub/x")
	if len(got) != 9 || got[0] != 'x' {
		t.Fatalf("after concurrent appends: %q", got)
	}
	for i := range 8 {
		if !strings.ContainsRune(got, rune('0'+i)) {
			t.Fatalf("append %d lost: %q", i, got)
		}
	}
}

func TestCreateSymlinkAndNodes(t *testing.T) {
	e := newEnv(t)
	// Over a whited-out lower name, and fresh.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/link")))
	e.must(e.v.SymlinkAt(e.ctx, e.creds, e.pop("/link"), "dir/a"))
	if got, err := e.v.ReadlinkAt(e.ctx, e.creds, e.pop("/link")); err != nil || got != "dir/a" {
		t.Fatalf("readlink %q %v", got, err)
	}
	if got := e.read("/link"); got != "a" {
		t.Fatalf("through new link: %q", got)
	}
	e.must(e.v.MknodAt(e.ctx, e.creds, e.pop("/dir/null"), &vfs.MknodOptions{Mode: unix.S_IFCHR | 0o666, DevMajor: 1, DevMinor: 3}))
	st := e.mustStat("/dir/null")
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev_major != 1 || st.Rdev_minor != 3 {
		t.Fatalf("device node %+v", st)
	}
	if got := e.ls("/dir"); !slices.Contains(got, "null") {
		t.Fatalf("ls %v", got)
	}
	// A directory made over a whited-out lower file is opaque too.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/b")))
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/dir/b"), &vfs.MkdirOptions{Mode: 0o755}))
	if got := e.ls("/dir/b"); !slices.Equal(got, []string{".", ".."}) {
		t.Fatalf("ls /dir/b %v", got)
	}
}
