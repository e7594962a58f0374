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
	tid := uint32(t.tid)
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
	if owner == t.tid {
		return false, owner, unix.EDEADLK
	}
	if t.k.TaskWithID(owner) == nil {
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
	w := &futexWaiter{key: key, bitset: ^uint32(0), pi: true, tid: t.tid, woken: make(chan struct{})}
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
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.woken:
		return nil
	default:
		b.remove(w)
	}
	if err == unix.ETIMEDOUT {
		return err
	}
	// Interrupted: the lock is retried once the signal is handled.
	return linux.ERESTARTNOINTR
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
	if cur&futexTIDMask != uint32(t.tid) {
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
