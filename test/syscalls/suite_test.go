package syscalls

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/sentry/socket/sockettest"
	"carapace.dev/carapace/test/syscalls/runner"
)

// Environment knobs (go test flags would be rejected by the other packages
// matched by ./test/syscalls/...):
//
//	RUNSC              runsc binary (default <repo>/bin/runsc)
//	SYSCALL_PLATFORMS  comma-separated runsc platforms (default ptrace,systrap,kvm; "none" for native only)
//	SYSCALL_FILTER     regexp selecting binaries by name (default all)
//	SYSCALL_PARALLEL   shards run at once (default 2×CPUs)
//	SYSCALL_RUNSC_ARGS extra runsc flags placed before "do", space-separated
//	SYSCALL_VERBOSE    print the full table even on success
func TestSyscallSuite(t *testing.T) {
	if err := runner.CheckToolchain(); err != nil {
		t.Skipf("cannot build the C++ suite: %v", err)
	}
	// The native column runs the host ping-socket cases too.
	sockettest.AllowPingSockets(t)
	root, err := runner.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	var keep func(string) bool
	if f := os.Getenv("SYSCALL_FILTER"); f != "" {
		re, err := regexp.Compile(f)
		if err != nil {
			t.Fatalf("SYSCALL_FILTER: %v", err)
		}
		keep = re.MatchString
	}
	platforms := []string{"ptrace", "systrap", "kvm"}
	if p := os.Getenv("SYSCALL_PLATFORMS"); p != "" {
		platforms = nil
		if p != "none" {
			platforms = strings.Split(p, ",")
		}
	}
	parallel := 2 * runtime.NumCPU()
	if p, err := strconv.Atoi(os.Getenv("SYSCALL_PARALLEL")); err == nil && p > 0 {
		parallel = p
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-20*time.Second))
		defer cancel()
	}

	buildDir := filepath.Join(root, "test", "syscalls", "build")
	start := time.Now()
	var buildLog bytes.Buffer
	bins, err := runner.Build(ctx, filepath.Join(root, "test", "syscalls", "linux"), buildDir, runtime.NumCPU(), keep, &buildLog)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, buildLog.String())
	}
	if len(bins) == 0 {
		t.Fatal(runner.ErrNoTests)
	}
	t.Logf("built %d binaries in %v", len(bins), time.Since(start).Round(time.Millisecond))

	exp, err := runner.LoadExpected(filepath.Join(root, "test", "syscalls", "EXPECTED_FAILURES"))
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir(): its parent is private (0700), and tests that drop
	// to an unprivileged uid must still reach their files.
	tmp, err := os.MkdirTemp("", "carapace-syscalls-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	out, err := runner.RunSuite(ctx, bins, runner.Options{
		Platforms: platforms,
		Runsc:     runner.DefaultRunsc(root),
		RunscArgs: strings.Fields(os.Getenv("SYSCALL_RUNSC_ARGS")),
		Parallel:  parallel,
		PerShard:  25,
		// Native shards take seconds; a case that hangs under runsc costs a
		// whole timeout, so keep it short enough for CI's budget.
		Timeout: time.Minute,
		TmpDir:  tmp,
	})
	if err != nil {
		t.Fatalf("running suite: %v", err)
	}
	v := runner.Judge(out, exp)

	var table bytes.Buffer
	runner.WriteTable(&table, out, exp, v)
	report := filepath.Join(buildDir, "report.txt")
	if err := os.WriteFile(report, table.Bytes(), 0o644); err != nil {
		t.Errorf("writing report: %v", err)
	}
	var summary bytes.Buffer
	runner.WriteSummary(&summary, out, exp, v)
	if os.Getenv("SYSCALL_VERBOSE") != "" {
		t.Log("\n" + table.String())
	} else {
		t.Logf("full table in %s\n%s", report, summary.String())
	}
	for c, reason := range out.Unavailable {
		// Loud but not fatal: the Sentry cannot run programs yet.
		fmt.Fprintf(os.Stderr, "syscall suite: runsc platform %s UNAVAILABLE: %s\n", c, reason)
	}
	if !v.OK() {
		var details bytes.Buffer
		runner.FailureDetails(&details, out, exp)
		t.Errorf("syscall suite failed:\n%s\n%s", summary.String(), details.String())
	}
}
