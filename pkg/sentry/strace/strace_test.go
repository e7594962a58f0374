package strace

import (
	"encoding/binary"
	"errors"
	"strings"
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
		{linux.SYS_WRITE, [6]uintptr{1, 0x1000, 6}, 6, nil, "[3] write(1, 0x1000, 6) = 6 (0x6)"},
		{linux.SYS_CLOSE, [6]uintptr{7}, 0, unix.EBADF, "[3] close(7) = -1 EBADF (bad file descriptor)"},
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
	want := `[1] openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3 (0x3)`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if PathArgs(linux.SYS_GETPID) != 0 || PathArgs(linux.SYS_RENAMEAT2) != 1<<1|1<<3 {
		t.Fatal("PathArgs marks the wrong arguments")
	}
}

func TestDecodedArguments(t *testing.T) {
	const (
		atFDCWD = 0xffffff9c // -100 as the 32-bit int the program passed
		minus1  = ^uintptr(0)
	)
	for _, c := range []struct {
		nr   uintptr
		args [6]uintptr
		want string
	}{
		{linux.SYS_OPENAT, [6]uintptr{atFDCWD, 0, unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_CLOEXEC, 0o644},
			"openat(AT_FDCWD, 0x0, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644)"},
		{linux.SYS_OPENAT, [6]uintptr{5, 0, unix.O_RDWR | unix.O_TMPFILE, 0o600},
			"openat(5, 0x0, O_RDWR|O_TMPFILE, 0600)"},
		{linux.SYS_OPEN, [6]uintptr{0, unix.O_RDONLY | unix.O_DIRECTORY | 0x40000000, 0},
			"open(0x0, O_RDONLY|O_DIRECTORY|0x40000000)"},
		{linux.SYS_OPEN, [6]uintptr{0, unix.O_RDWR | unix.O_SYNC}, "open(0x0, O_RDWR|O_SYNC)"},
		{linux.SYS_MMAP, [6]uintptr{0, 8192, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS, minus1, 0},
			"mmap(0x0, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0x0)"},
		{linux.SYS_MMAP, [6]uintptr{0x7000, 4096, unix.PROT_READ | unix.PROT_EXEC, unix.MAP_SHARED | unix.MAP_FIXED | unix.MAP_DENYWRITE, 3, 0x1000},
			"mmap(0x7000, 4096, PROT_READ|PROT_EXEC, MAP_SHARED|MAP_FIXED|MAP_DENYWRITE, 3, 0x1000)"},
		{linux.SYS_MPROTECT, [6]uintptr{0x7000, 4096, unix.PROT_NONE}, "mprotect(0x7000, 4096, PROT_NONE)"},
		{linux.SYS_CLONE, [6]uintptr{unix.CLONE_CHILD_SETTID | unix.CLONE_CHILD_CLEARTID | uintptr(unix.SIGCHLD), 0, 0, 0x10, 0},
			"clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, 0x0, 0x0, 0x10, 0x0)"},
		{linux.SYS_CLONE, [6]uintptr{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND},
			"clone(CLONE_VM|CLONE_SIGHAND|CLONE_THREAD, 0x0, 0x0, 0x0, 0x0)"},
		{linux.SYS_CLONE, [6]uintptr{0}, "clone(0x0, 0x0, 0x0, 0x0, 0x0)"},
		{linux.SYS_KILL, [6]uintptr{minus1, uintptr(unix.SIGKILL)}, "kill(-1, SIGKILL)"},
		{linux.SYS_TGKILL, [6]uintptr{4, 5, 40}, "tgkill(4, 5, SIGRT_6)"},
		{linux.SYS_KILL, [6]uintptr{4, 0}, "kill(4, 0)"},
		{linux.SYS_RT_SIGACTION, [6]uintptr{uintptr(unix.SIGSEGV), 0x10, 0, 8}, "rt_sigaction(SIGSEGV, 0x10, 0x0, 8)"},
		{linux.SYS_RT_SIGPROCMASK, [6]uintptr{unix.SIG_SETMASK, 0x10, 0, 8}, "rt_sigprocmask(SIG_SETMASK, 0x10, 0x0, 8)"},
		{linux.SYS_FCNTL, [6]uintptr{3, unix.F_DUPFD_CLOEXEC, 10}, "fcntl(3, F_DUPFD_CLOEXEC, 0xa)"},
		{linux.SYS_FCNTL, [6]uintptr{3, 9999, 10}, "fcntl(3, 9999, 0xa)"},
		{linux.SYS_SOCKET, [6]uintptr{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK, 0},
			"socket(AF_INET6, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0)"},
		{linux.SYS_SOCKETPAIR, [6]uintptr{unix.AF_UNIX, unix.SOCK_SEQPACKET, 0, 0x20},
			"socketpair(AF_UNIX, SOCK_SEQPACKET, 0, 0x20)"},
		{linux.SYS_WAIT4, [6]uintptr{minus1, 0x30, unix.WNOHANG | 0x40000000, 0}, "wait4(-1, 0x30, WNOHANG|__WALL, 0x0)"},
		{linux.SYS_WAIT4, [6]uintptr{minus1, 0x30, 0, 0}, "wait4(-1, 0x30, 0x0, 0x0)"},
		{linux.SYS_NEWFSTATAT, [6]uintptr{3, 0x10, 0x20, unix.AT_EMPTY_PATH | unix.AT_SYMLINK_NOFOLLOW},
			"newfstatat(3, 0x10, 0x20, AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH)"},
		{linux.SYS_UNLINKAT, [6]uintptr{atFDCWD, 0x10, unix.AT_REMOVEDIR}, "unlinkat(AT_FDCWD, 0x10, AT_REMOVEDIR)"},
	} {
		if got := FormatCall(c.nr, c.args); got != c.want {
			t.Errorf("FormatCall = %q, want %q", got, c.want)
		}
	}
}

