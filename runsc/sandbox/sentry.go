package sandbox

import (
	"os"
	"os/exec"
	"strings"
	"syscall"

	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Sentry is a running `runsc boot` process: the sandbox's kernel.
type Sentry struct {
	cmd *exec.Cmd
}

// StartSentry starts the Sentry for spec in new mount and PID namespaces,
// and in the network, UTS and IPC namespaces the spec names by path, or
// else new ones (no new network namespace with --network=host); with
// --rootless, all in a new user namespace (userns.go). It
// takes the Gofer's Sentry ends (closing the caller's copies) and gives
// the sandbox stdio as its standard input, output and error.
func StartSentry(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, g *Gofer, stdio [3]*os.File) (*Sentry, error) {
	return startSentry(runscBin, conf, spec, bundleDir, g, stdio, nil, false)
}

// startSentry also hands the Sentry extra files, named by extraArgs
// (flags that take their descriptor numbers, in order), and with detach
// makes it outlive the caller.
func startSentry(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, g *Gofer, stdio [3]*os.File, extra []extraFile, detach bool) (*Sentry, error) {
	flags, joins := sentryNamespaces(conf, spec) // namespaces.go
	ioFDs := make([]string, len(g.SentryEnds))
	for i := range g.SentryEnds {
		ioFDs[i] = fdArg(i)
	}
	args := []string{"--bundle=" + bundleDir, "--io-fds=" + strings.Join(ioFDs, ",")}
	files := append([]*os.File(nil), g.SentryEnds...)
	for _, e := range extra {
		args = append(args, "--"+e.flag+"="+fdArg(len(files)))
		files = append(files, e.file)
	}
	cmd, err := startChild(runscBin, conf, spec, child{
		subcommand: "boot",
		args:       args,
		files:      files,
		stdio:      stdio,
		cloneflags: flags,
		joins:      joins,
		detach:     detach,
	})
	// The Sentry has its own copies now; ours would keep the Gofer alive
	// after the Sentry is gone.
	for _, f := range g.SentryEnds {
		f.Close()
	}
	g.SentryEnds = nil
	if err != nil {
		return nil, err
	}
	return &Sentry{cmd: cmd}, nil
}

// Pid is the Sentry's host pid.
func (s *Sentry) Pid() int { return s.cmd.Process.Pid }

// Wait waits for the Sentry to exit and returns the container's exit code:
// the sandboxed program's own, or 128+n when the Sentry died of signal n.
func (s *Sentry) Wait() int {
	err := s.cmd.Wait()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 127
}

// Kill stops the Sentry at once.
func (s *Sentry) Kill() { s.cmd.Process.Kill() }

// extraFile is a descriptor for the Sentry and the boot flag naming it.
type extraFile struct {
	flag string
	file *os.File
}
