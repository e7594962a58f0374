package host

import (
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// notifier turns host readiness into waiter notifications: one host epoll
// instance, edge-triggered, watched by one goroutine that calls Notify on
// the queue of the file that became ready. Waiters re-check Readiness after
// registering, so edges are enough.
type notifier struct {
	once sync.Once
	err  error
	epfd int

	mu     sync.RWMutex
	queues map[int32]*waiter.Queue
}

var hostNotifier notifier

const watchedEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLPRI | unix.EPOLLERR | unix.EPOLLHUP | unix.EPOLLRDHUP

func (n *notifier) start() error {
	n.once.Do(func() {
		n.epfd, n.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if n.err != nil {
			n.err = fmt.Errorf("host: creating notifier epoll: %w", n.err)
			return
		}
		n.queues = make(map[int32]*waiter.Queue)
		go n.loop()
	})
	return n.err
}

// add watches fd, notifying q. Files epoll cannot watch (regular files,
// /dev/null) return EPERM: they are always ready.
func (n *notifier) add(fd int32, q *waiter.Queue) error {
	if err := n.start(); err != nil {
		return err
	}
	n.mu.Lock()
	n.queues[fd] = q
	n.mu.Unlock()
	ev := unix.EpollEvent{Events: watchedEvents | unix.EPOLLET, Fd: fd}
	if err := unix.EpollCtl(n.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		n.mu.Lock()
		delete(n.queues, fd)
		n.mu.Unlock()
		return err
	}
	return nil
}

// remove stops watching fd; call before closing it.
func (n *notifier) remove(fd int32) {
	n.mu.Lock()
	delete(n.queues, fd)
	n.mu.Unlock()
	_ = unix.EpollCtl(n.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
}

func (n *notifier) loop() {
	events := make([]unix.EpollEvent, 64)
	for {
		k, err := unix.EpollWait(n.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			panic(fmt.Sprintf("host: notifier epoll_wait: %v", err))
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
