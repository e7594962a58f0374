package gofer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

type fakeSpace struct{ invalidated []hostarch.AddrRange }

func (f *fakeSpace) Invalidate(ar hostarch.AddrRange, _ memmap.InvalidateOpts) {
	f.invalidated = append(f.invalidated, ar)
}

// mapAll configures an mmap of length bytes of fd and translates all of
// it, returning the Sentry's view of each page.
func mapAll(e *env, fd *vfs.FileDescription, ms memmap.MappingSpace, ar hostarch.AddrRange, writable bool) (memmap.Mappable, [][]byte) {
	e.t.Helper()
	opts := memmap.MMapOpts{Length: uint64(ar.Length()), Private: !writable}
	e.must(fd.ConfigureMMap(e.ctx, &opts))
	if opts.Mappable == nil || opts.MappingIdentity == nil {
		e.t.Fatal("ConfigureMMap set no Mappable")
	}
	e.t.Cleanup(func() { opts.MappingIdentity.DecRef(e.ctx) })
	m := opts.Mappable
	e.must(m.AddMapping(e.ctx, ms, ar, 0, writable))
	all := memmap.MappableRange{Start: 0, End: uint64(ar.Length())}
	at := hostarch.Read
	if writable {
		at = hostarch.Write
	}
	ts, err := m.Translate(e.ctx, all, all, at)
	e.must(err)
	var pages [][]byte
	var next uint64
	for _, tr := range ts {
		if tr.Source.Start != next || tr.File != e.mf {
			e.t.Fatalf("translations %v do not tile the range in the memory file", ts)
		}
		b, err := tr.File.MapInternal(tr.FileRange())
		e.must(err)
		for off := uint64(0); off < tr.Source.Length(); off += hostarch.PageSize {
			pages = append(pages, b[off:off+hostarch.PageSize])
		}
		next = tr.Source.End
	}
	if next != all.End {
		e.t.Fatalf("translations cover %#x of %#x", next, all.End)
	}
	return m, pages
}

func TestMMapSharedCoherentAndWrittenBack(t *testing.T) {
	e := newEnv(t, envOpts{})
	content := make([]byte, 3*4096+100)
	for i := range content {
		content[i] = byte(i*13 + 1)
	}
	e.must(os.WriteFile(e.hostPath("f"), content, 0o644))
	fd := e.open("/f", unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x10000, End: 0x10000 + 4*4096}
	m, pages := mapAll(e, fd, ms, ar, true)
	// The pages hold the file, zeros past EOF.
	var mapped []byte
	for _, p := range pages {
		mapped = append(mapped, p...)
	}
	if !bytes.Equal(mapped[:len(content)], content) || !bytes.Equal(mapped[len(content):], make([]byte, len(mapped)-len(content))) {
		t.Fatal("mapped pages differ from the file")
	}
	// A store through the mapping is seen by read(2) at once...
	copy(pages[1][10:], "MMAP")
	got := make([]byte, 4)
	fd.PRead(e.ctx, vfstest.Seq(got), 4096+10, vfs.ReadOptions{})
	if string(got) != "MMAP" {
		t.Fatalf("read after store = %q", got)
	}
	// ... and by the host after msync (Sync).
	e.must(fd.Sync(e.ctx))
	host, _ := os.ReadFile(e.hostPath("f"))
	if string(host[4096+10:4096+14]) != "MMAP" || len(host) != len(content) {
		t.Fatalf("host after sync: %q (len %d)", host[4096+10:4096+14], len(host))
	}
	// write(2) updates the mapped page.
	fd.PWrite(e.ctx, vfstest.Seq([]byte("WRIT")), 2*4096+1, vfs.WriteOptions{})
	if string(pages[2][1:5]) != "WRIT" {
		t.Fatalf("mapping after write = %q", pages[2][1:5])
	}
	// Stores after the sync reach the host at munmap.
	copy(pages[0], "late")
	m.RemoveMapping(e.ctx, ms, ar, 0, true)
	host, _ = os.ReadFile(e.hostPath("f"))
	if string(host[:4]) != "late" || string(host[2*4096+1:2*4096+5]) != "WRIT" {
		t.Fatalf("host after munmap: %q %q", host[:4], host[2*4096+1:2*4096+5])
	}
	// Beyond EOF: SIGBUS.
	_, err := m.Translate(e.ctx, memmap.MappableRange{Start: 4 * 4096, End: 5 * 4096}, memmap.MappableRange{Start: 4 * 4096, End: 5 * 4096}, hostarch.Read)
	var be *memmap.BusError
	if !errors.As(err, &be) {
		t.Fatalf("translate beyond EOF: %v", err)
	}
}

func TestMMapTruncateInvalidates(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(os.WriteFile(e.hostPath("f"), bytes.Repeat([]byte("t"), 3*4096), 0o644))
	fd := e.open("/f", unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x40000, End: 0x40000 + 3*4096}
	m, pages := mapAll(e, fd, ms, ar, true)
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 4096 + 5}))
	if len(ms.invalidated) != 1 || ms.invalidated[0] != (hostarch.AddrRange{Start: 0x40000 + 2*4096, End: ar.End}) {
		t.Fatalf("invalidations %v", ms.invalidated)
	}
	// The tail of the partial last page reads as zero.
	if !bytes.Equal(pages[1][5:], make([]byte, 4096-5)) {
		t.Fatal("tail of the last page not zeroed")
	}
	m.RemoveMapping(e.ctx, ms, ar, 0, true)
	if fi, _ := os.Stat(e.hostPath("f")); fi.Size() != 4096+5 {
		t.Fatalf("host size %d after write-back", fi.Size())
	}
}

