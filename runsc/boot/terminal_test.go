package boot

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRunWithTerminal runs a process with process.terminal set on a host
// pty, as `runsc do` and `runsc run` hand one over: the process's stdio is
// a pty of the sandbox's own /dev/pts, its controlling terminal, with the
// host pty's window size; output redirected elsewhere stays there; the
// sandbox's output arrives whole; the host pty gets its modes back.
func TestRunWithTerminal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the platform's stubs need root here")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed")
	}
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no host ptys: %v", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 90}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	spec := specutils.Default([]string{"/bin/busybox", "sh", "-c",
		"tty; stty size; test -t 1 && echo out-is-tty; echo to-file >&2; " +
			// A session leader with a controlling terminal can name it
			// by /dev/tty and is in its foreground group.
			"echo via-dev-tty > /dev/tty; /bin/busybox seq 1 3000 | /bin/busybox tail -n 1; exit 4"}, "/")
	spec.Root = &specs.Root{Path: "/"}
	spec.Process.Terminal = true
	spec.Mounts = []specs.Mount{
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666"}},
	}
	conf := config.Default()
	socks := serve(t, specutils.GoferMounts(spec, "/", conf.Overlay))
	dup := func(f *os.File) int {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	// Run owns its stdio: the terminal's and the file's duplicates.
	stdio := [3]int{dup(replica), dup(replica), dup(file)}
	replica.Close()

	out := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			// EIO once every replica descriptor is closed.
			k, err := unix.Read(int(m.Fd()), buf)
			if k > 0 {
				b.Write(buf[:k])
			}
			if err != nil && err != unix.EINTR || k == 0 && err == nil {
				break
			}
		}
		out <- b.String()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, err := Run(ctx, &Args{Conf: conf, Spec: spec, BundleDir: "/", GoferSockets: socks, Stdio: stdio})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	select {
	case got = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("the host pty was not let go when the sandbox exited")
	}
	if !ws.Exited() || ws.ExitStatus() != 4 {
		t.Errorf("wait status %v, want exit 4", ws)
	}
	for _, want := range []string{"/dev/pts/0\r\n", "\r\n30 90\r\n", "\r\nout-is-tty\r\n", "\r\nvia-dev-tty\r\n", "\r\n3000\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output %q lacks %q", got, want)
		}
	}
	if data, _ := os.ReadFile(file.Name()); string(data) != "to-file\n" {
		t.Errorf("stderr file %q, want the redirected output alone", data)
	}
	after, err := unix.IoctlGetTermios(int(m.Fd()), unix.TCGETS)
	if err != nil || *after != *before {
		t.Errorf("host pty modes after: %+v, %v; want %+v", after, err, before)
	}
}
