package kernel

// Guest seccomp: the filters sandboxed programs install on themselves with
// seccomp(2) or prctl(PR_SET_SECCOMP), run by the Sentry (pkg/bpf's
// interpreter) before each syscall is dispatched, with Linux's semantics
// (Documentation/userspace-api/seccomp_filter.rst, man 2 seccomp).

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"golang.org/x/sys/unix"
)

// Seccomp modes, as PR_GET_SECCOMP and /proc/[pid]/status report them.
const (
	SeccompModeDisabled = 0
	SeccompModeStrict   = 1
	SeccompModeFilter   = 2
)

// SECCOMP_RET_* actions (the high 16 bits of a filter's return value).
const (
	seccompRetKillProcess = 0x80000000
	seccompRetKillThread  = 0x00000000
	seccompRetTrap        = 0x00030000
	seccompRetErrno       = 0x00050000
	seccompRetUserNotif   = 0x7fc00000
	seccompRetTrace       = 0x7ff00000
	seccompRetLog         = 0x7ffc0000
	seccompRetAllow       = 0x7fff0000
	seccompRetActionFull  = 0xffff0000
	seccompRetData        = 0x0000ffff
)

// maxErrno is MAX_ERRNO, the largest errno SECCOMP_RET_ERRNO returns.
const maxErrno = 4095

// maxSeccompPathInstructions is MAX_INSNS_PER_PATH: the instructions of
// all of a task's filters, plus 4 per filter, may not exceed it.
const maxSeccompPathInstructions = 32768

// seccompFilter is one installed filter. Filters are immutable and form a
// chain from the newest to the oldest, shared by every task that
// inherited them.
type seccompFilter struct {
	prog bpf.Program
	// log is SECCOMP_FILTER_FLAG_LOG: actions other than allow are logged.
	log  bool
	prev *seccompFilter
	// pathLength is the instruction count of this filter and its
	// ancestors, with the kernel's per-filter overhead.
	pathLength int
}

// seccompState is a task's seccomp mode and filters. It is immutable and
// replaced as a whole (atomically: TSYNC writes other tasks' state), so
// the syscall path reads it without a lock.
type seccompState struct {
	mode   int
	filter *seccompFilter
}

var strictSeccomp = &seccompState{mode: SeccompModeStrict}

// SeccompMode returns the task's seccomp mode: SeccompModeDisabled,
// SeccompModeStrict or SeccompModeFilter.
func (t *Task) SeccompMode() int {
	if s := t.seccomp.Load(); s != nil {
		return s.mode
	}
	return SeccompModeDisabled
}

// SeccompFilters returns how many filters the task runs (the
// Seccomp_filters line of /proc/[pid]/status).
func (t *Task) SeccompFilters() int {
	n := 0
	if s := t.seccomp.Load(); s != nil {
		for f := s.filter; f != nil; f = f.prev {
			n++
		}
	}
	return n
}

// SetSeccompStrict puts the task in strict mode (SECCOMP_SET_MODE_STRICT):
// from now on only read, write, exit and rt_sigreturn are allowed. A task
// with filters cannot change mode (EINVAL).
func (t *Task) SetSeccompStrict() error {
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	if m := t.SeccompMode(); m != SeccompModeDisabled && m != SeccompModeStrict {
		return unix.EINVAL
	}
	t.seccomp.Store(strictSeccomp)
	return nil
}

// SeccompFilterOptions are the SECCOMP_SET_MODE_FILTER flags the kernel
// acts on.
type SeccompFilterOptions struct {
	// TSync installs the filter on every thread of the process, which
	// fails if a thread has filters that are not an ancestor of the
	// caller's (or is in strict mode).
	TSync bool
	// Log logs the filter's actions other than allow.
	Log bool
}

// AppendSeccompFilter installs p (validated as a seccomp filter) on the
// task, on top of its filters. Permission (no_new_privs or CAP_SYS_ADMIN)
// is the caller's to check. With TSync it returns, and installs nothing,
// the ID of a thread that cannot be synchronized.
func (t *Task) AppendSeccompFilter(p bpf.Program, o SeccompFilterOptions) (ThreadID, error) {
	if p.Kind() != bpf.SeccompFilter || p.Len() == 0 {
		return 0, unix.EINVAL
	}
	t.tg.signalMu.Lock()
	defer t.tg.signalMu.Unlock()
	old := t.seccomp.Load()
	var prev *seccompFilter
	if old != nil {
		if old.mode != SeccompModeFilter {
			return 0, unix.EINVAL
		}
		prev = old.filter
	}
	f := &seccompFilter{prog: p, log: o.Log, prev: prev, pathLength: p.Len()}
	if prev != nil {
		f.pathLength += prev.pathLength + 4
	}
	if f.pathLength > maxSeccompPathInstructions {
		return 0, unix.ENOMEM
	}
	next := &seccompState{mode: SeccompModeFilter, filter: f}
	if o.TSync {
		for _, o := range t.tg.tasks {
			if o == t {
				continue
			}
			s := o.seccomp.Load()
			if s == nil || (s.mode == SeccompModeFilter && isSeccompAncestor(s.filter, prev)) {
				continue
			}
			return o.vtid, nil
		}
		for _, o := range t.tg.tasks {
			o.seccomp.Store(next)
		}
	}
	t.seccomp.Store(next)
	return 0, nil
}

