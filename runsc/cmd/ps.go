package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"github.com/google/subcommands"
)

// PS implements `runsc ps`: the processes inside a container.
type PS struct {
	format string
}

// Name implements subcommands.Command.
func (*PS) Name() string { return "ps" }

// Synopsis implements subcommands.Command.
func (*PS) Synopsis() string { return "list the processes running in a container" }

// Usage implements subcommands.Command.
func (*PS) Usage() string {
	return `ps [--format table|json] <container-id>
	Lists the container's processes as the sandbox sees them (PIDs inside
	the sandbox): a table (UID, PID, PPID, CMD), or with --format json the
	array of PIDs, as runc prints it.
`
}

// SetFlags implements subcommands.Command.
func (p *PS) SetFlags(f *flag.FlagSet) {
	f.StringVar(&p.format, "format", "table", "output format: table or json.")
	f.StringVar(&p.format, "f", "table", "short for --format.")
}

// Execute implements subcommands.Command.
func (p *PS) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("ps: exactly one container id is required")
	}
	if p.format != "table" && p.format != "json" {
		return usageError("ps: invalid format %q: use table or json", p.format)
	}
	id := f.Arg(0)
	st, err := loadForAction(conf, id)
	if err != nil {
		return Failure("ps: %v", err)
	}
	var procs []control.Process
	switch st.Status {
	case container.Created, container.Running:
		resp, err := control.Call(storeOf(conf).StateDir(id), &control.Request{Method: control.MethodProcesses}, nil)
		if err != nil && err != control.ErrNoSandbox {
			return Failure("ps: %v", err)
		}
		if resp != nil {
			procs = resp.Processes
		}
	case container.Paused:
		return Failure("ps: container %s is paused", id)
	}
	if p.format == "json" {
		pids := make([]int32, 0, len(procs))
		for _, pr := range procs {
			pids = append(pids, pr.PID)
		}
		if err := printJSON(os.Stdout, pids); err != nil {
			return Failure("ps: %v", err)
		}
		return subcommands.ExitSuccess
	}
	w := tabwriter.NewWriter(os.Stdout, 6, 1, 2, ' ', 0)
	fmt.Fprint(w, "UID\tPID\tPPID\tCMD\n")
	for _, pr := range procs {
		cmd := pr.Name
		if len(pr.Args) > 0 {
			cmd = strings.Join(pr.Args, " ")
		}
		fmt.Fprintf(w, "%d\t%d\t%d\t%s\n", pr.UID, pr.PID, pr.PPID, cmd)
	}
	w.Flush()
	return subcommands.ExitSuccess
}
