package ptrace

import (
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/platformtest"
	"golang.org/x/sys/unix"
)

// BenchmarkNativeGetpid is the host's own syscall cost, for comparison.
func BenchmarkNativeGetpid(b *testing.B) {
	for b.Loop() {
		unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	}
}

func BenchmarkSyscallRoundTrip(b *testing.B) { platformtest.BenchSyscallRoundTrip(b, factory) }
func BenchmarkFaultRoundTrip(b *testing.B)   { platformtest.BenchFaultRoundTrip(b, factory) }
func BenchmarkMapFile(b *testing.B)          { platformtest.BenchMapFile(b, factory) }

// BenchmarkMapFileOtherThread: MapFile from a goroutine with no thread in
// the address space, which goes through the stub's manager thread.
func BenchmarkMapFileOtherThread(b *testing.B) {
	e := newEnv(b, insInt3)
	fr, err := e.MF.Allocate(hostarch.PageSize)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := e.AS.MapFile(platformtest.DataAddr, fr.Start, fr.Length(), hostarch.ReadWrite, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyscallRoundTripLazyFP is BenchmarkSyscallRoundTrip with the FP
// state left in the stub thread (Platform.SetLazyFP).
func BenchmarkSyscallRoundTripLazyFP(b *testing.B) {
	e := newEnv(b, platformtest.GetpidLoop)
	e.P.(*Platform).SetLazyFP(true)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Ctx.Switch(e.AS, e.AC, &e.Trap); err != nil || e.Trap.Kind != platform.TrapSyscall {
			b.Fatalf("Switch: %v %+v", err, e.Trap)
		}
		e.AC.SetReturn(1)
	}
}
