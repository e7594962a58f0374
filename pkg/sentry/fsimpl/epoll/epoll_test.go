package epoll_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/fsimpl/epoll"
	"carapace.dev/carapace/pkg/sentry/fsimpl/eventfd"
	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

type env struct {
	t   testing.TB
	ctx context.Context
	v   *vfs.VirtualFilesystem
	pfs *pipe.Filesystem
}

func newEnv(t testing.TB) *env {
	v := vfs.New()
	return &env{t: t, ctx: auth.ContextWithCredentials(context.Background(), auth.NewRoot()), v: v, pfs: pipe.NewFilesystem(v)}
}

func (e *env) epoll() (*vfs.FileDescription, *epoll.EventPoll) {
	e.t.Helper()
	fd, err := epoll.New(e.ctx, e.v, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { fd.DecRef(e.ctx) })
	ep, ok := epoll.FromFile(fd)
	if !ok {
		e.t.Fatal("FromFile failed on an epoll file")
	}
	return fd, ep
}

func (e *env) pipe() (r, w *vfs.FileDescription) {
	e.t.Helper()
	r, w, err := e.pfs.NewPipe(e.ctx, auth.NewRoot(), unix.O_NONBLOCK)
	if err != nil {
		e.t.Fatal(err)
	}
	return r, w
}

func (e *env) eventfd() *vfs.FileDescription {
	e.t.Helper()
	fd, err := eventfd.New(e.ctx, e.v, 0, unix.EFD_NONBLOCK)
	if err != nil {
		e.t.Fatal(err)
	}
	return fd
}

func (e *env) signal(fd *vfs.FileDescription) {
	e.t.Helper()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 1)
	if _, err := vfstest.Write(e.ctx, fd, b[:]); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) drain(fd *vfs.FileDescription) {
	e.t.Helper()
	if _, err := vfstest.Read(e.ctx, fd, 8); err != nil {
		e.t.Fatal(err)
	}
}

func ev(events uint32, data uint64) *unix.EpollEvent {
	return &unix.EpollEvent{Events: events, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
}

func dataOf(x unix.EpollEvent) uint64 { return uint64(uint32(x.Fd)) | uint64(uint32(x.Pad))<<32 }

// wait reads events, expecting n of them (0: EAGAIN).
func wait(t *testing.T, ep *epoll.EventPoll, max, n int) []unix.EpollEvent {
	t.Helper()
	evs := make([]unix.EpollEvent, max)
	got, err := ep.ReadEvents(evs)
	if n == 0 {
		if !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("ReadEvents = %d, %v; want EAGAIN", got, err)
		}
		return nil
	}
	if err != nil || got != n {
		t.Fatalf("ReadEvents = %d, %v; want %d events", got, err, n)
	}
	return evs[:got]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLevelTriggered(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	r, w := e.pipe()
	defer r.DecRef(e.ctx)
	defer w.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, r, 3, ev(unix.EPOLLIN, 0xdead_beef_0000_0007)))
	wait(t, ep, 4, 0)
	vfstest.Write(e.ctx, w, []byte("x"))
	got := wait(t, ep, 4, 1)
	if got[0].Events != unix.EPOLLIN || dataOf(got[0]) != 0xdead_beef_0000_0007 {
		t.Fatalf("event %+v", got[0])
	}
	wait(t, ep, 4, 1) // still readable
	vfstest.Read(e.ctx, r, 10)
	wait(t, ep, 4, 0)
}

func TestEdgeTriggered(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	r, w := e.pipe()
	defer r.DecRef(e.ctx)
	defer w.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, r, 3, ev(unix.EPOLLIN|unix.EPOLLET, 1)))
	vfstest.Write(e.ctx, w, []byte("x"))
	wait(t, ep, 4, 1)
	wait(t, ep, 4, 0) // no new edge
	vfstest.Write(e.ctx, w, []byte("y"))
	wait(t, ep, 4, 1)
}

