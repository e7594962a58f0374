package cmd

import (
	"context"
	"flag"
	"os"

	"carapace.dev/carapace/runsc/sandbox"
	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Do implements `runsc do`: run a command in a sandbox whose root is the
// host's own root, read-only under an in-memory overlay, with the current
// directory, environment, user and stdio.
type Do struct{}

// Name implements subcommands.Command.
func (*Do) Name() string { return "do" }

// Synopsis implements subcommands.Command.
func (*Do) Synopsis() string { return "run a command in a sandbox over the host's root filesystem" }

// Usage implements subcommands.Command.
func (*Do) Usage() string {
	return `do COMMAND [ARG...]
	Runs COMMAND in a new sandbox. The sandbox sees the host's root
	filesystem read-only under an in-memory overlay (its writes vanish when
	it exits), starts in the current directory with the current
	environment and user, and shares this terminal's stdio. On a terminal
	the command gets a terminal of the sandbox's own as its controlling
	terminal (job control: ^C, ^Z and ^\ reach its foreground job, not
	runsc), relayed to this one, which goes raw until exit; window changes
	reach it. The exit status is the command's. With --rootless (no host
	root needed) the command runs as uid 0 of a user namespace in which
	the caller's own uid and gid are 0, with --network=none by default.
`
}

// SetFlags implements subcommands.Command.
func (*Do) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (*Do) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() == 0 {
		return usageError("do: a command to run is required")
	}
	if !conf.Overlay {
		return usageError("do: --overlay=false would let the sandbox write to the host's root; refusing")
	}
	cwd, err := os.Getwd()
	if err != nil {
		return Failure("do: %v", err)
	}
	hostname, _ := os.Hostname()
	spec := specutils.Default(f.Args(), cwd)
	spec.Root = &specs.Root{Path: "/"}
	spec.Hostname = hostname
	spec.Process.Env = os.Environ()
	spec.Process.Terminal = isTerminal(os.Stdin)
	spec.Process.User = specs.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if conf.Rootless {
		// The caller is root of the sandbox's user namespace, where
		// its own files are root's: the sandbox sees them so too.
		spec.Process.User = specs.User{}
	}
	spec.Process.Rlimits = nil
	// The caller's own privileges: root keeps every capability, and
	// set-ID programs work as they would outside (no no_new_privs).
	spec.Process.Capabilities = nil
	spec.Process.NoNewPrivileges = false
	// Only what the Sentry implements: proc, sysfs, its own /dev, a
	// /dev/shm and terminals.
	spec.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
	}
	if err := specutils.Validate(spec); err != nil {
		return Failure("do: %v", err)
	}
	if err := sandbox.CheckRootless(conf, spec); err != nil {
		return Failure("do: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		return Failure("do: finding the runsc binary: %v", err)
	}
	// The Sentry makes its stdio non-blocking, and these open file
	// descriptions are shared with the caller's shell: put them back.
	defer restoreStatusFlags(os.Stdin, os.Stdout, os.Stderr)()
	stdio := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var relay *ttyRelay
	if spec.Process.Terminal {
		if relay, err = newTTYRelay(os.Stdin); err != nil {
			return Failure("do: %v", err)
		}
		defer relay.close()
		// Output that is not to the terminal (a file, a pipe) goes
		// there directly.
		stdio[0] = relay.replica
		for i := 1; i < 3; i++ {
			if isTerminal(stdio[i]) {
				stdio[i] = relay.replica
			}
		}
	}
	g, err := sandbox.StartGofer(self, conf, spec, "/")
	if err != nil {
		return Failure("do: %v", err)
	}
	defer g.Kill()
	s, err := startDoSentry(self, conf, spec, "/", g, stdio)
	if err != nil {
		return Failure("do: %v", err)
	}
	if relay != nil {
		relay.run(os.Stdin, terminalOutput(os.Stdin, os.Stdout, os.Stderr), func() { unix.Kill(s.Pid(), unix.SIGTERM) }) // do_tty.go
	}
	status := s.Wait()
	if relay != nil {
		relay.drain()
	}
	return subcommands.ExitStatus(status)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// restoreStatusFlags records the file status flags (O_NONBLOCK, O_APPEND…)
// of files and returns a function that sets them back.
func restoreStatusFlags(files ...*os.File) func() {
	saved := make([]int, len(files))
	for i, f := range files {
		saved[i] = -1
		if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err == nil {
			saved[i] = fl
		}
	}
	return func() {
		for i, f := range files {
			if saved[i] >= 0 {
				unix.FcntlInt(f.Fd(), unix.F_SETFL, saved[i])
			}
		}
	}
}
