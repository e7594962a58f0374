// Package loader owns execve's image loading: it recognises ELF64 x86-64
// executables (static, static-PIE, and dynamic ones with a PT_INTERP
// interpreter) and "#!" scripts, maps their segments into a fresh
// mm.MemoryManager, chooses the randomized layout (stack top, mmap base,
// PIE base, break), and builds the initial stack with argv, envp and the
// auxiliary vector that the C runtime reads.
//
// It reads files only through the small File interface, so it works on any
// file the kernel can open (a vfs.FileDescription, or an in-memory image in
// tests).
package loader

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/vdso"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// File is an executable file as the loader needs it.
type File interface {
	// ReadAt reads like io.ReaderAt (a short read at the end of the file
	// returns io.EOF or nil).
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	// ConfigureMMap fills in opts.Mappable and opts.MappingIdentity so
	// the file's pages can be mapped.
	ConfigureMMap(ctx context.Context, opts *memmap.MMapOpts) error
}

// releaser is implemented by files the loader must release after use
// (vfs.FileDescription, mm.MemoryObject): files the Opener returned are
// dropped once loaded; the mappings keep their own references.
type releaser interface {
	DecRef(ctx context.Context)
}

func release(ctx context.Context, f File) {
	if r, ok := f.(releaser); ok {
		r.DecRef(ctx)
	}
}

// ExecutableFile is implemented by files that can name themselves to
// the address space they are loaded into (/proc/[pid]/exe): Executable
// returns a new reference.
type ExecutableFile interface {
	Executable() mm.Executable
}

// NamedFile is implemented by files that know the path /proc/[pid]/maps
// shows for their mappings.
type NamedFile interface {
	MappingName() string
}

// Opener opens the files an executable names: its ELF interpreter and a
// script's interpreter. It checks execute permission as execve does. The
// loader releases (DecRef) what it returns once loading is done.
type Opener interface {
	OpenExecutable(ctx context.Context, path string) (File, error)
}

// Args is one execve.
type Args struct {
	// MM is the fresh address space to load into.
	MM *mm.MemoryManager
	// Opener resolves PT_INTERP and "#!" interpreters.
	Opener Opener
	// Filename is the path given to execve; File, if not nil, is that
	// file already opened (otherwise Opener opens Filename).
	Filename string
	File     File
	Argv     []string
	Envv     []string
	// Creds gives linux.AT_UID/linux.AT_EUID/linux.AT_GID/linux.AT_EGID; nil means root.
	Creds *auth.Credentials
	// Secure is linux.AT_SECURE (a set-ID exec).
	Secure bool
	// Random supplies linux.AT_RANDOM and the layout's randomization; nil
	// means crypto/rand. Tests pass a deterministic reader.
	Random io.Reader
	// NoRandomize is personality(2)'s ADDR_NO_RANDOMIZE: the stack top,
	// mmap base, PIE load address and break take their unrandomized
	// places (linux.AT_RANDOM's bytes still come from Random).
	NoRandomize bool
	// HWCap and HWCap2 are linux.AT_HWCAP/linux.AT_HWCAP2; MinSigStkSz is
	// linux.AT_MINSIGSTKSZ. Zero values take the host's (see HostAuxv).
	HWCap, HWCap2, MinSigStkSz uint64
	// SysinfoEhdr, if not zero, is the vDSO's address (linux.AT_SYSINFO_EHDR),
	// for when the kernel maps one before the stack is built.
	SysinfoEhdr hostarch.Addr
	// VDSO, if not nil, is mapped ([vvar] and [vdso]) after the
	// executable and its interpreter, at the top of the free space below
	// the (randomized) mmap base as Linux places it, and
	// linux.AT_SYSINFO_EHDR names it.
	VDSO *vdso.VDSO
}

