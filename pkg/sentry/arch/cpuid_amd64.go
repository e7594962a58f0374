package arch

// cpuid executes the CPUID instruction on the host.
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 reads XCR0, the set of state components the host OS enabled.
func xgetbv0() (lo, hi uint32)

// CPUID runs the host CPUID instruction; the Sentry's CPUID emulation
// starts from it.
func CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32) { return cpuid(leaf, sub) }
