package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

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
	p.buf.Reset()
	return out
}

// TestDoInteractiveShell runs `runsc do sh -i` on a terminal, as a user
// typing at one: the shell finds the terminal is not its controlling one
// inside the sandbox (so it runs without job control rather than stopping
// itself), prompts, runs a command, sees window changes, has ^C interrupt
// its command and survive, and its exit status is runsc's; the terminal's
// mode is as before.
func TestDoInteractiveShell(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runsc do needs root")
	}
	master, replica := hostPty(t)
	cmd := exec.Command(runscBin, "--root", t.TempDir(), "do", "/bin/sh", "-i")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = replica, replica, replica
	cmd.Env = append(os.Environ(), "PS1=PROMPT$ ", "ENV=")
	// The terminal is the controlling one of runsc's new session, as in
	// a terminal emulator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	var before unix.Termios
	if tp, err := unix.IoctlGetTermios(int(replica.Fd()), unix.TCGETS); err == nil {
		before = *tp
	}
	p := newPtyReader(master)
	p.waitFor(t, "PROMPT$ ")
	master.Write([]byte("echo sum-$((40+2))\n"))
	if out := p.waitFor(t, "PROMPT$ "); !strings.Contains(out, "sum-42") {
		t.Fatalf("command output %q lacks sum-42", out)
	}
	master.Write([]byte("test -t 0 && echo stdin-is-tty\n"))
	if out := p.waitFor(t, "PROMPT$ "); !strings.Contains(out, "stdin-is-tty") {
		t.Fatalf("isatty(0) inside the sandbox: %q", out)
	}
	// A window change reaches the sandbox's view of the terminal.
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 99}); err != nil {
		t.Fatal(err)
	}
	sleepMs(200)
	master.Write([]byte("stty size\n"))
	if out := p.waitFor(t, "PROMPT$ "); !strings.Contains(out, "33 99") {
		t.Fatalf("stty size after a resize: %q", out)
	}
	// ^C interrupts the command in the sandbox, not runsc, and the
	// shell lives on.
	master.Write([]byte("sleep 100; echo not-interrupted\n"))
	sleepMs(1000)
	master.Write([]byte{3})
	if out := p.waitFor(t, "PROMPT$ "); strings.Contains(out, "\nnot-interrupted") {
		t.Fatalf("^C did not stop sleep: %q", out)
	}
	master.Write([]byte("echo still-$((2*3))\n"))
	if out := p.waitFor(t, "PROMPT$ "); !strings.Contains(out, "still-6") {
		t.Fatalf("the shell after ^C: %q", out)
	}
	master.Write([]byte("exit 3\n"))
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("runsc do exit: %v, want status 3", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the shell did not exit")
	}
	after, err := unix.IoctlGetTermios(int(replica.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Fatalf("terminal mode not restored: before %+v after %+v", before, *after)
	}
}
