package seccomp

// Compiled rule sets installed in the host kernel must act as our
// interpreter says. Each case runs in a child process (this test binary,
// re-executed), since a filter cannot be removed.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/bpf"
	"golang.org/x/sys/unix"
)

const (
	childScenarioEnv = "CARAPACE_SECCOMP_TEST_SCENARIO"
	childCallsEnv    = "CARAPACE_SECCOMP_TEST_CALLS"
	// Numbers no x86-64 syscall has: allowed, they fail with ENOSYS, and
	// the Go runtime never makes them.
	testSyscallBase = 1000
)

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childScenarioEnv); scenario != "" {
		os.Exit(child(scenario, os.Getenv(childCallsEnv)))
	}
	os.Exit(m.Run())
}

type call struct {
	Nr   int32
	Args [6]uint64
}

// scenarioRuleSet builds the rule set a child installs. Everything the Go
// runtime needs stays allowed (the default), and the test syscalls get
// argument rules with distinct errnos so the verdict is visible.
func scenarioRuleSet(seed uint64) (*RuleSet, Options) {
	opts := Options{DefaultAction: ActionAllow, BadArchAction: ActionKillProcess}
	switch seed {
	case 0: // kill
		return NewRuleSet().Add(testSyscallBase, ActionKillProcess, EqualTo(13)), opts
	case 1: // the same, in log-instead-of-kill mode with kernel logging
		opts.LogInsteadOfKill, opts.KernelLog = true, true
		return NewRuleSet().Add(testSyscallBase, ActionKillProcess, EqualTo(13)), opts
	case 100, 101: // syscall -1, allowed or not
		opts.AllowCancelledSyscall = seed == 100
		return NewRuleSet().Add(testSyscallBase, ActionAllow), opts
	}
	s := NewRuleSet()
	matchers := []func(uint64) ArgMatcher{
		EqualTo, NotEqualTo, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual,
		func(v uint64) ArgMatcher { return SignedGreaterThan(int64(v)) },
		func(v uint64) ArgMatcher { return SignedLessThanOrEqual(int64(v)) },
		func(v uint64) ArgMatcher { return MaskedEqual(0xffff0000ffff0000, v&0xffff0000ffff0000) },
	}
	// Deterministic from the seed: the child rebuilds the same set.
	x := seed
	next := func() uint64 { x = x*6364136223846793005 + 1442695040888963407; return x >> 11 }
	for nr := range int32(8) {
		for alt := range 3 {
			var m [6]ArgMatcher
			for range 1 + int(next()%2) {
				m[next()%6] = matchers[next()%uint64(len(matchers))](boundaries[next()%uint64(len(boundaries))])
			}
			s.AddRule(uintptr(testSyscallBase+nr), Rule{Args: m, Action: Errno(unix.Errno(100 + int(nr)*10 + alt))})
		}
	}
	return s, opts
}

func child(scenario, callsJSON string) int {
	seed, err := strconv.ParseUint(scenario, 10, 64)
	if err != nil {
		return 3
	}
	var calls []call
	if err := json.Unmarshal([]byte(callsJSON), &calls); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	s, opts := scenarioRuleSet(seed)
	if err := Install(s, opts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var results []int64
	for _, c := range calls {
		a := c.Args
		r, _, errno := unix.RawSyscall6(uintptr(c.Nr), uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
		if errno != 0 {
			results = append(results, -int64(errno))
		} else {
			results = append(results, int64(r))
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		return 3
	}
	return 0
}

// runChild runs scenario with calls; it returns the results, or the signal
// that killed the child.
func runChild(t *testing.T, scenario uint64, calls []call) ([]int64, syscall.Signal) {
	t.Helper()
	callsJSON, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), childScenarioEnv+"="+strconv.FormatUint(scenario, 10), childCallsEnv+"="+string(callsJSON))
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil, ws.Signal()
		}
		t.Fatalf("child: %v: %s", err, ee.Stderr)
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var results []int64
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(calls) {
		t.Fatalf("child output %q: %v", out, err)
	}
	return results, 0
}

