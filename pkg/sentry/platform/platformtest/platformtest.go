// Package platformtest is the test battery every platform implementation
// runs (ptrace, systrap): syscall and fault round trips, synchronous
// signals, Interrupt, mapping changes, FP and TLS state, several threads
// and address spaces, stub death, leaks, a stress run and the round-trip
// benchmarks; and the checks that stubs hold nothing of the Sentry's and
// die with it (lifetime.go). A platform's _test.go calls Run, Stress, the
// Bench functions and the lifetime checks with a Factory.
package platformtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"golang.org/x/sys/unix"
)

// Factory describes the platform under test.
type Factory struct {
	// New builds the platform over mf.
	New func(mf *pgalloc.MemoryFile) (platform.Platform, error)
	// Check skips the test if the host cannot run the platform.
	Check func(t testing.TB)
	// StubPID returns the host process behind an address space (for
	// killing it from outside).
	StubPID func(as platform.AddressSpace) int
}

// Addresses the test programs use.
const (
	CodeAddr  = hostarch.Addr(0x400000)
	DataAddr  = hostarch.Addr(0x800000)
	StackAddr = hostarch.Addr(0x900000)
)

// Env is one platform, address space and context with code loaded at
// CodeAddr.
type Env struct {
	MF   *pgalloc.MemoryFile
	P    platform.Platform
	AS   platform.AddressSpace
	Ctx  platform.Context
	Code pgalloc.FileRange
	AC   *arch.Context64
	Trap platform.Trap
}

// NewPlatform builds a memory file and the platform, cleaned up with t.
func (f Factory) NewPlatform(t testing.TB) (*pgalloc.MemoryFile, platform.Platform) {
	if f.Check != nil {
		f.Check(t)
	}
	mf, err := pgalloc.New("platformtest")
	if err != nil {
		t.Fatalf("pgalloc.New: %v", err)
	}
	p, err := f.New(mf)
	if err != nil {
		mf.Close()
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		mf.Close()
	})
	return mf, p
}

// NewEnv locks the calling goroutine to its thread (as the kernel does for
// each task) and loads code at CodeAddr.
func (f Factory) NewEnv(t testing.TB, code []byte) *Env {
	runtime.LockOSThread()
	mf, p := f.NewPlatform(t)
	e := &Env{MF: mf, P: p}
	var err error
	if e.AS, err = p.NewAddressSpace(); err != nil {
		t.Fatalf("NewAddressSpace: %v", err)
	}
	if e.Ctx, err = p.NewContext(); err != nil {
		t.Fatalf("NewContext: %v", err)
	}
	t.Cleanup(func() {
		e.Ctx.Release()
		e.AS.Release()
		runtime.UnlockOSThread()
	})
	e.Code = e.Load(t, code, CodeAddr, hostarch.AccessType{Read: true, Execute: true})
	e.AC = arch.New()
	e.AC.SetIP(CodeAddr)
	e.AC.SetStack(StackAddr)
	return e
}

// Load copies b into fresh pages mapped at addr.
func (e *Env) Load(t testing.TB, b []byte, addr hostarch.Addr, at hostarch.AccessType) pgalloc.FileRange {
	fr, err := e.MF.Allocate(uint64(hostarch.Addr(len(b)).MustRoundUp()))
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	m, err := e.MF.MapInternal(fr)
	if err != nil {
		t.Fatalf("MapInternal: %v", err)
	}
	copy(m, b)
	if err := e.AS.MapFile(addr, fr.Start, fr.Length(), at, true); err != nil {
		t.Fatalf("MapFile: %v", err)
	}
	return fr
}

// Switch runs the app until it traps and returns the trap.
func (e *Env) Switch(t testing.TB) platform.Trap {
	t.Helper()
	if err := e.Ctx.Switch(e.AS, e.AC, &e.Trap); err != nil {
		t.Fatalf("Switch: %v", err)
	}
	return e.Trap
}

