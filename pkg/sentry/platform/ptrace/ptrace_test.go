package ptrace

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

const (
	codeAddr  = hostarch.Addr(0x400000)
	dataAddr  = hostarch.Addr(0x800000)
	stackAddr = hostarch.Addr(0x900000)
)

// env is one platform, address space and context with a code page.
type env struct {
	t    *testing.T
	mf   *pgalloc.MemoryFile
	p    platform.Platform
	as   platform.AddressSpace
	ctx  platform.Context
	code pgalloc.FileRange
	ac   *arch.Context64
	trap platform.Trap
}

func requirePtrace(t testing.TB) {
	if os.Getuid() != 0 {
		// ptrace of our own children works unprivileged too, but YAMA
		// scope 3 forbids it; the CI runs as root.
		if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil && len(b) > 0 && b[0] == '3' {
			t.Skip("ptrace disabled by YAMA ptrace_scope=3")
		}
	}
}

func newPlatform(t testing.TB) (*pgalloc.MemoryFile, platform.Platform) {
	requirePtrace(t)
	mf, err := pgalloc.New("ptrace-test")
	if err != nil {
		t.Fatalf("pgalloc.New: %v", err)
	}
	p, err := New(mf)
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

// newEnv locks the calling goroutine to its thread (as the kernel does
// for each task) and loads code at codeAddr.
func newEnv(t testing.TB, code []byte) *env {
	runtime.LockOSThread()
	mf, p := newPlatform(t)
	e := &env{mf: mf, p: p}
	var err error
	if e.as, err = p.NewAddressSpace(); err != nil {
		t.Fatalf("NewAddressSpace: %v", err)
	}
	if e.ctx, err = p.NewContext(); err != nil {
		t.Fatalf("NewContext: %v", err)
	}
	t.Cleanup(func() {
		e.ctx.Release()
		e.as.Release()
		runtime.UnlockOSThread()
	})
	e.code = e.load(t, code, codeAddr, hostarch.AccessType{Read: true, Execute: true})
	e.ac = arch.New()
	e.ac.SetIP(codeAddr)
	e.ac.SetStack(stackAddr)
	return e
}

// load copies b into fresh pages mapped at addr.
func (e *env) load(t testing.TB, b []byte, addr hostarch.Addr, at hostarch.AccessType) pgalloc.FileRange {
	fr, err := e.mf.Allocate(uint64(len(b)))
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	m, err := e.mf.MapInternal(fr)
	if err != nil {
		t.Fatalf("MapInternal: %v", err)
	}
	copy(m, b)
	if err := e.as.MapFile(addr, fr.Start, fr.Length(), at, true); err != nil {
		t.Fatalf("MapFile: %v", err)
	}
	return fr
}

func (e *env) switchTo(t testing.TB) platform.Trap {
	if err := e.ctx.Switch(e.as, e.ac, &e.trap); err != nil {
		t.Fatalf("Switch: %v", err)
	}
	return e.trap
}

// Machine code fragments.
var (
	insSyscall = []byte{0x0f, 0x05}
	insInt3    = []byte{0xcc}
	insUD2     = []byte{0x0f, 0x0b}
)

func movImm32(reg string, v uint32) []byte {
	ops := map[string][]byte{
		"eax": {0xb8}, "edi": {0xbf}, "esi": {0xbe}, "edx": {0xba}, "ecx": {0xb9},
		"r10d": {0x41, 0xba}, "r8d": {0x41, 0xb8}, "r9d": {0x41, 0xb9},
	}
	return binary.LittleEndian.AppendUint32(append([]byte{}, ops[reg]...), v)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestSyscallTrap(t *testing.T) {
	code := cat(
		movImm32("eax", 500), movImm32("edi", 11), movImm32("esi", 22), movImm32("edx", 33),
		movImm32("r10d", 44), movImm32("r8d", 55), movImm32("r9d", 66),
		insSyscall,
		[]byte{0x49, 0x89, 0xc4}, // mov r12, rax
		insInt3,
	)
	e := newEnv(t, code)
	tr := e.switchTo(t)
	if tr.Kind != platform.TrapSyscall {
		t.Fatalf("trap = %+v, want syscall", tr)
	}
	if got := e.ac.SyscallNo(); got != 500 {
		t.Errorf("syscall number = %d, want 500", got)
	}
	args := e.ac.SyscallArgs()
	for i, want := range []uintptr{11, 22, 33, 44, 55, 66} {
		if args[i].Value != want {
			t.Errorf("arg %d = %d, want %d", i, args[i].Value, want)
		}
	}
	if want := uint64(codeAddr) + uint64(len(code)) - 4; e.ac.Regs.Rip != want {
		t.Errorf("rip after syscall = %#x, want %#x", e.ac.Regs.Rip, want)
	}
	e.ac.SetReturn(0xabcdef)
	tr = e.switchTo(t)
	if tr.Kind != platform.TrapSignal || tr.Signo != int32(unix.SIGTRAP) {
		t.Fatalf("trap = %+v, want SIGTRAP", tr)
	}
	if e.ac.Regs.R12 != 0xabcdef {
		t.Errorf("app saw return value %#x, want 0xabcdef", e.ac.Regs.R12)
	}
}

func movRAX64(v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{0x48, 0xb8}, v) }

func TestFaultThenMap(t *testing.T) {
	target := dataAddr + 0x123
	code := cat(
		movRAX64(uint64(target)),
		[]byte{0xc7, 0x00, 0x44, 0x33, 0x22, 0x11}, // mov dword [rax], 0x11223344
		insInt3,
	)
	e := newEnv(t, code)
	tr := e.switchTo(t)
	if tr.Kind != platform.TrapFault || tr.Addr != target || tr.Access != hostarch.Write {
		t.Fatalf("trap = %+v, want write fault at %#x", tr, target)
	}
	if e.ac.IP() != codeAddr+10 {
		t.Errorf("fault IP = %#x, want the store at %#x", e.ac.IP(), codeAddr+10)
	}
	data := e.load(t, make([]byte, hostarch.PageSize), dataAddr, hostarch.ReadWrite)
	tr = e.switchTo(t)
	if tr.Kind != platform.TrapSignal || tr.Signo != int32(unix.SIGTRAP) {
		t.Fatalf("after mapping: trap = %+v, want SIGTRAP", tr)
	}
	m, err := e.mf.MapInternal(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(m[0x123:]); got != 0x11223344 {
		t.Errorf("Sentry sees %#x at the written address, want 0x11223344", got)
	}
}

func TestFaultAccessTypes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   []byte
		ro     bool // map dataAddr read-only first
		addr   hostarch.Addr
		access hostarch.AccessType
	}{
		{"read", cat(movRAX64(uint64(dataAddr+8)), []byte{0x8b, 0x08}), false, dataAddr + 8, hostarch.Read},                   // mov ecx, [rax]
		{"exec", cat(movRAX64(uint64(dataAddr+16)), []byte{0xff, 0xe0}), false, dataAddr + 16, hostarch.Execute},              // jmp rax
		{"write-readonly", cat(movRAX64(uint64(dataAddr+24)), []byte{0xc6, 0x00, 0x01}), true, dataAddr + 24, hostarch.Write}, // mov byte [rax], 1
		{"exec-noexec", cat(movRAX64(uint64(dataAddr)), []byte{0xff, 0xe0}), true, dataAddr, hostarch.Execute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.code)
			if tc.ro {
				e.load(t, make([]byte, hostarch.PageSize), dataAddr, hostarch.Read)
			}
			tr := e.switchTo(t)
			if tr.Kind != platform.TrapFault || tr.Addr != tc.addr || tr.Access != tc.access {
				t.Fatalf("trap = %+v, want %v fault at %#x", tr, tc.access, tc.addr)
			}
		})
	}
}

