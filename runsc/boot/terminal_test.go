package boot

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

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
	m, replica := openHostPTY(t)
	defer m.Close()
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
	// Run owns its stdio: the terminal's and the file's duplicates.
	stdio := [3]int{dupFD(t, replica), dupFD(t, replica), dupFD(t, file)}
	replica.Close()

	ws, got := runSandbox(t, config.Default(), spec, stdio, readMaster(m), "the host pty was not let go")
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

// openHostPTY opens a host pty: its master and unlocked replica.
func openHostPTY(t *testing.T) (m, replica *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no host ptys: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	replica, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, replica
}

// readMaster collects what the sandbox writes to the host pty until its
// replica side is closed everywhere.
func readMaster(m *os.File) <-chan string {
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
	return out
}

// TestTerminalOwnedByProcessUser: a container process running as uid
// 1000 owns its terminal, group tty (the host root's /etc/group, which is
// the container's here, has one), mode 0620, as under runc; so it can
// reopen it by name and through /dev/console.
func TestTerminalOwnedByProcessUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the platform's stubs need root here")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed")
	}
	ttyGID, hasTTY := parseGroupFile(mustRead(t, "/etc/group"), "tty")
	wantGID := uint32(1000)
	if hasTTY {
		wantGID = uint32(ttyGID)
	}
	m, replica := openHostPTY(t)
	defer m.Close()
	spec := specutils.Default([]string{"/bin/busybox", "sh", "-c",
		"/bin/busybox ls -ln $(tty); /bin/busybox id -u; " +
			"exec 3<>$(tty) && echo reopened-by-name >&3; exec 3>&-; " +
			"exec 4<>/dev/console && echo reopened-console >&4"}, "/")
	spec.Root = &specs.Root{Path: "/"}
	spec.Process.Terminal = true
	spec.Process.User = specs.User{UID: 1000, GID: 1000}
	spec.Mounts = []specs.Mount{
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	}
	stdio := [3]int{dupFD(t, replica), dupFD(t, replica), dupFD(t, replica)}
	replica.Close()
	ws, got := runSandbox(t, config.Default(), spec, stdio, readMaster(m), "the host pty was not let go")
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("wait status %v, want exit 0; output %q", ws, got)
	}
	want := fmt.Sprintf("crw--w----    1 1000     %-8d", wantGID)
	for _, w := range []string{want, "\r\n1000\r\n", "reopened-by-name\r\n", "reopened-console\r\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("terminal output %q lacks %q", got, w)
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseGroupFile(t *testing.T) {
	data := []byte("root:x:0:\nttyish:x:9:\ntty:x:5:alice,bob\nbad:x:y:\n")
	if gid, ok := parseGroupFile(data, "tty"); !ok || gid != 5 {
		t.Errorf("tty: %d %v", gid, ok)
	}
	for _, name := range []string{"bad", "nobody", ""} {
		if gid, ok := parseGroupFile(data, name); ok {
			t.Errorf("%q found with gid %d", name, gid)
		}
	}
}
