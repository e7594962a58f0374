package bpf

import "encoding/binary"

// SeccompData is the kernel's struct seccomp_data, the input of seccomp
// filters.
type SeccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// input abstracts the two kinds of program input. A failed load ends the
// program with return value 0, as in the kernel.
type input interface {
	load(size uint16, offset uint32) (uint32, bool)
	length() uint32
}

// seccompInput serves word loads from a SeccompData in host byte order; the
// seccomp checker guarantees no other load reaches it.
type seccompInput struct{ d *SeccompData }

func (in seccompInput) load(size uint16, offset uint32) (uint32, bool) {
	if size != SizeWord || offset&3 != 0 || offset >= SeccompDataSize {
		return 0, false
	}
	d := in.d
	switch {
	case offset == 0:
		return uint32(d.Nr), true
	case offset == 4:
		return d.Arch, true
	case offset == 8:
		return uint32(d.InstructionPointer), true
	case offset == 12:
		return uint32(d.InstructionPointer >> 32), true
	}
	arg := d.Args[(offset-16)/8]
	if offset&4 != 0 {
		return uint32(arg >> 32), true
	}
	return uint32(arg), true
}

func (in seccompInput) length() uint32 { return SeccompDataSize }

// packetInput serves big-endian (network order) loads from packet bytes.
type packetInput struct{ b []byte }

func (in packetInput) load(size uint16, offset uint32) (uint32, bool) {
	// The kernel treats the offset as a signed int; negative offsets name
	// link-layer and network-header areas we do not model, and fail here.
	if int32(offset) < 0 {
		return 0, false
	}
	end := uint64(offset)
	switch size {
	case SizeWord:
		end += 4
	case SizeHalf:
		end += 2
	default:
		end++
	}
	if end > uint64(len(in.b)) {
		return 0, false
	}
	switch size {
	case SizeWord:
		return binary.BigEndian.Uint32(in.b[offset:]), true
	case SizeHalf:
		return uint32(binary.BigEndian.Uint16(in.b[offset:])), true
	}
	return uint32(in.b[offset]), true
}

func (in packetInput) length() uint32 { return uint32(len(in.b)) }

// RunSeccomp runs the program on d and returns its return value (a
// SECCOMP_RET_* action and data). Loads other than aligned words inside the
// 64-byte struct end the program with 0, but a program validated as a
// SeccompFilter never makes one.
func (p Program) RunSeccomp(d *SeccompData) uint32 {
	ret, _ := run(p.code, seccompInput{d})
	return ret
}

// RunSeccompCounting is RunSeccomp that also returns how many instructions
// were executed, for measuring compiled filters.
func (p Program) RunSeccompCounting(d *SeccompData) (ret uint32, executed int) {
	return run(p.code, seccompInput{d})
}

// RunPacket runs the program on a packet and returns its return value: the
// number of bytes the kernel would keep, 0 meaning drop. A load outside the
// packet ends the program with 0.
func (p Program) RunPacket(packet []byte) uint32 {
	ret, _ := run(p.code, packetInput{packet})
	return ret
}

// op is an instruction's operation renumbered densely, so that the
// interpreter's switch compiles to a jump table.
type op uint8

const (
	opInvalid op = iota
	opLoadAbs
	opLoadInd
	opLoadLen
	opLoadImm
	opLoadMem
	opLoadXLen
	opLoadXMSH
	opLoadXImm
	opLoadXMem
	opStore
	opStoreX
	opALUK
	opALUX
	opDivModX
	opNeg
	opJumpAlways
	opJumpEqualK
	opJumpGreaterK
	opJumpGreaterEqualK
	opJumpSetK
	opJumpEqualX
	opJumpGreaterX
	opJumpGreaterEqualX
	opJumpSetX
	opReturnK
	opReturnA
	opTAX
	opTXA
)

// decoded is an Instruction prepared for interpretation.
type decoded struct {
	op          op
	size        uint8 // load size, or ALU operation
	jumpIfTrue  uint8
	jumpIfFalse uint8
	k           uint32
}