// Result is what the kernel needs to start the new image.
type Result struct {
	// Entry is where the thread starts: the interpreter's entry point
	// if there is one, else the executable's.
	Entry hostarch.Addr
	// Stack is the initial stack and where things are on it.
	Stack StackLayout
	// Argv is the final argument list (after "#!" rewriting).
	Argv []string
	// Filename is the path of the ELF file finally loaded.
	Filename string
	// ExecEntry, Phdr and Phnum describe the executable (linux.AT_ENTRY,
	// linux.AT_PHDR, linux.AT_PHNUM); Bias is its load bias.
	ExecEntry hostarch.Addr
	Phdr      hostarch.Addr
	Phnum     int
	Bias      hostarch.Addr
	// Interp is the PT_INTERP path and InterpBase its load address
	// (linux.AT_BASE); both zero without one.
	Interp     string
	InterpBase hostarch.Addr
	// BrkStart is the bottom of the heap.
	BrkStart hostarch.Addr
}

// Limits of script interpretation (fs/binfmt_script.c, include/linux/binfmts.h).
const (
	// binprmBufSize is how much of the file's start execve looks at.
	binprmBufSize = 256
	// maxInterpreterDepth is how many "#!" levels may nest (ELOOP past it).
	maxInterpreterDepth = 4
)

// Address-space layout constants (arch/x86).
const (
	// elfETDynBase is where a PIE executable with an interpreter goes
	// before randomization: 2/3 of the 47-bit address space.
	elfETDynBase = 0x555555554000
	// mmapRandomPages bounds the mmap-base and PIE randomization
	// (mmap_rnd_bits = 28).
	mmapRandomPages = 1 << 28
	// stackRandomPages bounds stack-top randomization (22 bits of pages).
	stackRandomPages = 1 << 22
	// minMmapGap is the least room left below the stack for it to grow.
	minMmapGap = 128 << 20
	// brkRandomBytes bounds the break's randomization (32 MiB).
	brkRandomBytes = 32 << 20
	// initialStackSize is the stack VMA's size before it grows.
	initialStackSize = 128 << 10
)

// randUint64 reads a uniformly random value below n (n a power of two).
func randUint64(r io.Reader, n uint64) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("reading randomness: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]) & (n - 1), nil
}

// RandomLayout chooses a randomized layout in [minAddr, maxAddr) the way
// Linux does: the stack top up to 16 GiB below the top of the address
// space, the mmap base a gap of at least 128 MiB plus up to 1 TiB below
// that.
func RandomLayout(r io.Reader, minAddr, maxAddr hostarch.Addr) (mm.Layout, error) {
	if r == nil {
		r = rand.Reader
	}
	s, err := randUint64(r, stackRandomPages)
	if err != nil {
		return mm.Layout{}, err
	}
	m, err := randUint64(r, mmapRandomPages)
	if err != nil {
		return mm.Layout{}, err
	}
	top := maxAddr.RoundDown() - hostarch.Addr(s*hostarch.PageSize)
	base := maxAddr.RoundDown() - hostarch.Addr(stackRandomPages*hostarch.PageSize+minMmapGap) - hostarch.Addr(m*hostarch.PageSize)
	return mm.Layout{MinAddr: minAddr, MaxAddr: maxAddr, MmapBase: base, StackTop: top}, nil
}

