// Package seccomp owns seccomp filters for Carapace's own processes (the
// Sentry and the Gofer) and, later, for sandboxed programs: rule sets that
// map syscall numbers and arguments to actions, their compilation into
// compact classic BPF programs, and installing them with seccomp(2).
package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Action is a seccomp filter return value: a SECCOMP_RET_* action in the
// high 16 bits and its data in the low 16 bits.
type Action uint32

// The actions, by increasing precedence in the kernel.
const (
	ActionAllow       Action = unix.SECCOMP_RET_ALLOW
	ActionLog         Action = unix.SECCOMP_RET_LOG
	ActionTrace       Action = unix.SECCOMP_RET_TRACE
	ActionUserNotif   Action = 0x7fc00000 // SECCOMP_RET_USER_NOTIF
	ActionErrno       Action = unix.SECCOMP_RET_ERRNO
	ActionTrap        Action = unix.SECCOMP_RET_TRAP
	ActionKillThread  Action = unix.SECCOMP_RET_KILL_THREAD
	ActionKillProcess Action = unix.SECCOMP_RET_KILL_PROCESS
)

const (
	actionMask = unix.SECCOMP_RET_ACTION_FULL
	dataMask   = unix.SECCOMP_RET_DATA
)

// Errno is the action that fails the syscall with e. The kernel caps the
// value at 4095.
func Errno(e unix.Errno) Action {
	return ActionErrno | Action(uint32(e)&dataMask)
}

// Trace is the action that notifies a ptrace tracer with data as the
// event message (without a tracer the syscall fails with ENOSYS).
func Trace(data uint16) Action {
	return ActionTrace | Action(data)
}

// Kind returns the action without its data.
func (a Action) Kind() Action { return a & actionMask }

// Data returns the action's 16 data bits.
func (a Action) Data() uint16 { return uint16(a & dataMask) }

func (a Action) isKill() bool {
	return a.Kind() == ActionKillProcess || a.Kind() == ActionKillThread
}

func (a Action) valid() error {
	switch a.Kind() {
	case ActionAllow, ActionLog, ActionUserNotif, ActionKillProcess, ActionKillThread:
		if a.Data() != 0 {
			return fmt.Errorf("action %v carries data %#x it cannot use", a.Kind(), a.Data())
		}
		return nil
	case ActionTrace, ActionErrno, ActionTrap:
		return nil
	}
	return fmt.Errorf("unknown seccomp action %#x", uint32(a))
}

func (a Action) String() string {
	switch a.Kind() {
	case ActionAllow:
		return "allow"
	case ActionLog:
		return "log"
	case ActionTrace:
		return fmt.Sprintf("trace(%d)", a.Data())
	case ActionUserNotif:
		return "user-notif"
	case ActionErrno:
		return fmt.Sprintf("errno(%d)", a.Data())
	case ActionTrap:
		if a.Data() != 0 {
			return fmt.Sprintf("trap(%d)", a.Data())
		}
		return "trap"
	case ActionKillThread:
		return "kill-thread"
	case ActionKillProcess:
		return "kill-process"
	}
	return fmt.Sprintf("action(%#x)", uint32(a))
}