// fakeMemory is application memory: bytes at a base address.
type fakeMemory struct {
	base uintptr
	b    []byte
}

func (m *fakeMemory) ReadMemory(addr uintptr, p []byte) bool {
	if addr < m.base || addr-m.base+uintptr(len(p)) > uintptr(len(m.b)) {
		return false
	}
	copy(p, m.b[addr-m.base:])
	return true
}

func TestStructsFromMemory(t *testing.T) {
	const base = 0x1000
	mem := &fakeMemory{base: base, b: make([]byte, 256)}
	le := binary.LittleEndian
	// A timespec at 0x1000.
	le.PutUint64(mem.b[0:], 3)
	le.PutUint64(mem.b[8:], 500)
	// A struct stat at 0x1040: mode, uid, gid, size.
	le.PutUint32(mem.b[0x40+24:], unix.S_IFREG|0o644)
	le.PutUint32(mem.b[0x40+28:], 1000)
	le.PutUint32(mem.b[0x40+32:], 100)
	le.PutUint64(mem.b[0x40+48:], 12345)
	// A kernel sigaction at 0x1080: handler, flags, restorer, mask.
	le.PutUint64(mem.b[0x80:], 0x401000)
	le.PutUint64(mem.b[0x88:], linux.SA_SIGINFO|linux.SA_RESTORER|linux.SA_RESTART)
	le.PutUint64(mem.b[0x98:], 1<<9)
	// A SIG_IGN sigaction at 0x10a0.
	le.PutUint64(mem.b[0xa0:], 1)

	for _, c := range []struct {
		nr   uintptr
		args [6]uintptr
		err  error
		want string
	}{
		{linux.SYS_CLOCK_GETTIME, [6]uintptr{1, base}, nil, "[2] clock_gettime(0x1, {tv_sec=3, tv_nsec=500}) = 0 (0x0)"},
		// A failed call wrote nothing: the pointer stays a pointer.
		{linux.SYS_CLOCK_GETTIME, [6]uintptr{99, base}, unix.EINVAL, "[2] clock_gettime(0x63, 0x1000) = -1 EINVAL (invalid argument)"},
		{linux.SYS_NANOSLEEP, [6]uintptr{base, 0}, nil, "[2] nanosleep({tv_sec=3, tv_nsec=500}, 0x0) = 0 (0x0)"},
		{linux.SYS_FSTAT, [6]uintptr{3, base + 0x40}, nil,
			"[2] fstat(3, {st_mode=S_IFREG|0644, st_uid=1000, st_gid=100, st_size=12345, ...}) = 0 (0x0)"},
		{linux.SYS_RT_SIGACTION, [6]uintptr{uintptr(unix.SIGUSR1), base + 0x80, base + 0xa0, 8}, nil,
			"[2] rt_sigaction(SIGUSR1, {sa_handler=0x401000, sa_mask=0x200, sa_flags=SA_SIGINFO|SA_RESTORER|SA_RESTART}, " +
				"{sa_handler=SIG_IGN, sa_mask=0x0, sa_flags=0x0}, 8) = 0 (0x0)"},
		// Unreadable memory falls back to the address.
		{linux.SYS_NANOSLEEP, [6]uintptr{0x9000, 0}, nil, "[2] nanosleep(0x9000, 0x0) = 0 (0x0)"},
	} {
		if got := LineWithMemory(2, c.nr, c.args, nil, mem, 0, c.err); got != c.want {
			t.Errorf("LineWithMemory =\n  %q, want\n  %q", got, c.want)
		}
	}
	// Without memory, FormatCall shows addresses.
	if got, want := FormatCall(linux.SYS_FSTAT, [6]uintptr{3, base}), "fstat(3, 0x1000)"; got != want {
		t.Errorf("FormatCall = %q, want %q", got, want)
	}
}

// FuzzLineWithMemory formats any syscall with any arguments over any
// application memory: it must never panic, and a line always names the
// syscall.
func FuzzLineWithMemory(f *testing.F) {
	f.Add(uint16(linux.SYS_RT_SIGACTION), uint64(10), uint64(0x1000), uint64(0x1010), uint64(0), []byte("\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), false)
	f.Add(uint16(linux.SYS_OPENAT), uint64(0xffffff9c), uint64(0x1000), uint64(0xffffffff), uint64(0o7777), []byte{}, true)
	f.Add(uint16(linux.SYS_CLONE), uint64(0xffffffffffffffff), uint64(0), uint64(0), uint64(0), []byte{}, false)
	f.Fuzz(func(t *testing.T, nr uint16, a0, a1, a2, a3 uint64, memBytes []byte, failed bool) {
		mem := &fakeMemory{base: 0x1000, b: memBytes}
		args := [6]uintptr{uintptr(a0), uintptr(a1), uintptr(a2), uintptr(a3), uintptr(a1), uintptr(a0)}
		var err error
		if failed {
			err = unix.EFAULT
		}
		line := LineWithMemory(1, uintptr(nr), args, nil, mem, 0, err)
		if !strings.Contains(line, Name(uintptr(nr))+"(") {
			t.Fatalf("line %q does not name %s", line, Name(uintptr(nr)))
		}
	})
}