// Machine code fragments.
var (
	InsSyscall = []byte{0x0f, 0x05}
	InsInt3    = []byte{0xcc}
	InsUD2     = []byte{0x0f, 0x0b}
	InsSpin    = []byte{0xeb, 0xfe} // jmp .
)

// MovImm32 encodes mov reg, imm32 for a few registers.
func MovImm32(reg string, v uint32) []byte {
	ops := map[string][]byte{
		"eax": {0xb8}, "edi": {0xbf}, "esi": {0xbe}, "edx": {0xba}, "ecx": {0xb9},
		"r10d": {0x41, 0xba}, "r8d": {0x41, 0xb8}, "r9d": {0x41, 0xb9},
	}
	op, ok := ops[reg]
	if !ok {
		panic("platformtest: no encoding for " + reg)
	}
	return binary.LittleEndian.AppendUint32(append([]byte{}, op...), v)
}

// MovRAX64 encodes movabs rax, imm64.
func MovRAX64(v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{0x48, 0xb8}, v) }

// Cat concatenates code fragments.
func Cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// GetpidLoop is: loop: mov eax, 39; syscall; jmp loop.
var GetpidLoop = Cat(MovImm32("eax", 39), InsSyscall, []byte{0xeb, 0xf7})

// Run runs the whole battery as subtests of t.
func Run(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"SyscallTrap", testSyscallTrap},
		{"FaultThenMap", testFaultThenMap},
		{"FaultAccessTypes", testFaultAccessTypes},
		{"Protect", testProtect},
		{"Unmap", testUnmap},
		{"SynchronousSignals", testSynchronousSignals},
		{"FPState", testFPState},
		{"TLS", testTLS},
		{"Interrupt", testInterrupt},
		{"StubDeath", testStubDeath},
		{"NoLeaks", testNoLeaks},
		{"ConcurrentContexts", testConcurrentContexts},
		{"AddressSpaces", testAddressSpaces},
		{"MapFileRejectsBadRanges", testMapFileRejectsBadRanges},
		{"CPUIDFaulting", testCPUIDFaulting},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func wantSignal(t *testing.T, tr platform.Trap, sig unix.Signal) {
	t.Helper()
	if tr.Kind != platform.TrapSignal || tr.Signo != int32(sig) {
		t.Fatalf("trap = %+v, want signal %v", tr, sig)
	}
}

func testSyscallTrap(t *testing.T, f Factory) {
	code := Cat(
		MovImm32("eax", 500), MovImm32("edi", 11), MovImm32("esi", 22), MovImm32("edx", 33),
		MovImm32("r10d", 44), MovImm32("r8d", 55), MovImm32("r9d", 66),
		InsSyscall,
		[]byte{0x49, 0x89, 0xc4}, // mov r12, rax
		InsInt3,
	)
	e := f.NewEnv(t, code)
	e.AC.Regs.Rbx = 0x5555aaaa5555aaaa // must survive the round trip
	tr := e.Switch(t)
	if tr.Kind != platform.TrapSyscall {
		t.Fatalf("trap = %+v, want syscall", tr)
	}
	if got := e.AC.SyscallNo(); got != 500 {
		t.Errorf("syscall number = %d, want 500", got)
	}
	args := e.AC.SyscallArgs()
	for i, want := range []uintptr{11, 22, 33, 44, 55, 66} {
		if args[i].Value != want {
			t.Errorf("arg %d = %d, want %d", i, args[i].Value, want)
		}
	}
	if want := uint64(CodeAddr) + uint64(len(code)) - 4; e.AC.Regs.Rip != want {
		t.Errorf("rip after syscall = %#x, want %#x", e.AC.Regs.Rip, want)
	}
	if e.AC.Regs.Rcx != e.AC.Regs.Rip {
		t.Errorf("rcx = %#x, want the return address %#x (set by the syscall instruction)", e.AC.Regs.Rcx, e.AC.Regs.Rip)
	}
	e.AC.SetReturn(0xabcdef)
	wantSignal(t, e.Switch(t), unix.SIGTRAP)
	if e.AC.Regs.R12 != 0xabcdef {
		t.Errorf("app saw return value %#x, want 0xabcdef", e.AC.Regs.R12)
	}
	if e.AC.Regs.Rbx != 0x5555aaaa5555aaaa {
		t.Errorf("rbx = %#x after the round trip", e.AC.Regs.Rbx)
	}
}

