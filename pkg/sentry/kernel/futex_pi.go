package kernel

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

// Priority-inheritance futexes (FUTEX_LOCK_PI, FUTEX_TRYLOCK_PI,
// FUTEX_UNLOCK_PI): the lock word holds the owner's TID, FUTEX_WAITERS
// when the kernel has waiters queued, FUTEX_OWNER_DIED after a robust
// owner died. The Sentry leaves scheduling to the host, so the priority
// boost itself has no meaning here; the ownership protocol is Linux's:
// unlock hands the lock directly to the first waiter.

// piAcquire tries to take the lock word at addr for the task under the
// bucket lock: it returns true if the task now owns it; otherwise it has
// set FUTEX_WAITERS (when wait) and returns the owner's TID.
func (t *Task) piAcquire(addr hostarch.Addr, b *futexBucket, key futexKey, wait bool) (bool, ThreadID, error) {
	return t.piAcquireFor(addr, b, key, t.vtid, wait)
}

// piAcquireFor is piAcquire on behalf of the thread owner (FUTEX_CMP_REQUEUE_PI
// takes the lock for the waiter it requeues).
func (t *Task) piAcquireFor(addr hostarch.Addr, b *futexBucket, key futexKey, forTID ThreadID, wait bool) (bool, ThreadID, error) {
	tid := uint32(forTID)
	waiters := false
	for w := b.head; w != nil; w = w.next {
		if w.key == key && w.pi {
			waiters = true
			break
		}
	}
	acquired := false
	old, err := t.mm.AtomicUpdateUint32(t, addr, func(old uint32) uint32 {
		acquired = false
		owner := old & futexTIDMask
		if owner == 0 {
			// Free, or its owner died (FUTEX_OWNER_DIED stays set for
			// the new owner to see).
			acquired = true
			nv := tid | old&futexOwnerDied
			if waiters {
				nv |= futexWaiters
			}
			return nv
		}
		if owner != tid && wait {
			return old | futexWaiters
		}
		return old
	})
	if err != nil {
		return false, 0, unix.EFAULT
	}
	if acquired {
		return true, 0, nil
	}
	owner := ThreadID(old & futexTIDMask)
	if owner == forTID {
		return false, owner, unix.EDEADLK
	}
	if t.tg.pidns.TaskWithID(owner) == nil {
		// The owner is gone without marking the lock (not robust): Linux
		// reports ESRCH rather than wait for ever.
		return false, owner, unix.ESRCH
	}
	return false, owner, nil
}

// FutexLockPI implements FUTEX_LOCK_PI (and, with try, FUTEX_TRYLOCK_PI):
// take the lock at addr, waiting until deadline (zero: none) for its
// owner to hand it over.
func (t *Task) FutexLockPI(addr hostarch.Addr, private, try bool, deadline time.Time) error {
	if addr%4 != 0 {
		return unix.EINVAL
	}
	key, err := t.futexKeyFor(addr, private)
	if err != nil {
		return err
	}
	b := t.k.futexes.bucket(key)
	b.mu.Lock()
	ok, _, err := t.piAcquire(addr, b, key, !try)
	if ok || err != nil {
		b.mu.Unlock()
		return err
	}
	if try {
		b.mu.Unlock()
		return unix.EAGAIN
	}
	w := &futexWaiter{key: key, bitset: ^uint32(0), pi: true, tid: t.vtid, woken: make(chan struct{})}
	b.push(w)
	b.mu.Unlock()

	if deadline.IsZero() {
		err = t.Block(w.woken)
	} else {
		_, err = t.BlockTimeout(w.woken, time.Until(deadline))
	}
	if err == nil {
		// UNLOCK_PI made us the owner before waking us.
		return nil
	}
	wb := lockWaiterBucket(w)
	defer wb.mu.Unlock()
	select {
	case <-w.woken:
		return nil
	default:
		wb.remove(w)
	}
	if err == unix.ETIMEDOUT {
		return err
	}
	// Interrupted: the lock is retried once the signal is handled.
	return linux.ERESTARTNOINTR
}

