package bpf

import (
	"strings"
	"testing"
)

func TestAssemblerLabels(t *testing.T) {
	var a Assembler
	yes, no := a.NewLabel(), a.NewLabel()
	a.Emit(ldAbs(SizeByte, 0))
	a.JumpIf(JumpEqual|SourceK, 7, yes, no)
	a.Bind(no)
	a.Emit(retK(0))
	a.Bind(yes)
	a.Emit(retK(1))
	insns, err := a.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	p := mustValidate(t, insns, SocketFilter)
	if got := p.RunPacket([]byte{7}); got != 1 {
		t.Errorf("packet 7: got %d, want 1", got)
	}
	if got := p.RunPacket([]byte{8}); got != 0 {
		t.Errorf("packet 8: got %d, want 0", got)
	}
}

func TestAssemblerErrors(t *testing.T) {
	for name, build := range map[string]func(a *Assembler){
		"empty":         func(a *Assembler) {},
		"unbound label": func(a *Assembler) { a.JumpTo(a.NewLabel()); a.Emit(retK(0)) },
		"backward jump": func(a *Assembler) {
			l := a.NewLabel()
			a.Bind(l)
			a.Emit(ldImm(0))
			a.JumpTo(l)
		},
		"jump to end": func(a *Assembler) {
			l := a.NewLabel()
			a.JumpTo(l)
			a.Emit(retK(0))
			a.Bind(l)
		},
		"bound twice": func(a *Assembler) {
			l := a.NewLabel()
			a.Bind(l)
			a.Bind(l)
			a.Emit(retK(0))
		},
		"emit of jump": func(a *Assembler) { a.Emit(Stmt(ClassJump|JumpAlways, 0)); a.Emit(retK(0)) },
	} {
		var a Assembler
		build(&a)
		if insns, err := a.Assemble(); err == nil {
			t.Errorf("%s: assembled\n%s", name, Disassemble(insns))
		}
	}
}

// TestAssemblerFarJumps checks conditional jumps whose targets lie beyond
// their 8-bit offsets.
func TestAssemblerFarJumps(t *testing.T) {
	var a Assembler
	far, near := a.NewLabel(), a.NewLabel()
	a.Emit(ldAbs(SizeByte, 0))
	a.JumpIf(JumpEqual|SourceK, 1, far, Next)
	a.JumpIf(JumpEqual|SourceK, 2, near, far)
	a.Bind(near)
	for i := range 600 {
		a.Emit(aluK(Add, uint32(i)))
	}
	a.Emit(retA())
	a.Bind(far)
	a.Emit(ldImm(0xfa4))
	a.Emit(retA())
	insns, err := a.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	p := mustValidate(t, insns, SocketFilter)
	sum := uint32(2)
	for i := range 600 {
		sum += uint32(i)
	}
	for _, tc := range []struct {
		pkt  byte
		want uint32
	}{{1, 0xfa4}, {2, sum}, {3, 0xfa4}} {
		if got := p.RunPacket([]byte{tc.pkt}); got != tc.want {
			t.Errorf("packet %d: got %#x, want %#x", tc.pkt, got, tc.want)
		}
	}
}

func TestAssemblerOptimizes(t *testing.T) {
	var a Assembler
	ret1, hop, dead := a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Emit(ldAbs(SizeByte, 0))
	a.JumpIf(JumpEqual|SourceK, 1, hop, Next)
	a.JumpIf(JumpEqual|SourceK, 2, dead, dead) // same target both ways
	a.Bind(dead)
	a.JumpTo(ret1)   // a jump to a return becomes the return
	a.Emit(ldImm(5)) // unreachable
	a.Emit(retA())   // unreachable
	a.Bind(hop)
	a.JumpTo(ret1) // jumps to jumps are threaded
	a.Bind(ret1)
	a.Emit(retK(1))
	insns, err := a.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	want := "   0: ldb [0]\n   1: ret #0x1\n"
	if got := Disassemble(insns); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(Disassemble(insns), "ja") {
		t.Error("jumps remain")
	}
}
