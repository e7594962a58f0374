package linux

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

func TestFutexWaitWake(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	word := buf + 64
	task.CopyOut(word, []byte{7, 0, 0, 0})

	if err := task.FutexWait(word, true, 8, ^uint32(0), -1); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("wait on a changed word: %v, want EAGAIN", err)
	}
	if err := task.FutexWait(word+1, true, 7, ^uint32(0), -1); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("misaligned wait: %v", err)
	}
	if err := task.FutexWait(word, true, 7, ^uint32(0), time.Millisecond); !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("timed wait: %v, want ETIMEDOUT", err)
	}

	done := make(chan error, 2)
	for range 2 {
		go func() { done <- task.FutexWait(word, true, 7, ^uint32(0), -1) }()
	}
	woken := 0
	for deadline := time.Now().Add(5 * time.Second); woken < 2 && time.Now().Before(deadline); {
		n, err := task.FutexWake(word, true, 1, ^uint32(0))
		if err != nil {
			t.Fatal(err)
		}
		woken += n
		time.Sleep(time.Millisecond)
	}
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("woken waiter returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter not woken")
		}
	}
	if n, _ := task.FutexWake(word, true, 10, ^uint32(0)); n != 0 {
		t.Fatalf("woke %d with nobody waiting", n)
	}

	// Bitsets select waiters; requeue moves them.
	go func() { done <- task.FutexWait(word, true, 7, 0x2, -1) }()
	// Requeueing onto the same word is a harmless probe for "queued".
	waitQueued(t, func() bool {
		n, _ := task.FutexRequeue(word, word, true, 0, 1, false, 0)
		return n == 1
	})
	if n, _ := task.FutexWake(word, true, 1, 0x1); n != 0 {
		t.Fatalf("bitset 0x1 woke a 0x2 waiter")
	}
	if _, err := task.FutexRequeue(word, word+4, true, 0, 1, true, 8); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("CMP_REQUEUE with a stale value: %v", err)
	}
	if n, err := task.FutexRequeue(word, word+4, true, 0, 1, true, 7); err != nil || n != 1 {
		t.Fatalf("requeue moved %d, %v", n, err)
	}
	if n, _ := task.FutexWake(word+4, true, 1, ^uint32(0)); n != 1 {
		t.Fatalf("wake after requeue woke %d", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The syscall form rejects unknown commands.
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), 99)); !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("futex command 99: %v", err)
	}
	// The requeue-PI pair: a condition word cannot be its own lock, and
	// exactly one waiter is woken.
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), linux.FUTEX_WAIT_REQUEUE_PI|linux.FUTEX_PRIVATE_FLAG, 7, 0, uintptr(word))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("FUTEX_WAIT_REQUEUE_PI onto itself: %v, want EINVAL", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), linux.FUTEX_CMP_REQUEUE_PI|linux.FUTEX_PRIVATE_FLAG, 2, 1, uintptr(word+4), 7)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("FUTEX_CMP_REQUEUE_PI waking 2: %v, want EINVAL", err)
	}
	if n, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), linux.FUTEX_CMP_REQUEUE_PI|linux.FUTEX_PRIVATE_FLAG, 1, 1, uintptr(word+4), 7)); err != nil || n != 0 {
		t.Fatalf("FUTEX_CMP_REQUEUE_PI with no waiters = %d, %v", n, err)
	}
	if n, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), linux.FUTEX_WAKE_PRIVATE, 1)); err != nil || n != 0 {
		t.Fatalf("FUTEX_WAKE_PRIVATE = %d, %v", n, err)
	}
}

