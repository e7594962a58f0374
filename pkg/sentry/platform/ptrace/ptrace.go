// Package ptrace is the platform that runs application code in host stub
// processes under ptrace.
//
// Each AddressSpace is a stub process forked from the Sentry that keeps
// nothing of it but a one-page stub (at the top of the address space) and
// the memory file descriptor; application memory is the memory file mapped
// into it by mmap/munmap calls the Sentry injects through a dedicated
// tracer thread. Each application thread runs in a thread of that process,
// traced by the OS thread of the task that switches into it, under
// PTRACE_SYSEMU: every syscall the application makes stops before it is
// executed, so the stub never makes a host syscall of the application's.
// Page faults are taken by a tiny SIGSEGV handler in the stub (on a private
// alternate stack) that hands the hardware error code to the Sentry, so a
// fault is reported with its exact address and access type.
//
// Stubs die with the Sentry: the stub's main thread has PR_SET_PDEATHSIG
// set to SIGKILL against its tracer thread, and every tracee is traced
// with PTRACE_O_EXITKILL.
package ptrace

import (
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// Platform is the ptrace platform.
type Platform struct {
	mf     *pgalloc.MemoryFile
	stubFD int // the memory file, at a number >= 3 so the stub can keep it alone
	ownFD  bool
	layout stubLayout

	cpuidFaulting bool
	// fpSize is the size of the NT_X86_XSTATE regset the host kernel
	// exchanges with ptrace (it may exceed arch.FPStateSize()).
	fpSize int

	// UserRange gives applications everything from the host's
	// mmap_min_addr up to the stub region.
	stubproc.UserRange

	// lazyFP leaves FP state in the stub thread after a trap instead of
	// copying it into arch.Context64.FP (see SetLazyFP).
	lazyFP bool
}

var _ platform.Platform = (*Platform)(nil)

// New returns a ptrace platform whose address spaces map mf. It checks that
// the host allows what the platform needs by creating and releasing one
// stub process.
func New(mf *pgalloc.MemoryFile) (platform.Platform, error) {
	layout, err := setupStub()
	if err != nil {
		return nil, err
	}
	quietSIGCHLD()
	p := &Platform{mf: mf, stubFD: mf.FD(), layout: layout, UserRange: stubproc.NewUserRange(layout.base)}
	if p.stubFD < 3 {
		fd, err := unix.FcntlInt(uintptr(p.stubFD), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("ptrace: duplicating memory file fd: %w", err)
		}
		p.stubFD, p.ownFD = fd, true
	}
	as, err := p.newAddressSpace(true)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("ptrace: starting probe stub: %w", err)
	}
	p.cpuidFaulting = as.cpuidFaulting
	p.fpSize = as.fpSize
	as.Release()
	return p, nil
}

// NewAddressSpace implements platform.Platform.NewAddressSpace.
func (p *Platform) NewAddressSpace() (platform.AddressSpace, error) {
	as, err := p.newAddressSpace(false)
	if err != nil {
		return nil, err
	}
	return as, nil
}

// NewContext implements platform.Platform.NewContext.
func (p *Platform) NewContext() (platform.Context, error) {
	return newContext(p), nil
}

// CPUIDFaulting implements platform.Platform.CPUIDFaulting.
func (p *Platform) CPUIDFaulting() bool { return p.cpuidFaulting }

// Close implements platform.Platform.Close. Address spaces and contexts
// must have been released.
func (p *Platform) Close() {
	if p.ownFD {
		unix.Close(p.stubFD)
		p.ownFD = false
	}
}

// SetLazyFP chooses whether Switch copies the FP state out on every trap
// (off, the default: Context64.FP is always current) or defers it (on:
// Context64.FP is current only after Context64.SyncFP, which the arch
// methods that use FP call themselves). Deferring saves one host call per
// trap, about a third of a syscall round trip. Set it before any Switch.
func (p *Platform) SetLazyFP(on bool) { p.lazyFP = on }

// FPStateSize is the FP state size the host's ptrace exchanges.
func (p *Platform) FPStateSize() int { return p.fpSize }

// accessProt converts an access type to mmap protection bits.
func accessProt(at hostarch.AccessType) uintptr { return uintptr(at.Prot()) }
