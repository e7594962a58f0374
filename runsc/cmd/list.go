package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/google/subcommands"
)

// List implements `runsc list`: the containers under --root.
type List struct {
	format string
	quiet  bool
}

// Name implements subcommands.Command.
func (*List) Name() string { return "list" }

// Synopsis implements subcommands.Command.
func (*List) Synopsis() string { return "list containers" }

// Usage implements subcommands.Command.
func (*List) Usage() string {
	return `list [--format table|json] [--quiet]
	Lists the containers: a table (ID, PID, STATUS, BUNDLE, CREATED,
	OWNER), their IDs only with --quiet, or a JSON array of states.
`
}

// SetFlags implements subcommands.Command.
func (l *List) SetFlags(f *flag.FlagSet) {
	f.StringVar(&l.format, "format", "table", "output format: table or json.")
	f.StringVar(&l.format, "f", "table", "short for --format.")
	f.BoolVar(&l.quiet, "quiet", false, "print only the container IDs.")
	f.BoolVar(&l.quiet, "q", false, "short for --quiet.")
}

// Execute implements subcommands.Command.
func (l *List) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 0 {
		return usageError("list: no arguments are taken")
	}
	states, err := storeOf(conf).List()
	if err != nil {
		// Report the unreadable records but list the others.
		Failure("list: %v", err)
	}
	switch {
	case l.quiet:
		for _, st := range states {
			fmt.Println(st.ID)
		}
	case l.format == "json":
		out := make([]stateJSON, 0, len(states))
		for _, st := range states {
			out = append(out, toStateJSON(st))
		}
		if err := printJSON(os.Stdout, out); err != nil {
			return Failure("list: %v", err)
		}
	case l.format == "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, st := range states {
			s := toStateJSON(st)
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		w.Flush()
	default:
		return usageError("list: invalid format %q: use table or json", l.format)
	}
	if err != nil {
		return subcommands.ExitFailure
	}
	return subcommands.ExitSuccess
}
