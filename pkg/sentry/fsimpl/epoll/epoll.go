// Package epoll owns epoll(7) instances: interest lists of (descriptor
// number, file) pairs, the ready list fed by waiter notifications,
// level-triggered, edge-triggered and one-shot reporting, nesting of epoll
// files with its loop and depth checks, and the readiness of the epoll file
// itself. ReadEvents never blocks: the syscall layer waits on the epoll
// file's own readiness, as for any other file.
package epoll

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// maxNests is EP_MAX_NESTS: the longest chain of epoll files inside epoll
// files is maxNests+1 files.
const maxNests = 4

// Flags of epoll_event.events that are not poll events.
const (
	epollExclusive = 1 << 28
	epollWakeup    = 1 << 29
	epollOneshot   = 1 << 30
	epollET        = 1 << 31
	controlFlags   = epollExclusive | epollWakeup | epollOneshot | epollET
)

// exclusiveAllowed are the bits EPOLLEXCLUSIVE may be combined with.
const exclusiveAllowed = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLERR | unix.EPOLLHUP | epollWakeup | epollET | epollExclusive

// nestMu serialises changes to which epoll files contain which (Linux's
// epmutex), so loop and depth checks see a stable graph.
var nestMu sync.Mutex

type key struct {
	file *vfs.FileDescription
	num  int32
}

// entry is one interest: a file, the events wanted, the user's data.
type entry struct {
	ep     *EventPoll
	key    key
	events uint32 // epoll_event.events, control flags included
	data   uint64
	wait   waiter.Entry
	cancel func() // the file's release hook

	// Guarded by ep.readyMu.
	onReady    bool
	disabled   bool // a one-shot entry that has fired
	removed    bool
	prev, next *entry
}

// NotifyEvent implements waiter.EventListener: the file may be ready.
func (e *entry) NotifyEvent(waiter.EventMask) {
	ep := e.ep
	ep.readyMu.Lock()
	queued := ep.enqueueLocked(e)
	ep.readyMu.Unlock()
	if queued {
		ep.queue.Notify(waiter.ReadableEvents)
	}
}

func (e *entry) pollMask() waiter.EventMask {
	return waiter.EventMaskFromLinux(e.events&^controlFlags) | waiter.EventErr | waiter.EventHUp
}

// EventPoll is an epoll instance.
type EventPoll struct {
	vfs.FileDescriptionDefaults
	// queue reports the epoll file's own readiness (readable when an
	// event is ready).
	queue waiter.Queue

	// mu guards interest.
	mu       sync.Mutex
	interest map[key]*entry

	// readyMu guards the ready list and the entries' list state. It is
	// taken from waiter callbacks, so nothing that registers waiters or
	// asks files for readiness happens while it is held.
	readyMu    sync.Mutex
	head, tail *entry

	// readMu serialises ReadEvents and Readiness, which reuse the
	// scratch slices so that a wait allocates nothing.
	readMu       sync.Mutex
	scratch      []*entry
	scratchReady []waiter.EventMask

	// parents counts, per epoll file, the interests it has in this one;
	// guarded by nestMu.
	parents map[*EventPoll]int
}

// New returns a new epoll file; flags may hold EPOLL_CLOEXEC (the caller
// applies it to the descriptor).
func New(ctx context.Context, v *vfs.VirtualFilesystem, flags int) (*vfs.FileDescription, error) {
	if flags&^unix.EPOLL_CLOEXEC != 0 {
		return nil, unix.EINVAL
	}
	ep := &EventPoll{interest: make(map[key]*entry)}
	vd := v.NewAnonVirtualDentry("[eventpoll]")
	defer vd.DecRef(ctx)
	return vfs.NewFileDescription(ep, unix.O_RDONLY, vd), nil
}

// FromFile returns the epoll instance behind fd, if it is one.
func FromFile(fd *vfs.FileDescription) (*EventPoll, bool) {
	ep, ok := fd.Impl().(*EventPoll)
	return ep, ok
}

func (ep *EventPoll) enqueueLocked(e *entry) bool {
	if e.onReady || e.disabled || e.removed {
		return false
	}
	e.onReady = true
	e.prev, e.next = ep.tail, nil
	if ep.tail != nil {
		ep.tail.next = e
	} else {
		ep.head = e
	}
	ep.tail = e
	return true
}

func (ep *EventPoll) dequeueLocked(e *entry) {
	if !e.onReady {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		ep.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		ep.tail = e.prev
	}
	e.prev, e.next, e.onReady = nil, nil, false
}

