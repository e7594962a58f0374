package arch

import (
	"context"
	"encoding/binary"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// SignalStack is stack_t: an alternate signal stack.
type SignalStack struct {
	Addr  uint64
	Flags uint32
	Size  uint64
}

// Flags of SignalStack.
const (
	SignalStackOnStack    = 1       // SS_ONSTACK
	SignalStackDisable    = 2       // SS_DISABLE
	SignalStackAutoDisarm = 1 << 31 // SS_AUTODISARM
)

// Contains reports whether sp lies on the stack (the top is exclusive, as
// in Linux's on_sig_stack).
func (s SignalStack) Contains(sp hostarch.Addr) bool {
	return s.Flags&SignalStackDisable == 0 && s.Size != 0 &&
		uint64(sp) > s.Addr && uint64(sp)-s.Addr <= s.Size
}

// Top returns the initial stack pointer of the stack.
func (s SignalStack) Top() hostarch.Addr { return hostarch.Addr(s.Addr + s.Size) }

// Layout of the amd64 rt_sigframe:
//
//	pretcode  8
//	ucontext  uc_flags 8, uc_link 8, uc_stack 24, uc_mcontext (sigcontext) 256, uc_sigmask 8
//	siginfo   128
//
// followed (above, at a 64-byte aligned address) by the fpstate.
const (
	frameUContext   = 8
	ucFlagsOff      = 0
	ucLinkOff       = 8
	ucStackOff      = 16
	ucMcontextOff   = 40
	sigcontextSize  = 256
	ucSigmaskOff    = ucMcontextOff + sigcontextSize
	ucontextSize    = ucSigmaskOff + 8
	frameSiginfo    = frameUContext + ucontextSize
	SiginfoSize     = 128
	frameSize       = frameSiginfo + SiginfoSize
	redZoneSize     = 128
	scFPStateOffset = 184 // sigcontext.fpstate

	// uc_flags bits.
	ucFPXState        = 0x1
	ucSigcontextSS    = 0x2
	ucStrictRestoreSS = 0x4
)

// Word indexes of struct sigcontext (amd64) fields.
const (
	scR8 = iota
	scR9
	scR10
	scR11
	scR12
	scR13
	scR14
	scR15
	scRdi
	scRsi
	scRbp
	scRbx
	scRdx
	scRax
	scRcx
	scRsp
	scRip
	scEflags
	scSegs // cs, gs, fs, ss as four uint16
	scErr
	scTrapno
	scOldmask
	scCr2
	scFPState
)

// SigcontextErrOffset etc. give where in a ucontext the fault details
// live; the ptrace platform's stub handler reads them.
const (
	UContextErrOffset    = ucMcontextOff + scErr*8
	UContextTrapnoOffset = ucMcontextOff + scTrapno*8
	UContextCr2Offset    = ucMcontextOff + scCr2*8
)

// fpFrameSize is the room the fpstate takes in a frame.
func fpFrameSize() uint64 {
	if hostFP.useXSAVE {
		return uint64(hostFP.size) + fpXStateMagic2Size
	}
	return fxsaveSize
}

// SignalSetup builds an rt_sigframe for delivering the signal in info and
// points the registers at handler. The frame goes below the red zone of
// the current stack, or at the top of altstack when onAltStack is set and
// the thread is not already on it. sigset is the mask to restore on
// return. siginfoFlag (SA_SIGINFO) says whether info is copied out.
func (c *Context64) SignalSetup(ctx context.Context, io usermem.IO, handler, restorer hostarch.Addr, sigset uint64, info []byte, altstack SignalStack, onAltStack bool, siginfoFlag bool) error {
	if len(info) < 4 {
		return fmt.Errorf("arch: siginfo of %d bytes: %w", len(info), unix.EINVAL)
	}
	signo := binary.LittleEndian.Uint32(info)
	c.SyncFP()

	sp := c.Regs.Rsp - redZoneSize
	onStack := altstack.Contains(hostarch.Addr(sp))
	if onAltStack && !onStack {
		sp = uint64(altstack.Top())
	}
	fpAddr := (sp - fpFrameSize()) &^ 63
	frameAddr := ((fpAddr - frameSize) &^ 15) - 8

	var frame [frameSize]byte
	le := binary.LittleEndian
	le.PutUint64(frame[0:], uint64(restorer))
	uc := frame[frameUContext:]
	flags := uint64(ucSigcontextSS | ucStrictRestoreSS)
	if hostFP.useXSAVE {
		flags |= ucFPXState
	}
	le.PutUint64(uc[ucFlagsOff:], flags)
	le.PutUint64(uc[ucLinkOff:], 0)
	ssFlags := altstack.Flags
	if altstack.Contains(hostarch.Addr(frameAddr)) {
		ssFlags |= SignalStackOnStack
	}
	le.PutUint64(uc[ucStackOff:], altstack.Addr)
	le.PutUint32(uc[ucStackOff+8:], ssFlags)
	le.PutUint64(uc[ucStackOff+16:], altstack.Size)
	sc := uc[ucMcontextOff : ucMcontextOff+sigcontextSize]
	r := &c.Regs
	for i, v := range [...]uint64{r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15,
		r.Rdi, r.Rsi, r.Rbp, r.Rbx, r.Rdx, r.Rax, r.Rcx, r.Rsp, r.Rip, r.Eflags} {
		le.PutUint64(sc[i*8:], v)
	}
	le.PutUint16(sc[scSegs*8:], uint16(r.Cs))
	le.PutUint16(sc[scSegs*8+2:], uint16(r.Gs))
	le.PutUint16(sc[scSegs*8+4:], uint16(r.Fs))
	le.PutUint16(sc[scSegs*8+6:], uint16(r.Ss))
	le.PutUint64(sc[scOldmask*8:], sigset)
	le.PutUint64(sc[scFPState*8:], fpAddr)
	le.PutUint64(uc[ucSigmaskOff:], sigset)
	if siginfoFlag {
		copy(frame[frameSiginfo:frameSiginfo+SiginfoSize], info)
	}

	// The fpstate, tagged as Linux does so that sigreturn (ours or a
	// program's own unwinder) knows how much extended state follows.
	fp := make([]byte, fpFrameSize())
	copy(fp, c.FP)
	if hostFP.useXSAVE {
		sw := fp[swReservedOffset:]
		le.PutUint32(sw[0:], FPXStateMagic1)
		le.PutUint32(sw[4:], uint32(hostFP.size)+fpXStateMagic2Size)
		le.PutUint64(sw[8:], hostFP.xfeatures)
		le.PutUint32(sw[16:], uint32(hostFP.size))
		le.PutUint32(fp[hostFP.size:], FPXStateMagic2)
	}

	if _, err := io.CopyOut(ctx, hostarch.Addr(fpAddr), fp, usermem.IOOpts{}); err != nil {
		return fmt.Errorf("arch: writing signal fpstate at %#x: %w", fpAddr, err)
	}
	if _, err := io.CopyOut(ctx, hostarch.Addr(frameAddr), frame[:], usermem.IOOpts{}); err != nil {
		return fmt.Errorf("arch: writing signal frame at %#x: %w", frameAddr, err)
	}

	r.Rip = uint64(handler)
	r.Rsp = frameAddr
	r.Rdi = uint64(signo)
	r.Rsi = frameAddr + frameSiginfo
	r.Rdx = frameAddr + frameUContext
	r.Rax = 0
	r.Cs = UserCS
	r.Ss = UserSS
	r.Eflags &^= EflagsDF | EflagsRF | EflagsTF
	c.FP.Reset()
	return nil
}

// SignalRestore undoes SignalSetup for rt_sigreturn: the handler's return
// popped pretcode, so the frame starts 8 bytes below rsp. It restores the
// registers and FP state and returns the saved signal mask and the
// alternate stack recorded in the frame.
func (c *Context64) SignalRestore(ctx context.Context, io usermem.IO) (uint64, SignalStack, error) {
	c.SyncFP()
	frameAddr := c.Regs.Rsp - 8
	var uc [ucontextSize]byte
	if _, err := io.CopyIn(ctx, hostarch.Addr(frameAddr+frameUContext), uc[:], usermem.IOOpts{}); err != nil {
		return 0, SignalStack{}, fmt.Errorf("arch: reading signal frame at %#x: %w", frameAddr, err)
	}
	le := binary.LittleEndian
	ucFlags := le.Uint64(uc[ucFlagsOff:])
	sc := uc[ucMcontextOff : ucMcontextOff+sigcontextSize]
	w := func(i int) uint64 { return le.Uint64(sc[i*8:]) }

	// Read the FP state before touching the registers so a bad frame
	// leaves the thread as it was.
	fp := NewFPState()
	if fpAddr := w(scFPState); fpAddr != 0 {
		if err := readFrameFP(ctx, io, hostarch.Addr(fpAddr), fp); err != nil {
			return 0, SignalStack{}, err
		}
	}

	r := &c.Regs
	r.R8, r.R9, r.R10, r.R11 = w(scR8), w(scR9), w(scR10), w(scR11)
	r.R12, r.R13, r.R14, r.R15 = w(scR12), w(scR13), w(scR14), w(scR15)
	r.Rdi, r.Rsi, r.Rbp, r.Rbx = w(scRdi), w(scRsi), w(scRbp), w(scRbx)
	r.Rdx, r.Rax, r.Rcx, r.Rsp = w(scRdx), w(scRax), w(scRcx), w(scRsp)
	r.Rip = w(scRip)
	r.Eflags = (r.Eflags &^ eflagsRestorable) | (w(scEflags) & eflagsRestorable)
	r.Cs = UserCS
	r.Ss = UserSS
	_ = ucFlags             // the selectors are always the flat 64-bit ones here
	r.Orig_rax = ^uint64(0) // no syscall restart after sigreturn
	copy(c.FP, fp)

	sigset := le.Uint64(uc[ucSigmaskOff:])
	st := SignalStack{
		Addr:  le.Uint64(uc[ucStackOff:]),
		Flags: le.Uint32(uc[ucStackOff+8:]),
		Size:  le.Uint64(uc[ucStackOff+16:]),
	}
	return sigset, st, nil
}

// readFrameFP reads the fpstate of a signal frame into fp, accepting the
// extended (XSAVE) form only when its magic numbers are intact, as Linux
// does, and falling back to the legacy 512 bytes otherwise.
func readFrameFP(ctx context.Context, io usermem.IO, addr hostarch.Addr, fp FPState) error {
	if addr%16 != 0 {
		return fmt.Errorf("arch: misaligned fpstate %#x: %w", uintptr(addr), unix.EFAULT)
	}
	if _, err := io.CopyIn(ctx, addr, fp[:fxsaveSize], usermem.IOOpts{}); err != nil {
		return fmt.Errorf("arch: reading signal fpstate at %#x: %w", uintptr(addr), err)
	}
	le := binary.LittleEndian
	extended := false
	if hostFP.useXSAVE {
		sw := fp[swReservedOffset:fxsaveSize]
		size := le.Uint32(sw[16:])
		if le.Uint32(sw[0:]) == FPXStateMagic1 && size == uint32(hostFP.size) &&
			le.Uint32(sw[4:]) == size+fpXStateMagic2Size {
			var magic2 [4]byte
			if _, err := io.CopyIn(ctx, addr+hostarch.Addr(size), magic2[:], usermem.IOOpts{}); err == nil &&
				le.Uint32(magic2[:]) == FPXStateMagic2 {
				extended = true
			}
		}
		if extended {
			if _, err := io.CopyIn(ctx, addr+fxsaveSize, fp[fxsaveSize:], usermem.IOOpts{}); err != nil {
				return fmt.Errorf("arch: reading signal xstate at %#x: %w", uintptr(addr), err)
			}
		} else {
			clear(fp[fxsaveSize:])
			le.PutUint64(fp[xsaveHeaderOff:], xfeatureX87|xfeatureSSE)
		}
	}
	fp.sanitize()
	return nil
}
