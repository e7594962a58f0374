package boot

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

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
	conf := config.Default()
	gm := specutils.GoferMounts(spec, "/", conf.Overlay)
	socks := serve(t, gm)

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
	dup := func(f *os.File) int {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		return fd
	}
	stdio := [3]int{dup(stdinR), dup(outW), dup(errW)}
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(outR)
		out <- string(b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, err := Run(ctx, &Args{Conf: conf, Spec: spec, BundleDir: "/", GoferSockets: socks, Stdio: stdio})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("stdout was not closed when the sandbox exited")
	}
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
