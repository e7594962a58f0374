package kernel

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"golang.org/x/sys/unix"
)

func TestRobustListMarksOwnerDied(t *testing.T) {
	task := newSignalTask(t)
	base, err := task.mm.MMap(task, memmap.MMapOpts{
		Length: hostarch.PageSize, Private: true, Perms: hostarch.ReadWrite, MaxPerms: hostarch.AnyAccess,
	})
	if err != nil {
		t.Fatal(err)
	}
	head, held, other, pending := base, base+64, base+128, base+192
	const off = 16 // futex_offset: the lock word sits 16 bytes past each entry
	put64 := func(a hostarch.Addr, v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		task.CopyOut(a, b[:])
	}
	put32 := func(a hostarch.Addr, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		task.CopyOut(a, b[:])
	}
	get32 := func(a hostarch.Addr) uint32 {
		var b [4]byte
		task.CopyIn(a, b[:])
		return binary.LittleEndian.Uint32(b[:])
	}
	tid := uint32(task.tid)
	// head -> held -> other -> head; pending names a lock being taken.
	put64(head, uint64(held))
	put64(head+8, off)
	put64(head+16, uint64(pending))
	put64(held, uint64(other))
	put64(other, uint64(head))
	put32(held+off, tid|futexWaiters)
	put32(other+off, 4242) // someone else's lock
	put32(pending+off, tid)

	// A waiter on the held lock is woken by the death.
	done := make(chan error, 1)
	go func() { done <- task.FutexWait(held+off, false, tid|futexWaiters, ^uint32(0), -1) }()
	waitQueued := func() bool {
		key, _ := task.futexKeyFor(held+off, false)
		b := task.k.futexes.bucket(key)
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.head != nil
	}
	for !waitQueued() {
		select {
		case err := <-done:
			t.Fatalf("wait ended early: %v", err)
		default:
		}
	}
	task.robustList = head
	task.exitRobustList()
	if got := get32(held + off); got != futexWaiters|futexOwnerDied {
		t.Fatalf("held lock word %#x", got)
	}
	if got := get32(other + off); got != 4242 {
		t.Fatalf("another owner's lock changed: %#x", got)
	}
	if got := get32(pending + off); got != futexOwnerDied {
		t.Fatalf("pending lock word %#x", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	// A list that loops forever is cut off, not followed for ever.
	put64(held, uint64(held))
	task.robustList = head
	task.exitRobustList()
}

// requeuePIEnv is a task and helpers for the REQUEUE_PI tests: sibling
// threads are bare tasks sharing its address space, enough for the
// futex code (each has its own TID and wakeup channel).
type requeuePIEnv struct {
	t     *testing.T
	task  *Task
	cond  hostarch.Addr
	lock  hostarch.Addr
	queue func(a hostarch.Addr) int
}

func newRequeuePIEnv(t *testing.T) *requeuePIEnv {
	task := newSignalTask(t)
	base, err := task.mm.MMap(task, memmap.MMapOpts{
		Length: hostarch.PageSize, Private: true, Perms: hostarch.ReadWrite, MaxPerms: hostarch.AnyAccess,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &requeuePIEnv{t: t, task: task, cond: base, lock: base + 64}
	e.queue = func(a hostarch.Addr) int {
		key, _ := task.futexKeyFor(a, true)
		b := task.k.futexes.bucket(key)
		b.mu.Lock()
		defer b.mu.Unlock()
		n := 0
		for w := b.head; w != nil; w = w.next {
			if w.key == key {
				n++
			}
		}
		return n
	}
	return e
}

func (e *requeuePIEnv) sibling(tid ThreadID) *Task {
	return &Task{k: e.task.k, tg: e.task.tg, tid: tid, vtid: tid, mm: e.task.mm, interruptCh: make(chan struct{}, 1)}
}

func (e *requeuePIEnv) put(a hostarch.Addr, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	e.task.CopyOut(a, b[:])
}

func (e *requeuePIEnv) get(a hostarch.Addr) uint32 {
	var b [4]byte
	e.task.CopyIn(a, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// waitQueued waits until n waiters are queued on a.
func (e *requeuePIEnv) waitQueued(a hostarch.Addr, n int, done chan error) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.queue(a) != n {
		select {
		case err := <-done:
			e.t.Fatalf("a waiter returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d waiters queued, want %d", e.queue(a), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Condition-variable waiters moved to a held PI lock get it in turn as
// each owner unlocks.
func TestRequeuePIToHeldLock(t *testing.T) {
	e := newRequeuePIEnv(t)
	owner := uint32(e.task.tid)
	e.put(e.lock, owner)
	w1, w2 := e.sibling(1001), e.sibling(1002)
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { done1 <- w1.FutexWaitRequeuePI(e.cond, e.lock, true, 0, time.Time{}) }()
	e.waitQueued(e.cond, 1, done1)
	go func() { done2 <- w2.FutexWaitRequeuePI(e.cond, e.lock, true, 0, time.Time{}) }()
	e.waitQueued(e.cond, 2, done2)

	// Neither plain wakes nor plain requeues may touch them.
	if n, err := e.task.FutexWake(e.cond, true, 10, ^uint32(0)); err != nil || n != 0 {
		t.Fatalf("FUTEX_WAKE of requeue-PI waiters = %d, %v; want 0", n, err)
	}
	if _, err := e.task.FutexRequeue(e.cond, e.lock+64, true, 1, 1, false, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("FUTEX_REQUEUE of requeue-PI waiters: %v, want EINVAL", err)
	}
	if _, err := e.task.FutexCmpRequeuePI(e.cond, e.lock, true, 10, 1); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("CMP_REQUEUE_PI with a changed word: %v, want EAGAIN", err)
	}
	if _, err := e.task.FutexCmpRequeuePI(e.cond, e.cond, true, 10, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("CMP_REQUEUE_PI onto itself: %v, want EINVAL", err)
	}
	if n, err := e.task.FutexCmpRequeuePI(e.cond, e.lock, true, 10, 0); err != nil || n != 2 {
		t.Fatalf("CMP_REQUEUE_PI = %d, %v; want 2 moved", n, err)
	}
	if e.queue(e.cond) != 0 || e.queue(e.lock) != 2 {
		t.Fatalf("after requeue: %d on the condition, %d on the lock", e.queue(e.cond), e.queue(e.lock))
	}
	if got := e.get(e.lock); got != owner|futexWaiters {
		t.Fatalf("lock word %#x, want owner|FUTEX_WAITERS", got)
	}
	if err := e.task.FutexUnlockPI(e.lock, true); err != nil {
		t.Fatal(err)
	}
	if err := <-done1; err != nil {
		t.Fatalf("first waiter: %v", err)
	}
	if got := e.get(e.lock); got != 1001|futexWaiters {
		t.Fatalf("lock word %#x after the first handover, want 1001|FUTEX_WAITERS", got)
	}
	if err := w1.FutexUnlockPI(e.lock, true); err != nil {
		t.Fatal(err)
	}
	if err := <-done2; err != nil {
		t.Fatalf("second waiter: %v", err)
	}
	if got := e.get(e.lock); got != 1002 {
		t.Fatalf("lock word %#x after the second handover, want 1002", got)
	}
}

// A free lock is taken for the first waiter, which wakes owning it; a
// timed-out waiter leaves no trace.
func TestRequeuePIToFreeLockAndTimeout(t *testing.T) {
	e := newRequeuePIEnv(t)
	w := e.sibling(1003)
	e.put(e.cond, 7)
	done := make(chan error, 1)
	go func() { done <- w.FutexWaitRequeuePI(e.cond, e.lock, true, 7, time.Time{}) }()
	e.waitQueued(e.cond, 1, done)
	if n, err := e.task.FutexCmpRequeuePI(e.cond, e.lock, true, 0, 7); err != nil || n != 1 {
		t.Fatalf("CMP_REQUEUE_PI to a free lock = %d, %v; want 1 woken", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if got := e.get(e.lock); got != 1003 {
		t.Fatalf("lock word %#x, want the waiter's TID", got)
	}
	if err := w.FutexWaitRequeuePI(e.cond, e.lock, true, 0, time.Time{}); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("wait with a stale value: %v, want EAGAIN", err)
	}
	if err := w.FutexWaitRequeuePI(e.cond, e.lock, true, 7, time.Now().Add(10*time.Millisecond)); !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("timed wait: %v, want ETIMEDOUT", err)
	}
	if e.queue(e.cond) != 0 {
		t.Fatal("the timed-out waiter is still queued")
	}
}

// A waiter moved by FUTEX_REQUEUE and then timing out is removed from
// the queue it was moved to.
func TestRequeuedWaiterTimesOutCleanly(t *testing.T) {
	e := newRequeuePIEnv(t)
	other := e.lock + 128
	done := make(chan error, 1)
	go func() { done <- e.task.FutexWait(e.cond, true, 0, ^uint32(0), 200*time.Millisecond) }()
	e.waitQueued(e.cond, 1, done)
	if n, err := e.task.FutexRequeue(e.cond, other, true, 0, 1, false, 0); err != nil || n != 1 {
		t.Fatalf("FUTEX_REQUEUE = %d, %v", n, err)
	}
	if err := <-done; !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("requeued wait: %v, want ETIMEDOUT", err)
	}
	if e.queue(e.cond) != 0 || e.queue(other) != 0 {
		t.Fatalf("queues after the timeout: %d and %d", e.queue(e.cond), e.queue(other))
	}
}

// A robust PI lock whose owner dies goes to its first waiter, marked
// FUTEX_OWNER_DIED, rather than leaving the waiter asleep for ever.
func TestRobustPIDeathHandsLockToWaiter(t *testing.T) {
	e := newRequeuePIEnv(t)
	head := e.lock + 256
	entry := e.lock + 512
	const off = 16
	put64 := func(a hostarch.Addr, v uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		e.task.CopyOut(a, b[:])
	}
	put64(head, uint64(entry)|1) // the low bit marks a PI lock
	put64(head+8, off)
	put64(head+16, 0)
	put64(entry, uint64(head))
	word := entry + off
	e.put(word, uint32(e.task.tid))
	w := e.sibling(1004)
	done := make(chan error, 1)
	go func() { done <- w.FutexLockPI(word, false, false, time.Time{}) }()
	e.waitQueued(word, 1, done)
	if got := e.get(word); got != uint32(e.task.tid)|futexWaiters {
		t.Fatalf("lock word %#x while waited for, want owner|FUTEX_WAITERS", got)
	}
	e.task.robustList = head
	e.task.exitRobustList()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter was not handed the dead owner's lock")
	}
	if got := e.get(word); got != 1004|futexOwnerDied {
		t.Fatalf("lock word %#x, want the waiter's TID|FUTEX_OWNER_DIED", got)
	}
}
