package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"carapace.dev/carapace/runsc/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ContainerOptions describe a sandbox started by `runsc create`.
type ContainerOptions struct {
	// Stdio of the container's init process.
	Stdio [3]*os.File
	// Control is the listening control socket (control.Listen).
	Control *os.File
	// ExitStatus receives init's wait status when it exits.
	ExitStatus *os.File
	// Detach makes the Gofer and Sentry outlive the caller.
	Detach bool
	// ReadyTimeout bounds the wait for the sandbox to be built (default
	// one minute).
	ReadyTimeout time.Duration
}

// StartContainer starts the Gofer and the Sentry of a container and
// returns once the Sentry reports the init process created and held for
// start, or an error (with both processes killed) if it never does.
func StartContainer(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, o ContainerOptions) (*Gofer, *Sentry, error) {
	g, err := startGofer(runscBin, conf, spec, bundleDir, o.Detach)
	if err != nil {
		return nil, nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		g.Kill()
		return nil, nil, err
	}
	defer readyR.Close()
	extra := []extraFile{{"control-fd", o.Control}, {"ready-fd", readyW}}
	if o.ExitStatus != nil {
		extra = append(extra, extraFile{"exit-status-fd", o.ExitStatus})
	}
	s, err := startSentry(runscBin, conf, spec, bundleDir, g, o.Stdio, extra, o.Detach)
	readyW.Close()
	if err != nil {
		g.Kill()
		return nil, nil, err
	}
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	readyR.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(readyR, buf, 1)
	if err != nil || string(buf[:n]) != "ready\n" {
		s.Kill()
		s.Wait()
		g.Kill()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, nil, fmt.Errorf("the sandbox was not ready after %v", timeout)
		case err != nil:
			// The Sentry exited: it printed why on the container's stderr.
			return nil, nil, errors.New("the sandbox failed to start")
		}
		return nil, nil, fmt.Errorf("unexpected readiness message %q", buf[:n])
	}
	return g, s, nil
}