func testFaultThenMap(t *testing.T, f Factory) {
	target := DataAddr + 0x123
	code := Cat(
		MovRAX64(uint64(target)),
		[]byte{0xc7, 0x00, 0x44, 0x33, 0x22, 0x11}, // mov dword [rax], 0x11223344
		InsInt3,
	)
	e := f.NewEnv(t, code)
	tr := e.Switch(t)
	if tr.Kind != platform.TrapFault || tr.Addr != target || tr.Access != hostarch.Write {
		t.Fatalf("trap = %+v, want write fault at %#x", tr, target)
	}
	if e.AC.IP() != CodeAddr+10 {
		t.Errorf("fault IP = %#x, want the store at %#x", e.AC.IP(), CodeAddr+10)
	}
	data := e.Load(t, make([]byte, hostarch.PageSize), DataAddr, hostarch.ReadWrite)
	wantSignal(t, e.Switch(t), unix.SIGTRAP)
	m, err := e.MF.MapInternal(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(m[0x123:]); got != 0x11223344 {
		t.Errorf("Sentry sees %#x at the written address, want 0x11223344", got)
	}
}

func testFaultAccessTypes(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name   string
		code   []byte
		ro     bool // map DataAddr read-only first
		addr   hostarch.Addr
		access hostarch.AccessType
	}{
		{"read", Cat(MovRAX64(uint64(DataAddr+8)), []byte{0x8b, 0x08}), false, DataAddr + 8, hostarch.Read},                   // mov ecx, [rax]
		{"exec", Cat(MovRAX64(uint64(DataAddr+16)), []byte{0xff, 0xe0}), false, DataAddr + 16, hostarch.Execute},              // jmp rax
		{"write-readonly", Cat(MovRAX64(uint64(DataAddr+24)), []byte{0xc6, 0x00, 0x01}), true, DataAddr + 24, hostarch.Write}, // mov byte [rax], 1
		{"exec-noexec", Cat(MovRAX64(uint64(DataAddr)), []byte{0xff, 0xe0}), true, DataAddr, hostarch.Execute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := f.NewEnv(t, tc.code)
			if tc.ro {
				e.Load(t, make([]byte, hostarch.PageSize), DataAddr, hostarch.Read)
			}
			tr := e.Switch(t)
			if tr.Kind != platform.TrapFault || tr.Addr != tc.addr || tr.Access != tc.access {
				t.Fatalf("trap = %+v, want %v fault at %#x", tr, tc.access, tc.addr)
			}
		})
	}
}

// testProtect changes a mapping's access by mapping it again.
func testProtect(t *testing.T, f Factory) {
	// mov byte [rax], 7; int3
	e := f.NewEnv(t, Cat(MovRAX64(uint64(DataAddr)), []byte{0xc6, 0x00, 0x07}, InsInt3))
	fr := e.Load(t, make([]byte, hostarch.PageSize), DataAddr, hostarch.Read)
	if tr := e.Switch(t); tr.Kind != platform.TrapFault || tr.Access != hostarch.Write {
		t.Fatalf("store to read-only page: trap %+v, want write fault", tr)
	}
	if err := e.AS.MapFile(DataAddr, fr.Start, fr.Length(), hostarch.ReadWrite, false); err != nil {
		t.Fatal(err)
	}
	wantSignal(t, e.Switch(t), unix.SIGTRAP)
	m, _ := e.MF.MapInternal(fr)
	if m[0] != 7 {
		t.Errorf("store after making the page writable: Sentry sees %d", m[0])
	}
}