func TestSynchronousSignals(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		sig  unix.Signal
		addr hostarch.Addr // expected si_addr, if checked
	}{
		{"int3", insInt3, unix.SIGTRAP, 0},
		{"ud2", insUD2, unix.SIGILL, codeAddr},
		// xor ecx, ecx; xor edx, edx; mov eax, 1; div ecx
		{"divide", cat([]byte{0x31, 0xc9, 0x31, 0xd2}, movImm32("eax", 1), []byte{0xf7, 0xf1}), unix.SIGFPE, codeAddr + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.code)
			tr := e.switchTo(t)
			if tr.Kind != platform.TrapSignal || tr.Signo != int32(tc.sig) {
				t.Fatalf("trap = %+v, want signal %v", tr, tc.sig)
			}
			if tc.addr != 0 && tr.Addr != tc.addr {
				t.Errorf("si_addr = %#x, want %#x", tr.Addr, tc.addr)
			}
		})
	}
}

func TestFPStateRoundTrip(t *testing.T) {
	code := cat(
		[]byte{0x66, 0x48, 0x0f, 0x7e, 0xc0}, // movq rax, xmm0
		insSyscall,
		[]byte{0x66, 0x48, 0x0f, 0x6e, 0xc8}, // movq xmm1, rax
		insInt3,
	)
	e := newEnv(t, code)
	const xmm0, xmm1 = 160, 176
	binary.LittleEndian.PutUint64(e.ac.FP[xmm0:], 0x1122334455667788)
	tr := e.switchTo(t)
	if tr.Kind != platform.TrapSyscall || e.ac.SyscallNo() != 0x1122334455667788 {
		t.Fatalf("trap %+v with rax %#x: app did not see xmm0 set by the Sentry", tr, e.ac.SyscallNo())
	}
	e.ac.SetReturn(0xfeedfacecafe)
	if tr = e.switchTo(t); tr.Kind != platform.TrapSignal {
		t.Fatalf("trap = %+v, want SIGTRAP", tr)
	}
	if got := binary.LittleEndian.Uint64(e.ac.FP[xmm1:]); got != 0xfeedfacecafe {
		t.Errorf("xmm1 saved as %#x, want 0xfeedfacecafe", got)
	}
}

