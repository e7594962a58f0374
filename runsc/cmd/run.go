package cmd

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"carapace.dev/carapace/runsc/control"
	"github.com/google/subcommands"
	"golang.org/x/sys/unix"
)

// Run implements `runsc run`: create, start and (unless --detach) wait
// for a container, then delete it, returning its exit code.
type Run struct {
	opts   createOptions
	detach bool
}

// Name implements subcommands.Command.
func (*Run) Name() string { return "run" }

// Synopsis implements subcommands.Command.
func (*Run) Synopsis() string { return "create and run a container" }

// Usage implements subcommands.Command.
func (*Run) Usage() string {
	return `run [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] [--detach] <container-id>
	Creates and starts the container. Without --detach it forwards
	signals to the container's init, waits for it to exit, deletes the
	container and exits with its exit code (128+n if signal n killed it);
	a terminal process without --console-socket gets a pty relayed to
	this command's stdio. With --detach it returns once the container runs.
`
}

// SetFlags implements subcommands.Command.
func (r *Run) SetFlags(f *flag.FlagSet) {
	r.opts.setFlags(f)
	f.BoolVar(&r.detach, "detach", false, "return once the container is started.")
	f.BoolVar(&r.detach, "d", false, "short for --detach.")
}

// Execute implements subcommands.Command.
func (r *Run) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("run: exactly one container id is required")
	}
	id := f.Arg(0)
	opts := r.opts
	opts.relayTTY = !r.detach && opts.consoleSocket == ""
	c, err := createContainer(conf, id, opts)
	if err != nil {
		return Failure("run: %v", err)
	}
	store := storeOf(conf)
	cleanup := func() {
		if unlock, err := store.Lock(id); err == nil {
			if st, err := store.Load(id); err == nil {
				destroyContainer(store, st)
			}
			unlock()
		}
	}
	if c.master != nil {
		defer c.master.Close()
	}
	if err := startContainer(conf, id); err != nil {
		cleanup()
		return Failure("run: %v", err)
	}
	if r.detach {
		return subcommands.ExitSuccess
	}
	var relay *ttyRelay
	if c.master != nil {
		// The container's terminal is relayed to ours (do_tty.go): ^C
		// is a character for its line discipline.
		relay = relayMaster(c.master)
		relay.run(os.Stdin, terminalOutput(os.Stdin, os.Stdout, os.Stderr), nil)
		defer relay.close()
	}
	// Signals for runsc are for the container, as with runc.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	stateDir := store.StateDir(id)
	go func() {
		for s := range sigs {
			control.Call(stateDir, &control.Request{Method: control.MethodSignal, Signal: &control.SignalArgs{Signo: int(s.(syscall.Signal))}}, nil)
		}
	}()
	code := c.sentry.Wait()
	if relay != nil {
		relay.drain()
	}
	if ws, ok := store.ExitStatus(id); ok {
		code = waitStatusCode(ws)
	}
	cleanup()
	return subcommands.ExitStatus(code)
}

// rawTerminal puts a terminal in raw mode (the container's pty does the
// line editing) and returns the function that restores it.
func rawTerminal(f *os.File) func() {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	unix.IoctlSetTermios(fd, unix.TCSETS, &raw)
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
}
