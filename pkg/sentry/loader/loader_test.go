package loader

import (
	"bytes"
	"carapace.dev/carapace/pkg/abi/linux"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/memmap"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vdso"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// imageFile is a loader.File over a memory object holding a file's bytes.
type imageFile struct{ obj *mm.MemoryObject }

func (f imageFile) ReadAt(_ context.Context, p []byte, off int64) (int, error) {
	return f.obj.ReadAt(p, off)
}

func (f imageFile) DecRef(ctx context.Context) { f.obj.DecRef(ctx) }

func (f imageFile) ConfigureMMap(ctx context.Context, opts *memmap.MMapOpts) error {
	return f.obj.ConfigureMMap(ctx, opts)
}

// testFS maps paths to contents (host files read on demand, or given bytes).
type testFS struct {
	t     *testing.T
	mf    *pgalloc.MemoryFile
	files map[string][]byte
	// vdso, if set, is mapped into every address space loaded.
	vdso *vdso.VDSO
}

func (fs *testFS) OpenExecutable(ctx context.Context, path string) (File, error) {
	data, ok := fs.files[path]
	if !ok {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, unix.ENOENT
		}
	}
	obj, err := mm.NewMemoryObject(fs.mf, uint64(max(len(data), 1)))
	if err != nil {
		return nil, err
	}
	if _, err := obj.WriteAt(data, 0); err != nil {
		return nil, err
	}
	return imageFile{obj}, nil
}

type loaded struct {
	res   *Result
	mm    *mm.MemoryManager
	argc  uint64
	argv  []string
	envv  []string
	auxv  map[uint64]uint64
	order []uint64
}

