package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostPty opens a pty pair for the test, as a terminal emulator would.
func hostPty(t *testing.T) (master, replica *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no ptys: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); r.Close() })
	return m, r
}

func TestExecTTYWithoutConsoleSocket(t *testing.T) {
	e := newEnv(t)
	e.must("run", "--detach", "--bundle", e.bundle([]string{"/bin/sleep", "1000"}, nil), "tty")
	master, replica := hostPty(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(runscBin, "--root="+e.root, "exec", "--tty", "tty", "/bin/sh", "-c",
		"test -t 0 && test -t 1 && echo isatty; stty size; read line; echo got:$line; exit 7")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = replica, replica, replica
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	replica.Close()
	out := make(chan string, 1)
	go func() {
		var all strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			all.Write(buf[:n])
			if strings.Contains(all.String(), "33 101") && !strings.Contains(all.String(), "sent") {
				master.Write([]byte("hello\r"))
				all.WriteString("sent")
			}
			if err != nil {
				out <- all.String()
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("exec --tty did not finish")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("exec --tty: %v, want exit 7", err)
	}
	master.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got string
	select {
	case got = <-out:
	case <-time.After(5 * time.Second):
		master.Close()
		got = <-out
	}
	for _, want := range []string{"isatty", "33 101", "got:hello"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output %q lacks %q", got, want)
		}
	}
	e.must("delete", "--force", "tty")
}

// TestExecTTYJobControl: a process exec'd with --tty gets a sandbox pty as
// its controlling terminal too, relayed to runsc exec's terminal: an
// interactive shell there has job control, and its exit status is exec's.
func TestExecTTYJobControl(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	e.must("run", "--detach", "--bundle", e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}})
	}), "jc")
	s := startOnTerminal(t, "--root="+e.root, "exec", "--tty", "--env", "PS1="+prompt, "jc", busybox, "sh", "-i")
	exerciseJobControl(t, s)
	s.typeIn(t, "echo bye; exit 7\n")
	s.out.waitFor(t, "bye\r\n")
	s.wantExit(t, 7)
	s.wantModesRestored(t)
	e.must("delete", "--force", "jc")
}
