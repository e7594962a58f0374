// Package arch owns one application thread's user CPU state on amd64: the
// general registers (in the kernel's user_regs_struct layout), the FP and
// extended state (an XSAVE area sized from CPUID, or a 512-byte FXSAVE area
// on hosts without XSAVE), the syscall argument/return convention and the
// layout of the rt_sigframe Linux builds for signal delivery.
package arch

import (
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
)

// Registers has the layout of the kernel's struct user_regs_struct, so it
// can be passed to PTRACE_GETREGS/PTRACE_SETREGS directly.
type Registers struct {
	R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8, Rax, Rcx, Rdx, Rsi, Rdi, Orig_rax,
	Rip, Cs, Eflags, Rsp, Ss, Fs_base, Gs_base, Ds, Es, Fs, Gs uint64
}

// User segment selectors of the 64-bit flat model, as Linux sets them.
const (
	UserCS = 0x33
	UserSS = 0x2b
)

// Bits of RFLAGS.
const (
	EflagsCF = 1 << 0
	EflagsPF = 1 << 2
	EflagsAF = 1 << 4
	EflagsZF = 1 << 6
	EflagsSF = 1 << 7
	EflagsTF = 1 << 8
	EflagsIF = 1 << 9
	EflagsDF = 1 << 10
	EflagsOF = 1 << 11
	EflagsRF = 1 << 16
	EflagsAC = 1 << 18

	// eflagsRestorable are the bits a user signal frame may change (Linux's FIX_EFLAGS).
	eflagsRestorable = EflagsAC | EflagsOF | EflagsDF | EflagsTF | EflagsSF | EflagsZF |
		EflagsAF | EflagsPF | EflagsCF | EflagsRF
)

// SyscallArgument is one raw syscall argument register.
type SyscallArgument struct{ Value uintptr }

// SyscallArguments are the six argument registers in ABI order.
type SyscallArguments [6]SyscallArgument

// Int returns the argument as a C int.
func (a SyscallArgument) Int() int32 { return int32(a.Value) }

// Uint returns the argument as a C unsigned int.
func (a SyscallArgument) Uint() uint32 { return uint32(a.Value) }

// Int64 returns the argument as a C long.
func (a SyscallArgument) Int64() int64 { return int64(a.Value) }

// Uint64 returns the argument as a C unsigned long.
func (a SyscallArgument) Uint64() uint64 { return uint64(a.Value) }

// Pointer returns the argument as an application address.
func (a SyscallArgument) Pointer() hostarch.Addr { return hostarch.Addr(a.Value) }

// SizeT returns the argument as a size_t.
func (a SyscallArgument) SizeT() uint { return uint(a.Value) }

// Context64 is one application thread's user CPU state.
type Context64 struct {
	Regs Registers
	// FP is the thread's FP/extended state in the host's XSAVE (standard,
	// uncompacted) format, or FXSAVE format when the host lacks XSAVE.
	FP FPState

	// fpLoader, when set, holds the thread's current FP state: FP is
	// stale until SyncFP fetches it (see SetFPLoader).
	fpLoader FPLoader
	fpGen    uint64
}

// FPLoader is implemented by platforms that leave a stopped thread's FP
// state in the host until it is needed (fetching it costs a host call).
type FPLoader interface {
	// LoadFP copies the thread's FP state into dst if the thread has not
	// run since stop generation gen, and reports whether it did.
	LoadFP(dst FPState, gen uint64) bool
}

// SetFPLoader records that c.FP is stale and l holds the current FP state
// as of generation gen. Platforms call it instead of copying FP state out
// on every trap; nil clears it.
func (c *Context64) SetFPLoader(l FPLoader, gen uint64) { c.fpLoader, c.fpGen = l, gen }

// PendingFP returns the loader set by SetFPLoader, if FP is still stale.
func (c *Context64) PendingFP() (FPLoader, uint64) { return c.fpLoader, c.fpGen }

