package bpf

import "testing"

// BenchmarkRunSeccomp measures a linear 100-syscall allowlist, the worst
// shape a hand-written filter has; pkg/seccomp benchmarks its compiled
// (binary search) filters.
func BenchmarkRunSeccompLinear(b *testing.B) {
	insns := []Instruction{ldAbs(SizeWord, 0)}
	for nr := range uint32(100) {
		insns = append(insns, jmpK(JumpEqual, nr*3, uint8(100-nr), 0))
	}
	insns = append(insns, retK(0x00050001), retK(0x7fff0000))
	p := mustValidate(b, insns, SeccompFilter)
	d := SeccompData{Nr: 297, Arch: 0xc000003e}
	b.ReportAllocs()
	for b.Loop() {
		if p.RunSeccomp(&d) != 0x7fff0000 {
			b.Fatal("wrong verdict")
		}
	}
}

func BenchmarkRunPacket(b *testing.B) {
	// An IPv4/TCP-port style filter over a 60-byte packet.
	p := mustValidate(b, []Instruction{
		ldAbs(SizeHalf, 12), jmpK(JumpEqual, 0x0800, 0, 6),
		ldAbs(SizeByte, 23), jmpK(JumpEqual, 6, 0, 4),
		Stmt(ClassLoadX|SizeByte|ModeMSH, 14), ldInd(SizeHalf, 16), jmpK(JumpEqual, 80, 0, 1),
		retK(0xffff), retK(0),
	}, SocketFilter)
	pkt := make([]byte, 60)
	pkt[12], pkt[13], pkt[14], pkt[23], pkt[36], pkt[37] = 0x08, 0, 0x45, 6, 0, 80
	b.ReportAllocs()
	for b.Loop() {
		if p.RunPacket(pkt) != 0xffff {
			b.Fatal("wrong verdict")
		}
	}
}
