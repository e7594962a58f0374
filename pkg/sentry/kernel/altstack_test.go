package kernel

import (
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/arch"
)

// SA_ONSTACK without an alternate stack set up runs the handler on the
// current stack (CPython installs its handlers so, and has no altstack).
func TestOnStackHandlerWithoutAltStack(t *testing.T) {
	task := newSignalTask(t)
	if _, err := task.SigAction(linux.SIGUSR1, &linux.Sigaction{
		Handler: 0x10000, Restorer: 0x20000, Flags: linux.SA_RESTORER | linux.SA_ONSTACK,
	}); err != nil {
		t.Fatal(err)
	}
	sp := uint64(task.ac.Stack())
	task.SendSignal(usr1(linux.SIGUSR1))
	task.deliverSignals()
	if task.tg.exitingFlag.Load() {
		t.Fatal("delivery killed the process")
	}
	if r := task.ac.Regs.Rsp; r >= sp || sp-r > 1<<16 {
		t.Fatalf("handler stack %#x, want just below %#x", r, sp)
	}
}

// A new thread starts without an alternate stack; a forked child keeps
// its parent's.
func TestCloneAltStack(t *testing.T) {
	parent := newSignalTask(t)
	alt := arch.SignalStack{Addr: 0x7000_0000, Size: 1 << 16}
	if err := parent.SetAltStack(alt); err != nil {
		t.Fatal(err)
	}
	tid, err := parent.Clone(CloneOptions{Flags: linux.CLONE_VM | linux.CLONE_SIGHAND | linux.CLONE_THREAD})
	if err != nil {
		t.Fatal(err)
	}
	if got := parent.k.TaskWithID(tid).AltStack(); got.Flags&arch.SignalStackDisable == 0 {
		t.Errorf("new thread's alternate stack %+v, want disabled", got)
	}
	child := forkChild(t, parent)
	if got := child.AltStack(); got != alt {
		t.Errorf("forked child's alternate stack %+v, want %+v", got, alt)
	}
}
