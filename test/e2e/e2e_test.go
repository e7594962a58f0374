// Package e2e drives the runsc binary as Docker and containerd do, through
// the OCI lifecycle commands on real bundles, and checks outputs and exit
// codes against runc's documented behaviour. Bundles use the host's root,
// read-only, as `runsc do` does, so no image is needed.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/runsc/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var runscBin string

func TestMain(m *testing.M) {
	// RUNSC names a prebuilt binary (as for test/syscalls' runner).
	if bin := os.Getenv("RUNSC"); bin != "" {
		runscBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "e2e-runsc")
	if err != nil {
		panic(err)
	}
	if runscBin, err = testutil.BuildRunsc(dir); err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's runtime root and helpers around it.
type env struct {
	t    *testing.T
	root string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runsc needs root (namespaces, pivot_root, cgroups)")
	}
	e := &env{t: t, root: t.TempDir()}
	t.Cleanup(e.cleanup)
	return e
}

// cleanup force-deletes every container left and checks that no process
// of this runtime root survives.
func (e *env) cleanup() {
	out, _, _ := e.runsc("list", "--quiet")
	for _, id := range strings.Fields(out) {
		if _, stderr, code := e.runsc("delete", "--force", id); code != 0 {
			e.t.Errorf("cleanup: delete --force %s: %s", id, stderr)
		}
	}
	waitNoneLeft(e.t, e.root, e.processes)
	if entries, _ := os.ReadDir(e.root); len(entries) != 0 {
		e.t.Errorf("state left in %s: %v", e.root, entries)
	}
}

// waitNoneLeft fails the test if list still names processes of the
// runtime root after a few seconds.
func waitNoneLeft[T any](t testing.TB, root string, list func() []T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := list()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of %s left behind: %v", root, left)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processes lists host processes whose command line names this root
// (every Sentry and Gofer gets --root=… from Config.ToFlags).
func (e *env) processes() []string {
	var out []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("--root="+e.root+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue // exited, waiting for its reaper
			}
		}
		out = append(out, d.Name()+":"+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return out
}

// runsc runs a runsc command with this root and returns stdout, stderr
// and the exit code. Output goes through files, not pipes: a sandbox
// that `create` or `run --detach` leaves running inherits them, and would
// hold a pipe open.
func (e *env) runsc(args ...string) (string, string, int) {
	e.t.Helper()
	return runCommand(e.t, exec.Command(runscBin, append([]string{"--root=" + e.root}, args...)...), nil)
}

// runCommand runs cmd with stdin and returns its stdout, stderr and exit
// code; a command that cannot start fails the test. Output goes through
// files, not pipes: a sandbox that `create` or `run --detach` leaves
// running inherits them, and would hold a pipe open.
func runCommand(t testing.TB, cmd *exec.Cmd, stdin io.Reader) (string, string, int) {
	t.Helper()
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	out, _ := os.ReadFile(stdout.Name())
	errOut, _ := os.ReadFile(stderr.Name())
	return string(out), string(errOut), code
}

// must runs a runsc command that must succeed and returns its stdout.
func (e *env) must(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.runsc(args...)
	if code != 0 {
		e.t.Fatalf("runsc %v: exit %d: %s", args, code, stderr)
	}
	return out
}

// fails runs a runsc command that must fail with exit 1 and an error
// containing want.
func (e *env) fails(want string, args ...string) {
	e.t.Helper()
	_, stderr, code := e.runsc(args...)
	if code != 1 || !strings.Contains(stderr, want) {
		e.t.Errorf("runsc %v: exit %d, stderr %q; want exit 1 and %q", args, code, stderr, want)
	}
}

// bundle writes a bundle whose root is the host's, read-only, running
// args; change adjusts the spec.
func (e *env) bundle(args []string, change func(*specs.Spec)) string {
	e.t.Helper()
	dir := e.t.TempDir()
	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args, Cwd: "/",
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "GREETING=hello"},
		},
		Root:        &specs.Root{Path: "/", Readonly: true},
		Hostname:    "e2e-host",
		Annotations: map[string]string{"org.example.test": "e2e"},
		Mounts: []specs.Mount{
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "mode=1777"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmp", Options: []string{"mode=1777"}},
		},
		Linux: &specs.Linux{},
	}
	if change != nil {
		change(spec)
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// state is `runsc state`'s JSON.
type state struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

func (e *env) state(id string) state {
	e.t.Helper()
	var st state
	out := e.must("state", id)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("state %s: %v in %q", id, err, out)
	}
	return st
}

// waitStatus polls until the container has the status (the Sentry
// exits a moment after its init).
func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.state(id)
		if st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, want %s", id, st.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outputFile is a file to give a container as its stdout, read back
// with read.
type outputFile struct {
	t *testing.T
	f *os.File
}

func newOutput(t *testing.T) *outputFile {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &outputFile{t: t, f: f}
}

// waitFor polls the file until it contains want.
func (o *outputFile) waitFor(want string) string {
	o.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(o.f.Name())
		if strings.Contains(string(data), want) {
			return string(data)
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("output %q never contained %q", data, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// createWithOutput runs `runsc create` with the container's stdout and
// stderr going to out.
func (e *env) createWithOutput(out *outputFile, args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(runscBin, append([]string{"--root=" + e.root, "create"}, args...)...)
	cmd.Stdout, cmd.Stderr = out.f, out.f
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		data, _ := os.ReadFile(out.f.Name())
		return string(data), ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return "", 0
}

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }
