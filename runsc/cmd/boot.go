package cmd

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"carapace.dev/carapace/runsc/boot"
	"carapace.dev/carapace/runsc/confine"
	"github.com/google/subcommands"
	"golang.org/x/sys/unix"
)

// Boot implements `runsc boot`, started by runsc itself: the Sentry, the
// sandbox's kernel. It exits with the sandboxed program's exit status
// (128+n if a signal n killed it).
type Boot struct {
	specFD int
	bundle string
	ioFDs  intList
	// Descriptors of a container made by `runsc create` (-1: none).
	controlFD, readyFD, exitStatusFD int
}

// Name implements subcommands.Command.
func (*Boot) Name() string { return "boot" }

// Synopsis implements subcommands.Command.
func (*Boot) Synopsis() string { return "run the Sentry, the sandbox's kernel (internal)" }

// Usage implements subcommands.Command.
func (*Boot) Usage() string {
	return `boot --spec-fd=FD --bundle=DIR --io-fds=FD[,FD...]
	Internal: started by runsc in new namespaces. Runs the spec's process in
	the sandbox, its files served by the Gofer on --io-fds, its stdio the
	standard input, output and error of this process.
`
}

// SetFlags implements subcommands.Command.
func (b *Boot) SetFlags(f *flag.FlagSet) {
	f.IntVar(&b.specFD, "spec-fd", -1, "descriptor to read the OCI spec from.")
	f.StringVar(&b.bundle, "bundle", "", "the bundle directory relative paths of the spec start from.")
	f.Var(&b.ioFDs, "io-fds", "comma-separated Gofer socket descriptors, one per served tree.")
	f.IntVar(&b.controlFD, "control-fd", -1, "listening control socket: hold the process until a start request and serve runsc's requests.")
	f.IntVar(&b.readyFD, "ready-fd", -1, "descriptor to write \"ready\" to once the container is created.")
	f.IntVar(&b.exitStatusFD, "exit-status-fd", -1, "file to write the process's wait status to when it exits.")
}

// Execute implements subcommands.Command.
func (b *Boot) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if b.specFD < 0 || len(b.ioFDs) == 0 || f.NArg() != 0 {
		return usageError("boot: --spec-fd and --io-fds are required and no arguments are taken")
	}
	spec, err := readSpecFD(b.specFD)
	if err != nil {
		return Failure("boot: %v", err)
	}
	socks, err := socketsFromFDs(b.ioFDs)
	if err != nil {
		return Failure("boot: %v", err)
	}
	// The Sentry needs no host path from here on: its files come from the
	// Gofer and its stdio is already open.
	if err := confine.PivotToEmptyRoot(); err != nil {
		return Failure("boot: confining: %v", err)
	}
	if err := confine.DropCapabilities(); err != nil {
		return Failure("boot: confining: %v", err)
	}
	if err := confine.SetNoNewPrivs(); err != nil {
		return Failure("boot: confining: %v", err)
	}
	// A signal for the container (runsc kill, Ctrl-C through `runsc do`
	// off a terminal) stops the sandbox rather than the Sentry
	// mid-flight. A terminal's Ctrl-C is for the sandbox's processes
	// instead (boot forwards it).
	stopSigs := []os.Signal{syscall.SIGTERM}
	if !boot.StdinIsTerminal(0) {
		stopSigs = append(stopSigs, syscall.SIGINT)
	}
	ctx, stop := signal.NotifyContext(ctx, stopSigs...)
	defer stop()
	fileOf := func(fd int, name string) *os.File {
		if fd < 0 {
			return nil
		}
		return os.NewFile(uintptr(fd), name)
	}
	// The application's stdio are the Sentry's own 0, 1 and 2, imported
	// and owned by its descriptor table, so they close when the
	// application lets go of them (a reader then sees EOF). The Sentry
	// keeps a private copy of stderr to report its own errors after that.
	if fd, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 0); err == nil {
		os.Stderr = os.NewFile(uintptr(fd), "/dev/stderr")
	}
	ws, err := boot.Run(ctx, &boot.Args{
		Conf: conf, Spec: spec, BundleDir: b.bundle, GoferSockets: socks,
		Stdio:   [3]int{0, 1, 2},
		Control: fileOf(b.controlFD, "control"), Ready: fileOf(b.readyFD, "ready"),
		ExitStatus: fileOf(b.exitStatusFD, "exit-status"),
	})
	if err != nil {
		return Failure("boot: %v", err)
	}
	if ws.Signaled() {
		return subcommands.ExitStatus(128 + int(ws.Signal()))
	}
	return subcommands.ExitStatus(ws.ExitStatus())
}