func testUnmap(t *testing.T, f Factory) {
	// loop: mov ecx, [rax]; syscall; jmp loop
	e := f.NewEnv(t, Cat(MovRAX64(uint64(DataAddr)), []byte{0x8b, 0x08}, InsSyscall, []byte{0xeb, 0xfa}))
	e.Load(t, make([]byte, 2*hostarch.PageSize), DataAddr, hostarch.Read)
	if tr := e.Switch(t); tr.Kind != platform.TrapSyscall {
		t.Fatalf("read of mapped page: trap %+v", tr)
	}
	e.AS.Unmap(DataAddr, hostarch.PageSize)
	e.AC.Regs.Rax = uint64(DataAddr)
	if tr := e.Switch(t); tr.Kind != platform.TrapFault || tr.Addr != DataAddr || tr.Access != hostarch.Read {
		t.Fatalf("read of unmapped page: trap %+v", tr)
	}
	e.AC.Regs.Rip += 2 // skip the load: the second page is still mapped
	e.AC.Regs.Rax = uint64(DataAddr + hostarch.PageSize)
	if tr := e.Switch(t); tr.Kind != platform.TrapSyscall {
		t.Fatalf("after skipping: trap %+v", tr)
	}
	e.AC.Regs.Rip -= 4 // back to the load, of the second page
	e.AC.Regs.Rax = uint64(DataAddr + hostarch.PageSize)
	if tr := e.Switch(t); tr.Kind != platform.TrapSyscall {
		t.Fatalf("read of the page next to the unmapped one: trap %+v", tr)
	}
}

func testSynchronousSignals(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		code []byte
		sig  unix.Signal
		addr hostarch.Addr // expected si_addr, if checked
	}{
		{"int3", InsInt3, unix.SIGTRAP, 0},
		{"ud2", InsUD2, unix.SIGILL, CodeAddr},
		// xor ecx, ecx; xor edx, edx; mov eax, 1; div ecx
		{"divide", Cat([]byte{0x31, 0xc9, 0x31, 0xd2}, MovImm32("eax", 1), []byte{0xf7, 0xf1}), unix.SIGFPE, CodeAddr + 9},
		// hlt is privileged: general protection, SIGSEGV with SI_KERNEL
		{"hlt", []byte{0xf4}, unix.SIGSEGV, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := f.NewEnv(t, tc.code)
			tr := e.Switch(t)
			wantSignal(t, tr, tc.sig)
			if tc.addr != 0 && tr.Addr != tc.addr {
				t.Errorf("si_addr = %#x, want %#x", tr.Addr, tc.addr)
			}
		})
	}
}

// testFPState: the app sees FP state the Sentry set, and the Sentry sees
// what the app set, across syscalls and faults.
func testFPState(t *testing.T, f Factory) {
	code := Cat(
		[]byte{0x66, 0x48, 0x0f, 0x7e, 0xc0}, // movq rax, xmm0
		InsSyscall,
		[]byte{0x66, 0x48, 0x0f, 0x6e, 0xc8}, // movq xmm1, rax
		InsInt3,
	)
	e := f.NewEnv(t, code)
	const xmm0, xmm1 = 160, 176
	binary.LittleEndian.PutUint64(e.AC.FP[xmm0:], 0x1122334455667788)
	tr := e.Switch(t)
	if tr.Kind != platform.TrapSyscall || e.AC.SyscallNo() != 0x1122334455667788 {
		t.Fatalf("trap %+v with rax %#x: app did not see xmm0 set by the Sentry", tr, e.AC.SyscallNo())
	}
	e.AC.SetReturn(0xfeedfacecafe)
	wantSignal(t, e.Switch(t), unix.SIGTRAP)
	if got := binary.LittleEndian.Uint64(e.AC.FP[xmm1:]); got != 0xfeedfacecafe {
		t.Errorf("xmm1 saved as %#x, want 0xfeedfacecafe", got)
	}
	if got := binary.LittleEndian.Uint64(e.AC.FP[xmm0:]); got != 0x1122334455667788 {
		t.Errorf("xmm0 saved as %#x, want it unchanged", got)
	}
	if e.AC.FP.MXCSR() != 0x1f80 {
		t.Errorf("MXCSR = %#x, want 0x1f80", e.AC.FP.MXCSR())
	}
}

