package bpf

import (
	"errors"
	"strings"
	"testing"
)

func mustValidate(t testing.TB, insns []Instruction, kind Kind) Program {
	t.Helper()
	p, err := Validate(insns, kind)
	if err != nil {
		t.Fatalf("Validate: %v\n%s", err, Disassemble(insns))
	}
	return p
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	insns := []Instruction{
		{OpCode: 0x20, JumpIfTrue: 1, JumpIfFalse: 2, K: 0xdeadbeef},
		{OpCode: 0x0006, K: 0x7fff0000},
	}
	b := Encode(insns)
	want := []byte{0x20, 0, 1, 2, 0xef, 0xbe, 0xad, 0xde, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f}
	if string(b) != string(want) {
		t.Fatalf("Encode = % x, want % x", b, want)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != insns[0] || got[1] != insns[1] {
		t.Fatalf("Decode = %+v, want %+v", got, insns)
	}
	if _, err := Decode(b[:15]); err == nil {
		t.Error("Decode of 15 bytes succeeded")
	}
	if _, err := Decode(make([]byte, 8*(MaxInstructions+1))); err == nil {
		t.Error("Decode of 4097 instructions succeeded")
	}
}

func TestValidate(t *testing.T) {
	long := make([]Instruction, MaxInstructions+1)
	for i := range long {
		long[i] = retK(0)
	}
	for _, tc := range []struct {
		name  string
		kind  Kind
		insns []Instruction
		ok    bool
	}{
		{"ret only", SocketFilter, []Instruction{retK(0)}, true},
		{"empty", SocketFilter, nil, false},
		{"4096 instructions", SocketFilter, long[:MaxInstructions], true},
		{"4097 instructions", SocketFilter, long, false},
		{"no final ret", SocketFilter, []Instruction{retK(0), ldImm(1)}, false},
		{"ret x is not an opcode", SocketFilter, []Instruction{Stmt(ClassReturn|0x08, 0)}, false},
		{"stray opcode bits", SocketFilter, []Instruction{Stmt(0x100|ClassReturn, 0)}, false},
		{"neg with X bit", SocketFilter, []Instruction{Stmt(ClassALU|Neg|SourceX, 0), retA()}, false},
		{"div by constant zero", SocketFilter, []Instruction{aluK(Div, 0), retA()}, false},
		{"mod by constant zero", SocketFilter, []Instruction{aluK(Mod, 0), retA()}, false},
		{"div by X", SocketFilter, []Instruction{aluX(Div), retA()}, true},
		{"shift by 31", SocketFilter, []Instruction{aluK(LeftShift, 31), retA()}, true},
		{"shift by 32", SocketFilter, []Instruction{aluK(RightShift, 32), retA()}, false},
		{"jump to last", SocketFilter, []Instruction{jmpK(JumpEqual, 0, 1, 0), retK(1), retK(2)}, true},
		{"jump past end", SocketFilter, []Instruction{jmpK(JumpEqual, 0, 2, 0), retK(1), retK(2)}, false},
		{"ja to last", SocketFilter, []Instruction{Stmt(ClassJump|JumpAlways, 1), retK(1), retK(2)}, true},
		{"ja past end", SocketFilter, []Instruction{Stmt(ClassJump|JumpAlways, 2), retK(1), retK(2)}, false},
		{"ja huge", SocketFilter, []Instruction{Stmt(ClassJump|JumpAlways, 0xffffffff), retK(1)}, false},
		{"mem read before write", SocketFilter, []Instruction{Stmt(ClassLoad|ModeMemory, 3), retA()}, false},
		{"mem write then read", SocketFilter, []Instruction{Stmt(ClassStore, 3), Stmt(ClassLoadX|ModeMemory, 3), retA()}, true},
		{"mem index 16", SocketFilter, []Instruction{Stmt(ClassStore, 16), retA()}, false},
		{"mem written on one path only", SocketFilter, []Instruction{
			jmpK(JumpEqual, 0, 0, 1), Stmt(ClassStore, 2), Stmt(ClassLoad|ModeMemory, 2), retA()}, false},
		{"mem written on both paths", SocketFilter, []Instruction{
			jmpK(JumpEqual, 0, 0, 2), Stmt(ClassStore, 2), Stmt(ClassJump|JumpAlways, 1),
			Stmt(ClassStoreX, 2), Stmt(ClassLoad|ModeMemory, 2), retA()}, true},
		{"mem read in unreachable code after ret", SocketFilter, []Instruction{
			retK(0), Stmt(ClassLoad|ModeMemory, 1), retA()}, false},
		{"mem read after ret, reached only by jump that skipped store", SocketFilter, []Instruction{
			jmpK(JumpEqual, 0, 2, 0), Stmt(ClassStore, 1), retA(), Stmt(ClassLoad|ModeMemory, 1), retA()}, false},
		{"ancillary load", SocketFilter, []Instruction{ldAbs(SizeWord, 0xfffff000), retA()}, false},
		{"packet byte load", SocketFilter, []Instruction{ldAbs(SizeByte, 1000), retA()}, true},
		{"seccomp aligned word", SeccompFilter, []Instruction{ldAbs(SizeWord, 60), retA()}, true},
		{"seccomp unaligned", SeccompFilter, []Instruction{ldAbs(SizeWord, 2), retA()}, false},
		{"seccomp past struct", SeccompFilter, []Instruction{ldAbs(SizeWord, 64), retA()}, false},
		{"seccomp byte load", SeccompFilter, []Instruction{ldAbs(SizeByte, 0), retA()}, false},
		{"seccomp indirect load", SeccompFilter, []Instruction{ldInd(SizeWord, 0), retA()}, false},
		{"seccomp msh", SeccompFilter, []Instruction{Stmt(ClassLoadX|SizeByte|ModeMSH, 0), retA()}, false},
		{"seccomp mod", SeccompFilter, []Instruction{aluK(Mod, 3), retA()}, false},
		{"seccomp xor", SeccompFilter, []Instruction{aluK(Xor, 3), retA()}, true},
		{"seccomp len", SeccompFilter, []Instruction{Stmt(ClassLoad|SizeWord|ModeLength, 0), retA()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.insns, tc.kind)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("accepted")
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
			}
		})
	}
}