func TestOneShot(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	efd := e.eventfd()
	defer efd.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 5, ev(unix.EPOLLIN|unix.EPOLLONESHOT, 5)))
	e.signal(efd)
	wait(t, ep, 4, 1)
	e.signal(efd)
	wait(t, ep, 4, 0) // disarmed
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_MOD, efd, 5, ev(unix.EPOLLIN|unix.EPOLLONESHOT, 6)))
	if got := wait(t, ep, 4, 1); dataOf(got[0]) != 6 {
		t.Fatalf("rearmed event data %d", dataOf(got[0]))
	}
}

func TestOutHupErr(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	r, w := e.pipe()
	defer w.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, w, 4, ev(unix.EPOLLOUT, 4)))
	if got := wait(t, ep, 4, 1); got[0].Events != unix.EPOLLOUT {
		t.Fatalf("writable pipe: %#x", got[0].Events)
	}
	// Fill it: not writable any more.
	for {
		if _, err := vfstest.Write(e.ctx, w, make([]byte, 4096)); err != nil {
			break
		}
	}
	wait(t, ep, 4, 0)
	// The reader goes: EPOLLERR, unasked.
	r.DecRef(e.ctx)
	if got := wait(t, ep, 4, 1); got[0].Events&unix.EPOLLERR == 0 {
		t.Fatalf("after reader closed: %#x", got[0].Events)
	}
	// A reader whose writer went gets EPOLLHUP.
	r2, w2 := e.pipe()
	defer r2.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, r2, 9, ev(unix.EPOLLIN, 9)))
	w2.DecRef(e.ctx)
	found := false
	for _, x := range wait(t, ep, 4, 2) {
		if dataOf(x) == 9 && x.Events&unix.EPOLLHUP != 0 {
			found = true
		}
	}
	if !found {
		t.Fatal("no EPOLLHUP for the reader")
	}
}

func TestCloseRemovesInterest(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	efd := e.eventfd()
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 3, ev(unix.EPOLLIN, 3)))
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 4, ev(unix.EPOLLIN, 4))) // a dup's number
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 4, ev(unix.EPOLLIN, 4)); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second add: %v", err)
	}
	e.signal(efd)
	wait(t, ep, 4, 2)
	// Closing one of two descriptors leaves the file (and both entries).
	efd.IncRef()
	efd.DecRef(e.ctx)
	wait(t, ep, 4, 2)
	// The last close removes them.
	efd.DecRef(e.ctx)
	wait(t, ep, 4, 0)
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_DEL, efd, 3, nil); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("del after close: %v", err)
	}
}

func TestCtlErrors(t *testing.T) {
	e := newEnv(t)
	epfd, ep := e.epoll()
	efd := e.eventfd()
	defer efd.DecRef(e.ctx)
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, epfd, 1, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("self add: %v", err)
	}
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_MOD, efd, 1, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("mod missing: %v", err)
	}
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_DEL, efd, 1, nil); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("del missing: %v", err)
	}
	if err := ep.Ctl(e.ctx, 99, efd, 1, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad op: %v", err)
	}
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 1, ev(unix.EPOLLIN|unix.EPOLLEXCLUSIVE|unix.EPOLLONESHOT, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("exclusive|oneshot: %v", err)
	}
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 1, ev(unix.EPOLLIN|unix.EPOLLEXCLUSIVE, 0)))
	if err := ep.Ctl(e.ctx, unix.EPOLL_CTL_MOD, efd, 1, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("mod of exclusive: %v", err)
	}
	e.signal(efd)
	wait(t, ep, 4, 1)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_DEL, efd, 1, nil))
	wait(t, ep, 4, 0)
	if _, err := epoll.New(e.ctx, e.v, 0x1234); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad flags: %v", err)
	}
	if _, err := ep.ReadEvents(nil); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("maxevents 0: %v", err)
	}
}

