// Package stubproc owns what the stub-process platforms (ptrace and
// systrap) do the same way on the host: forking a bare child that runs
// only stub code (RawFork), reserving the stub region at the top of the
// user address space and installing the stub's code in it
// (ReserveRegion), the bounds of application memory below it and the
// checks of MapFile and Unmap arguments against them (UserRange),
// decoding the x86 page-fault error code (PageFaultAccess), reading the
// rseq registration a forked child inherits (GetRseqConfig), and pinning
// stub threads to the CPU of the Sentry thread that waits for them
// (PinTo, CurrentCPU).
//
// How a stub talks to the Sentry (ptrace stops or seccomp traps) is each
// platform's own and stays in its package.
package stubproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

// RawFork forks the calling thread into a new single-threaded process
// (clone with SIGCHLD only: nothing shared). The child never returns to
// Go: it jumps to entry with arg0 in RDI and R12 and arg1 in RSI and R13
// (the first two argument registers of the C calling convention, and two
// that survive the syscalls stub code makes), and must from then on run
// only code that needs neither the Go runtime nor its stack. The
// parent gets the child's pid, or the errno of clone. Implemented in
// fork_amd64.s.
func RawFork(entry, arg0, arg1 uintptr) (pid uintptr, errno uintptr)

// CurrentCPU returns the CPU the caller runs on, from the TSC_AUX value
// Linux loads with the CPU number (RDTSCP), without a syscall.
// Implemented in fork_amd64.s.
func CurrentCPU() uint32

// PinTo binds host thread tid to cpu unless *bound says it already is, and
// records cpu in *bound on success (-1 there means "not bound"). Binding a
// stub thread to the CPU of the Sentry thread that waits for it makes each
// hand-off a switch on one CPU instead of a cross-CPU wake-up, which costs
// far more under a hypervisor.
func PinTo(tid, cpu int, bound *int) {
	if cpu != *bound { // inlined: the usual case costs no call
		pin(tid, cpu, bound)
	}
}

func pin(tid, cpu int, bound *int) {
	var set unix.CPUSet
	set.Set(cpu)
	if unix.SchedSetaffinity(tid, &set) == nil {
		*bound = cpu
	}
}

// HostTaskTop is where the 4-level-paging user address space of x86-64
// Linux ends.
const HostTaskTop = 0x7ffffffff000

// regionAlign is the alignment and search step of the stub region. systrap
// needs it: its seccomp filter compares only the low half of the
// instruction pointer once the high half matches, so the stub code must
// not straddle a 4 GiB boundary.
const regionAlign = 4 << 30