func newFS(t *testing.T) *testFS {
	mf, err := pgalloc.New("loader-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	return &testFS{t: t, mf: mf, files: map[string][]byte{}}
}

func (fs *testFS) load(path string, argv, envv []string) (*loaded, error) {
	ctx := context.Background()
	m := mm.New(fs.mf, mm.Layout{MinAddr: 0x10000, MaxAddr: hostarch.MaxUserAddress})
	fs.t.Cleanup(func() { m.DecUsers(ctx) })
	res, err := Load(ctx, Args{MM: m, Opener: fs, Filename: path, Argv: argv, Envv: envv,
		Creds: auth.NewUser(1000, 1001, nil), VDSO: fs.vdso})
	if err != nil {
		return nil, err
	}
	l := &loaded{res: res, mm: m, auxv: map[uint64]uint64{}}
	word := func(a hostarch.Addr) uint64 {
		var b [8]byte
		if _, err := m.CopyIn(ctx, a, b[:], usermem.IOOpts{}); err != nil {
			fs.t.Fatalf("reading stack at %v: %v", a, err)
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	str := func(a hostarch.Addr) string {
		var out []byte
		b := make([]byte, 1)
		for ; ; a++ {
			if _, err := m.CopyIn(ctx, a, b, usermem.IOOpts{}); err != nil {
				fs.t.Fatalf("reading string at %v: %v", a, err)
			}
			if b[0] == 0 {
				return string(out)
			}
			out = append(out, b[0])
		}
	}
	sp := res.Stack.SP
	l.argc = word(sp)
	p := sp + 8
	for ; word(p) != 0; p += 8 {
		l.argv = append(l.argv, str(hostarch.Addr(word(p))))
	}
	for p += 8; word(p) != 0; p += 8 {
		l.envv = append(l.envv, str(hostarch.Addr(word(p))))
	}
	for p += 8; ; p += 16 {
		k, v := word(p), word(p+8)
		l.order = append(l.order, k)
		if k == linux.AT_NULL {
			break
		}
		l.auxv[k] = v
	}
	return l, nil
}

// checkCommon checks what every loaded image must satisfy.
func checkCommon(t *testing.T, l *loaded, path string, argv, envv []string, f *elf.File, bias uint64) {
	t.Helper()
	ctx := context.Background()
	if l.res.Stack.SP%16 != 0 {
		t.Errorf("initial sp %v not 16-byte aligned", l.res.Stack.SP)
	}
	if int(l.argc) != len(argv) || !equalStrings(l.argv, argv) || !equalStrings(l.envv, envv) {
		t.Errorf("stack argc=%d argv=%q envv=%q, want %q %q", l.argc, l.argv, l.envv, argv, envv)
	}
	want := map[uint64]uint64{
		linux.AT_PAGESZ: 4096, linux.AT_CLKTCK: 100, linux.AT_PHENT: 56, linux.AT_PHNUM: uint64(len(f.Progs)),
		linux.AT_ENTRY: f.Entry + bias, linux.AT_UID: 1000, linux.AT_EUID: 1000, linux.AT_GID: 1001, linux.AT_EGID: 1001, linux.AT_SECURE: 0,
	}
	for k, v := range want {
		if got, ok := l.auxv[k]; !ok || got != v {
			t.Errorf("auxv[%d] = %#x (present %v), want %#x", k, got, ok, v)
		}
	}
	if l.order[len(l.order)-1] != linux.AT_NULL {
		t.Error("auxv does not end in linux.AT_NULL")
	}
	for _, k := range []uint64{linux.AT_HWCAP, linux.AT_HWCAP2, linux.AT_MINSIGSTKSZ, linux.AT_RANDOM, linux.AT_PLATFORM, linux.AT_EXECFN, linux.AT_BASE, linux.AT_PHDR} {
		if _, ok := l.auxv[k]; !ok {
			t.Errorf("auxv lacks key %d", k)
		}
	}
	// linux.AT_PHDR points at a copy of the program headers.
	var phoff uint64
	raw, _ := os.ReadFile(path)
	phoff = binary.LittleEndian.Uint64(raw[32:])
	got := make([]byte, 56*len(f.Progs))
	if _, err := l.mm.CopyIn(ctx, hostarch.Addr(l.auxv[linux.AT_PHDR]), got, usermem.IOOpts{}); err != nil {
		t.Fatalf("reading linux.AT_PHDR: %v", err)
	}
	if !bytes.Equal(got, raw[phoff:phoff+uint64(len(got))]) {
		t.Error("memory at linux.AT_PHDR differs from the file's program headers")
	}
	// linux.AT_RANDOM: 16 readable bytes; linux.AT_PLATFORM and linux.AT_EXECFN strings.
	rnd := make([]byte, 16)
	if _, err := l.mm.CopyIn(ctx, hostarch.Addr(l.auxv[linux.AT_RANDOM]), rnd, usermem.IOOpts{}); err != nil || bytes.Equal(rnd, make([]byte, 16)) {
		t.Errorf("linux.AT_RANDOM bytes %x, %v", rnd, err)
	}
	plat := make([]byte, 7)
	l.mm.CopyIn(ctx, hostarch.Addr(l.auxv[linux.AT_PLATFORM]), plat, usermem.IOOpts{})
	if string(plat) != "x86_64\x00" {
		t.Errorf("linux.AT_PLATFORM string %q", plat)
	}
	// Every file-backed PT_LOAD's bytes are where they belong, and
	// .bss is zero.
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		mem := make([]byte, p.Memsz)
		if _, err := l.mm.CopyIn(ctx, hostarch.Addr(p.Vaddr+bias), mem, usermem.IOOpts{IgnorePermissions: true}); err != nil {
			t.Fatalf("reading segment at %#x: %v", p.Vaddr+bias, err)
		}
		if !bytes.Equal(mem[:p.Filesz], raw[p.Off:p.Off+p.Filesz]) {
			t.Errorf("segment at %#x differs from the file", p.Vaddr+bias)
		}
		if !bytes.Equal(mem[p.Filesz:], make([]byte, p.Memsz-p.Filesz)) {
			t.Errorf("segment at %#x: .bss not zero", p.Vaddr+bias)
		}
	}
	// The stack mapping exists and the break lies above the image.
	if l.res.BrkStart < hostarch.Addr(bias) || !l.res.BrkStart.IsPageAligned() {
		t.Errorf("brk start %v", l.res.BrkStart)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadDynamicPIE(t *testing.T) {
	const path = "/bin/true"
	f, err := elf.Open(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Skipf("%s is not PIE", path)
	}
	fs := newFS(t)
	argv, envv := []string{"true", "--x"}, []string{"A=1", "PATH=/bin"}
	l, err := fs.load(path, argv, envv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	bias := uint64(l.res.Bias)
	if bias < elfETDynBase || bias%4096 != 0 {
		t.Fatalf("PIE bias %#x", bias)
	}
	checkCommon(t, l, path, argv, envv, f, bias)
	var interp string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz-1)
			p.ReadAt(b, 0)
			interp = string(b)
		}
	}
	if l.res.Interp != interp || interp == "" {
		t.Fatalf("interp %q, want %q", l.res.Interp, interp)
	}
	ld, err := elf.Open(interp)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Close()
	base := l.auxv[linux.AT_BASE]
	if base == 0 || base != uint64(l.res.InterpBase) || uint64(l.res.Entry) != base+ld.Entry {
		t.Fatalf("linux.AT_BASE %#x, entry %v; want entry = base + %#x", base, l.res.Entry, ld.Entry)
	}
	if l.auxv[linux.AT_PHDR] < bias || l.auxv[linux.AT_PHDR] > bias+1<<20 {
		t.Fatalf("linux.AT_PHDR %#x not in the image at %#x", l.auxv[linux.AT_PHDR], bias)
	}
	// The interpreter's bytes are mapped at its base.
	raw, _ := os.ReadFile(interp)
	got := make([]byte, 64)
	l.mm.CopyIn(context.Background(), hostarch.Addr(base), got, usermem.IOOpts{})
	if !bytes.Equal(got, raw[:64]) {
		t.Fatal("interpreter header not mapped at linux.AT_BASE")
	}
	// Layout: stack at the top, interpreter below the mmap base.
	lay := l.mm.Layout()
	if l.res.Stack.SP >= lay.StackTop || l.res.Stack.SP < lay.StackTop-1<<20 {
		t.Fatalf("sp %v far from stack top %v", l.res.Stack.SP, lay.StackTop)
	}
	if hostarch.Addr(base) >= lay.MmapBase {
		t.Fatalf("interpreter at %#x above mmap base %v", base, lay.MmapBase)
	}
}

func TestLoadInterpreterDirectly(t *testing.T) {
	const path = "/lib64/ld-linux-x86-64.so.2"
	f, err := elf.Open(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	defer f.Close()
	fs := newFS(t)
	l, err := fs.load(path, []string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCommon(t, l, path, []string{path}, nil, f, uint64(l.res.Bias))
	if l.auxv[linux.AT_BASE] != 0 || l.res.Interp != "" || l.res.Entry != hostarch.Addr(f.Entry)+l.res.Bias {
		t.Fatalf("ld.so as program: base %#x interp %q entry %v", l.auxv[linux.AT_BASE], l.res.Interp, l.res.Entry)
	}
}

// buildStatic compiles a trivial C program with gcc and extra flags.
func buildStatic(t *testing.T, flags ...string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed (Debian package gcc)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "p.c")
	os.WriteFile(src, []byte("int big[4096]; int main(){ return big[7]; }\n"), 0o644)
	out := filepath.Join(dir, "p")
	args := append(append([]string{}, flags...), "-O1", "-o", out, src)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Skipf("gcc %v failed (static libc missing? Debian package libc6-dev): %v\n%s", flags, err, b)
	}
	return out
}

func TestLoadStatic(t *testing.T) {
	path := buildStatic(t, "-static")
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs := newFS(t)
	l, err := fs.load(path, []string{"p"}, []string{"X=y"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_EXEC || l.res.Bias != 0 {
		t.Fatalf("static binary type %v bias %v", f.Type, l.res.Bias)
	}
	checkCommon(t, l, path, []string{"p"}, []string{"X=y"}, f, 0)
	if l.res.Entry != hostarch.Addr(f.Entry) || l.auxv[linux.AT_BASE] != 0 || l.res.Interp != "" {
		t.Fatalf("entry %v (want %#x), linux.AT_BASE %#x", l.res.Entry, f.Entry, l.auxv[linux.AT_BASE])
	}
	var execfn [256]byte
	l.mm.CopyIn(context.Background(), hostarch.Addr(l.auxv[linux.AT_EXECFN]), execfn[:len(path)+1], usermem.IOOpts{})
	if string(execfn[:len(path)]) != path || execfn[len(path)] != 0 {
		t.Fatalf("linux.AT_EXECFN string %q", execfn[:len(path)+1])
	}
}

func TestLoadStaticPIE(t *testing.T) {
	path := buildStatic(t, "-static-pie")
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs := newFS(t)
	l, err := fs.load(path, []string{"p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_DYN || l.res.Bias == 0 || l.res.Interp != "" {
		t.Fatalf("static-pie type %v bias %v interp %q", f.Type, l.res.Bias, l.res.Interp)
	}
	checkCommon(t, l, path, []string{"p"}, nil, f, uint64(l.res.Bias))
	if l.res.Entry != hostarch.Addr(f.Entry)+l.res.Bias {
		t.Fatalf("entry %v", l.res.Entry)
	}
}

func TestLoadScripts(t *testing.T) {
	fs := newFS(t)
	fs.files["/s1"] = []byte("#!/s2 one two  \nbody")
	fs.files["/s2"] = []byte("#! \t/bin/true\n")
	l, err := fs.load("/s1", []string{"s1", "a", "b"}, nil)
	if err != nil {
		t.Fatalf("loading a script: %v", err)
	}
	// /s1 runs /s2 with the argument "one two", then /s2 runs /bin/true.
	want := []string{"/bin/true", "/s2", "one two", "/s1", "a", "b"}
	if !equalStrings(l.argv, want) || !equalStrings(l.res.Argv, want) {
		t.Fatalf("argv %q, want %q", l.argv, want)
	}
	if l.res.Filename != "/bin/true" {
		t.Fatalf("loaded %q", l.res.Filename)
	}
	// A script that runs itself loops.
	fs.files["/loop"] = []byte("#!/loop\n")
	if _, err := fs.load("/loop", []string{"loop"}, nil); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("self-interpreting script: %v, want ELOOP", err)
	}
	fs.files["/junk"] = []byte("just text")
	if _, err := fs.load("/junk", []string{"junk"}, nil); !errors.Is(err, unix.ENOEXEC) {
		t.Fatalf("non-executable: %v, want ENOEXEC", err)
	}
	fs.files["/missing"] = []byte("#!/nonexistent\n")
	if _, err := fs.load("/missing", []string{"m"}, nil); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("missing interpreter: %v, want ENOENT", err)
	}
}

func TestParseShebang(t *testing.T) {
	long := "#!/bin/sh " + string(bytes.Repeat([]byte("x"), 300))
	for _, c := range []struct {
		in, interp, arg string
		err             error
	}{
		{"#!/bin/sh\n", "/bin/sh", "", nil},
		{"#!  /bin/sh  -e  \n", "/bin/sh", "-e", nil},
		{"#!/usr/bin/env python3 -u\n", "/usr/bin/env", "python3 -u", nil},
		{"#!/bin/sh", "/bin/sh", "", nil},
		{"#!\n", "", "", unix.ENOEXEC},
		{"#!   \t \n", "", "", unix.ENOEXEC},
		{"#!/bin/sh\x00 ignored\n", "/bin/sh", "", nil},
		// The name ends inside the buffer: accepted, the argument cut short.
		{long, "/bin/sh", long[10:binprmBufSize], nil},
		{"#!" + string(bytes.Repeat([]byte("a"), 300)), "", "", unix.ENOEXEC},
		{"#!/bin/sh\tx\ty\n", "/bin/sh", "x\ty", nil},
	} {
		interp, arg, err := ParseShebang([]byte(c.in))
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("ParseShebang(%q) error %v, want %v", c.in, err, c.err)
			}
			continue
		}
		if err != nil || interp != c.interp || arg != c.arg {
			t.Errorf("ParseShebang(%q) = %q, %q, %v; want %q, %q", c.in, interp, arg, err, c.interp, c.arg)
		}
	}
}

func TestBuildStackE2BIG(t *testing.T) {
	io := &usermem.BytesIO{Bytes: make([]byte, 1<<20)}
	huge := string(bytes.Repeat([]byte("a"), MaxArgStrlen))
	var rnd [16]byte
	if _, err := buildStack(context.Background(), io, 1<<20, []string{huge}, nil, "x", rnd, nil); !errors.Is(err, unix.E2BIG) {
		t.Fatalf("argument of MAX_ARG_STRLEN bytes: %v, want E2BIG", err)
	}
	// A stack that does not fit fails with EFAULT rather than panicking.
	small := &usermem.BytesIO{Bytes: make([]byte, 64)}
	if _, err := buildStack(context.Background(), small, 64, []string{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}, nil, "x", rnd, nil); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("stack overflow: %v, want EFAULT", err)
	}
}

