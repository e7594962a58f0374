package tmpfs_test

import (
	"errors"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

func newMemfd(t *testing.T, e *env, name string, flags uint32) *vfs.FileDescription {
	t.Helper()
	m, err := tmpfs.NewMemfdFS(e.ctx, e.v, nil)
	e.must(err)
	t.Cleanup(func() { m.Release(e.ctx) })
	fd, err := m.Create(e.ctx, auth.NewUser(1000, 1001, nil), name, flags)
	e.must(err)
	t.Cleanup(func() { fd.DecRef(e.ctx) })
	return fd
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestMemfdBasics(t *testing.T) {
	e := newEnv(t, "")
	fd := newMemfd(t, e, "foo", unix.MFD_CLOEXEC)
	st, err := fd.Stat(e.ctx, vfs.StatOptions{})
	e.must(err)
	if st.Mode != unix.S_IFREG|0o777 || st.Nlink != 0 || st.Uid != 1000 || st.Gid != 1001 {
		t.Fatalf("stat %+v", st)
	}
	root := vfs.MakeVirtualDentry(fd.Mount(), fd.Mount().Root())
	if p, _ := e.v.PathnameWithDeleted(e.ctx, root, fd.VirtualDentry()); p != "/memfd:foo (deleted)" {
		t.Fatalf("path %q", p)
	}
	if _, err := vfstest.Write(e.ctx, fd, []byte("data")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	if n, err := fd.PRead(e.ctx, vfstest.Seq(b), 0, vfs.ReadOptions{}); err != nil || string(b[:n]) != "data" {
		t.Fatalf("pread %q %v", b[:n], err)
	}
	// Without MFD_ALLOW_SEALING the file is sealed against sealing.
	if s, err := tmpfs.GetSeals(fd); err != nil || s != unix.F_SEAL_SEAL {
		t.Fatalf("seals %#x %v", s, err)
	}
	wantErrno(t, "add seal", tmpfs.AddSeals(fd, unix.F_SEAL_GROW), unix.EPERM)
	// A second memfd of the same name is a different file.
	fd2 := newMemfd(t, e, "foo", 0)
	if fd2.Inode() == fd.Inode() {
		t.Fatal("same inode for two memfds")
	}
	m, _ := tmpfs.NewMemfdFS(e.ctx, e.v, nil)
	defer m.Release(e.ctx)
	_, err = m.Create(e.ctx, e.creds, strings.Repeat("x", 250), 0)
	wantErrno(t, "long name", err, unix.EINVAL)
	_, err = m.Create(e.ctx, e.creds, "a/b", 0)
	wantErrno(t, "slash", err, unix.EINVAL)
	_, err = m.Create(e.ctx, e.creds, "x", unix.MFD_HUGETLB)
	wantErrno(t, "hugetlb", err, unix.EINVAL)
	// Ordinary tmpfs files report F_SEAL_SEAL too; directories cannot be sealed.
	f := e.open("/plain", unix.O_CREAT|unix.O_RDWR)
	defer f.DecRef(e.ctx)
	if s, err := tmpfs.GetSeals(f); err != nil || s != unix.F_SEAL_SEAL {
		t.Fatalf("plain file seals %#x %v", s, err)
	}
	d := e.open("/", unix.O_RDONLY|unix.O_DIRECTORY)
	defer d.DecRef(e.ctx)
	_, err = tmpfs.GetSeals(d)
	wantErrno(t, "dir seals", err, unix.EINVAL)
}

func setSize(e *env, fd *vfs.FileDescription, size uint64) error {
	return fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: size})
}

func TestMemfdShrinkGrowSeals(t *testing.T) {
	e := newEnv(t, "")
	fd := newMemfd(t, e, "s", unix.MFD_ALLOW_SEALING)
	if s, _ := tmpfs.GetSeals(fd); s != 0 {
		t.Fatalf("initial seals %#x", s)
	}
	vfstest.Write(e.ctx, fd, []byte("0123456789"))
	wantErrno(t, "unknown seal", tmpfs.AddSeals(fd, 0x100), unix.EINVAL)
	e.must(tmpfs.AddSeals(fd, unix.F_SEAL_SHRINK))
	wantErrno(t, "shrink", setSize(e, fd, 5), unix.EPERM)
	e.must(setSize(e, fd, 20))
	e.must(tmpfs.AddSeals(fd, unix.F_SEAL_GROW))
	if s, _ := tmpfs.GetSeals(fd); s != unix.F_SEAL_SHRINK|unix.F_SEAL_GROW {
		t.Fatalf("seals %#x", s)
	}
	wantErrno(t, "grow", setSize(e, fd, 21), unix.EPERM)
	e.must(setSize(e, fd, 20)) // same size: allowed
	// Writes inside the file work; past the end they stop there.
	if n, err := fd.PWrite(e.ctx, vfstest.Seq([]byte("ab")), 0, vfs.WriteOptions{}); err != nil || n != 2 {
		t.Fatalf("write inside %d %v", n, err)
	}
	if n, err := fd.PWrite(e.ctx, vfstest.Seq([]byte("WXYZ")), 18, vfs.WriteOptions{}); err != nil || n != 2 {
		t.Fatalf("write across end %d %v", n, err)
	}
	_, err := fd.PWrite(e.ctx, vfstest.Seq([]byte("x")), 20, vfs.WriteOptions{})
	wantErrno(t, "write at end", err, unix.EPERM)
	wantErrno(t, "fallocate past end", fd.Allocate(e.ctx, 0, 0, 4096), unix.EPERM)
	e.must(fd.Allocate(e.ctx, unix.FALLOC_FL_KEEP_SIZE, 0, 4096))
	st, _ := fd.Stat(e.ctx, vfs.StatOptions{})
	if st.Size != 20 {
		t.Fatalf("size %d", st.Size)
	}
	// F_SEAL_SEAL ends sealing.
	e.must(tmpfs.AddSeals(fd, unix.F_SEAL_SEAL))
	wantErrno(t, "after seal-seal", tmpfs.AddSeals(fd, unix.F_SEAL_WRITE), unix.EPERM)
}

func TestMemfdWriteSeals(t *testing.T) {
	e := newEnv(t, "")
	fd := newMemfd(t, e, "w", unix.MFD_ALLOW_SEALING)
	vfstest.Write(e.ctx, fd, make([]byte, 4096))
	// A shared writable mapping blocks F_SEAL_WRITE.
	rw := memmap.MMapOpts{Length: 4096, Perms: hostarch.ReadWrite, MaxPerms: hostarch.ReadWrite}
	e.must(fd.ConfigureMMap(e.ctx, &rw))
	defer rw.MappingIdentity.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x10000, End: 0x11000}
	e.must(rw.Mappable.AddMapping(e.ctx, ms, ar, 0, true))
	wantErrno(t, "seal write while mapped", tmpfs.AddSeals(fd, unix.F_SEAL_WRITE), unix.EBUSY)
	// F_SEAL_FUTURE_WRITE does not mind existing mappings.
	e.must(tmpfs.AddSeals(fd, unix.F_SEAL_FUTURE_WRITE))
	_, err := vfstest.Write(e.ctx, fd, []byte("x"))
	wantErrno(t, "write after future-write seal", err, unix.EPERM)
	rw.Mappable.RemoveMapping(e.ctx, ms, ar, 0, true)
	e.must(tmpfs.AddSeals(fd, unix.F_SEAL_WRITE))
	_, err = fd.PWrite(e.ctx, vfstest.Seq([]byte("x")), 0, vfs.WriteOptions{})
	wantErrno(t, "write after write seal", err, unix.EPERM)
	// New shared mappings: read-only only, and never upgradable.
	rw2 := memmap.MMapOpts{Length: 4096, Perms: hostarch.ReadWrite, MaxPerms: hostarch.ReadWrite}
	wantErrno(t, "shared writable mmap", fd.ConfigureMMap(e.ctx, &rw2), unix.EPERM)
	ro := memmap.MMapOpts{Length: 4096, Perms: hostarch.Read, MaxPerms: hostarch.ReadWrite}
	e.must(fd.ConfigureMMap(e.ctx, &ro))
	ro.MappingIdentity.DecRef(e.ctx)
	if ro.MaxPerms.Write {
		t.Fatal("read-only shared mapping of a write-sealed memfd may become writable")
	}
	priv := memmap.MMapOpts{Length: 4096, Perms: hostarch.ReadWrite, MaxPerms: hostarch.ReadWrite, Private: true}
	e.must(fd.ConfigureMMap(e.ctx, &priv))
	priv.MappingIdentity.DecRef(e.ctx)
}
