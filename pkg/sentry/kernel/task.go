package kernel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/loader"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Task is one application thread. Its goroutine (run) is the only one
// that touches its registers, its platform context and the fields marked
// "task goroutine only"; other goroutines reach it through its thread
// group's signal lock and interrupt().
type Task struct {
	k   *Kernel
	tg  *ThreadGroup
	tid ThreadID
	// vtid is the TID in the task's own PID namespace (what gettid and
	// the futex words see); fixed at creation.
	vtid ThreadID

	// Task goroutine only.
	ac           *arch.Context64
	pctx         platform.Context
	as           platform.AddressSpace
	trap         platform.Trap
	restartErrno unix.Errno
	restartBlock func(t *Task) (uintptr, error)
	exitCalled   bool
	exitStatus   WaitStatus
	// image is what the loader reported; written by the task (execve),
	// read by anyone (/proc, ps).
	image atomic.Pointer[loader.Result]

	// mm and fdTable are replaced only by the task itself (execve,
	// unshare); other tasks read them under the kernel lock.
	mm      *mm.MemoryManager
	fdTable *FDTable
	// fsContext is the root, cwd and umask (shared with CLONE_FS).
	fsContext *FSContext
	creds     atomic.Pointer[auth.Credentials]

	// savedMask is the mask to restore after sigsuspend's temporary one,
	// once a handler frame has recorded it or no handler ran.
	savedMask     linux.SignalSet
	haveSavedMask bool
	// name is the thread's comm: written by the task (execve,
	// PR_SET_NAME) and through /proc/[pid]/comm, read by anyone.
	name atomic.Pointer[string]
	// uts is the task's UTS namespace, nil for the initial one.
	uts atomic.Pointer[UTSNamespace]
	// childPIDNS is where the task's new processes go after
	// unshare(CLONE_NEWPID) or setns; nil: its own PID namespace.
	childPIDNS atomic.Pointer[PIDNamespace]
	// mntns is the mount namespace the task entered (mntns.go), nil for
	// the initial one; replaced only by the task itself.
	mntns *vfs.MountNamespace
	// noNewPrivs is PR_SET_NO_NEW_PRIVS: inherited, kept across execve,
	// never cleared. Task goroutine only.
	noNewPrivs bool
	// seccomp is the task's seccomp mode and filters (seccomp.go); nil
	// when it has none. Written under tg.signalMu (TSYNC sets it on
	// other tasks), read by the task on every syscall.
	seccomp atomic.Pointer[seccompState]
	// parentDeathSignal is PR_SET_PDEATHSIG, read by the exiting parent.
	parentDeathSignal atomic.Int32
	// personality is personality(2)'s value (personality.go): inherited
	// by clone, kept across execve.
	personality atomic.Uint32
	// Scheduling attributes (sched_setscheduler, setpriority,
	// sched_setaffinity): any task may set them on another.
	schedPolicy   atomic.Int32
	schedPriority atomic.Int32
	nice          atomic.Int32
	cpuMask       atomic.Uint64
	// userNS and sysNS are the task's CPU time (cputime.go), written by
	// the task, read by anyone.
	userNS, sysNS atomic.Int64
	// ioCounts are the task's own read/write counts (iocount.go),
	// written by the task, read by anyone.
	ioCounts IOCounts

	// Guarded by tg.signalMu.
	// sigWaitSet is what sigtimedwait waits for: unblocked meanwhile, yet
	// still counted as blocked so that ignored signals are kept for it
	// (Linux's real_blocked).
	sigWaitSet linux.SignalSet
	sigMask    linux.SignalSet
	pending    sigQueue
	altStack   arch.SignalStack

	// sigPending hints that a signal may be deliverable; set by senders,
	// cleared by the task when it finds nothing to deliver. It keeps the
	// signal lock off the syscall path.
	sigPending atomic.Bool
	// interruptCh wakes the task from Block.
	interruptCh chan struct{}

	clearChildTID hostarch.Addr
	robustList    hostarch.Addr

	// vforkDone is closed when a vfork child execs or exits.
	vforkDone chan struct{}
	started   atomic.Bool
	// killed asks the task to exit alone (another thread's execve).
	killed atomic.Bool
	// done is closed when the task's goroutine has finished.
	done chan struct{}
}

// Kernel returns the task's kernel.
func (t *Task) Kernel() *Kernel { return t.k }

// ThreadGroup returns the task's process.
func (t *Task) ThreadGroup() *ThreadGroup { return t.tg }

// ThreadID returns the task's TID.
func (t *Task) ThreadID() ThreadID { return t.tid }

// Arch returns the task's registers (task goroutine and syscall handlers).
func (t *Task) Arch() *arch.Context64 { return t.ac }

// MemoryManager returns the task's address space.
func (t *Task) MemoryManager() *mm.MemoryManager { return t.mm }

// FDTable returns the task's file descriptor table.
func (t *Task) FDTable() *FDTable { return t.fdTable }

