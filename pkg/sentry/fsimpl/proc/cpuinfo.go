package proc

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"carapace.dev/carapace/pkg/sentry/arch"
)

// featureBits names CPUID feature bits with the flag names Linux's
// /proc/cpuinfo uses (arch/x86/include/asm/cpufeatures.h naming).
type featureBits struct {
	leaf, sub uint32
	reg       int // 0 eax, 1 ebx, 2 ecx, 3 edx
	names     map[int]string
}

var cpuFeatures = []featureBits{
	{1, 0, 3, map[int]string{0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
		8: "cx8", 9: "apic", 11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov", 16: "pat", 17: "pse36",
		18: "pn", 19: "clflush", 21: "dts", 22: "acpi", 23: "mmx", 24: "fxsr", 25: "sse", 26: "sse2", 27: "ss",
		28: "ht", 29: "tm", 30: "ia64", 31: "pbe"}},
	{0x80000001, 0, 3, map[int]string{11: "syscall", 20: "nx", 22: "mmxext", 25: "fxsr_opt", 26: "pdpe1gb",
		27: "rdtscp", 29: "lm", 30: "3dnowext", 31: "3dnow"}},
	{1, 0, 2, map[int]string{0: "pni", 1: "pclmulqdq", 2: "dtes64", 3: "monitor", 4: "ds_cpl", 5: "vmx",
		6: "smx", 7: "est", 8: "tm2", 9: "ssse3", 10: "cid", 11: "sdbg", 12: "fma", 13: "cx16", 14: "xtpr",
		15: "pdcm", 17: "pcid", 18: "dca", 19: "sse4_1", 20: "sse4_2", 21: "x2apic", 22: "movbe",
		23: "popcnt", 24: "tsc_deadline_timer", 25: "aes", 26: "xsave", 28: "avx", 29: "f16c",
		30: "rdrand", 31: "hypervisor"}},
	{0x80000001, 0, 2, map[int]string{0: "lahf_lm", 1: "cmp_legacy", 2: "svm", 3: "extapic", 4: "cr8_legacy",
		5: "abm", 6: "sse4a", 7: "misalignsse", 8: "3dnowprefetch", 9: "osvw", 10: "ibs", 11: "xop",
		12: "skinit", 13: "wdt", 15: "lwp", 16: "fma4", 21: "tbm", 22: "topoext", 23: "perfctr_core"}},
	{7, 0, 1, map[int]string{0: "fsgsbase", 1: "tsc_adjust", 3: "bmi1", 4: "hle", 5: "avx2", 7: "smep",
		8: "bmi2", 9: "erms", 10: "invpcid", 11: "rtm", 14: "mpx", 16: "avx512f", 17: "avx512dq",
		18: "rdseed", 19: "adx", 20: "smap", 21: "avx512ifma", 23: "clflushopt", 24: "clwb",
		26: "avx512pf", 27: "avx512er", 28: "avx512cd", 29: "sha_ni", 30: "avx512bw", 31: "avx512vl"}},
	{0xd, 1, 0, map[int]string{0: "xsaveopt", 1: "xsavec", 2: "xgetbv1", 3: "xsaves"}},
	{7, 0, 2, map[int]string{1: "avx512vbmi", 2: "umip", 3: "pku", 4: "ospke", 6: "avx512_vbmi2",
		8: "gfni", 9: "vaes", 10: "vpclmulqdq", 11: "avx512_vnni", 12: "avx512_bitalg",
		14: "avx512_vpopcntdq", 22: "rdpid"}},
	{7, 0, 3, map[int]string{4: "fsrm", 10: "md_clear", 14: "serialize", 29: "arch_capabilities"}},
}

// cpuinfoCache holds the text for each CPU count: CPUID answers never
// change, and each CPUID may trap to a hypervisor, so it is built once.
var cpuinfoCache sync.Map // int -> []byte

func cachedCPUInfo(n int) []byte {
	if b, ok := cpuinfoCache.Load(n); ok {
		return b.([]byte)
	}
	b, _ := cpuinfoCache.LoadOrStore(n, cpuinfo(n))
	return b.([]byte)
}

