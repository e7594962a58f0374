package cmd

import (
	"context"
	"errors"
	"flag"

	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"github.com/google/subcommands"
	"golang.org/x/sys/unix"
)

// Kill implements `runsc kill`: send a signal to a container's init (or
// to every process in it).
type Kill struct {
	all bool
	pid int
}

// Name implements subcommands.Command.
func (*Kill) Name() string { return "kill" }

// Synopsis implements subcommands.Command.
func (*Kill) Synopsis() string { return "send a signal to a container" }

// Usage implements subcommands.Command.
func (*Kill) Usage() string {
	return `kill [--all] <container-id> [SIGNAL]
	Sends SIGNAL (a name such as TERM or SIGKILL, or a number; default
	SIGTERM) to the container's init process, or with --all to every
	process in it.
`
}

// SetFlags implements subcommands.Command.
func (k *Kill) SetFlags(f *flag.FlagSet) {
	f.BoolVar(&k.all, "all", false, "send the signal to every process in the container.")
	f.BoolVar(&k.all, "a", false, "short for --all.")
	f.IntVar(&k.pid, "pid", 0, "send the signal to this process (a PID inside the sandbox) instead of init.")
}

// Execute implements subcommands.Command.
func (k *Kill) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() < 1 || f.NArg() > 2 {
		return usageError("kill: usage: kill [--all] <container-id> [SIGNAL]")
	}
	id := f.Arg(0)
	sig := unix.SIGTERM
	if f.NArg() == 2 {
		var err error
		if sig, err = parseSignal(f.Arg(1)); err != nil {
			return Failure("kill: %v", err)
		}
	}
	if k.all && k.pid != 0 {
		return usageError("kill: --all and --pid exclude each other")
	}
	if k.pid < 0 {
		return usageError("kill: invalid --pid %d", k.pid)
	}
	st, err := loadForAction(conf, id)
	if err != nil {
		return Failure("kill: %v", err)
	}
	if st.Status != container.Created && st.Status != container.Running && st.Status != container.Paused {
		return Failure("kill: container not running")
	}
	if st.Status == container.Paused {
		// The Sentry is frozen and cannot answer; SIGKILL needs no answer.
		if sig != unix.SIGKILL {
			return Failure("kill: container %s is paused; resume it first or send SIGKILL", id)
		}
		if cg := cgroupOf(st); cg != nil {
			cg.Thaw()
		}
		unix.Kill(st.SentryPid, unix.SIGKILL)
		return subcommands.ExitSuccess
	}
	store := storeOf(conf)
	_, err = control.Call(store.StateDir(id), &control.Request{
		Method: control.MethodSignal,
		Signal: &control.SignalArgs{Signo: int(sig), PID: int32(k.pid), All: k.all},
	}, nil)
	if errors.Is(err, control.ErrNoSandbox) || errors.Is(err, unix.ESRCH) {
		return Failure("kill: container not running")
	}
	if err != nil {
		return Failure("kill: %v", err)
	}
	return subcommands.ExitSuccess
}
