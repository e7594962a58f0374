package gofer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"

	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/fsgofer"
	"golang.org/x/sys/unix"
)

// env is a real stack: a host directory served by fsgofer on one end of a
// socket pair, a p9.Client on the other, and the gofer filesystem mounted
// from it as the root of a VirtualFilesystem.
type env struct {
	t     testing.TB
	ctx   context.Context
	v     *vfs.VirtualFilesystem
	root  vfs.VirtualDentry
	creds *auth.Credentials
	host  string
	mf    *pgalloc.MemoryFile
}

type envOpts struct {
	hostPath string
	readOnly bool
	cache    gofer.CachePolicy
	// noDonate serves without donating host descriptors (9P-only I/O).
	noDonate bool
	// dcacheLimit is InternalData.DentryCacheLimit.
	dcacheLimit int
}

// serve starts fsgofer on hostPath and returns a connected client; the
// server and client are shut down at test cleanup.
func serve(t testing.TB, hostPath string, readOnly bool) *p9.Client {
	t.Helper()
	a, b, err := unet.SocketPair(false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- fsgofer.Serve(context.Background(), []*unet.Socket{a}, []fsgofer.Mount{{HostPath: hostPath, ReadOnly: readOnly}})
	}()
	c, err := p9.NewClient(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.hostPath == "" {
		o.hostPath = t.TempDir()
	}
	var c *p9.Client
	if o.noDonate {
		c = serveNoDonate(t, o.hostPath)
	} else {
		c = serve(t, o.hostPath, o.readOnly)
	}
	mf, err := pgalloc.New("gofer-test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := vfs.New()
	if err := v.RegisterFilesystemType(gofer.Name, gofer.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "", gofer.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		InternalData: &gofer.InternalData{Client: c, MemoryFile: mf, Cache: o.cache, DentryCacheLimit: o.dcacheLimit},
	}})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	e := &env{t: t, ctx: auth.ContextWithCredentials(ctx, creds), v: v, root: root, creds: creds, host: o.hostPath, mf: mf}
	t.Cleanup(func() {
		root.DecRef(ctx)
		// Release the filesystem (clunking its fids) by dropping the
		// namespace's own reference on its root mount.
		root.Mount().DecRef(ctx)
		mf.Close()
	})
	return e
}

func (e *env) pop(path string) *vfs.PathOperation { return vfstest.Pop(e.root, path) }

func (e *env) open(path string, flags uint32) *vfs.FileDescription {
	e.t.Helper()
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(path), &vfs.OpenOptions{Flags: flags, Mode: 0o644})
	if err != nil {
		e.t.Fatalf("open %q: %v", path, err)
	}
	return fd
}