// FutexWaitRequeuePI implements FUTEX_WAIT_REQUEUE_PI: wait on the
// condition word at addr, if it still holds val, until
// FUTEX_CMP_REQUEUE_PI moves the task to the PI lock at addr2 and the
// task then owns that lock (nil), or deadline (zero: none) passes
// (ETIMEDOUT). Interrupted before the requeue, the call restarts; after
// it, it gives EAGAIN (the condition has changed), as Linux does.
func (t *Task) FutexWaitRequeuePI(addr, addr2 hostarch.Addr, private bool, val uint32, deadline time.Time) error {
	if addr%4 != 0 || addr2%4 != 0 {
		return unix.EINVAL
	}
	k1, err := t.futexKeyFor(addr, private)
	if err != nil {
		return err
	}
	k2, err := t.futexKeyFor(addr2, private)
	if err != nil {
		return err
	}
	if k1 == k2 {
		return unix.EINVAL
	}
	b := t.k.futexes.bucket(k1)
	w := &futexWaiter{key: k1, bitset: ^uint32(0), requeuePI: true, piKey: k2, tid: t.vtid, woken: make(chan struct{})}
	b.mu.Lock()
	cur, err := t.loadFutexWord(addr)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	if cur != val {
		b.mu.Unlock()
		return unix.EAGAIN
	}
	b.push(w)
	b.mu.Unlock()

	if deadline.IsZero() {
		err = t.Block(w.woken)
	} else {
		_, err = t.BlockTimeout(w.woken, time.Until(deadline))
	}
	if err == nil {
		// Woken only when made the lock's owner.
		return nil
	}
	wb := lockWaiterBucket(w)
	defer wb.mu.Unlock()
	select {
	case <-w.woken:
		return nil
	default:
	}
	requeued := w.pi
	wb.remove(w)
	switch {
	case err == unix.ETIMEDOUT:
		return err
	case requeued:
		return unix.EAGAIN
	default:
		return linux.ERESTARTNOINTR
	}
}

// FutexCmpRequeuePI implements FUTEX_CMP_REQUEUE_PI: if the word at addr
// holds val, take the PI lock at addr2 for the first FUTEX_WAIT_REQUEUE_PI
// waiter on addr and wake it if the lock is free, and move up to
// nRequeue other waiters to the lock's queue, where FUTEX_UNLOCK_PI hands
// them the lock in turn. It returns how many were woken or moved. Every
// waiter on addr must be waiting to be requeued to addr2 (else EINVAL).
func (t *Task) FutexCmpRequeuePI(addr, addr2 hostarch.Addr, private bool, nRequeue int, val uint32) (int, error) {
	if addr%4 != 0 || addr2%4 != 0 {
		return 0, unix.EINVAL
	}
	k1, err := t.futexKeyFor(addr, private)
	if err != nil {
		return 0, err
	}
	k2, err := t.futexKeyFor(addr2, private)
	if err != nil {
		return 0, err
	}
	if k1 == k2 {
		return 0, unix.EINVAL
	}
	b1, b2, unlock := t.k.futexes.lockBuckets(k1, k2)
	defer unlock()
	cur, err := t.loadFutexWord(addr)
	if err != nil {
		return 0, err
	}
	if cur != val {
		return 0, unix.EAGAIN
	}
	var waiters []*futexWaiter
	for w := b1.head; w != nil; w = w.next {
		if w.key != k1 {
			continue
		}
		if !w.requeuePI || w.piKey != k2 {
			return 0, unix.EINVAL
		}
		waiters = append(waiters, w)
	}
	if len(waiters) == 0 {
		return 0, nil
	}
	done := 0
	top := waiters[0]
	acquired, _, err := t.piAcquireFor(addr2, b2, k2, top.tid, len(waiters) > 1 && nRequeue > 0)
	if err != nil {
		return 0, err
	}
	if acquired {
		b1.remove(top)
		close(top.woken)
		done++
		waiters = waiters[1:]
	}
	moved := 0
	for _, w := range waiters {
		if moved == nRequeue {
			break
		}
		b1.remove(w)
		w.key, w.pi, w.requeuePI = k2, true, false
		b2.push(w)
		moved++
	}
	if moved > 0 {
		// The owner must unlock through the kernel to hand the lock on.
		if _, err := t.mm.AtomicUpdateUint32(t, addr2, func(old uint32) uint32 { return old | futexWaiters }); err != nil {
			return done + moved, unix.EFAULT
		}
	}
	return done + moved, nil
}

// FutexUnlockPI implements FUTEX_UNLOCK_PI: EPERM unless the task owns
// the lock; the first waiter, if any, becomes the owner.
func (t *Task) FutexUnlockPI(addr hostarch.Addr, private bool) error {
	if addr%4 != 0 {
		return unix.EINVAL
	}
	key, err := t.futexKeyFor(addr, private)
	if err != nil {
		return err
	}
	b := t.k.futexes.bucket(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, err := t.loadFutexWord(addr)
	if err != nil {
		return err
	}
	if cur&futexTIDMask != uint32(t.vtid) {
		return unix.EPERM
	}
	var next *futexWaiter
	more := false
	for w := b.head; w != nil; w = w.next {
		if w.key == key && w.pi {
			if next == nil {
				next = w
			} else {
				more = true
				break
			}
		}
	}
	nv := uint32(0)
	if next != nil {
		nv = uint32(next.tid)
		if more {
			nv |= futexWaiters
		}
	}
	if _, err := t.mm.AtomicUpdateUint32(t, addr, func(uint32) uint32 { return nv }); err != nil {
		return unix.EFAULT
	}
	if next != nil {
		b.remove(next)
		close(next.woken)
	}
	return nil
}
