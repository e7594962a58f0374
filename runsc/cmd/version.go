package cmd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"carapace.dev/carapace/runsc/version"
	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Version implements `runsc version`, also reached as `runsc --version`.
type Version struct{}

// Name implements subcommands.Command.
func (*Version) Name() string { return "version" }

// Synopsis implements subcommands.Command.
func (*Version) Synopsis() string { return "print runsc's version and the OCI runtime spec version" }

// Usage implements subcommands.Command.
func (*Version) Usage() string { return "version\n" }

// SetFlags implements subcommands.Command.
func (*Version) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (*Version) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	if f.NArg() != 0 {
		return usageError("version takes no arguments")
	}
	PrintVersion(os.Stdout)
	return subcommands.ExitSuccess
}

// PrintVersion writes the version lines (runc's shape: name, spec, go).
func PrintVersion(w io.Writer) {
	fmt.Fprintf(w, "runsc version %s\nspec: %s\ngo: %s\n", version.Version, specs.Version, runtime.Version())
}
