package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Status is the outcome of one test case on one platform.
type Status int

// Statuses, ordered so the zero value means "no result".
const (
	NotRun Status = iota
	Pass
	Fail
	Skip
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case Skip:
		return "skip"
	}
	return "-"
}

// Result is one test case's outcome with the failure text, if any.
type Result struct {
	Status  Status
	Message string
}

// Native is the column name for running binaries directly on the host.
const Native = "native"

// ListTests asks a gtest binary for its test cases ("Suite.Case").
func ListTests(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, bin, "--gtest_list_tests").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --gtest_list_tests: %w", bin, err)
	}
	return parseTestList(out), nil
}

// parseTestList parses --gtest_list_tests output: suite lines end with '.',
// case lines are indented; both may carry a "  # TypeParam/GetParam" note.
func parseTestList(out []byte) []string {
	var tests []string
	suite := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			l := strings.TrimSpace(line)
			if strings.HasSuffix(l, ".") {
				suite = l
			} else {
				suite = "" // e.g. "Running main() from ..."
			}
			continue
		}
		if suite != "" {
			tests = append(tests, suite+strings.TrimSpace(line))
		}
	}
	return tests
}

var (
	runLine    = regexp.MustCompile(`^\[ RUN      \] (\S+)$`)
	resultLine = regexp.MustCompile(`^\[ +(OK|FAILED|SKIPPED) +\] (\S+) \(\d+ ms\)$`)
)

// textResults parses gtest's console output. It returns the results it
// saw and the test that was running when the output stopped (crash or
// timeout), or "".
func textResults(out []byte) (map[string]Result, string) {
	res := map[string]Result{}
	running := ""
	var msg strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := runLine.FindStringSubmatch(line); m != nil {
			running = m[1]
			msg.Reset()
			continue
		}
		if m := resultLine.FindStringSubmatch(line); m != nil && m[2] == running {
			r := Result{Status: Pass}
			switch m[1] {
			case "FAILED":
				r = Result{Status: Fail, Message: strings.TrimSpace(msg.String())}
			case "SKIPPED":
				r = Result{Status: Skip, Message: strings.TrimSpace(msg.String())}
			}
			res[running] = r
			running = ""
			continue
		}
		if running != "" && msg.Len() < 8192 {
			msg.WriteString(line)
			msg.WriteByte('\n')
		}
	}
	return res, running
}

// jsonReport is the subset of gtest's --gtest_output=json we read.
type jsonReport struct {
	TestSuites []struct {
		Name  string `json:"name"`
		Tests []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			Result   string `json:"result"`
			Failures []struct {
				Failure string `json:"failure"`
			} `json:"failures"`
		} `json:"testsuite"`
	} `json:"testsuites"`
}

func jsonResults(b []byte) (map[string]Result, error) {
	var rep jsonReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("parsing gtest json: %w", err)
	}
	res := map[string]Result{}
	for _, s := range rep.TestSuites {
		for _, t := range s.Tests {
			name := s.Name + "." + t.Name
			switch {
			case t.Status != "RUN":
				continue
			case len(t.Failures) > 0:
				var msgs []string
				for _, f := range t.Failures {
					msgs = append(msgs, f.Failure)
				}
				res[name] = Result{Status: Fail, Message: strings.Join(msgs, "\n")}
			case t.Result == "SKIPPED":
				res[name] = Result{Status: Skip}
			default:
				res[name] = Result{Status: Pass}
			}
		}
	}
	return res, nil
}

// Shard is a set of test cases of one binary run by one process.
type Shard struct {
	Bin   Binary
	Tests []string
}

// MakeShards splits each binary's tests into shards of at most perShard.
func MakeShards(bins []Binary, tests map[string][]string, perShard int) []Shard {
	if perShard < 1 {
		perShard = 1
	}
	var shards []Shard
	for _, b := range bins {
		ts := tests[b.Name]
		for i := 0; i < len(ts); i += perShard {
			end := min(i+perShard, len(ts))
			shards = append(shards, Shard{Bin: b, Tests: ts[i:end]})
		}
	}
	return shards
}

// Launcher turns a gtest invocation into the command to run: natively, or
// wrapped in `runsc --platform=P do`.
type Launcher struct {
	Platform string // Native or a runsc platform name
	Runsc    string // path of runsc when Platform != Native
	// ExtraRunscArgs go before "do" (e.g. --network=none).
	ExtraRunscArgs []string
}

