package ptrace

import (
	"encoding/binary"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// The stub region sits at the top of the user address space, reserved in
// the Sentry (so nothing of the Sentry lands there) and kept by each stub
// when it unmaps everything else it inherited:
//
//	stubBase                 code page: setup code, gadgets, signal handler, data
//	stubBase+PageSize+i*S    alternate signal stack of stub thread slot i
const (
	altStackSize   = 32 << 10
	maxStubThreads = 4096
	stubRegionSize = hostarch.PageSize + maxStubThreads*altStackSize
	// handlerMagic is the "syscall number" the fault handler traps with;
	// SYSEMU stops it before the host ever sees it.
	handlerMagic = 0x7ffffff0
)

// stubLayout holds where things are in the code page.
type stubLayout struct {
	base, end     uintptr
	entry         uintptr // setup code run by the forked child
	syscallGadget uintptr // syscall; int3
	cloneGadget   uintptr // syscall; parent: int3; child: sigaltstack, pause loop
	cloneTrap     uintptr // address after the parent's int3
	handler       uintptr // SIGSEGV handler
	handlerTrap   uintptr // address after the handler's syscall
	pauseLoop     uintptr
}

var (
	stubOnce sync.Once
	stub     stubLayout
	stubErr  error
)

// setupStub reserves the stub region and writes the code page, once per
// process.
func setupStub() (stubLayout, error) {
	stubOnce.Do(func() { stub, stubErr = reserveStub() })
	return stub, stubErr
}

func reserveStub() (stubLayout, error) {
	// The code is assembled for the base ReserveRegion found, which fills
	// in the layout.
	var l stubLayout
	if _, err := stubproc.ReserveRegion(stubRegionSize, hostarch.PageSize, func(base uintptr) []byte {
		l = stubLayout{base: base, end: base + stubRegionSize}
		return assembleStub(&l)
	}); err != nil {
		return stubLayout{}, fmt.Errorf("ptrace: %w", err)
	}
	return l, nil
}

// slotAddr returns the base of the alternate stack of thread slot i.
func (l *stubLayout) slotAddr(i int) uintptr {
	return l.base + hostarch.PageSize + uintptr(i)*altStackSize
}

// asm is a byte buffer for the few hand-encoded instructions of the stub.
type asm struct {
	b      []byte
	base   uintptr
	fixups map[int]string // offset of rel32 field -> label
	labels map[string]int
}

func (a *asm) pc() uintptr       { return a.base + uintptr(len(a.b)) }
func (a *asm) emit(bs ...byte)   { a.b = append(a.b, bs...) }
func (a *asm) label(name string) { a.labels[name] = len(a.b) }
func (a *asm) imm32(v uint32)    { a.b = binary.LittleEndian.AppendUint32(a.b, v) }
func (a *asm) imm64(v uint64)    { a.b = binary.LittleEndian.AppendUint64(a.b, v) }
func (a *asm) movEAX(v uint32)   { a.emit(0xb8); a.imm32(v) }
func (a *asm) movEDI(v uint32)   { a.emit(0xbf); a.imm32(v) }
func (a *asm) movESI(v uint32)   { a.emit(0xbe); a.imm32(v) }
func (a *asm) movR10D(v uint32)  { a.emit(0x41, 0xba); a.imm32(v) }
func (a *asm) movRSI64(v uint64) { a.emit(0x48, 0xbe); a.imm64(v) }
func (a *asm) movRDI64(v uint64) { a.emit(0x48, 0xbf); a.imm64(v) }
func (a *asm) xorEDI()           { a.emit(0x31, 0xff) }
func (a *asm) xorESI()           { a.emit(0x31, 0xf6) }
func (a *asm) xorEDX()           { a.emit(0x31, 0xd2) }
func (a *asm) xorR10D()          { a.emit(0x45, 0x31, 0xd2) }
func (a *asm) syscall()          { a.emit(0x0f, 0x05) }
func (a *asm) int3()             { a.emit(0xcc) }
func (a *asm) testRAX()          { a.emit(0x48, 0x85, 0xc0) }
func (a *asm) jcc(op ...byte) func(string) {
	return func(l string) { a.emit(op...); a.imm32(0); a.fixups[len(a.b)-4] = l }
}
func (a *asm) jne(l string)             { a.jcc(0x0f, 0x85)(l) }
func (a *asm) jz(l string)              { a.jcc(0x0f, 0x84)(l) }
func (a *asm) jmp(l string)             { a.jcc(0xe9)(l) }
func (a *asm) addr(name string) uintptr { return a.base + uintptr(a.labels[name]) }

func (a *asm) resolve() {
	for off, l := range a.fixups {
		target, ok := a.labels[l]
		if !ok {
			panic("ptrace: stub jump to undefined label " + l)
		}
		binary.LittleEndian.PutUint32(a.b[off:], uint32(int32(target-(off+4))))
	}
}

// Kernel struct sigaction flags used for the stub's SIGSEGV handler.
const (
	saSiginfo  = 0x4
	saOnstack  = 0x08000000
	saRestorer = 0x04000000
	saNodefer  = 0x40000000
)

// assembleStub writes the code page for l.base and fills in l.
func assembleStub(l *stubLayout) []byte {
	a := &asm{base: l.base, fixups: map[int]string{}, labels: map[string]int{}}
	// Data first, at fixed offsets: struct sigaction, an empty sigset.
	const saOff, zeroSetOff, codeOff = 0, 64, 128
	a.b = make([]byte, codeOff)
	sa := a.b[saOff:]
	// handler and restorer filled in below once their addresses are known.
	binary.LittleEndian.PutUint64(sa[8:], saSiginfo|saOnstack|saRestorer|saNodefer)

	// entry: the forked child. R12 = memory file fd (>= 3), R13 = Sentry pid.
	a.label("entry")
	a.movEAX(unix.SYS_PRCTL)
	a.movEDI(unix.PR_SET_PDEATHSIG)
	a.movESI(uint32(unix.SIGKILL))
	a.syscall()
	a.movEAX(unix.SYS_GETPPID) // the Sentry may have died before prctl
	a.syscall()
	a.emit(0x4c, 0x39, 0xe8) // cmp rax, r13
	a.jne("die")
	a.movEAX(unix.SYS_PTRACE) // PTRACE_TRACEME
	a.xorEDI()
	a.xorESI()
	a.xorEDX()
	a.xorR10D()
	a.syscall()
	a.testRAX()
	a.jne("die")
	a.movEAX(unix.SYS_CLOSE_RANGE) // close_range(0, fd-1, 0)
	a.xorEDI()
	a.emit(0x49, 0x8d, 0x74, 0x24, 0xff) // lea rsi, [r12-1]
	a.xorEDX()
	a.syscall()
	a.movEAX(unix.SYS_CLOSE_RANGE)       // close_range(fd+1, ~0, 0)
	a.emit(0x49, 0x8d, 0x7c, 0x24, 0x01) // lea rdi, [r12+1]
	a.movESI(0xffffffff)
	a.xorEDX()
	a.syscall()
	a.movEAX(unix.SYS_RT_SIGPROCMASK) // unblock everything
	a.movEDI(unix.SIG_SETMASK)
	a.movRSI64(uint64(l.base + zeroSetOff))
	a.xorEDX()
	a.movR10D(8)
	a.syscall()
	a.movEAX(unix.SYS_RT_SIGACTION) // SIGSEGV -> handler on the alternate stack
	a.movEDI(uint32(unix.SIGSEGV))
	a.movRSI64(uint64(l.base + saOff))
	a.xorEDX()
	a.movR10D(8)
	a.syscall()
	a.testRAX()
	a.jne("die")
	// Everything of the Sentry's outside the stub region is unmapped by
	// the Sentry once the stub has stopped: first it must undo any rseq
	// registration inherited from the forking thread, or the kernel's
	// next rseq update would fault on unmapped memory.
	a.movEAX(unix.SYS_ARCH_PRCTL) // CPUID faulting, inherited by all stub threads
	a.movEDI(archSetCPUID)
	a.xorESI()
	a.syscall()
	a.emit(0x48, 0x89, 0xc3) // mov rbx, rax: the result, read by the Sentry
	a.movEAX(unix.SYS_GETPID)
	a.syscall()
	a.emit(0x48, 0x89, 0xc7) // mov rdi, rax
	a.movESI(uint32(unix.SIGSTOP))
	a.movEAX(unix.SYS_KILL)
	a.syscall()
	a.label("die") // reached only if something went wrong
	a.movEAX(unix.SYS_EXIT_GROUP)
	a.movEDI(1)
	a.syscall()
	a.jmp("die")

	// syscallGadget: the Sentry injects syscalls into the stub's main thread.
	a.label("syscall")
	a.syscall()
	a.int3()

	// cloneGadget: R12 = alternate stack base, R13 = its size.
	a.label("clone")
	a.syscall()
	a.testRAX()
	a.jz("child")
	a.int3()
	a.label("cloneTrap")
	a.jmp("die")
	a.label("child")
	a.emit(0x4d, 0x89, 0x24, 0x24)                   // mov [r12], r12       ss_sp
	a.emit(0x49, 0xc7, 0x44, 0x24, 0x08, 0, 0, 0, 0) // mov qword [r12+8], 0 ss_flags
	a.emit(0x4d, 0x89, 0x6c, 0x24, 0x10)             // mov [r12+16], r13    ss_size
	a.emit(0x4c, 0x89, 0xe7)                         // mov rdi, r12
	a.xorESI()
	a.movEAX(unix.SYS_SIGALTSTACK)
	a.syscall()
	a.label("pause") // wait, untraced, until a Context seizes this thread
	a.movEAX(unix.SYS_PAUSE)
	a.syscall()
	a.jmp("pause")

	// handler: SIGSEGV on the alternate stack. rsi = siginfo, rdx = ucontext.
	// Copy the hardware fault details into registers and trap back.
	a.label("handler")
	a.emit(0x4c, 0x8b, 0xa2) // mov r12, [rdx+err]
	a.imm32(arch.UContextErrOffset)
	a.emit(0x4c, 0x8b, 0xaa) // mov r13, [rdx+trapno]
	a.imm32(arch.UContextTrapnoOffset)
	a.emit(0x4c, 0x8b, 0xb2) // mov r14, [rdx+cr2]
	a.imm32(arch.UContextCr2Offset)
	a.emit(0x44, 0x8b, 0x7e, 0x08) // mov r15d, [rsi+8]  si_code
	a.emit(0x48, 0x8b, 0x5e, 0x10) // mov rbx, [rsi+16]  si_addr
	a.movEAX(handlerMagic)
	a.syscall()
	a.label("handlerTrap")
	a.jmp("die")
	a.resolve()

	l.entry = a.addr("entry")
	l.syscallGadget = a.addr("syscall")
	l.cloneGadget = a.addr("clone")
	l.cloneTrap = a.addr("cloneTrap")
	l.handler = a.addr("handler")
	l.handlerTrap = a.addr("handlerTrap")
	l.pauseLoop = a.addr("pause")
	binary.LittleEndian.PutUint64(a.b[saOff:], uint64(l.handler))
	binary.LittleEndian.PutUint64(a.b[saOff+16:], uint64(a.addr("die")))
	if len(a.b) > hostarch.PageSize {
		panic("ptrace: stub code exceeds a page")
	}
	return a.b
}

// archSetCPUID is ARCH_SET_CPUID: with argument 0, CPUID faults.
const archSetCPUID = 0x1012
