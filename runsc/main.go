// Command runsc is Carapace's OCI runtime: the CLI that Docker, containerd
// and people call, and, re-executed by itself, the Sentry (boot) and the
// Gofer. This file only wires the global flags and the subcommands.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"carapace.dev/carapace/runsc/cmd"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/logsetup"
	"github.com/google/subcommands"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	top := flag.NewFlagSet("runsc", flag.ContinueOnError)
	conf := config.RegisterFlags(top)
	showVersion := top.Bool("version", false, "print runsc's version and exit.")

	cdr := subcommands.NewCommander(top, "runsc")
	cdr.Register(cdr.HelpCommand(), "")
	cdr.Register(cdr.FlagsCommand(), "")
	cdr.Register(new(cmd.Version), "")
	cdr.Register(new(cmd.Spec), "")
	cdr.Register(new(cmd.Do), "")
	cdr.Register(new(cmd.Create), "lifecycle")
	cdr.Register(new(cmd.Start), "lifecycle")
	cdr.Register(new(cmd.Run), "lifecycle")
	cdr.Register(new(cmd.Exec), "lifecycle")
	cdr.Register(new(cmd.Kill), "lifecycle")
	cdr.Register(new(cmd.Delete), "lifecycle")
	cdr.Register(new(cmd.State), "lifecycle")
	cdr.Register(new(cmd.List), "lifecycle")
	cdr.Register(new(cmd.PS), "lifecycle")
	cdr.Register(new(cmd.Events), "lifecycle")
	cdr.Register(new(cmd.Wait), "lifecycle")
	cdr.Register(new(cmd.Pause), "lifecycle")
	cdr.Register(cmd.NewResume(), "lifecycle")
	cdr.Register(new(cmd.Update), "lifecycle")
	cdr.Register(new(cmd.Features), "lifecycle")
	cdr.Register(new(cmd.Install), "helpers")
	cdr.Register(new(cmd.Uninstall), "helpers")
	cdr.Register(new(cmd.Gofer), "internal use only")
	cdr.Register(new(cmd.Boot), "internal use only")
	// After a flag error, flag has printed the problem; point at the help
	// rather than burying the message under the whole command list.
	top.Usage = func() { fmt.Fprintln(os.Stderr, "Run 'runsc help' for usage.") }

	if err := top.Parse(args); err != nil {
		// flag has printed the problem and the usage.
		return int(subcommands.ExitUsageError)
	}
	if *showVersion {
		cmd.PrintVersion(os.Stdout)
		return 0
	}
	if err := conf.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "runsc: %v\n", err)
		return int(subcommands.ExitUsageError)
	}
	name := top.Arg(0)
	if name == "" {
		cdr.Explain(os.Stderr)
		return int(subcommands.ExitUsageError)
	}
	known := false
	cdr.VisitCommands(func(_ *subcommands.CommandGroup, c subcommands.Command) {
		known = known || c.Name() == name
	})
	if !known {
		fmt.Fprintf(os.Stderr, "runsc: unknown subcommand %q; run 'runsc help' for the list\n", name)
		return int(subcommands.ExitUsageError)
	}
	closeLogs, err := logsetup.Setup(conf, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runsc: %v\n", err)
		return int(subcommands.ExitFailure)
	}
	defer closeLogs()
	return int(cdr.Execute(context.Background(), conf))
}