// Ctl is epoll_ctl(2): op is EPOLL_CTL_ADD, _MOD or _DEL for the file that
// descriptor num names; event is ignored for _DEL.
func (ep *EventPoll) Ctl(ctx context.Context, op int, file *vfs.FileDescription, num int32, event *unix.EpollEvent) error {
	if file.Impl() == vfs.FileDescriptionImpl(ep) {
		return unix.EINVAL
	}
	switch op {
	case unix.EPOLL_CTL_ADD:
		return ep.add(ctx, file, num, event)
	case unix.EPOLL_CTL_MOD:
		return ep.modify(file, num, event)
	case unix.EPOLL_CTL_DEL:
		return ep.remove(key{file, num})
	default:
		return unix.EINVAL
	}
}

func eventData(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func (ep *EventPoll) add(ctx context.Context, file *vfs.FileDescription, num int32, ev *unix.EpollEvent) error {
	target, nested := FromFile(file)
	if ev.Events&epollExclusive != 0 && (ev.Events&^exclusiveAllowed != 0 || nested) {
		return unix.EINVAL
	}
	k := key{file, num}
	if nested {
		nestMu.Lock()
		defer nestMu.Unlock()
		if err := ep.checkNestLocked(target); err != nil {
			return err
		}
	}
	ep.mu.Lock()
	if _, ok := ep.interest[k]; ok {
		ep.mu.Unlock()
		return unix.EEXIST
	}
	e := &entry{ep: ep, key: k, events: ev.Events, data: eventData(ev)}
	ep.interest[k] = e
	ep.mu.Unlock()
	if nested {
		if target.parents == nil {
			target.parents = make(map[*EventPoll]int)
		}
		target.parents[ep]++
	}
	e.wait.Init(e, e.pollMask())
	if err := file.EventRegister(&e.wait); err != nil {
		ep.mu.Lock()
		delete(ep.interest, k)
		ep.mu.Unlock()
		if nested {
			target.dropParentLocked(ep)
		}
		return err
	}
	e.cancel = file.OnRelease(func(ctx context.Context) { _ = ep.remove(k) })
	if file.Readiness(e.pollMask()) != 0 {
		e.NotifyEvent(0)
	}
	return nil
}

func (t *EventPoll) dropParentLocked(ep *EventPoll) {
	if t.parents[ep]--; t.parents[ep] <= 0 {
		delete(t.parents, ep)
	}
}

// checkNestLocked refuses to put target in ep if that makes a loop or a
// chain of more than maxNests+1 epoll files.
func (ep *EventPoll) checkNestLocked(target *EventPoll) error {
	if target.reaches(ep) {
		return unix.ELOOP
	}
	if ep.heightAbove()+1+target.heightBelow() > maxNests+1 {
		return unix.ELOOP
	}
	return nil
}

// children returns the epoll files ep has an interest in.
func (ep *EventPoll) children() []*EventPoll {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	var out []*EventPoll
	for k := range ep.interest {
		if c, ok := FromFile(k.file); ok {
			out = append(out, c)
		}
	}
	return out
}

// reaches reports whether x is ep or is inside ep, at any depth.
func (ep *EventPoll) reaches(x *EventPoll) bool {
	if ep == x {
		return true
	}
	for _, c := range ep.children() {
		if c.reaches(x) {
			return true
		}
	}
	return false
}

// heightBelow is the number of epoll files on the longest chain from ep
// down, ep included.
func (ep *EventPoll) heightBelow() int {
	h := 0
	for _, c := range ep.children() {
		h = max(h, c.heightBelow())
	}
	return h + 1
}

// heightAbove is the number of epoll files on the longest chain of files
// containing ep, ep excluded.
func (ep *EventPoll) heightAbove() int {
	h := 0
	for p := range ep.parents {
		h = max(h, p.heightAbove()+1)
	}
	return h
}

func (ep *EventPoll) modify(file *vfs.FileDescription, num int32, ev *unix.EpollEvent) error {
	if ev.Events&epollExclusive != 0 {
		return unix.EINVAL
	}
	ep.mu.Lock()
	e, ok := ep.interest[key{file, num}]
	ep.mu.Unlock()
	if !ok {
		return unix.ENOENT
	}
	if e.events&epollExclusive != 0 {
		return unix.EINVAL
	}
	// Re-register so the waiter's mask changes; rearms a one-shot entry.
	file.EventUnregister(&e.wait)
	ep.readyMu.Lock()
	e.events = ev.Events
	e.data = eventData(ev)
	e.disabled = false
	ep.dequeueLocked(e)
	ep.readyMu.Unlock()
	e.wait.Init(e, e.pollMask())
	if err := file.EventRegister(&e.wait); err != nil {
		return err
	}
	if file.Readiness(e.pollMask()) != 0 {
		e.NotifyEvent(0)
	}
	return nil
}

func (ep *EventPoll) remove(k key) error {
	ep.mu.Lock()
	e, ok := ep.interest[k]
	if ok {
		delete(ep.interest, k)
	}
	ep.mu.Unlock()
	if !ok {
		return unix.ENOENT
	}
	ep.detach(e)
	return nil
}

// detach undoes what add did for e, once e is out of the interest map.
func (ep *EventPoll) detach(e *entry) {
	e.key.file.EventUnregister(&e.wait)
	if e.cancel != nil {
		e.cancel()
	}
	ep.readyMu.Lock()
	e.removed = true
	ep.dequeueLocked(e)
	ep.readyMu.Unlock()
	if t, ok := FromFile(e.key.file); ok {
		nestMu.Lock()
		t.dropParentLocked(ep)
		nestMu.Unlock()
	}
}

// Release implements vfs.FileDescriptionImpl: the epoll file leaves every
// file it watched.
func (ep *EventPoll) Release(context.Context) {
	ep.mu.Lock()
	es := make([]*entry, 0, len(ep.interest))
	for k, e := range ep.interest {
		es = append(es, e)
		delete(ep.interest, k)
	}
	ep.mu.Unlock()
	for _, e := range es {
		ep.detach(e)
	}
}

// takeReady empties the ready list into ep.scratch. readMu held.
func (ep *EventPoll) takeReady() []*entry {
	ep.readyMu.Lock()
	defer ep.readyMu.Unlock()
	es := ep.scratch[:0]
	for e := ep.head; e != nil; {
		next := e.next
		e.prev, e.next, e.onReady = nil, nil, false
		es = append(es, e)
		e = next
	}
	ep.head, ep.tail = nil, nil
	ep.scratch = es
	return es
}

// ReadEvents is epoll_wait(2) without the wait: it fills events with up to
// len(events) ready events and returns how many, or EAGAIN when none is
// ready (the caller then waits for the epoll file to become readable).
func (ep *EventPoll) ReadEvents(events []unix.EpollEvent) (int, error) {
	if len(events) == 0 {
		return 0, unix.EINVAL
	}
	ep.readMu.Lock()
	defer ep.readMu.Unlock()
	es := ep.takeReady()
	defer clear(es) // drop pointers to entries that may be removed
	if len(es) == 0 {
		return 0, unix.EAGAIN
	}
	// Ask the files without the ready lock (they may notify meanwhile).
	ready := ep.scratchReady[:0]
	for range es {
		ready = append(ready, 0)
	}
	ep.scratchReady = ready
	for i, e := range es {
		ready[i] = e.key.file.Readiness(e.pollMask())
	}
	n := 0
	// Entries that did not fit are queued first, those reported and
	// still level-triggered ready after them (collected in es[:again]),
	// so that every ready file gets its turn.
	again := 0
	ep.readyMu.Lock()
	for i, e := range es {
		if e.removed || e.disabled {
			continue
		}
		r := ready[i]
		if r == 0 {
			continue // a stale notification
		}
		if n == len(events) {
			ep.enqueueLocked(e)
			continue
		}
		d := e.data
		events[n] = unix.EpollEvent{Events: r.ToLinux(), Fd: int32(uint32(d)), Pad: int32(uint32(d >> 32))}
		n++
		switch {
		case e.events&epollOneshot != 0:
			e.disabled = true
		case e.events&epollET != 0:
			// Reported once per notification.
		default:
			es[again] = e
			again++
		}
	}
	for _, e := range es[:again] {
		ep.enqueueLocked(e)
	}
	ep.readyMu.Unlock()
	if n == 0 {
		return 0, unix.EAGAIN
	}
	return n, nil
}

// Readiness implements waiter.Waitable: readable when ReadEvents would
// return something.
func (ep *EventPoll) Readiness(mask waiter.EventMask) waiter.EventMask {
	if mask&waiter.ReadableEvents == 0 {
		return 0
	}
	ep.readMu.Lock()
	defer ep.readMu.Unlock()
	ep.readyMu.Lock()
	es := ep.scratch[:0]
	for e := ep.head; e != nil; e = e.next {
		es = append(es, e)
	}
	ep.scratch = es
	ep.readyMu.Unlock()
	defer clear(es)
	for _, e := range es {
		if e.key.file.Readiness(e.pollMask()) != 0 {
			return mask & waiter.ReadableEvents
		}
	}
	return 0
}

// EventRegister implements waiter.Waitable.
func (ep *EventPoll) EventRegister(e *waiter.Entry) error {
	ep.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (ep *EventPoll) EventUnregister(e *waiter.Entry) { ep.queue.EventUnregister(e) }

var _ vfs.FileDescriptionImpl = (*EventPoll)(nil)
