package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"carapace.dev/carapace/runsc/container"
	"github.com/google/subcommands"
)

// Delete implements `runsc delete`: remove a container and its state.
type Delete struct {
	force bool
}

// Name implements subcommands.Command.
func (*Delete) Name() string { return "delete" }

// Synopsis implements subcommands.Command.
func (*Delete) Synopsis() string { return "delete a container" }

// Usage implements subcommands.Command.
func (*Delete) Usage() string {
	return `delete [--force] <container-id>...
	Deletes stopped (or never started) containers and their state. A
	running or paused container is refused unless --force, which kills it.
	With --force a container that does not exist is not an error.
`
}

// SetFlags implements subcommands.Command.
func (d *Delete) SetFlags(f *flag.FlagSet) {
	f.BoolVar(&d.force, "force", false, "kill the container first if it is running.")
	f.BoolVar(&d.force, "f", false, "short for --force.")
}

// Execute implements subcommands.Command.
func (d *Delete) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() < 1 {
		return usageError("delete: a container id is required")
	}
	status := subcommands.ExitSuccess
	for _, id := range f.Args() {
		if err := deleteContainer(storeOf(conf), id, d.force); err != nil {
			status = Failure("delete: %v", err)
		}
	}
	return status
}

func deleteContainer(store container.Store, id string, force bool) error {
	unlock, err := store.Lock(id)
	if errors.Is(err, container.ErrNotExist) {
		if force {
			return nil
		}
		return fmt.Errorf("container %s does not exist", id)
	}
	if err != nil {
		return err
	}
	defer unlock()
	st, err := store.Load(id)
	if errors.Is(err, container.ErrNotExist) {
		// Locked but never recorded: a create that failed halfway.
		return store.Remove(id)
	}
	if err != nil {
		if force {
			return store.Remove(id)
		}
		return err
	}
	switch st.Status {
	case container.Running, container.Paused:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, st.Status)
		}
	}
	return destroyContainer(store, st)
}
