package epoll_test

import (
	"sync"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/fsimpl/host"
	"carapace.dev/carapace/pkg/sentry/fsimpl/timerfd"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// flagFile is a file whose readiness the test sets, to reach events no
// in-tree file produces yet (EPOLLPRI, EPOLLRDHUP).
type flagFile struct {
	vfs.FileDescriptionDefaults
	q    waiter.Queue
	mu   sync.Mutex
	mask waiter.EventMask
}

func (f *flagFile) set(m waiter.EventMask) {
	f.mu.Lock()
	f.mask = m
	f.mu.Unlock()
	f.q.Notify(m)
}

func (f *flagFile) Readiness(m waiter.EventMask) waiter.EventMask {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mask & m
}
func (f *flagFile) EventRegister(e *waiter.Entry) error { f.q.EventRegister(e); return nil }
func (f *flagFile) EventUnregister(e *waiter.Entry)     { f.q.EventUnregister(e) }

func TestPriAndRdHupPassThrough(t *testing.T) {
	e := newEnv(t)
	_, ep := e.epoll()
	ff := &flagFile{}
	vd := e.v.NewAnonVirtualDentry("[test]")
	fd := vfs.NewFileDescription(ff, unix.O_RDWR, vd)
	vd.DecRef(e.ctx)
	defer fd.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, fd, 1, ev(unix.EPOLLPRI|unix.EPOLLRDHUP, 1)))
	wait(t, ep, 4, 0)
	ff.set(waiter.EventMaskFromLinux(unix.EPOLLIN)) // not asked for
	wait(t, ep, 4, 0)
	ff.set(waiter.EventMaskFromLinux(unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP))
	if got := wait(t, ep, 4, 1); got[0].Events != unix.EPOLLPRI|unix.EPOLLRDHUP {
		t.Fatalf("events %#x", got[0].Events)
	}
}

func TestHostPipeAndTimerfd(t *testing.T) {
	e := newEnv(t)
	epfd, ep := e.epoll()
	hfs := host.NewFilesystem(e.v)
	defer hfs.Release(e.ctx)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	r, err := hfs.ImportFD(e.ctx, p[0], host.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.DecRef(e.ctx)
	clock, _ := timerfd.HostClock(unix.CLOCK_MONOTONIC)
	tfd, err := timerfd.New(e.ctx, e.v, clock, unix.TFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer tfd.DecRef(e.ctx)
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, r, 3, ev(unix.EPOLLIN, 3)))
	must(t, ep.Ctl(e.ctx, unix.EPOLL_CTL_ADD, tfd, 4, ev(unix.EPOLLIN, 4)))
	entry, ch := waiter.NewChannelEntry(waiter.EventIn)
	must(t, epfd.EventRegister(entry))
	defer epfd.EventUnregister(entry)
	// Wait the way the syscall layer does, for both sources in turn.
	waitFor := func(data uint64) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			evs := make([]unix.EpollEvent, 4)
			if n, err := ep.ReadEvents(evs); err == nil {
				for _, x := range evs[:n] {
					if dataOf(x) == data {
						return
					}
				}
			}
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("no event for %d", data)
			}
		}
	}
	go unix.Write(p[1], []byte("z"))
	waitFor(3)
	tf, _ := timerfd.FromFile(tfd)
	tf.SetTime(0, timerfd.Spec{Value: time.Millisecond})
	waitFor(4)
}
