package bpf

import (
	"errors"
	"fmt"
)

// Kind says which kernel checker a program must satisfy and what input the
// interpreter gives it.
type Kind int

const (
	// SocketFilter programs read packet bytes (SO_ATTACH_FILTER).
	SocketFilter Kind = iota
	// SeccompFilter programs read a struct seccomp_data (seccomp(2)).
	SeccompFilter
)

func (k Kind) String() string {
	switch k {
	case SocketFilter:
		return "socket filter"
	case SeccompFilter:
		return "seccomp filter"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// SeccompDataSize is sizeof(struct seccomp_data).
const SeccompDataSize = 64

// ancillaryOffset is SKF_AD_OFF (-0x1000): absolute loads at or above it ask
// the kernel for packet metadata, which this package does not model.
const ancillaryOffset = 0xfffff000

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid BPF program")

// Program is a validated classic BPF program. The zero value is not valid.
type Program struct {
	insns []Instruction
	code  []decoded // insns prepared for the interpreter
	kind  Kind
}

// Instructions returns a copy of the program's instructions.
func (p Program) Instructions() []Instruction {
	return append([]Instruction(nil), p.insns...)
}

// Len returns the number of instructions.
func (p Program) Len() int { return len(p.insns) }

// Kind returns the checker the program was validated against.
func (p Program) Kind() Kind { return p.kind }

// opcodeAllowed lists every opcode the kernel's classic checker accepts; any
// other 16-bit value, including ones with stray bits set, is rejected.
var opcodeAllowed = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, op := range []uint16{Add, Sub, Mul, Div, Mod, And, Or, Xor, LeftShift, RightShift} {
		m[ClassALU|op|SourceK] = true
		m[ClassALU|op|SourceX] = true
	}
	m[ClassALU|Neg] = true
	for _, c := range []uint16{
		ClassLoad | SizeWord | ModeAbsolute, ClassLoad | SizeHalf | ModeAbsolute, ClassLoad | SizeByte | ModeAbsolute,
		ClassLoad | SizeWord | ModeLength,
		ClassLoad | SizeWord | ModeIndirect, ClassLoad | SizeHalf | ModeIndirect, ClassLoad | SizeByte | ModeIndirect,
		ClassLoad | ModeImmediate, ClassLoad | ModeMemory,
		ClassLoadX | SizeWord | ModeLength, ClassLoadX | SizeByte | ModeMSH,
		ClassLoadX | ModeImmediate, ClassLoadX | ModeMemory,
		ClassStore, ClassStoreX,
		ClassMisc | MiscTAX, ClassMisc | MiscTXA,
		ClassReturn | ReturnK, ClassReturn | ReturnA,
		ClassJump | JumpAlways,
	} {
		m[c] = true
	}
	for _, op := range []uint16{JumpEqual, JumpGreater, JumpGreaterEqual, JumpSet} {
		m[ClassJump|op|SourceK] = true
		m[ClassJump|op|SourceX] = true
	}
	return m
}()

// seccompAllowed reports whether the seccomp checker accepts ins (after the
// classic checks passed). Seccomp input is a fixed 64-byte struct read only
// in whole, aligned words.
func seccompAllowed(ins Instruction) error {
	switch ins.OpCode {
	case ClassLoad | SizeWord | ModeAbsolute:
		if ins.K >= SeccompDataSize || ins.K&3 != 0 {
			return fmt.Errorf("seccomp load at offset %#x: must be 4-byte aligned and below %d", ins.K, SeccompDataSize)
		}
		return nil
	case ClassLoad | SizeWord | ModeLength, ClassLoadX | SizeWord | ModeLength,
		ClassLoad | ModeImmediate, ClassLoadX | ModeImmediate,
		ClassLoad | ModeMemory, ClassLoadX | ModeMemory,
		ClassStore, ClassStoreX, ClassMisc | MiscTAX, ClassMisc | MiscTXA,
		ClassReturn | ReturnK, ClassReturn | ReturnA:
		return nil
	}
	switch ins.OpCode & classMask {
	case ClassALU:
		// The seccomp checker predates BPF_MOD and never added it.
		if ins.OpCode&opMask != Mod {
			return nil
		}
	case ClassJump:
		return nil
	}
	return fmt.Errorf("opcode %#04x (%s) is not allowed in seccomp filters", ins.OpCode, mnemonic(ins))
}

// Validate checks insns against the kernel's rules for kind and returns the
// program ready to run. The checks are those of the kernel's classic BPF
// checker (and, for seccomp, its seccomp checker): 1 to 4096 instructions;
// only known opcodes; jumps forward and inside the program; no division or
// modulo by a constant zero; constant shifts below 32; scratch memory indices
// below 16 and M[k] read only after it was written on every path; the last
// instruction a return.
func Validate(insns []Instruction, kind Kind) (Program, error) {
	if err := validate(insns, kind); err != nil {
		return Program{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return Program{insns: append([]Instruction(nil), insns...), code: decode(insns), kind: kind}, nil
}

func validate(insns []Instruction, kind Kind) error {
	n := len(insns)
	if n == 0 {
		return errors.New("empty program")
	}
	if n > MaxInstructions {
		return fmt.Errorf("%d instructions, more than the limit of %d", n, MaxInstructions)
	}
	if kind != SocketFilter && kind != SeccompFilter {
		return fmt.Errorf("unknown program kind %v", kind)
	}
	for pc, ins := range insns {
		if !opcodeAllowed[ins.OpCode] {
			return fmt.Errorf("instruction %d: unknown opcode %#04x", pc, ins.OpCode)
		}
		switch ins.OpCode {
		case ClassALU | Div | SourceK, ClassALU | Mod | SourceK:
			if ins.K == 0 {
				return fmt.Errorf("instruction %d: division by constant zero", pc)
			}
		case ClassALU | LeftShift | SourceK, ClassALU | RightShift | SourceK:
			if ins.K >= 32 {
				return fmt.Errorf("instruction %d: constant shift by %d (must be below 32)", pc, ins.K)
			}
		case ClassLoad | ModeMemory, ClassLoadX | ModeMemory, ClassStore, ClassStoreX:
			if ins.K >= ScratchWords {
				return fmt.Errorf("instruction %d: scratch memory index %d out of range", pc, ins.K)
			}
		case ClassJump | JumpAlways:
			if uint64(ins.K) >= uint64(n-pc-1) {
				return fmt.Errorf("instruction %d: jump by %d leaves the program", pc, ins.K)
			}
		case ClassLoad | SizeWord | ModeAbsolute, ClassLoad | SizeHalf | ModeAbsolute, ClassLoad | SizeByte | ModeAbsolute:
			if kind == SocketFilter && ins.K >= ancillaryOffset {
				return fmt.Errorf("instruction %d: ancillary load at %#x is not supported", pc, ins.K)
			}
		}
		if ins.IsConditionalJump() {
			if pc+int(ins.JumpIfTrue)+1 >= n || pc+int(ins.JumpIfFalse)+1 >= n {
				return fmt.Errorf("instruction %d: jump (%d, %d) leaves the program", pc, ins.JumpIfTrue, ins.JumpIfFalse)
			}
		}
		if kind == SeccompFilter {
			if err := seccompAllowed(ins); err != nil {
				return fmt.Errorf("instruction %d: %w", pc, err)
			}
		}
	}
	if !insns[n-1].IsReturn() {
		return errors.New("the last instruction is not a return")
	}
	return checkScratchMemory(insns)
}

// checkScratchMemory rejects reads of M[k] that some path reaches before any
// write of M[k]. Because every jump goes forward, one pass in program order
// sees every predecessor of an instruction before the instruction itself:
// written[pc] is the intersection, over all edges into pc, of the words known
// written along that edge. Like the kernel, it treats the instruction after
// a return as reached by fall-through, so code after a return that no jump
// reaches must not read unwritten words either.
func checkScratchMemory(insns []Instruction) error {
	const all = uint16(1<<ScratchWords - 1)
	written := make([]uint16, len(insns))
	for i := range written {
		written[i] = all
	}
	known := uint16(0) // words written on every path reaching the current pc by fall-through
	for pc, ins := range insns {
		known &= written[pc]
		switch ins.OpCode {
		case ClassStore, ClassStoreX:
			known |= 1 << ins.K
		case ClassLoad | ModeMemory, ClassLoadX | ModeMemory:
			if known&(1<<ins.K) == 0 {
				return fmt.Errorf("instruction %d: M[%d] may be read before it is written", pc, ins.K)
			}
		case ClassJump | JumpAlways:
			written[pc+1+int(ins.K)] &= known
			known = all
		default:
			if ins.IsConditionalJump() {
				written[pc+1+int(ins.JumpIfTrue)] &= known
				written[pc+1+int(ins.JumpIfFalse)] &= known
				known = all
			}
		}
	}
	return nil
}