// testTLS: the Sentry's fs_base and gs_base are the app's, and survive
// traps.
func testTLS(t *testing.T, f Factory) {
	// mov rax, fs:[8]; mov rdi, gs:[16]; syscall; int3
	code := Cat([]byte{0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00},
		[]byte{0x65, 0x48, 0x8b, 0x3c, 0x25, 0x10, 0x00, 0x00, 0x00}, InsSyscall, InsInt3)
	e := f.NewEnv(t, code)
	data := make([]byte, hostarch.PageSize)
	binary.LittleEndian.PutUint64(data[8:], 0x7e57da7a)
	binary.LittleEndian.PutUint64(data[0x100+16:], 0x65b45e)
	e.Load(t, data, DataAddr, hostarch.Read)
	if err := e.AC.SetTLS(uintptr(DataAddr)); err != nil {
		t.Fatal(err)
	}
	e.AC.Regs.Gs_base = uint64(DataAddr + 0x100)
	tr := e.Switch(t)
	if tr.Kind != platform.TrapSyscall || e.AC.SyscallNo() != 0x7e57da7a {
		t.Fatalf("trap %+v rax %#x: app did not read through fs_base", tr, e.AC.SyscallNo())
	}
	if got := e.AC.SyscallArgs()[0].Value; got != 0x65b45e {
		t.Errorf("app read %#x through gs_base, want 0x65b45e", got)
	}
	if e.AC.TLS() != uintptr(DataAddr) || e.AC.Regs.Gs_base != uint64(DataAddr+0x100) {
		t.Errorf("fs_base, gs_base after trap = %#x, %#x", e.AC.TLS(), e.AC.Regs.Gs_base)
	}
}

func testInterrupt(t *testing.T, f Factory) {
	e := f.NewEnv(t, InsSpin)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(20 * time.Millisecond)
		e.Ctx.Interrupt()
	}()
	tr := e.Switch(t)
	<-done
	if tr.Kind != platform.TrapInterrupted {
		t.Fatalf("trap = %+v, want interrupted", tr)
	}
	if e.AC.IP() != CodeAddr {
		t.Errorf("spinning app interrupted at %#x, want %#x", e.AC.IP(), CodeAddr)
	}
	// An Interrupt with no Switch running applies to the next one.
	e.Ctx.Interrupt()
	if tr := e.Switch(t); tr.Kind != platform.TrapInterrupted {
		t.Fatalf("pending interrupt: trap = %+v", tr)
	}
	// And only to that one.
	e.AS.Unmap(CodeAddr, hostarch.PageSize)
	if tr := e.Switch(t); tr.Kind != platform.TrapFault || tr.Access != hostarch.Execute {
		t.Fatalf("after the interrupt was reported: trap = %+v, want an exec fault", tr)
	}
}

func testStubDeath(t *testing.T, f Factory) {
	if f.StubPID == nil {
		t.Skip("no StubPID in the factory")
	}
	e := f.NewEnv(t, InsSpin)
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Kill(f.StubPID(e.AS), unix.SIGKILL)
	}()
	err := e.Ctx.Switch(e.AS, e.AC, &e.Trap)
	if !errors.Is(err, platform.ErrStubDied) {
		t.Fatalf("Switch after the stub was killed: %v, want ErrStubDied", err)
	}
	if err := e.AS.MapFile(DataAddr, e.Code.Start, e.Code.Length(), hostarch.Read, false); !errors.Is(err, platform.ErrStubDied) {
		t.Errorf("MapFile after the stub was killed: %v, want ErrStubDied", err)
	}
	if err := e.Ctx.Switch(e.AS, e.AC, &e.Trap); !errors.Is(err, platform.ErrStubDied) {
		t.Errorf("second Switch after the stub was killed: %v, want ErrStubDied", err)
	}
}