func TestMMapPrivateOfReadOnlyHostFile(t *testing.T) {
	// What ld.so does with every shared library: MAP_PRIVATE of a file
	// opened O_RDONLY from a read-only tree.
	libc := libcPath(t)
	want, err := os.ReadFile(libc)
	if err != nil || len(want) < 8*4096 {
		t.Skipf("no usable libc at %s: %v", libc, err)
	}
	e := newEnv(t, envOpts{hostPath: "/", readOnly: true})
	fd := e.open(libc, unix.O_RDONLY)
	defer fd.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x7f0000000000, End: 0x7f0000000000 + 8*4096}
	m, pages := mapAll(e, fd, ms, ar, false)
	for k, p := range pages {
		if !bytes.Equal(p, want[k*4096:(k+1)*4096]) {
			t.Fatalf("page %d of %s differs", k, libc)
		}
	}
	if string(pages[0][:4]) != "\x7fELF" {
		t.Fatalf("not ELF: %q", pages[0][:4])
	}
	// A second mapping of the same file gets the same cached pages.
	ms2 := &fakeSpace{}
	_, pages2 := mapAll(e, fd, ms2, ar, false)
	if &pages2[3][0] != &pages[3][0] {
		t.Error("second mapping did not share the page cache")
	}
	m.RemoveMapping(e.ctx, ms, ar, 0, false)
}

// mappedIO is application memory that is a mapping of a Mappable at
// address 0: every copy "faults" through Translate, as the memory manager
// would.
type mappedIO struct {
	e *env
	m memmap.Mappable
}

func (io mappedIO) page(ctx context.Context, addr hostarch.Addr) ([]byte, error) {
	off := uint64(addr) &^ (hostarch.PageSize - 1)
	r := memmap.MappableRange{Start: off, End: off + hostarch.PageSize}
	ts, err := io.m.Translate(ctx, r, r, hostarch.Read)
	if err != nil {
		return nil, err
	}
	b, err := ts[0].File.MapInternal(ts[0].FileRange())
	if err != nil {
		return nil, err
	}
	return b[off-ts[0].Source.Start:][uint64(addr)-off : hostarch.PageSize], nil
}

func (io mappedIO) CopyOut(ctx context.Context, addr hostarch.Addr, src []byte, _ usermem.IOOpts) (int, error) {
	done := 0
	for done < len(src) {
		b, err := io.page(ctx, addr+hostarch.Addr(done))
		if err != nil {
			return done, err
		}
		done += copy(b, src[done:])
	}
	return done, nil
}

func (io mappedIO) CopyIn(ctx context.Context, addr hostarch.Addr, dst []byte, _ usermem.IOOpts) (int, error) {
	done := 0
	for done < len(dst) {
		b, err := io.page(ctx, addr+hostarch.Addr(done))
		if err != nil {
			return done, err
		}
		done += copy(dst[done:], b)
	}
	return done, nil
}

func (io mappedIO) ZeroOut(context.Context, hostarch.Addr, int64, usermem.IOOpts) (int64, error) {
	return 0, unix.EFAULT
}

func TestReadWriteFromMappingOfSameFile(t *testing.T) {
	e := newEnv(t, envOpts{})
	content := bytes.Repeat([]byte("0123456789abcdef"), 2*4096/16)
	e.must(os.WriteFile(e.hostPath("f"), content, 0o644))
	fd := e.open("/f", unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0, End: 2 * 4096}
	m, _ := mapAll(e, fd, ms, ar, true)
	defer m.RemoveMapping(e.ctx, ms, ar, 0, true)
	io := mappedIO{e, m}
	done := make(chan error, 1)
	go func() {
		// write(fd, map+0, 16) at offset 4096, then read(fd, map+100)
		// from offset 0: both copy through faults on the same file.
		src, _ := usermem.BytesSequence(io, 0, 16, usermem.IOOpts{})
		if _, err := fd.PWrite(e.ctx, src, 4096, vfs.WriteOptions{}); err != nil {
			done <- err
			return
		}
		dst, _ := usermem.BytesSequence(io, 100, 10, usermem.IOOpts{})
		_, err := fd.PRead(e.ctx, dst, 4096, vfs.ReadOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		e.must(err)
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: I/O through a mapping of the same file")
	}
	got := make([]byte, 16)
	fd.PRead(e.ctx, vfstest.Seq(got), 100, vfs.ReadOptions{})
	if string(got[:10]) != "0123456789" {
		t.Fatalf("read into mapping: %q", got)
	}
}

func TestHardLinksShareOneInode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/a", bytes.Repeat([]byte("h"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(dir+"/a", dir+"/b"); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{hostPath: dir})
	fa := e.open("/a", unix.O_RDWR)
	defer fa.DecRef(e.ctx)
	fb := e.open("/b", unix.O_RDWR)
	defer fb.DecRef(e.ctx)
	if fa.Inode() != fb.Inode() {
		t.Fatal("two names of one host file got two inodes")
	}
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x30000, End: 0x31000}
	m, pages := mapAll(e, fa, ms, ar, false)
	defer m.RemoveMapping(e.ctx, ms, ar, 0, false)
	fb.PWrite(e.ctx, vfstest.Seq([]byte("via b")), 0, vfs.WriteOptions{})
	if string(pages[0][:5]) != "via b" {
		t.Fatalf("mapping of a after write through b: %q", pages[0][:5])
	}
	// Unlinking one name leaves the other working.
	e.must(e.v.UnlinkAt(e.ctx, e.creds, e.pop("/b")))
	if st := e.stat("/a"); st.Nlink != 1 {
		t.Fatalf("nlink %d", st.Nlink)
	}
}
