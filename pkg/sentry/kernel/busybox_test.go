package kernel_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// busyboxPath is Debian's static busybox (package busybox-static).
const busyboxPath = "/bin/busybox"

// needStaticBusybox skips unless /bin/busybox exists and is static: a
// dynamic one would need its libraries in the test root.
func needStaticBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skip("no /bin/busybox (Debian package busybox-static)")
	}
	if testrootInterpreter(busyboxPath) {
		t.Skip("/bin/busybox is dynamically linked; install busybox-static")
	}
}

// runShell runs script with busybox sh -c as PID 1 of a fresh kernel whose
// root holds /bin/busybox and an empty regular /dev/null (ash opens it for
// the stdin of background jobs). Stderr goes to the same output as stdout.
func runShell(t *testing.T, script string) (string, int) {
	t.Helper()
	needStaticBusybox(t)
	out, st := runInRoot(t, sandboxOpts{extraFiles: []string{"/dev/null"}}, busyboxPath, "sh", "-c", script)
	if !st.Exited() {
		t.Fatalf("shell did not exit normally: %v; output %q", st, out)
	}
	return out, st.ExitStatus()
}

func TestBusyboxForkExecWaitAndExitCodes(t *testing.T) {
	out, code := runShell(t, `
/bin/busybox true; echo "true=$?"
/bin/busybox false; echo "false=$?"
(exit 7); echo "subshell=$?"
/bin/busybox sh -c 'exit 3'; echo "nested=$?"
/bin/busybox sh -c 'echo "child pid differs=$(( $$ != '$$' ))"'
/bin/busybox nosuchapplet ; echo "unknown applet=$?"
/nonexistent; echo "enoent=$?"
for i in 1 2 3 4 5 6 7 8; do /bin/busybox sh -c "exit $i" & done; wait; echo "waited all"
exit 4
`)
	want := "true=0\nfalse=1\nsubshell=7\nnested=3\nchild pid differs=1\nnosuchapplet: applet not found\nunknown applet=127\nsh: /nonexistent: not found\nenoent=127\nwaited all\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if code != 4 {
		t.Errorf("exit code %d, want 4", code)
	}
}

func TestBusyboxPipes(t *testing.T) {
	out, code := runShell(t, `
echo hello world | /bin/busybox tr a-z A-Z
x=$(echo piped | /bin/busybox cat | /bin/busybox cat); echo "subst=$x"
/bin/busybox seq 1 20000 | /bin/busybox tail -n 1
/bin/busybox seq 1 300 | /bin/busybox wc -l | /bin/busybox tr -d ' '
/bin/busybox false | /bin/busybox true; echo "pipeline status=$?"
`)
	want := "HELLO WORLD\nsubst=piped\n20000\n300\npipeline status=0\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestBusyboxSignalsTrapKillStopCont(t *testing.T) {
	// The background shell traps TERM; while it is stopped the TERM stays
	// pending, so "before cont" must come out before its handler's line.
	// ash prints "Terminated" for a killed background job only if the wait
	// builtin itself reaps it, which is timing-dependent (on Linux too), so
	// the job is given time to die and be reaped before wait asks.
	out, code := runShell(t, `
trap 'echo "got USR1"' USR1
kill -USR1 $$
echo "after trap"
/bin/busybox sh -c 'trap "echo child term; exit 9" TERM; echo ready; while :; do /bin/busybox sleep 0.02; done' &
pid=$!
/bin/busybox sleep 0.3
kill -STOP $pid
/bin/busybox sleep 0.2
kill -TERM $pid
/bin/busybox sleep 0.3
echo "before cont"
kill -CONT $pid
wait $pid; echo "trapped exit=$?"
/bin/busybox sleep 10 &
/bin/busybox sleep 0.2
kill $!; /bin/busybox sleep 0.2; wait $!; echo "killed exit=$?"
/bin/busybox sh -c 'kill -9 $$'; echo "sigkill exit=$?"
`)
	want := "got USR1\nafter trap\nready\nbefore cont\nchild term\ntrapped exit=9\nkilled exit=143\nKilled\nsigkill exit=137\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// goroutinesProgram spawns many goroutines across several OS threads,
// exercising channels, timers, a forced GC and locked threads.
const goroutinesProgram = `package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	runtime.GOMAXPROCS(4)
	const n = 1000
	results := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t := time.NewTimer(time.Duration(i%10) * time.Millisecond)
			<-t.C
			buf := make([]byte, 4096)
			buf[i%4096] = byte(i)
			results <- i
		}(i)
	}
	// Locked goroutines force the runtime to keep distinct OS threads.
	locked := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			runtime.LockOSThread()
			time.Sleep(20 * time.Millisecond)
			locked <- struct{}{}
		}()
	}
	wg.Wait()
	close(results)
	sum := 0
	for v := range results {
		sum += v
	}
	for i := 0; i < 4; i++ {
		<-locked
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	tick := time.NewTicker(time.Millisecond)
	for i := 0; i < 5; i++ {
		<-tick.C
	}
	tick.Stop()
	fmt.Printf("sum=%d gc=%v\n", sum, ms.NumGC > 0)
	os.Exit(0)
}
`

func TestStaticGoGoroutines(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goroutinesProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module goroutines\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "goroutines")
	cmd := exec.Command(gobin, "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("go build failed: %v\n%s", err, b)
	}
	out, st := runInRoot(t, sandboxOpts{extraFiles: []string{"/dev/null"}}, bin)
	if want := "sum=499500 gc=true\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
	if strings.Contains(out, "fatal error") {
		t.Errorf("Go runtime failed: %s", out)
	}
}

// testrootInterpreter reports whether the ELF file p names an interpreter.
func testrootInterpreter(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
