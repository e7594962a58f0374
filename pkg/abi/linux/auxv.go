package linux

// ELF auxiliary vector keys (Auxv.Key), from <linux/auxvec.h> and the amd64
// <asm/auxvec.h>.
const (
	AT_NULL              = 0
	AT_IGNORE            = 1
	AT_EXECFD            = 2
	AT_PHDR              = 3
	AT_PHENT             = 4
	AT_PHNUM             = 5
	AT_PAGESZ            = 6
	AT_BASE              = 7
	AT_FLAGS             = 8
	AT_ENTRY             = 9
	AT_NOTELF            = 10
	AT_UID               = 11
	AT_EUID              = 12
	AT_GID               = 13
	AT_EGID              = 14
	AT_PLATFORM          = 15
	AT_HWCAP             = 16
	AT_CLKTCK            = 17
	AT_SECURE            = 23
	AT_BASE_PLATFORM     = 24
	AT_RANDOM            = 25
	AT_HWCAP2            = 26
	AT_RSEQ_FEATURE_SIZE = 27
	AT_RSEQ_ALIGN        = 28
	AT_HWCAP3            = 29
	AT_HWCAP4            = 30
	AT_EXECFN            = 31
	AT_SYSINFO_EHDR      = 33
	AT_MINSIGSTKSZ       = 51
)

// ELF file and program headers are not duplicated here: debug/elf's
// Header64 and Prog64 have the exact Elf64_Ehdr and Elf64_Phdr layouts (the
// tests check them against <elf.h>) and debug/elf decodes them.

// Auxv is one auxiliary vector entry as the kernel places it on the initial
// stack: two 64-bit words.
type Auxv struct {
	Key   uint64
	Value uint64
}

// SizeOfAuxv is the size of one entry.
const SizeOfAuxv = 16

// SizeBytes implements Marshaler.
func (*Auxv) SizeBytes() int { return SizeOfAuxv }

// MarshalBytes implements Marshaler.
func (a *Auxv) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfAuxv-1]
	le.PutUint64(dst[0:], a.Key)
	le.PutUint64(dst[8:], a.Value)
	return dst[SizeOfAuxv:]
}

// UnmarshalBytes implements Marshaler.
func (a *Auxv) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfAuxv-1]
	a.Key = le.Uint64(src[0:])
	a.Value = le.Uint64(src[8:])
	return src[SizeOfAuxv:]
}
