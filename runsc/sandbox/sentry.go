package sandbox

import (
	"os"
	"os/exec"
	"strings"
	"syscall"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Sentry is a running `runsc boot` process: the sandbox's kernel.
type Sentry struct {
	cmd *exec.Cmd
}

// StartSentry starts the Sentry for spec in new mount, PID, IPC and UTS
// namespaces, and a new network namespace unless --network=host. It
// takes the Gofer's Sentry ends (closing the caller's copies) and gives
// the sandbox stdio as its standard input, output and error.
func StartSentry(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, g *Gofer, stdio [3]*os.File) (*Sentry, error) {
	if conf.Network != config.NetworkNone {
		// The Sentry has no socket syscalls yet, so in every mode the
		// program has no network; the namespace isolation is real.
		log.Debugf("--network=%s: the sandbox has no network yet (netstack is not wired into the Sentry)", conf.Network)
	}
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS)
	if conf.Network != config.NetworkHost {
		flags |= syscall.CLONE_NEWNET
	}
	ioFDs := make([]string, len(g.SentryEnds))
	for i := range g.SentryEnds {
		ioFDs[i] = fdArg(i)
	}
	cmd, err := startChild(runscBin, conf, spec, child{
		subcommand: "boot",
		args:       []string{"--bundle=" + bundleDir, "--io-fds=" + strings.Join(ioFDs, ",")},
		files:      g.SentryEnds,
		stdio:      stdio,
		cloneflags: flags,
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
