package kernel

import (
	"slices"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// spawn clones an unstarted child process of parent with extra clone
// flags; the test must end it with finish (which releases what it holds).
func spawn(t *testing.T, parent *Task, flags uint64) *Task {
	t.Helper()
	tid, err := parent.Clone(CloneOptions{Flags: uint64(unix.SIGCHLD) | flags})
	if err != nil {
		t.Fatalf("clone %#x: %v", flags, err)
	}
	child := parent.LookupTask(tid)
	if child == nil {
		t.Fatalf("clone returned TID %d, which the parent cannot find", tid)
	}
	return child
}

// finish runs the end of an unstarted task's life, as its loop would.
func finish(task *Task) { task.exit() }

func TestCloneNewPIDNumbersInsideAndOutside(t *testing.T) {
	root := newSignalTask(t)
	init := spawn(t, root, linux.CLONE_NEWPID)
	defer finish(init)
	ns := init.PIDNamespace()
	if ns == root.PIDNamespace() || ns.Parent() != root.PIDNamespace() || ns.Level() != 1 {
		t.Fatalf("child's namespace %+v is not a new one below the root's", ns)
	}
	if init.GetPID() != 1 || init.GetTID() != 1 || init.GetPPID() != 0 {
		t.Fatalf("init sees pid %d tid %d ppid %d, want 1 1 0", init.GetPID(), init.GetTID(), init.GetPPID())
	}
	if got := root.IDOf(init.ThreadGroup().ID()); got != init.ThreadGroup().ID() || got <= 1 {
		t.Fatalf("the root namespace sees init as %d", got)
	}
	child := spawn(t, init, 0)
	defer finish(child)
	if child.GetPID() != 2 || child.GetPPID() != 1 {
		t.Fatalf("init's child sees pid %d ppid %d, want 2 1", child.GetPID(), child.GetPPID())
	}
	if got := ns.IDs(child.ThreadID()); !slices.Equal(got, []ThreadID{2}) {
		t.Fatalf("IDs from the child namespace: %v", got)
	}
	if got := root.PIDNamespace().IDs(child.ThreadID()); !slices.Equal(got, []ThreadID{child.ThreadID(), 2}) {
		t.Fatalf("IDs from the root namespace: %v", got)
	}
	// Lookups take numbers of the caller's namespace; the root's
	// processes do not exist inside.
	if init.LookupTask(2) != child || init.LookupThreadGroup(1) != init.ThreadGroup() {
		t.Fatal("init cannot find its namespace's processes by their numbers")
	}
	if child.IDOf(root.ThreadGroup().ID()) != 0 {
		t.Fatal("the sandbox's init is visible inside the new namespace")
	}
	if got := ns.ThreadGroups(); len(got) != 2 || got[0] != init.ThreadGroup() || got[1] != child.ThreadGroup() {
		t.Fatalf("namespace lists %d processes", len(got))
	}
	if got := root.PIDNamespace().ThreadGroups(); len(got) != 3 {
		t.Fatalf("root namespace lists %d processes, want 3", len(got))
	}
}

func TestUnshareNewPIDAndNestingLimit(t *testing.T) {
	root := newSignalTask(t)
	before := root.PIDNamespaceForChildren()
	if err := root.Unshare(linux.CLONE_NEWPID); err != nil {
		t.Fatal(err)
	}
	if root.PIDNamespace() != before || root.PIDNamespaceForChildren() == before {
		t.Fatal("unshare moved the caller instead of its future children")
	}
	if err := root.Unshare(linux.CLONE_NEWPID); err != unix.EINVAL {
		t.Fatalf("second unshare before a child: %v, want EINVAL", err)
	}
	if _, err := root.Clone(CloneOptions{Flags: linux.CLONE_VM | linux.CLONE_SIGHAND | linux.CLONE_THREAD}); err != unix.EINVAL {
		t.Fatalf("thread after unshare: %v, want EINVAL", err)
	}
	first := spawn(t, root, 0)
	second := spawn(t, root, 0)
	if first.GetPID() != 1 || second.GetPID() != 2 || second.ThreadGroup().Parent() != root.ThreadGroup() {
		t.Fatalf("children got %d and %d", first.GetPID(), second.GetPID())
	}
	finish(second)
	// Reaped by its parent outside: until then init could not finish
	// exiting (its namespace must be empty first).
	if pid, _, err := root.ThreadGroup().Wait(WaitOptions{PID: second.ThreadGroup().ID(), NoHang: true}); err != nil || pid != second.ThreadGroup().ID() {
		t.Fatalf("reaping the second child: %d, %v", pid, err)
	}
	// Nest down to the limit.
	chain := []*Task{first}
	for len(chain) < MaxPIDNamespaceLevel {
		chain = append(chain, spawn(t, chain[len(chain)-1], linux.CLONE_NEWPID))
	}
	deepest := chain[len(chain)-1]
	if deepest.PIDNamespace().Level() != MaxPIDNamespaceLevel {
		t.Fatalf("deepest level %d", deepest.PIDNamespace().Level())
	}
	if _, err := deepest.Clone(CloneOptions{Flags: uint64(unix.SIGCHLD) | linux.CLONE_NEWPID}); err != unix.ENOSPC {
		t.Fatalf("clone past the limit: %v, want ENOSPC", err)
	}
	if err := deepest.Unshare(linux.CLONE_NEWPID); err != unix.ENOSPC {
		t.Fatalf("unshare past the limit: %v, want ENOSPC", err)
	}
	// Tearing the chain down from the bottom lets each init exit.
	for i := len(chain) - 1; i >= 0; i-- {
		finish(chain[i])
	}
	if _, err := root.Clone(CloneOptions{Flags: uint64(unix.SIGCHLD)}); err != unix.ENOMEM {
		t.Fatalf("fork into a namespace whose init died: %v, want ENOMEM", err)
	}
}

func TestNamespaceInitAdoptsOrphansAndReaps(t *testing.T) {
	root := newSignalTask(t)
	init := spawn(t, root, linux.CLONE_NEWPID)
	mid := spawn(t, init, 0)
	orphan := spawn(t, mid, 0)
	finish(mid)
	if orphan.ThreadGroup().Parent() != init.ThreadGroup() || orphan.GetPPID() != 1 {
		t.Fatalf("orphan's parent is %v (ppid %d), want the namespace's init", orphan.ThreadGroup().Parent(), orphan.GetPPID())
	}
	// Init waits with its own numbers.
	if pid, _, err := init.ThreadGroup().Wait(WaitOptions{PID: 2, NoHang: true}); err != nil || pid != 2 {
		t.Fatalf("wait for the middle process: %d, %v", pid, err)
	}
	// Init's death kills the rest and is reported only once they are
	// reaped; its exit blocks until then.
	done := make(chan struct{})
	go func() {
		finish(init)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !orphan.tg.exitingFlag.Load() {
		if time.Now().After(deadline) {
			t.Fatal("init's exit did not kill the rest of its namespace")
		}
		time.Sleep(time.Millisecond)
	}
	finish(orphan)
	<-done
	if !init.ThreadGroup().IsZombie() || !orphan.ThreadGroup().IsReaped() {
		t.Fatal("after init's exit its namespace is not empty")
	}
}

func TestNamespaceInitSignals(t *testing.T) {
	root := newSignalTask(t)
	init := spawn(t, root, linux.CLONE_NEWPID)
	defer finish(init)
	inside := spawn(t, init, 0)
	defer finish(inside)
	itg := init.ThreadGroup()
	// From inside, default actions are not taken, SIGKILL included.
	for _, sig := range []linux.Signal{linux.SIGTERM, linux.SIGKILL, linux.SIGSTOP} {
		if err := inside.SignalProcess(itg, usr1(sig)); err != nil {
			t.Fatal(err)
		}
	}
	if itg.exitingFlag.Load() || itg.SharedPendingSignals() != 0 {
		t.Fatalf("signals from inside reached init: pending %v", itg.SharedPendingSignals())
	}
	// A handled signal arrives, naming the sender as init sees it.
	init.SigAction(linux.SIGUSR1, &linux.Sigaction{Handler: 0x1000})
	inside.SignalProcess(itg, usr1(linux.SIGUSR1))
	init.SetSignalMask(linux.MakeSignalSet(linux.SIGUSR1))
	info, ok := itg.pending.dequeue(0)
	if !ok || info.Signo != int32(linux.SIGUSR1) || info.Pid() != 2 {
		t.Fatalf("queued %+v (pid %d), want SIGUSR1 from 2", info, info.Pid())
	}
	// From the parent namespace the sender is 0, and SIGKILL kills.
	root.SignalProcess(itg, usr1(linux.SIGUSR1))
	if info, _ := itg.pending.dequeue(0); info.Pid() != 0 {
		t.Fatalf("sender from outside seen as %d", info.Pid())
	}
	root.SignalProcess(itg, usr1(linux.SIGTERM))
	if itg.exitingFlag.Load() || itg.SharedPendingSignals().Contains(linux.SIGTERM) {
		t.Fatal("SIGTERM from outside with the default action reached init")
	}
	root.SignalProcess(itg, usr1(linux.SIGKILL))
	if !itg.exitingFlag.Load() {
		t.Fatal("SIGKILL from the parent namespace did not kill init")
	}
}

func TestKillAllStaysInCallersNamespace(t *testing.T) {
	root := newSignalTask(t)
	outsider := spawn(t, root, 0)
	defer finish(outsider)
	init := spawn(t, root, linux.CLONE_NEWPID)
	defer finish(init)
	a := spawn(t, init, 0)
	defer finish(a)
	if err := init.KillAll(usr1(linux.SIGUSR2)); err != nil {
		t.Fatal(err)
	}
	if !a.ThreadGroup().SharedPendingSignals().Contains(linux.SIGUSR2) {
		t.Fatal("kill(-1) missed a process of the namespace")
	}
	if outsider.ThreadGroup().SharedPendingSignals() != 0 || root.ThreadGroup().SharedPendingSignals() != 0 {
		t.Fatal("kill(-1) inside a namespace reached processes outside it")
	}
}

func TestIDsStayAllocatedWhileAGroupUsesThem(t *testing.T) {
	root := newSignalTask(t)
	init := spawn(t, root, linux.CLONE_NEWPID)
	defer finish(init)
	leader := spawn(t, init, 0)
	member := spawn(t, leader, 0)
	defer finish(member)
	if err := init.ThreadGroup().SetProcessGroup(leader.ThreadGroup(), 0); err != nil {
		t.Fatal(err)
	}
	if err := leader.ThreadGroup().SetProcessGroup(member.ThreadGroup(), leader.ThreadGroup().ID()); err != nil {
		t.Fatal(err)
	}
	pgid := leader.ThreadGroup().ID()
	finish(leader)
	init.ThreadGroup().Wait(WaitOptions{PID: -1, NoHang: true})
	// The leader is reaped, but its number still names the group inside.
	if got := init.IDOf(member.ThreadGroup().ProcessGroupID()); got != 2 || member.ThreadGroup().ProcessGroupID() != pgid {
		t.Fatalf("group seen as %d inside", got)
	}
	next := spawn(t, init, 0)
	defer finish(next)
	if next.GetPID() == 2 || next.ThreadID() == pgid {
		t.Fatal("a process group's ID was given to a new process")
	}
}

func TestOrphanedStoppedGroupIsHungUp(t *testing.T) {
	root := newSignalTask(t)
	leader := spawn(t, root, 0)
	if _, err := leader.ThreadGroup().CreateSession(); err != nil {
		t.Fatal(err)
	}
	job := spawn(t, leader, 0)
	defer finish(job)
	if err := leader.ThreadGroup().SetProcessGroup(job.ThreadGroup(), 0); err != nil {
		t.Fatal(err)
	}
	job.ThreadGroup().SendSignal(usr1(linux.SIGSTOP))
	job.deliverSignals()
	if !job.ThreadGroup().IsStopped() {
		t.Fatal("job did not stop")
	}
	// The session leader was the job's link; with it gone the group is
	// orphaned (init does not count) and gets SIGHUP, then SIGCONT.
	finish(leader)
	if job.ThreadGroup().IsStopped() || !job.PendingSignals().Contains(linux.SIGHUP) {
		t.Fatalf("orphaned stopped job: stopped %v, pending %v", job.ThreadGroup().IsStopped(), job.PendingSignals())
	}
	// Job-control stops are discarded in an orphaned group; SIGSTOP is not.
	job.SigAction(linux.SIGHUP, &linux.Sigaction{Handler: linux.SIG_IGN})
	job.ThreadGroup().SendSignal(usr1(linux.SIGTSTP))
	job.deliverSignals()
	if job.ThreadGroup().IsStopped() {
		t.Fatal("SIGTSTP stopped an orphaned process group")
	}
	job.ThreadGroup().SendSignal(usr1(linux.SIGSTOP))
	job.deliverSignals()
	if !job.ThreadGroup().IsStopped() {
		t.Fatal("SIGSTOP did not stop an orphaned process group")
	}
}