// FSContext returns the task's root, working directory and umask.
func (t *Task) FSContext() *FSContext { return t.fsContext }

// Credentials returns the task's credentials (read-only).
func (t *Task) Credentials() *auth.Credentials { return t.creds.Load() }

// SetCredentials installs new credentials (a Fork()ed, modified copy).
func (t *Task) SetCredentials(c *auth.Credentials) { t.creds.Store(c) }

// Image returns what the loader reported for the task's program.
func (t *Task) Image() *loader.Result { return t.image.Load() }

// Deadline implements context.Context: tasks have none.
func (t *Task) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context; task lifetime is not a context.
func (t *Task) Done() <-chan struct{} { return nil }

// Err implements context.Context.
func (t *Task) Err() error { return nil }

// Value implements context.Context: a task answers with its credentials
// and with itself as the waiter.Blocker.
func (t *Task) Value(key any) any {
	switch key {
	case auth.CredentialsKey():
		return t.creds.Load()
	case waiter.BlockerKey():
		return t
	}
	return nil
}

var (
	_ context.Context = (*Task)(nil)
	_ waiter.Blocker  = (*Task)(nil)
)

// CopyIn reads application memory at addr (usermem.IO of the task's mm).
func (t *Task) CopyIn(addr hostarch.Addr, dst []byte) (int, error) {
	return t.mm.CopyIn(t, addr, dst, usermem.IOOpts{})
}

// CopyOut writes application memory at addr.
func (t *Task) CopyOut(addr hostarch.Addr, src []byte) (int, error) {
	return t.mm.CopyOut(t, addr, src, usermem.IOOpts{})
}

// Block waits until ch is ready (nil) or the task is interrupted by a
// signal or by its group exiting (ERESTARTSYS). It implements
// waiter.Blocker.
//
// Like Linux, a wait ends early only when the task has a reason to leave
// it (hasInterruptReason): a wake-up without one, such as a token left in
// interruptCh by a signal already handled in user mode, or a platform
// kick, is not an interruption. Returning ERESTARTSYS without a reason
// would restart syscalls that are not idempotent (connect) for nothing.
func (t *Task) Block(ch <-chan struct{}) error {
	if t.sigPending.Load() || t.tg.exitingFlag.Load() || t.killed.Load() || t.tg.groupStopped.Load() {
		if t.hasInterruptReason() {
			select {
			case <-ch:
				return nil
			default:
				return linux.ERESTARTSYS
			}
		}
	}
	for {
		select {
		case <-ch:
			return nil
		case <-t.interruptCh:
			if t.hasInterruptReason() {
				return linux.ERESTARTSYS
			}
		}
	}
}

// BlockTimeout is Block with a timeout: it returns ETIMEDOUT when d
// passes first, and the time left.
func (t *Task) BlockTimeout(ch <-chan struct{}, d time.Duration) (time.Duration, error) {
	if d <= 0 {
		select {
		case <-ch:
			return 0, nil
		default:
			return 0, unix.ETIMEDOUT
		}
	}
	deadline := time.Now().Add(d)
	if t.sigPending.Load() || t.tg.exitingFlag.Load() || t.killed.Load() || t.tg.groupStopped.Load() {
		if t.hasInterruptReason() {
			select {
			case <-ch:
				return d, nil
			default:
				return d, linux.ERESTARTSYS
			}
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ch:
			return max(time.Until(deadline), 0), nil
		case <-timer.C:
			return 0, unix.ETIMEDOUT
		case <-t.interruptCh:
			if t.hasInterruptReason() {
				return max(time.Until(deadline), 0), linux.ERESTARTSYS
			}
		}
	}
}

// hasInterruptReason is Linux's signal_pending() for a sleeping task: its
// group is exiting or stopping, it is being killed, or a signal is queued
// for it or its process that it neither blocks nor ignores (or that its
// sigtimedwait is waiting for).
func (t *Task) hasInterruptReason() bool {
	tg := t.tg
	if tg.exitingFlag.Load() || t.killed.Load() || tg.groupStopped.Load() {
		return true
	}
	tg.signalMu.Lock()
	defer tg.signalMu.Unlock()
	avail := (t.pending.set | tg.pending.set) &^ t.sigMask
	if avail == 0 {
		return false
	}
	if avail&t.sigWaitSet != 0 {
		return true
	}
	sh := tg.handlers.Load()
	for avail != 0 {
		sig := avail.Lowest()
		avail = avail.Remove(sig)
		if !isIgnored(sig, sh.get(sig)) {
			return true
		}
	}
	return false
}

// interrupt wakes the task: out of Block, and out of the application.
// Callers hold tg.signalMu (which also keeps the platform context alive).
//
// The rule (Linux's signal_wake_up): call it only when the task has a
// reason to stop what it does, i.e. when hasInterruptReason becomes true
// for it: a signal queued that it does not block and will not ignore, a
// group stop, the group's exit, or its own kill. Block re-checks that
// reason on every wake-up, so an extra or stale wake-up costs a loop,
// never a spurious ERESTARTSYS.
func (t *Task) interrupt() {
	select {
	case t.interruptCh <- struct{}{}:
	default:
	}
	if t.pctx != nil {
		t.pctx.Interrupt()
	}
}

