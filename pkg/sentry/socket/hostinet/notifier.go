package hostinet

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// notifier turns readiness of host socket descriptors into notifications
// of their sockets' wait queues: one host epoll instance, edge-triggered,
// drained by one goroutine for the whole Sentry.
type notifier struct {
	epfd int
	file *os.File // epfd in the Go runtime's netpoller; never closed

	mu     sync.RWMutex
	queues map[int32]*waiter.Queue
}

var (
	theNotifier     *notifier
	theNotifierErr  error
	theNotifierOnce sync.Once
)

// hostNotifier returns the Sentry's notifier, starting it on first use.
func hostNotifier() (*notifier, error) {
	theNotifierOnce.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			theNotifierErr = fmt.Errorf("hostinet: epoll_create1: %w", err)
			return
		}
		n := &notifier{epfd: epfd, queues: make(map[int32]*waiter.Queue)}
		// The epoll descriptor is itself readable while events are
		// pending: parking on it in the Go runtime's netpoller wakes
		// the drain goroutine through the scheduler, far sooner than a
		// thread blocked in epoll_wait regains a P.
		if err := unix.SetNonblock(epfd, true); err != nil {
			unix.Close(epfd)
			theNotifierErr = fmt.Errorf("hostinet: epoll non-blocking: %w", err)
			return
		}
		f := os.NewFile(uintptr(epfd), "hostinet-epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			theNotifierErr = fmt.Errorf("hostinet: epoll in the netpoller: %w", err)
			return
		}
		n.file = f
		theNotifier = n
		go n.run(rc)
	})
	return theNotifier, theNotifierErr
}

// watchedEvents are the readiness changes a socket file reports.
const watchedEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLPRI | unix.EPOLLRDHUP | unix.EPOLLET

// add starts reporting fd's readiness changes to q.
func (n *notifier) add(fd int, q *waiter.Queue) error {
	n.mu.Lock()
	n.queues[int32(fd)] = q
	n.mu.Unlock()
	ev := unix.EpollEvent{Events: watchedEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(n.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		n.mu.Lock()
		delete(n.queues, int32(fd))
		n.mu.Unlock()
		return fmt.Errorf("hostinet: epoll_ctl add: %w", err)
	}
	return nil
}

// remove stops reporting fd; call it before closing fd, so that a reused
// descriptor number is never mistaken for the old socket.
func (n *notifier) remove(fd int) {
	// EPOLL_CTL_DEL failing means the descriptor was never added; the
	// map entry goes either way.
	_ = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	n.mu.Lock()
	delete(n.queues, int32(fd))
	n.mu.Unlock()
}

func (n *notifier) run(rc syscall.RawConn) {
	events := make([]unix.EpollEvent, 128)
	var failed error
	drain := func(uintptr) bool {
		for {
			k, err := unix.EpollWait(n.epfd, events, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				failed = err
				return true
			}
			if k == 0 {
				return false // park until the epoll descriptor is readable
			}
			n.mu.RLock()
			for _, ev := range events[:k] {
				if q := n.queues[ev.Fd]; q != nil {
					q.Notify(waiter.EventMaskFromLinux(ev.Events))
				}
			}
			n.mu.RUnlock()
		}
	}
	err := rc.Read(drain)
	if failed != nil {
		err = failed
	}
	log.Warningf("hostinet: epoll_wait: %v; host socket readiness is no longer reported", err)
}
