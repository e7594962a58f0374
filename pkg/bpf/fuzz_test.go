package bpf

import (
	"math/rand/v2"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	f.Add(Encode([]Instruction{retK(0)}))
	f.Add(Encode([]Instruction{ldAbs(SizeWord, 4), jmpK(JumpEqual, 0xc000003e, 1, 0), retK(0), retK(0x7fff0000)}))
	f.Add(Encode([]Instruction{Stmt(ClassLoadX|SizeByte|ModeMSH, 0), ldInd(SizeHalf, 2), Stmt(ClassStore, 1), Stmt(ClassLoad|ModeMemory, 1), retA()}))
	f.Add(Encode([]Instruction{ldxImm(0), aluX(Div), retA()}))
	f.Add([]byte{1, 2, 3})
	r := rand.New(rand.NewPCG(7, 8))
	for range 8 {
		f.Add(Encode(randomProgram(r, SocketFilter, 2+r.IntN(20), 32)))
		f.Add(Encode(randomProgram(r, SeccompFilter, 2+r.IntN(20), 0)))
	}
}

func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, err := Decode(b)
		if err != nil {
			return
		}
		if got := Encode(insns); string(got) != string(b) {
			t.Fatalf("Encode(Decode(b)) = % x, want % x", got, b)
		}
		_ = Disassemble(insns)
	})
}

func FuzzValidate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, err := Decode(b)
		if err != nil {
			return
		}
		for _, kind := range []Kind{SocketFilter, SeccompFilter} {
			p, err := Validate(insns, kind)
			if err != nil {
				continue
			}
			// A valid program ends in a return and keeps every jump inside.
			if !insns[len(insns)-1].IsReturn() {
				t.Fatalf("%v accepted without a final return", kind)
			}
			if p.Len() != len(insns) {
				t.Fatalf("Len = %d, want %d", p.Len(), len(insns))
			}
		}
	})
}

// FuzzInterpret runs every program that validates on inputs derived from
// the fuzz data: it must never panic, and a seccomp program must finish
// within its length (jumps only go forward).
func FuzzInterpret(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		insns, err := Decode(b[:len(b)/InstructionSize*InstructionSize])
		if err != nil {
			return
		}
		packet := b[len(b)/InstructionSize*InstructionSize:]
		if p, err := Validate(insns, SocketFilter); err == nil {
			p.RunPacket(packet)
			p.RunPacket(b)
			p.RunPacket(nil)
		}
		if p, err := Validate(insns, SeccompFilter); err == nil {
			d := SeccompData{Nr: int32(len(b)), Arch: 0xc000003e, Args: [6]uint64{uint64(len(packet)), ^uint64(0)}}
			if _, n := p.RunSeccompCounting(&d); n > len(insns) {
				t.Fatalf("executed %d instructions of %d", n, len(insns))
			}
		}
	})
}
