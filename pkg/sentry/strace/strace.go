// Package strace owns the --strace output: one line per syscall, naming
// the syscall and showing its arguments and result the way strace(1) does
// (errno names for failures). Path names are read by the caller (PathArgs
// says which) and quoted by LineWithStrings; flags, modes, signals,
// commands and descriptors of the common syscalls are decoded (decode.go);
// other arguments print in hex.
package strace

import (
	"fmt"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// argCounts gives how many arguments the common syscalls take, so lines
// do not show the four garbage registers of getpid. Others print six.
var argCounts = map[uintptr]int{
	linux.SYS_READ: 3, linux.SYS_WRITE: 3, linux.SYS_OPEN: 3, linux.SYS_CLOSE: 1,
	linux.SYS_MMAP: 6, linux.SYS_MPROTECT: 3, linux.SYS_MUNMAP: 2, linux.SYS_BRK: 1,
	linux.SYS_RT_SIGACTION: 4, linux.SYS_RT_SIGPROCMASK: 4, linux.SYS_RT_SIGRETURN: 0,
	linux.SYS_GETPID: 0, linux.SYS_GETTID: 0, linux.SYS_GETPPID: 0, linux.SYS_GETUID: 0,
	linux.SYS_GETEUID: 0, linux.SYS_GETGID: 0, linux.SYS_GETEGID: 0, linux.SYS_EXIT: 1,
	linux.SYS_EXIT_GROUP: 1, linux.SYS_ARCH_PRCTL: 2, linux.SYS_SET_TID_ADDRESS: 1,
	linux.SYS_SET_ROBUST_LIST: 2, linux.SYS_UNAME: 1, linux.SYS_FUTEX: 6, linux.SYS_CLONE: 5,
	linux.SYS_FORK: 0, linux.SYS_VFORK: 0, linux.SYS_EXECVE: 3, linux.SYS_WAIT4: 4,
	linux.SYS_KILL: 2, linux.SYS_TGKILL: 3, linux.SYS_NANOSLEEP: 2, linux.SYS_CLOCK_GETTIME: 2,
	linux.SYS_GETRANDOM: 3, linux.SYS_PRLIMIT64: 4, linux.SYS_MREMAP: 5, linux.SYS_MADVISE: 3,
	linux.SYS_WRITEV: 3, linux.SYS_READV: 3, linux.SYS_DUP: 1, linux.SYS_DUP2: 2, linux.SYS_DUP3: 3,
	linux.SYS_SCHED_YIELD: 0, linux.SYS_SYSINFO: 1, linux.SYS_SIGALTSTACK: 2,
	linux.SYS_OPENAT: 4, linux.SYS_NEWFSTATAT: 4, linux.SYS_FSTAT: 2, linux.SYS_STAT: 2,
	linux.SYS_LSTAT: 2, linux.SYS_STATX: 5, linux.SYS_ACCESS: 2, linux.SYS_FACCESSAT: 3,
	linux.SYS_FACCESSAT2: 4, linux.SYS_READLINK: 3, linux.SYS_READLINKAT: 4, linux.SYS_PREAD64: 4,
	linux.SYS_PWRITE64: 4, linux.SYS_LSEEK: 3, linux.SYS_IOCTL: 3, linux.SYS_FCNTL: 3,
	linux.SYS_GETDENTS64: 3, linux.SYS_GETCWD: 2, linux.SYS_CHDIR: 1, linux.SYS_MKDIR: 2,
	linux.SYS_MKDIRAT: 3, linux.SYS_UNLINK: 1, linux.SYS_UNLINKAT: 3, linux.SYS_RENAME: 2,
	linux.SYS_PIPE2: 2, linux.SYS_UMASK: 1, linux.SYS_EXECVEAT: 5, linux.SYS_POLL: 3,
	linux.SYS_PPOLL: 5, linux.SYS_CHMOD: 2, linux.SYS_SYMLINK: 2, linux.SYS_RMDIR: 1,
	linux.SYS_SOCKET: 3, linux.SYS_SOCKETPAIR: 4, linux.SYS_TKILL: 2, linux.SYS_CREAT: 2,
	linux.SYS_RT_SIGQUEUEINFO: 3, linux.SYS_PERSONALITY: 1,
}

// pathArgs marks, per syscall, the arguments that are path names, which
// the caller reads from the application (before the call: execve
// replaces the memory they are in) and passes to LineWithStrings.
var pathArgs = map[uintptr]uint8{
	linux.SYS_OPEN: 1 << 0, linux.SYS_OPENAT: 1 << 1, linux.SYS_CREAT: 1 << 0,
	linux.SYS_STAT: 1 << 0, linux.SYS_LSTAT: 1 << 0, linux.SYS_NEWFSTATAT: 1 << 1,
	linux.SYS_STATX: 1 << 1, linux.SYS_ACCESS: 1 << 0, linux.SYS_FACCESSAT: 1 << 1,
	linux.SYS_FACCESSAT2: 1 << 1, linux.SYS_READLINK: 1 << 0, linux.SYS_READLINKAT: 1 << 1,
	linux.SYS_EXECVE: 1 << 0, linux.SYS_EXECVEAT: 1 << 1, linux.SYS_CHDIR: 1 << 0,
	linux.SYS_MKDIR: 1 << 0, linux.SYS_MKDIRAT: 1 << 1, linux.SYS_UNLINK: 1 << 0,
	linux.SYS_UNLINKAT: 1 << 1, linux.SYS_RMDIR: 1 << 0, linux.SYS_RENAME: 1<<0 | 1<<1,
	linux.SYS_RENAMEAT: 1<<1 | 1<<3, linux.SYS_RENAMEAT2: 1<<1 | 1<<3,
	linux.SYS_SYMLINK: 1<<0 | 1<<1, linux.SYS_SYMLINKAT: 1<<0 | 1<<2, linux.SYS_LINK: 1<<0 | 1<<1,
	linux.SYS_LINKAT: 1<<1 | 1<<3, linux.SYS_CHMOD: 1 << 0, linux.SYS_FCHMODAT: 1 << 1,
	linux.SYS_CHOWN: 1 << 0, linux.SYS_LCHOWN: 1 << 0, linux.SYS_FCHOWNAT: 1 << 1,
	linux.SYS_TRUNCATE: 1 << 0, linux.SYS_UTIMENSAT: 1 << 1, linux.SYS_STATFS: 1 << 0,
	linux.SYS_GETXATTR: 1 << 0, linux.SYS_LGETXATTR: 1 << 0, linux.SYS_SETXATTR: 1 << 0,
	linux.SYS_LSETXATTR: 1 << 0, linux.SYS_LISTXATTR: 1 << 0, linux.SYS_LLISTXATTR: 1 << 0,
	linux.SYS_MKNOD: 1 << 0, linux.SYS_MKNODAT: 1 << 1, linux.SYS_CHROOT: 1 << 0,
}

// PathArgs returns a bit per argument of nr that is a path name.
func PathArgs(nr uintptr) uint8 { return pathArgs[nr] }

// Name returns the syscall's name, or "syscall_<nr>" for unknown numbers.
func Name(nr uintptr) string {
	if n := linux.SyscallName(nr); n != "" {
		return n
	}
	return "syscall_" + strconv.FormatUint(uint64(nr), 10)
}

// FormatCall renders the entry half of a line: name(arg, …).
func FormatCall(nr uintptr, args [6]uintptr) string { return formatCall(nr, args, nil, nil, false) }

// formatCall shows strs[i], quoted, for the arguments PathArgs marks, and
// with mem the structs that arguments point to (those the call fills in
// only when it succeeded).
func formatCall(nr uintptr, args [6]uintptr, strs *[6]string, mem Memory, succeeded bool) string {
	paths := PathArgs(nr)
	n := shownArgs(nr, args)
	kinds := argKinds[nr]
	var b strings.Builder
	b.WriteString(Name(nr))
	b.WriteByte('(')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		if strs != nil && paths&(1<<i) != 0 {
			b.WriteString(strconv.Quote(strs[i]))
			continue
		}
		if kinds[i] >= firstStructKind {
			writeStruct(&b, kinds[i], args[i], mem, succeeded)
			continue
		}
		writeArg(&b, kinds[i], uint64(args[i]))
	}
	b.WriteByte(')')
	return b.String()
}