// ReserveRegion reserves size bytes of address space (PROT_NONE,
// MAP_FIXED_NOREPLACE) at the highest 4 GiB-aligned address below
// HostTaskTop where they fit, so nothing of the Sentry lands there later,
// then maps codeSize bytes at its start, copies in code(base) and makes
// them read-only and executable. code gets the base because stub code may
// be assembled for its address. It returns the base.
func ReserveRegion(size, codeSize uintptr, code func(base uintptr) []byte) (uintptr, error) {
	// The Sentry's stack and mmap area are up there too: step down until
	// a free range is found.
	top := uintptr(HostTaskTop) &^ (regionAlign - 1)
	for i := 1; i < 512; i++ {
		base := top - uintptr(i)*regionAlign
		p, _, errno := unix.RawSyscall6(unix.SYS_MMAP, base, size, unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
		if errno != 0 {
			continue
		}
		if p != base { // kernels before 4.17 treat the flag as a hint
			unix.RawSyscall(unix.SYS_MUNMAP, p, size, 0)
			continue
		}
		b := code(base)
		if uintptr(len(b)) > codeSize {
			return 0, fmt.Errorf("stub code of %d bytes exceeds its %d: %w", len(b), codeSize, unix.EINVAL)
		}
		if _, _, errno := unix.RawSyscall6(unix.SYS_MMAP, base, codeSize, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED, ^uintptr(0), 0); errno != 0 {
			return 0, fmt.Errorf("mapping stub code: %w", errno)
		}
		copy(unsafe.Slice((*byte)(unsafe.Add(nil, base)), codeSize), b)
		if _, _, errno := unix.RawSyscall(unix.SYS_MPROTECT, base, codeSize, unix.PROT_READ|unix.PROT_EXEC); errno != 0 {
			return 0, fmt.Errorf("protecting stub code: %w", errno)
		}
		return base, nil
	}
	return 0, fmt.Errorf("no free address range for the stub region: %w", unix.ENOMEM)
}

// UserRange is the application part of a stub's address space,
// [MinUserAddress, MaxUserAddress): above the host's mmap_min_addr and
// below the stub region. A platform embeds it to implement
// platform.Platform's MinUserAddress and MaxUserAddress and checks
// AddressSpace arguments with it.
type UserRange struct {
	Min, Max hostarch.Addr
}

// NewUserRange returns the range from the host's lowest mappable page
// (HostMinAddress) up to stubBase.
func NewUserRange(stubBase uintptr) UserRange {
	return UserRange{Min: HostMinAddress(), Max: hostarch.Addr(stubBase)}
}

// MinUserAddress implements platform.Platform.MinUserAddress.
func (r UserRange) MinUserAddress() hostarch.Addr { return r.Min }

// MaxUserAddress implements platform.Platform.MaxUserAddress.
func (r UserRange) MaxUserAddress() hostarch.Addr { return r.Max }

// HostMinAddress is the lowest page applications may map: 64 KiB or the
// host's vm.mmap_min_addr if that is higher (read at start-up, before
// the Sentry leaves /proc).
func HostMinAddress() hostarch.Addr {
	min := hostarch.Addr(0x10000)
	if b, err := os.ReadFile("/proc/sys/vm/mmap_min_addr"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && hostarch.Addr(v) > min {
			min = hostarch.Addr(v).MustRoundUp()
		}
	}
	return min
}

// CheckMapFile checks the arguments of AddressSpace.MapFile: a non-empty,
// page-aligned range inside r and a page-aligned file offset. Failures
// wrap unix.EINVAL.
func (r UserRange) CheckMapFile(addr hostarch.Addr, offset, length uint64) error {
	end, ok := addr.AddLength(length)
	if !ok || !addr.IsPageAligned() || length%hostarch.PageSize != 0 || length == 0 || addr < r.Min || end > r.Max {
		return fmt.Errorf("range [%#x, +%#x) is not page aligned user memory: %w", uintptr(addr), length, unix.EINVAL)
	}
	if offset%hostarch.PageSize != 0 {
		return fmt.Errorf("unaligned file offset %#x: %w", offset, unix.EINVAL)
	}
	return nil
}

// ClampUnmap returns the pages of [addr, addr+length) inside r, widened
// to page boundaries, for AddressSpace.Unmap: whatever the caller asks,
// the stub region is never touched. ok is false when nothing is left.
func (r UserRange) ClampUnmap(addr hostarch.Addr, length uint64) (start, end hostarch.Addr, ok bool) {
	end, fits := addr.AddLength(length)
	if !fits || end > r.Max {
		end = r.Max
	}
	if addr < r.Min {
		addr = r.Min
	}
	start = addr.RoundDown()
	end = end.MustRoundUp()
	return start, end, start < end
}

// PageFaultTrap is the x86 trap number of a page fault (#PF).
const PageFaultTrap = 14

// PageFaultAccess returns the access a page fault's hardware error code
// describes: an instruction fetch, a write or else a read.
func PageFaultAccess(errCode uint64) hostarch.AccessType {
	const (
		pfWrite = 1 << 1
		pfInstr = 1 << 4
	)
	switch {
	case errCode&pfInstr != 0:
		return hostarch.Execute
	case errCode&pfWrite != 0:
		return hostarch.Write
	}
	return hostarch.Read
}

// RseqConfig is struct ptrace_rseq_configuration: the rseq area a thread
// registered. A forked child inherits its parent thread's registration,
// and must undo it before it unmaps the Sentry's memory, or the kernel's
// next rseq update would fault.
type RseqConfig struct {
	Pointer   uint64
	Size      uint32
	Signature uint32
	Flags     uint32
	_         uint32
}

// RseqFlagUnregister is RSEQ_FLAG_UNREGISTER.
const RseqFlagUnregister = 1

const ptraceGetRseqConfiguration = 0x420f

// GetRseqConfig reads the rseq registration of tracee pid, which must be
// in a ptrace stop. Kernels before 5.13 answer EIO: they have no such
// request.
func GetRseqConfig(pid int) (RseqConfig, unix.Errno) {
	var rc RseqConfig
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, ptraceGetRseqConfiguration, uintptr(pid), unsafe.Sizeof(rc), uintptr(unsafe.Pointer(&rc)), 0, 0)
	if e != 0 {
		return RseqConfig{}, e
	}
	return rc, 0
}