func TestInterrupt(t *testing.T) {
	e := newEnv(t, []byte{0xeb, 0xfe}) // jmp .
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(20 * time.Millisecond)
		e.ctx.Interrupt()
	}()
	start := time.Now()
	tr := e.switchTo(t)
	<-done
	if tr.Kind != platform.TrapInterrupted {
		t.Fatalf("trap = %+v, want interrupted", tr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("interrupt took %v", d)
	}
	if e.ac.IP() != codeAddr {
		t.Errorf("spinning app interrupted at %#x, want %#x", e.ac.IP(), codeAddr)
	}
	// An Interrupt with no Switch running applies to the next one.
	e.ctx.Interrupt()
	if tr := e.switchTo(t); tr.Kind != platform.TrapInterrupted {
		t.Fatalf("pending interrupt: trap = %+v", tr)
	}
}

func TestStubDeath(t *testing.T) {
	e := newEnv(t, []byte{0xeb, 0xfe})
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Kill(e.as.(*addressSpace).pid, unix.SIGKILL)
	}()
	err := e.ctx.Switch(e.as, e.ac, &e.trap)
	if !errors.Is(err, platform.ErrStubDied) {
		t.Fatalf("Switch after the stub was killed: %v, want ErrStubDied", err)
	}
	if err := e.as.MapFile(dataAddr, e.code.Start, e.code.Length(), hostarch.Read, false); !errors.Is(err, platform.ErrStubDied) {
		t.Errorf("MapFile after the stub was killed: %v, want ErrStubDied", err)
	}
}

// hostChildren counts this process's child processes.
func hostChildren(t testing.TB) int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		n += len(strings.Fields(string(b)))
	}
	return n
}

func openFDs(t testing.TB) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

