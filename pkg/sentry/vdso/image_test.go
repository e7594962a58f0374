package vdso

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// exported is every symbol the vDSO exports, as Linux's x86-64 vDSO does.
var exported = []string{
	"__vdso_clock_gettime", "clock_gettime",
	"__vdso_gettimeofday", "gettimeofday",
	"__vdso_time", "time",
	"__vdso_clock_getres", "clock_getres",
	"__vdso_getcpu", "getcpu",
}

// The image is what glibc's ld.so and the Go runtime accept: a shared
// object loadable anywhere as one piece, with SysV and GNU hash tables,
// every symbol versioned LINUX_2.6, and nothing to relocate.
func TestImageELF(t *testing.T) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatalf("parsing vdso.so: %v", err)
	}
	if f.Type != elf.ET_DYN || f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Fatalf("type %v machine %v class %v, want ET_DYN EM_X86_64 ELFCLASS64", f.Type, f.Machine, f.Class)
	}
	var loads []*elf.Prog
	dynamic := false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			loads = append(loads, p)
		case elf.PT_DYNAMIC:
			dynamic = true
			// glibc's ld.so adjusts a writable dynamic section in
			// place, which would fault on the read-only image.
			if p.Flags&elf.PF_W != 0 {
				t.Errorf("PT_DYNAMIC is writable (%v)", p.Flags)
			}
		}
	}
	if len(loads) != 1 {
		t.Fatalf("%d PT_LOAD segments, want 1", len(loads))
	}
	l := loads[0]
	if l.Off != 0 || l.Vaddr != 0 || l.Filesz != l.Memsz || l.Flags != elf.PF_R|elf.PF_X {
		t.Fatalf("PT_LOAD %+v: want offset 0 at address 0, no bss, R+X", l.ProgHeader)
	}
	if l.Filesz > TextSize() {
		t.Fatalf("PT_LOAD spans %d bytes, more than the %d mapped", l.Filesz, TextSize())
	}
	if !dynamic {
		t.Fatal("no PT_DYNAMIC")
	}
	for _, tag := range []elf.DynTag{elf.DT_HASH, elf.DT_GNU_HASH, elf.DT_SYMTAB, elf.DT_STRTAB, elf.DT_VERSYM, elf.DT_VERDEF} {
		if v, err := f.DynValue(tag); err != nil || len(v) != 1 {
			t.Errorf("dynamic tag %v: %v %v", tag, v, err)
		}
	}
	for _, tag := range []elf.DynTag{elf.DT_RELA, elf.DT_REL, elf.DT_JMPREL, elf.DT_TEXTREL, elf.DT_NEEDED} {
		if v, _ := f.DynValue(tag); len(v) != 0 {
			t.Errorf("dynamic tag %v present: the vDSO must need no relocation or library", tag)
		}
	}
	if soname, _ := f.DynString(elf.DT_SONAME); len(soname) != 1 || soname[0] != "linux-vdso.so.1" {
		t.Errorf("DT_SONAME %q", soname)
	}
	if vs := f.Section(".gnu.version_d"); vs == nil || !bytes.Contains(mustData(t, f, ".dynstr"), []byte("LINUX_2.6\x00")) {
		t.Error("no version definition LINUX_2.6")
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatalf("dynamic symbols: %v", err)
	}
	text := f.Section(".text")
	for _, name := range exported {
		found := false
		for _, s := range syms {
			if s.Name != name {
				continue
			}
			found = true
			if !s.HasVersion || s.Version != "LINUX_2.6" {
				t.Errorf("%s: version %q (has %v), want LINUX_2.6", name, s.Version, s.HasVersion)
			}
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value < text.Addr || s.Value >= text.Addr+text.Size {
				t.Errorf("%s: not a function in .text: %+v", name, s)
			}
			wantBind := elf.STB_GLOBAL
			if !strings.HasPrefix(name, "__vdso_") {
				wantBind = elf.STB_WEAK
			}
			if elf.ST_BIND(s.Info) != wantBind {
				t.Errorf("%s: binding %v, want %v", name, elf.ST_BIND(s.Info), wantBind)
			}
		}
		if !found {
			t.Errorf("%s not exported", name)
		}
	}
}

func mustData(t *testing.T, f *elf.File, name string) []byte {
	t.Helper()
	s := f.Section(name)
	if s == nil {
		t.Fatalf("no section %s", name)
	}
	b, err := s.Data()
	if err != nil {
		t.Fatalf("section %s: %v", name, err)
	}
	return b
}

// The committed vdso.so is what src/ builds to (run `go generate` after
// changing it). Other compiler versions emit other code, so the check
// runs only with the compiler that built the committed image (its version
// is in the image's .comment).
func TestImageUpToDate(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	out, err := exec.Command(gcc, "--version").Output()
	if err != nil {
		t.Skipf("gcc --version: %v", err)
	}
	version := strings.SplitN(string(out), "\n", 2)[0]
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	comment := string(mustData(t, f, ".comment"))
	if !strings.Contains(comment, strings.TrimPrefix(version, "gcc ")) {
		t.Skipf("vdso.so was built by %q, this host has %q", strings.Trim(comment, "\x00"), version)
	}
	flags, err := os.ReadFile("src/vdso.flags")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "vdso.so")
	cmd := exec.Command(gcc, append(strings.Fields(string(flags)), "-o", dst, "vdso.c")...)
	cmd.Dir = "src"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the vDSO: %v\n%s", err, out)
	}
	want, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(image, want) {
		t.Fatalf("vdso.so (%d bytes) differs from what src/ builds (%d bytes): run go generate", len(image), len(want))
	}
}