// Descendants counts this process's descendant processes (stubs may be
// children of a helper process rather than of the Sentry).
func Descendants(t testing.TB) int {
	var count func(pid string) int
	count = func(pid string) int {
		tasks, err := os.ReadDir("/proc/" + pid + "/task")
		if err != nil {
			return 0
		}
		n := 0
		for _, task := range tasks {
			b, err := os.ReadFile("/proc/" + pid + "/task/" + task.Name() + "/children")
			if err != nil {
				continue
			}
			for _, c := range strings.Fields(string(b)) {
				n += 1 + count(c)
			}
		}
		return n
	}
	return count(fmt.Sprint(os.Getpid()))
}

// OpenFDs counts this process's open descriptors.
func OpenFDs(t testing.TB) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

func testNoLeaks(t *testing.T, f Factory) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mf, p := f.NewPlatform(t)
	fr, err := mf.Allocate(hostarch.PageSize)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mf.MapInternal(fr)
	copy(m, Cat(MovImm32("eax", 39), InsSyscall))
	waitChildren := func(want int) int {
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := Descendants(t)
			if n <= want || time.Now().After(deadline) {
				return n
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// What the platform keeps while it lives, once its probe is gone.
	baseChildren := Descendants(t)
	for prev := -1; baseChildren != prev; {
		time.Sleep(50 * time.Millisecond)
		prev, baseChildren = baseChildren, Descendants(t)
	}
	baseFDs := OpenFDs(t)
	baseUsed := mf.UsedBytes()
	for i := 0; i < 50; i++ {
		as, err := p.NewAddressSpace()
		if err != nil {
			t.Fatalf("NewAddressSpace %d: %v", i, err)
		}
		ctx, err := p.NewContext()
		if err != nil {
			t.Fatal(err)
		}
		if err := as.MapFile(CodeAddr, fr.Start, fr.Length(), hostarch.AnyAccess, false); err != nil {
			t.Fatal(err)
		}
		ac := arch.New()
		ac.SetIP(CodeAddr)
		var tr platform.Trap
		if err := ctx.Switch(as, ac, &tr); err != nil || tr.Kind != platform.TrapSyscall {
			t.Fatalf("Switch %d: %v %+v", i, err, tr)
		}
		// Alternate the release order: both must clean up.
		if i%2 == 0 {
			ctx.Release()
			as.Release()
		} else {
			as.Release()
			ctx.Release()
		}
	}
	if n := waitChildren(baseChildren); n > baseChildren {
		t.Errorf("%d child processes left, had %d", n, baseChildren)
	}
	if n := OpenFDs(t); n > baseFDs {
		t.Errorf("%d fds open, had %d", n, baseFDs)
	}
	if u := mf.UsedBytes(); u > baseUsed {
		t.Errorf("memory file uses %d bytes, had %d: the platform leaks pages", u, baseUsed)
	}
}

// loopCode: loop: mov eax, 1000; syscall; mov r12, rax; jmp loop (rdi
// carries the thread's id and r12 the value the Sentry returned).
var loopCode = Cat(MovImm32("eax", 1000), InsSyscall, []byte{0x49, 0x89, 0xc4, 0xeb, 0xf4})

func testConcurrentContexts(t *testing.T, f Factory) {
	mf, p := f.NewPlatform(t)
	as, _ := newCodeSpace(t, mf, p, loopCode)
	const workers, rounds = 8, 200
	startWorkers(p, workers, func(w int, ctx platform.Context, ac *arch.Context64) error {
		var tr platform.Trap
		for i := 0; i < rounds; i++ {
			if err := ctx.Switch(as, ac, &tr); err != nil {
				return err
			}
			if tr.Kind != platform.TrapSyscall || ac.SyscallArgs()[0].Value != uintptr(w) || ac.SyscallNo() != 1000 {
				return fmt.Errorf("worker %d round %d: trap %+v rdi %d", w, i, tr, ac.Regs.Rdi)
			}
			if i > 0 && ac.Regs.R12 != uint64(i-1) {
				return fmt.Errorf("worker %d round %d: r12 = %d, want %d", w, i, ac.Regs.R12, i-1)
			}
			ac.SetReturn(uintptr(i))
		}
		return nil
	}).wait(t)
}

// testAddressSpaces: one Context alternates between two address spaces
// (as after fork) whose same address holds different data.
func testAddressSpaces(t *testing.T, f Factory) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mf, p := f.NewPlatform(t)
	ctx, err := p.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Release()
	code, _ := mf.Allocate(hostarch.PageSize)
	cm, _ := mf.MapInternal(code)
	// loop: mov rax, [DataAddr]; syscall; jmp loop
	copy(cm, Cat(MovRAX64(uint64(DataAddr)), []byte{0x48, 0x8b, 0x00}, InsSyscall, []byte{0xeb, 0xef}))
	var spaces [2]platform.AddressSpace
	for i := range spaces {
		as, err := p.NewAddressSpace()
		if err != nil {
			t.Fatal(err)
		}
		defer as.Release()
		spaces[i] = as
		data, _ := mf.Allocate(hostarch.PageSize)
		dm, _ := mf.MapInternal(data)
		binary.LittleEndian.PutUint64(dm, uint64(100+i))
		if err := as.MapFile(CodeAddr, code.Start, code.Length(), hostarch.AnyAccess, false); err != nil {
			t.Fatal(err)
		}
		if err := as.MapFile(DataAddr, data.Start, data.Length(), hostarch.Read, false); err != nil {
			t.Fatal(err)
		}
	}
	acs := [2]*arch.Context64{arch.New(), arch.New()}
	for i := range acs {
		acs[i].SetIP(CodeAddr)
	}
	var tr platform.Trap
	for round := 0; round < 20; round++ {
		i := round % 2
		if err := ctx.Switch(spaces[i], acs[i], &tr); err != nil {
			t.Fatal(err)
		}
		if tr.Kind != platform.TrapSyscall || acs[i].SyscallNo() != uintptr(100+i) {
			t.Fatalf("round %d in space %d: trap %+v, read %d", round, i, tr, acs[i].SyscallNo())
		}
	}
}

