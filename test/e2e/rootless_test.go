package e2e

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// rootlessMissing is how runsc names what --rootless still lacks.
const rootlessMissing = "--rootless is not implemented: the Gofer and Sentry are not yet started in a new user namespace"

// TestRootlessRefusedAsUnprivilegedUser runs `runsc --rootless do
// /bin/true` as an unprivileged uid: until the user-namespace sandbox
// exists, runsc must refuse at once, naming what is missing, and start
// nothing (no half mode that quietly needs root).
func TestRootlessRefusedAsUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to an unprivileged uid needs root")
	}
	dir, err := os.MkdirTemp("", "e2e-rootless")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The unprivileged user must be able to reach and run its own copy.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "runsc")
	copyFile(t, runscBin, bin, 0o755)
	const nobody = 65534
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "state"), "--rootless", "do", "/bin/true")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("runsc --rootless do succeeded as uid %d: %s", nobody, out)
	}
	if !strings.Contains(string(out), rootlessMissing) {
		t.Fatalf("runsc --rootless do as uid %d: %v, output %q lacks %q", nobody, err, out, rootlessMissing)
	}
}

// TestRootlessRefusedByCreate checks the OCI path refuses --rootless before
// touching the bundle or the state root.
func TestRootlessRefusedByCreate(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/true"}, nil)
	_, stderr, code := e.runsc("--rootless", "create", "--bundle", bundle, "rootless")
	if code == 0 || !strings.Contains(stderr, rootlessMissing) {
		t.Fatalf("create --rootless: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := e.runsc("state", "rootless"); code == 0 {
		t.Fatal("a container was recorded despite the refusal")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
