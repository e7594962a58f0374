// Package sandbox starts, watches and stops the host processes of one
// sandbox: the Gofer and the Sentry, each a re-execution of runsc with the
// same global settings, in the namespaces DESIGN.md §5.3 asks for (with
// --rootless, inside a user namespace of their own: userns.go), dying with
// the runsc process that started them unless detached.
package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Gofer is a running `runsc gofer` process.
type Gofer struct {
	cmd *exec.Cmd
	// Mounts are the trees it serves, in order.
	Mounts []specutils.GoferMount
	// SentryEnds are the Sentry's ends of the 9P sockets, one per mount.
	SentryEnds []*os.File
}

// StartGofer starts runscBin as the Gofer of spec in a mount namespace of
// its own (and a user namespace with --rootless). The Gofer confines
// itself before serving; it exits when every socket's other end is
// closed, and is killed if the calling thread's process dies first.
func StartGofer(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string) (*Gofer, error) {
	return startGofer(runscBin, conf, spec, bundleDir, false)
}

func startGofer(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, detach bool) (*Gofer, error) {
	mounts := specutils.GoferMounts(spec, bundleDir, conf.Overlay)
	g := &Gofer{Mounts: mounts}
	var goferEnds []*os.File
	closeAll := func() {
		for _, f := range append(goferEnds, g.SentryEnds...) {
			f.Close()
		}
		g.SentryEnds = nil
	}
	for range mounts {
		// Stream sockets allow a larger msize than seqpacket (pkg/p9).
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("gofer socketpair: %w", err)
		}
		g.SentryEnds = append(g.SentryEnds, os.NewFile(uintptr(fds[0]), "gofer-sentry"))
		goferEnds = append(goferEnds, os.NewFile(uintptr(fds[1]), "gofer-io"))
	}
	ioFDs := make([]string, len(goferEnds))
	for i := range goferEnds {
		ioFDs[i] = fdArg(i)
	}
	cmd, err := startChild(runscBin, conf, spec, child{
		subcommand: "gofer",
		args:       []string{"--bundle=" + bundleDir, "--io-fds=" + strings.Join(ioFDs, ",")},
		files:      goferEnds,
		stdio:      [3]*os.File{nil, nil, os.Stderr},
		cloneflags: syscall.CLONE_NEWNS,
		detach:     detach,
	})
	for _, f := range goferEnds {
		f.Close()
	}
	goferEnds = nil
	if err != nil {
		closeAll()
		return nil, err
	}
	g.cmd = cmd
	return g, nil
}

// Pid is the Gofer's host pid.
func (g *Gofer) Pid() int { return g.cmd.Process.Pid }

// Wait waits for the Gofer to exit.
func (g *Gofer) Wait() error { return g.cmd.Wait() }

// Kill stops the Gofer at once (SIGKILL) and reaps it.
func (g *Gofer) Kill() {
	g.cmd.Process.Kill()
	g.cmd.Wait()
	for _, f := range g.SentryEnds {
		f.Close()
	}
}
