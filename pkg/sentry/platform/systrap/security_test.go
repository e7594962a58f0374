package systrap

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/platformtest"
	"golang.org/x/sys/unix"
)

// movRSP64 encodes movabs rsp, imm64; jmpRAX is jmp rax.
func movRSP64(v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{0x48, 0xbc}, v) }

var jmpRAX = []byte{0xff, 0xe0}

// restorerSyscall is the address of the syscall instruction in the
// stub's rt_sigreturn restorer (mov eax, 15 is 5 bytes).
func restorerSyscall() uint64 { return uint64(stub.base) + stubHeader(3) + 5 }

// An application thread that jumps into the stub's code to make a
// syscall the filter does not allow there still traps to the Sentry: it
// cannot map the memory file or do anything else on the host.
func TestStubCodeSyscallTraps(t *testing.T) {
	if _, err := setupStub(); err != nil {
		t.Fatal(err)
	}
	e := factory.NewEnv(t, platformtest.Cat(platformtest.MovImm32("eax", unix.SYS_MMAP), []byte{0x48, 0xb9}, // mov rcx, imm64
		binary.LittleEndian.AppendUint64(nil, restorerSyscall()), []byte{0xff, 0xe1})) // jmp rcx
	tr := e.Switch(t)
	if tr.Kind != platform.TrapSyscall || e.AC.SyscallNo() != unix.SYS_MMAP {
		t.Fatalf("mmap from the stub's code: trap %+v nr %d, want a trapped mmap", tr, e.AC.SyscallNo())
	}
	if e.AC.IP() != hostarch.Addr(restorerSyscall()+2) {
		t.Errorf("trapped at %#x, want %#x", e.AC.IP(), restorerSyscall()+2)
	}
}

// ctxAddrOfSlot0 is where the first thread's context page is.
func ctxAddrOfSlot0() uint64 { return uint64(stub.base) + ctxOff }

// The application can write its context page; garbage there is reported
// as an error, never a crash or a hang of the Sentry.
func TestCorruptContextPage(t *testing.T) {
	if _, err := setupStub(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxAddrOfSlot0()
	for _, tc := range []struct {
		name    string
		signo   uint32
		code    uint32
		fpSize  uint32
		wantErr bool
	}{
		{"unknown-signal", 99, 1, 0, true},
		{"sigsys-bad-code", uint32(unix.SIGSYS), 77, 0, true},
		{"huge-fp-size", uint32(unix.SIGSYS), 1, 0xffffffff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// mov rax, ctx; mov dword [rax+siginfo], signo; [+8] code;
			// [rax+fpsize], fpSize; mov dword [rax], TRAPPED; jmp .
			code := platformtest.Cat(
				platformtest.MovRAX64(ctx),
				[]byte{0xc7, 0x40, ctxSiginfo}, binary.LittleEndian.AppendUint32(nil, tc.signo),
				[]byte{0xc7, 0x40, ctxSiginfo + 8}, binary.LittleEndian.AppendUint32(nil, tc.code),
				[]byte{0xc7, 0x40, ctxFPSize}, binary.LittleEndian.AppendUint32(nil, tc.fpSize),
				[]byte{0xc7, 0x00}, binary.LittleEndian.AppendUint32(nil, stateTrapped),
				platformtest.InsSpin,
			)
			e := factory.NewEnv(t, code)
			err := e.Ctx.Switch(e.AS, e.AC, &e.Trap)
			if tc.wantErr {
				if !errors.Is(err, platform.ErrStubDied) {
					t.Fatalf("Switch = %v (trap %+v), want ErrStubDied", err, e.Trap)
				}
				return
			}
			if err != nil || e.Trap.Kind != platform.TrapSyscall {
				t.Fatalf("Switch = %v, trap %+v: a forged syscall trap is just a syscall", err, e.Trap)
			}
		})
	}
}

