package mm

import (
	"context"
	"sync/atomic"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// SharedMemoryAt says what memory backs addr for a shared futex: for an
// address in a MAP_SHARED mapping, the Mappable and the offset in it, so
// that every address space mapping the same object names the same word;
// for private memory, shared is false and the word is known by address
// space and address. EFAULT if nothing is mapped at addr.
func (mm *MemoryManager) SharedMemoryAt(addr hostarch.Addr) (m memmap.Mappable, off uint64, shared bool, err error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	v, _ := mm.findVMA(addr)
	if v == nil {
		return nil, 0, false, unix.EFAULT
	}
	if v.private || v.mappable == nil {
		return nil, 0, false, nil
	}
	return v.mappable, v.off + uint64(addr-v.start), true, nil
}

// AtomicUpdateUint32 atomically replaces the aligned word at addr with
// fn(old) and returns old, racing correctly with application threads that
// update the word with atomic instructions (FUTEX_WAKE_OP, robust and PI
// futexes). fn may run more than once. EFAULT if the word is not
// writable; EINVAL if addr is not 4-aligned.
func (mm *MemoryManager) AtomicUpdateUint32(ctx context.Context, addr hostarch.Addr, fn func(old uint32) uint32) (uint32, error) {
	if addr%4 != 0 {
		return 0, unix.EINVAL
	}
	var old uint32
	_, err := mm.forEachPage(ctx, addr, 4, hostarch.Write, usermem.IOOpts{}, func(b []byte, _ int) {
		w := (*uint32)(unsafe.Pointer(&b[0]))
		for {
			old = atomic.LoadUint32(w)
			if atomic.CompareAndSwapUint32(w, old, fn(old)) {
				return
			}
		}
	})
	return old, err
}
