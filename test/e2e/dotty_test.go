package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ptyReader collects what the sandbox writes to the terminal. A goroutine
// reads, so that a wait can time out: a pty master opened by path takes
// no read deadline.
type ptyReader struct {
	chunks chan []byte
	buf    bytes.Buffer
}

func newPtyReader(master *os.File) *ptyReader {
	p := &ptyReader{chunks: make(chan []byte, 64)}
	go func() {
		defer close(p.chunks)
		for {
			b := make([]byte, 4096)
			n, err := master.Read(b)
			if n > 0 {
				p.chunks <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

// waitFor reads until want appears (or 20 seconds pass), returning the
// output seen since the previous call.
func (p *ptyReader) waitFor(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for !strings.Contains(p.buf.String(), want) {
		select {
		case b, ok := <-p.chunks:
			if !ok {
				t.Fatalf("terminal closed waiting for %q; it shows %q", want, p.buf.String())
			}
			p.buf.Write(b)
		case <-timeout:
			t.Fatalf("timed out waiting for %q; terminal shows %q", want, p.buf.String())
		}
	}
	out := p.buf.String()
	i := strings.Index(out, want) + len(want)
	rest := out[i:]
	p.buf.Reset()
	p.buf.WriteString(rest)
	return out[:i]
}

// terminalSession is runsc started on a terminal of the test's, as by a
// terminal emulator: the pty's replica is the controlling terminal of
// runsc's new session; the test types at the master.
type terminalSession struct {
	cmd             *exec.Cmd
	master, replica *os.File
	out             *ptyReader
	done            chan error
	before          unix.Termios
}

func startOnTerminal(t *testing.T, args ...string) *terminalSession {
	t.Helper()
	master, replica := hostPty(t)
	// A typical terminal's size, which the sandbox must see from the start.
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatal(err)
	}
	s := &terminalSession{master: master, replica: replica, done: make(chan error, 1)}
	if tp, err := unix.IoctlGetTermios(int(replica.Fd()), unix.TCGETS); err == nil {
		s.before = *tp
	} else {
		t.Fatal(err)
	}
	cmd := exec.Command(runscBin, args...)
	s.cmd = cmd
	cmd.Stdin, cmd.Stdout, cmd.Stderr = replica, replica, replica
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { s.done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	s.out = newPtyReader(master)
	return s
}

func (s *terminalSession) typeIn(t *testing.T, text string) {
	t.Helper()
	if _, err := s.master.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
}

// wantExit waits for runsc to exit with code.
func (s *terminalSession) wantExit(t *testing.T, code int) {
	t.Helper()
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if code == 0 && err == nil {
			return
		}
		if !errors.As(err, &ee) || ee.ExitCode() != code {
			t.Fatalf("runsc exit: %v, want status %d; terminal shows %q", err, code, s.out.buf.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runsc did not exit")
	}
}

// wantModesRestored checks the terminal's modes are as before runsc put
// it in raw mode.
func (s *terminalSession) wantModesRestored(t *testing.T) {
	t.Helper()
	after, err := unix.IoctlGetTermios(int(s.replica.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != s.before {
		t.Fatalf("terminal modes not restored: before %+v after %+v", s.before, *after)
	}
}

const prompt = "PROMPT$ "

// exerciseJobControl plays a user at an interactive busybox shell with
// job control in the sandbox: the shell has its terminal as controlling
// terminal (no "job control turned off"), ^Z stops the foreground job and
// the shell reports it, jobs lists it, kill %1 ends it, ^C interrupts a
// foreground sleep long before its end and the shell carries on, and a
// window change made on the user's terminal is what stty size shows. It
// leaves the shell at a prompt.
func exerciseJobControl(t *testing.T, s *terminalSession) {
	t.Helper()
	if out := s.out.waitFor(t, prompt); strings.Contains(out, "job control") {
		t.Fatalf("the shell has no job control: %q", out)
	}
	s.typeIn(t, "stty size; tty\n")
	if out := s.out.waitFor(t, prompt); !regexp.MustCompile(`\r\n24 80\r\n/dev/pts/\d+\r\n`).MatchString(out) {
		t.Fatalf("stty size; tty at start: %q", out)
	}
	// ^Z stops the foreground job; the shell takes the terminal back.
	s.typeIn(t, "sleep 30\n")
	s.out.waitFor(t, "sleep 30\r\n")
	sleepMs(300)
	s.typeIn(t, "\x1a")
	if out := s.out.waitFor(t, prompt); !regexp.MustCompile(`\^Z.*\[1\]\+?\s+Stopped\s+sleep 30`).MatchString(out) {
		t.Fatalf("^Z: %q", out)
	}
	s.typeIn(t, "jobs\n")
	if out := s.out.waitFor(t, prompt); !regexp.MustCompile(`\[1\]\+?\s+Stopped\s+sleep 30`).MatchString(out) {
		t.Fatalf("jobs after ^Z: %q", out)
	}
	// A stopped job acts on SIGTERM once continued (busybox's kill does
	// not continue it, as on Linux).
	// The shell reports the job's end when it next looks (at a prompt
	// or a jobs).
	s.typeIn(t, "kill %1; kill -CONT %1\n")
	s.out.waitFor(t, prompt)
	s.typeIn(t, "jobs\n")
	if out := s.out.waitFor(t, "Terminated"); !regexp.MustCompile(`\[1\]\+?\s+Terminated$`).MatchString(out) {
		t.Fatalf("kill %%1: %q", out)
	}
	s.out.waitFor(t, prompt)
	s.typeIn(t, "jobs; echo jobs-done\n")
	if out := s.out.waitFor(t, prompt); !strings.HasSuffix(out, "jobs; echo jobs-done\r\njobs-done\r\n"+prompt) {
		t.Fatalf("jobs after kill %%1: %q", out)
	}
	// ^C interrupts the foreground job only.
	start := time.Now()
	s.typeIn(t, "sleep 30\n")
	s.out.waitFor(t, "sleep 30\r\n")
	sleepMs(300)
	s.typeIn(t, "\x03")
	if out := s.out.waitFor(t, prompt); !strings.Contains(out, "^C") {
		t.Fatalf("^C: %q", out)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("^C took %v to end sleep 30", d)
	}
	s.typeIn(t, "echo status=$? still-$((2*3))\n")
	if out := s.out.waitFor(t, prompt); !strings.Contains(out, "status=130 still-6") {
		t.Fatalf("the shell after ^C: %q", out)
	}
	// A window change on the user's terminal reaches the sandbox's.
	if err := unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 99}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.typeIn(t, "stty size\n")
		out := s.out.waitFor(t, prompt)
		if strings.Contains(out, "\r\n33 99\r\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stty size after a resize: %q", out)
		}
		sleepMs(100)
	}
}

// TestDoJobControl runs `runsc do busybox sh -i` on a terminal: job
// control works, the exit status is the shell's, and the terminal's
// modes are as before.
func TestDoJobControl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	// runsc do gives the sandbox its own environment.
	t.Setenv("PS1", prompt)
	t.Setenv("ENV", "")
	s := startOnTerminal(t, "--root", t.TempDir(), "do", busybox, "sh", "-i")
	exerciseJobControl(t, s)
	// Output written just before exit is not lost.
	s.typeIn(t, "seq 1 2000 | tail -n 1; exit 7\n")
	s.out.waitFor(t, "\r\n2000\r\n")
	s.wantExit(t, 7)
	s.wantModesRestored(t)
}

// TestDoTerminalRestoredOnSignal: runsc do told to stop (SIGTERM, or
// SIGHUP when the terminal goes) stops the sandbox and gives the terminal
// its modes back.
func TestDoTerminalRestoredOnSignal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root")
	}
	t.Setenv("PS1", prompt)
	t.Setenv("ENV", "")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		s := startOnTerminal(t, "--root", t.TempDir(), "do", busybox, "sh", "-i")
		s.out.waitFor(t, prompt)
		if err := s.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.done:
			if err == nil {
				t.Errorf("%v: runsc do exited 0", sig)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%v: runsc do did not exit", sig)
		}
		s.wantModesRestored(t)
	}
}