func TestNestedAndOwnReadiness(t *testing.T) {
	e := newEnv(t)
	innerFD, inner := e.epoll()
	outerFD, outer := e.epoll()
	efd := e.eventfd()
	defer efd.DecRef(e.ctx)
	must(t, inner.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 3, ev(unix.EPOLLIN, 3)))
	must(t, outer.Ctl(e.ctx, unix.EPOLL_CTL_ADD, innerFD, 7, ev(unix.EPOLLIN, 7)))
	if outerFD.Readiness(waiter.EventIn) != 0 {
		t.Fatal("outer readable with nothing ready")
	}
	entry, ch := waiter.NewChannelEntry(waiter.EventIn)
	must(t, outerFD.EventRegister(entry))
	defer outerFD.EventUnregister(entry)
	e.signal(efd)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("outer epoll waiter not woken")
	}
	if outerFD.Readiness(waiter.EventIn) == 0 {
		t.Fatal("outer not readable")
	}
	if got := wait(t, outer, 4, 1); dataOf(got[0]) != 7 || got[0].Events != unix.EPOLLIN {
		t.Fatalf("outer event %+v", got[0])
	}
	if got := wait(t, inner, 4, 1); dataOf(got[0]) != 3 {
		t.Fatalf("inner event %+v", got[0])
	}
	e.drain(efd)
	wait(t, outer, 4, 0)
	// A loop is refused.
	if err := inner.Ctl(e.ctx, unix.EPOLL_CTL_ADD, outerFD, 8, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("loop: %v", err)
	}
}

func TestNestingDepthLimit(t *testing.T) {
	e := newEnv(t)
	// A chain of five epoll files is allowed, a sixth is not, whichever
	// end it is added at.
	fds := make([]*vfs.FileDescription, 7)
	eps := make([]*epoll.EventPoll, 7)
	for i := range fds {
		fds[i], eps[i] = e.epoll()
	}
	for i := 1; i < 5; i++ {
		must(t, eps[i].Ctl(e.ctx, unix.EPOLL_CTL_ADD, fds[i-1], int32(i), ev(unix.EPOLLIN, 0)))
	}
	if err := eps[5].Ctl(e.ctx, unix.EPOLL_CTL_ADD, fds[4], 5, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("sixth on top: %v", err)
	}
	if err := eps[0].Ctl(e.ctx, unix.EPOLL_CTL_ADD, fds[6], 6, ev(unix.EPOLLIN, 0)); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("sixth at the bottom: %v", err)
	}
	// Removing a link makes room again.
	must(t, eps[1].Ctl(e.ctx, unix.EPOLL_CTL_DEL, fds[0], 1, nil))
	must(t, eps[5].Ctl(e.ctx, unix.EPOLL_CTL_ADD, fds[4], 5, ev(unix.EPOLLIN, 0)))
}

func TestMaxEventsRotates(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	var files []*vfs.FileDescription
	for i := range 3 {
		f := e.eventfd()
		defer f.DecRef(e.ctx)
		files = append(files, f)
		must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, f, int32(i), ev(unix.EPOLLIN, uint64(i))))
		e.signal(f)
	}
	seen := map[uint64]int{}
	for range 3 {
		for _, x := range wait(t, ep, 2, 2) {
			seen[dataOf(x)]++
		}
	}
	// Six reports over three always-ready files: each reported twice.
	for i := range uint64(3) {
		if seen[i] != 2 {
			t.Fatalf("reports per file %v", seen)
		}
	}
}

func TestReleaseOfEpollLeavesFiles(t *testing.T) {
	e := newEnv(t)
	fd, err := epoll.New(e.ctx, e.v, unix.EPOLL_CLOEXEC)
	must(t, err)
	ep, _ := epoll.FromFile(fd)
	efd := e.eventfd()
	defer efd.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 1, ev(unix.EPOLLIN, 0)))
	fd.DecRef(e.ctx)
	// The eventfd's queue no longer holds the epoll's waiter: signalling
	// it must not touch the released epoll (would race/panic otherwise),
	// and a new epoll can watch it.
	e.signal(efd)
	_, ep2 := e.epoll()
	must(t, ep2.Ctl(e.ctx, unix.EPOLL_CTL_ADD, efd, 1, ev(unix.EPOLLIN, 0)))
	wait(t, ep2, 4, 1)
}
