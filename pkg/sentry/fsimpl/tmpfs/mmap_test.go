package tmpfs_test

import (
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

type fakeSpace struct{ invalidated []hostarch.AddrRange }

func (f *fakeSpace) Invalidate(ar hostarch.AddrRange, _ memmap.InvalidateOpts) {
	f.invalidated = append(f.invalidated, ar)
}

func TestMMapSharesPagesWithReadWrite(t *testing.T) {
	e := newEnv(t, "")
	fd := e.open("/f", unix.O_CREAT|unix.O_RDWR)
	defer fd.DecRef(e.ctx)
	vfstest.Write(e.ctx, fd, []byte("abc"))
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 3 * 4096}))

	opts := memmap.MMapOpts{Length: 3 * 4096}
	e.must(fd.ConfigureMMap(e.ctx, &opts))
	if opts.Mappable == nil || opts.MappingIdentity == nil {
		t.Fatal("ConfigureMMap set no Mappable")
	}
	defer opts.MappingIdentity.DecRef(e.ctx)
	ms := &fakeSpace{}
	ar := hostarch.AddrRange{Start: 0x10000, End: 0x10000 + 3*4096}
	e.must(opts.Mappable.AddMapping(e.ctx, ms, ar, 0, true))

	all := memmap.MappableRange{Start: 0, End: 3 * 4096}
	ts, err := opts.Mappable.Translate(e.ctx, all, all, hostarch.Write)
	e.must(err)
	var covered uint64
	for _, tr := range ts {
		covered += tr.Source.Length()
	}
	if covered != 3*4096 {
		t.Fatalf("translations cover %d bytes: %v", covered, ts)
	}
	// Bytes written by read/write show through the mapping and back.
	b, err := ts[0].File.MapInternal(ts[0].FileRange())
	e.must(err)
	if string(b[:3]) != "abc" {
		t.Errorf("mapping sees %q", b[:3])
	}
	copy(b[1:], "Z")
	got := make([]byte, 3)
	fd.PRead(e.ctx, vfstest.Seq(got), 0, vfs.ReadOptions{})
	if string(got) != "aZc" {
		t.Errorf("read after store through mapping = %q", got)
	}
	// Beyond EOF: SIGBUS.
	_, err = opts.Mappable.Translate(e.ctx, memmap.MappableRange{Start: 3 * 4096, End: 4 * 4096}, all, hostarch.Read)
	var be *memmap.BusError
	if !errors.As(err, &be) {
		t.Errorf("translate beyond EOF: %v", err)
	}
	// Truncation invalidates the mapped pages past the new end.
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 4096}))
	if len(ms.invalidated) != 1 || ms.invalidated[0] != (hostarch.AddrRange{Start: 0x10000 + 4096, End: ar.End}) {
		t.Errorf("invalidations %v", ms.invalidated)
	}
	opts.Mappable.RemoveMapping(e.ctx, ms, ar, 0, true)
	e.must(fd.SetStat(e.ctx, &vfs.SetStatOptions{Mask: unix.STATX_SIZE, Size: 0}))
	if len(ms.invalidated) != 1 {
		t.Errorf("removed mapping still invalidated")
	}
}
