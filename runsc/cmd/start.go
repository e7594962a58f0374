package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/sandbox"
	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
)

// Start implements `runsc start`: run a created container's init process.
type Start struct{}

// Name implements subcommands.Command.
func (*Start) Name() string { return "start" }

// Synopsis implements subcommands.Command.
func (*Start) Synopsis() string { return "start a created container" }

// Usage implements subcommands.Command.
func (*Start) Usage() string {
	return `start <container-id>
	Starts the init process of a container made by 'runsc create'.
`
}

// SetFlags implements subcommands.Command.
func (*Start) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (*Start) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("start: exactly one container id is required")
	}
	if err := startContainer(conf, f.Arg(0)); err != nil {
		return Failure("start: %v", err)
	}
	return subcommands.ExitSuccess
}

// startContainer releases a created container's init.
func startContainer(conf *config.Config, id string) error {
	store := storeOf(conf)
	err := store.Update(id, func(st *container.State) error {
		switch st.Status {
		case container.Created:
		case container.Stopped:
			return errors.New("cannot start a container that has stopped")
		default:
			return fmt.Errorf("cannot start an already %s container", st.Status)
		}
		// Docker's prestart hook and CNI have set the network up by now.
		if err := handOffNetwork(conf, store.StateDir(id), st); err != nil {
			return fmt.Errorf("network: %w", err)
		}
		if _, err := control.Call(store.StateDir(id), &control.Request{Method: control.MethodStart}, nil); err != nil {
			return err
		}
		st.Status = container.Running
		if spec, err := specutils.Load(st.Bundle); err == nil && spec.Hooks != nil {
			if err := runHooks("poststart", spec.Hooks.Poststart, st); err != nil {
				log.Warningf("%v", err)
			}
		}
		return nil
	})
	if errors.Is(err, container.ErrNotExist) {
		return fmt.Errorf("container %s does not exist", id)
	}
	return err
}

// handOffNetwork gives a --network=sandbox container's Sentry the
// interfaces of its network namespace (sandbox/network.go).
func handOffNetwork(conf *config.Config, stateDir string, st *container.State) error {
	if conf.Network != config.NetworkSandbox || !container.Alive(st.SentryPid, st.SentryStart) {
		return nil
	}
	return sandbox.HandOffNetwork(st.SentryPid, func(c *sandbox.CapturedLinks) error {
		_, err := control.Call(stateDir, &control.Request{Method: control.MethodNetwork, Network: &control.NetworkArgs{Links: c.Links}}, c.FDs())
		return err
	})
}
