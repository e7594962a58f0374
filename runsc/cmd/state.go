package cmd

import (
	"context"
	"flag"
	"os"

	"github.com/google/subcommands"
)

// State implements `runsc state`: print a container's OCI state.
type State struct{}

// Name implements subcommands.Command.
func (*State) Name() string { return "state" }

// Synopsis implements subcommands.Command.
func (*State) Synopsis() string { return "print the state of a container" }

// Usage implements subcommands.Command.
func (*State) Usage() string {
	return `state <container-id>
	Prints the container's state as JSON: ociVersion, id, pid, status
	(created, running, paused or stopped), bundle, rootfs, created, owner
	and annotations.
`
}

// SetFlags implements subcommands.Command.
func (*State) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (*State) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("state: exactly one container id is required")
	}
	st, err := loadForAction(conf, f.Arg(0))
	if err != nil {
		return Failure("state: %v", err)
	}
	if err := printJSON(os.Stdout, toStateJSON(st)); err != nil {
		return Failure("state: %v", err)
	}
	return subcommands.ExitSuccess
}