func TestALUSemantics(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, x uint32
		ins  Instruction
		want uint32
	}{
		{"add wraps", 0xfffffff0, 0, aluK(Add, 0x20), 0x10},
		{"sub wraps", 0, 0, aluK(Sub, 1), 0xffffffff},
		{"mul keeps low 32 bits", 0x10001, 0, aluK(Mul, 0x10001), 0x20001},
		{"div is unsigned", 0xffffffff, 0, aluK(Div, 2), 0x7fffffff},
		{"div by X", 100, 7, aluX(Div), 14},
		{"mod is unsigned", 0x80000001, 0, aluK(Mod, 3), 0x80000001 % 3},
		{"mod by X", 100, 7, aluX(Mod), 2},
		{"and", 0xf0f0, 0, aluK(And, 0xff00), 0xf000},
		{"or X", 0xf0, 0x0f, aluX(Or), 0xff},
		{"xor", 0xffff0000, 0, aluK(Xor, 0xffffffff), 0xffff},
		{"lsh", 1, 0, aluK(LeftShift, 31), 0x80000000},
		{"rsh is logical", 0x80000000, 0, aluK(RightShift, 31), 1},
		{"lsh X 32 uses low five bits", 5, 32, aluX(LeftShift), 5},
		{"lsh X 33 uses low five bits", 5, 33, aluX(LeftShift), 10},
		{"rsh X 0xffffffff uses low five bits", 0x80000000, 0xffffffff, aluX(RightShift), 1},
		{"neg", 1, 0, Stmt(ClassALU|Neg, 0), 0xffffffff},
		{"neg of min", 0x80000000, 0, Stmt(ClassALU|Neg, 0), 0x80000000},
		{"txa", 1, 42, Stmt(ClassMisc|MiscTXA, 0), 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustValidate(t, []Instruction{ldImm(tc.a), ldxImm(tc.x), tc.ins, retA()}, SocketFilter)
			if got := p.RunPacket(nil); got != tc.want {
				t.Fatalf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestDivisionByZeroRegisterReturnsZero(t *testing.T) {
	for _, op := range []uint16{Div, Mod} {
		p := mustValidate(t, []Instruction{ldImm(7), ldxImm(0), aluX(op), retK(99)}, SocketFilter)
		if got := p.RunPacket([]byte{1}); got != 0 {
			t.Errorf("op %#x: got %d, want 0", op, got)
		}
	}
}

func TestJumps(t *testing.T) {
	// Each program returns 1 when the jump is taken and 2 otherwise.
	for _, tc := range []struct {
		name  string
		a, x  uint32
		jump  Instruction
		taken bool
	}{
		{"jeq", 5, 0, jmpK(JumpEqual, 5, 0, 1), true},
		{"jeq false", 5, 0, jmpK(JumpEqual, 6, 0, 1), false},
		{"jgt is unsigned", 0x80000000, 0, jmpK(JumpGreater, 1, 0, 1), true},
		{"jgt equal", 7, 0, jmpK(JumpGreater, 7, 0, 1), false},
		{"jge equal", 7, 0, jmpK(JumpGreaterEqual, 7, 0, 1), true},
		{"jset", 0x10, 0, jmpK(JumpSet, 0x30, 0, 1), true},
		{"jset none", 0x10, 0, jmpK(JumpSet, 0x20, 0, 1), false},
		{"jeq x", 9, 9, Jump(ClassJump|JumpEqual|SourceX, 0, 0, 1), true},
		{"jgt x", 9, 10, Jump(ClassJump|JumpGreater|SourceX, 0, 0, 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustValidate(t, []Instruction{ldImm(tc.a), ldxImm(tc.x), tc.jump, retK(1), retK(2)}, SocketFilter)
			want := uint32(2)
			if tc.taken {
				want = 1
			}
			if got := p.RunPacket(nil); got != want {
				t.Fatalf("got %d, want %d", got, want)
			}
		})
	}
	p := mustValidate(t, []Instruction{Stmt(ClassJump|JumpAlways, 1), retK(1), retK(2)}, SocketFilter)
	if got := p.RunPacket(nil); got != 2 {
		t.Errorf("ja: got %d, want 2", got)
	}
}

func TestPacketLoads(t *testing.T) {
	pkt := []byte{0x45, 0x01, 0x02, 0x03, 0x04, 0x05}
	for _, tc := range []struct {
		name  string
		insns []Instruction
		want  uint32
	}{
		{"word is big-endian", []Instruction{ldAbs(SizeWord, 1), retA()}, 0x01020304},
		{"half", []Instruction{ldAbs(SizeHalf, 4), retA()}, 0x0405},
		{"byte", []Instruction{ldAbs(SizeByte, 5), retA()}, 5},
		{"word out of bounds drops", []Instruction{ldAbs(SizeWord, 3), retK(1)}, 0},
		{"byte out of bounds drops", []Instruction{ldAbs(SizeByte, 6), retK(1)}, 0},
		{"huge offset drops", []Instruction{ldAbs(SizeByte, 0x7fffffff), retK(1)}, 0},
		{"indirect", []Instruction{ldxImm(2), ldInd(SizeHalf, 1), retA()}, 0x0304},
		{"indirect out of bounds", []Instruction{ldxImm(5), ldInd(SizeHalf, 0), retK(1)}, 0},
		{"indirect wraps to a valid offset", []Instruction{ldxImm(0xffffffff), ldInd(SizeByte, 3), retA()}, 2},
		{"indirect negative drops", []Instruction{ldxImm(0xfffffff0), ldInd(SizeByte, 3), retK(1)}, 0},
		{"len", []Instruction{Stmt(ClassLoad|SizeWord|ModeLength, 0), retA()}, 6},
		{"ldx len", []Instruction{Stmt(ClassLoadX|SizeWord|ModeLength, 0), Stmt(ClassMisc|MiscTXA, 0), retA()}, 6},
		{"msh", []Instruction{Stmt(ClassLoadX|SizeByte|ModeMSH, 0), Stmt(ClassMisc|MiscTXA, 0), retA()}, 20},
		{"msh out of bounds", []Instruction{Stmt(ClassLoadX|SizeByte|ModeMSH, 6), retK(1)}, 0},
		{"scratch memory", []Instruction{ldImm(11), Stmt(ClassStore, 15), ldImm(0), Stmt(ClassLoadX|ModeMemory, 15), Stmt(ClassMisc|MiscTXA, 0), retA()}, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustValidate(t, tc.insns, SocketFilter)
			if got := p.RunPacket(pkt); got != tc.want {
				t.Fatalf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestSeccompLoads(t *testing.T) {
	d := SeccompData{Nr: -2, Arch: 0xc000003e, InstructionPointer: 0x1122334455667788,
		Args: [6]uint64{0x0000000100000002, 3, 4, 5, 6, 0xaaaaaaaabbbbbbbb}}
	for _, tc := range []struct {
		offset uint32
		want   uint32
	}{
		{0, 0xfffffffe}, {4, 0xc000003e}, {8, 0x55667788}, {12, 0x11223344},
		{16, 2}, {20, 1}, {24, 3}, {28, 0}, {56, 0xbbbbbbbb}, {60, 0xaaaaaaaa},
	} {
		p := mustValidate(t, []Instruction{ldAbs(SizeWord, tc.offset), retA()}, SeccompFilter)
		if got := p.RunSeccomp(&d); got != tc.want {
			t.Errorf("offset %d: got %#x, want %#x", tc.offset, got, tc.want)
		}
	}
	p := mustValidate(t, []Instruction{Stmt(ClassLoad|SizeWord|ModeLength, 0), retA()}, SeccompFilter)
	if got := p.RunSeccomp(&d); got != 64 {
		t.Errorf("len: got %d, want 64", got)
	}
	// A socket filter's byte load has no meaning on seccomp data: it fails.
	p = mustValidate(t, []Instruction{ldAbs(SizeByte, 0), retK(1)}, SocketFilter)
	if got := p.RunSeccomp(&d); got != 0 {
		t.Errorf("byte load on seccomp data: got %d, want 0", got)
	}
}

func TestInterpreterAllocatesNothing(t *testing.T) {
	p := mustValidate(t, []Instruction{ldAbs(SizeWord, 16), Stmt(ClassStore, 0), jmpK(JumpEqual, 1, 0, 1), retK(1), retK(2)}, SeccompFilter)
	d := SeccompData{Args: [6]uint64{1}}
	if n := testing.AllocsPerRun(100, func() { p.RunSeccomp(&d) }); n != 0 {
		t.Errorf("RunSeccomp allocates %v times per run", n)
	}
	q := mustValidate(t, []Instruction{ldInd(SizeWord, 1), retA()}, SocketFilter)
	pkt := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() { q.RunPacket(pkt) }); n != 0 {
		t.Errorf("RunPacket allocates %v times per run", n)
	}
}

func TestDisassemble(t *testing.T) {
	got := Disassemble([]Instruction{
		ldAbs(SizeWord, 4), jmpK(JumpEqual, 0xc000003e, 1, 0), retK(0),
		ldInd(SizeByte, 2), aluX(Add), Stmt(ClassJump|JumpAlways, 0), Stmt(0xffff, 0), retA(),
	})
	for _, want := range []string{
		"   0: ld [4]\n",
		"   1: jeq #0xc000003e\t-> 3 else 2\n",
		"   2: ret #0x0\n",
		"   3: ldb [x+2]\n",
		"   4: add x\n",
		"   5: ja +0\t-> 6\n",
		"   6: unknown opcode 0xffff",
		"   7: ret a\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("disassembly lacks %q:\n%s", want, got)
		}
	}
}
