package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	busyboximage "carapace.dev/carapace/images/busybox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// busyboxBundle builds the images/busybox bundle running args, with the
// process on the caller's stdio instead of a terminal.
func (e *env) busyboxBundle(args ...string) string {
	e.t.Helper()
	dir := e.t.TempDir()
	buildBusyboxBundle(e.t, dir, args...)
	return dir
}

// buildBusyboxBundle writes the images/busybox bundle running args into
// dir, with the process off the terminal.
func buildBusyboxBundle(t testing.TB, dir string, args ...string) {
	t.Helper()
	if err := busyboximage.Build(dir, runscBin, args...); errors.Is(err, busyboximage.ErrNoBusybox) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	if data, err = json.Marshal(&spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBusyboxLifecycle takes the busybox image through create, start,
// exec, kill, wait and delete: its rootfs has nothing of the host's, so
// what runs is the image's own static busybox.
func TestBusyboxLifecycle(t *testing.T) {
	e := newEnv(t)
	bundle := e.busyboxBundle("/bin/sh", "-c", "echo up $(ls /bin | wc -l); exec sleep 1000")
	out := newOutput(t)
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "bb"); code != 0 {
		t.Fatalf("create: exit %d: %s", code, msg)
	}
	if st := e.state("bb"); st.Status != "created" || st.Bundle != bundle {
		t.Errorf("state after create: %+v", st)
	}
	e.must("start", "bb")
	got := out.waitFor("up ")
	if strings.Contains(got, "up 0") || strings.Contains(got, "up 1\n") {
		t.Errorf("the image's /bin lacks its applet links: %q", got)
	}
	// The rootfs is the image's: the host's /usr/lib is not there, and
	// /bin/sh is busybox.
	if stdout := e.must("exec", "bb", "/bin/sh", "-c", "test -e /usr/lib/os-release || echo no-host-files; readlink /bin/sh"); !strings.Contains(stdout, "no-host-files") || !strings.Contains(stdout, "busybox") {
		t.Errorf("exec in the busybox rootfs: %q", stdout)
	}
	e.must("kill", "bb", "KILL")
	e.waitStatus("bb", "stopped")
	var w struct {
		ExitStatus int `json:"exitStatus"`
	}
	if err := json.Unmarshal([]byte(e.must("wait", "bb")), &w); err != nil || w.ExitStatus != 128+9 {
		t.Errorf("wait after SIGKILL: %+v, %v", w, err)
	}
	e.must("delete", "bb")
	e.fails("does not exist", "state", "bb")
}

// TestBusyboxRunExitCode runs the image to completion with `runsc run`.
func TestBusyboxRunExitCode(t *testing.T) {
	e := newEnv(t)
	bundle := e.busyboxBundle("/bin/sh", "-c", "echo hello from busybox; exit 7")
	stdout, stderr, code := e.runsc("run", "--bundle", bundle, "bbrun")
	if code != 7 || !strings.Contains(stdout, "hello from busybox") {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// run deletes what it created.
	e.fails("does not exist", "state", "bbrun")
}