func testMapFileRejectsBadRanges(t *testing.T, f Factory) {
	e := f.NewEnv(t, InsInt3)
	max := e.P.MaxUserAddress()
	for _, tc := range []struct {
		addr   hostarch.Addr
		off    uint64
		length uint64
	}{
		{CodeAddr + 1, 0, hostarch.PageSize},
		{CodeAddr, 1, hostarch.PageSize},
		{CodeAddr, 0, 100},
		{max, 0, hostarch.PageSize},
		{max - hostarch.PageSize, 0, 2 * hostarch.PageSize},
		{0, 0, hostarch.PageSize},
	} {
		if err := e.AS.MapFile(tc.addr, tc.off, tc.length, hostarch.Read, false); !errors.Is(err, unix.EINVAL) {
			t.Errorf("MapFile(%#x, %#x, %#x) = %v, want EINVAL", tc.addr, tc.off, tc.length, err)
		}
	}
	// Unmapping over the stub region must leave the stub working.
	e.AS.Unmap(max-hostarch.PageSize, 1<<40)
	wantSignal(t, e.Switch(t), unix.SIGTRAP)
}

func testCPUIDFaulting(t *testing.T, f Factory) {
	e := f.NewEnv(t, []byte{0x0f, 0xa2}) // cpuid
	if !e.P.CPUIDFaulting() {
		t.Skip("host does not support CPUID faulting (ARCH_SET_CPUID)")
	}
	tr := e.Switch(t)
	if tr.Kind != platform.TrapSignal || tr.Signo != int32(unix.SIGSEGV) || e.AC.IP() != CodeAddr {
		t.Fatalf("cpuid: trap %+v at %#x, want SIGSEGV at the instruction", tr, e.AC.IP())
	}
}
