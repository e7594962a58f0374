package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/sandbox"
	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update implements `runsc update`: change a container's resource limits
// (its host cgroup), with runc's flags.
type Update struct {
	resources                             string
	memory, memoryReservation, memorySwap string
	pidsLimit                             int64
	cpuPeriod, cpuShares                  uint64
	cpuQuota                              int64
	cpusetCpus, cpusetMems                string
}

// Name implements subcommands.Command.
func (*Update) Name() string { return "update" }

// Synopsis implements subcommands.Command.
func (*Update) Synopsis() string { return "update a container's resource limits" }

// Usage implements subcommands.Command.
func (*Update) Usage() string {
	return `update [flags] <container-id>
	Changes the memory, pids and cpu limits of the container's sandbox
	(Sentry, Gofer and application processes) in its host cgroup. Only
	the limits given change. -r FILE reads linux.resources as JSON ("-"
	for standard input); flags given beside it take precedence.
`
}

// SetFlags implements subcommands.Command.
func (u *Update) SetFlags(f *flag.FlagSet) {
	f.StringVar(&u.resources, "resources", "", "file holding the resources as JSON (linux.resources of the spec); - for standard input.")
	f.StringVar(&u.resources, "r", "", "short for --resources.")
	f.StringVar(&u.memory, "memory", "", "memory limit in bytes (suffixes k, m, g, t; -1 for none).")
	f.StringVar(&u.memoryReservation, "memory-reservation", "", "memory soft limit in bytes.")
	f.StringVar(&u.memorySwap, "memory-swap", "", "memory plus swap limit in bytes (-1 for none).")
	f.Int64Var(&u.pidsLimit, "pids-limit", 0, "maximum number of host tasks (0 or -1 for none).")
	f.Uint64Var(&u.cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds.")
	f.Int64Var(&u.cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds per period (-1 for none).")
	f.Uint64Var(&u.cpuShares, "cpu-share", 0, "CPU shares (relative weight).")
	f.Uint64Var(&u.cpuShares, "cpu-shares", 0, "same as --cpu-share.")
	f.StringVar(&u.cpusetCpus, "cpuset-cpus", "", "CPUs to run on (e.g. 0-3,5).")
	f.StringVar(&u.cpusetMems, "cpuset-mems", "", "memory nodes to allocate from.")
}

// Execute implements subcommands.Command.
func (u *Update) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("update: exactly one container id is required")
	}
	r, err := u.build(f)
	if err != nil {
		return Failure("update: %v", err)
	}
	if err := updateContainer(conf, f.Arg(0), r); err != nil {
		return Failure("update: %v", err)
	}
	return subcommands.ExitSuccess
}

// build makes the resources to apply from -r and the flags given.
func (u *Update) build(f *flag.FlagSet) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if u.resources != "" {
		var in io.Reader = os.Stdin
		if u.resources != "-" {
			file, err := os.Open(u.resources)
			if err != nil {
				return nil, err
			}
			defer file.Close()
			in = file
		}
		dec := json.NewDecoder(io.LimitReader(in, 1<<20))
		if err := dec.Decode(r); err != nil {
			return nil, fmt.Errorf("reading resources: %w", err)
		}
	}
	var err error
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	f.Visit(func(fl *flag.Flag) {
		if err != nil {
			return
		}
		var n int64
		switch fl.Name {
		case "memory", "memory-reservation", "memory-swap":
			if n, err = parseBytes(fl.Value.String()); err != nil {
				err = fmt.Errorf("--%s: %w", fl.Name, err)
				return
			}
			switch fl.Name {
			case "memory":
				mem().Limit = &n
			case "memory-reservation":
				mem().Reservation = &n
			default:
				mem().Swap = &n
			}
		case "pids-limit":
			n = u.pidsLimit
			r.Pids = &specs.LinuxPids{Limit: &n}
		case "cpu-period":
			v := u.cpuPeriod
			cpu().Period = &v
		case "cpu-quota":
			n = u.cpuQuota
			cpu().Quota = &n
		case "cpu-share", "cpu-shares":
			v := u.cpuShares
			cpu().Shares = &v
		case "cpuset-cpus":
			cpu().Cpus = u.cpusetCpus
		case "cpuset-mems":
			cpu().Mems = u.cpusetMems
		}
	})
	return r, err
}

// parseBytes reads a size as runc's update does: a number of bytes with
// an optional binary suffix (k, m, g, t, p; "b" and "ib" allowed after
// it, any case), or -1 for no limit.
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := int64(1)
	if t != "" {
		if i := strings.IndexByte("kmgtp", t[len(t)-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	total := v * float64(mult)
	if total >= 1<<63 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(total), nil
}

func updateContainer(conf *config.Config, id string, r *specs.LinuxResources) error {
	err := storeOf(conf).Update(id, func(st *container.State) error {
		switch st.Status {
		case container.Created, container.Running, container.Paused:
		default:
			return fmt.Errorf("container %s is not running: %s", id, st.Status)
		}
		cg := cgroupOf(st)
		if cg == nil {
			// A container created without limits gets its cgroup now.
			c, err := sandbox.CgroupFor(id)
			if err != nil {
				return err
			}
			if err := c.Create(); err != nil {
				return err
			}
			st.Cgroup = c.Dirs
			if err := c.JoinTree(st.SentryPid); err != nil {
				return err
			}
			if st.GoferPid > 0 && processIsRunsc(st.GoferPid) {
				c.Join(st.GoferPid)
			}
			cg = c
		}
		return cg.Apply(r)
	})
	if errors.Is(err, container.ErrNotExist) {
		return fmt.Errorf("container %s does not exist", id)
	}
	return err
}
