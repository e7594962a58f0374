package arch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

func TestNew(t *testing.T) {
	c := New()
	if c.Regs.Cs != 0x33 || c.Regs.Ss != 0x2b {
		t.Errorf("selectors cs=%#x ss=%#x", c.Regs.Cs, c.Regs.Ss)
	}
	if c.Regs.Eflags&EflagsIF == 0 {
		t.Errorf("eflags %#x lacks IF", c.Regs.Eflags)
	}
	if c.FP.FCW() != 0x37f || c.FP.MXCSR() != 0x1f80 {
		t.Errorf("FCW %#x MXCSR %#x", c.FP.FCW(), c.FP.MXCSR())
	}
	if len(c.FP) != FPStateSize() || uintptr(unsafe.Pointer(&c.FP[0]))%64 != 0 {
		t.Errorf("FP state of %d bytes at %p: want %d bytes, 64-byte aligned", len(c.FP), &c.FP[0], FPStateSize())
	}
	if UsesXSAVE() && FPStateSize() < 576 {
		t.Errorf("XSAVE area of %d bytes is smaller than legacy+header", FPStateSize())
	}
}

func TestForkIsDeep(t *testing.T) {
	c := New()
	c.Regs.Rax = 7
	c.FP[200] = 9
	d := c.Fork()
	d.Regs.Rax = 8
	d.FP[200] = 10
	if c.Regs.Rax != 7 || c.FP[200] != 9 {
		t.Error("Fork shares state with its parent")
	}
	if uintptr(unsafe.Pointer(&d.FP[0]))%64 != 0 {
		t.Error("forked FP state not 64-byte aligned")
	}
}

func TestSyscallABI(t *testing.T) {
	c := New()
	c.Regs.Orig_rax = 9
	c.Regs.Rdi, c.Regs.Rsi, c.Regs.Rdx, c.Regs.R10, c.Regs.R8, c.Regs.R9 = 1, 2, 3, 4, 5, ^uint64(0)
	if c.SyscallNo() != 9 {
		t.Errorf("SyscallNo = %d", c.SyscallNo())
	}
	a := c.SyscallArgs()
	for i := 0; i < 5; i++ {
		if a[i].Value != uintptr(i+1) {
			t.Errorf("arg %d = %d", i, a[i].Value)
		}
	}
	if a[5].Int() != -1 || a[5].Uint() != 0xffffffff || a[5].Int64() != -1 {
		t.Errorf("arg 5 conversions: %d %d %d", a[5].Int(), a[5].Uint(), a[5].Int64())
	}
	c.SetReturn(uintptr(^uint64(unix.ENOENT) + 1))
	if int64(c.Regs.Rax) != -int64(unix.ENOENT) {
		t.Errorf("rax = %d", int64(c.Regs.Rax))
	}
	c.Regs.Rip = 0x1002
	c.RestartSyscall()
	if c.Regs.Rip != 0x1000 || c.Regs.Rax != 9 {
		t.Errorf("RestartSyscall: rip %#x rax %d", c.Regs.Rip, c.Regs.Rax)
	}
	c.Regs.Rip = 0x1002
	c.RestartSyscallWithRestartBlock()
	if c.Regs.Rip != 0x1000 || c.Regs.Rax != 219 {
		t.Errorf("RestartSyscallWithRestartBlock: rip %#x rax %d", c.Regs.Rip, c.Regs.Rax)
	}
}

func TestTLS(t *testing.T) {
	c := New()
	if err := c.SetTLS(0x7f0000001000); err != nil || c.TLS() != 0x7f0000001000 {
		t.Errorf("SetTLS: %v, TLS %#x", err, c.TLS())
	}
	if err := c.SetTLS(1 << 47); err == nil {
		t.Error("SetTLS accepted a non-canonical address")
	}
}

const memSize = 1 << 20

func sampleInfo(signo uint32) []byte {
	info := make([]byte, SiginfoSize)
	binary.LittleEndian.PutUint32(info, signo)
	binary.LittleEndian.PutUint32(info[8:], 1) // si_code
	binary.LittleEndian.PutUint64(info[16:], 0xdead000)
	return info
}

