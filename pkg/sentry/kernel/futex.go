package kernel

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// futexKey names a futex word: a private futex (FUTEX_PRIVATE_FLAG, or
// any futex in private memory) by address space and address; a shared
// one in a MAP_SHARED mapping by the mapped object and the offset in it,
// so that processes sharing the memory (after fork, or mapping the same
// file, memfd or shm segment) meet on it.
type futexKey struct {
	mm       *mm.MemoryManager
	addr     hostarch.Addr
	mappable memmap.Mappable
	off      uint64
}

// futexKeyFor returns the key of the word at addr.
func (t *Task) futexKeyFor(addr hostarch.Addr, private bool) (futexKey, error) {
	if private {
		return futexKey{mm: t.mm, addr: addr}, nil
	}
	m, off, shared, err := t.mm.SharedMemoryAt(addr)
	if err != nil {
		return futexKey{}, err
	}
	if !shared {
		return futexKey{mm: t.mm, addr: addr}, nil
	}
	return futexKey{mappable: m, off: off}, nil
}

type futexWaiter struct {
	key    futexKey
	bitset uint32
	// pi marks a FUTEX_LOCK_PI waiter, tid its thread: UNLOCK_PI hands
	// the lock to the first one.
	pi  bool
	tid ThreadID
	// requeuePI marks a FUTEX_WAIT_REQUEUE_PI waiter: only
	// FUTEX_CMP_REQUEUE_PI to the PI lock piKey may move it (then it
	// becomes a pi waiter there).
	requeuePI bool
	piKey     futexKey
	woken     chan struct{}
	// bucket is where the waiter is queued: requeueing moves it, under
	// both buckets' locks.
	bucket atomic.Pointer[futexBucket]
	next   *futexWaiter
	prev   *futexWaiter
}

// futexBucket is one shard of the futex table: a lock and the waiters
// that hash to it, in FIFO order.
type futexBucket struct {
	mu         sync.Mutex
	head, tail *futexWaiter
}

const futexBuckets = 64

// futexTable is the kernel's futex hash table.
type futexTable struct {
	buckets [futexBuckets]futexBucket
}

func (ft *futexTable) bucket(k futexKey) *futexBucket {
	h := (uint64(k.addr) | k.off) >> 2
	h ^= h >> 17
	return &ft.buckets[h%futexBuckets]
}

func (b *futexBucket) push(w *futexWaiter) {
	w.bucket.Store(b)
	w.prev = b.tail
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
}

func (b *futexBucket) remove(w *futexWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.next, w.prev = nil, nil
}

// lockWaiterBucket locks and returns the bucket w is queued in (or was
// last queued in), following requeues that move it meanwhile.
func lockWaiterBucket(w *futexWaiter) *futexBucket {
	for {
		b := w.bucket.Load()
		b.mu.Lock()
		if w.bucket.Load() == b {
			return b
		}
		b.mu.Unlock()
	}
}

// lockBuckets locks the buckets of two keys in address order and returns
// the function that unlocks them.
func (ft *futexTable) lockBuckets(k1, k2 futexKey) (b1, b2 *futexBucket, unlock func()) {
	b1, b2 = ft.bucket(k1), ft.bucket(k2)
	first, second := b1, b2
	if uintptrOf(b2) < uintptrOf(b1) {
		first, second = b2, b1
	}
	first.mu.Lock()
	if second != first {
		second.mu.Lock()
	}
	return b1, b2, func() {
		if second != first {
			second.mu.Unlock()
		}
		first.mu.Unlock()
	}
}