func (e *env) stat(path string) vfs.Statx {
	e.t.Helper()
	st, err := e.v.StatAt(e.ctx, e.creds, e.pop(path), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil {
		e.t.Fatalf("stat %q: %v", path, err)
	}
	return st
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) hostPath(p string) string { return filepath.Join(e.host, p) }

func readAll(t testing.TB, ctx context.Context, fd *vfs.FileDescription) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 8192)
	for {
		n, err := fd.Read(ctx, vfstest.Seq(buf), vfs.ReadOptions{})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

func TestCreateWriteReadThroughHost(t *testing.T) {
	e := newEnv(t, envOpts{})
	fd := e.open("/f", unix.O_CREAT|unix.O_EXCL|unix.O_RDWR)
	if n, err := vfstest.Write(e.ctx, fd, []byte("hello, gofer")); err != nil || n != 12 {
		t.Fatalf("write = %d, %v", n, err)
	}
	fd.DecRef(e.ctx)
	b, err := os.ReadFile(e.hostPath("f"))
	e.must(err)
	if string(b) != "hello, gofer" {
		t.Fatalf("host sees %q", b)
	}
	// O_EXCL on an existing name.
	if _, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/f"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_EXCL | unix.O_RDWR, Mode: 0o644}); err != unix.EEXIST {
		t.Fatalf("O_EXCL on existing: %v", err)
	}
	// Written by the host, read back by the sandbox.
	e.must(os.WriteFile(e.hostPath("g"), []byte("from host"), 0o644))
	fd = e.open("/g", unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	if got := readAll(t, e.ctx, fd); string(got) != "from host" {
		t.Fatalf("read %q", got)
	}
	// Writing an O_RDONLY file is EBADF.
	if _, err := vfstest.Write(e.ctx, fd, []byte("x")); err != unix.EBADF {
		t.Fatalf("write to O_RDONLY: %v", err)
	}
}

func TestAppendTruncateAndOffsets(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("a"), []byte("0123456789"), 0o644))
	fd := e.open("/a", unix.O_WRONLY|unix.O_APPEND)
	// The host grows the file behind our back: O_APPEND must still land
	// at the true end.
	f, err := os.OpenFile(e.hostPath("a"), os.O_APPEND|os.O_WRONLY, 0)
	e.must(err)
	f.WriteString("ABC")
	f.Close()
	_, err = vfstest.Write(e.ctx, fd, []byte("xyz"))
	e.must(err)
	fd.DecRef(e.ctx)
	b, _ := os.ReadFile(e.hostPath("a"))
	if string(b) != "0123456789ABCxyz" {
		t.Fatalf("after append: %q", b)
	}
	fd = e.open("/a", unix.O_RDWR|unix.O_TRUNC)
	defer fd.DecRef(e.ctx)
	if st := e.stat("/a"); st.Size != 0 {
		t.Fatalf("size after O_TRUNC = %d", st.Size)
	}
	fi, _ := os.Stat(e.hostPath("a"))
	if fi.Size() != 0 {
		t.Fatalf("host size after O_TRUNC = %d", fi.Size())
	}
	// A write beyond 4 GiB makes a sparse file.
	const far = 5 << 30
	if n, err := fd.PWrite(e.ctx, vfstest.Seq([]byte("far")), far, vfs.WriteOptions{}); err != nil || n != 3 {
		t.Fatalf("pwrite at 5 GiB = %d, %v", n, err)
	}
	if st := e.stat("/a"); st.Size != far+3 {
		t.Fatalf("size = %d", st.Size)
	}
	got := make([]byte, 5)
	n, err := fd.PRead(e.ctx, vfstest.Seq(got), far-2, vfs.ReadOptions{})
	if err != nil || n != 5 || string(got) != "\x00\x00far" {
		t.Fatalf("pread at 5 GiB = %d %q %v", n, got, err)
	}
	if off, err := fd.Seek(e.ctx, 0, unix.SEEK_END); err != nil || off != far+3 {
		t.Fatalf("SEEK_END = %d, %v", off, err)
	}
	fi, _ = os.Stat(e.hostPath("a"))
	if fi.Size() != far+3 {
		t.Fatalf("host size %d", fi.Size())
	}
	// Shrink via ftruncate.
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 2}))
	fi, _ = os.Stat(e.hostPath("a"))
	if fi.Size() != 2 || e.stat("/a").Size != 2 {
		t.Fatalf("after truncate: host %d", fi.Size())
	}
}

func TestStatMatchesHost(t *testing.T) {
	dir := t.TempDir()
	mustHost := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustHost(os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("z"), 10000), 0o640))
	mustHost(os.Mkdir(filepath.Join(dir, "d"), 0o751))
	mustHost(os.Symlink("f", filepath.Join(dir, "l")))
	mustHost(os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "hard")))
	mustHost(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	mustHost(unix.Mknod(filepath.Join(dir, "sock"), unix.S_IFSOCK|0o600, 0))
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod of a device node needs CAP_MKNOD: %v", err)
	}
	e := newEnv(t, envOpts{hostPath: dir})
	for _, name := range []string{"f", "d", "l", "fifo", "sock", "null", ""} {
		var hs unix.Stat_t
		e.must(unix.Lstat(e.hostPath(name), &hs))
		st, err := e.v.StatAt(e.ctx, e.creds, vfstest.NoFollow(e.pop("/"+name)), &vfs.StatOptions{})
		e.must(err)
		if uint32(st.Mode) != hs.Mode || st.Ino != hs.Ino || uint64(st.Nlink) != hs.Nlink || st.Uid != hs.Uid || st.Gid != hs.Gid ||
			st.Size != uint64(hs.Size) || st.Blocks != uint64(hs.Blocks) || st.Blksize != uint32(hs.Blksize) ||
			st.Mtime.Sec != hs.Mtim.Sec || int64(st.Mtime.Nsec) != hs.Mtim.Nsec || st.Ctime.Sec != hs.Ctim.Sec ||
			st.Atime.Sec != hs.Atim.Sec || st.Rdev_major != unix.Major(hs.Rdev) || st.Rdev_minor != unix.Minor(hs.Rdev) {
			t.Errorf("%q: stat %+v, host %+v", name, st, hs)
		}
		if st.Dev_minor != e.root.Mount().Filesystem().DevMinor() {
			t.Errorf("%q: dev minor %d", name, st.Dev_minor)
		}
	}
	// Special files: a FIFO opens as a sandbox pipe, a socket or an
	// unregistered device node does not open.
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/fifo"), &vfs.OpenOptions{Flags: unix.O_RDWR})
	e.must(err)
	vfstest.Write(e.ctx, fd, []byte("piped"))
	if got, _ := vfstest.Read(e.ctx, fd, 10); string(got) != "piped" {
		t.Errorf("fifo read %q", got)
	}
	fd.DecRef(e.ctx)
	for _, name := range []string{"/sock", "/null"} {
		if _, err := e.v.OpenAt(e.ctx, e.creds, e.pop(name), &vfs.OpenOptions{Flags: unix.O_RDONLY}); err != unix.ENXIO {
			t.Errorf("open %s: %v, want ENXIO", name, err)
		}
	}
}

