package linux

import (
	"encoding/binary"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
)

// select(2) leaves the unslept time in its timeval: zero after a timeout.
func TestSelectUpdatesTimeout(t *testing.T) {
	task, _ := newTask(t)
	tv := page(t, task) + 64
	var b [16]byte
	binary.LittleEndian.PutUint64(b[8:], 20000) // 20 ms
	task.CopyOut(tv, b[:])
	if n, err := task.ExecuteSyscall(linux.SYS_SELECT, args(0, 0, 0, 0, uintptr(tv))); err != nil || n != 0 {
		t.Fatalf("select = %d, %v", n, err)
	}
	task.CopyIn(tv, b[:])
	if sec, usec := binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:]); sec != 0 || usec != 0 {
		t.Errorf("timeval after the timeout: %d s %d µs, want 0", sec, usec)
	}
}
