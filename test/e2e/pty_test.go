package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// ptyDriver runs inside the sandbox: it opens a pty pair on the Sentry's
// devpts (/dev/ptmx), starts an interactive busybox shell on the replica
// as a session leader with it as controlling terminal, and plays a user:
// it types commands and control characters and prints, one line per step,
// the step's name and everything the terminal showed until the next
// prompt. Every wait has a time limit so a broken line discipline fails
// the test instead of hanging it.
const ptyDriver = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ['PS1'] = 'PROMPT> '
    os.execv('/bin/busybox', ['sh', '-i'])
buf = b''
def expect(s, timeout=10):
    global buf
    end = time.time() + timeout
    while s.encode() not in buf:
        left = end - time.time()
        if left <= 0:
            print('TIMEOUT waiting for %r; got %r' % (s, buf)); sys.exit(3)
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                d = b''
            if not d:
                print('EOF waiting for %r; got %r' % (s, buf)); sys.exit(4)
            buf += d
    i = buf.index(s.encode()) + len(s)
    out, buf = buf[:i], buf[i:]
    return out.decode()
def send(s):
    os.write(fd, s.encode())
expect('PROMPT> ')
send('echo $((6*7))\n'); print('arith', repr(expect('PROMPT> ')))
send('stty rows 25 cols 81; stty size\n'); print('size', repr(expect('PROMPT> ')))
send('tty\n'); print('tty', repr(expect('PROMPT> ')))
t0 = time.time()
send('sleep 30\n'); expect('sleep 30\r\n'); time.sleep(0.3)
send('\x03'); print('intr', repr(expect('PROMPT> ')), 'secs %.1f' % (time.time()-t0))
send('echo status=$?\n'); print('status', repr(expect('PROMPT> ')))
send('cat\n'); expect('cat\r\n'); time.sleep(0.2)
send('abc\x7fd\n'); print('canon', repr(expect('d\r\nabd\r\n')))
send('\x04'); print('eof', repr(expect('PROMPT> ')))
send('sleep 30\n'); expect('sleep 30\r\n'); time.sleep(0.3)
send('\x1a'); print('stop', repr(expect('PROMPT> ')))
send('fg\n'); expect('sleep 30\r\n'); time.sleep(0.3)
send('\x03'); print('fgintr', repr(expect('PROMPT> ')))
send('echo status=$?; jobs; echo nojobs\n'); print('fgstatus', repr(expect('PROMPT> ')))
send('exit 5\n')
_, st = os.waitpid(pid, 0)
print('exit', os.waitstatus_to_exitcode(st))
`

// TestInteractiveShellOnSandboxPty drives busybox sh -i on a pty of the
// Sentry's devpts: prompt and output, termios window size, canonical-mode
// erase and echo, ^D, ^C interrupting the foreground job, ^Z stopping it
// and fg resuming it in the foreground.
func TestInteractiveShellOnSandboxPty(t *testing.T) {
	e := newEnv(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 (its pty module opens /dev/ptmx in the sandbox)")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("needs busybox-static at %s: %v", busybox, err)
	}
	script := filepath.Join(t.TempDir(), "ptydriver.py")
	if err := os.WriteFile(script, []byte(ptyDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := e.runsc("do", python, script)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, w := range []string{
		`(?m)^arith '.*echo \$\(\(6\*7\)\)\\r\\n42\\r\\nPROMPT> '$`,
		`(?m)^size '.*\\r\\n25 81\\r\\nPROMPT> '$`,
		`(?m)^tty '.*\\r\\n/dev/pts/\d+\\r\\nPROMPT> '$`,
		// ^C is echoed as "^C" and kills sleep long before its 30 s.
		`(?m)^intr '\^C\\r\\nPROMPT> ' secs [0-4]\.\d$`,
		`(?m)^status '.*\\r\\nstatus=130\\r\\nPROMPT> '$`,
		// DEL erases "c" on the screen (backspace, space, backspace) and
		// in the line cat reads.
		`(?m)^canon 'abc\\x08 \\x08d\\r\\nabd\\r\\n'$`,
		`(?m)^eof 'PROMPT> '$`,
		`(?m)^stop '\^Z\[1\]\+\s+Stopped\s+sleep 30\\r\\nPROMPT> '$`,
		`(?m)^fgintr '\^C\\r\\nPROMPT> '$`,
		`(?m)^fgstatus '.*\\r\\nstatus=130\\r\\nnojobs\\r\\nPROMPT> '$`,
		`(?m)^exit 5$`,
	} {
		if !regexp.MustCompile(w).MatchString(out) {
			t.Errorf("transcript does not match %q:\n%s", w, out)
		}
	}
}
