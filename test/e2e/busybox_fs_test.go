package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// busybox is the static busybox the scripts run, so that what is tested is
// the Sentry's file systems and not a dynamic loader.
const busybox = "/bin/busybox"

// TestBusyboxFilesystem runs busybox's file tools inside the sandbox
// (`runsc do`: the host root under an in-memory overlay) and checks what
// they print: each case is one sandbox, so a failure names its tool.
func TestBusyboxFilesystem(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	// Every script starts in a fresh directory of the sandbox's /tmp (in
	// the overlay's upper layer, so nothing reaches the host).
	const prologue = "set -e; B=" + busybox + "; cd \"$($B mktemp -d)\"\n"
	cases := []struct {
		name   string
		script string
		want   []string // regexps the output must match, each on its own
	}{
		{"ls -la", `mkdir -p d && echo hello > d/f && $B chmod 640 d/f && $B ls -la d`,
			[]string{`(?m)^total \d+$`, `(?m)^drwx.* \.$`, `(?m)^drwx.* \.\.$`, `(?m)^-rw-r-----\s+1 root\s+root\s+6 .* f$`}},
		{"find", `mkdir -p a/b/c && touch a/x a/b/y && $B ln -s x a/l && $B find a | $B sort && $B find a -type f | $B sort | $B tr '\n' ' ' && echo && $B find a -type l`,
			[]string{`(?m)^a\na/b\na/b/c\na/b/y\na/l\na/x$`, `(?m)^a/b/y a/x $`, `(?m)^a/l$`}},
		{"cp -r", `mkdir -p s/sub && echo one > s/sub/f && $B ln -s f s/sub/l && $B chmod 600 s/sub/f && $B cp -a s t && $B cat t/sub/f && $B readlink t/sub/l && $B stat -c %a t/sub/f && $B cp -r s u && $B cat u/sub/f`,
			[]string{`^one\nf\n600\none\n$`}},
		{"mv", `mkdir d1 d2 && echo moved > d1/f && $B mv d1/f d2/g && $B mv d2 d3 && $B ls d1 d3 && $B cat d3/g && test ! -e d2 && echo gone`,
			[]string{`d1:\n\nd3:\ng\nmoved\ngone\n$`}},
		{"ln -s", `echo target > t && $B ln -s t l && $B ln -s missing dangling && $B readlink l && $B cat l && $B ls -l l && test ! -e dangling && test -L dangling && echo dangling`,
			[]string{`^t\ntarget\n`, `(?m)^lrwxrwxrwx .* l -> t$`, `(?m)^dangling$`}},
		{"chmod", `touch f && $B chmod 4751 f && $B stat -c '%a %A' f && $B chmod u-x,g=w,o+w f && $B stat -c '%a %A' f && mkdir d && $B chmod 1777 d && $B stat -c '%A' d`,
			[]string{`^4751 -rwsr-x--x\n4623 -rwS-w--wx\ndrwxrwxrwt\n$`}},
		{"tar cf/xf", `mkdir -p src/in && echo data > src/in/f && $B ln -s f src/in/l && $B chmod 700 src/in && $B tar cf a.tar src && $B tar tf a.tar | $B sort && mkdir out && $B tar xf a.tar -C out && $B cat out/src/in/f && $B readlink out/src/in/l && $B stat -c %a out/src/in`,
			[]string{`^src/\nsrc/in/\nsrc/in/f\nsrc/in/l\ndata\nf\n700\n$`}},
		{"mkfifo", `$B mkfifo p && $B stat -c %F p && (echo through-fifo > p &) && $B cat p`,
			[]string{`^fifo\nthrough-fifo\n$`}},
		{"flock", `touch lk && /usr/bin/flock -n lk -c '/usr/bin/flock -n lk -c "echo inner" || echo busy' && /usr/bin/flock lk -c 'echo again'`,
			[]string{`^busy\nagain\n$`}},
		{"/proc/self/status", `$B cat /proc/self/status; :`,
			[]string{`(?m)^Name:\tbusybox$`, `(?m)^State:\tR \(running\)$`, `(?m)^Pid:\t\d+$`, `(?m)^PPid:\t\d+$`, `(?m)^Uid:\t0\t0\t0\t0$`, `(?m)^VmRSS:\s+\d+ kB$`, `(?m)^Threads:\t1$`}},
		{"ps", `$B sleep 100 & $B ps; kill $!`,
			[]string{`(?m)^PID\s+USER\s+(TIME\s+)?COMMAND$`, `(?m)^\s+1 root .*sh -c`, `(?m)^\s+\d+ root .*sleep 100$`, `(?m)^\s+\d+ root .*ps$`}},
		{"top -bn1", `$B top -bn1; :`,
			[]string{`(?m)^Mem: \d+K used, \d+K free`, `(?m)^Load average: `, `(?m)^\s+PID\s+PPID\s+USER\s+STAT`, `(?m)^\s+1\s+0 root .*sh -c`}},
		{"mount tmpfs", `mkdir m && $B mount -t tmpfs -o size=1m,mode=700 tmpsrc m && $B stat -c '%a' m && echo x > m/f && $B grep " $PWD/m " /proc/mounts && $B df m && $B umount m && test ! -e m/f && echo unmounted`,
			[]string{`^700\n`, `(?m)^tmpsrc \S+/m tmpfs rw`, `(?m)^tmpsrc\s+1024\s+\d+\s+\d+\s+\d+% \S+/m$`, `(?m)^unmounted$`}},
		{"df", `$B df /`,
			[]string{`(?m)^Filesystem\s+1K-blocks\s+Used\s+Available\s+Use% Mounted on$`, `(?m)^\S+\s+\d+\s+\d+\s+\d+\s+\d+% /$`}},
		// The shell's own counters include the dd it waited for.
		{"/proc/pid/io", `$B dd if=/dev/zero of=/dev/null bs=1000 count=20 2>/dev/null; $B cat /proc/$$/io`,
			[]string{`(?m)^rchar: [1-9]\d{4,}$`, `(?m)^wchar: [1-9]\d{4,}$`, `(?m)^syscr: [1-9]\d+$`, `(?m)^syscw: [1-9]\d+$`, `(?m)^read_bytes: 0$`, `(?m)^cancelled_write_bytes: 0$`}},
		{"netstat and /proc/self/net", `$B readlink /proc/net && $B ls /proc/self/net | $B grep -x tcp && $B nc -l -p 7777 >/dev/null & P=$!; ` +
			`for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do $B netstat -tln | $B grep -q ':7777 ' && break; $B sleep 0.2; done; $B netstat -tln; kill $P; :`,
			[]string{`(?m)^self/net\ntcp$`, `(?m)^Proto Recv-Q Send-Q Local Address\s+Foreign Address\s+State\s*$`, `(?m)^tcp\s+0\s+0 (0\.0\.0\.0|::):7777\s+(0\.0\.0\.0|::):\*\s+LISTEN\s*$`}},
		// No terminal: the node is there, with no console behind it.
		{"/dev/console without a terminal", `$B ls -l /dev/console && (echo x > /dev/console) 2>&1 | $B sed 's/.*: //'; :`,
			[]string{`(?m)^crw-------\s+1 root\s+root\s+5,\s+1 .* /dev/console$`, `(?m)^No such device$`}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, "/", "_"), func(t *testing.T) {
			out, stderr, code := e.runsc("do", busybox, "sh", "-c", prologue+c.script)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
			for _, w := range c.want {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestBusyboxSttyOnHostTerminal runs stty in the sandbox on a host pty
// handed in as stdio: the Sentry's imported terminal answers its ioctls.
func TestBusyboxSttyOnHostTerminal(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	_, replica := hostPty(t)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := runscCommand(e, "do", busybox, "sh", "-c", busybox+" stty rows 31 cols 97 && "+busybox+" stty size && "+busybox+" stty -echo && "+busybox+" stty -a")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = replica, out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("runsc do stty: %v: %s", err, b)
	}
	b, _ := os.ReadFile(out.Name())
	for _, w := range []string{`(?m)^31 97$`, `rows 31; columns 97;`, `(?m)(^| )-echo( |$)`, `(?m)(^| )icanon( |$)`, `intr = \^C;`} {
		if !regexp.MustCompile(w).Match(b) {
			t.Errorf("stty output does not match %q:\n%s", w, b)
		}
	}
}

// runscCommand is a runsc command line with this environment's root, for
// tests that give it their own stdio.
func runscCommand(e *env, args ...string) *exec.Cmd {
	return exec.Command(runscBin, append([]string{"--root=" + e.root}, args...)...)
}

// TestBusyboxConsoleIsTheTerminal runs a sandbox on a host pty (a
// terminal container): its /dev/console is its terminal, as runc
// bind-mounts the pty there, so what is written to it reaches the user's
// terminal and it answers as a tty.
func TestBusyboxConsoleIsTheTerminal(t *testing.T) {
	e := newEnv(t)
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	master, replica := hostPty(t)
	var (
		mu     sync.Mutex
		onTerm []byte
	)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			mu.Lock()
			onTerm = append(onTerm, b[:max(n, 0)]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	b := busybox
	cmd := runscCommand(e, "do", b, "sh", "-c", b+" ls -l /dev/console && echo via-console > /dev/console && "+
		b+" tty < /dev/console && test -t 1 > /dev/console && echo console-isatty && echo end-of-test")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = replica, replica, replica
	if err := cmd.Run(); err != nil {
		t.Fatalf("runsc do: %v", err)
	}
	want := []string{`(?m)^crw--w----\s+1 root\s+tty\s+5,\s+1 .* /dev/console\r?$`, `(?m)^via-console\r?$`, `(?m)^/dev/console\r?$`, `(?m)^console-isatty\r?$`}
	var term string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		term = string(onTerm)
		mu.Unlock()
		if strings.Contains(term, "end-of-test") || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(term) {
			t.Errorf("terminal output does not match %q:\n%q", w, term)
		}
	}
	// With the last replica descriptor closed the master's read fails
	// (EIO), which ends the reader (closing the master would not: a
	// blocked read of it is not interrupted).
	replica.Close()
	<-readerDone
}
