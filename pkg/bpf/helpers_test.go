package bpf

import "math/rand/v2"

// Shorthands for building test programs.
func ldAbs(size uint16, k uint32) Instruction { return Stmt(ClassLoad|size|ModeAbsolute, k) }
func ldInd(size uint16, k uint32) Instruction { return Stmt(ClassLoad|size|ModeIndirect, k) }
func ldImm(k uint32) Instruction              { return Stmt(ClassLoad|ModeImmediate, k) }
func ldxImm(k uint32) Instruction             { return Stmt(ClassLoadX|ModeImmediate, k) }
func aluK(op uint16, k uint32) Instruction    { return Stmt(ClassALU|op|SourceK, k) }
func aluX(op uint16) Instruction              { return Stmt(ClassALU|op|SourceX, 0) }
func retK(k uint32) Instruction               { return Stmt(ClassReturn|ReturnK, k) }
func retA() Instruction                       { return Stmt(ClassReturn|ReturnA, 0) }
func jmpK(op uint16, k uint32, jt, jf uint8) Instruction {
	return Jump(ClassJump|op|SourceK, k, jt, jf)
}

var interestingValues = []uint32{0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 0xff, 0x100, 0x7fff, 0xffff,
	0x10000, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff}

func interesting(r *rand.Rand) uint32 {
	if r.IntN(3) == 0 {
		return r.Uint32()
	}
	return interestingValues[r.IntN(len(interestingValues))]
}

// randomProgram generates a program of n instructions for kind that usually
// passes validation; its returns are all "ret a" (the seccomp differential
// test rewrites them). maxOffset bounds packet load offsets.
func randomProgram(r *rand.Rand, kind Kind, n int, maxOffset uint32) []Instruction {
	insns := make([]Instruction, n)
	var written uint16 // scratch words stored so far, to make most reads valid
	for pc := 0; pc < n-1; pc++ {
		remaining := n - pc - 2 // the largest jump offset that stays inside
		var ins Instruction
		switch c := r.IntN(20); {
		case c < 3:
			if kind == SeccompFilter {
				// Skip the instruction pointer (offsets 8, 12): the child
				// process cannot predict it.
				offsets := []uint32{0, 4, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60}
				ins = ldAbs(SizeWord, offsets[r.IntN(len(offsets))])
			} else {
				ins = ldAbs([]uint16{SizeWord, SizeHalf, SizeByte}[r.IntN(3)], uint32(r.IntN(int(maxOffset))))
			}
		case c < 4:
			if kind == SeccompFilter {
				ins = Stmt(ClassLoad|SizeWord|ModeLength, 0)
			} else {
				ins = ldInd([]uint16{SizeWord, SizeHalf, SizeByte}[r.IntN(3)], uint32(r.IntN(int(maxOffset))))
			}
		case c < 5:
			if kind == SeccompFilter {
				ins = Stmt(ClassLoadX|SizeWord|ModeLength, 0)
			} else {
				ins = Stmt(ClassLoadX|SizeByte|ModeMSH, uint32(r.IntN(int(maxOffset))))
			}
		case c < 7:
			ins = ldImm(interesting(r))
		case c < 8:
			ins = ldxImm(interesting(r) & 0x3f) // small X keeps indirect loads in range
		case c < 9:
			k := uint32(r.IntN(ScratchWords))
			if written&(1<<k) != 0 || r.IntN(8) == 0 {
				ins = Stmt([]uint16{ClassLoad, ClassLoadX}[r.IntN(2)]|ModeMemory, k)
			} else {
				ins = Stmt([]uint16{ClassStore, ClassStoreX}[r.IntN(2)], k)
				written |= 1 << k
			}
		case c < 10:
			k := uint32(r.IntN(ScratchWords))
			ins = Stmt([]uint16{ClassStore, ClassStoreX}[r.IntN(2)], k)
			written |= 1 << k
		case c < 14:
			ops := []uint16{Add, Sub, Mul, Div, Mod, And, Or, Xor, LeftShift, RightShift}
			op := ops[r.IntN(len(ops))]
			if r.IntN(2) == 0 {
				ins = aluX(op)
			} else {
				k := interesting(r)
				if (op == Div || op == Mod) && k == 0 && r.IntN(4) != 0 {
					k = 3
				}
				if (op == LeftShift || op == RightShift) && r.IntN(4) != 0 {
					k &= 31
				}
				ins = aluK(op, k)
			}
		case c < 15:
			ins = []Instruction{Stmt(ClassALU|Neg, 0), Stmt(ClassMisc|MiscTAX, 0), Stmt(ClassMisc|MiscTXA, 0)}[r.IntN(3)]
		case c < 19 && remaining >= 0:
			op := []uint16{JumpEqual, JumpGreater, JumpGreaterEqual, JumpSet}[r.IntN(4)]
			limit := min(remaining, 255)
			jt, jf := uint8(r.IntN(min(limit, 6)+1)), uint8(r.IntN(limit+1))
			if r.IntN(2) == 0 {
				ins = Jump(ClassJump|op|SourceX, 0, jt, jf)
			} else {
				ins = Jump(ClassJump|op|SourceK, interesting(r), jt, jf)
			}
			written = 0 // a jump target may be reached without these stores
		case remaining >= 0 && r.IntN(2) == 0:
			ins = Stmt(ClassJump|JumpAlways, uint32(r.IntN(min(remaining, 4)+1)))
			written = 0
		default:
			ins = retA()
			written = 0
		}
		insns[pc] = ins
	}
	insns[n-1] = retA()
	return insns
}

// mutate flips random fields of a copy of insns, for validator tests.
func mutate(r *rand.Rand, insns []Instruction) []Instruction {
	out := append([]Instruction(nil), insns...)
	for range 1 + r.IntN(3) {
		i := r.IntN(len(out))
		switch r.IntN(5) {
		case 0:
			out[i].OpCode = uint16(r.IntN(0x100))
		case 1:
			out[i].OpCode ^= 1 << r.IntN(16)
		case 2:
			out[i].JumpIfTrue = uint8(r.Uint32())
		case 3:
			out[i].JumpIfFalse = uint8(r.Uint32())
		case 4:
			out[i].K = interesting(r)
		}
	}
	return out
}