func TestSignalFrameRoundTrip(t *testing.T) {
	for _, alt := range []bool{false, true} {
		mem := &usermem.BytesIO{Bytes: make([]byte, memSize)}
		c := New()
		r := &c.Regs
		r.Rax, r.Rbx, r.Rcx, r.Rdx, r.Rsi, r.Rdi, r.Rbp = 1, 2, 3, 4, 5, 6, 7
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15 = 8, 9, 10, 11, 12, 13, 14, 15
		r.Rip, r.Rsp = 0x401234, 0x80007
		r.Eflags = EflagsIF | EflagsCF | EflagsDF | 2
		r.Orig_rax = 1
		binary.LittleEndian.PutUint64(c.FP[160:], 0x0123456789abcdef) // xmm0
		orig := c.Fork()
		altstack := SignalStack{Addr: 0x40000, Size: 0x10000}
		info := sampleInfo(uint32(unix.SIGUSR1))

		if err := c.SignalSetup(context.Background(), mem, 0x500000, 0x500100, 0x5a5a, info, altstack, alt, true); err != nil {
			t.Fatalf("SignalSetup: %v", err)
		}
		sp := c.Regs.Rsp
		if (sp+8)%16 != 0 {
			t.Errorf("handler entry rsp %#x breaks the (sp+8)%%16 == 0 rule", sp)
		}
		if alt && !altstack.Contains(hostarch.Addr(sp)) {
			t.Errorf("frame at %#x not on the alternate stack", sp)
		}
		if !alt && sp > orig.Regs.Rsp-redZoneSize-frameSize {
			t.Errorf("frame at %#x overlaps the red zone below %#x", sp, orig.Regs.Rsp)
		}
		if c.Regs.Rip != 0x500000 || c.Regs.Rdi != uint64(unix.SIGUSR1) || c.Regs.Rsi != sp+frameSiginfo || c.Regs.Rdx != sp+8 {
			t.Errorf("handler registers rip %#x rdi %d rsi %#x rdx %#x", c.Regs.Rip, c.Regs.Rdi, c.Regs.Rsi, c.Regs.Rdx)
		}
		if c.Regs.Eflags&EflagsDF != 0 {
			t.Error("DF not cleared for the handler")
		}
		if binary.LittleEndian.Uint64(c.FP[160:]) != 0 || c.FP.MXCSR() != 0x1f80 {
			t.Error("handler does not start with fresh FP state")
		}
		m := mem.Bytes
		if got := binary.LittleEndian.Uint64(m[sp:]); got != 0x500100 {
			t.Errorf("pretcode %#x", got)
		}
		if !bytes.Equal(m[sp+frameSiginfo:sp+frameSiginfo+SiginfoSize], info) {
			t.Error("siginfo not in the frame")
		}
		fpAddr := binary.LittleEndian.Uint64(m[sp+8+UContextErrOffset+32:])
		if fpAddr%64 != 0 || fpAddr < sp+frameSize {
			t.Errorf("fpstate at %#x (frame %#x)", fpAddr, sp)
		}
		if UsesXSAVE() {
			if binary.LittleEndian.Uint32(m[fpAddr+464:]) != FPXStateMagic1 ||
				binary.LittleEndian.Uint32(m[fpAddr+uint64(FPStateSize()):]) != FPXStateMagic2 {
				t.Error("fpstate magic numbers missing")
			}
		}
		if got := binary.LittleEndian.Uint64(m[fpAddr+160:]); got != 0x0123456789abcdef {
			t.Errorf("xmm0 in frame = %#x", got)
		}

		// The handler's ret pops pretcode; then rt_sigreturn.
		c.Regs.Rsp += 8
		c.Regs.Rax = 15
		sigset, st, err := c.SignalRestore(context.Background(), mem)
		if err != nil {
			t.Fatalf("SignalRestore: %v", err)
		}
		if sigset != 0x5a5a || st.Addr != altstack.Addr || st.Size != altstack.Size {
			t.Errorf("restored mask %#x altstack %+v", sigset, st)
		}
		want := orig.Regs
		want.Orig_rax = ^uint64(0)
		if c.Regs != want {
			t.Errorf("registers after sigreturn\n got %+v\nwant %+v", c.Regs, want)
		}
		if binary.LittleEndian.Uint64(c.FP[160:]) != 0x0123456789abcdef || c.FP.MXCSR() != orig.FP.MXCSR() {
			t.Error("FP state not restored")
		}
	}
}

