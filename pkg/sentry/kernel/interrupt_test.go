package kernel

import (
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// A wait must end early only for a reason the task has (Linux's
// signal_pending): a leftover wake-up, or a signal the task ignores or
// blocks, must leave it sleeping.
func TestBlockIgnoresWakeupsWithoutReason(t *testing.T) {
	task := newSignalTask(t)
	const wait = 30 * time.Millisecond
	expectFullWait := func(what string) {
		t.Helper()
		start := time.Now()
		if _, err := task.BlockTimeout(nil, wait); err != unix.ETIMEDOUT {
			t.Fatalf("%s: BlockTimeout = %v, want ETIMEDOUT", what, err)
		}
		if d := time.Since(start); d < wait {
			t.Fatalf("%s: woke after %v", what, d)
		}
	}

	// A handled signal delivered while the task ran leaves a wake-up in
	// interruptCh behind.
	if _, err := task.SigAction(linux.SIGUSR1, &linux.Sigaction{Handler: 0x10000, Restorer: 0x20000, Flags: linux.SA_RESTORER}); err != nil {
		t.Fatal(err)
	}
	task.SendSignal(usr1(linux.SIGUSR1))
	task.deliverSignals()
	if len(task.interruptCh) == 0 {
		t.Fatal("test premise: no leftover wake-up after delivery")
	}
	expectFullWait("leftover wake-up")

	// Ignored at generation: default-ignored signals, SIGCONT at SIG_DFL,
	// SIG_IGN.
	if _, err := task.SigAction(linux.SIGUSR2, &linux.Sigaction{Handler: linux.SIG_IGN}); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []linux.Signal{linux.SIGCHLD, linux.SIGWINCH, linux.SIGURG, linux.SIGCONT, linux.SIGUSR2} {
		go func() {
			time.Sleep(wait / 3)
			task.tg.SendSignal(usr1(sig))
		}()
		expectFullWait(sig.String())
		if task.PendingSignals().Contains(sig) {
			t.Errorf("ignored %v left pending", sig)
		}
	}

	// Blocked: stays pending, does not wake.
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGUSR1))
	task.sigPending.Store(false)
	go func() {
		time.Sleep(wait / 3)
		task.SendSignal(usr1(linux.SIGUSR1))
	}()
	expectFullWait("blocked SIGUSR1")
	if !task.PendingSignals().Contains(linux.SIGUSR1) {
		t.Fatal("blocked SIGUSR1 not pending")
	}

	// Ignored but blocked: queued (sigwait may want it), yet no reason
	// to wake once unblocked either.
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGUSR1, linux.SIGWINCH))
	task.SendSignal(usr1(linux.SIGWINCH))
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGUSR1))
	expectFullWait("unblocked ignored SIGWINCH")

	// A deliverable signal does interrupt, and a pending one ends the
	// wait at once.
	task.SetSignalMask(0)
	done := make(chan error, 1)
	go func() { done <- task.Block(nil) }()
	if err := <-done; err != linux.ERESTARTSYS {
		t.Fatalf("Block with SIGUSR1 pending = %v, want ERESTARTSYS", err)
	}
	task.deliverSignals() // the handler frame blocks SIGUSR1: unblock it
	task.SetSignalMask(0)
	task.sigPending.Store(false)
	go func() {
		time.Sleep(wait / 3)
		task.SendSignal(usr1(linux.SIGUSR1))
	}()
	if _, err := task.BlockTimeout(nil, 10*time.Second); err != linux.ERESTARTSYS {
		t.Fatalf("BlockTimeout with SIGUSR1 sent = %v, want ERESTARTSYS", err)
	}
}

// An ignored signal that a thread waits for in sigtimedwait still wakes
// it when sent to the process (the common sigwaitinfo(SIGCHLD) loop).
func TestSigTimedWaitGetsIgnoredProcessSignal(t *testing.T) {
	task := newSignalTask(t)
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGCHLD))
	task.sigPending.Store(false)
	go func() {
		time.Sleep(20 * time.Millisecond)
		task.tg.SendSignal(usr1(linux.SIGCHLD))
	}()
	const timeout = 4 * time.Second
	start := time.Now()
	info, err := task.SigTimedWait(linux.MakeSignalSet(linux.SIGCHLD), timeout)
	if err != nil || info.Signo != int32(linux.SIGCHLD) {
		t.Fatalf("SigTimedWait = %+v, %v; want SIGCHLD", info, err)
	}
	// Found when it arrived, not when the wait timed out.
	if d := time.Since(start); d >= timeout {
		t.Fatalf("SIGCHLD taken after %v: the wait was not woken", d)
	}
}
