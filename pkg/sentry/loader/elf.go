package loader

import (
	"encoding/binary"
	"fmt"

	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

// ELF constants from the System V ABI and its x86-64 supplement.
const (
	elfHeaderSize  = 64
	elfPhdrSize    = 56
	elfClass64     = 2
	elfData2LSB    = 1
	elfVersion     = 1
	etExec         = 2
	etDyn          = 3
	emX86_64       = 62
	ptLoad         = 1
	ptInterp       = 3
	ptPhdr         = 6
	ptGNUStack     = 0x6474e551
	pfX            = 1
	pfW            = 2
	pfR            = 4
	maxPhdrBytes   = 65536 // Linux refuses program header tables beyond this
	maxInterpBytes = 4096  // PATH_MAX
)

// elfSegment is one PT_LOAD program header.
type elfSegment struct {
	Vaddr  uint64
	Offset uint64
	Filesz uint64
	Memsz  uint64
	Perms  hostarch.AccessType
}

// elfInfo is what the loader needs from an ELF file's headers.
type elfInfo struct {
	Dynamic   bool // ET_DYN: position independent, needs a load bias
	Entry     uint64
	Phoff     uint64
	Phnum     int
	PhdrVaddr uint64 // PT_PHDR's vaddr, or 0 if absent
	HasPhdr   bool
	Segments  []elfSegment
	Interp    string // PT_INTERP path, "" if none; filled in by readELF
	interpOff uint64
	interpLen uint64 // 0: no PT_INTERP
	ExecStack bool
	phdrs     []byte
}

// parseELFHeader validates the 64-byte ELF header in hdr and returns the
// program header table's offset and count. Any failure is ENOEXEC, as
// execve reports for a file it cannot run.
func parseELFHeader(hdr []byte) (info elfInfo, err error) {
	if len(hdr) < elfHeaderSize || string(hdr[:4]) != "\x7fELF" {
		return info, fmt.Errorf("not an ELF file: %w", unix.ENOEXEC)
	}
	if hdr[4] != elfClass64 || hdr[5] != elfData2LSB || hdr[6] != elfVersion {
		return info, fmt.Errorf("ELF class %d data %d version %d is not ELF64 LSB v1: %w", hdr[4], hdr[5], hdr[6], unix.ENOEXEC)
	}
	le := binary.LittleEndian
	switch le.Uint16(hdr[16:]) {
	case etExec:
	case etDyn:
		info.Dynamic = true
	default:
		return info, fmt.Errorf("ELF type %d is neither ET_EXEC nor ET_DYN: %w", le.Uint16(hdr[16:]), unix.ENOEXEC)
	}
	if m := le.Uint16(hdr[18:]); m != emX86_64 {
		return info, fmt.Errorf("ELF machine %d is not x86-64: %w", m, unix.ENOEXEC)
	}
	info.Entry = le.Uint64(hdr[24:])
	info.Phoff = le.Uint64(hdr[32:])
	phentsize := le.Uint16(hdr[54:])
	info.Phnum = int(le.Uint16(hdr[56:]))
	if phentsize != elfPhdrSize {
		return info, fmt.Errorf("ELF phentsize %d, want %d: %w", phentsize, elfPhdrSize, unix.ENOEXEC)
	}
	if info.Phnum == 0 || info.Phnum*elfPhdrSize > maxPhdrBytes {
		return info, fmt.Errorf("ELF has %d program headers: %w", info.Phnum, unix.ENOEXEC)
	}
	if info.Phoff > 1<<62 {
		return info, fmt.Errorf("ELF phoff %#x out of range: %w", info.Phoff, unix.ENOEXEC)
	}
	return info, nil
}

// parsePhdrs decodes the program header table into info. It checks every
// property later steps rely on so that mapping cannot overflow.
func parsePhdrs(info *elfInfo, phdrs []byte) error {
	le := binary.LittleEndian
	info.phdrs = phdrs
	for i := 0; i < info.Phnum; i++ {
		p := phdrs[i*elfPhdrSize : (i+1)*elfPhdrSize]
		typ := le.Uint32(p[0:])
		flags := le.Uint32(p[4:])
		off := le.Uint64(p[8:])
		vaddr := le.Uint64(p[16:])
		filesz := le.Uint64(p[32:])
		memsz := le.Uint64(p[40:])
		switch typ {
		case ptLoad:
			if filesz > memsz {
				return fmt.Errorf("PT_LOAD %d: filesz %#x > memsz %#x: %w", i, filesz, memsz, unix.ENOEXEC)
			}
			if off%hostarch.PageSize != vaddr%hostarch.PageSize {
				return fmt.Errorf("PT_LOAD %d: offset %#x and vaddr %#x disagree modulo the page size: %w", i, off, vaddr, unix.ENOEXEC)
			}
			if vaddr+memsz < vaddr || vaddr+memsz > uint64(hostarch.MaxUserAddress) || off+filesz < off || off > 1<<62 {
				return fmt.Errorf("PT_LOAD %d: [%#x, +%#x) out of range: %w", i, vaddr, memsz, unix.ENOEXEC)
			}
			if n := len(info.Segments); n > 0 && vaddr < info.Segments[n-1].Vaddr {
				return fmt.Errorf("PT_LOAD %d: not in ascending vaddr order: %w", i, unix.ENOEXEC)
			}
			if memsz == 0 {
				continue
			}
			info.Segments = append(info.Segments, elfSegment{
				Vaddr: vaddr, Offset: off, Filesz: filesz, Memsz: memsz,
				Perms: hostarch.AccessType{Read: flags&pfR != 0, Write: flags&pfW != 0, Execute: flags&pfX != 0},
			})
		case ptInterp:
			if info.interpLen != 0 {
				return fmt.Errorf("more than one PT_INTERP: %w", unix.ENOEXEC)
			}
			if filesz < 2 || filesz > maxInterpBytes {
				return fmt.Errorf("PT_INTERP of %d bytes: %w", filesz, unix.ENOEXEC)
			}
			info.interpOff, info.interpLen = off, filesz
		case ptPhdr:
			info.PhdrVaddr, info.HasPhdr = vaddr, true
		case ptGNUStack:
			info.ExecStack = flags&pfX != 0
		}
	}
	if len(info.Segments) == 0 {
		return fmt.Errorf("no PT_LOAD segment: %w", unix.ENOEXEC)
	}
	return nil
}

// span returns the page-aligned range of vaddrs the segments cover.
func (info *elfInfo) span() (start, end uint64) {
	start = hostarch.PageRoundDown(info.Segments[0].Vaddr)
	for _, s := range info.Segments {
		e, _ := hostarch.PageRoundUp(s.Vaddr + s.Memsz)
		if e > end {
			end = e
		}
	}
	return start, end
}

// phdrAddr returns the vaddr (before bias) where the program headers are
// visible to the program: PT_PHDR if present, otherwise the PT_LOAD that
// contains them in the file. ok is false if they are not mapped at all.
func (info *elfInfo) phdrAddr() (uint64, bool) {
	if info.HasPhdr {
		return info.PhdrVaddr, true
	}
	size := uint64(info.Phnum * elfPhdrSize)
	for _, s := range info.Segments {
		if info.Phoff >= s.Offset && info.Phoff+size <= s.Offset+s.Filesz {
			return s.Vaddr + (info.Phoff - s.Offset), true
		}
	}
	return 0, false
}
