package bpf

import (
	"fmt"
	"strings"
)

var aluNames = map[uint16]string{
	Add: "add", Sub: "sub", Mul: "mul", Div: "div", Mod: "mod", And: "and",
	Or: "or", Xor: "xor", LeftShift: "lsh", RightShift: "rsh",
}

var jumpNames = map[uint16]string{
	JumpEqual: "jeq", JumpGreater: "jgt", JumpGreaterEqual: "jge", JumpSet: "jset",
}

var sizeSuffix = map[uint16]string{SizeWord: "", SizeHalf: "h", SizeByte: "b"}

// mnemonic renders ins without jump targets resolved.
func mnemonic(ins Instruction) string {
	k := ins.K
	switch ins.OpCode {
	case ClassLoad | SizeWord | ModeAbsolute, ClassLoad | SizeHalf | ModeAbsolute, ClassLoad | SizeByte | ModeAbsolute:
		return fmt.Sprintf("ld%s [%d]", sizeSuffix[ins.OpCode&sizeMask], k)
	case ClassLoad | SizeWord | ModeIndirect, ClassLoad | SizeHalf | ModeIndirect, ClassLoad | SizeByte | ModeIndirect:
		return fmt.Sprintf("ld%s [x+%d]", sizeSuffix[ins.OpCode&sizeMask], k)
	case ClassLoad | SizeWord | ModeLength:
		return "ld #len"
	case ClassLoad | ModeImmediate:
		return fmt.Sprintf("ld #%#x", k)
	case ClassLoad | ModeMemory:
		return fmt.Sprintf("ld M[%d]", k)
	case ClassLoadX | SizeWord | ModeLength:
		return "ldx #len"
	case ClassLoadX | SizeByte | ModeMSH:
		return fmt.Sprintf("ldx 4*([%d]&0xf)", k)
	case ClassLoadX | ModeImmediate:
		return fmt.Sprintf("ldx #%#x", k)
	case ClassLoadX | ModeMemory:
		return fmt.Sprintf("ldx M[%d]", k)
	case ClassStore:
		return fmt.Sprintf("st M[%d]", k)
	case ClassStoreX:
		return fmt.Sprintf("stx M[%d]", k)
	case ClassALU | Neg:
		return "neg"
	case ClassMisc | MiscTAX:
		return "tax"
	case ClassMisc | MiscTXA:
		return "txa"
	case ClassReturn | ReturnK:
		return fmt.Sprintf("ret #%#x", k)
	case ClassReturn | ReturnA:
		return "ret a"
	case ClassJump | JumpAlways:
		return fmt.Sprintf("ja +%d", k)
	}
	switch ins.OpCode & classMask {
	case ClassALU:
		if name, ok := aluNames[ins.OpCode&opMask]; ok && ins.OpCode&^(opMask|sourceMask|classMask) == 0 {
			if ins.OpCode&sourceMask == SourceX {
				return name + " x"
			}
			return fmt.Sprintf("%s #%#x", name, k)
		}
	case ClassJump:
		if name, ok := jumpNames[ins.OpCode&opMask]; ok && ins.OpCode&^(opMask|sourceMask|classMask) == 0 {
			if ins.OpCode&sourceMask == SourceX {
				return name + " x"
			}
			return fmt.Sprintf("%s #%#x", name, k)
		}
	}
	return fmt.Sprintf("unknown opcode %#04x k=%#x", ins.OpCode, k)
}

// Disassemble renders insns one instruction per line, with jump targets as
// absolute instruction numbers, for debugging and error messages.
func Disassemble(insns []Instruction) string {
	var sb strings.Builder
	for pc, ins := range insns {
		fmt.Fprintf(&sb, "%4d: %s", pc, mnemonic(ins))
		switch {
		case ins.OpCode == ClassJump|JumpAlways:
			fmt.Fprintf(&sb, "\t-> %d", pc+1+int(ins.K))
		case ins.IsConditionalJump():
			fmt.Fprintf(&sb, "\t-> %d else %d", pc+1+int(ins.JumpIfTrue), pc+1+int(ins.JumpIfFalse))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
