package strace

import (
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

func TestLine(t *testing.T) {
	for _, c := range []struct {
		nr   uintptr
		args [6]uintptr
		rv   uintptr
		err  error
		want string
	}{
		{linux.SYS_GETPID, [6]uintptr{9, 9}, 1, nil, "[3] getpid() = 1 (0x1)"},
		{linux.SYS_WRITE, [6]uintptr{1, 0x1000, 6}, 6, nil, "[3] write(0x1, 0x1000, 0x6) = 6 (0x6)"},
		{linux.SYS_CLOSE, [6]uintptr{7}, 0, unix.EBADF, "[3] close(0x7) = -1 EBADF (bad file descriptor)"},
		{linux.SYS_NANOSLEEP, [6]uintptr{0x10, 0}, 0, linux.ERESTART_RESTARTBLOCK, "[3] nanosleep(0x10, 0x0) = ? ERESTART_RESTARTBLOCK (To be restarted)"},
		{100000, [6]uintptr{}, 0, unix.ENOSYS, "[3] syscall_100000(0x0, 0x0, 0x0, 0x0, 0x0, 0x0) = -1 ENOSYS (function not implemented)"},
		{linux.SYS_GETPID, [6]uintptr{}, 0, errors.New("boom"), "[3] getpid() = ? (boom)"},
	} {
		if got := Line(3, c.nr, c.args, c.rv, c.err); got != c.want {
			t.Errorf("Line = %q, want %q", got, c.want)
		}
	}
}

func TestLineWithStringsQuotesPaths(t *testing.T) {
	strs := [6]string{1: "/etc/ld.so.cache"}
	got := LineWithStrings(1, linux.SYS_OPENAT, [6]uintptr{0xffffff9c, 0x7f00, 0x80000, 0}, &strs, 3, nil)
	want := `[1] openat(0xffffff9c, "/etc/ld.so.cache", 0x80000, 0x0) = 3 (0x3)`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if PathArgs(linux.SYS_GETPID) != 0 || PathArgs(linux.SYS_RENAMEAT2) != 1<<1|1<<3 {
		t.Fatal("PathArgs marks the wrong arguments")
	}
}