// decode prepares validated instructions for run.
func decode(insns []Instruction) []decoded {
	out := make([]decoded, len(insns))
	for i, ins := range insns {
		d := decoded{jumpIfTrue: ins.JumpIfTrue, jumpIfFalse: ins.JumpIfFalse, k: ins.K}
		switch ins.OpCode {
		case ClassLoad | SizeWord | ModeAbsolute, ClassLoad | SizeHalf | ModeAbsolute, ClassLoad | SizeByte | ModeAbsolute:
			d.op, d.size = opLoadAbs, uint8(ins.OpCode&sizeMask)
		case ClassLoad | SizeWord | ModeIndirect, ClassLoad | SizeHalf | ModeIndirect, ClassLoad | SizeByte | ModeIndirect:
			d.op, d.size = opLoadInd, uint8(ins.OpCode&sizeMask)
		case ClassLoad | SizeWord | ModeLength:
			d.op = opLoadLen
		case ClassLoad | ModeImmediate:
			d.op = opLoadImm
		case ClassLoad | ModeMemory:
			d.op = opLoadMem
		case ClassLoadX | SizeWord | ModeLength:
			d.op = opLoadXLen
		case ClassLoadX | SizeByte | ModeMSH:
			d.op = opLoadXMSH
		case ClassLoadX | ModeImmediate:
			d.op = opLoadXImm
		case ClassLoadX | ModeMemory:
			d.op = opLoadXMem
		case ClassStore:
			d.op = opStore
		case ClassStoreX:
			d.op = opStoreX
		case ClassALU | Neg:
			d.op = opNeg
		case ClassJump | JumpAlways:
			d.op = opJumpAlways
		case ClassJump | JumpEqual | SourceK:
			d.op = opJumpEqualK
		case ClassJump | JumpGreater | SourceK:
			d.op = opJumpGreaterK
		case ClassJump | JumpGreaterEqual | SourceK:
			d.op = opJumpGreaterEqualK
		case ClassJump | JumpSet | SourceK:
			d.op = opJumpSetK
		case ClassJump | JumpEqual | SourceX:
			d.op = opJumpEqualX
		case ClassJump | JumpGreater | SourceX:
			d.op = opJumpGreaterX
		case ClassJump | JumpGreaterEqual | SourceX:
			d.op = opJumpGreaterEqualX
		case ClassJump | JumpSet | SourceX:
			d.op = opJumpSetX
		case ClassReturn | ReturnK:
			d.op = opReturnK
		case ClassReturn | ReturnA:
			d.op = opReturnA
		case ClassMisc | MiscTAX:
			d.op = opTAX
		case ClassMisc | MiscTXA:
			d.op = opTXA
		default:
			if ins.OpCode&classMask == ClassALU && opcodeAllowed[ins.OpCode] {
				d.size = uint8(ins.OpCode & opMask)
				switch {
				case ins.OpCode&sourceMask == SourceK:
					d.op = opALUK
				case d.size == Div || d.size == Mod:
					d.op = opDivModX
				default:
					d.op = opALUX
				}
			}
		}
		// Scratch indices are below 16 in validated programs; masking
		// keeps the interpreter safe without a bounds check.
		if d.op == opLoadMem || d.op == opLoadXMem || d.op == opStore || d.op == opStoreX {
			d.k &= ScratchWords - 1
		}
		out[i] = d
	}
	return out
}

// run interprets a validated program. It is generic rather than taking the
// input interface so that nothing escapes to the heap.
func run[I input](code []decoded, in I) (uint32, int) {
	var a, x uint32
	var mem [ScratchWords]uint32
	executed := 0
	for pc := 0; pc < len(code); pc++ {
		executed++
		ins := &code[pc]
		k := ins.k
		switch ins.op {
		case opLoadAbs:
			v, ok := in.load(uint16(ins.size), k)
			if !ok {
				return 0, executed
			}
			a = v
		case opLoadInd:
			v, ok := in.load(uint16(ins.size), x+k)
			if !ok {
				return 0, executed
			}
			a = v
		case opLoadLen:
			a = in.length()
		case opLoadImm:
			a = k
		case opLoadMem:
			a = mem[k&(ScratchWords-1)]
		case opLoadXLen:
			x = in.length()
		case opLoadXMSH:
			v, ok := in.load(SizeByte, k)
			if !ok {
				return 0, executed
			}
			x = 4 * (v & 0xf)
		case opLoadXImm:
			x = k
		case opLoadXMem:
			x = mem[k&(ScratchWords-1)]
		case opStore:
			mem[k&(ScratchWords-1)] = a
		case opStoreX:
			mem[k&(ScratchWords-1)] = x
		case opALUK:
			if k == 0 && (ins.size == Div || ins.size == Mod) {
				return 0, executed // rejected by Validate; kept so nothing can panic
			}
			a = alu(uint16(ins.size), a, k)
		case opALUX:
			a = alu(uint16(ins.size), a, x)
		case opDivModX:
			// The kernel makes division or modulo by a zero X end the
			// program with 0.
			if x == 0 {
				return 0, executed
			}
			a = alu(uint16(ins.size), a, x)
		case opNeg:
			a = -a
		case opJumpAlways:
			pc += int(k)
		case opJumpEqualK:
			pc += branch(a == k, ins)
		case opJumpGreaterK:
			pc += branch(a > k, ins)
		case opJumpGreaterEqualK:
			pc += branch(a >= k, ins)
		case opJumpSetK:
			pc += branch(a&k != 0, ins)
		case opJumpEqualX:
			pc += branch(a == x, ins)
		case opJumpGreaterX:
			pc += branch(a > x, ins)
		case opJumpGreaterEqualX:
			pc += branch(a >= x, ins)
		case opJumpSetX:
			pc += branch(a&x != 0, ins)
		case opReturnK:
			return k, executed
		case opReturnA:
			return a, executed
		case opTAX:
			x = a
		case opTXA:
			a = x
		default:
			return 0, executed // unreachable for validated programs
		}
	}
	return 0, executed
}

func branch(taken bool, ins *decoded) int {
	if taken {
		return int(ins.jumpIfTrue)
	}
	return int(ins.jumpIfFalse)
}

// alu applies a 32-bit unsigned ALU operation. Shifts by a register use its
// low five bits, as the kernel's 32-bit shifts do.
func alu(op uint16, a, v uint32) uint32 {
	switch op {
	case Add:
		return a + v
	case Sub:
		return a - v
	case Mul:
		return a * v
	case Div:
		return a / v
	case Mod:
		return a % v
	case And:
		return a & v
	case Or:
		return a | v
	case Xor:
		return a ^ v
	case LeftShift:
		return a << (v & 31)
	case RightShift:
		return a >> (v & 31)
	}
	return a
}
