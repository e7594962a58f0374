package systrap

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// The stub region, at the same 4 GiB-aligned address in the Sentry (where
// it stays reserved, so nothing of the Sentry lands there) and in every
// stub process. Offsets must match stub_amd64.gas; its header repeats the
// important ones and loadStub checks them.
const (
	codeOff    = 0x0000 // the stub code (at most two pages)
	codeSize   = 0x2000
	ctlROOff   = 0x2000 // two pages of the memory file, read-only in the stub
	ctlROSize  = 0x2000
	ctlRWOff   = 0x4000 // one page of the memory file, read-write in the stub
	ctlRWSize  = 0x1000
	ctxOff     = 0x10000 // per-thread context pages (memory file, shared)
	ctxShift   = 14
	ctxSize    = 1 << ctxShift
	maxSlots   = 4096
	stacksOff  = ctxOff + maxSlots*ctxSize // per-thread alternate signal stacks
	stackShift = 15
	stackSize  = 1 << stackShift
	regionSize = stacksOff + maxSlots*stackSize

	// Read-only control area.
	roFProg     = 0
	roZeroMask  = 16
	roBPF       = 64
	roNOps      = 4096
	roReqSeq    = 4096 + 8
	roMemOpSpin = 4096 + 16
	roOps       = 4096 + 64
	opSize      = 56
	maxOps      = 64
	// Read-write control page.
	rwCPUID   = 8
	rwDoneSeq = 16
	rwResults = 64

	// Context page.
	ctxState       = 0
	ctxStubSleep   = 4
	ctxSentrySleep = 8
	ctxFlags       = 12
	ctxSpin        = 16
	ctxFPSize      = 20
	ctxFSBase      = 24
	ctxGSBase      = 32
	ctxSetupErr    = 40 // -errno of a new thread that could not set up
	ctxSiginfo     = 64
	ctxMcontext    = 128
	ctxFP          = 1024
	fpCap          = ctxSize - ctxFP

	stateTrapped = 1
	stateResume  = 2
	stateExit    = 3

	ctxFlagFSGSBase = 1

	stubMagic = 0x5041525453595331
)

//go:embed stub_amd64.bin
var stubCode []byte

// stubLayout is where the stub's pieces are, once the region is reserved.
type stubLayout struct {
	base     uintptr
	entry    uintptr
	handler  uintptr
	codeEnd  uintptr
	fprogPtr uintptr
}

var (
	stubOnce sync.Once
	stub     stubLayout
	stubErr  error
)

// setupStub reserves the stub region and copies the code in, once per
// process.
func setupStub() (stubLayout, error) {
	stubOnce.Do(func() { stub, stubErr = reserveStub() })
	return stub, stubErr
}

// stubHeader returns word i of the stub's header.
func stubHeader(i int) uint64 { return binary.LittleEndian.Uint64(stubCode[8*i:]) }

func checkStubHeader() error {
	if len(stubCode) < 96 || len(stubCode) > codeSize || stubHeader(0) != stubMagic {
		return fmt.Errorf("systrap: embedded stub is malformed (%d bytes)", len(stubCode))
	}
	for i, want := range map[int]uint64{5: uint64(len(stubCode)), 6: ctxOff, 7: stacksOff, 8: regionSize, 9: ctxFP, 10: fpCap, 11: roOps} {
		if got := stubHeader(i); got != want {
			return fmt.Errorf("systrap: stub header word %d is %#x, Go layout says %#x: regenerate stub_amd64.bin", i, got, want)
		}
	}
	return nil
}

func reserveStub() (stubLayout, error) {
	if err := checkStubHeader(); err != nil {
		return stubLayout{}, err
	}
	base, err := stubproc.ReserveRegion(regionSize, codeSize, func(uintptr) []byte { return stubCode })
	if err != nil {
		return stubLayout{}, fmt.Errorf("systrap: %w", err)
	}
	return stubLayout{
		base:     base,
		entry:    base + uintptr(stubHeader(1)),
		handler:  base + uintptr(stubHeader(2)),
		codeEnd:  base + uintptr(len(stubCode)),
		fprogPtr: base + ctlROOff + roFProg,
	}, nil
}