func TestNoLeaks(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mf, p := newPlatform(t)
	fr, err := mf.Allocate(hostarch.PageSize)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mf.MapInternal(fr)
	copy(m, cat(movImm32("eax", 39), insSyscall))
	waitChildren := func(want int) int {
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := hostChildren(t)
			if n <= want || time.Now().After(deadline) {
				return n
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	baseChildren := waitChildren(0)
	baseFDs := openFDs(t)
	for i := 0; i < 100; i++ {
		as, err := p.NewAddressSpace()
		if err != nil {
			t.Fatalf("NewAddressSpace %d: %v", i, err)
		}
		ctx, err := p.NewContext()
		if err != nil {
			t.Fatal(err)
		}
		if err := as.MapFile(codeAddr, fr.Start, fr.Length(), hostarch.AnyAccess, false); err != nil {
			t.Fatal(err)
		}
		ac := arch.New()
		ac.SetIP(codeAddr)
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
	if n := openFDs(t); n > baseFDs {
		t.Errorf("%d fds open, had %d", n, baseFDs)
	}
}

func TestConcurrentContexts(t *testing.T) {
	mf, p := newPlatform(t)
	as, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	defer as.Release()
	fr, err := mf.Allocate(hostarch.PageSize)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mf.MapInternal(fr)
	// loop: mov eax, 1000; syscall; jmp loop (rdi carries the thread's id and
	// r12 a counter the Sentry bumps through the return value).
	copy(m, cat(movImm32("eax", 1000), insSyscall, []byte{0x49, 0x89, 0xc4, 0xeb, 0xf4}))
	if err := as.MapFile(codeAddr, fr.Start, fr.Length(), hostarch.AnyAccess, false); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 200
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ctx, err := p.NewContext()
			if err != nil {
				errs <- err
				return
			}
			defer ctx.Release()
			ac := arch.New()
			ac.SetIP(codeAddr)
			ac.Regs.Rdi = uint64(w)
			var tr platform.Trap
			for i := 0; i < rounds; i++ {
				if err := ctx.Switch(as, ac, &tr); err != nil {
					errs <- err
					return
				}
				if tr.Kind != platform.TrapSyscall || ac.SyscallArgs()[0].Value != uintptr(w) || ac.SyscallNo() != 1000 {
					errs <- fmt.Errorf("worker %d round %d: trap %+v rdi %d", w, i, tr, ac.Regs.Rdi)
					return
				}
				if i > 0 && ac.Regs.R12 != uint64(i-1) {
					errs <- fmt.Errorf("worker %d round %d: r12 = %d, want %d", w, i, ac.Regs.R12, i-1)
					return
				}
				ac.SetReturn(uintptr(i))
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestWrongThread(t *testing.T) {
	e := newEnv(t, cat(movImm32("eax", 39), insSyscall, []byte{0xeb, 0xf7}))
	e.switchTo(t)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var tr platform.Trap
		errc <- e.ctx.Switch(e.as, e.ac, &tr)
	}()
	if err := <-errc; !errors.Is(err, platform.ErrContextThread) {
		t.Fatalf("Switch from another thread: %v, want ErrContextThread", err)
	}
}

func TestMapFileRejectsBadRanges(t *testing.T) {
	e := newEnv(t, insInt3)
	max := e.p.MaxUserAddress()
	for _, tc := range []struct {
		addr   hostarch.Addr
		off    uint64
		length uint64
	}{
		{codeAddr + 1, 0, hostarch.PageSize},
		{codeAddr, 1, hostarch.PageSize},
		{codeAddr, 0, 100},
		{max, 0, hostarch.PageSize},
		{max - hostarch.PageSize, 0, 2 * hostarch.PageSize},
		{0, 0, hostarch.PageSize},
	} {
		if err := e.as.MapFile(tc.addr, tc.off, tc.length, hostarch.Read, false); !errors.Is(err, unix.EINVAL) {
			t.Errorf("MapFile(%#x, %#x, %#x) = %v, want EINVAL", tc.addr, tc.off, tc.length, err)
		}
	}
	// Unmapping over the stub region must leave the stub working.
	e.as.Unmap(max-hostarch.PageSize, 1<<40)
	if tr := e.switchTo(t); tr.Kind != platform.TrapSignal || tr.Signo != int32(unix.SIGTRAP) {
		t.Fatalf("after Unmap beyond the top: trap %+v", tr)
	}
}

func TestCPUIDFaulting(t *testing.T) {
	e := newEnv(t, []byte{0x0f, 0xa2}) // cpuid
	if !e.p.CPUIDFaulting() {
		t.Skip("host does not support CPUID faulting (ARCH_SET_CPUID)")
	}
	tr := e.switchTo(t)
	if tr.Kind != platform.TrapSignal || tr.Signo != int32(unix.SIGSEGV) || e.ac.IP() != codeAddr {
		t.Fatalf("cpuid: trap %+v at %#x, want SIGSEGV at the instruction", tr, e.ac.IP())
	}
}

func TestLazyFP(t *testing.T) {
	code := cat(
		[]byte{0x66, 0x48, 0x0f, 0x7e, 0xc0}, // movq rax, xmm0
		insSyscall,
		[]byte{0x66, 0x48, 0x0f, 0x6e, 0xc8}, // movq xmm1, rax
		insInt3,
	)
	e := newEnv(t, code)
	e.p.(*Platform).SetLazyFP(true)
	const xmm0, xmm1 = 160, 176
	binary.LittleEndian.PutUint64(e.ac.FP[xmm0:], 0x1111)
	if tr := e.switchTo(t); tr.Kind != platform.TrapSyscall || e.ac.SyscallNo() != 0x1111 {
		t.Fatalf("trap %+v rax %#x: app did not see xmm0", tr, e.ac.SyscallNo())
	}
	if l, _ := e.ac.PendingFP(); l == nil {
		t.Fatal("lazy FP: no deferred FP state after a syscall trap")
	}
	e.ac.SetReturn(0x2222)
	if tr := e.switchTo(t); tr.Kind != platform.TrapSignal {
		t.Fatalf("trap %+v, want SIGTRAP", tr)
	}
	// Fork (like every arch method that uses FP) fetches the deferred state.
	child := e.ac.Fork()
	if got := binary.LittleEndian.Uint64(child.FP[xmm1:]); got != 0x2222 {
		t.Errorf("forked xmm1 = %#x, want 0x2222", got)
	}
	if got := binary.LittleEndian.Uint64(e.ac.FP[xmm1:]); got != 0x2222 {
		t.Errorf("synced xmm1 = %#x, want 0x2222", got)
	}
	// A direct write by the Sentry after a lazy trap reaches the app.
	e.ac.SetIP(codeAddr)
	if tr := e.switchTo(t); tr.Kind != platform.TrapSyscall {
		t.Fatalf("trap %+v", tr)
	}
	e.ac.SetIP(codeAddr)
	binary.LittleEndian.PutUint64(e.ac.FP[xmm0:], 0x3333)
	if tr := e.switchTo(t); tr.Kind != platform.TrapSyscall || e.ac.SyscallNo() != 0x3333 {
		t.Fatalf("trap %+v rax %#x: app did not see the Sentry's write to xmm0", tr, e.ac.SyscallNo())
	}
}
