// Package waiter owns readiness notification between objects that can
// become ready (pipes, sockets, eventfds …) and whoever waits for them
// (poll/epoll, blocking syscalls): event masks with poll(2) bit values, wait
// queues of registered entries, and the Blocker through which the few
// operations that must block inside the Sentry (FIFO open, F_SETLKW) wait.
package waiter

import (
	"context"
	"sync"
)

// EventMask is a set of poll(2) events; bit values equal the kernel's.
type EventMask uint64

// Event bits (poll(2), epoll(7)).
const (
	EventIn     EventMask = 0x1    // POLLIN
	EventPri    EventMask = 0x2    // POLLPRI
	EventOut    EventMask = 0x4    // POLLOUT
	EventErr    EventMask = 0x8    // POLLERR
	EventHUp    EventMask = 0x10   // POLLHUP
	EventNVal   EventMask = 0x20   // POLLNVAL
	EventRdNorm EventMask = 0x40   // POLLRDNORM
	EventRdBand EventMask = 0x80   // POLLRDBAND
	EventWrNorm EventMask = 0x100  // POLLWRNORM
	EventWrBand EventMask = 0x200  // POLLWRBAND
	EventMsg    EventMask = 0x400  // POLLMSG
	EventRdHUp  EventMask = 0x2000 // POLLRDHUP

	// ReadableEvents and WritableEvents are what "readable"/"writable"
	// mean to select(2).
	ReadableEvents = EventIn | EventRdNorm
	WritableEvents = EventOut | EventWrNorm
	// AllEvents is every bit a waiter may ask for.
	AllEvents EventMask = 0x7fff_ffff
)

// EventMaskFromLinux converts a poll/epoll event word; unknown bits are kept
// so that epoll can report them back unchanged.
func EventMaskFromLinux(e uint32) EventMask { return EventMask(e) }

// ToLinux returns the poll/epoll event word.
func (m EventMask) ToLinux() uint32 { return uint32(m) }

// EventListener is called when an entry's events occur. Callbacks run with
// the queue's lock held for reading: they must not register or unregister
// entries on the same queue, and must be quick (wake someone up).
type EventListener interface {
	NotifyEvent(mask EventMask)
}

// Entry is one waiter's registration in a Queue. An Entry may be in at most
// one Queue at a time.
type Entry struct {
	// Mask is the set of events the entry wants to hear about. Errors and
	// hang-ups are always delivered.
	Mask     EventMask
	Listener EventListener

	q          *Queue
	prev, next *Entry
}

// Init sets the entry's listener and mask.
func (e *Entry) Init(l EventListener, mask EventMask) {
	e.Listener = l
	e.Mask = mask
}

// ChannelListener sends (without blocking) on a 1-buffered channel.
type ChannelListener chan struct{}

// NotifyEvent implements EventListener.
func (c ChannelListener) NotifyEvent(EventMask) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// FunctionListener adapts a function.
type FunctionListener func(EventMask)

// NotifyEvent implements EventListener.
func (f FunctionListener) NotifyEvent(m EventMask) { f(m) }

// NewChannelEntry returns an entry that signals the returned channel
// (buffer 1, so a notification between a check and a wait is not lost).
func NewChannelEntry(mask EventMask) (*Entry, <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return &Entry{Mask: mask, Listener: ChannelListener(ch)}, ch
}

// Queue is a list of waiting entries. The zero value is empty and ready.
type Queue struct {
	mu         sync.RWMutex
	head, tail *Entry
}

// EventRegister adds e to q. Registering an entry already in a queue panics:
// that is a bug in the caller, not bad input.
func (q *Queue) EventRegister(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.q != nil {
		panic("waiter: entry registered twice")
	}
	e.q = q
	e.prev, e.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = e
	} else {
		q.head = e
	}
	q.tail = e
}

// EventUnregister removes e from q; unregistering an entry that is not in q
// is a no-op, so cleanup paths may call it unconditionally.
func (q *Queue) EventUnregister(e *Entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.q != q {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.q, e.prev, e.next = nil, nil, nil
}

// alwaysDelivered are reported to every entry whatever its mask, as poll(2)
// reports POLLERR/POLLHUP unasked.
const alwaysDelivered = EventErr | EventHUp

// Notify calls every entry whose mask intersects mask.
func (q *Queue) Notify(mask EventMask) {
	q.mu.RLock()
	for e := q.head; e != nil; e = e.next {
		if m := mask & (e.Mask | alwaysDelivered); m != 0 {
			e.Listener.NotifyEvent(m)
		}
	}
	q.mu.RUnlock()
}

// Events returns the union of the masks of registered entries, so a
// producer can skip work nobody waits for.
func (q *Queue) Events() EventMask {
	q.mu.RLock()
	defer q.mu.RUnlock()
	var m EventMask
	for e := q.head; e != nil; e = e.next {
		m |= e.Mask
	}
	return m
}

// IsEmpty reports whether no entry is registered.
func (q *Queue) IsEmpty() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.head == nil
}

// Waitable is an object that can become ready.
type Waitable interface {
	// Readiness returns which events of mask are ready now.
	Readiness(mask EventMask) EventMask
	// EventRegister asks for e to be notified of future events.
	EventRegister(e *Entry) error
	// EventUnregister undoes EventRegister.
	EventUnregister(e *Entry)
}

// AlwaysReady is embedded by objects that are always readable and writable
// (regular files, /dev/null).
type AlwaysReady struct{}

// Readiness implements Waitable.
func (AlwaysReady) Readiness(mask EventMask) EventMask {
	return mask & (ReadableEvents | WritableEvents)
}

// EventRegister implements Waitable.
func (AlwaysReady) EventRegister(*Entry) error { return nil }

// EventUnregister implements Waitable.
func (AlwaysReady) EventUnregister(*Entry) {}

// Blocker is how an operation that must block inside the Sentry waits:
// Block returns nil once ch is ready, or an interrupt errno (ERESTARTSYS …)
// if the waiting task is interrupted first.
type Blocker interface {
	Block(ch <-chan struct{}) error
}

type blockerKeyType int

const blockerKey blockerKeyType = 0

// BlockerKey is the context.Value key a Task answers with its Blocker.
func BlockerKey() any { return blockerKey }

// ContextWithBlocker returns ctx carrying b, for code run outside a task.
func ContextWithBlocker(ctx context.Context, b Blocker) context.Context {
	return context.WithValue(ctx, blockerKey, b)
}

// uninterruptible blocks until ch is ready, for contexts without a task.
type uninterruptible struct{}

func (uninterruptible) Block(ch <-chan struct{}) error {
	<-ch
	return nil
}

// BlockerFromContext returns ctx's Blocker, or one that waits
// uninterruptibly when ctx has none (tests, boot).
func BlockerFromContext(ctx context.Context) Blocker {
	if b, ok := ctx.Value(blockerKey).(Blocker); ok && b != nil {
		return b
	}
	return uninterruptible{}
}

// ContextBlocker is a Blocker that gives up when ctx is done, returning err
// (e.g. ERESTARTSYS); useful for tests and goroutines without a task.
type ContextBlocker struct {
	Ctx context.Context
	Err error
}

// Block implements Blocker.
func (c ContextBlocker) Block(ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-c.Ctx.Done():
		return c.Err
	}
}
