package kernel_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform/ptrace"
	sys "carapace.dev/carapace/pkg/sentry/syscalls/linux"
	"golang.org/x/sys/unix"
)

var (
	buildMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// build compiles testdata/<name>.c statically (once per test binary).
func build(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed (Debian package gcc)")
	}
	if builtDir == "" {
		d, err := os.MkdirTemp("", "kernel-integration")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = d
	}
	out := filepath.Join(builtDir, name)
	if b, err := exec.Command("gcc", "-static", "-O1", "-o", out, filepath.Join("testdata", name+".c")).CombinedOutput(); err != nil {
		t.Skipf("gcc -static failed (Debian package libc6-dev): %v\n%s", err, b)
	}
	built[name] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// syncBuffer is stdout shared between the task goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runInSandbox boots a kernel on the ptrace platform, runs path with argv
// as PID 1, and returns its stdout and wait status.
func runInSandbox(t testing.TB, path string, argv ...string) (string, kernel.WaitStatus) {
	t.Helper()
	return runInRoot(t, sandboxOpts{}, path, argv...)
}

// sandboxOpts are runInRoot's options.
type sandboxOpts struct {
	// extraFiles are host files copied to the same paths beside the program.
	extraFiles []string
	// strace turns on the kernel's --strace log.
	strace bool
}

// runInRoot is runInSandbox with options.
func runInRoot(t testing.TB, opts sandboxOpts, path string, argv ...string) (string, kernel.WaitStatus) {
	t.Helper()
	if raceEnabled {
		t.Skip("ptrace platform stubs do not start under the race detector")
	}
	if os.Getuid() != 0 {
		if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil && len(b) > 0 && b[0] == '3' {
			t.Skip("ptrace disabled by YAMA ptrace_scope=3")
		}
	}
	mf, err := pgalloc.New("kernel-integration")
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	p, err := ptrace.New(mf)
	if err != nil {
		t.Skipf("ptrace platform unavailable: %v", err)
	}
	defer p.Close()
	k, err := kernel.New(kernel.Config{Platform: p, MemoryFile: mf, Syscalls: sys.Table(), Strace: opts.strace})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root, err := kerneltest.NewRoot(ctx, k.VFS(), mf, append([]string{path}, opts.extraFiles...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	// The root's tmpfs holds the program's bytes until the test ends.
	baseline := mf.UsedBytes()
	var out syncBuffer
	fdt := kernel.NewFDTable()
	stdout := kerneltest.NewWriterFile(k.VFS(), &out)
	fdt.NewFD(1, 1024, stdout, kernel.FDFlags{})
	fdt.NewFD(2, 1024, stdout, kernel.FDFlags{})
	stdout.DecRef(ctx)
	if len(argv) == 0 {
		argv = []string{filepath.Base(path)}
	}
	tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{
		Filename: path, Root: root, Argv: argv, Envv: []string{"HOME=/"}, FDTable: fdt,
	})
	if err != nil {
		t.Fatalf("CreateProcess: %v", err)
	}
	k.Start(tg)
	select {
	case <-tg.Exited():
	case <-time.After(60 * time.Second):
		tg.Kill()
		select {
		case <-tg.Exited():
		case <-time.After(10 * time.Second):
			// A task stuck inside the platform cannot be killed; leave it
			// rather than hang the whole test binary.
		}
		t.Fatalf("%s did not exit; stdout so far %q", path, out.String())
	}
	// Every page the processes used has gone back to the memory file.
	if used := mf.UsedBytes(); used != baseline {
		t.Errorf("%d bytes of the memory file in use after %s exited, %d before it ran", used, path, baseline)
	}
	return out.String(), tg.ExitStatus()
}

func TestHelloExitStatus(t *testing.T) {
	out, st := runInSandbox(t, build(t, "hello"))
	if out != "hello\n" {
		t.Errorf("stdout %q, want %q", out, "hello\n")
	}
	if !st.Exited() || st.ExitStatus() != 7 {
		t.Errorf("status %v, want exit 7", st)
	}
}

func TestMallocTLSAndSignalHandlers(t *testing.T) {
	out, st := runInSandbox(t, build(t, "signals"))
	want := "usr1 handled\nsegv sig=11 addr=0x10 code=1 tls=6\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if !st.Exited() || st.ExitStatus() != 42 {
		t.Errorf("status %v, want exit 42", st)
	}
}

func TestUnhandledSegfaultKills(t *testing.T) {
	out, st := runInSandbox(t, build(t, "crash"))
	if !st.Signaled() || st.Signal() != unix.SIGSEGV {
		t.Errorf("status %v (stdout %q), want killed by SIGSEGV", st, out)
	}
}

func TestForkWaitCopyOnWrite(t *testing.T) {
	out, st := runInSandbox(t, build(t, "fork"))
	if !strings.Contains(out, "child ppid_ok=1 var=99\n") || !strings.Contains(out, "parent exited=1 code=3 var=1\n") {
		t.Errorf("stdout %q", out)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
}

// BenchmarkGetpid runs b.N raw getpid syscalls in the sandbox and reports
// the time per call that the program measured itself.
func BenchmarkGetpidSandbox(b *testing.B) {
	path := build(b, "getpid_loop")
	out, st := runInSandbox(b, path, "getpid_loop", strconv.Itoa(b.N))
	ns, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if err != nil || !st.Exited() || st.ExitStatus() != 0 {
		b.Fatalf("output %q, status %v", out, st)
	}
	b.ReportMetric(ns/float64(b.N), "ns/syscall")
}

// BenchmarkGetpidNative is the same program run directly on the host.
func BenchmarkGetpidNative(b *testing.B) {
	path := build(b, "getpid_loop")
	out, err := exec.Command(path, strconv.Itoa(b.N)).Output()
	if err != nil {
		b.Fatal(err)
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ns/float64(b.N), "ns/syscall")
}

func TestThreads(t *testing.T) {
	out, st := runInSandbox(t, build(t, "threads"))
	if out != "total=4000 sum=100 main_tls=0\n" {
		t.Errorf("stdout %q", out)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
}

func TestVforkExec(t *testing.T) {
	path := build(t, "exec")
	out, st := runInSandbox(t, path, path)
	want := "exec'd argc=3 argv2=two env=yes\nparent code=5\nenoent ok\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
}

func TestSigsuspend(t *testing.T) {
	out, st := runInSandbox(t, build(t, "sigsuspend"))
	if out != "usr1=1 blocked_after=1 chld=1 code=9\n" {
		t.Errorf("stdout %q", out)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
}

func TestJobControlCPUTimersPosixTimersSharedFutex(t *testing.T) {
	out, st := runInSandbox(t, build(t, "procctl"))
	want := "jobctl stopped=1 continued=1 killed=1\n" +
		"cpu vtalrm=1 utime_ok=1\n" +
		"timer sig_ok=1 code_ok=1 value=5\n" +
		"futex child_ok=1\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
}

func TestPIRobustMutexes(t *testing.T) {
	out, st := runInSandbox(t, build(t, "pimutex"))
	if out != "pi counter=80000 ownerdead=1\n" || !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("stdout %q status %v", out, st)
	}
}

func TestPersonality(t *testing.T) {
	path := build(t, "personality")
	out, st := runInSandbox(t, path, path)
	want := "q=0 old=0 now=440000 same=1 differ=1 child=40000\nchild after reset=0\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if !st.Exited() || st.ExitStatus() != 0 {
		t.Errorf("status %v, want exit 0", st)
	}
}

func TestStraceLog(t *testing.T) {
	path := build(t, "hello")
	var logged syncBuffer
	log.SetTarget(&logged, log.Text)
	defer log.SetTarget(os.Stderr, log.Text)
	out, st := runInRoot(t, sandboxOpts{strace: true}, path)
	if out != "hello\n" || !st.Exited() || st.ExitStatus() != 7 {
		t.Fatalf("stdout %q status %v", out, st)
	}
	lines := logged.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`\] write\(1, 0x[0-9a-f]+, 6\) = 6 \(0x6\)`),
		regexp.MustCompile(`\] exit_group\(7\)`),
		regexp.MustCompile(`\] arch_prctl\(0x[0-9a-f]+, 0x[0-9a-f]+\) = 0`),
	} {
		if !want.MatchString(lines) {
			t.Errorf("strace log lacks %v:\n%s", want, lines)
		}
	}
}
