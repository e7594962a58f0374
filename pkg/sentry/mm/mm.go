// Package mm owns an application's address space: the virtual memory areas
// it asked for (mmap, brk, the stack), the pages that back them in the
// memory file, demand paging, copy-on-write after fork, and copying to and
// from application memory for the Sentry (usermem.IO).
//
// Two layers are kept apart. VMAs say what the application may access; the
// page table (pages) says which memory-file page backs each resident page.
// Mapping pages into a platform AddressSpace is a separate, optional step:
// a MemoryManager without one (unit tests) still serves faults and copies,
// and one with one maps pages there as faults are handled.
package mm

import (
	"context"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
)

// Layout is where the address space puts things it chooses itself.
type Layout struct {
	// MinAddr and MaxAddr bound every mapping.
	MinAddr, MaxAddr hostarch.Addr
	// MmapBase is where top-down mmap placement starts searching.
	MmapBase hostarch.Addr
	// StackTop is the (exclusive) top of the initial stack.
	StackTop hostarch.Addr
}

// Tunables from Linux's defaults.
const (
	// stackGuardGap keeps other mappings this far below a MAP_GROWSDOWN
	// mapping so it can grow (stack_guard_gap, 256 pages).
	stackGuardGap = 256 * hostarch.PageSize
	// maxStackSize is the default RLIMIT_STACK, the limit of stack growth.
	maxStackSize = 8 << 20
	// faultAroundPages is how many absent anonymous pages one fault
	// allocates and maps at once, to spare the platform round trips.
	faultAroundPages = 16
)

// page is one resident page of the address space.
type page struct {
	// off is the page's offset in the memory file.
	off uint64
	// owned: this address space holds a reference on the page (private
	// anonymous memory or a private copy). Pages that are not owned
	// belong to a Mappable, which keeps them alive.
	owned bool
	// cow: the page may be shared with another address space (after
	// fork), so a write must copy it first.
	cow bool
	// mapped: the page is mapped in the platform AddressSpace.
	mapped bool
	// mappedWritable: it is mapped there with write access.
	mappedWritable bool
}

// MemoryManager is one application address space, shared by the threads of
// a process. Its lock is its own: two processes never contend.
type MemoryManager struct {
	mf *pgalloc.MemoryFile

	mu     sync.Mutex
	layout Layout
	vmas   []*vma
	pages  map[hostarch.Addr]*page
	as     platform.AddressSpace
	// brkStart is the bottom of the heap, brkEnd the current break
	// (not page aligned; the heap VMA ends at brkEnd rounded up).
	brkStart, brkEnd hostarch.Addr
	// users counts the tasks and other holders (IncUsers/DecUsers); the
	// last one out releases everything.
	users int
	// limitAS and limitData are RLIMIT_AS and RLIMIT_DATA (limits.go).
	limitAS, limitData uint64
	// exe is the file the address space's program was loaded from
	// (Linux's mm->exe_file): /proc/[pid]/exe. One reference is held.
	exe Executable
}

// Executable is a reference-counted handle on the file a program was
// loaded from (in the kernel, a vfs.VirtualDentry). mm keeps it opaque so
// that it need not know the VFS.
type Executable interface {
	IncRef()
	DecRef(ctx context.Context)
}

// New returns an empty address space whose anonymous memory comes from mf.
func New(mf *pgalloc.MemoryFile, layout Layout) *MemoryManager {
	return &MemoryManager{
		mf:     mf,
		layout: layout,
		pages:  make(map[hostarch.Addr]*page),
		users:  1,
	}
}

// MemoryFile returns the memory file backing anonymous memory.
func (mm *MemoryManager) MemoryFile() *pgalloc.MemoryFile { return mm.mf }

// Layout returns the address space's layout.
func (mm *MemoryManager) Layout() Layout {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.layout
}

// SetLayout replaces the layout (exec chooses a fresh one).
func (mm *MemoryManager) SetLayout(l Layout) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.layout = l
}

// SetAddressSpace makes mm map faulted pages into as (nil detaches). Pages
// already resident are mapped lazily, on their next fault.
func (mm *MemoryManager) SetAddressSpace(as platform.AddressSpace) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.as = as
	for _, p := range mm.pages {
		p.mapped, p.mappedWritable = false, false
	}
}

