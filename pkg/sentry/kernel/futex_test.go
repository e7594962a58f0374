package kernel

import (
	"encoding/binary"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
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