func FuzzParseELF(f *testing.F) {
	if b, err := os.ReadFile("/bin/true"); err == nil && len(b) > 4096 {
		f.Add(b[:4096])
	}
	hdr := make([]byte, 64+56)
	copy(hdr, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(hdr[16:], etExec)
	binary.LittleEndian.PutUint16(hdr[18:], emX86_64)
	binary.LittleEndian.PutUint64(hdr[32:], 64)
	binary.LittleEndian.PutUint16(hdr[54:], 56)
	binary.LittleEndian.PutUint16(hdr[56:], 1)
	binary.LittleEndian.PutUint32(hdr[64:], ptLoad)
	binary.LittleEndian.PutUint64(hdr[64+40:], 0x1000)
	f.Add(hdr)
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseELFHeader(b)
		if err != nil {
			if !errors.Is(err, unix.ENOEXEC) {
				t.Fatalf("header error %v is not ENOEXEC", err)
			}
			return
		}
		need := info.Phoff + uint64(info.Phnum*elfPhdrSize)
		if need > uint64(len(b)) || need < info.Phoff {
			return
		}
		if err := parsePhdrs(&info, b[info.Phoff:need]); err != nil {
			if !errors.Is(err, unix.ENOEXEC) {
				t.Fatalf("phdr error %v is not ENOEXEC", err)
			}
			return
		}
		start, end := info.span()
		if start > end || end > uint64(hostarch.MaxUserAddress)+hostarch.PageSize {
			t.Fatalf("span [%#x, %#x) out of range", start, end)
		}
		info.phdrAddr()
	})
}

