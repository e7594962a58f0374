package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
	the sandbox): a table with the columns of runc's
	(ps -ef's: UID PID PPID C STIME TTY TIME CMD), or with --format json the
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
	fmt.Fprint(w, "UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD\n")
	now := time.Now()
	for _, pr := range procs {
		fmt.Fprintln(w, psRow(pr, now))
	}
	w.Flush()
	return subcommands.ExitSuccess
}

// psRow formats a process as `ps -ef` does (runc's ps runs it). The
// sandbox's terminals are not host ttys, so TTY is "?"; STIME is "?" for
// processes the Sentry did not start itself (their start time is not
// recorded), and C, the lifetime CPU percentage, is then 0.
func psRow(pr control.Process, now time.Time) string {
	name := hostUserName(pr.UID)
	cpu := time.Duration(pr.CPUTime)
	stime, c := "?", 0
	if pr.Started != 0 {
		start := time.Unix(0, pr.Started)
		if y1, d1 := start.YearDay(), start.Year(); y1 == now.YearDay() && d1 == now.Year() {
			stime = start.Format("15:04")
		} else {
			stime = start.Format("Jan02")
		}
		if elapsed := now.Sub(start); elapsed > 0 {
			c = int(cpu * 100 / elapsed)
		}
	}
	secs := int64(cpu / time.Second)
	t := fmt.Sprintf("%02d:%02d:%02d", secs/3600%24, secs/60%60, secs%60)
	if days := secs / 86400; days > 0 {
		t = fmt.Sprintf("%d-%s", days, t)
	}
	cmd := pr.Name
	if len(pr.Args) > 0 {
		cmd = strings.Join(pr.Args, " ")
	} else if cmd != "" {
		cmd = "[" + cmd + "]"
	}
	return fmt.Sprintf("%s\t%d\t%d\t%d\t%s\t?\t%s\t%s", name, pr.PID, pr.PPID, c, stime, t, cmd)
}

// hostUserName names uid from the host's /etc/passwd, as ps -ef does, or
// gives the number. (Not os/user: it would link runsc with cgo, and
// syscall.AllThreadsSyscall, which confinement needs, refuses cgo.)
func hostUserName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return id
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 4)
		if len(f) == 4 && f[2] == id && f[0] != "" {
			return f[0]
		}
	}
	return id
}
