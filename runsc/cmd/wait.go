package cmd

import (
	"context"
	"errors"
	"flag"
	"os"
	"time"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"github.com/google/subcommands"
	"golang.org/x/sys/unix"
)

// Wait implements `runsc wait`: wait for a container's init (or a
// process started by exec) to exit and report its status.
type Wait struct {
	pid      int
	exitWith bool
}

// Name implements subcommands.Command.
func (*Wait) Name() string { return "wait" }

// Synopsis implements subcommands.Command.
func (*Wait) Synopsis() string { return "wait for a container or a process in it to exit" }

// Usage implements subcommands.Command.
func (*Wait) Usage() string {
	return `wait [--pid PID] [--exit] <container-id>
	Waits for the container's init process (or, with --pid, a process
	started by 'runsc exec') to exit and prints {"id": …, "exitStatus": N}
	where N is the exit code, or 128+n if signal n killed it. With --exit
	it prints nothing and exits with N.
`
}

// SetFlags implements subcommands.Command.
func (w *Wait) SetFlags(f *flag.FlagSet) {
	f.IntVar(&w.pid, "pid", 0, "wait for this process (a PID inside the sandbox started by exec) instead of init.")
	f.BoolVar(&w.exitWith, "exit", false, "exit with the status instead of printing it.")
}

// Execute implements subcommands.Command.
func (w *Wait) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("wait: exactly one container id is required")
	}
	if w.pid < 0 {
		return usageError("wait: invalid --pid %d", w.pid)
	}
	id := f.Arg(0)
	code, err := waitProcess(conf, id, int32(w.pid))
	if err != nil {
		return Failure("wait: %v", err)
	}
	if w.exitWith {
		return subcommands.ExitStatus(code)
	}
	if err := printJSON(os.Stdout, struct {
		ID         string `json:"id"`
		ExitStatus int    `json:"exitStatus"`
	}{id, code}); err != nil {
		return Failure("wait: %v", err)
	}
	return subcommands.ExitSuccess
}

// waitProcess waits for process pid (0: init) and returns its exit code.
func waitProcess(conf *config.Config, id string, pid int32) (int, error) {
	store := storeOf(conf)
	st, err := loadForAction(conf, id)
	if err != nil {
		return 0, err
	}
	resp, err := control.Call(store.StateDir(id), &control.Request{Method: control.MethodWait, Wait: &control.WaitArgs{PID: pid}}, nil)
	var refused *control.Error
	if err != nil && !errors.Is(err, control.ErrNoSandbox) && !errors.As(err, &refused) {
		// A connection cut short: the Sentry may have died under the
		// wait (it exits right after answering for init, or was
		// killed). Give it a moment to be gone.
		for i := 0; i < 1000 && container.Alive(st.SentryPid, st.SentryStart); i++ {
			time.Sleep(time.Millisecond)
		}
		if !container.Alive(st.SentryPid, st.SentryStart) {
			err = control.ErrNoSandbox
		}
	}
	if pid == 0 && (err == nil || errors.Is(err, control.ErrNoSandbox)) {
		// Init has exited; the Sentry exits right after (it may already
		// have stopped answering). Return when it has, so the container
		// reads as stopped, as after runc's wait.
		for i := 0; i < 5000 && container.Alive(st.SentryPid, st.SentryStart); i++ {
			time.Sleep(time.Millisecond)
		}
	}
	if errors.Is(err, control.ErrNoSandbox) {
		// The Sentry left init's status behind, unless it was killed
		// first: then init, and every process with it, died of SIGKILL
		// as far as anyone can tell, which is what runc reports for a
		// container whose init was killed (137).
		if ws, ok := store.ExitStatus(id); ok && pid == 0 {
			return waitStatusCode(ws), nil
		}
		return 128 + int(unix.SIGKILL), nil
	}
	if err != nil {
		return 0, err
	}
	if resp.WaitStatus == nil {
		return 0, errors.New("the sandbox answered wait without a status")
	}
	return waitStatusCode(*resp.WaitStatus), nil
}
