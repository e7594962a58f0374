// Package bpf owns classic BPF (cBPF) programs as the Linux kernel accepts
// them for socket filters and seccomp filters: the instruction encoding,
// an assembler with labels, a validator that applies the kernel's rules, a
// disassembler, and an allocation-free interpreter with the kernel's exact
// semantics.
package bpf

import (
	"encoding/binary"
	"fmt"
)

// Instruction is one classic BPF instruction, laid out like the kernel's
// struct sock_filter.
type Instruction struct {
	OpCode      uint16
	JumpIfTrue  uint8
	JumpIfFalse uint8
	K           uint32
}

// InstructionSize is the encoded size of one Instruction in bytes.
const InstructionSize = 8

// MaxInstructions is the kernel's BPF_MAXINSNS: the longest program it loads.
const MaxInstructions = 4096

// ScratchWords is the kernel's BPF_MEMWORDS: the size of the M[] scratch memory.
const ScratchWords = 16

// Instruction classes (the low three bits of the opcode).
const (
	ClassLoad     = 0x00 // BPF_LD: load into A
	ClassLoadX    = 0x01 // BPF_LDX: load into X
	ClassStore    = 0x02 // BPF_ST: store A into M[k]
	ClassStoreX   = 0x03 // BPF_STX: store X into M[k]
	ClassALU      = 0x04 // BPF_ALU
	ClassJump     = 0x05 // BPF_JMP
	ClassReturn   = 0x06 // BPF_RET
	ClassMisc     = 0x07 // BPF_MISC
	classMask     = 0x07
	sizeMask      = 0x18
	modeMask      = 0xe0
	opMask        = 0xf0
	sourceMask    = 0x08
	retSourceMask = 0x18
)

// Load sizes.
const (
	SizeWord = 0x00 // BPF_W: 32 bits
	SizeHalf = 0x08 // BPF_H: 16 bits
	SizeByte = 0x10 // BPF_B: 8 bits
)

// Load addressing modes.
const (
	ModeImmediate = 0x00 // BPF_IMM: the constant k
	ModeAbsolute  = 0x20 // BPF_ABS: input[k]
	ModeIndirect  = 0x40 // BPF_IND: input[X+k]
	ModeMemory    = 0x60 // BPF_MEM: M[k]
	ModeLength    = 0x80 // BPF_LEN: the input length
	ModeMSH       = 0xa0 // BPF_MSH: 4*(input[k]&0xf), the IPv4 header length idiom
)

// ALU operations.
const (
	Add        = 0x00
	Sub        = 0x10
	Mul        = 0x20
	Div        = 0x30
	Or         = 0x40
	And        = 0x50
	LeftShift  = 0x60
	RightShift = 0x70
	Neg        = 0x80
	Mod        = 0x90
	Xor        = 0xa0
)

// Jump conditions.
const (
	JumpAlways       = 0x00 // BPF_JA: pc += k
	JumpEqual        = 0x10 // BPF_JEQ
	JumpGreater      = 0x20 // BPF_JGT (unsigned)
	JumpGreaterEqual = 0x30 // BPF_JGE (unsigned)
	JumpSet          = 0x40 // BPF_JSET: A & operand != 0
)

// Operand sources for ALU and jump instructions.
const (
	SourceK = 0x00 // the constant k
	SourceX = 0x08 // the X register
)

// Return value sources.
const (
	ReturnK = 0x00
	ReturnA = 0x10
)

// Misc operations.
const (
	MiscTAX = 0x00 // X = A
	MiscTXA = 0x80 // A = X
)

// Stmt builds a non-jump instruction.
func Stmt(opCode uint16, k uint32) Instruction {
	return Instruction{OpCode: opCode, K: k}
}

// Jump builds a conditional jump instruction with relative offsets.
func Jump(opCode uint16, k uint32, jumpIfTrue, jumpIfFalse uint8) Instruction {
	return Instruction{OpCode: opCode, JumpIfTrue: jumpIfTrue, JumpIfFalse: jumpIfFalse, K: k}
}

// IsConditionalJump reports whether ins is a jump with two targets.
func (ins Instruction) IsConditionalJump() bool {
	return ins.OpCode&classMask == ClassJump && ins.OpCode&opMask != JumpAlways
}

// IsReturn reports whether ins ends the program.
func (ins Instruction) IsReturn() bool {
	return ins.OpCode&classMask == ClassReturn
}

// Encode returns the wire (host, little-endian) form of insns, as passed to
// the kernel in struct sock_fprog.
func Encode(insns []Instruction) []byte {
	b := make([]byte, 0, len(insns)*InstructionSize)
	for _, ins := range insns {
		b = binary.LittleEndian.AppendUint16(b, ins.OpCode)
		b = append(b, ins.JumpIfTrue, ins.JumpIfFalse)
		b = binary.LittleEndian.AppendUint32(b, ins.K)
	}
	return b
}

// Decode parses the wire form produced by Encode. It checks only framing;
// use Validate to check the program itself.
func Decode(b []byte) ([]Instruction, error) {
	if len(b)%InstructionSize != 0 {
		return nil, fmt.Errorf("bpf: program is %d bytes, not a multiple of %d", len(b), InstructionSize)
	}
	n := len(b) / InstructionSize
	if n > MaxInstructions {
		return nil, fmt.Errorf("bpf: program has %d instructions, more than the limit of %d", n, MaxInstructions)
	}
	insns := make([]Instruction, n)
	for i := range insns {
		w := b[i*InstructionSize:]
		insns[i] = Instruction{
			OpCode:      binary.LittleEndian.Uint16(w),
			JumpIfTrue:  w[2],
			JumpIfFalse: w[3],
			K:           binary.LittleEndian.Uint32(w[4:]),
		}
	}
	return insns, nil
}
