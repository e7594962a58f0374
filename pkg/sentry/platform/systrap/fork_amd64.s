#include "textflag.h"

// func rawFork(entry, params uintptr) (pid uintptr, errno uintptr)
//
// rawFork forks the calling thread into a new single-threaded process that
// shares nothing with the Sentry. The child never returns to Go: it jumps
// to entry, the stub's setup code, with params in DI; from there on it runs
// only stub code and needs no stack of the Sentry's.
TEXT ·rawFork(SB),NOSPLIT,$0-32
	MOVQ entry+0(FP), BX
	MOVQ params+8(FP), R15
	MOVQ $56, AX  // SYS_clone
	MOVQ $17, DI  // SIGCHLD
	XORQ SI, SI
	XORQ DX, DX
	XORQ R10, R10
	XORQ R8, R8
	SYSCALL
	CMPQ AX, $0
	JEQ child
	CMPQ AX, $0xfffffffffffff001
	JLS ok
	NEGQ AX
	MOVQ $0, pid+16(FP)
	MOVQ AX, errno+24(FP)
	RET
ok:
	MOVQ AX, pid+16(FP)
	MOVQ $0, errno+24(FP)
	RET
child:
	MOVQ R15, DI
	JMP BX

// func currentCPU() uint32
//
// currentCPU returns the CPU the caller runs on, from the TSC_AUX value
// Linux loads with the CPU number (RDTSCP), without a syscall.
TEXT ·currentCPU(SB),NOSPLIT,$0-4
	BYTE $0x0f; BYTE $0x01; BYTE $0xf9 // RDTSCP
	ANDL $0xfff, CX
	MOVL CX, ret+0(FP)
	RET
