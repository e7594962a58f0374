// Command syscalls builds and runs the syscall conformance suite natively
// and under runsc, and prints the test case × platform table.
//
//	go run ./test/syscalls/runner/cmd/syscalls -platforms=ptrace,systrap -filter='^pipe$'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"carapace.dev/carapace/test/syscalls/runner"
)

func main() {
	root, err := runner.FindRepoRoot(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var (
		runsc       = flag.String("runsc", runner.DefaultRunsc(root), "runsc binary (env RUNSC)")
		runscArgs   = flag.String("runsc-args", os.Getenv("SYSCALL_RUNSC_ARGS"), "extra runsc flags before `do`, space-separated (env SYSCALL_RUNSC_ARGS)")
		platforms   = flag.String("platforms", "ptrace,systrap,kvm", `runsc platforms, comma-separated ("" for native only)`)
		filter      = flag.String("filter", "", "regexp selecting test binaries by name")
		parallel    = flag.Int("parallel", 2*runtime.NumCPU(), "shards run at once")
		perShard    = flag.Int("per-shard", 25, "test cases per process")
		timeout     = flag.Duration("timeout", 3*time.Minute, "timeout per process")
		skipNative  = flag.Bool("skip-native", false, "do not run the native column")
		buildOnly   = flag.Bool("build-only", false, "build the binaries and exit")
		printFails  = flag.Bool("print-failures", false, "print current runsc failures in EXPECTED_FAILURES format")
		summaryOnly = flag.Bool("summary", false, "print totals only, not the full table")
	)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var keep func(string) bool
	if *filter != "" {
		re, err := regexp.Compile(*filter)
		if err != nil {
			fmt.Fprintln(os.Stderr, "-filter:", err)
			os.Exit(2)
		}
		keep = re.MatchString
	}
	if err := runner.CheckToolchain(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	start := time.Now()
	bins, err := runner.Build(ctx, filepath.Join(root, "test/syscalls/linux"), filepath.Join(root, "test/syscalls/build"), runtime.NumCPU(), keep, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "built %d binaries in %v\n", len(bins), time.Since(start).Round(time.Millisecond))
	if *buildOnly {
		return
	}
	if len(bins) == 0 {
		fmt.Fprintln(os.Stderr, runner.ErrNoTests)
		os.Exit(2)
	}
	exp, err := runner.LoadExpected(filepath.Join(root, "test/syscalls/EXPECTED_FAILURES"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var plats []string
	if *platforms != "" {
		plats = strings.Split(*platforms, ",")
	}
	tmp, err := os.MkdirTemp("", "syscall-suite-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer os.RemoveAll(tmp)
	out, err := runner.RunSuite(ctx, bins, runner.Options{
		Platforms:  plats,
		Runsc:      *runsc,
		RunscArgs:  strings.Fields(*runscArgs),
		Parallel:   *parallel,
		PerShard:   *perShard,
		Timeout:    *timeout,
		TmpDir:     tmp,
		SkipNative: *skipNative,
		Progress: func(p string, done, total int) {
			fmt.Fprintf(os.Stderr, "\r%s: %d/%d shards", p, done, total)
			if done == total {
				fmt.Fprintln(os.Stderr)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	v := runner.Judge(out, exp)
	if *summaryOnly {
		runner.WriteSummary(os.Stdout, out, exp, v)
	} else {
		runner.WriteTable(os.Stdout, out, exp, v)
	}
	if !v.OK() {
		fmt.Println()
		runner.FailureDetails(os.Stdout, out, exp)
	}
	if *printFails {
		fmt.Print("\n# current runsc failures:\n" + runner.CurrentFailures(out))
	}
	if !v.OK() {
		os.Exit(1)
	}
}
