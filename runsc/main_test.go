package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"carapace.dev/carapace/runsc/specutils"
	"carapace.dev/carapace/runsc/testutil"
)

// runsc is the binary under test, built once by TestMain exactly as the
// Makefile builds it (static, no cgo).
var runsc string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runsc-cli-test")
	if err != nil {
		panic(err)
	}
	if runsc, err = testutil.BuildRunsc(dir); err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runRunsc(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(runsc, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running runsc %v: %v", args, err)
	}
	return string(out), 0
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, code := runRunsc(t, args...)
		if code != 0 || !strings.Contains(out, "runsc version ") || !strings.Contains(out, "spec: 1.") {
			t.Errorf("runsc %v = %d, %q", args, code, out)
		}
	}
}

func TestHelp(t *testing.T) {
	out, code := runRunsc(t, "help", "install")
	if code != 0 || !strings.Contains(out, "--config-file") {
		t.Errorf("help install = %d, %q", code, out)
	}
	if out, code := runRunsc(t, "help"); code != 0 || !strings.Contains(out, "spec") {
		t.Errorf("help = %d, %q", code, out)
	}
}

func TestBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"--no-such-flag", "version"}, "flag provided but not defined"},
		{[]string{"--platform=vmware", "version"}, "want one of ptrace, systrap, kvm"},
		{[]string{"--network=bridge", "version"}, "want one of sandbox, host, none"},
		{[]string{"spec", "--bogus"}, "flag provided but not defined"},
		{[]string{"version", "extra"}, "takes no arguments"},
		{[]string{}, "Usage"},
	} {
		out, code := runRunsc(t, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("runsc %v = %d, %q; want non-zero and %q", tc.args, code, out, tc.want)
		}
	}
}

func TestSpec(t *testing.T) {
	dir := t.TempDir()
	if out, code := runRunsc(t, "spec", "--bundle", dir, "--cwd", "/work", "--", "/bin/echo", "hello world"); code != 0 {
		t.Fatalf("spec = %d, %q", code, out)
	}
	spec, err := specutils.Load(dir)
	if err != nil {
		t.Fatalf("the written spec does not load and validate: %v", err)
	}
	if strings.Join(spec.Process.Args, "|") != "/bin/echo|hello world" || spec.Process.Cwd != "/work" {
		t.Fatalf("process = %+v", spec.Process)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if out, code := runRunsc(t, "spec", "-b", dir); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("spec over an existing config.json = %d, %q", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "config.json")); string(after) != string(before) {
		t.Fatal("spec overwrote an existing config.json")
	}
}

func TestInstallUninstall(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	orig := `{"debug": true, "runtimes": {"kata": {"path": "/usr/bin/kata"}}}`
	if err := os.WriteFile(cfg, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second install must change nothing
		if out, code := runRunsc(t, "install", "--config-file", cfg, "--", "--network=none", "--debug"); code != 0 {
			t.Fatalf("install #%d = %d, %q", i, code, out)
		}
	}
	var m struct {
		Debug    bool
		Runtimes map[string]struct {
			Path        string
			RuntimeArgs []string
		}
	}
	data, _ := os.ReadFile(cfg)
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	r := m.Runtimes["runsc"]
	if !m.Debug || m.Runtimes["kata"].Path != "/usr/bin/kata" || r.Path != runsc || strings.Join(r.RuntimeArgs, " ") != "--network=none --debug" {
		t.Fatalf("daemon.json after install = %s", data)
	}
	if out, code := runRunsc(t, "uninstall", "--config-file", cfg); code != 0 {
		t.Fatalf("uninstall = %d, %q", code, out)
	}
	if out, code := runRunsc(t, "uninstall", "--config-file", cfg); code == 0 || !strings.Contains(out, "not found") {
		t.Fatalf("second uninstall = %d, %q", code, out)
	}
	if err := os.WriteFile(cfg, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runRunsc(t, "install", "--config-file", cfg); code == 0 || !strings.Contains(out, "not a valid JSON object") {
		t.Fatalf("install over bad JSON = %d, %q", code, out)
	}
	if data, _ := os.ReadFile(cfg); string(data) != "{not json" {
		t.Fatal("invalid daemon.json was overwritten")
	}
}

func requireRootAndBusybox(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root (namespaces, ptrace stubs)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed (make deps installs it)")
	}
}