func FuzzParseShebang(f *testing.F) {
	f.Add([]byte("#!/bin/sh -e\n"))
	f.Add([]byte("#!"))
	f.Add([]byte("#! \t\x00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > binprmBufSize {
			b = b[:binprmBufSize]
		}
		interp, _, err := ParseShebang(b)
		if err == nil && interp == "" {
			t.Fatal("accepted an empty interpreter")
		}
	})
}

func TestLoadReleasesEverything(t *testing.T) {
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true")
	}
	ctx := context.Background()
	fs := newFS(t)
	m := mm.New(fs.mf, mm.Layout{MinAddr: 0x10000, MaxAddr: hostarch.MaxUserAddress})
	if _, err := Load(ctx, Args{MM: m, Opener: fs, Filename: "/bin/true", Argv: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if fs.mf.UsedBytes() == 0 {
		t.Fatal("nothing allocated by loading")
	}
	m.DecUsers(ctx)
	if used := fs.mf.UsedBytes(); used != 0 {
		t.Fatalf("%d bytes of the memory file still used after the address space was released", used)
	}
}

func TestLoadNoRandomize(t *testing.T) {
	const path = "/bin/true"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	ctx := context.Background()
	fs := newFS(t)
	type where struct {
		layout                     mm.Layout
		bias, interp, brk, sp, rnd hostarch.Addr
	}
	load := func(noRandomize bool) where {
		m := mm.New(fs.mf, mm.Layout{MinAddr: 0x10000, MaxAddr: hostarch.MaxUserAddress})
		defer m.DecUsers(ctx)
		res, err := Load(ctx, Args{MM: m, Opener: fs, Filename: path, Argv: []string{"true"}, NoRandomize: noRandomize})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		// The 16 AT_RANDOM bytes, as an address-sized summary.
		var b [16]byte
		if _, err := m.CopyIn(ctx, res.Stack.Random, b[:], usermem.IOOpts{}); err != nil {
			t.Fatalf("reading AT_RANDOM: %v", err)
		}
		return where{m.Layout(), res.Bias, res.InterpBase, res.BrkStart, res.Stack.SP,
			hostarch.Addr(binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:]))}
	}
	a, b := load(true), load(true)
	if a.layout != b.layout || a.bias != b.bias || a.interp != b.interp || a.brk != b.brk || a.sp != b.sp {
		t.Errorf("unrandomized loads differ: %+v and %+v", a, b)
	}
	if a.layout.StackTop != hostarch.Addr(hostarch.MaxUserAddress).RoundDown() {
		t.Errorf("unrandomized stack top %#x, want the top of the address space %#x", a.layout.StackTop, hostarch.MaxUserAddress)
	}
	if a.bias != 0 && a.bias != elfETDynBase {
		t.Errorf("unrandomized PIE bias %#x, want %#x", a.bias, elfETDynBase)
	}
	if a.rnd == b.rnd {
		t.Error("AT_RANDOM is the same in two loads; it must stay random")
	}
	c, d := load(false), load(false)
	if c.layout == d.layout || c.brk == d.brk {
		t.Errorf("randomized loads chose the same layout: %+v and %+v", c, d)
	}
}

