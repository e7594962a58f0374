// Package platform owns the seam between the Sentry and the mechanism that
// runs application code: a Platform makes AddressSpaces (the host-side
// holders of an application's page mappings) and Contexts (the means of
// running one application thread until it traps back to the Sentry).
// Implementations live in subpackages (ptrace/); a platform knows nothing
// of tasks, files or the Sentry's memory map.
package platform

import (
	"errors"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
)

// Platform runs application code. It is built over one memory file (for
// ptrace: ptrace.New(mf)).
type Platform interface {
	// NewAddressSpace returns a new, empty application address space
	// (ptrace: a new stub process holding the memory file).
	NewAddressSpace() (AddressSpace, error)
	// NewContext returns a Context for running one application thread.
	NewContext() (Context, error)
	// MinUserAddress is the lowest address an application may map.
	MinUserAddress() hostarch.Addr
	// MaxUserAddress is one past the highest address an application may
	// map: hostarch.MaxUserAddress minus whatever the platform reserves.
	MaxUserAddress() hostarch.Addr
	// CPUIDFaulting reports whether application CPUID instructions trap
	// to the Sentry (as a SIGSEGV TrapSignal at the instruction), so the
	// Sentry can emulate CPUID.
	CPUIDFaulting() bool
	// Close releases the platform's resources.
	Close()
}

// AddressSpace is the host side of one application address space.
type AddressSpace interface {
	// MapFile maps [offset, offset+length) of the memory file at addr
	// with access at, replacing whatever was there. addr, offset and
	// length are page aligned. precommit asks for the pages to be
	// populated now.
	MapFile(addr hostarch.Addr, offset, length uint64, at hostarch.AccessType, precommit bool) error
	// Unmap removes all mappings in [addr, addr+length).
	Unmap(addr hostarch.Addr, length uint64)
	// Release destroys the address space; idempotent.
	Release()
}

// TrapKind says why Context.Switch returned.
type TrapKind uint8

// Kinds of trap.
const (
	// TrapSyscall: the thread made a syscall; number and arguments are in
	// the registers (arch.Context64.SyscallNo/SyscallArgs) and the
	// instruction pointer is already past the SYSCALL instruction.
	TrapSyscall TrapKind = iota + 1
	// TrapFault: a page fault at Trap.Addr for a Trap.Access access.
	TrapFault
	// TrapSignal: a synchronous signal other than a page fault (int3,
	// ud2, divide error, general protection, SIGBUS …).
	TrapSignal
	// TrapInterrupted: Context.Interrupt was called.
	TrapInterrupted
)

func (k TrapKind) String() string {
	switch k {
	case TrapSyscall:
		return "syscall"
	case TrapFault:
		return "fault"
	case TrapSignal:
		return "signal"
	case TrapInterrupted:
		return "interrupted"
	default:
		return "unknown"
	}
}

// Trap says why Switch returned. It is filled into a caller-owned value so
// the hot path allocates nothing.
type Trap struct {
	Kind TrapKind
	// Addr is the faulting address (TrapFault), or si_addr of the signal
	// (TrapSignal with SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP).
	Addr hostarch.Addr
	// Access is the access that faulted (TrapFault).
	Access hostarch.AccessType
	// Signo is the signal number (TrapSignal; SIGSEGV for TrapFault).
	Signo int32
	// Code is the si_code of the host siginfo.
	Code int32
}

// Context runs application threads.
type Context interface {
	// Switch runs the app thread described by ac in as on the calling
	// goroutine's locked OS thread (the caller has called
	// runtime.LockOSThread, and calls every Switch and Release of this
	// Context from that goroutine) until it makes a syscall, faults, gets
	// a synchronous signal, or is interrupted, saving its state back into
	// ac. err is only for platform failure (e.g. ErrStubDied), never for
	// the app's own faults.
	Switch(as AddressSpace, ac *arch.Context64, trap *Trap) error
	// Interrupt makes a running Switch, or the next one, return
	// TrapInterrupted promptly. Callable from any goroutine.
	Interrupt()
	// Release frees the Context's host resources.
	Release()
}

// ErrStubDied is returned by Switch when the host process running the
// application died (killed from outside, or its address space released).
var ErrStubDied = errors.New("platform: application stub process died")

// ErrContextThread is returned by Switch when it is called from a
// different OS thread than the one that first switched the Context into
// this address space (ptrace only lets one thread trace a tracee).
var ErrContextThread = errors.New("platform: Context switched from a different OS thread")
