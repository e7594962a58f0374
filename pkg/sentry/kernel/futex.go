package kernel

import (
	"encoding/binary"
	"sync"
	"time"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// futexKey names a futex word: private futexes by address space and
// address, shared ones by the same (shared mappings across processes are
// keyed by address space too until the mm exposes memory-file offsets).
type futexKey struct {
	mm   *mm.MemoryManager
	addr hostarch.Addr
}

type futexWaiter struct {
	key    futexKey
	bitset uint32
	woken  chan struct{}
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
	h := uint64(k.addr) >> 2
	h ^= h >> 17
	return &ft.buckets[h%futexBuckets]
}

func (b *futexBucket) push(w *futexWaiter) {
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
// timeout < 0 means none), or a signal arrives (ERESTARTSYS, or EINTR for
// a timed wait). EAGAIN if the word differs.
func (t *Task) FutexWait(addr hostarch.Addr, val, bitset uint32, timeout time.Duration) error {
	if addr%4 != 0 {
		return unix.EINVAL
	}
	if bitset == 0 {
		return unix.EINVAL
	}
	key := futexKey{t.mm, addr}
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
		if err != nil && err != unix.ETIMEDOUT {
			err = unix.EINTR
		}
	}
	if err == nil {
		return nil
	}
	b.mu.Lock()
	select {
	case <-w.woken:
		// Woken after all, racing with the interruption: report the
		// wake so it is not lost.
		err = nil
	default:
		b.remove(w)
	}
	b.mu.Unlock()
	return err
}

// FutexWake implements FUTEX_WAKE(_BITSET): wake up to n waiters on addr
// whose bitset intersects bitset; returns how many.
func (t *Task) FutexWake(addr hostarch.Addr, n int, bitset uint32) (int, error) {
	if addr%4 != 0 {
		return 0, unix.EINVAL
	}
	if bitset == 0 {
		return 0, unix.EINVAL
	}
	return t.k.futexes.wake(futexKey{t.mm, addr}, n, bitset), nil
}

func (ft *futexTable) wake(key futexKey, n int, bitset uint32) int {
	b := ft.bucket(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	woken := 0
	for w := b.head; w != nil && woken < n; {
		next := w.next
		if w.key == key && w.bitset&bitset != 0 {
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
func (t *Task) FutexRequeue(addr, addr2 hostarch.Addr, nWake, nRequeue int, check bool, val uint32) (int, error) {
	if addr%4 != 0 || addr2%4 != 0 {
		return 0, unix.EINVAL
	}
	k1, k2 := futexKey{t.mm, addr}, futexKey{t.mm, addr2}
	b1, b2 := t.k.futexes.bucket(k1), t.k.futexes.bucket(k2)
	// Lock both buckets in address order.
	first, second := b1, b2
	if uintptrOf(b2) < uintptrOf(b1) {
		first, second = b2, b1
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	if second != first {
		second.mu.Lock()
		defer second.mu.Unlock()
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
	t.k.futexes.wake(futexKey{t.mm, addr}, 1, ^uint32(0))
}

func uintptrOf(b *futexBucket) uintptr { return uintptr(unsafe.Pointer(b)) }