func TestSymlinksAndDirectories(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/dir"), &vfs.MkdirOptions{Mode: 0o755}))
	e.must(e.v.MkdirAt(e.ctx, e.creds, e.pop("/dir/sub"), &vfs.MkdirOptions{Mode: 0o700}))
	e.must(e.v.SymlinkAt(e.ctx, e.creds, e.pop("/link"), "dir/sub"))
	e.must(e.v.SymlinkAt(e.ctx, e.creds, e.pop("/dir/up"), "../target"))
	if tgt, err := e.v.ReadlinkAt(e.ctx, e.creds, e.pop("/link")); err != nil || tgt != "dir/sub" {
		t.Fatalf("readlink = %q, %v", tgt, err)
	}
	if tgt, err := os.Readlink(e.hostPath("dir/up")); err != nil || tgt != "../target" {
		t.Fatalf("host readlink = %q, %v", tgt, err)
	}
	fi, err := os.Stat(e.hostPath("dir/sub"))
	e.must(err)
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("host sees %v", fi.Mode())
	}
	// Following the symlink, creating through it, and ".." handled by the
	// vfs.
	fd := e.open("/link/../sub/file", unix.O_CREAT|unix.O_WRONLY)
	fd.DecRef(e.ctx)
	if _, err := os.Stat(e.hostPath("dir/sub/file")); err != nil {
		t.Fatal(err)
	}
	// Symlink targeting a missing file, followed: ENOENT.
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/dir/up"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Fatalf("dangling: %v", err)
	}
	// rmdir of a non-empty directory fails on the host.
	if err := e.v.RmdirAt(e.ctx, e.creds, e.pop("/dir/sub")); err != unix.ENOTEMPTY {
		t.Fatalf("rmdir non-empty: %v", err)
	}
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/dir/sub/file")))
	e.must(e.v.RmdirAt(e.ctx, e.creds, e.pop("/dir/sub")))
	if _, err := os.Stat(e.hostPath("dir/sub")); !os.IsNotExist(err) {
		t.Fatalf("host still has dir/sub: %v", err)
	}
}

