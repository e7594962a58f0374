package cmd

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRelayTurnsInterruptIntoSignal checks the relay does what the pty's
// line discipline would with ISIG: ^C becomes SIGINT for the Sentry (here
// this process) and discards the pending line, and the rest of the input
// still arrives.
func TestRelayTurnsInterruptIntoSignal(t *testing.T) {
	userMaster, userTerm, err := openPty()
	if err != nil {
		t.Skipf("no ptys: %v", err)
	}
	defer userMaster.Close()
	defer userTerm.Close()
	if err := unix.IoctlSetWinsize(int(userTerm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 21, Col: 77}); err != nil {
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
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	defer signal.Stop(sigs)
	r.forward(os.Getpid(), []byte("discarded\x03kept\n"))
	select {
	case <-sigs:
	case <-time.After(5 * time.Second):
		t.Fatal("^C sent no SIGINT")
	}
	buf := make([]byte, 64)
	n, err := r.replica.Read(buf)
	if err != nil || string(buf[:n]) != "kept\n" {
		t.Fatalf("the sandbox read %q, %v; want the line after ^C only", buf[:n], err)
	}
	// With ISIG off (a raw-mode program), ^C is data.
	term, err := unix.IoctlGetTermios(int(r.replica.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	term.Lflag &^= unix.ISIG | unix.ICANON
	term.Cc[unix.VMIN], term.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(r.replica.Fd()), unix.TCSETS, term); err != nil {
		t.Fatal(err)
	}
	r.forward(os.Getpid(), []byte{3})
	if n, err := r.replica.Read(buf); err != nil || n != 1 || buf[0] != 3 {
		t.Fatalf("raw read %q, %v; want the ^C byte", buf[:n], err)
	}
	select {
	case <-sigs:
		t.Fatal("SIGINT with ISIG off")
	default:
	}
}