// readFull reads len(p) bytes at off or fails with ENOEXEC-worthy errors.
func readFull(ctx context.Context, f File, p []byte, off int64) (int, error) {
	n, err := f.ReadAt(ctx, p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// Load performs the image-loading part of execve into args.MM, which must
// be empty. The address space's layout is replaced by a random one
// (unless args.NoRandomize).
func Load(ctx context.Context, args Args) (*Result, error) {
	if args.Random == nil {
		args.Random = rand.Reader
	}
	f := args.File
	filename := args.Filename
	argv := append([]string(nil), args.Argv...)
	if f == nil {
		if args.Opener == nil {
			return nil, fmt.Errorf("%q: no opener: %w", filename, unix.ENOENT)
		}
		var err error
		if f, err = args.Opener.OpenExecutable(ctx, filename); err != nil {
			return nil, err
		}
		defer release(ctx, f)
	}
	// Resolve "#!" scripts down to an ELF file.
	var hdr []byte
	for depth := 0; ; depth++ {
		hdr = make([]byte, binprmBufSize)
		n, err := f.ReadAt(ctx, hdr, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %q: %w", filename, err)
		}
		hdr = hdr[:n]
		if n < 2 || hdr[0] != '#' || hdr[1] != '!' {
			break
		}
		if depth >= maxInterpreterDepth {
			return nil, fmt.Errorf("%q: too many levels of interpreters: %w", filename, unix.ELOOP)
		}
		interp, arg, err := ParseShebang(hdr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", filename, err)
		}
		// argv becomes: interpreter, [arg], script path, argv[1:].
		next := []string{interp}
		if arg != "" {
			next = append(next, arg)
		}
		next = append(next, filename)
		if len(argv) > 1 {
			next = append(next, argv[1:]...)
		}
		argv = next
		if args.Opener == nil {
			return nil, fmt.Errorf("%q needs interpreter %q but there is no opener: %w", filename, interp, unix.ENOENT)
		}
		if f, err = args.Opener.OpenExecutable(ctx, interp); err != nil {
			return nil, fmt.Errorf("opening interpreter %q: %w", interp, err)
		}
		defer release(ctx, f)
		filename = interp
	}

	info, err := readELF(ctx, f, hdr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", filename, err)
	}

	m := args.MM
	// layoutRandom feeds every layout choice; AT_RANDOM reads args.Random.
	layoutRandom := args.Random
	if args.NoRandomize {
		layoutRandom = zeroReader{}
	}
	layout, err := RandomLayout(layoutRandom, m.Layout().MinAddr, m.Layout().MaxAddr)
	if err != nil {
		return nil, err
	}
	m.SetLayout(layout)

	res := &Result{Argv: argv, Filename: filename, Phnum: info.Phnum, Interp: info.Interp}
	var bias hostarch.Addr
	if info.Dynamic {
		if info.Interp != "" {
			r, err := randUint64(layoutRandom, mmapRandomPages)
			if err != nil {
				return nil, err
			}
			bias = hostarch.Addr(elfETDynBase + r*hostarch.PageSize)
		} else {
			start, end := info.span()
			a, ok := m.FindAvailable(end - start)
			if !ok {
				return nil, fmt.Errorf("no room for %q: %w", filename, unix.ENOMEM)
			}
			bias = a - hostarch.Addr(start)
		}
	}
	if err := mapSegments(ctx, m, f, &info, bias); err != nil {
		return nil, fmt.Errorf("mapping %q: %w", filename, err)
	}
	// The ELF file finally loaded (a script's interpreter, not the
	// script) is the process's executable, as Linux's exe_file.
	if ef, ok := f.(ExecutableFile); ok {
		if e := ef.Executable(); e != nil {
			m.SetExecutable(ctx, e)
		}
	}
	res.Bias = bias
	res.ExecEntry = hostarch.Addr(info.Entry) + bias
	res.Entry = res.ExecEntry
	if pa, ok := info.phdrAddr(); ok {
		res.Phdr = hostarch.Addr(pa) + bias
	}
	_, end := info.span()
	brk := hostarch.Addr(end) + bias
	r, err := randUint64(layoutRandom, brkRandomBytes/hostarch.PageSize)
	if err != nil {
		return nil, err
	}
	res.BrkStart = brk + hostarch.Addr(r*hostarch.PageSize)
	m.SetBrkStart(res.BrkStart)

	if info.Interp != "" {
		if args.Opener == nil {
			return nil, fmt.Errorf("%q needs interpreter %q but there is no opener: %w", filename, info.Interp, unix.ENOENT)
		}
		inf, err := args.Opener.OpenExecutable(ctx, info.Interp)
		if err != nil {
			return nil, fmt.Errorf("opening ELF interpreter %q: %w", info.Interp, err)
		}
		defer release(ctx, inf)
		ihdr := make([]byte, elfHeaderSize)
		if _, err := readFull(ctx, inf, ihdr, 0); err != nil {
			return nil, fmt.Errorf("reading ELF interpreter %q: %w", info.Interp, unix.ELIBBAD)
		}
		iinfo, err := readELF(ctx, inf, ihdr)
		if err != nil {
			return nil, fmt.Errorf("ELF interpreter %q: %w", info.Interp, err)
		}
		if iinfo.Interp != "" {
			return nil, fmt.Errorf("ELF interpreter %q has an interpreter itself: %w", info.Interp, unix.ELIBBAD)
		}
		var ibias hostarch.Addr
		if iinfo.Dynamic {
			start, end := iinfo.span()
			a, ok := m.FindAvailable(end - start)
			if !ok {
				return nil, fmt.Errorf("no room for interpreter %q: %w", info.Interp, unix.ENOMEM)
			}
			ibias = a - hostarch.Addr(start)
		}
		if err := mapSegments(ctx, m, inf, &iinfo, ibias); err != nil {
			return nil, fmt.Errorf("mapping interpreter %q: %w", info.Interp, err)
		}
		start, _ := iinfo.span()
		res.InterpBase = hostarch.Addr(start) + ibias
		res.Entry = hostarch.Addr(iinfo.Entry) + ibias
	}

	if args.VDSO != nil {
		addr, err := args.VDSO.Map(ctx, m)
		if err != nil {
			return nil, err
		}
		args.SysinfoEhdr = addr
	}

	// The stack.
	stackPerms := hostarch.ReadWrite
	if info.ExecStack {
		stackPerms = hostarch.AnyAccess
	}
	argBytes := uint64(0)
	for _, s := range append(append([]string(nil), argv...), args.Envv...) {
		argBytes += uint64(len(s)) + 1 + pointerSize
	}
	stackSize, _ := hostarch.PageRoundUp(initialStackSize + argBytes + uint64(len(args.Filename)) + 1024)
	if _, err := m.MMap(ctx, memmap.MMapOpts{
		Length: stackSize, Addr: layout.StackTop - hostarch.Addr(stackSize), Fixed: true,
		Private: true, GrowsDown: true, Perms: stackPerms, MaxPerms: hostarch.AnyAccess, Hint: "[stack]",
	}); err != nil {
		return nil, fmt.Errorf("mapping the stack: %w", err)
	}

	var random [randomDataLen]byte
	if _, err := io.ReadFull(args.Random, random[:]); err != nil {
		return nil, fmt.Errorf("reading linux.AT_RANDOM: %w", err)
	}
	creds := args.Creds
	if creds == nil {
		creds = auth.NewRoot()
	}
	host := HostAuxv()
	hwcap, hwcap2, minsig := args.HWCap, args.HWCap2, args.MinSigStkSz
	if hwcap == 0 {
		hwcap = host[linux.AT_HWCAP]
	}
	if minsig == 0 {
		minsig = host[linux.AT_MINSIGSTKSZ]
		if minsig == 0 {
			minsig = 2048
		}
	}
	secure := uint64(0)
	if args.Secure {
		secure = 1
	}
	auxv := []AuxEntry{}
	if args.SysinfoEhdr != 0 {
		auxv = append(auxv, AuxEntry{linux.AT_SYSINFO_EHDR, uint64(args.SysinfoEhdr)})
	}
	auxv = append(auxv,
		AuxEntry{linux.AT_MINSIGSTKSZ, minsig},
		AuxEntry{linux.AT_HWCAP, hwcap},
		AuxEntry{linux.AT_PAGESZ, hostarch.PageSize},
		AuxEntry{linux.AT_CLKTCK, 100},
		AuxEntry{linux.AT_PHDR, uint64(res.Phdr)},
		AuxEntry{linux.AT_PHENT, elfPhdrSize},
		AuxEntry{linux.AT_PHNUM, uint64(res.Phnum)},
		AuxEntry{linux.AT_BASE, uint64(res.InterpBase)},
		AuxEntry{linux.AT_FLAGS, 0},
		AuxEntry{linux.AT_ENTRY, uint64(res.ExecEntry)},
		AuxEntry{linux.AT_UID, uint64(creds.RealUID)},
		AuxEntry{linux.AT_EUID, uint64(creds.EffectiveUID)},
		AuxEntry{linux.AT_GID, uint64(creds.RealGID)},
		AuxEntry{linux.AT_EGID, uint64(creds.EffectiveGID)},
		AuxEntry{linux.AT_SECURE, secure},
		AuxEntry{linux.AT_HWCAP2, hwcap2},
	)
	sl, err := buildStack(ctx, m, layout.StackTop, argv, args.Envv, args.Filename, random, auxv)
	if err != nil {
		return nil, err
	}
	res.Stack = sl
	return res, nil
}

// readELF parses an ELF file whose first bytes are hdr, and reads its
// program headers and interpreter path.
func readELF(ctx context.Context, f File, hdr []byte) (elfInfo, error) {
	info, err := parseELFHeader(hdr)
	if err != nil {
		return info, err
	}
	phdrs := make([]byte, info.Phnum*elfPhdrSize)
	if _, err := readFull(ctx, f, phdrs, int64(info.Phoff)); err != nil {
		return info, fmt.Errorf("reading program headers: %w", unix.ENOEXEC)
	}
	if err := parsePhdrs(&info, phdrs); err != nil {
		return info, err
	}
	if info.interpLen != 0 {
		b := make([]byte, info.interpLen)
		if _, err := readFull(ctx, f, b, int64(info.interpOff)); err != nil {
			return info, fmt.Errorf("reading PT_INTERP: %w", unix.ENOEXEC)
		}
		if b[len(b)-1] != 0 {
			return info, fmt.Errorf("PT_INTERP not NUL-terminated: %w", unix.ENOEXEC)
		}
		s := string(b[:len(b)-1])
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				return info, fmt.Errorf("PT_INTERP has an embedded NUL: %w", unix.ENOEXEC)
			}
		}
		info.Interp = s
	}
	return info, nil
}