// cpuidRegs returns the four registers of a CPUID leaf as an array.
func cpuidRegs(leaf, sub uint32) [4]uint32 {
	a, b, c, d := arch.CPUID(leaf, sub)
	return [4]uint32{a, b, c, d}
}

func regString(regs ...uint32) string {
	var b []byte
	for _, r := range regs {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

// cpuinfo builds /proc/cpuinfo for n CPUs from what CPUID tells the
// application (the Sentry passes the host's CPUID through), since the
// Sentry itself has no /proc to copy once it has pivoted.
func cpuinfo(n int) []byte {
	l0 := cpuidRegs(0, 0)
	maxLeaf := l0[0]
	vendor := regString(l0[1], l0[3], l0[2])
	l1 := cpuidRegs(1, 0)
	ext := cpuidRegs(0x80000000, 0)[0]

	stepping := l1[0] & 0xf
	model := (l1[0] >> 4) & 0xf
	family := (l1[0] >> 8) & 0xf
	if family == 0xf {
		family += (l1[0] >> 20) & 0xff
	}
	if family == 0x6 || family >= 0xf {
		model += ((l1[0] >> 16) & 0xf) << 4
	}
	name := "unknown"
	if ext >= 0x80000004 {
		var regs []uint32
		for leaf := uint32(0x80000002); leaf <= 0x80000004; leaf++ {
			r := cpuidRegs(leaf, 0)
			regs = append(regs, r[:]...)
		}
		name = regString(regs...)
	}
	var flags []string
	for _, fb := range cpuFeatures {
		if fb.leaf < 0x80000000 && fb.leaf > maxLeaf || fb.leaf >= 0x80000000 && fb.leaf > ext {
			continue
		}
		r := cpuidRegs(fb.leaf, fb.sub)[fb.reg]
		for bit := range 32 {
			if r&(1<<bit) != 0 {
				if nm, ok := fb.names[bit]; ok {
					flags = append(flags, nm)
				}
			}
		}
	}
	mhz := ""
	if maxLeaf >= 0x16 {
		if f := cpuidRegs(0x16, 0)[0] & 0xffff; f != 0 {
			mhz = fmt.Sprintf("cpu MHz\t\t: %d.000\n", f)
		}
	}
	cache := ""
	if ext >= 0x80000006 {
		if kb := cpuidRegs(0x80000006, 0)[2] >> 16; kb != 0 {
			cache = fmt.Sprintf("cache size\t: %d KB\n", kb)
		}
	}
	addr := ""
	if ext >= 0x80000008 {
		a := cpuidRegs(0x80000008, 0)[0]
		addr = fmt.Sprintf("address sizes\t: %d bits physical, %d bits virtual\n", a&0xff, (a>>8)&0xff)
	}
	clflush := ((l1[1] >> 8) & 0xff) * 8
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "processor\t: %d\n", i)
		fmt.Fprintf(&b, "vendor_id\t: %s\n", vendor)
		fmt.Fprintf(&b, "cpu family\t: %d\n", family)
		fmt.Fprintf(&b, "model\t\t: %d\n", model)
		fmt.Fprintf(&b, "model name\t: %s\n", name)
		fmt.Fprintf(&b, "stepping\t: %d\n", stepping)
		b.WriteString(mhz)
		b.WriteString(cache)
		fmt.Fprintf(&b, "physical id\t: 0\nsiblings\t: %d\ncore id\t\t: %d\ncpu cores\t: %d\n", n, i, n)
		fmt.Fprintf(&b, "apicid\t\t: %d\ninitial apicid\t: %d\n", i, i)
		fmt.Fprintf(&b, "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: %d\nwp\t\t: yes\n", maxLeaf)
		fmt.Fprintf(&b, "flags\t\t: %s\n", strings.Join(flags, " "))
		fmt.Fprintf(&b, "clflush size\t: %d\ncache_alignment\t: %d\n", clflush, clflush)
		b.WriteString(addr)
		b.WriteString("power management:\n\n")
	}
	return b.Bytes()
}
