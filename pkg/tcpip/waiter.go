package tcpip

import "sync"

// EventMask is a set of readiness events; the bits equal poll(2)'s.
type EventMask uint32

// Readiness events.
const (
	EventIn  EventMask = 0x01 // POLLIN
	EventPri EventMask = 0x02 // POLLPRI
	EventOut EventMask = 0x04 // POLLOUT
	EventErr EventMask = 0x08 // POLLERR
	EventHUp EventMask = 0x10 // POLLHUP
	// EventRdHUp is POLLRDHUP: the peer closed its sending side.
	EventRdHUp EventMask = 0x2000
)

// WaitEntry is one registration on a WaitQueue. Callback runs, with no
// stack lock held, whenever an event in its mask is signalled.
type WaitEntry struct {
	Callback func(EventMask)
	mask     EventMask
	next     *WaitEntry
	prev     *WaitEntry
}

// NewChannelEntry returns an entry whose callback does a non-blocking send
// on the returned channel: handy for tests and simple blocking callers.
func NewChannelEntry() (*WaitEntry, chan struct{}) {
	ch := make(chan struct{}, 1)
	return &WaitEntry{Callback: func(EventMask) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}}, ch
}

// WaitQueue is the notification point of an endpoint. The Sentry adapts it
// to its own waiter machinery by registering an entry per waiter.
type WaitQueue struct {
	mu   sync.Mutex
	head *WaitEntry
}

// EventRegister adds e, interested in mask.
func (q *WaitQueue) EventRegister(e *WaitEntry, mask EventMask) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e.mask = mask
	e.prev = nil
	e.next = q.head
	if q.head != nil {
		q.head.prev = e
	}
	q.head = e
}

// EventUnregister removes e; it is a no-op if e is not registered.
func (q *WaitQueue) EventUnregister(e *WaitEntry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.prev == nil && q.head != e {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.next, e.prev = nil, nil
}

// Notify calls the callback of every entry interested in any of mask.
// Callbacks run with the queue unlocked, so they may register or unregister.
func (q *WaitQueue) Notify(mask EventMask) {
	if q == nil || mask == 0 {
		return
	}
	q.mu.Lock()
	var fire []*WaitEntry
	var small [4]*WaitEntry
	fire = small[:0]
	for e := q.head; e != nil; e = e.next {
		if e.mask&mask != 0 {
			fire = append(fire, e)
		}
	}
	q.mu.Unlock()
	for _, e := range fire {
		if e.Callback != nil {
			e.Callback(mask & e.mask)
		}
	}
}
