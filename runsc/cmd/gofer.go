package cmd

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/confine"
	"carapace.dev/carapace/runsc/fsgofer"
	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
)

// GoferCapabilities are all the Gofer keeps: enough to act on files as the
// sandbox's root would (chown, bypass permission bits, keep setgid bits),
// nothing that reaches beyond files.
var GoferCapabilities = []int{
	0, // CAP_CHOWN
	1, // CAP_DAC_OVERRIDE
	2, // CAP_DAC_READ_SEARCH
	3, // CAP_FOWNER
	4, // CAP_FSETID
}

// Gofer implements `runsc gofer`, started by runsc itself (never by hand):
// it serves the container's root and bind mounts to the Sentry over 9P,
// from an empty root of its own.
type Gofer struct {
	specFD int
	bundle string
	ioFDs  intList
}

// Name implements subcommands.Command.
func (*Gofer) Name() string { return "gofer" }

// Synopsis implements subcommands.Command.
func (*Gofer) Synopsis() string { return "serve a container's files to its Sentry over 9P (internal)" }

// Usage implements subcommands.Command.
func (*Gofer) Usage() string {
	return `gofer --spec-fd=FD --bundle=DIR --io-fds=FD[,FD...]
	Internal: started by runsc in a mount namespace of its own. Serves the
	root and each bind mount of the spec read from --spec-fd, one per
	socket of --io-fds, until the Sentry closes them.
`
}

// SetFlags implements subcommands.Command.
func (g *Gofer) SetFlags(f *flag.FlagSet) {
	f.IntVar(&g.specFD, "spec-fd", -1, "descriptor to read the OCI spec from.")
	f.StringVar(&g.bundle, "bundle", "", "the bundle directory relative paths of the spec start from.")
	f.Var(&g.ioFDs, "io-fds", "comma-separated socket descriptors, one per served tree.")
}

// Execute implements subcommands.Command.
func (g *Gofer) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	// A terminal's Ctrl-C and Ctrl-\ reach every process in its
	// foreground group, the Gofer too; they are for the sandbox, and the
	// Gofer ends when the Sentry closes its sockets.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT)
	if g.specFD < 0 || len(g.ioFDs) == 0 || f.NArg() != 0 {
		return usageError("gofer: --spec-fd and --io-fds are required and no arguments are taken")
	}
	spec, err := readSpecFD(g.specFD)
	if err != nil {
		return Failure("gofer: %v", err)
	}
	var mounts []fsgofer.Mount
	for _, m := range specutils.GoferMounts(spec, g.bundle, conf.Overlay) {
		mounts = append(mounts, fsgofer.Mount{HostPath: m.HostPath, ReadOnly: m.ReadOnly})
	}
	if len(mounts) != len(g.ioFDs) {
		return Failure("gofer: %d sockets for %d served trees", len(g.ioFDs), len(mounts))
	}
	attachers, err := fsgofer.OpenMounts(mounts)
	if err != nil {
		return Failure("gofer: %v", err)
	}
	if err := confine.PivotToEmptyRoot(); err != nil {
		return Failure("gofer: confining: %v", err)
	}
	if err := confine.DropCapabilities(GoferCapabilities...); err != nil {
		return Failure("gofer: confining: %v", err)
	}
	if err := confine.SetNoNewPrivs(); err != nil {
		return Failure("gofer: confining: %v", err)
	}
	if err := confine.InstallSeccomp(fsgofer.SeccompRules(), conf.SeccompLogOnly); err != nil {
		return Failure("gofer: confining: %v", err)
	}
	if err := confine.TestForbiddenSyscall(); err != nil {
		return Failure("gofer: %v", err)
	}
	conns, err := socketsFromFDs(g.ioFDs)
	if err != nil {
		return Failure("gofer: %v", err)
	}
	log.Infof("gofer: serving %d trees", len(mounts))
	if err := fsgofer.ServeAttachers(ctx, conns, attachers); err != nil {
		return Failure("gofer: %v", err)
	}
	return subcommands.ExitSuccess
}

// intList is a flag of comma-separated descriptor numbers.
type intList []int

func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (l *intList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return fmt.Errorf("%q is not a descriptor number", p)
		}
		*l = append(*l, v)
	}
	return nil
}