func TestSignalSetupFaults(t *testing.T) {
	mem := &usermem.BytesIO{Bytes: make([]byte, 4096)}
	c := New()
	c.Regs.Rsp = 0x100000 // beyond mem
	err := c.SignalSetup(context.Background(), mem, 1, 2, 0, sampleInfo(11), SignalStack{}, false, true)
	if !errors.Is(err, unix.EFAULT) {
		t.Errorf("SignalSetup onto unmapped stack: %v, want EFAULT", err)
	}
	if _, _, err := c.SignalRestore(context.Background(), mem); !errors.Is(err, unix.EFAULT) {
		t.Errorf("SignalRestore from unmapped stack: %v, want EFAULT", err)
	}
}

func TestSignalRestoreSanitizes(t *testing.T) {
	mem := &usermem.BytesIO{Bytes: make([]byte, memSize)}
	c := New()
	c.Regs.Rsp = 0x80000
	if err := c.SignalSetup(context.Background(), mem, 1, 2, 0, sampleInfo(10), SignalStack{}, false, false); err != nil {
		t.Fatal(err)
	}
	sp := c.Regs.Rsp
	sc := mem.Bytes[sp+8+ucMcontextOff:]
	binary.LittleEndian.PutUint64(sc[scEflags*8:], ^uint64(0)) // try to set IOPL, VM, ...
	binary.LittleEndian.PutUint16(sc[scSegs*8:], 0x10)         // a kernel CS
	fpAddr := binary.LittleEndian.Uint64(sc[scFPState*8:])
	binary.LittleEndian.PutUint32(mem.Bytes[fpAddr+mxcsrOffset:], 0xffffffff) // reserved MXCSR bits
	c.Regs.Rsp = sp + 8
	if _, _, err := c.SignalRestore(context.Background(), mem); err != nil {
		t.Fatal(err)
	}
	if c.Regs.Cs != UserCS || c.Regs.Eflags&^uint64(eflagsRestorable|EflagsIF|2) != 0 {
		t.Errorf("sigreturn let through cs %#x eflags %#x", c.Regs.Cs, c.Regs.Eflags)
	}
	if c.FP.MXCSR()&^hostFP.mxcsrMask != 0 {
		t.Errorf("sigreturn let through MXCSR %#x", c.FP.MXCSR())
	}
}

// FuzzSignalRestore feeds arbitrary application memory to rt_sigreturn.
func FuzzSignalRestore(f *testing.F) {
	f.Add(make([]byte, 4096), uint16(100))
	mem := &usermem.BytesIO{Bytes: make([]byte, 8192)}
	c := New()
	c.Regs.Rsp = 8000
	if err := c.SignalSetup(context.Background(), mem, 1, 2, 3, sampleInfo(10), SignalStack{}, false, true); err == nil {
		f.Add(append([]byte(nil), mem.Bytes...), uint16(c.Regs.Rsp+8))
	}
	f.Fuzz(func(t *testing.T, b []byte, sp uint16) {
		c := New()
		c.Regs.Rsp = uint64(sp)
		c.SignalRestore(context.Background(), &usermem.BytesIO{Bytes: b})
		if c.Regs.Cs != UserCS || c.Regs.Ss != UserSS {
			t.Fatalf("selectors cs %#x ss %#x after sigreturn", c.Regs.Cs, c.Regs.Ss)
		}
	})
}