func waitQueued(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

func TestSharedFutexAcrossFork(t *testing.T) {
	parent, _ := newTask(t)
	shared, err := parent.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, linux.PROT_READ|linux.PROT_WRITE, linux.MAP_SHARED|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
	if err != nil {
		t.Fatal(err)
	}
	private := scratch(t, parent)
	childTID, err := parent.Clone(kernel.CloneOptions{Flags: uint64(unix.SIGCHLD)})
	if err != nil {
		t.Fatal(err)
	}
	child := parent.Kernel().TaskWithID(childTID)
	t.Cleanup(func() {
		child.MemoryManager().DecUsers(child)
		child.FDTable().DecRef(child)
		child.FSContext().DecRef(child)
	})

	word := hostarch.Addr(shared)
	done := make(chan error, 1)
	go func() { done <- child.FutexWait(word, false, 0, ^uint32(0), -1) }()
	// The parent's wake of the shared word, from its own address space,
	// reaches the child.
	waitQueued(t, func() bool {
		n, _ := parent.FutexWake(word, false, 1, ^uint32(0))
		return n == 1
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A private (FUTEX_PRIVATE_FLAG) wait is keyed by address space: the
	// other process's wake does not reach it.
	go func() { done <- child.FutexWait(word, true, 0, ^uint32(0), 50*time.Millisecond) }()
	time.Sleep(5 * time.Millisecond)
	if n, _ := parent.FutexWake(word, true, 1, ^uint32(0)); n != 0 {
		t.Fatalf("private wake crossed processes: %d", n)
	}
	if err := <-done; !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("private wait: %v", err)
	}
	// Private memory after fork is copied: not the same futex either.
	go func() { done <- child.FutexWait(private, false, 0, ^uint32(0), 50*time.Millisecond) }()
	time.Sleep(5 * time.Millisecond)
	if n, _ := parent.FutexWake(private, false, 1, ^uint32(0)); n != 0 {
		t.Fatalf("wake of copied private memory crossed processes: %d", n)
	}
	<-done
}

func TestFutexWakeOp(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	w1, w2 := buf, buf+4
	task.CopyOut(w2, []byte{5, 0, 0, 0})
	done := make(chan error, 2)
	go func() { done <- task.FutexWait(w1, true, 0, ^uint32(0), -1) }()
	go func() { done <- task.FutexWait(w2, true, 5, ^uint32(0), -1) }()
	// op: ADD 3 to *w2; wake w2's waiters if old == 5.
	op := uintptr(1<<28 | 0<<24 | 3<<12 | 5)
	total := 0
	deadline := time.Now().Add(5 * time.Second)
	for total < 2 && time.Now().Before(deadline) {
		n, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(w1), linux.FUTEX_WAKE_OP|linux.FUTEX_PRIVATE_FLAG, 1, 1, uintptr(w2), op))
		if err != nil {
			t.Fatal(err)
		}
		total += int(n)
		// Only the first call sees old == 5; reset so later calls can
		// wake a waiter that queued late.
		task.CopyOut(w2, []byte{5, 0, 0, 0})
		time.Sleep(time.Millisecond)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	b := make([]byte, 4)
	task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(w1), linux.FUTEX_WAKE_OP, 0, 0, uintptr(w2), uintptr(4<<28|1<<12)))
	task.CopyIn(w2, b)
	if b[0] != 5^1 {
		t.Fatalf("XOR op left %d", b[0])
	}
	// Unknown operation or comparison: ENOSYS; negative count: EINVAL.
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(w1), linux.FUTEX_WAKE_OP, 0, 0, uintptr(w2), uintptr(7<<28))); !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("bad op: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(w1), linux.FUTEX_WAKE_OP, 0, 0, uintptr(w2), uintptr(9<<24))); !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("bad cmp: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(w1), linux.FUTEX_CMP_REQUEUE, 1, ^uintptr(0), uintptr(w2), 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("negative requeue count: %v", err)
	}
}

func TestFutexPI(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	word := buf + 256
	futex := func(tk *kernel.Task, op uintptr) error {
		_, err := tk.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), op))
		return err
	}
	read := func() uint32 {
		var b [4]byte
		task.CopyIn(word, b[:])
		return binary.LittleEndian.Uint32(b[:])
	}
	tid := uint32(task.ThreadID())
	if err := futex(task, linux.FUTEX_LOCK_PI|linux.FUTEX_PRIVATE_FLAG); err != nil || read() != tid {
		t.Fatalf("LOCK_PI of a free lock: %v, word %#x", err, read())
	}
	if err := futex(task, linux.FUTEX_TRYLOCK_PI); !errors.Is(err, unix.EDEADLK) {
		t.Fatalf("TRYLOCK_PI of an owned lock: %v", err)
	}
	// A second thread blocks, then gets the lock handed over.
	ttid, err := task.Clone(kernel.CloneOptions{Flags: linux.CLONE_VM | linux.CLONE_THREAD | linux.CLONE_SIGHAND | linux.CLONE_FS | linux.CLONE_FILES})
	if err != nil {
		t.Fatal(err)
	}
	other := releaseChild(t, task, uintptr(ttid))
	if err := futex(other, linux.FUTEX_TRYLOCK_PI); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("TRYLOCK_PI of another's lock: %v", err)
	}
	if err := futex(other, linux.FUTEX_UNLOCK_PI); !errors.Is(err, unix.EPERM) {
		t.Fatalf("UNLOCK_PI by a non-owner: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- futex(other, linux.FUTEX_LOCK_PI) }()
	waitQueued(t, func() bool { return read()&0x80000000 != 0 })
	if err := futex(task, linux.FUTEX_UNLOCK_PI); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if got := read(); got != uint32(ttid) {
		t.Fatalf("after hand-over the word is %#x, want %#x", got, ttid)
	}
	if err := futex(other, linux.FUTEX_UNLOCK_PI); err != nil || read() != 0 {
		t.Fatalf("last unlock: %v, word %#x", err, read())
	}
}
