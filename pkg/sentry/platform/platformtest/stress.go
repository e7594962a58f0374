package platformtest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform"
)

// Stress runs threads application threads in one address space for about
// d: each makes syscalls and faults on a page the Sentry maps and unmaps,
// while another goroutine interrupts them at random. Every trap must be
// one the program can produce, with the registers it implies.
func Stress(t *testing.T, f Factory, threads int, d time.Duration) {
	mf, p := f.NewPlatform(t)
	// loop: mov eax, 1000; syscall; mov r12, rax; mov rax, DataAddr;
	//       mov rcx, [rax]; jmp loop
	as, _ := newCodeSpace(t, mf, p, Cat(MovImm32("eax", 1000), InsSyscall, []byte{0x49, 0x89, 0xc4},
		MovRAX64(uint64(DataAddr)), []byte{0x48, 0x8b, 0x08, 0xeb, 0xe7}))
	data, _ := mf.Allocate(hostarch.PageSize)

	var (
		stop   atomic.Bool
		counts [4]atomic.Int64 // syscalls, faults, interrupts, other
		mapMu  sync.Mutex
	)
	ws := startWorkers(p, threads, func(w int, ctx platform.Context, ac *arch.Context64) error {
		var tr platform.Trap
		ret := uintptr(0)
		for !stop.Load() {
			if err := ctx.Switch(as, ac, &tr); err != nil {
				return fmt.Errorf("thread %d: %w", w, err)
			}
			switch tr.Kind {
			case platform.TrapSyscall:
				counts[0].Add(1)
				if ac.SyscallNo() != 1000 || ac.Regs.Rdi != uint64(w) {
					return fmt.Errorf("thread %d: syscall %d rdi %d", w, ac.SyscallNo(), ac.Regs.Rdi)
				}
				ret++
				ac.SetReturn(ret)
			case platform.TrapFault:
				counts[1].Add(1)
				if tr.Addr != DataAddr || tr.Access != hostarch.Read || ac.Regs.R12 != uint64(ret) {
					return fmt.Errorf("thread %d: fault %+v with r12 %d, want read of %#x after return %d", w, tr, ac.Regs.R12, DataAddr, ret)
				}
				mapMu.Lock()
				err := as.MapFile(DataAddr, data.Start, data.Length(), hostarch.Read, false)
				mapMu.Unlock()
				if err != nil {
					return err
				}
			case platform.TrapInterrupted:
				counts[2].Add(1)
			default:
				counts[3].Add(1)
				return fmt.Errorf("thread %d: unexpected trap %+v at %#x", w, tr, ac.IP())
			}
		}
		return nil
	})
	// The Sentry side: unmap the data page now and then, interrupt threads.
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline); i++ {
		if c := ws.ctxs[i%threads]; c != nil {
			c.Interrupt()
		}
		if i%8 == 0 {
			mapMu.Lock()
			as.Unmap(DataAddr, hostarch.PageSize)
			mapMu.Unlock()
		}
		time.Sleep(200 * time.Microsecond)
	}
	stop.Store(true)
	for _, c := range ws.ctxs {
		if c != nil {
			c.Interrupt() // threads spinning in the app come back
		}
	}
	ws.wait(t)
	t.Logf("%d threads: %d syscalls, %d faults, %d interrupts", threads, counts[0].Load(), counts[1].Load(), counts[2].Load())
	if counts[0].Load() == 0 || counts[1].Load() == 0 || counts[2].Load() == 0 {
		t.Errorf("stress did not exercise every path: %d syscalls, %d faults, %d interrupts", counts[0].Load(), counts[1].Load(), counts[2].Load())
	}
}

// BenchSyscallRoundTrip: the app makes a syscall, the Sentry sees it, sets
// the return value and resumes the app, which makes the next one.
func BenchSyscallRoundTrip(b *testing.B, f Factory) {
	e := f.NewEnv(b, GetpidLoop)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Ctx.Switch(e.AS, e.AC, &e.Trap); err != nil || e.Trap.Kind != platform.TrapSyscall {
			b.Fatalf("Switch: %v %+v", err, e.Trap)
		}
		e.AC.SetReturn(1)
	}
}

// BenchFaultRoundTrip: the app writes to an unmapped page and the Sentry
// gets the fault with its address and access type, then resumes it (so
// it faults again).
func BenchFaultRoundTrip(b *testing.B, f Factory) {
	e := f.NewEnv(b, Cat(MovRAX64(uint64(DataAddr)), []byte{0xc6, 0x00, 0x01}))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Ctx.Switch(e.AS, e.AC, &e.Trap); err != nil || e.Trap.Kind != platform.TrapFault {
			b.Fatalf("Switch: %v %+v", err, e.Trap)
		}
	}
}

// BenchMapFile: map one page of the memory file into the address space
// the calling task runs in (as after a fault).
func BenchMapFile(b *testing.B, f Factory) {
	e := f.NewEnv(b, InsInt3)
	e.Switch(b)
	fr, err := e.MF.Allocate(hostarch.PageSize)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := e.AS.MapFile(DataAddr, fr.Start, fr.Length(), hostarch.ReadWrite, false); err != nil {
			b.Fatal(err)
		}
	}
}