func TestRenameLinkUnlink(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("a"), []byte("A"), 0o644))
	e.must(os.WriteFile(e.hostPath("b"), []byte("B"), 0o644))
	e.must(os.Mkdir(e.hostPath("d"), 0o755))
	e.stat("/a")
	e.stat("/b")
	// Rename over an existing file, into another directory.
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/a"), e.pop("/d/b"), &vfs.RenameOptions{}))
	if b, err := os.ReadFile(e.hostPath("d/b")); err != nil || string(b) != "A" {
		t.Fatalf("host d/b = %q, %v", b, err)
	}
	if _, err := os.Stat(e.hostPath("a")); !os.IsNotExist(err) {
		t.Fatalf("a still on host")
	}
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/a"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Fatalf("stat of renamed-away name: %v", err)
	}
	// The moved file still opens and reads through its new name.
	fd := e.open("/d/b", unix.O_RDONLY)
	if got := readAll(t, e.ctx, fd); string(got) != "A" {
		t.Fatalf("read %q", got)
	}
	fd.DecRef(e.ctx)
	// Replace: rename /b over /d/b.
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/b"), e.pop("/d/b"), &vfs.RenameOptions{}))
	if b, _ := os.ReadFile(e.hostPath("d/b")); string(b) != "B" {
		t.Fatalf("after replace: %q", b)
	}
	// Hard link.
	e.must(e.v.LinkAt(e.ctx, e.creds, e.pop("/d/b"), e.pop("/h")))
	var s1, s2 unix.Stat_t
	e.must(unix.Stat(e.hostPath("h"), &s1))
	e.must(unix.Stat(e.hostPath("d/b"), &s2))
	if s1.Ino != s2.Ino || s1.Nlink != 2 {
		t.Fatalf("link: inos %d %d nlink %d", s1.Ino, s2.Ino, s1.Nlink)
	}
	if st := e.stat("/h"); st.Nlink != 2 {
		t.Fatalf("nlink seen %d", st.Nlink)
	}
	// Directory rename.
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/d"), e.pop("/e"), &vfs.RenameOptions{}))
	if _, err := os.Stat(e.hostPath("e/b")); err != nil {
		t.Fatal(err)
	}
	fd = e.open("/e/b", unix.O_RDONLY)
	fd.DecRef(e.ctx)
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/e/b")))
	if _, err := os.Stat(e.hostPath("e/b")); !os.IsNotExist(err) {
		t.Fatalf("unlink left %v", err)
	}
	if st := e.stat("/h"); st.Nlink != 1 {
		t.Fatalf("nlink after unlink %d", st.Nlink)
	}
}

func TestReaddirLargeDirectory(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.Mkdir(e.hostPath("big"), 0o755))
	const n = 2000
	for k := 0; k < n; k++ {
		f, err := os.Create(e.hostPath(fmt.Sprintf("big/entry-with-a-longish-name-%05d", k)))
		e.must(err)
		f.Close()
	}
	fd := e.open("/big", unix.O_RDONLY|unix.O_DIRECTORY)
	defer fd.DecRef(e.ctx)
	seen := map[string]int{}
	// Small batches, as getdents with a small buffer does: stop after 7
	// entries each call.
	for {
		count := 0
		e.must(fd.IterDirents(e.ctx, func(d vfs.Dirent) bool {
			if count == 7 {
				return false
			}
			count++
			seen[d.Name]++
			if d.Name != "." && d.Name != ".." && d.Type != unix.DT_REG {
				t.Errorf("%s: type %d", d.Name, d.Type)
			}
			return true
		}))
		if count == 0 {
			break
		}
	}
	if len(seen) != n+2 {
		t.Fatalf("saw %d names, want %d", len(seen), n+2)
	}
	for name, c := range seen {
		if c != 1 {
			t.Errorf("%s seen %d times", name, c)
		}
	}
	// Rewind and list again.
	_, err := fd.Seek(e.ctx, 0, unix.SEEK_SET)
	e.must(err)
	names, err := vfstest.ReadDir(e.ctx, fd)
	e.must(err)
	if len(names) != n+2 || names[0] != "." || names[1] != ".." {
		t.Fatalf("second listing: %d names starting %v", len(names), names[:2])
	}
}

