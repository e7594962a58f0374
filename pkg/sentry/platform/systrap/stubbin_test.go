package systrap

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed stub_amd64.bin is what stub_amd64.gas assembles to (run
// `go generate` after changing the source).
func TestStubBinaryUpToDate(t *testing.T) {
	for _, tool := range []string{"as", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (binutils) not installed", tool)
		}
	}
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "stub.o"), filepath.Join(dir, "stub.bin")
	if out, err := exec.Command("as", "--64", "-o", obj, "stub_amd64.gas").CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	if out, err := exec.Command("objcopy", "-O", "binary", "-j", ".text", obj, bin).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stubCode, want) {
		t.Fatalf("stub_amd64.bin (%d bytes) differs from stub_amd64.gas assembled (%d bytes): run go generate", len(stubCode), len(want))
	}
}
