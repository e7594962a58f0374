package kernel

import (
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
)

// Each thread counts its own I/O; the process total adds its live
// threads, the threads that exited and the children it reaped.
func TestIOCountsPerThreadAndProcessTotals(t *testing.T) {
	leader := newSignalTask(t)
	tid, err := leader.Clone(CloneOptions{Flags: linux.CLONE_VM | linux.CLONE_SIGHAND | linux.CLONE_THREAD | linux.CLONE_FS | linux.CLONE_FILES})
	if err != nil {
		t.Fatal(err)
	}
	thread := leader.k.TaskWithID(tid)
	if thread == nil || thread.tg != leader.tg {
		t.Fatal("clone did not make a thread of the process")
	}
	leader.IOCounts().AccountRead(100)
	leader.IOCounts().AccountWrite(7)
	thread.IOCounts().AccountRead(20)
	thread.IOCounts().AccountRead(0) // an empty read counts as a call
	thread.IOCounts().AccountWrite(3)

	if got, want := leader.IOCounts().Snapshot(), (IOSnapshot{ReadBytes: 100, WriteBytes: 7, ReadCalls: 1, WriteCalls: 1}); got != want {
		t.Errorf("leader's own counts %+v, want %+v", got, want)
	}
	if got, want := thread.IOCounts().Snapshot(), (IOSnapshot{ReadBytes: 20, WriteBytes: 3, ReadCalls: 2, WriteCalls: 1}); got != want {
		t.Errorf("thread's own counts %+v, want %+v", got, want)
	}
	total := IOSnapshot{ReadBytes: 120, WriteBytes: 10, ReadCalls: 3, WriteCalls: 2}
	if got := leader.tg.IOTotals(); got != total {
		t.Errorf("process totals %+v, want %+v", got, total)
	}

	// The thread exits: its counts stay in the process total, once.
	thread.exitThread(WaitStatusExited(0))
	thread.exit()
	if got := leader.tg.IOTotals(); got != total {
		t.Errorf("process totals after thread exit %+v, want %+v", got, total)
	}

	// A child's totals join the parent's when it is reaped, not before.
	leader.SetSignalMask(linux.MakeSignalSet(linux.SIGCHLD))
	ctid, err := leader.Clone(CloneOptions{Flags: uint64(linux.SIGCHLD)})
	if err != nil {
		t.Fatal(err)
	}
	child := leader.k.TaskWithID(ctid)
	child.IOCounts().AccountWrite(1000)
	child.exitThread(WaitStatusExited(0))
	child.exit()
	if got := leader.tg.IOTotals(); got != total {
		t.Errorf("process totals with an unreaped child %+v, want %+v", got, total)
	}
	if pid, _, err := leader.tg.Wait(WaitOptions{PID: -1, Exited: true}); err != nil || pid != ctid {
		t.Fatalf("wait = %d, %v", pid, err)
	}
	total.WriteBytes += 1000
	total.WriteCalls++
	if got := leader.tg.IOTotals(); got != total {
		t.Errorf("process totals after reaping %+v, want %+v", got, total)
	}
}

// The per-call accounting must not allocate (it runs on every read and
// write).
func TestIOAccountingDoesNotAllocate(t *testing.T) {
	var c IOCounts
	if n := testing.AllocsPerRun(100, func() { c.AccountRead(10); c.AccountWrite(5) }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

func BenchmarkIOAccountRead(b *testing.B) {
	var c IOCounts
	for b.Loop() {
		c.AccountRead(4096)
	}
}