func (l Launcher) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if l.Platform == Native {
		return exec.CommandContext(ctx, bin, args...)
	}
	a := []string{"--platform=" + l.Platform}
	a = append(a, l.ExtraRunscArgs...)
	a = append(a, "do", bin)
	a = append(a, args...)
	return exec.CommandContext(ctx, l.Runsc, a...)
}

// runProcess runs cmd in its own process group with a timeout, killing the
// whole group when it expires so no test child outlives the runner.
func runProcess(cmd *exec.Cmd, timeout time.Duration) (out []byte, timedOut bool, err error) {
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	timer := time.AfterFunc(timeout, func() {
		timedOut = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	err = cmd.Wait()
	timer.Stop()
	// Reap anything the tests left in the group.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return buf.Bytes(), timedOut, err
}

// RunShard runs one shard and returns a result for every test in it. Tests
// left without a result because the binary crashed or timed out are re-run
// in a fresh process; the test that was running at the time is recorded as
// failed with the reason.
func RunShard(ctx context.Context, l Launcher, s Shard, timeout time.Duration, tmpDir string) map[string]Result {
	results := map[string]Result{}
	pending := append([]string(nil), s.Tests...)
	for len(pending) > 0 && ctx.Err() == nil {
		got, running, reason := runOnce(ctx, l, s.Bin, pending, timeout, tmpDir)
		var next []string
		for _, t := range pending {
			if r, ok := got[t]; ok {
				results[t] = r
			} else if t == running {
				results[t] = Result{Status: Fail, Message: reason}
			} else {
				next = append(next, t)
			}
		}
		if len(next) == len(pending) {
			// No progress (e.g. the binary cannot start): fail them all.
			for _, t := range next {
				results[t] = Result{Status: Fail, Message: reason}
			}
			break
		}
		pending = next
	}
	return results
}

func runOnce(ctx context.Context, l Launcher, bin Binary, tests []string, timeout time.Duration, tmpDir string) (map[string]Result, string, string) {
	args := []string{"--gtest_filter=" + strings.Join(tests, ":"), "--gtest_color=no"}
	var jsonPath string
	if l.Platform == Native {
		// runsc's rootfs overlay would hide a file written inside the
		// sandbox, so JSON output is used natively only; under runsc the
		// console output is parsed.
		f, err := os.CreateTemp(tmpDir, bin.Name+"-*.json")
		if err == nil {
			jsonPath = f.Name()
			f.Close()
			defer os.Remove(jsonPath)
			args = append(args, "--gtest_output=json:"+jsonPath)
		}
	}
	cmd := l.command(ctx, bin.Path, args...)
	cmd.Env = append(os.Environ(), "TEST_TMPDIR="+tmpDir)
	out, timedOut, err := runProcess(cmd, timeout)
	got, running := textResults(out)
	if jsonPath != "" {
		if b, rerr := os.ReadFile(jsonPath); rerr == nil && len(b) > 0 {
			if jr, jerr := jsonResults(b); jerr == nil {
				for k, v := range jr {
					// The console text also holds what forked children
					// printed to stderr; keep it when it says more.
					if t, ok := got[k]; ok && len(t.Message) > len(v.Message) {
						v.Message = t.Message
					}
					got[k] = v
				}
			}
		}
	}
	reason := ""
	switch {
	case timedOut:
		reason = fmt.Sprintf("timed out after %v", timeout)
	case err != nil:
		reason = fmt.Sprintf("binary exited abnormally: %v", err)
	default:
		reason = "no result reported"
	}
	if running != "" || reason != "no result reported" {
		reason += "\n" + tail(out, 2000)
	}
	return got, running, reason
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Probe checks whether runsc can run a trivial program on a platform.
// It returns nil when `runsc --platform=P do /bin/true` succeeds.
func Probe(ctx context.Context, l Launcher, timeout time.Duration) error {
	if _, err := os.Stat(l.Runsc); err != nil {
		return fmt.Errorf("runsc binary not found: %w", err)
	}
	cmd := l.command(ctx, "/bin/true")
	out, timedOut, err := runProcess(cmd, timeout)
	if timedOut {
		return fmt.Errorf("`%s` timed out after %v", strings.Join(cmd.Args, " "), timeout)
	}
	if err != nil {
		msg := strings.TrimSpace(tail(out, 600))
		if msg == "" {
			msg = "(no output)"
		}
		return fmt.Errorf("`%s`: %v: %s", strings.Join(cmd.Args, " "), err, msg)
	}
	return nil
}

// Options configure a whole suite run.
type Options struct {
	Platforms []string // runsc platforms to try, in column order
	Runsc     string
	// RunscArgs are extra runsc flags placed before "do".
	RunscArgs []string
	// Parallel is the number of shards run at once.
	Parallel int
	// PerShard is the number of test cases per process.
	PerShard int
	// Timeout bounds each process (one shard of one binary).
	Timeout time.Duration
	// TmpDir is where tests create their temporary files.
	TmpDir string
	// SkipNative skips the native column (for quick runsc-only runs).
	SkipNative bool
	// Progress, if set, is called after each shard completes.
	Progress func(platform string, done, total int)
}

// Outcome holds everything a suite run produced.
type Outcome struct {
	Columns     []string          // "native" then the platforms
	Unavailable map[string]string // platform → reason it could not run
	Tests       []string          // all test IDs "binary:Suite.Case", sorted
	Results     map[string]map[string]Result
	Elapsed     map[string]time.Duration
}

// TestID names a test case across the suite.
func TestID(bin, test string) string { return bin + ":" + test }

// RunSuite lists every binary's tests and runs them on each column.
func RunSuite(ctx context.Context, bins []Binary, opts Options) (*Outcome, error) {
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.TmpDir != "" {
		// Tests that drop privileges (setresuid to 1000) must still reach
		// their temporary directories, like under /tmp.
		if err := os.Chmod(opts.TmpDir, 0o1777); err != nil {
			return nil, fmt.Errorf("making %s world-accessible: %w", opts.TmpDir, err)
		}
	}
	tests := map[string][]string{}
	o := &Outcome{Unavailable: map[string]string{}, Results: map[string]map[string]Result{}, Elapsed: map[string]time.Duration{}}
	for _, b := range bins {
		ts, err := ListTests(ctx, b.Path)
		if err != nil {
			return nil, err
		}
		tests[b.Name] = ts
		for _, t := range ts {
			o.Tests = append(o.Tests, TestID(b.Name, t))
		}
	}
	sort.Strings(o.Tests)
	shards := MakeShards(bins, tests, opts.PerShard)
	// Longest shards first keeps the tail of the parallel run short.
	sort.SliceStable(shards, func(i, j int) bool { return len(shards[i].Tests) > len(shards[j].Tests) })

	var cols []string
	if !opts.SkipNative {
		cols = append(cols, Native)
	}
	cols = append(cols, opts.Platforms...)
	o.Columns = cols
	for _, col := range cols {
		l := Launcher{Platform: col, Runsc: opts.Runsc, ExtraRunscArgs: opts.RunscArgs}
		if col != Native {
			if err := Probe(ctx, l, time.Minute); err != nil {
				o.Unavailable[col] = err.Error()
				continue
			}
		}
		start := time.Now()
		res := runShards(ctx, l, shards, opts)
		o.Elapsed[col] = time.Since(start)
		o.Results[col] = res
		if ctx.Err() != nil {
			return o, ctx.Err()
		}
	}
	return o, nil
}

func runShards(ctx context.Context, l Launcher, shards []Shard, opts Options) map[string]Result {
	var (
		mu   sync.Mutex
		res  = map[string]Result{}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, opts.Parallel)
		done int
	)
	for _, s := range shards {
		wg.Add(1)
		go func(s Shard) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := RunShard(ctx, l, s, opts.Timeout, opts.TmpDir)
			mu.Lock()
			defer mu.Unlock()
			for t, v := range r {
				res[TestID(s.Bin.Name, t)] = v
			}
			done++
			if opts.Progress != nil {
				opts.Progress(l.Platform, done, len(shards))
			}
		}(s)
	}
	wg.Wait()
	return res
}

// DefaultRunsc is where `make` puts runsc, relative to the repo root.
func DefaultRunsc(repoRoot string) string {
	if p := os.Getenv("RUNSC"); p != "" {
		return p
	}
	return filepath.Join(repoRoot, "bin", "runsc")
}

// ErrNoTests is returned when nothing was selected.
var ErrNoTests = errors.New("no test binaries selected")
