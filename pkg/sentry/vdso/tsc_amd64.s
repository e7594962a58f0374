#include "textflag.h"

// func rdtsc() uint64
//
// The fence orders the read after earlier loads, as vdso.c's read_tsc.
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	LFENCE
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+0(FP)
	RET

// func callC(fn, a0, a1, a2 uintptr) uintptr
//
// callC calls the C function at fn with the System V calling convention
// on this goroutine's stack (which the frame size reserves): the tests
// run the vDSO's own code with it.
TEXT ·callC(SB),0,$1024-40
	MOVQ	fn+0(FP), AX
	MOVQ	a0+8(FP), DI
	MOVQ	a1+16(FP), SI
	MOVQ	a2+24(FP), DX
	// The C code's stack is the top of this frame, 16-byte aligned;
	// BX is callee-saved in the System V ABI.
	MOVQ	SP, BX
	ADDQ	$1008, SP
	ANDQ	$~15, SP
	CALL	AX
	MOVQ	BX, SP
	MOVQ	AX, ret+32(FP)
	RET