func TestXattrsAndStatFS(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("f"), nil, 0o644))
	if err := e.v.SetXattrAt(e.ctx, e.creds, e.pop("/f"), "user.k", "v1", 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("host filesystem has no user xattrs")
		}
		t.Fatal(err)
	}
	if v, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/f"), "user.k"); err != nil || v != "v1" {
		t.Fatalf("getxattr = %q, %v", v, err)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(e.hostPath("f"), "user.k", buf)
	if err != nil || string(buf[:n]) != "v1" {
		t.Fatalf("host getxattr = %q, %v", buf[:n], err)
	}
	names, err := e.v.ListXattrAt(e.ctx, e.creds, e.pop("/f"))
	e.must(err)
	if len(names) != 1 || names[0] != "user.k" {
		t.Fatalf("listxattr %v", names)
	}
	if _, err := e.v.GetXattrAt(e.ctx, e.creds, e.pop("/f"), "user.none"); err != unix.ENODATA {
		t.Fatalf("missing xattr: %v", err)
	}
	e.must(e.v.SetXattrAt(e.ctx, e.creds, e.pop("/f"), "user.empty", "", 0))
	e.must(e.v.RemoveXattrAt(e.ctx, e.creds, e.pop("/f"), "user.k"))
	if _, err := unix.Getxattr(e.hostPath("f"), "user.k", buf); err != unix.ENODATA {
		t.Fatalf("host getxattr after removexattr: %v", err)
	}
	if n, err := unix.Getxattr(e.hostPath("f"), "user.empty", buf); err != nil || n != 0 {
		t.Fatalf("empty value on the host: %d, %v", n, err)
	}
	if err := e.v.RemoveXattrAt(e.ctx, e.creds, e.pop("/f"), "user.k"); err != unix.ENODATA {
		t.Fatalf("removing a missing xattr: %v", err)
	}
	st, err := e.v.StatFSAt(e.ctx, e.creds, e.pop("/"))
	e.must(err)
	var hs unix.Statfs_t
	e.must(unix.Statfs(e.host, &hs))
	if st.Type != hs.Type || st.Bsize != hs.Bsize || st.Blocks != hs.Blocks || st.Namelen != hs.Namelen {
		t.Fatalf("statfs %+v host %+v", st, hs)
	}
}

func TestSetStat(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("f"), []byte("data"), 0o644))
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/f"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600}))
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/f"), &vfs.SetStatOptions{Mask: unix.STATX_UID | unix.STATX_GID, UID: 1234, GID: 5678}))
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/f"), &vfs.SetStatOptions{Mask: unix.STATX_ATIME | unix.STATX_MTIME,
		Atime: unix.Timespec{Sec: 1000, Nsec: 5}, Mtime: unix.Timespec{Sec: 2000, Nsec: 7}}))
	var hs unix.Stat_t
	e.must(unix.Stat(e.hostPath("f"), &hs))
	if hs.Mode&0o7777 != 0o600 || hs.Uid != 1234 || hs.Gid != 5678 || hs.Atim.Sec != 1000 || hs.Mtim.Sec != 2000 || hs.Mtim.Nsec != 7 {
		t.Fatalf("host stat %+v", hs)
	}
	st := e.stat("/f")
	if st.Mode&0o7777 != 0o600 || st.Uid != 1234 || st.Gid != 5678 || st.Mtime.Sec != 2000 || st.Atime.Sec != 1000 {
		t.Fatalf("stat %+v", st)
	}
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/f"), &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 1}))
	if b, _ := os.ReadFile(e.hostPath("f")); string(b) != "d" {
		t.Fatalf("host after truncate %q", b)
	}
	fd := e.open("/f", unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	e.must(fd.Sync(e.ctx))
}