// An application that blocks every signal (by forging an rt_sigreturn
// frame through the stub's restorer) cannot be interrupted: Switch gives
// up with an error instead of hanging.
func TestUninterruptibleThread(t *testing.T) {
	if _, err := setupStub(); err != nil {
		t.Fatal(err)
	}
	old := interruptGiveUp
	interruptGiveUp = 300 * time.Millisecond
	defer func() { interruptGiveUp = old }()

	frameAddr := platformtest.DataAddr
	spinAddr := platformtest.CodeAddr + 0x100
	code := make([]byte, 0x102)
	copy(code, platformtest.Cat(movRSP64(uint64(frameAddr)), platformtest.MovRAX64(restorerSyscall()-5), jmpRAX))
	copy(code[0x100:], platformtest.InsSpin)
	e := factory.NewEnv(t, code)
	// A ucontext at frameAddr (rt_sigreturn finds it at rsp): the
	// spinning code, everything blocked, no FP state.
	uc := make([]byte, hostarch.PageSize)
	mc := uc[40:]
	binary.LittleEndian.PutUint64(mc[8*15:], uint64(platformtest.StackAddr)) // rsp
	binary.LittleEndian.PutUint64(mc[8*16:], uint64(spinAddr))               // rip
	binary.LittleEndian.PutUint64(mc[8*17:], arch.EflagsIF|0x2)
	binary.LittleEndian.PutUint64(mc[8*18:], uint64(arch.UserCS)|uint64(arch.UserSS)<<48)
	binary.LittleEndian.PutUint64(uc[296:], ^uint64(0)) // uc_sigmask
	e.Load(t, uc, frameAddr, hostarch.ReadWrite)
	go func() {
		time.Sleep(50 * time.Millisecond)
		e.Ctx.Interrupt()
	}()
	start := time.Now()
	err := e.Ctx.Switch(e.AS, e.AC, &e.Trap)
	if !errors.Is(err, platform.ErrStubDied) || !strings.Contains(err.Error(), "ignores interrupts") {
		t.Fatalf("Switch = %v (trap %+v), want ErrStubDied for a thread that ignores interrupts", err, e.Trap)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("giving up took %v", d)
	}
}

// Stubs die when the platform closes (the zygote exits, and each stub has
// PR_SET_PDEATHSIG against it).
func TestStubsDieWithPlatform(t *testing.T) {
	_, p := factory.NewPlatform(t)
	as, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	pid := as.(*addressSpace).pid
	zygote := p.(*Platform).zygotePID
	p.Close()
	if err := platformtest.AwaitGone([]int{pid, zygote}, 10*time.Second); err != nil {
		t.Fatalf("stub %d or zygote %d outlived the platform: %v", pid, zygote, err)
	}
	as.Release()
}

// A thread that cannot install its filter says so at once (it must never
// run application code unfiltered).
func TestThreadSetupFailureReported(t *testing.T) {
	_, p := factory.NewPlatform(t)
	asI, err := p.NewAddressSpace()
	if err != nil {
		t.Fatal(err)
	}
	defer asI.Release()
	as := asI.(*addressSpace)
	binary.LittleEndian.PutUint16(as.ro[roFProg:], 0) // an empty program: EINVAL
	start := time.Now()
	if _, err := as.newThread(); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("newThread with a broken filter: %v, want EINVAL", err)
	}
	if d := time.Since(start); d > parkTimeout/2 {
		t.Errorf("failure took %v to report", d)
	}
}

// The shared pages of a released address space go back to the memory
// file only once its stub has exited: a dying stub thread still writes its
// state word (CLONE_CHILD_CLEARTID), which must not land in pages handed
// to someone else.
func TestReleasedPagesNotScribbled(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mf, p := factory.NewPlatform(t)
	for i := 0; i < 20; i++ {
		as, err := p.NewAddressSpace()
		if err != nil {
			t.Fatal(err)
		}
		ctx, _ := p.NewContext()
		code, _ := mf.Allocate(hostarch.PageSize)
		m, _ := mf.MapInternal(code)
		copy(m, platformtest.GetpidLoop)
		if err := as.MapFile(platformtest.CodeAddr, code.Start, code.Length(), hostarch.AnyAccess, false); err != nil {
			t.Fatal(err)
		}
		ac := arch.New()
		ac.SetIP(platformtest.CodeAddr)
		var tr platform.Trap
		if err := ctx.Switch(as, ac, &tr); err != nil {
			t.Fatal(err)
		}
		as.Release() // the thread is parked: it dies with the stub
		ctx.Release()
		mf.DecRef(code)
		fr, err := mf.Allocate(64 << 10) // reuses what the stub had
		if err != nil {
			t.Fatal(err)
		}
		b, _ := mf.MapInternal(fr)
		for j := range b {
			b[j] = 0xff
		}
		time.Sleep(5 * time.Millisecond)
		for j := 0; j < len(b); j += 4 {
			if binary.LittleEndian.Uint32(b[j:]) != 0xffffffff {
				t.Fatalf("round %d: reallocated page written at offset %#x after its stub was released", i, j)
			}
		}
		mf.DecRef(fr)
	}
}
