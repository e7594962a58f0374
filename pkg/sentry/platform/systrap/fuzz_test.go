package systrap

import (
	"encoding/binary"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"golang.org/x/sys/unix"
)

// FuzzContextPage feeds arbitrary context-page contents (which the
// application can write) to the Sentry's decoding of a trap: it must
// never panic, must bound the FP copy, and must classify only what a
// handler run could have written.
func FuzzContextPage(f *testing.F) {
	seed := func(signo, code uint32, trapno, cr2 uint64, fpSize uint32) []byte {
		b := make([]byte, ctxFP+64)
		binary.LittleEndian.PutUint32(b[ctxSiginfo:], signo)
		binary.LittleEndian.PutUint32(b[ctxSiginfo+8:], code)
		binary.LittleEndian.PutUint64(b[ctxMcontext+8*20:], trapno)
		binary.LittleEndian.PutUint64(b[ctxMcontext+8*22:], cr2)
		binary.LittleEndian.PutUint32(b[ctxFPSize:], fpSize)
		return b
	}
	f.Add(seed(uint32(unix.SIGSYS), 1, 0, 0, 512))
	f.Add(seed(uint32(unix.SIGSEGV), 1, 14, 0x1000, 1<<31))
	f.Add(seed(uint32(unix.SIGILL), 2, 6, 0, 0))
	f.Add(seed(uint32(interruptSignal), 0xfffffffa, 0, 0, 0))
	f.Add(seed(0xffffffff, 0, 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		page := make([]byte, ctxSize)
		copy(page, data)
		as := &addressSpace{p: &Platform{}, pidFD: -1, threads: map[*stubThread]struct{}{}}
		st := newStubThread(as, 0, page)
		copy(page, data) // newStubThread resets the header
		c := &context{threads: map[*addressSpace]*stubThread{}}
		ac := arch.New()
		fpBefore := len(ac.FP)
		var tr platform.Trap
		done, err := c.save(st, ac, &tr)
		if len(ac.FP) != fpBefore {
			t.Fatalf("FP state resized to %d", len(ac.FP))
		}
		if err == nil && done {
			switch tr.Kind {
			case platform.TrapSyscall, platform.TrapInterrupted, platform.TrapSignal:
			case platform.TrapFault:
				if tr.Access != hostarch.Read && tr.Access != hostarch.Write && tr.Access != hostarch.Execute {
					t.Fatalf("fault with access %v", tr.Access)
				}
			default:
				t.Fatalf("trap kind %v", tr.Kind)
			}
		}
		if ac.Regs.Cs != arch.UserCS || ac.Regs.Ss != arch.UserSS {
			t.Fatalf("selectors taken from the page: cs %#x ss %#x", ac.Regs.Cs, ac.Regs.Ss)
		}
		if !arch.IsValidTLS(uintptr(ac.Regs.Fs_base)) {
			t.Fatalf("non-canonical fs_base %#x accepted", ac.Regs.Fs_base)
		}
	})
}
