package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"

	"carapace.dev/carapace/runsc/dockercfg"
	"github.com/google/subcommands"
)

// Uninstall implements `runsc uninstall`: remove runsc's Docker runtime entry.
type Uninstall struct {
	configFile string
	runtime    string
}

// Name implements subcommands.Command.
func (*Uninstall) Name() string { return "uninstall" }

// Synopsis implements subcommands.Command.
func (*Uninstall) Synopsis() string { return "remove a runsc runtime entry from Docker's daemon.json" }

// Usage implements subcommands.Command.
func (*Uninstall) Usage() string {
	return `uninstall [--config-file FILE] [--runtime NAME]
	Removes runtimes.NAME from Docker's daemon.json, keeping every other key.
`
}

// SetFlags implements subcommands.Command.
func (u *Uninstall) SetFlags(f *flag.FlagSet) {
	f.StringVar(&u.configFile, "config-file", dockercfg.DefaultPath, "path to Docker's daemon.json.")
	f.StringVar(&u.runtime, "runtime", "runsc", "name of the runtime entry.")
}

// Execute implements subcommands.Command.
func (u *Uninstall) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	if f.NArg() != 0 {
		return usageError("uninstall takes no arguments")
	}
	if err := dockercfg.Remove(u.configFile, u.runtime); err != nil {
		return Failure("uninstall: %v", err)
	}
	fmt.Fprintf(os.Stderr, "Removed runtime %q from %s; reload dockerd.\n", u.runtime, u.configFile)
	return subcommands.ExitSuccess
}
