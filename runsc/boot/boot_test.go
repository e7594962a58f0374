package boot

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dupFD returns a duplicate of f's descriptor, for Run to own.
func dupFD(t *testing.T, f *os.File) int {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// readAllAsync reads r to its end in the background and delivers what it
// read.
func readAllAsync(r io.Reader) <-chan string {
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	return out
}

// runSandbox runs spec on stdio (host descriptors that Run takes over)
// with its mounts served from the host by an in-process Gofer, and
// returns the wait status and what out delivers; out must end once the
// sandbox has let go of its stdio, else the test fails with ending (what
// did not happen) "when the sandbox exited".
func runSandbox(t *testing.T, conf *config.Config, spec *specs.Spec, stdio [3]int, out <-chan string, ending string) (kernel.WaitStatus, string) {
	t.Helper()
	socks := serve(t, specutils.GoferMounts(spec, "/", conf.Overlay))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, err := Run(ctx, &Args{Conf: conf, Spec: spec, BundleDir: "/", GoferSockets: socks, Stdio: stdio})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-out:
		return ws, got
	case <-time.After(10 * time.Second):
		t.Fatalf("%s when the sandbox exited", ending)
	}
	return ws, ""
}

// runOnHostRoot runs args in a sandbox whose root is the host's, served by
// an in-process Gofer under the overlay, and returns stdout and the exit
// status.
func runOnHostRoot(t *testing.T, args ...string) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the ptrace platform's stubs need root here")
	}
	spec := specutils.Default(args, "/")
	spec.Root = &specs.Root{Path: "/"}
	spec.Mounts = nil
	stdinR, stdinW, _ := os.Pipe()
	stdinW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errW, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Run owns the stdio descriptors: hand it duplicates.
	stdio := [3]int{dupFD(t, stdinR), dupFD(t, outW), dupFD(t, errW)}
	stdinR.Close()
	outW.Close()
	errW.Close()
	ws, got := runSandbox(t, config.Default(), spec, stdio, readAllAsync(outR), "stdout was not closed")
	outR.Close()
	if !ws.Exited() {
		t.Fatalf("%v: wait status %v (stdout %q)", args, ws, got)
	}
	return got, ws.ExitStatus()
}

func TestRunStaticProgramFromTheHostRoot(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir, err := os.MkdirTemp("/var/tmp", "boot-test")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "hello.c")
	bin := filepath.Join(dir, "hello")
	os.WriteFile(src, []byte(`#include <unistd.h>
int main(int argc, char **argv) {
	write(1, "hello ", 6);
	write(1, argv[1], 5);
	write(1, "\n", 1);
	return 7;
}
`), 0o644)
	if out, err := exec.Command("gcc", "-static", "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, code := runOnHostRoot(t, bin, "world")
	if out != "hello world\n" || code != 7 {
		t.Fatalf("got %q, exit %d; want \"hello world\\n\", 7", out, code)
	}
}

func TestRunStaticBusybox(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed")
	}
	out, code := runOnHostRoot(t, "busybox", "echo", "carapace")
	if out != "carapace\n" || code != 0 {
		t.Fatalf("busybox echo: %q, exit %d", out, code)
	}
}
