package kernel

import (
	"context"
	"os"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel/testroot"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"golang.org/x/sys/unix"
)

// newSignalTask returns the unstarted init task of a platform-less kernel
// running /bin/true (loaded, never run).
func newSignalTask(t *testing.T) *Task {
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true to load")
	}
	mf, err := pgalloc.New("signals-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	k, err := New(Config{MemoryFile: mf})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root, err := testroot.NewRoot(ctx, k.VFS(), mf, "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	tg, err := k.CreateProcess(ctx, CreateProcessArgs{
		Filename: "/bin/true", Root: root, Argv: []string{"true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tg.Leader()
}

func usr1(sig linux.Signal) *linux.SignalInfo {
	return &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}
}

func TestHandlerFrameAndSigreturn(t *testing.T) {
	task := newSignalTask(t)
	const handler, restorer, ip = 0x10000, 0x20000, 0x30000
	if _, err := task.SigAction(linux.SIGUSR1, &linux.Sigaction{
		Handler: handler, Restorer: restorer, Flags: linux.SA_SIGINFO | linux.SA_RESTORER,
		Mask: linux.MakeSignalSet(linux.SIGUSR2),
	}); err != nil {
		t.Fatal(err)
	}
	task.ac.SetIP(ip)
	sp := task.ac.Stack()
	task.ac.Regs.Rbx = 0x1234
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGHUP))
	task.SendSignal(usr1(linux.SIGUSR1))
	task.deliverSignals()

	r := &task.ac.Regs
	if r.Rip != handler || r.Rdi != uint64(linux.SIGUSR1) || r.Rsp >= uint64(sp)-128 || (r.Rsp+8)%16 != 0 {
		t.Fatalf("after delivery rip=%#x rdi=%d rsp=%#x (old sp %v)", r.Rip, r.Rdi, r.Rsp, sp)
	}
	// The siginfo the handler gets names the signal.
	var si [4]byte
	task.CopyIn(hostarch.Addr(r.Rsi), si[:])
	if si[0] != byte(linux.SIGUSR1) {
		t.Fatalf("siginfo signo %d", si[0])
	}
	if m := task.SignalMask(); m != linux.MakeSignalSet(linux.SIGHUP, linux.SIGUSR1, linux.SIGUSR2) {
		t.Fatalf("mask in handler %#x", m)
	}
	// The handler's "ret" pops the restorer address, then rt_sigreturn.
	r.Rbx = 0
	r.Rsp += 8
	if err := task.SignalReturn(); err != ErrNoSyscallReturn {
		t.Fatalf("SignalReturn: %v", err)
	}
	if r.Rip != ip || r.Rsp != uint64(sp) || r.Rbx != 0x1234 {
		t.Fatalf("after sigreturn rip=%#x rsp=%#x rbx=%#x", r.Rip, r.Rsp, r.Rbx)
	}
	if m := task.SignalMask(); m != linux.MakeSignalSet(linux.SIGHUP) {
		t.Fatalf("mask after sigreturn %#x", m)
	}
}

func TestRestartRules(t *testing.T) {
	for _, c := range []struct {
		errno     unix.Errno
		saRestart bool
		restarted bool
	}{
		{linux.ERESTARTSYS, false, false},
		{linux.ERESTARTSYS, true, true},
		{linux.ERESTARTNOINTR, false, true},
		{linux.ERESTARTNOHAND, true, false},
		{linux.ERESTART_RESTARTBLOCK, true, false},
	} {
		task := newSignalTask(t)
		flags := uint64(linux.SA_RESTORER)
		if c.saRestart {
			flags |= linux.SA_RESTART
		}
		task.SigAction(linux.SIGUSR1, &linux.Sigaction{Handler: 0x10000, Restorer: 0x20000, Flags: flags})
		task.ac.SetIP(0x30002)
		task.ac.Regs.Orig_rax = 35
		task.restartErrno = c.errno
		task.ac.SetReturn(negErrno(c.errno))
		task.SendSignal(usr1(linux.SIGUSR1))
		task.deliverSignals()
		// The frame saved the registers the handler returns to.
		task.ac.Regs.Rsp += 8
		task.SignalReturn()
		r := task.ac.Regs
		if c.restarted && (r.Rip != 0x30000 || r.Rax != 35) {
			t.Errorf("%v SA_RESTART=%v: rip=%#x rax=%d, want the syscall restarted", c.errno, c.saRestart, r.Rip, r.Rax)
		}
		if !c.restarted && (r.Rip != 0x30002 || r.Rax != uint64(negErrno(unix.EINTR))) {
			t.Errorf("%v SA_RESTART=%v: rip=%#x rax=%d, want EINTR", c.errno, c.saRestart, r.Rip, int64(r.Rax))
		}
	}
	// Without a handler every restart errno restarts transparently.
	task := newSignalTask(t)
	task.ac.SetIP(0x30002)
	task.ac.Regs.Orig_rax = 61
	task.restartErrno = linux.ERESTARTSYS
	task.deliverSignals()
	if task.ac.Regs.Rip != 0x30000 || task.ac.Regs.Rax != 61 {
		t.Errorf("no handler: rip=%#x rax=%d, want restart", task.ac.Regs.Rip, task.ac.Regs.Rax)
	}
}

func TestDefaultActionsAndBlocking(t *testing.T) {
	task := newSignalTask(t)
	// SIGCHLD is ignored by default: dropped, nothing pending.
	task.SendSignal(usr1(linux.SIGCHLD))
	if p := task.PendingSignals(); p != 0 {
		t.Fatalf("ignored signal pending: %#x", p)
	}
	// A blocked signal waits for the unblock.
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGTERM))
	task.SendSignal(usr1(linux.SIGTERM))
	task.deliverSignals()
	if task.tg.exitingFlag.Load() {
		t.Fatal("blocked SIGTERM killed the process")
	}
	if p := task.PendingSignals(); p != linux.MakeSignalSet(linux.SIGTERM) {
		t.Fatalf("pending %#x", p)
	}
	task.SetSignalMask(0)
	task.deliverSignals()
	if !task.tg.exitingFlag.Load() || task.tg.groupStatus != WaitStatusSignaled(unix.SIGTERM) {
		t.Fatalf("SIGTERM's default action did not kill: exiting=%v status=%v", task.tg.exitingFlag.Load(), task.tg.groupStatus)
	}
}

func TestForcedSignalOverridesBlockAndIgnore(t *testing.T) {
	task := newSignalTask(t)
	task.SigAction(linux.SIGSEGV, &linux.Sigaction{Handler: linux.SIG_IGN})
	task.SetSignalMask(linux.MakeSignalSet(linux.SIGSEGV))
	info := linux.SignalInfo{Signo: int32(linux.SIGSEGV), Code: linux.SEGV_MAPERR}
	task.forceSignal(&info)
	task.deliverSignals()
	if task.tg.groupStatus != WaitStatusSignaled(unix.SIGSEGV) {
		t.Fatalf("forced SIGSEGV: status %v", task.tg.groupStatus)
	}
}

func TestWaitStatusEncoding(t *testing.T) {
	if s := WaitStatusExited(7); !s.Exited() || s.ExitStatus() != 7 || s.Signaled() || uint32(s) != 0x700 {
		t.Fatalf("exited 7 = %#x", uint32(s))
	}
	if s := WaitStatusSignaled(unix.SIGSEGV); s.Exited() || !s.Signaled() || s.Signal() != unix.SIGSEGV || uint32(s) != 11 {
		t.Fatalf("killed by SIGSEGV = %#x", uint32(s))
	}
}