// loadFutexWord reads the aligned 32-bit word at addr.
func (t *Task) loadFutexWord(addr hostarch.Addr) (uint32, error) {
	var b [4]byte
	if _, err := t.mm.CopyIn(t, addr, b[:], usermem.IOOpts{}); err != nil {
		return 0, unix.EFAULT
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// FutexWait implements FUTEX_WAIT(_BITSET): if the word at addr still
// holds val, sleep until woken (nil), the timeout passes (ETIMEDOUT;
// timeout < 0 means none), or a signal arrives (ERESTARTSYS; the caller
// turns that into a restart with the time left for a timed wait). EAGAIN
// if the word differs.
func (t *Task) FutexWait(addr hostarch.Addr, private bool, val, bitset uint32, timeout time.Duration) error {
	if addr%4 != 0 {
		return unix.EINVAL
	}
	if bitset == 0 {
		return unix.EINVAL
	}
	key, err := t.futexKeyFor(addr, private)
	if err != nil {
		return err
	}
	b := t.k.futexes.bucket(key)
	w := &futexWaiter{key: key, bitset: bitset, woken: make(chan struct{})}
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

	if timeout < 0 {
		err = t.Block(w.woken)
	} else {
		_, err = t.BlockTimeout(w.woken, timeout)
	}
	if err == nil {
		return nil
	}
	// A FUTEX_REQUEUE may have moved the waiter to another bucket.
	wb := lockWaiterBucket(w)
	select {
	case <-w.woken:
		// Woken after all, racing with the interruption: report the
		// wake so it is not lost.
		err = nil
	default:
		wb.remove(w)
	}
	wb.mu.Unlock()
	return err
}

// FutexWake implements FUTEX_WAKE(_BITSET): wake up to n waiters on addr
// whose bitset intersects bitset; returns how many.
func (t *Task) FutexWake(addr hostarch.Addr, private bool, n int, bitset uint32) (int, error) {
	if addr%4 != 0 {
		return 0, unix.EINVAL
	}
	if bitset == 0 {
		return 0, unix.EINVAL
	}
	key, err := t.futexKeyFor(addr, private)
	if err != nil {
		return 0, err
	}
	return t.k.futexes.wake(key, n, bitset), nil
}

func (ft *futexTable) wake(key futexKey, n int, bitset uint32) int {
	b := ft.bucket(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	woken := 0
	for w := b.head; w != nil && woken < n; {
		next := w.next
		if w.key == key && w.bitset&bitset != 0 && !w.pi && !w.requeuePI {
			b.remove(w)
			close(w.woken)
			woken++
		}
		w = next
	}
	return woken
}

// FutexRequeue implements FUTEX_REQUEUE and, with check, FUTEX_CMP_REQUEUE:
// wake up to nWake waiters on addr and move up to nRequeue others to
// addr2. It returns the number woken plus requeued.
func (t *Task) FutexRequeue(addr, addr2 hostarch.Addr, private bool, nWake, nRequeue int, check bool, val uint32) (int, error) {
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
	b1, b2, unlock := t.k.futexes.lockBuckets(k1, k2)
	defer unlock()
	// Waiters for FUTEX_CMP_REQUEUE_PI may not be requeued or woken
	// otherwise (Linux: EINVAL).
	for w := b1.head; w != nil; w = w.next {
		if w.key == k1 && w.requeuePI {
			return 0, unix.EINVAL
		}
	}
	if check {
		cur, err := t.loadFutexWord(addr)
		if err != nil {
			return 0, err
		}
		if cur != val {
			return 0, unix.EAGAIN
		}
	}
	done := 0
	for w := b1.head; w != nil; {
		next := w.next
		if w.key == k1 {
			if done < nWake {
				b1.remove(w)
				close(w.woken)
				done++
			} else if done < nWake+nRequeue {
				if k1 != k2 {
					// Requeueing onto the same word leaves w in place.
					b1.remove(w)
					w.key = k2
					b2.push(w)
				}
				done++
			} else {
				break
			}
		}
		w = next
	}
	return done, nil
}

// wakeClearChildTID does CLONE_CHILD_CLEARTID's futex wake at exit.
func (t *Task) wakeClearChildTID(addr hostarch.Addr) {
	// Linux wakes it as a shared futex: a joiner may be in another
	// process sharing the memory.
	if key, err := t.futexKeyFor(addr, false); err == nil {
		t.k.futexes.wake(key, 1, ^uint32(0))
	}
}

func uintptrOf(b *futexBucket) uintptr { return uintptr(unsafe.Pointer(b)) }

// FUTEX_WAKE_OP operations and comparisons (futex(2)).
const (
	futexOpSet  = 0
	futexOpAdd  = 1
	futexOpOr   = 2
	futexOpAndN = 3
	futexOpXor  = 4
	// futexOpArgShift makes the operand 1<<oparg.
	futexOpArgShift = 8

	futexCmpEq = 0
	futexCmpNe = 1
	futexCmpLt = 2
	futexCmpLe = 3
	futexCmpGt = 4
	futexCmpGe = 5
)

// signExtend12 turns a 12-bit field into an int32.
func signExtend12(v uint32) int32 { return int32(v<<20) >> 20 }

// FutexWakeOp implements FUTEX_WAKE_OP: atomically apply the operation
// encoded in op to the word at addr2, wake up to nWake waiters on addr,
// and, if the old value of addr2 passes op's comparison, up to nWake2 on
// addr2. It returns the number woken.
func (t *Task) FutexWakeOp(addr, addr2 hostarch.Addr, private bool, nWake, nWake2 int, op uint32) (int, error) {
	if addr%4 != 0 || addr2%4 != 0 {
		return 0, unix.EINVAL
	}
	kind, cmp := (op>>28)&0xf, (op>>24)&0xf
	oparg, cmparg := signExtend12((op>>12)&0xfff), signExtend12(op&0xfff)
	if kind&futexOpArgShift != 0 {
		kind &^= futexOpArgShift
		oparg = int32(1) << (uint32(oparg) & 31)
	}
	var apply func(old uint32) uint32
	switch kind {
	case futexOpSet:
		apply = func(uint32) uint32 { return uint32(oparg) }
	case futexOpAdd:
		apply = func(old uint32) uint32 { return old + uint32(oparg) }
	case futexOpOr:
		apply = func(old uint32) uint32 { return old | uint32(oparg) }
	case futexOpAndN:
		apply = func(old uint32) uint32 { return old &^ uint32(oparg) }
	case futexOpXor:
		apply = func(old uint32) uint32 { return old ^ uint32(oparg) }
	default:
		return 0, unix.ENOSYS
	}
	if cmp > futexCmpGe {
		return 0, unix.ENOSYS
	}
	k1, err := t.futexKeyFor(addr, private)
	if err != nil {
		return 0, err
	}
	k2, err := t.futexKeyFor(addr2, private)
	if err != nil {
		return 0, err
	}
	old, err := t.mm.AtomicUpdateUint32(t, addr2, apply)
	if err != nil {
		return 0, unix.EFAULT
	}
	woken := t.k.futexes.wake(k1, nWake, ^uint32(0))
	o := int32(old)
	var pass bool
	switch cmp {
	case futexCmpEq:
		pass = o == cmparg
	case futexCmpNe:
		pass = o != cmparg
	case futexCmpLt:
		pass = o < cmparg
	case futexCmpLe:
		pass = o <= cmparg
	case futexCmpGt:
		pass = o > cmparg
	case futexCmpGe:
		pass = o >= cmparg
	}
	if pass {
		woken += t.k.futexes.wake(k2, nWake2, ^uint32(0))
	}
	return woken, nil
}

// Robust futex list processing (set_robust_list(2)): when a thread dies
// holding robust locks, each lock word it owns gets FUTEX_OWNER_DIED and
// one waiter is woken, so the next locker learns of the death.
const (
	futexWaiters    = 0x80000000
	futexOwnerDied  = 0x40000000
	futexTIDMask    = 0x3fffffff
	robustListLimit = 2048
)

// exitRobustList walks the task's robust list (at exit and execve).
func (t *Task) exitRobustList() {
	head := t.robustList
	t.robustList = 0
	if head == 0 || t.mm == nil {
		return
	}
	// struct robust_list_head { next; long futex_offset; list_op_pending; }
	var b [24]byte
	if _, err := t.mm.CopyIn(t, head, b[:], usermem.IOOpts{}); err != nil {
		return
	}
	next := hostarch.Addr(binary.LittleEndian.Uint64(b[0:]))
	offset := int64(binary.LittleEndian.Uint64(b[8:]))
	pending := hostarch.Addr(binary.LittleEndian.Uint64(b[16:]))
	for i := 0; next != head && i < robustListLimit; i++ {
		entry := next &^ 1 // the low bit marks PI futexes
		var nb [8]byte
		if _, err := t.mm.CopyIn(t, entry, nb[:], usermem.IOOpts{}); err != nil {
			return
		}
		next = hostarch.Addr(binary.LittleEndian.Uint64(nb[:]))
		// list_op_pending is handled last, once.
		if entry != pending&^1 {
			t.handleFutexDeath(entry + hostarch.Addr(offset))
		}
	}
	if pending != 0 {
		t.handleFutexDeath(pending&^1 + hostarch.Addr(offset))
	}
}

// handleFutexDeath marks a robust lock word the dying task owns. A
// FUTEX_LOCK_PI waiter, if any, is handed the lock (with
// FUTEX_OWNER_DIED for it to see), as an unlock would; otherwise one
// plain waiter is woken to find the word changed.
func (t *Task) handleFutexDeath(addr hostarch.Addr) {
	if addr%4 != 0 {
		return
	}
	key, err := t.futexKeyFor(addr, false)
	if err != nil {
		return
	}
	b := t.k.futexes.bucket(key)
	b.mu.Lock()
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
	tid := uint32(t.vtid)
	owned := false
	old, err := t.mm.AtomicUpdateUint32(t, addr, func(old uint32) uint32 {
		owned = old&futexTIDMask == tid
		if !owned {
			return old
		}
		if next != nil {
			nv := uint32(next.tid) | futexOwnerDied
			if more {
				nv |= futexWaiters
			}
			return nv
		}
		return old&futexWaiters | futexOwnerDied
	})
	if err != nil || !owned {
		b.mu.Unlock()
		return
	}
	if next != nil {
		b.remove(next)
		close(next.woken)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	if old&futexWaiters != 0 {
		t.k.futexes.wake(key, 1, ^uint32(0))
	}
}
