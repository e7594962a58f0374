package cmd

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readUntil reads f until want has arrived (or 5 seconds pass).
func readUntil(t *testing.T, f *os.File, want string) {
	t.Helper()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for !bytes.Contains(got.Bytes(), []byte(want)) {
			n, err := f.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		f.Close() // unblocks the reader
		<-done
	}
	if !bytes.Contains(got.Bytes(), []byte(want)) {
		t.Fatalf("read %q, want %q", got.String(), want)
	}
}

// TestRelay drives the relay as runsc uses it: a user's terminal (a pty
// of the test's) on one side, the sandbox's host pty on the other. Bytes
// pass both ways unchanged — ^C included, as a character for the
// sandbox's line discipline — the user's terminal is raw meanwhile, its
// window changes reach the sandbox's pty, and its modes come back.
func TestRelay(t *testing.T) {
	userMaster, userTerm, err := openPty()
	if err != nil {
		t.Skipf("no ptys: %v", err)
	}
	defer userMaster.Close()
	defer userTerm.Close()
	if err := unix.IoctlSetWinsize(int(userTerm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 21, Col: 77}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(userTerm.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newTTYRelay(userTerm)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ws, err := unix.IoctlGetWinsize(int(r.replica.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 21 || ws.Col != 77 {
		t.Fatalf("the sandbox's pty size: %+v, %v; want the terminal's 21x77", ws, err)
	}
	// The Sentry's side takes bytes as they are.
	raw := *before
	raw.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
	raw.Oflag &^= unix.OPOST
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(r.replica.Fd()), unix.TCSETS, &raw); err != nil {
		t.Fatal(err)
	}
	r.run(userTerm, userTerm, nil)
	during, err := unix.IoctlGetTermios(int(userTerm.Fd()), unix.TCGETS)
	if err != nil || during.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Fatalf("the user's terminal is not raw while relaying: %+v, %v", during, err)
	}
	userMaster.Write([]byte("typed\x03\x1a\n"))
	readUntil(t, r.replica, "typed\x03\x1a\n")
	r.replica.Write([]byte("shown\n"))
	readUntil(t, userMaster, "shown\n")

	if err := unix.IoctlSetWinsize(int(userTerm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	// The resize raises SIGWINCH only for the terminal's foreground
	// group, which this test is in no session with: send it as the
	// terminal would.
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, err := unix.IoctlGetWinsize(int(r.master.Fd()), unix.TIOCGWINSZ)
		if err == nil && ws.Row == 40 && ws.Col == 120 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox's pty size after SIGWINCH: %+v, %v", ws, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.replica.Close()
	r.replica = nil
	r.drain()
	r.close()
	after, err := unix.IoctlGetTermios(int(userTerm.Fd()), unix.TCGETS)
	if err != nil || *after != *before {
		t.Fatalf("modes after: %+v, %v; want %+v", after, err, before)
	}
}

// TestTerminalOutput: the relay writes to whichever of stdout and stderr
// is the user's terminal, else to the terminal itself.
func TestTerminalOutput(t *testing.T) {
	_, term, err := openPty()
	if err != nil {
		t.Skipf("no ptys: %v", err)
	}
	defer term.Close()
	_, other, err := openPty()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if got := terminalOutput(term, file, term); got != term {
		t.Errorf("stdout a file, stderr the terminal: got %s", got.Name())
	}
	if got := terminalOutput(term, other, file); got != term {
		t.Errorf("neither the terminal: got %s, want the terminal itself", got.Name())
	}
	dup, err := os.OpenFile(term.Name(), os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	if got := terminalOutput(term, dup, file); got != dup {
		t.Errorf("stdout the terminal: got %s", got.Name())
	}
}
