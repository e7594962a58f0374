package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"

	"carapace.dev/carapace/runsc/dockercfg"
	"github.com/google/subcommands"
)

// Install implements `runsc install`: register runsc as a Docker runtime.
type Install struct {
	configFile string
	runtime    string
}

// Name implements subcommands.Command.
func (*Install) Name() string { return "install" }

// Synopsis implements subcommands.Command.
func (*Install) Synopsis() string { return "add a runsc runtime entry to Docker's daemon.json" }

// Usage implements subcommands.Command.
func (*Install) Usage() string {
	return `install [--config-file FILE] [--runtime NAME] [-- RUNTIME_ARG...]
	Adds (or updates) runtimes.NAME in Docker's daemon.json, pointing at
	this runsc binary with the given arguments, e.g.
	  runsc install -- --network=none --platform=ptrace
	Every other key is kept. Reload dockerd afterwards (SIGHUP, or
	systemctl reload docker).
`
}

// SetFlags implements subcommands.Command.
func (i *Install) SetFlags(f *flag.FlagSet) {
	f.StringVar(&i.configFile, "config-file", dockercfg.DefaultPath, "path to Docker's daemon.json.")
	f.StringVar(&i.runtime, "runtime", "runsc", "name of the runtime entry.")
}

// Execute implements subcommands.Command.
func (i *Install) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	if i.runtime == "" {
		return usageError("install: --runtime must not be empty")
	}
	self, err := os.Executable()
	if err != nil {
		return Failure("install: finding the runsc binary: %v", err)
	}
	changed, err := dockercfg.Add(i.configFile, i.runtime, dockercfg.Runtime{Path: self, RuntimeArgs: f.Args()})
	if err != nil {
		return Failure("install: %v", err)
	}
	if changed {
		fmt.Fprintf(os.Stderr, "Added runtime %q (%s %v) to %s; reload dockerd to use it.\n", i.runtime, self, f.Args(), i.configFile)
	} else {
		fmt.Fprintf(os.Stderr, "Runtime %q is already installed in %s as requested.\n", i.runtime, i.configFile)
	}
	return subcommands.ExitSuccess
}