// start launches the task's goroutine once. A kernel without a platform
// (unit tests) cannot run application code, so its tasks never start.
func (t *Task) start() {
	if t.k.platform == nil || t.started.Swap(true) {
		return
	}
	go t.run()
}

// run is the task's goroutine.
func (t *Task) run() {
	// The platform needs every Switch of a Context on one OS thread;
	// the goroutine never unlocks, so the thread goes away with it.
	runtime.LockOSThread()
	defer close(t.done)
	for !t.exitCalled && !t.tg.exitingFlag.Load() && !t.killed.Load() {
		if t.tg.groupStopped.Load() {
			t.waitWhileStopped()
			continue
		}
		if t.sigPending.Load() || t.restartErrno != 0 {
			t.deliverSignals()
			continue
		}
		entered := time.Now()
		if err := t.pctx.Switch(t.as, t.ac, &t.trap); err != nil {
			log.Warningf("task %d: platform failure: %v", t.tid, err)
			t.tg.exitGroup(WaitStatusSignaled(unix.SIGKILL))
			break
		}
		returned := time.Now()
		t.userNS.Add(int64(returned.Sub(entered)))
		switch t.trap.Kind {
		case platform.TrapSyscall:
			t.doSyscall()
		case platform.TrapFault:
			t.handleFault()
		case platform.TrapSignal:
			t.handleSyncSignal()
		case platform.TrapInterrupted:
		}
		t.sysNS.Add(int64(time.Since(returned)))
		if t.tg.cpuTimersArmed.Load() {
			t.tg.checkCPUTimers()
		}
	}
	t.exit()
}

// handleFault serves a page fault, or turns it into SIGSEGV/SIGBUS.
func (t *Task) handleFault() {
	err := t.mm.HandleFault(t, t.trap.Addr, t.trap.Access)
	if err == nil {
		return
	}
	info := linux.SignalInfo{Signo: int32(unix.SIGSEGV), Code: linux.SEGV_MAPERR}
	var fe *mm.FaultError
	if errors.As(err, &fe) {
		info.Signo, info.Code = fe.Signo, fe.Code
	} else {
		log.Warningf("task %d: fault at %v: %v", t.tid, t.trap.Addr, err)
	}
	info.SetAddr(uint64(t.trap.Addr))
	t.forceSignal(&info)
}

// handleSyncSignal handles a synchronous signal the application raised:
// an emulated CPUID, or a signal delivered as Linux would.
func (t *Task) handleSyncSignal() {
	if t.trap.Signo == int32(unix.SIGSEGV) && t.k.platform != nil && t.k.platform.CPUIDFaulting() && t.emulateCPUID() {
		return
	}
	info := linux.SignalInfo{Signo: t.trap.Signo, Code: t.trap.Code}
	info.SetAddr(uint64(t.trap.Addr))
	t.forceSignal(&info)
}

// emulateCPUID executes a faulting CPUID instruction for the
// application with the host's answers.
func (t *Task) emulateCPUID() bool {
	var insn [2]byte
	if _, err := t.mm.CopyIn(t, t.ac.IP(), insn[:], usermem.IOOpts{IgnorePermissions: true}); err != nil || insn != [2]byte{0x0f, 0xa2} {
		return false
	}
	r := &t.ac.Regs
	a, b, c, d := arch.CPUID(uint32(r.Rax), uint32(r.Rcx))
	r.Rax, r.Rbx, r.Rcx, r.Rdx = uint64(a), uint64(b), uint64(c), uint64(d)
	r.Rip += 2
	return true
}

// exitTask records the task's own exit(2); the loop then ends.
func (t *Task) exitThread(status WaitStatus) {
	t.exitCalled = true
	t.exitStatus = status
}

// String is for logs.
func (t *Task) String() string { return fmt.Sprintf("task %d (pid %d)", t.tid, t.tg.pid) }

// SetClearChildTID sets the address zeroed at exit (set_tid_address).
func (t *Task) SetClearChildTID(addr hostarch.Addr) { t.clearChildTID = addr }

// SetRobustList records the robust futex list head (set_robust_list).
func (t *Task) SetRobustList(addr hostarch.Addr) { t.robustList = addr }

// RobustList returns the recorded robust list head.
func (t *Task) RobustList() hostarch.Addr { return t.robustList }

// Name returns the thread's name (comm).
func (t *Task) Name() string {
	if n := t.name.Load(); n != nil {
		return *n
	}
	return ""
}

// SetName sets it, truncated to TASK_COMM_LEN-1 bytes.
func (t *Task) SetName(n string) {
	if len(n) > linux.TASK_COMM_LEN-1 {
		n = n[:linux.TASK_COMM_LEN-1]
	}
	t.name.Store(&n)
}