func (l *stubLayout) ctxAddr(slot int) uintptr   { return l.base + ctxOff + uintptr(slot)*ctxSize }
func (l *stubLayout) stackAddr(slot int) uintptr { return l.base + stacksOff + uintptr(slot)*stackSize }

// Classic BPF opcodes used by the filter.
const (
	bpfLdAbsW = 0x20 // BPF_LD|BPF_W|BPF_ABS
	bpfJeqK   = 0x15 // BPF_JMP|BPF_JEQ|BPF_K
	bpfJgeK   = 0x35 // BPF_JMP|BPF_JGE|BPF_K
	bpfRetK   = 0x06 // BPF_RET|BPF_K

	seccompRetTrap  = 0x00030000
	seccompRetAllow = 0x7fff0000
	auditArchX86_64 = 0xc000003e

	archSetGS = 0x1001
	archSetFS = 0x1002
	archGetFS = 0x1003
	archGetGS = 0x1004
)

// appFilter is the seccomp program of every application thread: a syscall
// made from anywhere but the stub's code traps (SIGSYS to the handler);
// from the stub's code only what the handler itself needs passes — futex,
// rt_sigreturn, exit and arch_prctl(ARCH_SET/GET_FS/GS).
// The memory-changing syscalls the stub makes run on its main thread,
// which has no filter but never runs application code; an application
// thread that jumps into that code traps like any other syscall.
func appFilter(l stubLayout) []byte {
	lo := uint32(l.base)
	hi := uint32(uint64(l.base) >> 32)
	codeEnd := uint32(l.codeEnd)
	// Instruction indexes are fixed; jumps are relative to the next one.
	const trap, allow = 17, 18
	j := func(op uint16, k uint32, at, t, f int) bpf.Instruction {
		return bpf.Jump(op, k, uint8(t-at-1), uint8(f-at-1))
	}
	prog := []bpf.Instruction{
		0:     bpf.Stmt(bpfLdAbsW, 12), // instruction_pointer, high half
		1:     j(bpfJeqK, hi, 1, 2, trap),
		2:     bpf.Stmt(bpfLdAbsW, 8), // low half
		3:     j(bpfJgeK, lo, 3, 4, trap),
		4:     j(bpfJgeK, codeEnd, 4, trap, 5),
		5:     bpf.Stmt(bpfLdAbsW, 4), // arch
		6:     j(bpfJeqK, auditArchX86_64, 6, 7, trap),
		7:     bpf.Stmt(bpfLdAbsW, 0), // nr
		8:     j(bpfJeqK, unix.SYS_FUTEX, 8, allow, 9),
		9:     j(bpfJeqK, unix.SYS_RT_SIGRETURN, 9, allow, 10),
		10:    j(bpfJeqK, unix.SYS_EXIT, 10, allow, 11),
		11:    j(bpfJeqK, unix.SYS_ARCH_PRCTL, 11, 12, trap),
		12:    bpf.Stmt(bpfLdAbsW, 16), // args[0], low half
		13:    j(bpfJeqK, archSetFS, 13, allow, 14),
		14:    j(bpfJeqK, archGetFS, 14, allow, 15),
		15:    j(bpfJeqK, archSetGS, 15, allow, 16),
		16:    j(bpfJeqK, archGetGS, 16, allow, trap),
		trap:  bpf.Stmt(bpfRetK, seccompRetTrap),
		allow: bpf.Stmt(bpfRetK, seccompRetAllow),
	}
	return bpf.Encode(prog)
}

// writeControlRO fills the read-only control area's constant part: the
// sock_fprog pointing at the filter, the filter and an empty signal set.
func writeControlRO(ro []byte, l stubLayout) {
	prog := appFilter(l)
	binary.LittleEndian.PutUint16(ro[roFProg:], uint16(len(prog)/bpf.InstructionSize))
	binary.LittleEndian.PutUint64(ro[roFProg+8:], uint64(l.base+ctlROOff+roBPF))
	binary.LittleEndian.PutUint64(ro[roZeroMask:], 0)
	copy(ro[roBPF:], prog)
}
