package filter

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"carapace.dev/carapace/runsc/confine"
	"carapace.dev/carapace/runsc/testutil"
)

var (
	buildOnce sync.Once
	runscBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// runsc builds runsc once for the tests that run sandboxes, which need
// root (namespaces, pivot_root).
func runsc(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a sandbox needs root")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "filter-test")
		if buildErr == nil {
			runscBin, buildErr = testutil.BuildRunsc(buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return runscBin
}

func do(t *testing.T, stdin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(runsc(t), append([]string{"do"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestForbiddenSyscallKillsSentry makes the Sentry call uname(2) right
// after installing its filter: the kernel must kill it with SIGSYS, which
// `runsc do` reports as exit status 128+31.
func TestForbiddenSyscallKillsSentry(t *testing.T) {
	out, err := do(t, "", []string{confine.TestOnlySentryForbiddenSyscallEnv + "=1"}, "/bin/true")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGSYS) {
		t.Fatalf("runsc do with a forbidden Sentry syscall: %v, want exit status %d\n%s", err, 128+int(syscall.SIGSYS), out)
	}
	// Without the variable the same run succeeds, so the death above was
	// the filter's.
	if out, err := do(t, "", nil, "/bin/true"); err != nil {
		t.Fatalf("runsc do /bin/true: %v\n%s", err, out)
	}
}

// TestRealProgramsUnderFilter runs programs that exercise the Sentry's host
// syscalls (stdio, Gofer files, fork and exec with new stubs, threads,
// signals) with the filter in kill mode.
func TestRealProgramsUnderFilter(t *testing.T) {
	runsc(t)
	for _, tc := range []struct {
		name, stdin, want string
		args              []string
	}{
		{"pipe", "hi\n", "hi\n", []string{"cat"}},
		{"shell", "", "x\n", []string{"sh", "-c", "sleep 0.01 & wait; echo x > f; cat f; ls / > /dev/null"}},
		{"python", "", "1\n2\n", []string{"python3", "-c", "import subprocess,threading; print(1, flush=True); subprocess.run(['true']); t=threading.Thread(target=print, args=(2,)); t.start(); t.join()"}},
		{"git", "", "git version", []string{"git", "--version"}},
		{"node", "", "2\n", []string{"node", "-e", "console.log(1+1)"}},
		{"gcc", "", "ok\n", []string{"sh", "-c", "echo 'int main(void){return 0;}' > t.c && gcc -o t t.c && ./t && echo ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := exec.LookPath(tc.args[0]); err != nil {
				t.Skipf("%s is not installed", tc.args[0])
			}
			out, err := do(t, tc.stdin, nil, tc.args...)
			if err != nil || !strings.HasPrefix(out, tc.want) {
				t.Fatalf("runsc do %q: %v, output %q, want %q", tc.args, err, out, tc.want)
			}
		})
	}
}

// TestSentryStatusShowsFilter checks /proc/<sentry>/status while a sandbox
// runs: the Sentry is in seccomp filter mode with no_new_privs.
func TestSentryStatusShowsFilter(t *testing.T) {
	cmd := exec.Command(runsc(t), "do", "sleep", "5")
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if status, ok := sentryStatus(cmd.Process.Pid); ok && strings.Contains(status, "Seccomp:\t2") {
			if !strings.Contains(status, "NoNewPrivs:\t1") {
				t.Errorf("Sentry status has no NoNewPrivs:\t1:\n%s", status)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, _ := sentryStatus(cmd.Process.Pid)
	t.Fatalf("no Sentry in seccomp filter mode found among the children of %d:\n%s", cmd.Process.Pid, status)
}

// sentryStatus returns /proc/<pid>/status of the `runsc boot` child of
// parent.
func sentryStatus(parent int) (string, bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// The parent pid is the second field after the parenthesized name.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		if !bytes.Contains(cmdline, []byte("\x00boot\x00")) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		return string(status), err == nil
	}
	return "", false
}
