package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// receiveConsole accepts one connection on a console socket and returns
// the pty master runsc sends, as containerd's console receiver does.
func receiveConsole(t *testing.T, ln *net.UnixListener) <-chan *os.File {
	ch := make(chan *os.File, 1)
	go func() {
		defer close(ch)
		conn, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 256)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return ch
}

// awaitConsole returns the pty master that got delivers, failing the test
// if none arrives within 10 seconds.
func awaitConsole(t testing.TB, got <-chan *os.File) *os.File {
	t.Helper()
	select {
	case master := <-got:
		if master != nil {
			return master
		}
	case <-time.After(10 * time.Second):
	}
	t.Fatal("no pty master arrived on the console socket")
	return nil
}

// readTerminalUntil reads master until what it has read contains want,
// the terminal fails, or 10 seconds pass; it returns what it read.
func readTerminalUntil(master *os.File, want string) string {
	var out strings.Builder
	buf := make([]byte, 256)
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(out.String(), want) {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return out.String()
}

func TestConsoleSocket(t *testing.T) {
	e := newEnv(t)
	// The process's terminal (a sandbox pty relayed to the one sent over
	// the socket) has the spec's console size.
	bundle := e.bundle([]string{"/bin/sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; stty size; exit 6"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	})
	// Terminal without a console socket is refused, as by runc.
	e.fails("console socket", "create", "--bundle", bundle, "noconsole")

	sockPath := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := receiveConsole(t, ln)
	e.must("create", "--bundle", bundle, "--console-socket", sockPath, "tty")
	master := awaitConsole(t, got)
	defer master.Close()
	ws, err := unix.IoctlGetWinsize(int(master.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 30 || ws.Col != 100 {
		t.Errorf("console size %+v, %v; want 30x100", ws, err)
	}
	e.must("start", "tty")
	out := readTerminalUntil(master, "30 100")
	if !strings.Contains(out, "is-a-tty") {
		t.Errorf("terminal output %q: the process's stdio is not the pty", out)
	}
	if !strings.Contains(out, "is-a-tty\r\n30 100\r\n") {
		t.Errorf("terminal output %q: stty size in the container is not the console size", out)
	}
	if _, _, code := e.runsc("wait", "--exit", "tty"); code != 6 {
		t.Errorf("wait --exit: %d, want 6", code)
	}
	e.must("delete", "tty")
}
