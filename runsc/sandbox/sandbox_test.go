package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/confine"
	"carapace.dev/carapace/runsc/specutils"
	"carapace.dev/carapace/runsc/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var runscBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandbox-test")
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

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting a gofer needs root (mount namespaces, pivot_root)")
	}
}

// client connects a 9P client to the Sentry end of mount i.
func client(t *testing.T, g *Gofer, i int) *p9.Client {
	t.Helper()
	fd, err := unix.Dup(int(g.SentryEnds[i].Fd()))
	if err != nil {
		t.Fatal(err)
	}
	sock, err := unet.NewSocket(fd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p9.NewClient(sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func procField(t *testing.T, pid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestGoferServesConfined(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello"), []byte("hi from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "note"), []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := specutils.Default([]string{"/bin/true"}, "/")
	spec.Root = &specs.Root{Path: root}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/data", Source: data, Type: "bind"})
	conf := config.Default() // overlay on: the root is served read-only
	g, err := StartGofer(runscBin, conf, spec, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill()
	if len(g.SentryEnds) != 2 {
		t.Fatalf("%d sentry ends, want 2", len(g.SentryEnds))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := client(t, g, 0)
	rootFile, _, err := c.Attach(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, hello, err := rootFile.Walk(ctx, []string{"hello"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, donated, err := hello.Open(ctx, p9.OpenFlags(unix.O_RDONLY))
	if err != nil {
		t.Fatal(err)
	}
	if donated == nil {
		t.Error("the gofer donated no host descriptor for a regular file")
	} else {
		donated.Close()
	}
	buf := make([]byte, 64)
	n, err := hello.ReadAt(ctx, buf, 0)
	if err != nil && n == 0 {
		t.Fatalf("reading through the gofer: %v", err)
	}
	if string(buf[:n]) != "hi from the host" {
		t.Fatalf("read %q", buf[:n])
	}
	if _, _, _, err := rootFile.Create(ctx, "new", p9.OpenFlags(unix.O_WRONLY), 0o644, 0); !errors.Is(err, unix.EROFS) {
		t.Fatalf("create in the read-only root = %v, want EROFS", err)
	}

	bc := client(t, g, 1)
	dataRoot, _, err := bc.Attach(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := dataRoot.Create(ctx, "written", p9.OpenFlags(unix.O_WRONLY), 0o644, 0); err != nil {
		t.Fatalf("create in the read-write bind mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "written")); err != nil {
		t.Fatalf("file created through the gofer is not on the host: %v", err)
	}

	// The confinement, seen from outside.
	pid := g.Pid()
	entries, err := os.ReadDir(filepath.Join("/proc", itoa(pid), "root"))
	if err != nil || len(entries) != 0 {
		t.Errorf("the gofer's root holds %v (err %v); want an empty root", entries, err)
	}
	if got := procField(t, pid, "CapEff"); got != "000000000000001f" {
		t.Errorf("gofer CapEff = %s, want 000000000000001f", got)
	}
	if got := procField(t, pid, "CapBnd"); got != "000000000000001f" {
		t.Errorf("gofer CapBnd = %s, want 000000000000001f", got)
	}
	if got := procField(t, pid, "NoNewPrivs"); got != "1" {
		t.Errorf("gofer NoNewPrivs = %s", got)
	}
	if got := procField(t, pid, "Seccomp"); got != "2" {
		t.Errorf("gofer Seccomp = %s, want 2 (filter mode)", got)
	}
	ours, _ := os.Readlink("/proc/self/ns/mnt")
	theirs, _ := os.Readlink(filepath.Join("/proc", itoa(pid), "ns", "mnt"))
	if ours == theirs {
		t.Errorf("gofer shares our mount namespace %s", ours)
	}

	// Closing every Sentry end lets the Gofer finish cleanly.
	c.Close()
	bc.Close()
	for _, f := range g.SentryEnds {
		f.Close()
	}
	g.SentryEnds = nil
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gofer exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gofer did not exit after its sockets were closed")
	}
}

func TestGoferRefusesAMissingRoot(t *testing.T) {
	requireRoot(t)
	spec := specutils.Default([]string{"/bin/true"}, "/")
	spec.Root = &specs.Root{Path: filepath.Join(t.TempDir(), "absent")}
	g, err := StartGofer(runscBin, config.Default(), spec, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill()
	if err := g.Wait(); err == nil {
		t.Fatal("gofer serving a missing root exited successfully")
	}
}

func TestGoferSeccompKillsForbiddenSyscalls(t *testing.T) {
	requireRoot(t)
	t.Setenv(confine.TestOnlyForbiddenSyscallEnv, "1")
	spec := specutils.Default([]string{"/bin/true"}, "/")
	spec.Root = &specs.Root{Path: t.TempDir()}
	g, err := StartGofer(runscBin, config.Default(), spec, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill()
	err = g.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("gofer exit = %v, want death by SIGSYS", err)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("gofer exit = %v, want death by SIGSYS", err)
	}
}
