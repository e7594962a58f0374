package linux

import (
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

// releaseChild drops what an unstarted child holds.
func releaseChild(t *testing.T, parent *kernel.Task, tid uintptr) *kernel.Task {
	child := parent.Kernel().TaskWithID(kernel.ThreadID(tid))
	if child == nil {
		t.Fatalf("no task %d", tid)
	}
	t.Cleanup(func() {
		child.MemoryManager().DecUsers(child)
		child.FDTable().DecRef(child)
		child.FSContext().DecRef(child)
	})
	return child
}

func TestClone3(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	ca := make([]byte, 128)
	clone3 := func(size uintptr) (uintptr, error) {
		task.CopyOut(buf, ca)
		return task.ExecuteSyscall(linux.SYS_CLONE3, args(uintptr(buf), size))
	}
	if _, err := clone3(8); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("8-byte struct: %v", err)
	}
	if _, err := clone3(8192); !errors.Is(err, unix.E2BIG) {
		t.Fatalf("struct past a page: %v", err)
	}
	ca[100] = 1
	if _, err := clone3(128); !errors.Is(err, unix.E2BIG) {
		t.Fatalf("nonzero unknown tail: %v", err)
	}
	ca[100] = 0
	binary.LittleEndian.PutUint64(ca[32:], 0x100) // exit_signal beyond CSIGNAL
	if _, err := clone3(64); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("exit_signal 0x100: %v", err)
	}
	binary.LittleEndian.PutUint64(ca[32:], uint64(unix.SIGCHLD))
	binary.LittleEndian.PutUint64(ca[0:], linux.CLONE_THREAD|linux.CLONE_SIGHAND|linux.CLONE_VM)
	if _, err := clone3(64); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("thread with an exit signal: %v", err)
	}
	binary.LittleEndian.PutUint64(ca[0:], linux.CLONE_DETACHED)
	if _, err := clone3(64); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("CLONE_DETACHED: %v", err)
	}
	binary.LittleEndian.PutUint64(ca[0:], 0)
	binary.LittleEndian.PutUint64(ca[48:], 4096) // stack_size without stack
	if _, err := clone3(64); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("stack_size alone: %v", err)
	}
	binary.LittleEndian.PutUint64(ca[48:], 0)
	binary.LittleEndian.PutUint64(ca[72:], 1) // set_tid_size without set_tid
	if _, err := clone3(80); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("set_tid_size alone: %v", err)
	}
	binary.LittleEndian.PutUint64(ca[72:], 0)
	// A fork-like clone3 with a parent_tid to fill.
	binary.LittleEndian.PutUint64(ca[0:], linux.CLONE_PARENT_SETTID)
	binary.LittleEndian.PutUint64(ca[24:], uint64(buf+512))
	tid, err := clone3(88)
	if err != nil || tid == 0 {
		t.Fatalf("clone3 = %d, %v", tid, err)
	}
	child := releaseChild(t, task, tid)
	if child.ThreadGroup() == task.ThreadGroup() || child.ThreadGroup().ParentPID() != task.ThreadGroup().ID() {
		t.Fatal("clone3 did not make a child process")
	}
	var b [4]byte
	task.CopyIn(buf+512, b[:])
	if binary.LittleEndian.Uint32(b[:]) != uint32(tid) {
		t.Fatalf("parent_tid = %d, want %d", binary.LittleEndian.Uint32(b[:]), tid)
	}
}

func TestUnshareUTSAndSethostname(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	task.CopyOut(buf, []byte("box-a"))
	if _, err := task.ExecuteSyscall(linux.SYS_SETHOSTNAME, args(uintptr(buf), 65)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("65-byte name: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_UNSHARE, args(linux.CLONE_NEWUTS)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETHOSTNAME, args(uintptr(buf), 5)); err != nil {
		t.Fatal(err)
	}
	if h, _ := task.UTSNames(); h != "box-a" {
		t.Fatalf("hostname %q", h)
	}
	if k := task.Kernel().Hostname(); k != "sandbox" {
		t.Fatalf("the initial namespace changed: %q", k)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_UNSHARE, args(linux.CLONE_NEWUSER)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("CLONE_NEWUSER: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_UNSHARE, args(linux.CLONE_FILES|linux.CLONE_FS)); err != nil {
		t.Fatalf("unshare files+fs: %v", err)
	}
	// A forked child shares the new namespace.
	tid, err := task.ExecuteSyscall(linux.SYS_FORK, args())
	if err != nil {
		t.Fatal(err)
	}
	child := releaseChild(t, task, tid)
	if h, _ := child.UTSNames(); h != "box-a" {
		t.Fatalf("child hostname %q", h)
	}
	// Without CAP_SYS_ADMIN: EPERM.
	task.ExecuteSyscall(linux.SYS_SETRESUID, args(1000, 1000, 1000))
	if _, err := task.ExecuteSyscall(linux.SYS_UNSHARE, args(linux.CLONE_NEWUTS)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged unshare: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETHOSTNAME, args(uintptr(buf), 5)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged sethostname: %v", err)
	}
}

func TestSchedCalls(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	for _, c := range []struct {
		nr, policy uintptr
		want       uintptr
		err        error
	}{
		{linux.SYS_SCHED_GET_PRIORITY_MAX, linux.SCHED_FIFO, 99, nil},
		{linux.SYS_SCHED_GET_PRIORITY_MIN, linux.SCHED_RR, 1, nil},
		{linux.SYS_SCHED_GET_PRIORITY_MAX, linux.SCHED_NORMAL, 0, nil},
		{linux.SYS_SCHED_GET_PRIORITY_MAX, 12345, 0, unix.EINVAL},
	} {
		got, err := task.ExecuteSyscall(c.nr, args(c.policy))
		if got != c.want || !errors.Is(err, c.err) && err != c.err {
			t.Errorf("%s(%d) = %d, %v", linux.SyscallName(c.nr), c.policy, got, err)
		}
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_GETSCHEDULER, args(^uintptr(0))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("getscheduler(-1): %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_GETSCHEDULER, args(9999)); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("getscheduler(9999): %v", err)
	}
	task.CopyOut(buf, []byte{1, 0, 0, 0})
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_SETSCHEDULER, args(0, linux.SCHED_NORMAL, uintptr(buf))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("SCHED_OTHER priority 1: %v", err)
	}
	task.CopyOut(buf, []byte{50, 0, 0, 0})
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_SETSCHEDULER, args(0, linux.SCHED_FIFO, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	if p, _ := task.ExecuteSyscall(linux.SYS_SCHED_GETSCHEDULER, args(0)); p != linux.SCHED_FIFO {
		t.Fatalf("policy %d", p)
	}
	task.ExecuteSyscall(linux.SYS_SCHED_GETPARAM, args(0, uintptr(buf+8)))
	var b [8]byte
	task.CopyIn(buf+8, b[:4])
	if b[0] != 50 {
		t.Fatalf("priority %d", b[0])
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_GETPARAM, args(0, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("getparam(NULL): %v", err)
	}
	// Affinity: an empty mask is EINVAL; one CPU sticks and getcpu follows.
	task.CopyOut(buf, make([]byte, 8))
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_SETAFFINITY, args(0, 8, uintptr(buf))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("empty mask: %v", err)
	}
	task.CopyOut(buf, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_SETAFFINITY, args(0, 8, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	if n, err := task.ExecuteSyscall(linux.SYS_SCHED_GETAFFINITY, args(0, 128, uintptr(buf+16))); err != nil || n != 8 {
		t.Fatalf("getaffinity = %d, %v", n, err)
	}
	task.CopyIn(buf+16, b[:])
	if binary.LittleEndian.Uint64(b[:]) != 1 {
		t.Fatalf("mask %x", b)
	}
	// Nice: raising it is free, lowering it needs CAP_SYS_NICE.
	if p, err := task.ExecuteSyscall(linux.SYS_GETPRIORITY, args(linux.PRIO_PROCESS, 0)); err != nil || p != 20 {
		t.Fatalf("getpriority = %d, %v", p, err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETPRIORITY, args(42, 0, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad which: %v", err)
	}
	task.ExecuteSyscall(linux.SYS_SETRESUID, args(1000, 1000, 1000))
	if _, err := task.ExecuteSyscall(linux.SYS_SETPRIORITY, args(linux.PRIO_PROCESS, 0, 5)); err != nil {
		t.Fatal(err)
	}
	if p, _ := task.ExecuteSyscall(linux.SYS_GETPRIORITY, args(linux.PRIO_PROCESS, 0)); p != 15 {
		t.Fatalf("after nice 5: %d", p)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETPRIORITY, args(linux.PRIO_PROCESS, 0, 0)); !errors.Is(err, unix.EACCES) {
		t.Fatalf("unprivileged renice down: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SCHED_SETSCHEDULER, args(0, linux.SCHED_FIFO, uintptr(buf))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged SCHED_FIFO: %v", err)
	}
}

func TestUnshareMountNamespace(t *testing.T) {
	task, _ := newTask(t)
	root := task.FSContext().Root()
	before := root.Mount().Namespace()
	root.DecRef(task)
	if _, err := task.ExecuteSyscall(linux.SYS_UNSHARE, args(linux.CLONE_NEWNS)); err != nil {
		t.Fatal(err)
	}
	root = task.FSContext().Root()
	after := root.Mount().Namespace()
	root.DecRef(task)
	if after == nil || after == before {
		t.Fatal("unshare(CLONE_NEWNS) left the task in its namespace")
	}
	// A child shares the new namespace; CLONE_NEWNS with CLONE_FS is EINVAL.
	tid, err := task.ExecuteSyscall(linux.SYS_FORK, args())
	if err != nil {
		t.Fatal(err)
	}
	child := releaseChild(t, task, tid)
	croot := child.FSContext().Root()
	defer croot.DecRef(task)
	if croot.Mount().Namespace() != after {
		t.Fatal("forked child is in another mount namespace")
	}
	if _, err := task.ExecuteSyscall(linux.SYS_CLONE, args(linux.CLONE_NEWNS|linux.CLONE_FS|uintptr(unix.SIGCHLD))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("CLONE_NEWNS|CLONE_FS: %v", err)
	}
}

func TestKillPermissions(t *testing.T) {
	parent, _ := newTask(t)
	tid, err := parent.ExecuteSyscall(linux.SYS_FORK, args())
	if err != nil {
		t.Fatal(err)
	}
	child := releaseChild(t, parent, tid)
	child.ExecuteSyscall(linux.SYS_SETRESUID, args(1000, 1000, 1000))
	ppid := uintptr(parent.ThreadGroup().ID())
	if _, err := child.ExecuteSyscall(linux.SYS_KILL, args(ppid, uintptr(unix.SIGTERM))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged kill of root's process: %v", err)
	}
	if _, err := child.ExecuteSyscall(linux.SYS_KILL, args(ppid, 0)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("kill(pid, 0) probe: %v", err)
	}
	if _, err := child.ExecuteSyscall(linux.SYS_TGKILL, args(ppid, ppid, uintptr(unix.SIGTERM))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged tgkill: %v", err)
	}
	// SIGCONT within the session is allowed; the process group counts as
	// sent to if any member could be signalled (the child itself).
	if _, err := child.ExecuteSyscall(linux.SYS_KILL, args(ppid, uintptr(unix.SIGCONT))); err != nil {
		t.Fatalf("SIGCONT in the session: %v", err)
	}
	child.SetSignalMask(linux.MakeSignalSet(linux.SIGUSR1))
	if _, err := child.ExecuteSyscall(linux.SYS_KILL, args(0, uintptr(unix.SIGUSR1))); err != nil {
		t.Fatalf("kill(0): %v", err)
	}
	if parent.PendingSignals().Contains(linux.SIGUSR1) || !child.PendingSignals().Contains(linux.SIGUSR1) {
		t.Fatal("kill(0) reached the wrong processes")
	}
	if _, err := child.ExecuteSyscall(linux.SYS_KILL, args(^uintptr(0), uintptr(unix.SIGUSR1))); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("kill(-1) with nobody allowed: %v", err)
	}
	// Root (CAP_KILL) may signal anyone.
	if _, err := parent.ExecuteSyscall(linux.SYS_KILL, args(tid, 0)); err != nil {
		t.Fatalf("root kill probe: %v", err)
	}
	if _, err := parent.ExecuteSyscall(linux.SYS_KILL, args(uintptr(0x80000000), 0)); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("kill(INT_MIN): %v", err)
	}
}
