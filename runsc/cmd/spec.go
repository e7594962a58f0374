package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
)

// Spec implements `runsc spec`: write a default config.json into a bundle.
type Spec struct {
	bundle string
	cwd    string
}

// Name implements subcommands.Command.
func (*Spec) Name() string { return "spec" }

// Synopsis implements subcommands.Command.
func (*Spec) Synopsis() string { return "create a default OCI spec (config.json) in a bundle" }

// Usage implements subcommands.Command.
func (*Spec) Usage() string {
	return `spec [--bundle DIR] [--cwd DIR] [-- COMMAND [ARG...]]
	Writes a config.json like runc's default into the bundle directory
	(default: the current directory), running COMMAND (default: sh) with
	root filesystem "rootfs". An existing config.json is never overwritten.
`
}

// SetFlags implements subcommands.Command.
func (s *Spec) SetFlags(f *flag.FlagSet) {
	f.StringVar(&s.bundle, "bundle", ".", "path to the bundle directory.")
	f.StringVar(&s.bundle, "b", ".", "shorthand for --bundle.")
	f.StringVar(&s.cwd, "cwd", "/", "working directory of the container process.")
}

// Execute implements subcommands.Command.
func (s *Spec) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	spec := specutils.Default(f.Args(), s.cwd)
	if err := specutils.Validate(spec); err != nil {
		return usageError("spec: %v", err)
	}
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return Failure("spec: encoding: %v", err)
	}
	path := filepath.Join(s.bundle, specutils.ConfigFile)
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return Failure("spec: %s already exists; remove it first", path)
	}
	if err != nil {
		return Failure("spec: %v", err)
	}
	if _, err := file.Write(append(data, '\n')); err != nil {
		file.Close()
		os.Remove(path)
		return Failure("spec: writing %s: %v", path, err)
	}
	if err := file.Close(); err != nil {
		return Failure("spec: writing %s: %v", path, err)
	}
	fmt.Fprintf(os.Stderr, "Wrote %s.\n", path)
	return subcommands.ExitSuccess
}