func TestReadOnlyGofer(t *testing.T) {
	dir := t.TempDir()
	e0 := os.WriteFile(filepath.Join(dir, "f"), []byte("ro"), 0o644)
	if e0 != nil {
		t.Fatal(e0)
	}
	e := newEnv(t, envOpts{hostPath: dir, readOnly: true})
	fd := e.open("/f", unix.O_RDONLY)
	if got := readAll(t, e.ctx, fd); string(got) != "ro" {
		t.Fatalf("read %q", got)
	}
	fd.DecRef(e.ctx)
	for what, err := range map[string]error{
		"open for write": func() error {
			_, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/f"), &vfs.OpenOptions{Flags: unix.O_WRONLY})
			return err
		}(),
		"create": func() error {
			_, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/new"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644})
			return err
		}(),
		"mkdir":    e.v.MkdirAt(e.ctx, e.creds, e.pop("/d"), &vfs.MkdirOptions{Mode: 0o755}),
		"unlink":   e.v.UnlinkAt(e.ctx, e.creds, e.pop("/f")),
		"chmod":    e.v.SetStatAt(e.ctx, e.creds, e.pop("/f"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600}),
		"truncate": e.v.SetStatAt(e.ctx, e.creds, e.pop("/f"), &vfs.SetStatOptions{Mask: unix.STATX_SIZE}),
		"symlink":  e.v.SymlinkAt(e.ctx, e.creds, e.pop("/s"), "f"),
	} {
		if err != unix.EROFS {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Fatalf("file gone: %v", err)
	}
}

func TestSharedRevalidation(t *testing.T) {
	e := newEnv(t, envOpts{cache: gofer.CacheShared})
	e.must(os.WriteFile(e.hostPath("f"), []byte("one"), 0o644))
	if st := e.stat("/f"); st.Size != 3 {
		t.Fatalf("size %d", st.Size)
	}
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/later"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Fatalf("missing: %v", err)
	}
	// Host-side changes: a growing file, a chmod, a new file.
	e.must(os.WriteFile(e.hostPath("f"), []byte("one two three"), 0o644))
	e.must(os.Chmod(e.hostPath("f"), 0o600))
	e.must(os.WriteFile(e.hostPath("later"), []byte("x"), 0o644))
	if st := e.stat("/f"); st.Size != 13 || st.Mode&0o777 != 0o600 {
		t.Fatalf("shared mode missed host change: size %d mode %o", st.Size, st.Mode)
	}
	if st := e.stat("/later"); st.Size != 1 {
		t.Fatalf("new host file size %d", st.Size)
	}
	fd := e.open("/f", unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	if got := readAll(t, e.ctx, fd); string(got) != "one two three" {
		t.Fatalf("read %q", got)
	}
}

func TestExclusiveCachesNegativeAndAttributes(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("f"), []byte("one"), 0o644))
	e.stat("/f")
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/later"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Fatalf("missing: %v", err)
	}
	// Behind the sandbox's back: exclusive mode trusts its cache.
	e.must(os.WriteFile(e.hostPath("f"), []byte("one two"), 0o644))
	e.must(os.WriteFile(e.hostPath("later"), nil, 0o644))
	if st := e.stat("/f"); st.Size != 3 {
		t.Fatalf("exclusive cache refetched: size %d", st.Size)
	}
	if _, err := e.v.StatAt(e.ctx, e.creds, e.pop("/later"), &vfs.StatOptions{}); err != unix.ENOENT {
		t.Fatalf("negative entry not cached: %v", err)
	}
	// The sandbox's own creation replaces the negative entry.
	e.must(os.Remove(e.hostPath("later")))
	fd := e.open("/later", unix.O_CREAT|unix.O_WRONLY)
	fd.DecRef(e.ctx)
	e.stat("/later")
}

// countFDs counts this process's open descriptors.
func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

func TestNoFDLeakAfterUnmount(t *testing.T) {
	ctx := context.Background()
	mf, err := pgalloc.New("leak-test")
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("q"), 3*4096), 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	before := countFDs(t)
	func() {
		a, b, err := unet.SocketPair(false)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- fsgofer.Serve(ctx, []*unet.Socket{a}, []fsgofer.Mount{{HostPath: dir}})
		}()
		v := vfs.New()
		v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{})
		v.RegisterFilesystemType(gofer.Name, gofer.FilesystemType{})
		creds := auth.NewRoot()
		cctx := auth.ContextWithCredentials(ctx, creds)
		ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
			InternalData: &tmpfs.InternalData{MemoryFile: mf}}})
		if err != nil {
			t.Fatal(err)
		}
		root := ns.Root()
		defer root.DecRef(ctx)
		if err := v.MkdirAt(cctx, creds, vfstest.Pop(root, "/mnt"), &vfs.MkdirOptions{Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
		// The filesystem owns the socket: unmounting closes it.
		if _, err := v.MountAt(cctx, creds, "", vfstest.Pop(root, "/mnt"), gofer.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
			InternalData: &gofer.InternalData{Socket: b, MemoryFile: mf}}}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/mnt/f", "/mnt/new"} {
			fd, err := v.OpenAt(cctx, creds, vfstest.Pop(root, p), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_RDWR, Mode: 0o644})
			if err != nil {
				t.Fatal(err)
			}
			vfstest.Write(cctx, fd, []byte("abc"))
			fd.DecRef(cctx)
		}
		fd, err := v.OpenAt(cctx, creds, vfstest.Pop(root, "/mnt/d"), &vfs.OpenOptions{Flags: unix.O_RDONLY})
		if err != nil {
			t.Fatal(err)
		}
		vfstest.ReadDir(cctx, fd)
		fd.DecRef(cctx)
		if countFDs(t) <= before {
			t.Fatalf("no descriptors in use while mounted?")
		}
		if err := v.UmountAt(cctx, creds, vfstest.Pop(root, "/mnt"), &vfs.UmountOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("server: %v", err)
		}
	}()
	if after := countFDs(t); after != before {
		t.Fatalf("%d descriptors before mount, %d after unmount", before, after)
	}
}