// With a vDSO, every image gets [vvar] and [vdso] below its interpreter
// (mapped after it, top-down from the mmap base) and AT_SYSINFO_EHDR
// points at the image; without one there is no AT_SYSINFO_EHDR.
func TestLoadMapsVDSO(t *testing.T) {
	const path = "/bin/true"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s", path)
	}
	fs := newFS(t)
	l, err := fs.load(path, []string{"true"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.auxv[linux.AT_SYSINFO_EHDR]; ok {
		t.Fatal("AT_SYSINFO_EHDR without a vDSO")
	}
	v, err := vdso.New(fs.mf, vdso.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs.vdso = v
	for range 2 {
		l, err := fs.load(path, []string{"true"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ehdr := hostarch.Addr(l.auxv[linux.AT_SYSINFO_EHDR])
		var names []string
		for _, mi := range l.mm.Mappings() {
			switch {
			case mi.Range.Start == ehdr:
				names = append(names, mi.Hint)
			case mi.Range.End == ehdr:
				names = append(names, mi.Hint)
			}
		}
		if len(names) != 2 || names[0] != "[vvar]" || names[1] != "[vdso]" {
			t.Fatalf("mappings around AT_SYSINFO_EHDR %v: %q", ehdr, names)
		}
		if ehdr >= l.res.InterpBase || ehdr >= l.mm.Layout().MmapBase {
			t.Errorf("vDSO at %v, above the interpreter %v or mmap base %v", ehdr, l.res.InterpBase, l.mm.Layout().MmapBase)
		}
		magic := make([]byte, 4)
		if _, err := l.mm.CopyIn(context.Background(), ehdr, magic, usermem.IOOpts{}); err != nil || string(magic) != "\x7fELF" {
			t.Errorf("AT_SYSINFO_EHDR %v holds %q (%v)", ehdr, magic, err)
		}
	}
}
