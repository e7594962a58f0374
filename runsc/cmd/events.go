package cmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/sandbox"
	"github.com/google/subcommands"
)

// Events implements `runsc events`: resource usage of a container, once
// (--stats) or every --interval until it stops, as runc prints it.
type Events struct {
	stats    bool
	interval time.Duration
}

// Name implements subcommands.Command.
func (*Events) Name() string { return "events" }

// Synopsis implements subcommands.Command.
func (*Events) Synopsis() string { return "display container events and resource usage" }

// Usage implements subcommands.Command.
func (*Events) Usage() string {
	return `events [--stats] [--interval DURATION] <container-id>
	Prints one JSON "stats" event per line: the container's process and
	thread counts, application memory and CPU time. With --stats prints
	one and exits; otherwise one every --interval until the container
	stops.
`
}

// SetFlags implements subcommands.Command.
func (e *Events) SetFlags(f *flag.FlagSet) {
	f.BoolVar(&e.stats, "stats", false, "print resource usage once and exit.")
	f.DurationVar(&e.interval, "interval", 5*time.Second, "time between stats events.")
}

// event is one line of `runsc events`, shaped as runc's.
type event struct {
	Type string     `json:"type"`
	ID   string     `json:"id"`
	Data *eventData `json:"data,omitempty"`
}

type eventData struct {
	CPU struct {
		Usage struct {
			Total  uint64 `json:"total"`
			Kernel uint64 `json:"kernel,omitempty"`
			User   uint64 `json:"user,omitempty"`
		} `json:"usage"`
		Throttling struct {
			Periods          uint64 `json:"periods,omitempty"`
			ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
			ThrottledTime    uint64 `json:"throttledTime,omitempty"`
		} `json:"throttling"`
	} `json:"cpu"`
	Memory struct {
		Usage struct {
			Usage uint64 `json:"usage"`
			Limit uint64 `json:"limit,omitempty"`
		} `json:"usage"`
		// Raw is the cgroup's memory.stat.
		Raw map[string]uint64 `json:"raw,omitempty"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current"`
		Limit   uint64 `json:"limit,omitempty"`
	} `json:"pids"`
	Threads uint64 `json:"threads"`
}

// addCgroupStats adds what the container's host cgroup reports (limits,
// memory.stat, CPU split and throttling), as runc's events do; the
// process count and memory use stay the sandbox's own.
func addCgroupStats(d *eventData, st *container.State) {
	cg := cgroupOf(st)
	if cg == nil {
		return
	}
	cs, err := cg.Stats() // runsc/sandbox/cgroup_stats.go
	if err != nil {
		log.Warningf("events: reading the container's cgroup: %v", err)
		return
	}
	d.Memory.Usage.Limit = cs.MemoryLimit
	d.Memory.Raw = cs.MemoryStat
	d.Pids.Limit = cs.PidsLimit
	d.CPU.Usage.Kernel, d.CPU.Usage.User = cs.CPUSystem, cs.CPUUser
	d.CPU.Throttling.Periods, d.CPU.Throttling.ThrottledPeriods, d.CPU.Throttling.ThrottledTime = cs.CPUPeriods, cs.CPUThrottledPeriods, cs.CPUThrottledTime
}

// Execute implements subcommands.Command.
func (e *Events) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() != 1 {
		return usageError("events: exactly one container id is required")
	}
	if e.interval <= 0 {
		return usageError("events: --interval must be positive")
	}
	id := f.Arg(0)
	enc := json.NewEncoder(os.Stdout)
	for {
		ev, err := statsEvent(conf, id)
		if err != nil {
			return Failure("events: %v", err)
		}
		if ev == nil { // stopped
			return subcommands.ExitSuccess
		}
		enc.Encode(ev)
		if e.stats {
			return subcommands.ExitSuccess
		}
		select {
		case <-ctx.Done():
			return subcommands.ExitSuccess
		case <-time.After(e.interval):
		}
	}
}

// statsEvent samples a container; nil once it has stopped.
func statsEvent(conf *config.Config, id string) (*event, error) {
	st, err := loadForAction(conf, id)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case container.Stopped:
		return nil, nil
	case container.Paused:
		return nil, fmt.Errorf("container %s is paused", id)
	}
	resp, err := control.Call(storeOf(conf).StateDir(id), &control.Request{Method: control.MethodStats}, nil)
	if err == control.ErrNoSandbox {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d := &eventData{}
	if s := resp.Stats; s != nil {
		d.Pids.Current = uint64(s.Processes)
		d.Threads = uint64(s.Threads)
		d.Memory.Usage.Usage = s.MemoryBytes
	}
	d.CPU.Usage.Total = uint64(sandboxCPUTime(st))
	addCgroupStats(d, st)
	return &event{Type: "stats", ID: id, Data: d}, nil
}

// sandboxCPUTime is the CPU time of the sandbox's host processes: the
// Sentry, the Gofer and the Sentry's stubs (which run the application's
// code).
func sandboxCPUTime(st *container.State) time.Duration {
	pids := append([]int{st.SentryPid, st.GoferPid}, sandbox.Descendants(st.SentryPid)...)
	var total time.Duration
	for _, p := range pids {
		total += processCPUTime(p)
	}
	return total
}

// processCPUTime is a process's user+system time (/proc/PID/stat fields
// 14 and 15, in USER_HZ = 100 ticks a second on Linux).
func processCPUTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return 0
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 13 {
		return 0
	}
	// fields[0] is field 3, so fields 14 and 15 are fields[11] and [12].
	utime, _ := strconv.ParseUint(fields[11], 10, 64)
	stime, _ := strconv.ParseUint(fields[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}