// AddressSpace returns the platform address space, or nil.
func (mm *MemoryManager) AddressSpace() platform.AddressSpace {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return mm.as
}

// IncUsers adds a user (a thread sharing the address space).
func (mm *MemoryManager) IncUsers() {
	mm.mu.Lock()
	mm.users++
	mm.mu.Unlock()
}

// DecUsers drops a user; the last one releases every mapping, page and the
// platform address space.
func (mm *MemoryManager) DecUsers(ctx context.Context) {
	mm.mu.Lock()
	mm.users--
	if mm.users > 0 {
		mm.mu.Unlock()
		return
	}
	if mm.users < 0 {
		mm.mu.Unlock()
		panic("mm: DecUsers without a user")
	}
	mm.removeRangeLocked(ctx, hostarch.AddrRange{Start: 0, End: ^hostarch.Addr(0)})
	as := mm.as
	mm.as = nil
	exe := mm.exe
	mm.exe = nil
	mm.mu.Unlock()
	if as != nil {
		as.Release()
	}
	if exe != nil {
		exe.DecRef(ctx)
	}
}

// SetExecutable records the file the program was loaded from, taking over
// the caller's reference, and drops the previous one.
func (mm *MemoryManager) SetExecutable(ctx context.Context, e Executable) {
	mm.mu.Lock()
	old := mm.exe
	mm.exe = e
	mm.mu.Unlock()
	if old != nil {
		old.DecRef(ctx)
	}
}

// ExecutableRef returns the file the program was loaded from with a new
// reference (the caller releases it), or nil if none was recorded.
func (mm *MemoryManager) ExecutableRef() Executable {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.exe != nil {
		mm.exe.IncRef()
	}
	return mm.exe
}

// SetBrkStart sets the bottom of the heap (exec, after loading).
func (mm *MemoryManager) SetBrkStart(addr hostarch.Addr) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.brkStart, mm.brkEnd = addr, addr
}

// BrkRange returns [heap bottom, current break).
func (mm *MemoryManager) BrkRange() hostarch.AddrRange {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return hostarch.AddrRange{Start: mm.brkStart, End: mm.brkEnd}
}

// ResidentPages returns how many pages are resident, for tests and
// /proc/[pid]/statm.
func (mm *MemoryManager) ResidentPages() int {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return len(mm.pages)
}

// MappingInfo describes one VMA for /proc/[pid]/maps and tests.
type MappingInfo struct {
	Range     hostarch.AddrRange
	Perms     hostarch.AccessType
	MaxPerms  hostarch.AccessType
	Private   bool
	GrowsDown bool
	Offset    uint64
	Anonymous bool
	Hint      string
}

func (v *vma) info() MappingInfo {
	return MappingInfo{
		Range: v.rng(), Perms: v.perms, MaxPerms: v.maxPerms, Private: v.private,
		GrowsDown: v.growsDown, Offset: v.off, Anonymous: v.mappable == nil, Hint: v.hint,
	}
}

func (m MappingInfo) String() string {
	s := byte('p')
	if !m.Private {
		s = 's'
	}
	return fmt.Sprintf("%v %v%c %#x %s", m.Range, m.Perms, s, m.Offset, m.Hint)
}

// Mappings lists the VMAs in address order.
func (mm *MemoryManager) Mappings() []MappingInfo {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	out := make([]MappingInfo, len(mm.vmas))
	for i, v := range mm.vmas {
		out[i] = v.info()
	}
	return out
}

// invalidate implements memmap.MappingSpace.
type mappingSpace MemoryManager

// Invalidate implements memmap.MappingSpace.Invalidate: forget translations
// in ar so that the next access re-translates.
func (ms *mappingSpace) Invalidate(ar hostarch.AddrRange, opts memmap.InvalidateOpts) {
	mm := (*MemoryManager)(ms)
	mm.mu.Lock()
	defer mm.mu.Unlock()
	mm.dropPagesLocked(ar, func(p *page) bool { return !p.owned || opts.InvalidatePrivate })
}

func (mm *MemoryManager) mappingSpace() memmap.MappingSpace { return (*mappingSpace)(mm) }
