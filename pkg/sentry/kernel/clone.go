package kernel

import (
	"encoding/binary"
	"fmt"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// CloneOptions are clone(2)'s arguments.
type CloneOptions struct {
	Flags     uint64
	Stack     hostarch.Addr // new stack pointer, 0 to keep the parent's
	ParentTID hostarch.Addr // CLONE_PARENT_SETTID
	ChildTID  hostarch.Addr // CLONE_CHILD_SETTID / CLONE_CHILD_CLEARTID
	TLS       uintptr       // CLONE_SETTLS
	// Clone3 takes the exit signal from ExitSignal rather than from the
	// low byte of Flags (which clone3 leaves to CLONE_NEWTIME).
	Clone3     bool
	ExitSignal unix.Signal
}

// supportedCloneFlags are the flags Clone implements; namespaces and the
// rest give EINVAL for now.
const supportedCloneFlags = linux.CSIGNAL | linux.CLONE_VM | linux.CLONE_FS | linux.CLONE_FILES |
	linux.CLONE_SIGHAND | linux.CLONE_VFORK | linux.CLONE_PARENT | linux.CLONE_THREAD |
	linux.CLONE_SYSVSEM | linux.CLONE_SETTLS | linux.CLONE_PARENT_SETTID |
	linux.CLONE_CHILD_CLEARTID | linux.CLONE_DETACHED | linux.CLONE_CHILD_SETTID | linux.CLONE_IO |
	linux.CLONE_PTRACE | linux.CLONE_UNTRACED | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNS |
	linux.CLONE_CLEAR_SIGHAND | linux.CLONE_NEWPID

// Clone creates a thread or process as clone(2) does and starts it. It
// returns the new TID (in the caller's PID namespace).
func (t *Task) Clone(o CloneOptions) (ThreadID, error) {
	f := o.Flags
	if f&(linux.CLONE_NEWUTS|linux.CLONE_NEWIPC|linux.CLONE_NEWNS|linux.CLONE_NEWPID) != 0 && !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	if f&linux.CLONE_NEWNS != 0 && f&linux.CLONE_FS != 0 {
		return 0, unix.EINVAL
	}
	if f&^supportedCloneFlags != 0 {
		return 0, fmt.Errorf("clone flags %#x: %w", f&^supportedCloneFlags, unix.EINVAL)
	}
	// The consistency rules of clone(2).
	if f&linux.CLONE_THREAD != 0 && f&linux.CLONE_SIGHAND == 0 {
		return 0, unix.EINVAL
	}
	if f&linux.CLONE_SIGHAND != 0 && f&linux.CLONE_VM == 0 {
		return 0, unix.EINVAL
	}
	if f&linux.CLONE_SIGHAND != 0 && f&linux.CLONE_CLEAR_SIGHAND != 0 {
		return 0, unix.EINVAL
	}
	// A namespace's init may not make siblings, and a thread may not
	// live in another PID namespace than its process.
	if f&linux.CLONE_PARENT != 0 && t.tg.isNSInit.Load() {
		return 0, unix.EINVAL
	}
	childNS := t.PIDNamespaceForChildren()
	if f&linux.CLONE_THREAD != 0 && (f&linux.CLONE_NEWPID != 0 || childNS != t.tg.pidns) {
		return 0, unix.EINVAL
	}
	if f&linux.CLONE_NEWPID != 0 {
		if childNS != t.tg.pidns {
			return 0, unix.EINVAL
		}
		var err error
		if childNS, err = childNS.newChild(); err != nil {
			return 0, err
		}
	}
	exitSignal := unix.Signal(f & linux.CSIGNAL)
	if o.Clone3 {
		if f&linux.CSIGNAL != 0 {
			return 0, unix.EINVAL
		}
		exitSignal = o.ExitSignal
	}
	if f&linux.CLONE_THREAD != 0 {
		exitSignal = 0
	} else if exitSignal != 0 && !linux.Signal(exitSignal).IsValid() {
		return 0, unix.EINVAL
	}

	if err := t.checkNProc(); err != nil {
		return 0, err
	}
	var m *mm.MemoryManager
	if f&linux.CLONE_VM != 0 {
		m = t.mm
		m.IncUsers()
	} else {
		var err error
		if m, err = t.mm.Fork(t); err != nil {
			return 0, err
		}
	}
	fdt := t.fdTable
	if f&linux.CLONE_FILES != 0 {
		fdt.IncRef()
	} else {
		fdt = fdt.Fork()
	}
	fsc := t.fsContext
	mntns := t.mntns
	switch {
	case fsc == nil:
	case f&linux.CLONE_NEWNS != 0:
		fsc, mntns = t.newMountNamespaceFSContext(t)
	case f&linux.CLONE_FS != 0:
		fsc.IncRef()
	default:
		fsc = fsc.Fork()
	}
	if mntns != nil && mntns == t.mntns {
		mntns.IncRef()
	}
	// undo releases what the child would have owned when creating it fails.
	undo := func() {
		m.DecUsers(t)
		fdt.DecRef(t)
		if fsc != nil {
			fsc.DecRef(t)
		}
		if mntns != nil {
			mntns.DecRef(t)
		}
	}
	ac := t.ac.Fork()
	ac.SetReturn(0)
	if o.Stack != 0 {
		ac.SetStack(o.Stack)
	}
	if f&linux.CLONE_SETTLS != 0 {
		if err := ac.SetTLS(o.TLS); err != nil {
			undo()
			return 0, unix.EPERM
		}
	}
	a := newTaskArgs{
		mm: m, fdTable: fdt, fsContext: fsc, creds: t.Credentials(), ac: ac, sigMask: t.SignalMask(), image: t.image.Load(),
	}
	if f&linux.CLONE_THREAD != 0 {
		a.group = t.tg
	} else {
		a.newGroup = true
		a.pidns = childNS
		a.exitSignal = exitSignal
		a.parent = t.tg
		if f&linux.CLONE_PARENT != 0 {
			t.k.mu.Lock()
			a.parent = t.tg.parent
			t.k.mu.Unlock()
			if a.parent == nil {
				undo()
				return 0, unix.EINVAL
			}
		}
		switch {
		case f&linux.CLONE_SIGHAND != 0:
			a.handlers = t.tg.handlers.Load()
		case f&linux.CLONE_CLEAR_SIGHAND != 0:
			// clone3: caught signals revert to SIG_DFL, as at execve.
			a.handlers = t.tg.handlers.Load().ResetForExec()
		default:
			a.handlers = t.tg.handlers.Load().Fork()
		}
		t.tg.signalMu.Lock()
		lim := t.tg.limits
		t.tg.signalMu.Unlock()
		a.limits = &lim
	}
	child, err := t.k.newTask(t, a)
	if err != nil {
		undo()
		return 0, err
	}
	child.name.Store(t.name.Load())
	child.mntns = mntns
	child.noNewPrivs = t.noNewPrivs
	// A new thread (sharing the address space, not vfork) starts without
	// an alternate signal stack; a forked child keeps its parent's.
	alt := arch.SignalStack{Flags: arch.SignalStackDisable}
	if f&(linux.CLONE_VM|linux.CLONE_VFORK) != linux.CLONE_VM {
		alt = t.AltStack()
	}
	child.tg.signalMu.Lock()
	child.altStack = alt
	child.tg.signalMu.Unlock()
	child.inheritSeccomp(t)
	child.personality.Store(t.personality.Load())
	child.inheritSched(t)
	if f&linux.CLONE_NEWUTS != 0 {
		child.uts.Store(t.newUTSNamespace())
	} else {
		child.uts.Store(t.uts.Load())
	}
	// The parent sees the child's TID in its own namespace, the child
	// its TID in the namespace it lives in.
	parentTID := t.tg.pidns.IDOfTask(child)
	var tidBuf [4]byte
	binary.LittleEndian.PutUint32(tidBuf[:], uint32(parentTID))
	if f&linux.CLONE_PARENT_SETTID != 0 {
		t.CopyOut(o.ParentTID, tidBuf[:])
	}
	if f&linux.CLONE_CHILD_SETTID != 0 {
		binary.LittleEndian.PutUint32(tidBuf[:], uint32(child.tg.pidns.IDOfTask(child)))
		child.mm.CopyOut(child, o.ChildTID, tidBuf[:], usermem.IOOpts{})
	}
	if f&linux.CLONE_CHILD_CLEARTID != 0 {
		child.clearChildTID = o.ChildTID
	}
	var vforkDone chan struct{}
	if f&linux.CLONE_VFORK != 0 {
		vforkDone = make(chan struct{})
		child.vforkDone = vforkDone
	}
	child.start()
	if vforkDone != nil {
		// The parent sleeps until the child execs or exits; only its own
		// group's exit ends the wait early. Signals stay pending meanwhile.
	wait:
		for {
			select {
			case <-vforkDone:
				break wait
			case <-t.interruptCh:
				if t.tg.exitingFlag.Load() || t.killed.Load() {
					break wait
				}
			}
		}
	}
	return parentTID, nil
}

// Exit ends the calling thread (exit(2)) with code.
func (t *Task) Exit(code int) { t.exitThread(WaitStatusExited(code)) }

// ExitGroup ends the process (exit_group(2)) with code.
func (t *Task) ExitGroup(code int) {
	t.tg.exitGroup(WaitStatusExited(code))
	t.exitThread(WaitStatusExited(code))
}

// checkNProc enforces RLIMIT_NPROC: a user at the limit of tasks may not
// make more (EAGAIN), unless privileged (root, CAP_SYS_RESOURCE or
// CAP_SYS_ADMIN), as clone(2) says.
func (t *Task) checkNProc() error {
	lim := t.tg.Limit(linux.RLIMIT_NPROC).Cur
	if lim == linux.RLIM_INFINITY {
		return nil
	}
	c := t.Credentials()
	if c.RealUID == auth.RootUID || c.HasCapability(auth.CAP_SYS_RESOURCE) || c.HasCapability(auth.CAP_SYS_ADMIN) {
		return nil
	}
	t.k.mu.Lock()
	n := uint64(0)
	for _, o := range t.k.tasks {
		if o.Credentials().RealUID == c.RealUID {
			n++
		}
	}
	t.k.mu.Unlock()
	if n >= lim {
		return unix.EAGAIN
	}
	return nil
}
