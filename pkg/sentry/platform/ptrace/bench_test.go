package ptrace

import (
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"golang.org/x/sys/unix"
)

// BenchmarkNativeGetpid is the host's own syscall cost, for comparison.
func BenchmarkNativeGetpid(b *testing.B) {
	for b.Loop() {
		unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	}
}

// BenchmarkSyscallRoundTrip: the app makes a syscall, the Sentry sees it,
// sets the return value and resumes the app, which makes the next one.
func BenchmarkSyscallRoundTrip(b *testing.B) {
	e := newEnv(b, cat(movImm32("eax", 39), insSyscall, []byte{0xeb, 0xf7})) // loop: getpid
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ctx.Switch(e.as, e.ac, &e.trap); err != nil || e.trap.Kind != platform.TrapSyscall {
			b.Fatalf("Switch: %v %+v", err, e.trap)
		}
		e.ac.SetReturn(1)
	}
}

// BenchmarkFaultRoundTrip: the app writes to an unmapped page and the
// Sentry gets the fault with its address and access type, then resumes it
// (so it faults again).
func BenchmarkFaultRoundTrip(b *testing.B) {
	e := newEnv(b, cat(movRAX64(uint64(dataAddr)), []byte{0xc6, 0x00, 0x01}))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ctx.Switch(e.as, e.ac, &e.trap); err != nil || e.trap.Kind != platform.TrapFault {
			b.Fatalf("Switch: %v %+v", err, e.trap)
		}
	}
}

// BenchmarkMapFile: a task maps one page of the memory file into the
// address space it runs in (as after a fault).
func BenchmarkMapFile(b *testing.B) {
	e := newEnv(b, insInt3)
	e.switchTo(b)
	benchMapFile(b, e)
}

// BenchmarkMapFileOtherThread: the same from a goroutine with no thread in
// the address space, which goes through the stub's manager thread.
func BenchmarkMapFileOtherThread(b *testing.B) {
	benchMapFile(b, newEnv(b, insInt3))
}

func benchMapFile(b *testing.B, e *env) {
	fr, err := e.mf.Allocate(hostarch.PageSize)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := e.as.MapFile(dataAddr, fr.Start, fr.Length(), hostarch.ReadWrite, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyscallRoundTripLazyFP is BenchmarkSyscallRoundTrip with the FP
// state left in the stub thread (Platform.SetLazyFP).
func BenchmarkSyscallRoundTripLazyFP(b *testing.B) {
	e := newEnv(b, cat(movImm32("eax", 39), insSyscall, []byte{0xeb, 0xf7}))
	e.p.(*Platform).SetLazyFP(true)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.ctx.Switch(e.as, e.ac, &e.trap); err != nil || e.trap.Kind != platform.TrapSyscall {
			b.Fatalf("Switch: %v %+v", err, e.trap)
		}
		e.ac.SetReturn(1)
	}
}