// TestDoTerminalQuitAndPipes: ^\ quits the foreground process group (a
// shell without job control and its sleep, as on any terminal), and runsc
// reports it; output redirected away from the terminal still goes where
// it was sent.
func TestDoTerminalQuitAndPipes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root")
	}
	out := t.TempDir() + "/out"
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	master, replica := hostPty(t)
	cmd := exec.Command(runscBin, "--root", t.TempDir(), "do", "/bin/sh", "-c", "test -t 0 && echo in-tty; test -t 1 || echo out-not-tty; sleep 30; echo after-quit")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = replica, f, replica
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()
	r := newPtyReader(master)
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if strings.Contains(string(data), "out-not-tty") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file output: %q", data)
		}
		sleepMs(50)
	}
	sleepMs(300)
	master.Write([]byte{0x1c}) // ^\
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 128+int(unix.SIGQUIT) {
			t.Fatalf("runsc do: %v, want exit %d (sh quit by ^\\)", err, 128+int(unix.SIGQUIT))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("^\\ did not quit sleep; terminal shows %q", r.buf.String())
	}
	data, _ := os.ReadFile(out)
	if got := string(data); got != "in-tty\nout-not-tty\n" {
		t.Fatalf("file output %q", got)
	}
}

// TestRunTerminalBundle runs a process.terminal bundle with `runsc run`
// and no --console-socket: runsc relays the container's terminal to its
// own, with job control, as for do; with --detach it is refused as runc
// refuses it.
func TestRunTerminalBundle(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	bundle := e.bundle([]string{busybox, "sh", "-i"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Env = append(s.Process.Env, "PS1="+prompt)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}})
	})
	e.fails("cannot allocate tty if runc will detach without setting console socket", "run", "--detach", "--bundle", bundle, "detached")
	s := startOnTerminal(t, "--root="+e.root, "run", "--bundle", bundle, "term")
	exerciseJobControl(t, s)
	s.typeIn(t, "echo bye; exit 7\n")
	s.out.waitFor(t, "bye\r\n")
	s.wantExit(t, 7)
	s.wantModesRestored(t)
}