// sandboxProcesses lists processes running our runsc binary.
func sandboxProcesses(t *testing.T) []string {
	t.Helper()
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, runsc) {
			found = append(found, e.Name())
		}
	}
	return found
}

func TestDoRunsAStaticProgram(t *testing.T) {
	requireRootAndBusybox(t)
	out, code := runRunsc(t, "--network=none", "do", "/bin/busybox", "echo", "hello", "from the sandbox")
	if code != 0 || out != "hello from the sandbox\n" {
		t.Fatalf("runsc do busybox echo = %d, %q", code, out)
	}
	if _, code := runRunsc(t, "do", "/bin/busybox", "sh", "-c", "exit 42"); code != 42 {
		t.Fatalf("exit code = %d, want 42", code)
	}
	cmd := exec.Command(runsc, "do", "/bin/busybox", "cat")
	cmd.Stdin = strings.NewReader("piped through\n")
	got, err := cmd.Output()
	if err != nil || string(got) != "piped through\n" {
		t.Fatalf("echo | runsc do cat = %q, %v", got, err)
	}
	if left := sandboxProcesses(t); len(left) != 0 {
		t.Fatalf("runsc processes left behind: %v", left)
	}
}

func TestDoReportsAMissingProgram(t *testing.T) {
	requireRootAndBusybox(t)
	out, code := runRunsc(t, "do", "/no/such/program")
	if code == 0 || !strings.Contains(out, "/no/such/program") {
		t.Fatalf("runsc do of a missing program = %d, %q", code, out)
	}
	if out, code := runRunsc(t, "do"); code != 2 || !strings.Contains(out, "command to run is required") {
		t.Fatalf("runsc do without a command = %d, %q", code, out)
	}
}

// requireHostProgram skips unless the host root has p (the sandbox's root
// is the host's for `runsc do`).
func requireHostProgram(t *testing.T, p string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root (namespaces, ptrace stubs)")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed on the host", p)
	}
}

func TestDoRunsDynamicPrograms(t *testing.T) {
	requireHostProgram(t, "/bin/true")
	if out, code := runRunsc(t, "--network=none", "do", "/bin/true"); code != 0 || out != "" {
		t.Fatalf("runsc do /bin/true = %d, %q", code, out)
	}
	if out, code := runRunsc(t, "--network=none", "do", "/bin/false"); code != 1 || out != "" {
		t.Fatalf("runsc do /bin/false = %d, %q", code, out)
	}
	if out, code := runRunsc(t, "--network=none", "do", "/bin/echo", "hi"); code != 0 || out != "hi\n" {
		t.Fatalf("runsc do /bin/echo hi = %d, %q", code, out)
	}
	// Found through PATH, as the spec's process args are.
	cmd := exec.Command(runsc, "--network=none", "do", "cat")
	cmd.Stdin = strings.NewReader("hi\n")
	got, err := cmd.Output()
	if err != nil || string(got) != "hi\n" {
		t.Fatalf("echo hi | runsc do cat = %q, %v", got, err)
	}
	if left := sandboxProcesses(t); len(left) != 0 {
		t.Fatalf("runsc processes left behind: %v", left)
	}
}

func TestDoRunsPython(t *testing.T) {
	requireHostProgram(t, "/usr/bin/python3")
	if out, code := runRunsc(t, "--network=none", "do", "/usr/bin/python3", "-c", "print(1)"); code != 0 || out != "1\n" {
		t.Fatalf("runsc do python3 -c 'print(1)' = %d, %q", code, out)
	}
}

func TestDoWritesGoToTheOverlay(t *testing.T) {
	requireHostProgram(t, "/bin/dash")
	name := fmt.Sprintf("/tmp/carapace-overlay-test-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(name) })
	script := fmt.Sprintf("echo x > %s && cat %s", name, name)
	if out, code := runRunsc(t, "--network=none", "do", "/bin/dash", "-c", script); code != 0 || out != "x\n" {
		t.Fatalf("runsc do dash -c %q = %d, %q", script, code, out)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("the sandbox's write reached the host's %s: %v", name, err)
	}
}
