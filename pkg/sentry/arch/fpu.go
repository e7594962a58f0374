package arch

import (
	"encoding/binary"
	"unsafe"
)

// FPState is a 64-byte aligned XSAVE area in standard (uncompacted) format,
// or a 512-byte FXSAVE area when the host has no XSAVE.
type FPState []byte

// Offsets into the legacy (FXSAVE) region and the XSAVE header.
const (
	fxsaveSize       = 512
	fcwOffset        = 0
	mxcsrOffset      = 24
	mxcsrMaskOffset  = 28
	swReservedOffset = 464 // struct _fpx_sw_bytes in signal frames
	xsaveHeaderOff   = 512
	xsaveHeaderSize  = 64

	defaultFCW   = 0x37f
	defaultMXCSR = 0x1f80

	// FPXStateMagic1 marks an fpstate in a signal frame as extended
	// (XSAVE) and FPXStateMagic2 follows the XSAVE area there.
	FPXStateMagic1     = 0x46505853
	FPXStateMagic2     = 0x46505845
	fpXStateMagic2Size = 4

	xfeatureX87 = 1 << 0
	xfeatureSSE = 1 << 1
)

// hostFP describes the host's FP state format; fixed at init.
var hostFP = probeFP()

type fpInfo struct {
	useXSAVE  bool
	size      int    // bytes of the XSAVE/FXSAVE area
	xfeatures uint64 // XCR0: the state components the host enabled
	mxcsrMask uint32
}

func probeFP() fpInfo {
	_, _, ecx, _ := cpuid(1, 0)
	const xsaveBit, osxsaveBit = 1 << 26, 1 << 27
	if ecx&xsaveBit == 0 || ecx&osxsaveBit == 0 {
		return fpInfo{size: fxsaveSize, mxcsrMask: 0xffbf}
	}
	lo, hi := xgetbv0()
	_, ebx, _, _ := cpuid(0xd, 0)
	size := int(ebx)
	if size < fxsaveSize+xsaveHeaderSize {
		size = fxsaveSize + xsaveHeaderSize
	}
	return fpInfo{useXSAVE: true, size: size, xfeatures: uint64(hi)<<32 | uint64(lo), mxcsrMask: 0xffff}
}

// FPStateSize returns the size of an FPState on this host.
func FPStateSize() int { return hostFP.size }

// UsesXSAVE reports whether FPState is in XSAVE format (else FXSAVE).
func UsesXSAVE() bool { return hostFP.useXSAVE }

// XFeatures returns the host's enabled XSAVE state components (XCR0).
func XFeatures() uint64 { return hostFP.xfeatures }

// alignedFP returns a zeroed 64-byte aligned buffer of n bytes.
func alignedFP(n int) FPState {
	buf := make([]byte, n+63)
	off := int((64 - uintptr(unsafe.Pointer(&buf[0]))%64) % 64)
	return FPState(buf[off : off+n : off+n])
}

// NewFPState returns the FP state of a new process: x87 control word
// 0x37f, MXCSR 0x1f80 and everything else in its initial state.
func NewFPState() FPState {
	f := alignedFP(hostFP.size)
	f.Reset()
	return f
}

// Reset puts f back into the state of a new process (also what a signal
// handler starts with).
func (f FPState) Reset() {
	clear(f)
	binary.LittleEndian.PutUint16(f[fcwOffset:], defaultFCW)
	binary.LittleEndian.PutUint32(f[mxcsrOffset:], defaultMXCSR)
	binary.LittleEndian.PutUint32(f[mxcsrMaskOffset:], hostFP.mxcsrMask)
	if hostFP.useXSAVE && len(f) >= xsaveHeaderOff+xsaveHeaderSize {
		// x87 and SSE are marked present so that FCW and MXCSR above are used.
		binary.LittleEndian.PutUint64(f[xsaveHeaderOff:], xfeatureX87|xfeatureSSE)
	}
}

// Fork returns an aligned copy of f.
func (f FPState) Fork() FPState {
	n := alignedFP(len(f))
	copy(n, f)
	return n
}

// MXCSR returns the SSE control/status register saved in f.
func (f FPState) MXCSR() uint32 { return binary.LittleEndian.Uint32(f[mxcsrOffset:]) }

// FCW returns the x87 control word saved in f.
func (f FPState) FCW() uint16 { return binary.LittleEndian.Uint16(f[fcwOffset:]) }

// sanitize makes state that came from the application acceptable to the
// host's XRSTOR: reserved MXCSR bits and reserved header fields cleared,
// and only enabled features claimed.
func (f FPState) sanitize() {
	m := binary.LittleEndian.Uint32(f[mxcsrOffset:])
	binary.LittleEndian.PutUint32(f[mxcsrOffset:], m&hostFP.mxcsrMask)
	binary.LittleEndian.PutUint32(f[mxcsrMaskOffset:], hostFP.mxcsrMask)
	clear(f[swReservedOffset:fxsaveSize])
	if hostFP.useXSAVE && len(f) >= xsaveHeaderOff+xsaveHeaderSize {
		bv := binary.LittleEndian.Uint64(f[xsaveHeaderOff:])
		binary.LittleEndian.PutUint64(f[xsaveHeaderOff:], bv&hostFP.xfeatures)
		clear(f[xsaveHeaderOff+8 : xsaveHeaderOff+xsaveHeaderSize]) // XCOMP_BV and reserved
	}
}
