package linux

import (
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

func TestFutexWaitWake(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	word := buf + 64
	task.CopyOut(word, []byte{7, 0, 0, 0})

	if err := task.FutexWait(word, 8, ^uint32(0), -1); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("wait on a changed word: %v, want EAGAIN", err)
	}
	if err := task.FutexWait(word+1, 7, ^uint32(0), -1); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("misaligned wait: %v", err)
	}
	if err := task.FutexWait(word, 7, ^uint32(0), time.Millisecond); !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("timed wait: %v, want ETIMEDOUT", err)
	}

	done := make(chan error, 2)
	for range 2 {
		go func() { done <- task.FutexWait(word, 7, ^uint32(0), -1) }()
	}
	woken := 0
	for deadline := time.Now().Add(5 * time.Second); woken < 2 && time.Now().Before(deadline); {
		n, err := task.FutexWake(word, 1, ^uint32(0))
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
	if n, _ := task.FutexWake(word, 10, ^uint32(0)); n != 0 {
		t.Fatalf("woke %d with nobody waiting", n)
	}

	// Bitsets select waiters; requeue moves them.
	go func() { done <- task.FutexWait(word, 7, 0x2, -1) }()
	// Requeueing onto the same word is a harmless probe for "queued".
	waitQueued(t, func() bool {
		n, _ := task.FutexRequeue(word, word, 0, 1, false, 0)
		return n == 1
	})
	if n, _ := task.FutexWake(word, 1, 0x1); n != 0 {
		t.Fatalf("bitset 0x1 woke a 0x2 waiter")
	}
	if _, err := task.FutexRequeue(word, word+4, 0, 1, true, 8); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("CMP_REQUEUE with a stale value: %v", err)
	}
	if n, err := task.FutexRequeue(word, word+4, 0, 1, true, 7); err != nil || n != 1 {
		t.Fatalf("requeue moved %d, %v", n, err)
	}
	if n, _ := task.FutexWake(word+4, 1, ^uint32(0)); n != 1 {
		t.Fatalf("wake after requeue woke %d", n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The syscall form rejects unknown commands.
	if _, err := task.ExecuteSyscall(linux.SYS_FUTEX, args(uintptr(word), linux.FUTEX_LOCK_PI)); !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("FUTEX_LOCK_PI: %v", err)
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