// expectedResult is what a syscall returns under verdict a, for the
// syscalls used here (which do not exist, so allowed means ENOSYS).
func expectedResult(a Action) int64 {
	switch a.Kind() {
	case ActionAllow, ActionLog:
		return -int64(unix.ENOSYS)
	case ActionErrno:
		return -int64(a.Data())
	}
	return 1 << 62 // not expected in these scenarios
}

func requireSeccomp(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the compiled filters are for x86-64")
	}
	if err := unix.Prctl(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err == unix.EINVAL {
		t.Skip("kernel without seccomp")
	}
}

func TestInstalledRuleSetsMatchInterpreter(t *testing.T) {
	requireSeccomp(t)
	verdicts := map[Action]int{}
	defer func() {
		// The inputs must exercise the rules, not only the default.
		if len(verdicts) < 10 {
			t.Errorf("only %d distinct verdicts: %v", len(verdicts), verdicts)
		}
	}()
	for seed := uint64(2); seed < 14; seed++ {
		s, opts := scenarioRuleSet(seed)
		p := mustCompile(t, s, opts)
		var calls []call
		x := seed * 7919
		for i := range 40 {
			c := call{Nr: int32(testSyscallBase + i%9)}
			for k := range c.Args {
				x = x*6364136223846793005 + 1
				b := boundaries[(x>>33)%uint64(len(boundaries))]
				c.Args[k] = b + uint64(x>>62) - 1
			}
			calls = append(calls, c)
		}
		results, sig := runChild(t, seed, calls)
		if sig != 0 {
			t.Fatalf("seed %d: child killed by %v", seed, sig)
		}
		for i, c := range calls {
			d := &bpf.SeccompData{Nr: c.Nr, Arch: AuditArchX86_64, Args: c.Args}
			verdict := Action(p.RunSeccomp(d))
			verdicts[verdict]++
			if want := s.Evaluate(d, opts); verdict != want {
				t.Fatalf("seed %d call %+v: interpreter %v, Evaluate %v", seed, c, verdict, want)
			}
			if want := expectedResult(verdict); results[i] != want {
				t.Errorf("seed %d call %+v: kernel returned %d, our verdict %v means %d", seed, c, results[i], verdict, want)
			}
		}
	}
}

// TestInstalledCancelledSyscall checks that the kernel runs filters on
// syscall number -1 and that AllowCancelledSyscall lets it through (to
// fail with ENOSYS), while without it the bad-arch action applies.
func TestInstalledCancelledSyscall(t *testing.T) {
	requireSeccomp(t)
	cancelled := []call{{Nr: -1}}
	results, sig := runChild(t, 100, cancelled)
	if sig != 0 || results[0] != -int64(unix.ENOSYS) {
		t.Fatalf("allowed syscall -1: results %v, signal %v", results, sig)
	}
	if _, sig := runChild(t, 101, cancelled); sig != unix.SIGSYS {
		t.Fatalf("syscall -1 without AllowCancelledSyscall: signal %v, want SIGSYS", sig)
	}
}

func TestInstalledKillAction(t *testing.T) {
	requireSeccomp(t)
	harmless := call{Nr: testSyscallBase, Args: [6]uint64{12}}
	forbidden := call{Nr: testSyscallBase, Args: [6]uint64{13}}
	results, sig := runChild(t, 0, []call{harmless})
	if sig != 0 || results[0] != -int64(unix.ENOSYS) {
		t.Fatalf("allowed call: results %v, signal %v", results, sig)
	}
	if _, sig := runChild(t, 0, []call{harmless, forbidden}); sig != unix.SIGSYS {
		t.Fatalf("forbidden call: child ended with signal %v, want SIGSYS", sig)
	}
	// Log-instead-of-kill: the same call is logged and allowed.
	results, sig = runChild(t, 1, []call{forbidden})
	if sig != 0 || results[0] != -int64(unix.ENOSYS) {
		t.Fatalf("log mode: results %v, signal %v", results, sig)
	}
}