// FormatResult renders the result: the value, or -1 and the errno's name
// and description as strace does.
func FormatResult(rv uintptr, err error) string {
	if err == nil {
		return fmt.Sprintf("%d (%#x)", int64(rv), rv)
	}
	var e unix.Errno
	if x, ok := err.(unix.Errno); ok {
		e = x
	} else {
		return fmt.Sprintf("? (%v)", err)
	}
	name := linux.ErrnoName(e)
	if name == "" {
		name = "E" + strconv.Itoa(int(e))
	}
	if linux.IsRestartErrno(e) {
		return fmt.Sprintf("? %s (To be restarted)", name)
	}
	return fmt.Sprintf("-1 %s (%s)", name, e.Error())
}

// Line is a whole strace line for thread tid.
func Line(tid int32, nr uintptr, args [6]uintptr, rv uintptr, err error) string {
	return fmt.Sprintf("[%d] %s = %s", tid, FormatCall(nr, args), FormatResult(rv, err))
}

// LineWithStrings is Line with the path arguments (PathArgs) shown as
// the strings the caller read.
func LineWithStrings(tid int32, nr uintptr, args [6]uintptr, strs *[6]string, rv uintptr, err error) string {
	return fmt.Sprintf("[%d] %s = %s", tid, formatCall(nr, args, strs, nil, false), FormatResult(rv, err))
}

// LineWithMemory is LineWithStrings that also shows the structs the
// common syscalls take or fill in (timespecs, stat results, sigactions),
// read after the call from mem.
func LineWithMemory(tid int32, nr uintptr, args [6]uintptr, strs *[6]string, mem Memory, rv uintptr, err error) string {
	return fmt.Sprintf("[%d] %s = %s", tid, formatCall(nr, args, strs, mem, err == nil), FormatResult(rv, err))
}