// libcPath returns where `ldd /bin/true` finds libc.
func libcPath(t *testing.T) string {
	out, err := exec.Command("ldd", "/bin/true").Output()
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && strings.HasPrefix(f[0], "libc.so") {
				return f[2]
			}
		}
	}
	return "/lib/x86_64-linux-gnu/libc.so.6"
}

func TestHostRootReadOnly(t *testing.T) {
	e := newEnv(t, envOpts{hostPath: "/", readOnly: true})
	libc := libcPath(t)
	for _, p := range []string{"/etc/passwd", "/bin/true", libc} {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("host has no %s: %v", p, err)
		}
		fd := e.open(p, unix.O_RDONLY)
		head := make([]byte, 64)
		n, err := fd.PRead(e.ctx, vfstest.Seq(head), 0, vfs.ReadOptions{})
		if err != nil || !bytes.Equal(head[:n], want[:min(64, len(want))]) {
			t.Errorf("%s: first bytes %q, %v", p, head[:n], err)
		}
		if p != "/etc/passwd" && string(head[:4]) != "\x7fELF" {
			t.Errorf("%s: not an ELF file: %q", p, head[:4])
		}
		if p == "/etc/passwd" {
			if got := readAll(t, e.ctx, fd); !bytes.Equal(got, want) {
				t.Errorf("/etc/passwd differs")
			}
		}
		fd.DecRef(e.ctx)
	}
	if _, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/etc/passwd"), &vfs.OpenOptions{Flags: unix.O_WRONLY}); err != unix.EROFS {
		t.Errorf("write open of host /etc/passwd: %v", err)
	}
}

func TestRenameExchangeRefusedIntact(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("x"), []byte("X"), 0o644))
	e.must(os.WriteFile(e.hostPath("y"), []byte("Y"), 0o644))
	err := e.v.RenameAt(e.ctx, e.creds, e.pop("/x"), e.pop("/y"), &vfs.RenameOptions{Flags: unix.RENAME_EXCHANGE})
	if err != unix.EINVAL {
		t.Fatalf("RENAME_EXCHANGE: %v, want EINVAL", err)
	}
	for name, want := range map[string]string{"x": "X", "y": "Y"} {
		if b, _ := os.ReadFile(e.hostPath(name)); string(b) != want {
			t.Errorf("host %s = %q", name, b)
		}
		fd := e.open("/"+name, unix.O_RDONLY)
		if got := readAll(t, e.ctx, fd); string(got) != want {
			t.Errorf("%s reads %q", name, got)
		}
		fd.DecRef(e.ctx)
	}
	// A plain rename still works afterwards.
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/x"), e.pop("/z"), &vfs.RenameOptions{}))
	if b, _ := os.ReadFile(e.hostPath("z")); string(b) != "X" {
		t.Errorf("host z = %q", b)
	}
}

func TestSharedModeDropsStalePages(t *testing.T) {
	e := newEnv(t, envOpts{cache: gofer.CacheShared})
	e.must(os.WriteFile(e.hostPath("f"), bytes.Repeat([]byte("a"), 4096), 0o644))
	fd := e.open("/f", unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x20000, End: 0x21000}
	m, pages := mapAll(e, fd, ms, ar, false)
	if pages[0][0] != 'a' {
		t.Fatalf("mapped %q", pages[0][:1])
	}
	m.RemoveMapping(e.ctx, ms, ar, 0, false)
	// The host rewrites the file (a later mtime), the sandbox stats it,
	// and a new mapping sees the new bytes.
	e.must(os.WriteFile(e.hostPath("f"), bytes.Repeat([]byte("b"), 4096), 0o644))
	e.must(os.Chtimes(e.hostPath("f"), time.Now(), time.Now().Add(time.Hour)))
	e.stat("/f")
	_, pages = mapAll(e, fd, ms, ar, false)
	if pages[0][0] != 'b' {
		t.Fatalf("stale page after host change: %q", pages[0][:1])
	}
	got := make([]byte, 1)
	fd.PRead(e.ctx, vfstest.Seq(got), 100, vfs.ReadOptions{})
	if got[0] != 'b' {
		t.Fatalf("read %q", got)
	}
}

