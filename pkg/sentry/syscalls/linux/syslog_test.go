package linux

import (
	"errors"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

func TestSyslogBootLog(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	size, err := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionSizeBuffer, 0, 0))
	if err != nil || size != 1<<17 {
		t.Fatalf("SIZE_BUFFER = %d, %v", size, err)
	}
	n, err := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionReadAll, uintptr(buf), 4096))
	if err != nil || n == 0 {
		t.Fatalf("READ_ALL = %d, %v", n, err)
	}
	b := make([]byte, n)
	task.CopyIn(buf, b)
	log := string(b)
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "<6>[    0.000000] Starting Carapace") || !strings.HasSuffix(lines[len(lines)-1], "] Ready!") {
		t.Fatalf("boot log %q", log)
	}
	// A short buffer gets the most recent bytes.
	if n, _ := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionReadAll, uintptr(buf), 7)); n != 7 {
		t.Fatalf("READ_ALL(7) = %d", n)
	}
	task.CopyIn(buf, b[:7])
	if string(b[:7]) != "Ready!\n" {
		t.Fatalf("tail %q", b[:7])
	}
	for _, c := range []struct {
		action, addr, n uintptr
		want            error
	}{
		{99, 0, 0, unix.EINVAL},
		{syslogActionReadAll, 0, 10, unix.EINVAL},
		{syslogActionReadAll, uintptr(buf), ^uintptr(0), unix.EINVAL},
		{syslogActionConsoleLvl, 0, 9, unix.EINVAL},
		{syslogActionReadAll, 8, 10, unix.EFAULT},
	} {
		if _, err := task.ExecuteSyscall(linux.SYS_SYSLOG, args(c.action, c.addr, c.n)); !errors.Is(err, c.want) {
			t.Errorf("syslog(%d, %#x, %d) = %v, want %v", c.action, c.addr, int(c.n), err, c.want)
		}
	}
	if n, _ := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionSizeUnread, 0, 0)); n == 0 {
		t.Fatal("nothing unread before READ")
	}
	task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionClear, 0, 0))
	if n, _ := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionReadAll, uintptr(buf), 4096)); n != 0 {
		t.Fatalf("READ_ALL after CLEAR = %d", n)
	}
	// Without CAP_SYSLOG only READ_ALL and SIZE_BUFFER are allowed.
	task.ExecuteSyscall(linux.SYS_SETRESUID, args(1000, 1000, 1000))
	if _, err := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionClear, 0, 0)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged CLEAR: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SYSLOG, args(syslogActionReadAll, uintptr(buf), 10)); err != nil {
		t.Fatalf("unprivileged READ_ALL: %v", err)
	}
}
