// Package benchmarks is the harness behind `make bench`: it runs the same
// workloads — identical binaries and inputs — natively, under runc and under
// runsc, several times each, and reports medians, ranges and ratios to
// native as a table, a JSON file and an SVG chart.
//
// Micro workloads (workloads/microbench.c) time at least a second of
// operations inside the workload and report ns per operation, so a
// runtime's start-up is not in the figure; macro workloads are timed as
// whole processes, start-up included, because that is what a user waits
// for; the memory workload reports the proportional set size of an idle
// container's processes.
package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Kind says how a workload is measured.
type Kind int

const (
	// Micro workloads report ns per operation themselves.
	Micro Kind = iota
	// Macro workloads are timed start to exit by the harness.
	Macro
	// Memory workloads report the PSS of an idle container, in KiB.
	Memory
)

// Unit is what a Kind's figures measure.
func (k Kind) Unit() string {
	switch k {
	case Micro:
		return "ns/op"
	case Macro:
		return "ms"
	default:
		return "KiB PSS"
	}
}

// Workload is one thing to measure.
type Workload struct {
	Name string
	Kind Kind
	// Args is the command, as it runs in every runtime. For Micro
	// workloads the harness appends the minimum duration in seconds.
	Args []string
	// Bundle asks runsc to run this workload with `runsc run` on the OCI
	// bundle instead of `runsc do`.
	Bundle bool
}

// MicroSeconds is the minimum time each micro workload runs its operations.
var MicroSeconds = 1.0

// Command is the full command line of w as every runtime runs it.
func (w Workload) Command() []string {
	args := append([]string(nil), w.Args...)
	if w.Kind == Micro {
		args = append(args, strconv.FormatFloat(MicroSeconds, 'f', -1, 64))
	}
	return args
}

// Runtime runs a workload once and returns its figure in the Kind's unit.
type Runtime interface {
	Name() string
	Run(ctx context.Context, w Workload) (float64, error)
}

// Sample is one workload under one runtime: every run's figure, or the
// error that stopped it.
type Sample struct {
	Workload string    `json:"workload"`
	Runtime  string    `json:"runtime"`
	Unit     string    `json:"unit"`
	Values   []float64 `json:"values,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Median, Min and Max summarize the runs; they are 0 with no values.
func (s Sample) Median() float64 {
	if len(s.Values) == 0 {
		return 0
	}
	v := slices.Sorted(slices.Values(s.Values))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Min is the smallest figure.
func (s Sample) Min() float64 {
	if len(s.Values) == 0 {
		return 0
	}
	return slices.Min(s.Values)
}

// Max is the largest figure.
func (s Sample) Max() float64 {
	if len(s.Values) == 0 {
		return 0
	}
	return slices.Max(s.Values)
}

// Options control a harness run.
type Options struct {
	Runs    int           // runs per workload and runtime
	Timeout time.Duration // per run
	// Progress, if set, is told about each sample as it completes.
	Progress func(Sample)
}

// Run measures every workload under every runtime. A runtime that fails a
// workload once is not asked again for it: the failure is the result.
func Run(ctx context.Context, workloads []Workload, runtimes []Runtime, opts Options) []Sample {
	var out []Sample
	for _, w := range workloads {
		for _, rt := range runtimes {
			s := Sample{Workload: w.Name, Runtime: rt.Name(), Unit: w.Kind.Unit()}
			for i := 0; i < opts.Runs; i++ {
				rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
				v, err := rt.Run(rctx, w)
				cancel()
				if err != nil {
					s.Values = nil
					s.Error = err.Error()
					break
				}
				s.Values = append(s.Values, v)
			}
			if opts.Progress != nil {
				opts.Progress(s)
			}
			out = append(out, s)
		}
	}
	return out
}

// Ratio returns s's median over the native median of the same workload,
// and false when either is missing.
func Ratio(samples []Sample, s Sample, native string) (float64, bool) {
	if s.Error != "" || len(s.Values) == 0 {
		return 0, false
	}
	for _, n := range samples {
		if n.Workload == s.Workload && n.Runtime == native && n.Error == "" && n.Median() > 0 {
			return s.Median() / n.Median(), true
		}
	}
	return 0, false
}

// errorf is fmt.Errorf; named for the runtimes' uniform messages.
var errorf = fmt.Errorf
