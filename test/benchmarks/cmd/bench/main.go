// Command bench is `make bench`: it runs every workload natively, under runc
// and under runsc, prints the table, and writes the JSON results and the
// SVG chart under -out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"carapace.dev/carapace/test/benchmarks"
)

func main() {
	runs := flag.Int("runs", 5, "runs per workload and runtime.")
	micro := flag.Float64("micro-seconds", 1, "minimum seconds of operations per micro workload run.")
	runtimesFlag := flag.String("runtimes", "native,runc,runsc", "runtimes to compare, comma-separated.")
	platforms := flag.String("platforms", "systrap,ptrace", "runsc platforms, comma-separated (systrap is runsc's default).")
	network := flag.String("network", "none", "runsc --network for the runs.")
	runscBin := flag.String("runsc", "bin/runsc", "the runsc binary.")
	workdir := flag.String("workdir", "/var/tmp/carapace-bench", "directory on the root filesystem for inputs and the bundle.")
	outDir := flag.String("out", "test/benchmarks/results", "directory for the JSON results and the SVG chart.")
	only := flag.String("only", "", "regexp: run only the workloads whose name matches.")
	timeout := flag.Duration("timeout", 2*time.Minute, "limit for one run.")
	flag.Parse()
	if err := run(*runs, *micro, *runtimesFlag, *platforms, *network, *runscBin, *workdir, *outDir, *only, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(runs int, micro float64, runtimesFlag, platforms, network, runscBin, workdir, outDir, only string, timeout time.Duration) error {
	if runs < 1 || micro <= 0 {
		return fmt.Errorf("-runs must be at least 1 and -micro-seconds positive")
	}
	filter, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	benchmarks.MicroSeconds = micro
	in, err := benchmarks.Prepare(workdir)
	if err != nil {
		return err
	}
	var workloads []benchmarks.Workload
	for _, w := range in.Workloads() {
		if filter.MatchString(w.Name) {
			workloads = append(workloads, w)
		}
	}

	var bundle *benchmarks.Bundle
	needBundle := strings.Contains(runtimesFlag, "runc") || strings.Contains(runtimesFlag, "runsc")
	if needBundle {
		b, err := benchmarks.NewBundle(filepath.Join(workdir, fmt.Sprintf("bundle-%d", os.Getpid())))
		if err != nil {
			return err
		}
		defer b.Close()
		bundle = b
	}
	var runtimes []benchmarks.Runtime
	for _, name := range strings.Split(runtimesFlag, ",") {
		switch name {
		case "native":
			runtimes = append(runtimes, benchmarks.Native{})
		case "runc":
			if _, err := exec.LookPath("runc"); err != nil {
				return fmt.Errorf("runc is not installed (make deps installs it): %w", err)
			}
			runtimes = append(runtimes, &benchmarks.Runc{Bundle: bundle})
		case "runsc":
			abs, err := filepath.Abs(runscBin)
			if err != nil {
				return err
			}
			for _, p := range strings.Split(platforms, ",") {
				runtimes = append(runtimes, &benchmarks.Runsc{
					Binary: abs, Platform: p, Network: network, Bundle: bundle,
					Root: filepath.Join(workdir, "runsc-root"),
				})
			}
		default:
			return fmt.Errorf("unknown runtime %q: want native, runc or runsc", name)
		}
	}
	var names []string
	for _, rt := range runtimes {
		names = append(names, rt.Name())
	}

	res := benchmarks.Results{Machine: benchmarks.DescribeMachine()}
	res.Machine.Runs, res.Machine.MicroSecond = runs, micro
	res.Samples = benchmarks.Run(ctx, workloads, runtimes, benchmarks.Options{
		Runs: runs, Timeout: timeout,
		Progress: func(s benchmarks.Sample) {
			if s.Error != "" {
				fmt.Fprintf(os.Stderr, "%-20s %-14s fails: %s\n", s.Workload, s.Runtime, s.Error)
			} else {
				fmt.Fprintf(os.Stderr, "%-20s %-14s %.1f %s\n", s.Workload, s.Runtime, s.Median(), s.Unit)
			}
		},
	})
	res.Machine.Finish()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}

	fmt.Println()
	res.WriteTable(os.Stdout, names)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	jsonPath := filepath.Join(outDir, "bench-"+stamp+".json")
	svgPath := filepath.Join(outDir, "bench-"+stamp+".svg")
	if err := writeFile(jsonPath, func(f *os.File) error { return res.WriteJSON(f) }); err != nil {
		return err
	}
	if err := writeFile(svgPath, func(f *os.File) error { return res.WriteSVG(f, names) }); err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\nchart:   %s\n", jsonPath, svgPath)
	return nil
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