// SyncFP makes c.FP current. Methods of Context64 that use FP call it
// themselves; code that reads FP directly must call it first when the
// platform defers FP state (ptrace with lazy FP). It must be called on
// the goroutine that runs the thread.
func (c *Context64) SyncFP() {
	if l := c.fpLoader; l != nil {
		c.fpLoader = nil
		l.LoadFP(c.FP, c.fpGen)
	}
}

// New returns the state of a fresh thread: 64-bit user selectors,
// interrupts enabled and the FP state Linux gives a new process.
func New() *Context64 {
	return &Context64{
		Regs: Registers{
			Cs:       UserCS,
			Ss:       UserSS,
			Eflags:   EflagsIF | 0x2, // bit 1 is architecturally always set
			Orig_rax: ^uint64(0),
		},
		FP: NewFPState(),
	}
}

// Fork returns a deep copy of c for a new thread or process.
func (c *Context64) Fork() *Context64 {
	c.SyncFP()
	return &Context64{Regs: c.Regs, FP: c.FP.Fork()}
}

// SyscallNo returns the number of the syscall the thread is making.
func (c *Context64) SyscallNo() uintptr { return uintptr(c.Regs.Orig_rax) }

// SyscallArgs returns the syscall arguments: rdi, rsi, rdx, r10, r8, r9.
func (c *Context64) SyscallArgs() SyscallArguments {
	return SyscallArguments{
		{uintptr(c.Regs.Rdi)}, {uintptr(c.Regs.Rsi)}, {uintptr(c.Regs.Rdx)},
		{uintptr(c.Regs.R10)}, {uintptr(c.Regs.R8)}, {uintptr(c.Regs.R9)},
	}
}

// Return returns the syscall return register (rax).
func (c *Context64) Return() uintptr { return uintptr(c.Regs.Rax) }

// SetReturn sets the syscall return register (rax).
func (c *Context64) SetReturn(v uintptr) { c.Regs.Rax = uint64(v) }

// IP returns the instruction pointer.
func (c *Context64) IP() hostarch.Addr { return hostarch.Addr(c.Regs.Rip) }

// SetIP sets the instruction pointer.
func (c *Context64) SetIP(a hostarch.Addr) { c.Regs.Rip = uint64(a) }

// Stack returns the stack pointer.
func (c *Context64) Stack() hostarch.Addr { return hostarch.Addr(c.Regs.Rsp) }

// SetStack sets the stack pointer.
func (c *Context64) SetStack(a hostarch.Addr) { c.Regs.Rsp = uint64(a) }

// TLS returns the FS base, the thread pointer of the amd64 TLS ABI.
func (c *Context64) TLS() uintptr { return uintptr(c.Regs.Fs_base) }

// SetTLS sets the FS base; like arch_prctl(ARCH_SET_FS) it refuses
// addresses outside the user half of the canonical address space.
func (c *Context64) SetTLS(v uintptr) error {
	if !IsValidTLS(v) {
		return fmt.Errorf("arch: TLS base %#x is not a canonical user address", v)
	}
	c.Regs.Fs_base = uint64(v)
	return nil
}

// IsValidTLS reports whether v may be loaded into FS/GS base.
func IsValidTLS(v uintptr) bool { return uint64(v) < 1<<47 }

// syscallInsnLen is the length of the SYSCALL instruction (0f 05).
const syscallInsnLen = 2

// SysRestartSyscall is __NR_restart_syscall on amd64.
const SysRestartSyscall = 219

// RestartSyscall makes the thread re-execute the syscall it just made.
func (c *Context64) RestartSyscall() {
	c.Regs.Rax = c.Regs.Orig_rax
	c.Regs.Rip -= syscallInsnLen
}

// RestartSyscallWithRestartBlock makes the thread call restart_syscall(2)
// instead of repeating its syscall.
func (c *Context64) RestartSyscallWithRestartBlock() {
	c.Regs.Rax = SysRestartSyscall
	c.Regs.Rip -= syscallInsnLen
}
