package kernel

import (
	"errors"
	"sync/atomic"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/strace"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// SyscallFn is a syscall handler. It returns the value for rax, or an
// error: an errno (possibly wrapped; restart errnos included), or
// ErrNoSyscallReturn when the handler set the registers itself.
type SyscallFn func(t *Task, args arch.SyscallArguments) (uintptr, error)

// ErrNoSyscallReturn tells the dispatcher to leave rax alone
// (rt_sigreturn, execve, exit).
var ErrNoSyscallReturn = errors.New("syscall sets registers itself")

// tableSize covers every amd64 syscall number.
const tableSize = linux.MaxSyscallNumber + 1

// SyscallTable maps syscall numbers to handlers: a fixed array, so that
// dispatch is an index, with no lock and no allocation.
type SyscallTable struct {
	fns [tableSize]SyscallFn
	// reported marks numbers already logged as unimplemented.
	reported [tableSize]atomic.Bool
	// unknown counts numbers beyond the table.
	unknown atomic.Bool
}

// NewSyscallTable returns an empty table: every syscall is ENOSYS.
func NewSyscallTable() *SyscallTable { return &SyscallTable{} }

// Register installs fn for nr. Tables are filled before the kernel runs.
func (st *SyscallTable) Register(nr uintptr, fn SyscallFn) {
	if nr >= tableSize {
		panic("kernel: syscall number beyond the table")
	}
	st.fns[nr] = fn
}

// Lookup returns the handler for nr, or nil.
func (st *SyscallTable) Lookup(nr uintptr) SyscallFn {
	if nr < tableSize {
		return st.fns[nr]
	}
	return nil
}

// reportMissing logs an unimplemented syscall the first time it is made.
func (st *SyscallTable) reportMissing(nr uintptr) {
	if nr < tableSize {
		if !st.reported[nr].Swap(true) {
			name := linux.SyscallName(nr)
			if name == "" {
				name = "unassigned"
			}
			log.Warningf("unimplemented syscall %d (%s): returning ENOSYS", nr, name)
		}
		return
	}
	if !st.unknown.Swap(true) {
		log.Warningf("syscall number %d beyond the table: returning ENOSYS", nr)
	}
}

// ExecuteSyscall runs syscall nr with args as the task and returns what
// the handler returned (ENOSYS for unimplemented numbers).
func (t *Task) ExecuteSyscall(nr uintptr, args arch.SyscallArguments) (uintptr, error) {
	if s := t.seccomp.Load(); s != nil {
		if rv, skip, err := t.runSeccomp(s, nr, args); skip {
			return rv, err
		}
	}
	fn := t.k.syscalls.Lookup(nr)
	if fn == nil {
		t.k.syscalls.reportMissing(nr)
		return 0, unix.ENOSYS
	}
	return fn(t, args)
}

// doSyscall handles a syscall trap: dispatch, then the return value or
// errno into rax. Restart errnos are kept for signal delivery to settle.
func (t *Task) doSyscall() {
	nr, args := t.ac.SyscallNo(), t.ac.SyscallArgs()
	if t.k.strace {
		t.straceSyscall(nr, args)
		return
	}
	t.finishSyscall(t.ExecuteSyscall(nr, args))
}

// straceSyscall is doSyscall with a log line, its path arguments read
// before the call (execve replaces the memory they are in).
func (t *Task) straceSyscall(nr uintptr, args arch.SyscallArguments) {
	var raw [6]uintptr
	var strs [6]string
	paths := strace.PathArgs(nr)
	for i, a := range args {
		raw[i] = a.Value
		if paths&(1<<i) != 0 {
			strs[i] = t.straceString(a.Pointer())
		}
	}
	rv, err := t.ExecuteSyscall(nr, args)
	log.Infof("%s", strace.LineWithMemory(int32(t.tid), nr, raw, &strs, straceMemory{t}, rv, err))
	t.finishSyscall(rv, err)
}

// straceString reads a NUL-terminated string of at most 256 bytes for the
// strace log.
func (t *Task) straceString(addr hostarch.Addr) string {
	var buf [256]byte
	n, _ := t.mm.CopyIn(t, addr, buf[:], usermem.IOOpts{})
	for i, c := range buf[:n] {
		if c == 0 {
			return string(buf[:i])
		}
	}
	if n == 0 {
		return "<unreadable>"
	}
	return string(buf[:n]) + "..."
}

// finishSyscall puts a handler's result in the registers.
func (t *Task) finishSyscall(rv uintptr, err error) {
	if err == nil {
		t.ac.SetReturn(rv)
		return
	}
	if err == ErrNoSyscallReturn {
		return
	}
	e := errnoOf(err)
	if linux.IsRestartErrno(e) {
		t.restartErrno = e
		// If no signal intervenes the syscall restarts; if a handler
		// runs it decides; Linux leaves -errno in rax meanwhile.
		t.sigPending.Store(true)
	}
	t.ac.SetReturn(negErrno(e))
}

// errnoOf extracts the errno a handler's error carries.
func errnoOf(err error) unix.Errno {
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	log.Warningf("syscall returned a non-errno error, reporting EIO: %v", err)
	return unix.EIO
}

// SetRestartBlock records what restart_syscall(2) resumes after an
// ERESTART_RESTARTBLOCK return.
func (t *Task) SetRestartBlock(fn func(t *Task) (uintptr, error)) { t.restartBlock = fn }

// RestartBlock takes the recorded restart function (nil if none).
func (t *Task) RestartBlock() func(t *Task) (uintptr, error) {
	fn := t.restartBlock
	t.restartBlock = nil
	return fn
}

// negErrno is -e as a register value.
func negErrno(e unix.Errno) uintptr { return uintptr(-int64(e)) }