// mapSegments maps info's PT_LOAD segments at bias: file-backed private
// mappings for the file part, the rest of the last file page zeroed, and
// anonymous memory for the remainder of memsz (.bss).
func mapSegments(ctx context.Context, m *mm.MemoryManager, f File, info *elfInfo, bias hostarch.Addr) error {
	for _, s := range info.Segments {
		start := hostarch.Addr(s.Vaddr) + bias
		fileEnd := start + hostarch.Addr(s.Filesz)
		memEnd := start + hostarch.Addr(s.Memsz)
		if start < bias || memEnd < start {
			return fmt.Errorf("segment at %#x overflows with bias %v: %w", s.Vaddr, bias, unix.ENOEXEC)
		}
		pageStart := start.RoundDown()
		fileMapEnd, ok1 := fileEnd.RoundUp()
		memMapEnd, ok2 := memEnd.RoundUp()
		if !ok1 || !ok2 {
			return fmt.Errorf("segment at %#x: %w", s.Vaddr, unix.ENOEXEC)
		}
		if s.Filesz > 0 {
			opts := memmap.MMapOpts{
				Length: uint64(fileMapEnd - pageStart), Offset: hostarch.PageRoundDown(s.Offset),
				Addr: pageStart, Fixed: true, Unmap: true, Private: true,
				Perms: s.Perms, MaxPerms: hostarch.AnyAccess,
			}
			if nf, ok := f.(NamedFile); ok {
				opts.Hint = nf.MappingName()
			}
			if err := f.ConfigureMMap(ctx, &opts); err != nil {
				return fmt.Errorf("configuring mmap: %w", err)
			}
			if _, err := m.MMap(ctx, opts); err != nil {
				return fmt.Errorf("mapping segment at %v: %w", pageStart, err)
			}
			if memEnd > fileEnd && fileEnd.PageOffset() != 0 {
				n := int64(fileMapEnd - fileEnd)
				if s.Perms.Write {
					if _, err := m.ZeroOut(ctx, fileEnd, n, usermem.IOOpts{IgnorePermissions: true}); err != nil {
						return fmt.Errorf("zeroing .bss head at %v: %w", fileEnd, err)
					}
				}
			}
		} else {
			fileMapEnd = pageStart
		}
		if memMapEnd > fileMapEnd {
			if _, err := m.MMap(ctx, memmap.MMapOpts{
				Length: uint64(memMapEnd - fileMapEnd), Addr: fileMapEnd, Fixed: true, Unmap: true,
				Private: true, Perms: s.Perms, MaxPerms: hostarch.AnyAccess,
			}); err != nil {
				return fmt.Errorf("mapping .bss at %v: %w", fileMapEnd, err)
			}
		}
	}
	return nil
}

// zeroReader reads zeros: with it every randomized choice of the layout
// takes its lowest value, which is Linux's unrandomized layout.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
