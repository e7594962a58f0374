#include "textflag.h"

// func rawFork(entry, memfd, ppid uintptr) (pid uintptr, errno uintptr)
//
// rawFork forks the calling thread into a new single-threaded process
// (clone with only SIGCHLD: nothing shared). The child never returns to
// Go: it jumps straight to entry, the stub's setup code, with the memory
// file descriptor in R12 and the expected parent pid in R13. Everything
// the child runs from here on is in the stub page and needs no stack.
TEXT ·rawFork(SB),NOSPLIT,$0-40
	MOVQ entry+0(FP), BX
	MOVQ memfd+8(FP), R12
	MOVQ ppid+16(FP), R13
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
	JMP BX
