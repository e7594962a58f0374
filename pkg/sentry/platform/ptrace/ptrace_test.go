package ptrace

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/platformtest"
)

func requirePtrace(t testing.TB) {
	if os.Getuid() != 0 {
		// ptrace of our own children works unprivileged too, but YAMA
		// scope 3 forbids it; the CI runs as root.
		if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil && len(b) > 0 && b[0] == '3' {
			t.Skip("ptrace disabled by YAMA ptrace_scope=3")
		}
	}
}

var factory = platformtest.Factory{
	New:     func(mf *pgalloc.MemoryFile) (platform.Platform, error) { return New(mf) },
	Check:   requirePtrace,
	StubPID: func(as platform.AddressSpace) int { return as.(*addressSpace).pid },
}

// TestPlatform runs the battery every platform passes.
func TestPlatform(t *testing.T) { platformtest.Run(t, factory) }

func TestStress(t *testing.T) { platformtest.Stress(t, factory, 64, 3*time.Second) }

// newEnv is the battery's environment, for the ptrace-only tests below.
func newEnv(t testing.TB, code []byte) *platformtest.Env { return factory.NewEnv(t, code) }

var (
	cat        = platformtest.Cat
	movImm32   = platformtest.MovImm32
	insSyscall = platformtest.InsSyscall
	insInt3    = platformtest.InsInt3
	codeAddr   = platformtest.CodeAddr
)

// TestWrongThread: ptrace lets only one thread trace a tracee, so a
// Context is bound to the OS thread that first switched it.
func TestWrongThread(t *testing.T) {
	e := newEnv(t, cat(movImm32("eax", 39), insSyscall, []byte{0xeb, 0xf7}))
	e.Switch(t)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var tr platform.Trap
		errc <- e.Ctx.Switch(e.AS, e.AC, &tr)
	}()
	if err := <-errc; !errors.Is(err, platform.ErrContextThread) {
		t.Fatalf("Switch from another thread: %v, want ErrContextThread", err)
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
	e.P.(*Platform).SetLazyFP(true)
	const xmm0, xmm1 = 160, 176
	binary.LittleEndian.PutUint64(e.AC.FP[xmm0:], 0x1111)
	if tr := e.Switch(t); tr.Kind != platform.TrapSyscall || e.AC.SyscallNo() != 0x1111 {
		t.Fatalf("trap %+v rax %#x: app did not see xmm0", tr, e.AC.SyscallNo())
	}
	if l, _ := e.AC.PendingFP(); l == nil {
		t.Fatal("lazy FP: no deferred FP state after a syscall trap")
	}
	e.AC.SetReturn(0x2222)
	if tr := e.Switch(t); tr.Kind != platform.TrapSignal {
		t.Fatalf("trap %+v, want SIGTRAP", tr)
	}
	// Fork (like every arch method that uses FP) fetches the deferred state.
	child := e.AC.Fork()
	if got := binary.LittleEndian.Uint64(child.FP[xmm1:]); got != 0x2222 {
		t.Errorf("forked xmm1 = %#x, want 0x2222", got)
	}
	if got := binary.LittleEndian.Uint64(e.AC.FP[xmm1:]); got != 0x2222 {
		t.Errorf("synced xmm1 = %#x, want 0x2222", got)
	}
	// A direct write by the Sentry after a lazy trap reaches the app.
	e.AC.SetIP(codeAddr)
	if tr := e.Switch(t); tr.Kind != platform.TrapSyscall {
		t.Fatalf("trap %+v", tr)
	}
	e.AC.SetIP(codeAddr)
	binary.LittleEndian.PutUint64(e.AC.FP[xmm0:], 0x3333)
	if tr := e.Switch(t); tr.Kind != platform.TrapSyscall || e.AC.SyscallNo() != 0x3333 {
		t.Fatalf("trap %+v rax %#x: app did not see the Sentry's write to xmm0", tr, e.AC.SyscallNo())
	}
}
