package tmpfs_test

import (
	"bytes"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

const punch = unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE

func TestPunchHoleZeroesAndFreesPages(t *testing.T) {
	e := newEnv(t, "size=16k")
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	data := bytes.Repeat([]byte{'x'}, 4*4096)
	if n, err := vfstest.Write(e.ctx, fd, data); err != nil || n != int64(len(data)) {
		t.Fatalf("write = %d, %v", n, err)
	}
	opts := memmap.MMapOpts{Length: 4 * 4096}
	e.must(fd.ConfigureMMap(e.ctx, &opts))
	defer opts.MappingIdentity.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x10000, End: 0x10000 + 4*4096}
	e.must(opts.Mappable.AddMapping(e.ctx, ms, ar, 0, true))
	defer opts.Mappable.RemoveMapping(e.ctx, ms, ar, 0, true)

	// [100, 2*4096+50): a partial head, one whole page, a partial tail.
	e.must(fd.Allocate(e.ctx, punch, 100, 2*4096-50))
	got := make([]byte, len(data)+10)
	n, err := fd.PRead(e.ctx, vfstest.Seq(got), 0, vfs.ReadOptions{})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("pread = %d, %v (size must be unchanged)", n, err)
	}
	for i := range n {
		want := byte('x')
		if i >= 100 && i < 2*4096+50 {
			want = 0
		}
		if got[i] != want {
			t.Fatalf("byte %d = %q, want %q", i, got[i], want)
		}
	}
	if st := e.stat("/f"); st.Size != uint64(len(data)) {
		t.Errorf("size %d after punch, want %d", st.Size, len(data))
	}
	// Only the one whole page is freed and unmapped.
	if sfs, _ := e.v.StatFSAt(e.ctx, e.creds, vfstest.Pop(e.root, "/")); sfs.Bfree != 1 {
		t.Errorf("bfree %d after punching one whole page, want 1", sfs.Bfree)
	}
	want := hostarch.AddrRange{Start: ar.Start + 4096, End: ar.Start + 2*4096}
	if len(ms.invalidated) != 1 || ms.invalidated[0] != want {
		t.Errorf("invalidated %v, want [%v]", ms.invalidated, want)
	}
	// The whole file: every page goes, size stays.
	e.must(fd.Allocate(e.ctx, punch, 0, 1<<30))
	if sfs, _ := e.v.StatFSAt(e.ctx, e.creds, vfstest.Pop(e.root, "/")); sfs.Bfree != 4 {
		t.Errorf("bfree %d after punching everything, want 4", sfs.Bfree)
	}
	if st := e.stat("/f"); st.Size != uint64(len(data)) {
		t.Errorf("size %d after whole punch", st.Size)
	}
	// A punched file is all hole.
	if _, err := fd.Seek(e.ctx, 0, unix.SEEK_DATA); !errors.Is(err, unix.ENXIO) {
		t.Errorf("SEEK_DATA on an all-hole file: %v, want ENXIO", err)
	}
	// Writing into the hole allocates again.
	if _, err := fd.PWrite(e.ctx, vfstest.Seq([]byte("y")), 5000, vfs.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := fd.PRead(e.ctx, vfstest.Seq(b), 5000, vfs.ReadOptions{}); err != nil || b[0] != 'y' {
		t.Errorf("read back after refill: %q %v", b, err)
	}
}

func TestPunchHoleRespectsWriteSeal(t *testing.T) {
	e := newEnv(t, "")
	fd := newMemfd(t, e, "p", unix.MFD_ALLOW_SEALING)
	if _, err := vfstest.Write(e.ctx, fd, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	e.must(tmpfs.AddSeals(fd, unix.F_SEAL_WRITE))
	wantErrno(t, "punch sealed", fd.Allocate(e.ctx, punch, 0, 3), unix.EPERM)
	wantErrno(t, "punch without KEEP_SIZE", fd.Allocate(e.ctx, unix.FALLOC_FL_PUNCH_HOLE, 0, 3), unix.EOPNOTSUPP)
}
