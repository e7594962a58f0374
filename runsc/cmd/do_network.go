package cmd

import (
	"errors"
	"fmt"
	"os"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// doSentry is the Sentry of `runsc do` and what must be undone when it
// has exited.
type doSentry struct {
	*sandbox.Sentry
	cleanup func()
}

// Wait waits for the Sentry, then removes its network.
func (d *doSentry) Wait() int {
	status := d.Sentry.Wait()
	d.cleanup()
	return status
}

// startDoSentry starts the Sentry of `runsc do`. With --network=sandbox
// it also gives the sandbox a network of its own: the Sentry starts held
// behind a control socket in a private directory, a veth pair joins its
// network namespace to the host's, the inner end is handed to netstack
// (the same hand-off as `runsc start`), and only then does init run. The
// pair goes when the Sentry has exited — or, if runsc dies first, with
// the Sentry's network namespace.
func startDoSentry(runscBin string, conf *config.Config, spec *specs.Spec, bundleDir string, g *sandbox.Gofer, stdio [3]*os.File) (*doSentry, error) {
	if conf.Network != config.NetworkSandbox {
		s, err := sandbox.StartSentry(runscBin, conf, spec, bundleDir, g, stdio)
		if err != nil {
			return nil, err
		}
		return &doSentry{Sentry: s, cleanup: func() {}}, nil
	}
	dir, err := os.MkdirTemp("", "runsc-do-")
	if err != nil {
		return nil, fmt.Errorf("control directory: %w", err)
	}
	ctl, err := control.Listen(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s, err := sandbox.StartSentryWithControl(runscBin, conf, spec, bundleDir, g, stdio, ctl)
	ctl.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	veth, err := sandbox.CreateVeth(s.Pid())
	if err == nil {
		err = sandbox.HandOffNetwork(s.Pid(), func(c *sandbox.CapturedLinks) error {
			_, err := control.Call(dir, &control.Request{Method: control.MethodNetwork, Network: &control.NetworkArgs{Links: c.Links}}, c.FDs())
			return err
		})
		if err == nil {
			_, err = control.Call(dir, &control.Request{Method: control.MethodStart}, nil)
		}
	}
	// Nothing else connects to the control socket: its name can go now.
	os.RemoveAll(dir)
	cleanup := func() {
		if veth != nil {
			if err := veth.Delete(); err != nil {
				log.Warningf("%v", err)
			}
		}
	}
	if errors.Is(err, control.ErrNoSandbox) {
		// The Sentry failed before serving (a missing program…) and
		// said why; its exit status is the command's.
		return &doSentry{Sentry: s, cleanup: cleanup}, nil
	}
	if err != nil {
		s.Kill()
		s.Wait()
		cleanup()
		return nil, fmt.Errorf("sandbox network: %w", err)
	}
	return &doSentry{Sentry: s, cleanup: cleanup}, nil
}