func TestConcurrentLookupsAndIO(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.MkdirAll(e.hostPath("a/b"), 0o755))
	for k := 0; k < 8; k++ {
		e.must(os.WriteFile(e.hostPath(fmt.Sprintf("a/b/f%d", k)), bytes.Repeat([]byte{byte('0' + k)}, 10000), 0o644))
	}
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		go func(g int) {
			errs <- func() error {
				for round := 0; round < 20; round++ {
					p := fmt.Sprintf("/a/b/f%d", (g+round)%8)
					fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop(p), &vfs.OpenOptions{Flags: unix.O_RDWR})
					if err != nil {
						return err
					}
					buf := make([]byte, 100)
					if _, err := fd.PRead(e.ctx, vfstest.Seq(buf), int64(round*10), vfs.ReadOptions{}); err != nil {
						fd.DecRef(e.ctx)
						return err
					}
					want := byte('0' + (g+round)%8)
					if buf[0] != want {
						fd.DecRef(e.ctx)
						return fmt.Errorf("%s: read %q, want %q", p, buf[0], want)
					}
					// Rewrite the same byte: content stays checkable.
					if _, err := fd.PWrite(e.ctx, vfstest.Seq(buf[:10]), int64(round*10), vfs.WriteOptions{}); err != nil {
						fd.DecRef(e.ctx)
						return err
					}
					if _, err := e.v.StatAt(e.ctx, e.creds, e.pop(p), &vfs.StatOptions{}); err != nil {
						fd.DecRef(e.ctx)
						return err
					}
					fd.DecRef(e.ctx)
				}
				return nil
			}()
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestMountOptions(t *testing.T) {
	ctx := context.Background()
	v := vfs.New()
	v.RegisterFilesystemType(gofer.Name, gofer.FilesystemType{})
	creds := auth.NewRoot()
	if _, err := v.NewMountNamespace(ctx, creds, "", gofer.Name, &vfs.MountOptions{}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("mount without InternalData: %v", err)
	}
	c := serve(t, t.TempDir(), false)
	if _, err := v.NewMountNamespace(ctx, creds, "", gofer.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		Data: "cache=sometimes", InternalData: &gofer.InternalData{Client: c}}}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bad cache option: %v", err)
	}
	if _, err := v.NewMountNamespace(ctx, creds, "", gofer.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		InternalData: &gofer.InternalData{Client: c, AttachName: "/elsewhere"}}}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("bad attach name: %v", err)
	}
}

// nullDevice is a sandbox device driver for the device-node test.
type nullDevice struct{}

type nullFile struct{ vfs.FileDescriptionDefaults }

func (nullDevice) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return &nullFile{}, nil
}

func TestHostDeviceNodeOpensSandboxDevice(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod of a device node needs CAP_MKNOD: %v", err)
	}
	if err := unix.Mknod(filepath.Join(dir, "other"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{hostPath: dir})
	e.must(e.v.RegisterDevice(vfs.CharDevice, 1, 3, nullDevice{}))
	fd, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/null"), &vfs.OpenOptions{Flags: unix.O_RDWR})
	e.must(err)
	if _, ok := fd.Impl().(*nullFile); !ok {
		t.Errorf("opened %T, not the sandbox device", fd.Impl())
	}
	fd.DecRef(e.ctx)
	if _, err := e.v.OpenAt(e.ctx, e.creds, e.pop("/other"), &vfs.OpenOptions{Flags: unix.O_RDWR}); err != unix.ENXIO {
		t.Errorf("unknown device: %v, want ENXIO", err)
	}
}

func TestFileBindMount(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "single")
	if err := os.WriteFile(file, []byte("just one file"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{hostPath: file})
	pop := &vfs.PathOperation{Root: e.root, Start: e.root, AllowEmptyPath: true}
	fd, err := e.v.OpenAt(e.ctx, e.creds, pop, &vfs.OpenOptions{Flags: unix.O_RDWR})
	e.must(err)
	defer fd.DecRef(e.ctx)
	if got := readAll(t, e.ctx, fd); string(got) != "just one file" {
		t.Fatalf("read %q", got)
	}
	fd.PWrite(e.ctx, vfstest.Seq([]byte("JUST")), 0, vfs.WriteOptions{})
	if b, _ := os.ReadFile(file); string(b) != "JUST one file" {
		t.Fatalf("host has %q", b)
	}
}
