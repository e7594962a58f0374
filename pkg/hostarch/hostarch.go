// Package hostarch owns the vocabulary of addresses shared by the platform,
// the memory manager and the kernel: application virtual addresses, page
// arithmetic, address ranges and memory access types (amd64 only).
package hostarch

import "fmt"

const (
	// PageShift is log2(PageSize).
	PageShift = 12
	// PageSize is the size of a small page on amd64.
	PageSize = 1 << PageShift
	// HugePageShift is log2(HugePageSize).
	HugePageShift = 21
	// HugePageSize is the size of a 2 MiB huge page.
	HugePageSize = 1 << HugePageShift

	// MaxUserAddress is one past the highest canonical user address with
	// 4-level paging; the last page is withheld as Linux does (TASK_SIZE).
	MaxUserAddress Addr = (1 << 47) - PageSize
)

// Addr is an address in an application's address space.
type Addr uintptr

// RoundDown returns a rounded down to a page boundary.
func (a Addr) RoundDown() Addr { return a &^ (PageSize - 1) }

// RoundUp returns a rounded up to a page boundary; ok is false on overflow.
func (a Addr) RoundUp() (Addr, bool) {
	r := (a + PageSize - 1) &^ (PageSize - 1)
	return r, r >= a
}

// MustRoundUp is RoundUp for values known not to overflow.
func (a Addr) MustRoundUp() Addr {
	r, ok := a.RoundUp()
	if !ok {
		panic(fmt.Sprintf("hostarch: %#x overflows when rounded up", uintptr(a)))
	}
	return r
}

// PageOffset returns the offset of a within its page.
func (a Addr) PageOffset() uint64 { return uint64(a & (PageSize - 1)) }

// IsPageAligned reports whether a is on a page boundary.
func (a Addr) IsPageAligned() bool { return a.PageOffset() == 0 }

// AddLength returns a+length; ok is false if that overflows.
func (a Addr) AddLength(length uint64) (Addr, bool) {
	end := a + Addr(length)
	if uint64(end) < uint64(a) || uint64(Addr(length)) != length {
		return 0, false
	}
	return end, true
}

// ToRange returns [a, a+length); ok is false if that overflows.
func (a Addr) ToRange(length uint64) (AddrRange, bool) {
	end, ok := a.AddLength(length)
	return AddrRange{a, end}, ok
}

func (a Addr) String() string { return fmt.Sprintf("%#x", uintptr(a)) }

// PageRoundDown rounds x down to a page boundary.
func PageRoundDown(x uint64) uint64 { return x &^ (PageSize - 1) }

// PageRoundUp rounds x up to a page boundary; ok is false on overflow.
func PageRoundUp(x uint64) (uint64, bool) {
	r := (x + PageSize - 1) &^ (PageSize - 1)
	return r, r >= x
}

// AddrRange is the half-open range [Start, End).
type AddrRange struct {
	Start Addr
	End   Addr
}

// Length returns the number of bytes in r.
func (r AddrRange) Length() uint64 { return uint64(r.End - r.Start) }

// WellFormed reports whether Start <= End.
func (r AddrRange) WellFormed() bool { return r.Start <= r.End }

// Contains reports whether a lies in r.
func (r AddrRange) Contains(a Addr) bool { return r.Start <= a && a < r.End }

// IsSupersetOf reports whether o lies entirely within r.
func (r AddrRange) IsSupersetOf(o AddrRange) bool { return r.Start <= o.Start && o.End <= r.End }

// Overlaps reports whether r and o share at least one byte.
func (r AddrRange) Overlaps(o AddrRange) bool { return r.Start < o.End && o.Start < r.End }

// Intersect returns the overlap of r and o (empty at r.Start if none).
func (r AddrRange) Intersect(o AddrRange) AddrRange {
	if r.Start < o.Start {
		r.Start = o.Start
	}
	if r.End > o.End {
		r.End = o.End
	}
	if r.End < r.Start {
		r.End = r.Start
	}
	return r
}

// IsPageAligned reports whether both ends of r are page aligned.
func (r AddrRange) IsPageAligned() bool { return r.Start.IsPageAligned() && r.End.IsPageAligned() }

func (r AddrRange) String() string {
	return fmt.Sprintf("[%#x, %#x)", uintptr(r.Start), uintptr(r.End))
}

// AccessType says which of read, write and execute an access or mapping
// permits or performs.
type AccessType struct {
	Read    bool
	Write   bool
	Execute bool
}

var (
	// NoAccess permits nothing.
	NoAccess = AccessType{}
	// Read is read-only.
	Read = AccessType{Read: true}
	// Write is write-only (on x86 a writable mapping is also readable).
	Write = AccessType{Write: true}
	// Execute is execute-only.
	Execute = AccessType{Execute: true}
	// ReadWrite permits reads and writes.
	ReadWrite = AccessType{Read: true, Write: true}
	// AnyAccess permits everything.
	AnyAccess = AccessType{Read: true, Write: true, Execute: true}
)

// Any reports whether any access is permitted.
func (a AccessType) Any() bool { return a.Read || a.Write || a.Execute }

// SupersetOf reports whether a permits everything o does.
func (a AccessType) SupersetOf(o AccessType) bool {
	return (a.Read || !o.Read) && (a.Write || !o.Write) && (a.Execute || !o.Execute)
}

// Intersect returns the accesses permitted by both a and o.
func (a AccessType) Intersect(o AccessType) AccessType {
	return AccessType{a.Read && o.Read, a.Write && o.Write, a.Execute && o.Execute}
}

// Union returns the accesses permitted by either a or o.
func (a AccessType) Union(o AccessType) AccessType {
	return AccessType{a.Read || o.Read, a.Write || o.Write, a.Execute || o.Execute}
}

// Prot returns the PROT_* bits for a.
func (a AccessType) Prot() int {
	p := 0
	if a.Read {
		p |= 0x1
	}
	if a.Write {
		p |= 0x2
	}
	if a.Execute {
		p |= 0x4
	}
	return p
}

// AccessTypeFromProt converts PROT_* bits.
func AccessTypeFromProt(prot int) AccessType {
	return AccessType{Read: prot&0x1 != 0, Write: prot&0x2 != 0, Execute: prot&0x4 != 0}
}

func (a AccessType) String() string {
	b := []byte("---")
	if a.Read {
		b[0] = 'r'
	}
	if a.Write {
		b[1] = 'w'
	}
	if a.Execute {
		b[2] = 'x'
	}
	return string(b)
}
