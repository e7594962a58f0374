package kernel

import (
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// forkChild clones an unstarted child process of task.
func forkChild(t *testing.T, task *Task) *Task {
	tid, err := task.Clone(CloneOptions{Flags: uint64(unix.SIGCHLD)})
	if err != nil {
		t.Fatal(err)
	}
	child := task.k.TaskWithID(tid)
	t.Cleanup(func() {
		child.mm.DecUsers(child)
		child.fdTable.DecRef(child)
		if child.fsContext != nil {
			child.fsContext.DecRef(child)
		}
	})
	return child
}

func TestStopAndContinueReports(t *testing.T) {
	parent := newSignalTask(t)
	parent.SetSignalMask(linux.MakeSignalSet(linux.SIGCHLD))
	child := forkChild(t, parent)
	if pid, _, err := parent.tg.Wait(WaitOptions{PID: -1, NoHang: true, Stopped: true, Continued: true}); err != nil || pid != 0 {
		t.Fatalf("report before any stop: %d, %v", pid, err)
	}
	child.tg.SendSignal(usr1(linux.SIGSTOP))
	child.deliverSignals()
	if !child.tg.IsStopped() {
		t.Fatal("SIGSTOP did not stop the group")
	}
	// wait4 without WUNTRACED does not see it; with it, once.
	if pid, _, _ := parent.tg.Wait(WaitOptions{PID: -1, NoHang: true}); pid != 0 {
		t.Fatal("plain wait reported a stop")
	}
	pid, st, err := parent.tg.Wait(WaitOptions{PID: -1, NoHang: true, Exited: true, Stopped: true})
	if err != nil || pid != child.tg.pid || !st.Stopped() || st.StopSignal() != linux.SIGSTOP || uint32(st) != 0x137f {
		t.Fatalf("stop report %d %#x %v", pid, uint32(st), err)
	}
	if pid, _, _ := parent.tg.Wait(WaitOptions{PID: -1, NoHang: true, Stopped: true}); pid != 0 {
		t.Fatal("stop reported twice")
	}
	// The parent was sent SIGCHLD with CLD_STOPPED.
	info, ok := parent.DequeueSignal(linux.MakeSignalSet(linux.SIGCHLD))
	if !ok || info.Code != linux.CLD_STOPPED || info.Status() != int32(linux.SIGSTOP) || info.Pid() != int32(child.tg.pid) {
		t.Fatalf("SIGCHLD %+v %v", info, ok)
	}
	// A pending SIGTSTP is discarded by SIGCONT, which resumes the group.
	child.tg.SendSignal(usr1(linux.SIGTSTP))
	child.tg.SendSignal(usr1(linux.SIGCONT))
	if child.tg.IsStopped() || child.PendingSignals().Contains(linux.SIGTSTP) {
		t.Fatalf("after SIGCONT: stopped=%v pending=%#x", child.tg.IsStopped(), child.PendingSignals())
	}
	pid, st, err = parent.tg.Wait(WaitOptions{PID: -1, NoHang: true, Continued: true})
	if err != nil || pid != child.tg.pid || !st.Continued() || uint32(st) != 0xffff {
		t.Fatalf("continue report %d %#x %v", pid, uint32(st), err)
	}
	info, ok = parent.DequeueSignal(linux.MakeSignalSet(linux.SIGCHLD))
	if !ok || info.Code != linux.CLD_CONTINUED {
		t.Fatalf("SIGCHLD %+v %v", info, ok)
	}
	// A caught SIGTSTP does not stop.
	child.SigAction(linux.SIGTSTP, &linux.Sigaction{Handler: 0x1000, Flags: linux.SA_RESTORER, Restorer: 0x2000})
	child.tg.SendSignal(usr1(linux.SIGTSTP))
	child.deliverSignals()
	if child.tg.IsStopped() {
		t.Fatal("a caught SIGTSTP stopped the group")
	}
	// SA_NOCLDSTOP: no SIGCHLD for stops, though wait still reports.
	parent.SigAction(linux.SIGCHLD, &linux.Sigaction{Handler: 0x1000, Flags: linux.SA_NOCLDSTOP | linux.SA_RESTORER, Restorer: 0x2000})
	child.tg.SendSignal(usr1(linux.SIGSTOP))
	child.deliverSignals()
	if _, ok := parent.DequeueSignal(linux.MakeSignalSet(linux.SIGCHLD)); ok {
		t.Fatal("SIGCHLD despite SA_NOCLDSTOP")
	}
	if pid, _, _ := parent.tg.Wait(WaitOptions{PID: -1, NoHang: true, Stopped: true}); pid != child.tg.pid {
		t.Fatal("stop not reported with SA_NOCLDSTOP")
	}
	// SIGKILL ends a stopped group.
	child.tg.SendSignal(usr1(linux.SIGKILL))
	if !child.tg.exitingFlag.Load() {
		t.Fatal("SIGKILL did not end the stopped group")
	}
}

func TestLimitWrite(t *testing.T) {
	task := newSignalTask(t)
	if n, err := task.LimitWrite(1<<40, 100); err != nil || n != 100 {
		t.Fatalf("no limit: %d, %v", n, err)
	}
	task.tg.SetLimit(linux.RLIMIT_FSIZE, linux.Rlimit{Cur: 10, Max: 10})
	if n, err := task.LimitWrite(4, 16); err != nil || n != 6 {
		t.Fatalf("write across the limit: %d, %v; want 6", n, err)
	}
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGXFSZ))
	if _, err := task.LimitWrite(10, 1); err != unix.EFBIG {
		t.Fatalf("write at the limit: %v", err)
	}
	if !task.PendingSignals().Contains(linux.SIGXFSZ) {
		t.Fatal("no SIGXFSZ")
	}
}
