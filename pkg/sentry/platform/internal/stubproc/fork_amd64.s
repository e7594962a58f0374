#include "textflag.h"

// func RawFork(entry, arg0, arg1 uintptr) (pid uintptr, errno uintptr)
//
// The child must not touch the stack, which its copy of the Go runtime
// owns: the arguments travel through R12 and R13, which clone preserves,
// and are copied to DI and SI before the jump to entry.
TEXT ·RawFork(SB),NOSPLIT,$0-40
	MOVQ entry+0(FP), BX
	MOVQ arg0+8(FP), R12
	MOVQ arg1+16(FP), R13
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
	MOVQ $0, pid+24(FP)
	MOVQ AX, errno+32(FP)
	RET
ok:
	MOVQ AX, pid+24(FP)
	MOVQ $0, errno+32(FP)
	RET
child:
	MOVQ R12, DI
	MOVQ R13, SI
	JMP BX

// func CurrentCPU() uint32
TEXT ·CurrentCPU(SB),NOSPLIT,$0-4
	BYTE $0x0f; BYTE $0x01; BYTE $0xf9 // RDTSCP
	ANDL $0xfff, CX
	MOVL CX, ret+0(FP)
	RET
