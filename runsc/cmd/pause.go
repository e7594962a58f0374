package cmd

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/sandbox"
	"github.com/google/subcommands"
)

// Pause implements `runsc pause` (and, with resume set, `runsc resume`):
// freeze or thaw every process of a container's sandbox through its host
// cgroup, as runc does.
type Pause struct {
	resume bool
}

// NewResume returns the `resume` command.
func NewResume() *Pause { return &Pause{resume: true} }

// Name implements subcommands.Command.
func (p *Pause) Name() string {
	if p.resume {
		return "resume"
	}
	return "pause"
}

// Synopsis implements subcommands.Command.
func (p *Pause) Synopsis() string {
	if p.resume {
		return "resume a paused container"
	}
	return "pause all processes of a container"
}

// Usage implements subcommands.Command.
func (p *Pause) Usage() string {
	return p.Name() + ` <container-id>
	Freezes (pause) or thaws (resume) the container's sandbox: its
	Sentry, Gofer and application processes, through a host cgroup.
`
}

// SetFlags implements subcommands.Command.
func (*Pause) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (p *Pause) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("%s: exactly one container id is required", p.Name())
	}
	if err := p.apply(conf, f.Arg(0)); err != nil {
		return Failure("%s: %v", p.Name(), err)
	}
	return subcommands.ExitSuccess
}

func (p *Pause) apply(conf *config.Config, id string) error {
	err := storeOf(conf).Update(id, func(st *container.State) error {
		cg := cgroupOf(st)
		if p.resume {
			if st.Status != container.Paused {
				return fmt.Errorf("container %s is not paused", id)
			}
			if cg == nil {
				return fmt.Errorf("container %s has no cgroup", id)
			}
			if err := cg.Thaw(); err != nil {
				return err
			}
			st.Status = container.Running
			return nil
		}
		if st.Status != container.Running {
			return fmt.Errorf("container %s is not running", id)
		}
		if cg == nil {
			// The sandbox gets its cgroup when first paused: moving
			// processes between cgroups costs milliseconds that create
			// should not pay.
			c, err := sandbox.CgroupFor(id)
			if err != nil {
				return fmt.Errorf("pausing needs a host cgroup freezer: %w", err)
			}
			if err := c.Create(); err != nil {
				return err
			}
			st.Cgroup = c.Dirs
			if err := c.JoinTree(st.SentryPid); err != nil {
				return err
			}
			if st.GoferPid > 0 {
				c.Join(st.GoferPid) // it may have exited; the Sentry matters
			}
			cg = c
		}
		if err := cg.Freeze(); err != nil {
			cg.Thaw()
			return err
		}
		st.Status = container.Paused
		return nil
	})
	if errors.Is(err, container.ErrNotExist) {
		return fmt.Errorf("container %s does not exist", id)
	}
	return err
}
