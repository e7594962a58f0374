package cmd

import (
	"context"
	"flag"

	"github.com/google/subcommands"
)

// Create implements `runsc create`: make a container from a bundle, its
// init process created and held until `runsc start`.
type Create struct {
	opts createOptions
}

// Name implements subcommands.Command.
func (*Create) Name() string { return "create" }

// Synopsis implements subcommands.Command.
func (*Create) Synopsis() string { return "create a container" }

// Usage implements subcommands.Command.
func (*Create) Usage() string {
	return `create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] <container-id>
	Creates the container from the bundle's config.json: starts its
	sandbox (Sentry and Gofer) and its init process, which waits for
	'runsc start'. Returns once the container is created; the sandbox
	outlives this command. The pid file receives the Sentry's host pid.
`
}

// SetFlags implements subcommands.Command.
func (c *Create) SetFlags(f *flag.FlagSet) { c.opts.setFlags(f) }

func (o *createOptions) setFlags(f *flag.FlagSet) {
	f.StringVar(&o.bundle, "bundle", "", "path to the bundle directory (default: the current directory).")
	f.StringVar(&o.bundle, "b", "", "short for --bundle.")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the sandbox's host pid to.")
	f.StringVar(&o.consoleSocket, "console-socket", "", "unix socket to send the pty master to when the process has a terminal.")
	// runc's flags that containerd may pass; they concern host
	// mechanisms the sandbox does not use.
	f.Bool("no-pivot", false, "accepted for runc compatibility; the sandbox always pivots.")
	f.Bool("no-new-keyring", false, "accepted for runc compatibility; the sandbox has no session keyring.")
}

// Execute implements subcommands.Command.
func (c *Create) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("create: exactly one container id is required")
	}
	if _, err := createContainer(conf, f.Arg(0), c.opts); err != nil {
		return Failure("create: %v", err)
	}
	return subcommands.ExitSuccess
}
