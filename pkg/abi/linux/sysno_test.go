package linux

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"carapace.dev/carapace/tools/gensyscalls/gen"
)

// TestSysnoFileUpToDate regenerates sysno_amd64.go from the host header and
// fails if the committed file differs, so a header update or a hand edit
// cannot go unnoticed.
func TestSysnoFileUpToDate(t *testing.T) {
	header, err := os.ReadFile(gen.DefaultHeader)
	if os.IsNotExist(err) {
		t.Skipf("%s not installed (Debian package linux-libc-dev): cannot regenerate", gen.DefaultHeader)
	}
	if err != nil {
		t.Fatal(err)
	}
	want, err := gen.Generate(bytes.NewReader(header))
	if err != nil {
		t.Fatalf("generating from %s: %v", gen.DefaultHeader, err)
	}
	got, err := os.ReadFile("sysno_amd64.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("sysno_amd64.go differs from what %s generates; run `go generate ./pkg/abi/linux`", gen.DefaultHeader)
	}
}

func TestSyscallNames(t *testing.T) {
	for _, tc := range []struct {
		nr   uintptr
		name string
	}{
		{SYS_READ, "read"},
		{SYS_WRITE, "write"},
		{SYS_RT_SIGACTION, "rt_sigaction"},
		{SYS_EXECVE, "execve"},
		{SYS_CLONE3, "clone3"},
		{SYS_OPENAT2, "openat2"},
		{MaxSyscallNumber, SyscallName(MaxSyscallNumber)},
	} {
		if got := SyscallName(tc.nr); got != tc.name || got == "" {
			t.Errorf("SyscallName(%d) = %q, want %q", tc.nr, got, tc.name)
		}
		if nr, ok := SyscallNumber(tc.name); !ok || nr != tc.nr {
			t.Errorf("SyscallNumber(%q) = %d, %v; want %d", tc.name, nr, ok, tc.nr)
		}
	}
	// Known numbers pinned by the amd64 ABI, independent of the generator.
	if SYS_READ != 0 || SYS_EXIT != 60 || SYS_ARCH_PRCTL != 158 || SYS_CLONE3 != 435 {
		t.Errorf("amd64 numbers wrong: read=%d exit=%d arch_prctl=%d clone3=%d", SYS_READ, SYS_EXIT, SYS_ARCH_PRCTL, SYS_CLONE3)
	}
	// 335..423 is an unassigned gap on amd64 (the x32 range starts at 512).
	for _, nr := range []uintptr{335, 400, MaxSyscallNumber + 1, 1 << 40} {
		if got := SyscallName(nr); got != "" {
			t.Errorf("SyscallName(%d) = %q, want \"\"", nr, got)
		}
	}
	if _, ok := SyscallNumber("no_such_syscall"); ok {
		t.Error("SyscallNumber found a syscall that does not exist")
	}
	if _, ok := SyscallNumber(""); ok {
		t.Error("SyscallNumber(\"\") found something")
	}
}

func TestGenParseRejectsBadHeaders(t *testing.T) {
	for name, hdr := range map[string]string{
		"empty":      "#ifndef X\n#endif\n",
		"dup name":   "#define __NR_read 0\n#define __NR_read 1\n",
		"dup number": "#define __NR_read 0\n#define __NR_write 0\n",
		"bad number": "#define __NR_read zero\n",
		"expression": "#define __NR_read (__X + 1) \n",
		"bad name":   "#define __NR_re-ad 0\n",
	} {
		if _, err := gen.Generate(strings.NewReader(hdr)); err == nil {
			t.Errorf("%s: Generate accepted %q", name, hdr)
		}
	}
	src, err := gen.Generate(strings.NewReader("#define __NR_write 1\n#define __NR_read 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DO NOT EDIT.", "SYS_READ  = 0", "SYS_WRITE = 1", "const MaxSyscallNumber = 1", `SYS_WRITE: "write"`} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("generated source lacks %q:\n%s", want, src)
		}
	}
}