// isSeccompAncestor reports whether f is desc or one of its ancestors.
func isSeccompAncestor(f, desc *seccompFilter) bool {
	for ; desc != nil; desc = desc.prev {
		if desc == f {
			return true
		}
	}
	return f == nil
}

// inheritSeccomp gives a new task its creator's mode and filters (clone,
// fork; execve keeps the task's own). A new thread is already listed in
// the group, so a sibling's TSYNC may run concurrently: under the group's
// lock the copy sees either the state before it or the one it gave both.
func (t *Task) inheritSeccomp(parent *Task) {
	parent.tg.signalMu.Lock()
	t.seccomp.Store(parent.seccomp.Load())
	parent.tg.signalMu.Unlock()
}

// SeccompActionAvailable reports whether action is one the Sentry
// implements, for SECCOMP_GET_ACTION_AVAIL. User notification is not: no
// listener can be created.
func SeccompActionAvailable(action uint32) bool {
	switch action {
	case seccompRetKillProcess, seccompRetKillThread, seccompRetTrap, seccompRetErrno,
		seccompRetTrace, seccompRetLog, seccompRetAllow:
		return true
	}
	return false
}

// runSeccomp applies the task's seccomp state to syscall nr before it is
// dispatched. When the syscall must not run it returns skip with the
// result the task sees (or the task has been killed).
func (t *Task) runSeccomp(s *seccompState, nr uintptr, args arch.SyscallArguments) (rv uintptr, skip bool, err error) {
	if s.mode == SeccompModeStrict {
		switch nr {
		case unix.SYS_READ, unix.SYS_WRITE, unix.SYS_EXIT, unix.SYS_RT_SIGRETURN:
			return 0, false, nil
		}
		log.Infof("seccomp: %v: syscall %d outside strict mode: killed", t, nr)
		t.seccompKill(unix.SIGKILL, false)
		return 0, true, ErrNoSyscallReturn
	}
	d := bpf.SeccompData{Nr: int32(nr), Arch: linux.AUDIT_ARCH_X86_64, InstructionPointer: uint64(t.ac.IP())}
	for i := range args {
		d.Args[i] = uint64(args[i].Value)
	}
	ret, logged := s.evaluate(&d)
	action, data := ret&seccompRetActionFull, ret&seccompRetData
	switch action {
	case seccompRetAllow:
		return 0, false, nil
	case seccompRetLog:
		log.Infof("seccomp: %v: syscall %d logged", t, nr)
		return 0, false, nil
	case seccompRetErrno:
		if data > maxErrno {
			data = maxErrno
		}
		t.seccompLog(logged, nr, ret)
		// Set directly, so that no errno value means a restart.
		t.ac.SetReturn(uintptr(-int64(data)))
		return 0, true, ErrNoSyscallReturn
	case seccompRetTrap:
		t.seccompLog(logged, nr, ret)
		info := linux.SignalInfo{Signo: int32(unix.SIGSYS), Code: linux.SIGSYS_SECCOMP, Errno: int32(data)}
		info.SetCallAddr(uint64(t.ac.IP()))
		info.SetSyscall(int32(nr))
		info.SetArch(linux.AUDIT_ARCH_X86_64)
		t.forceSignal(&info)
		// As Linux rolls the syscall back: rax holds its number again.
		t.ac.SetReturn(nr)
		return 0, true, ErrNoSyscallReturn
	case seccompRetTrace, seccompRetUserNotif:
		// No tracer (nor notification listener) can exist for a
		// sandboxed task: the syscall fails with ENOSYS.
		t.seccompLog(logged, nr, ret)
		return 0, true, unix.ENOSYS
	case seccompRetKillThread:
		log.Infof("seccomp: %v: syscall %d: thread killed by filter", t, nr)
		t.seccompKill(unix.SIGSYS, false)
		return 0, true, ErrNoSyscallReturn
	default: // SECCOMP_RET_KILL_PROCESS and unknown actions
		log.Infof("seccomp: %v: syscall %d: process killed by filter (action %#x)", t, nr, ret)
		t.seccompKill(unix.SIGSYS, true)
		return 0, true, ErrNoSyscallReturn
	}
}

// evaluate runs every filter on d. The lowest action (as a signed value:
// kill process first, allow last) wins, and among equal actions the newest
// filter's data; logged is the winning filter's FLAG_LOG.
func (s *seccompState) evaluate(d *bpf.SeccompData) (ret uint32, logged bool) {
	ret = seccompRetAllow
	for f := s.filter; f != nil; f = f.prev {
		r := f.prog.RunSeccomp(d)
		if int32(r&seccompRetActionFull) < int32(ret&seccompRetActionFull) {
			ret, logged = r, f.log
		}
	}
	return ret, logged
}

func (t *Task) seccompLog(logged bool, nr uintptr, ret uint32) {
	if logged {
		log.Infof("seccomp: %v: syscall %d: action %#x", t, nr, ret)
	}
}

// seccompKill ends the task as killed by sig, and its whole process if
// wholeProcess or if it is the last thread (Linux then forces the signal
// on the process, which dies of it).
func (t *Task) seccompKill(sig unix.Signal, wholeProcess bool) {
	ws := WaitStatusSignaled(sig)
	t.tg.signalMu.Lock()
	alone := len(t.tg.tasks) <= 1
	t.tg.signalMu.Unlock()
	if wholeProcess || alone {
		t.tg.exitGroup(ws)
	}
	t.exitThread(ws)
}
