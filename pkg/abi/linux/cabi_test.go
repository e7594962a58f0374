package linux

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These tests compile small C programs against the host's libc and kernel
// headers and compare every constant and struct layout of this package with
// what the C compiler says.

// cCheck is one C integer expression and the value Go has for it.
type cCheck struct {
	expr string
	want int64
}

type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// k checks a constant of the same name in C.
func k[T integer](name string, v T) cCheck { return cCheck{name, int64(v)} }

// size checks sizeof(cType) against a Go size.
func size(cType string, v uintptr) cCheck { return cCheck{"sizeof(" + cType + ")", int64(v)} }

// off checks offsetof(cType, field) against a Go offset.
func off(cType, field string, v uintptr) cCheck {
	return cCheck{"offsetof(" + cType + ", " + field + ")", int64(v)}
}

// runC compiles a C program made of the given headers and main body and
// returns its output lines.
func runC(t *testing.T, headers []string, body string) []string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed (Debian package gcc): cannot compare with C headers")
	}
	var src strings.Builder
	src.WriteString("#define _GNU_SOURCE\n")
	for _, h := range headers {
		fmt.Fprintf(&src, "#include <%s>\n", h)
	}
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\nint main(void) {\n")
	src.WriteString(body)
	src.WriteString("return 0;\n}\n")
	dir := t.TempDir()
	cFile := filepath.Join(dir, "abi.c")
	bin := filepath.Join(dir, "abi")
	if err := os.WriteFile(cFile, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-w", "-o", bin, cFile).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running C program: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// compareC evaluates every check's expression in C and reports mismatches.
func compareC(t *testing.T, headers []string, checks []cCheck) {
	t.Helper()
	var body strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&body, "printf(\"%%lld\\n\", (long long)(%s));\n", c.expr)
	}
	lines := runC(t, headers, body.String())
	if len(lines) != len(checks) {
		t.Fatalf("C program printed %d lines, want %d", len(lines), len(checks))
	}
	for i, c := range checks {
		got, err := strconv.ParseInt(lines[i], 10, 64)
		if err != nil {
			t.Fatalf("%s: bad C output %q", c.expr, lines[i])
		}
		if got != c.want {
			t.Errorf("%s: C says %d (%#x), Go has %d (%#x)", c.expr, got, got, c.want, c.want)
		}
	}
}

// Programs using glibc's view: struct stat, rusage, utsname, constants.
var libcHeaders = []string{
	"fcntl.h", "sys/stat.h", "sys/mman.h", "sched.h", "sys/wait.h", "signal.h",
	"sys/resource.h", "sys/utsname.h", "sys/prctl.h", "sys/epoll.h", "poll.h",
	"time.h", "sys/time.h", "sys/times.h", "sys/sysinfo.h", "elf.h", "dirent.h",
	"sys/uio.h", "sys/ioctl.h", "unistd.h", "linux/futex.h", "asm/prctl.h",
	"linux/openat2.h", "linux/sched.h", "sys/eventfd.h", "sys/signalfd.h",
	"sys/timerfd.h", "linux/memfd.h", "linux/audit.h",
}

// Programs using the kernel's own view where it differs from glibc's:
// struct termios, struct sigaction, siginfo, ucontext, O_LARGEFILE.
var kernelHeaders = []string{
	"asm/termbits.h", "asm/ioctls.h", "asm/signal.h", "asm/siginfo.h",
	"asm/sigcontext.h", "asm/ucontext.h", "linux/fcntl.h", "asm/stat.h",
	"linux/auxvec.h", "linux/eventpoll.h", "linux/resource.h", "linux/futex.h",
	"linux/stat.h", "linux/wait.h", "linux/mman.h", "linux/signal.h",
}

func TestConstantsMatchLibc(t *testing.T) {
	var rliminf uint64 = RLIM_INFINITY
	checks := []cCheck{
		// open, fcntl, at
		k("O_ACCMODE", O_ACCMODE), k("O_RDONLY", O_RDONLY), k("O_WRONLY", O_WRONLY), k("O_RDWR", O_RDWR),
		k("O_CREAT", O_CREAT), k("O_EXCL", O_EXCL), k("O_NOCTTY", O_NOCTTY), k("O_TRUNC", O_TRUNC),
		k("O_APPEND", O_APPEND), k("O_NONBLOCK", O_NONBLOCK), k("O_NDELAY", O_NDELAY), k("O_DSYNC", O_DSYNC),
		k("O_ASYNC", O_ASYNC), k("O_DIRECT", O_DIRECT), k("O_DIRECTORY", O_DIRECTORY),
		k("O_NOFOLLOW", O_NOFOLLOW), k("O_NOATIME", O_NOATIME), k("O_CLOEXEC", O_CLOEXEC),
		k("O_SYNC", O_SYNC), k("O_PATH", O_PATH), k("O_TMPFILE", O_TMPFILE),
		k("F_DUPFD", F_DUPFD), k("F_GETFD", F_GETFD), k("F_SETFD", F_SETFD), k("F_GETFL", F_GETFL),
		k("F_SETFL", F_SETFL), k("F_GETLK", F_GETLK), k("F_SETLK", F_SETLK), k("F_SETLKW", F_SETLKW),
		k("F_SETOWN", F_SETOWN), k("F_GETOWN", F_GETOWN), k("F_SETSIG", F_SETSIG), k("F_GETSIG", F_GETSIG),
		k("F_SETOWN_EX", F_SETOWN_EX), k("F_GETOWN_EX", F_GETOWN_EX),
		k("F_OFD_GETLK", F_OFD_GETLK), k("F_OFD_SETLK", F_OFD_SETLK), k("F_OFD_SETLKW", F_OFD_SETLKW),
		k("F_SETLEASE", F_SETLEASE), k("F_GETLEASE", F_GETLEASE), k("F_NOTIFY", F_NOTIFY),
		k("F_DUPFD_CLOEXEC", F_DUPFD_CLOEXEC), k("F_SETPIPE_SZ", F_SETPIPE_SZ),
		k("F_GETPIPE_SZ", F_GETPIPE_SZ), k("F_ADD_SEALS", F_ADD_SEALS), k("F_GET_SEALS", F_GET_SEALS),
		k("FD_CLOEXEC", FD_CLOEXEC), k("F_RDLCK", F_RDLCK), k("F_WRLCK", F_WRLCK), k("F_UNLCK", F_UNLCK),
		k("F_OWNER_TID", F_OWNER_TID), k("F_OWNER_PID", F_OWNER_PID), k("F_OWNER_PGRP", F_OWNER_PGRP),
		k("F_SEAL_SEAL", F_SEAL_SEAL), k("F_SEAL_SHRINK", F_SEAL_SHRINK), k("F_SEAL_GROW", F_SEAL_GROW),
		k("F_SEAL_WRITE", F_SEAL_WRITE), k("F_SEAL_FUTURE_WRITE", F_SEAL_FUTURE_WRITE),
		k("AT_FDCWD", AT_FDCWD), k("AT_SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW), k("AT_EACCESS", AT_EACCESS),
		k("AT_REMOVEDIR", AT_REMOVEDIR), k("AT_SYMLINK_FOLLOW", AT_SYMLINK_FOLLOW),
		k("AT_NO_AUTOMOUNT", AT_NO_AUTOMOUNT), k("AT_EMPTY_PATH", AT_EMPTY_PATH),
		k("AT_STATX_SYNC_TYPE", AT_STATX_SYNC_TYPE), k("AT_STATX_SYNC_AS_STAT", AT_STATX_SYNC_AS_STAT),
		k("AT_STATX_FORCE_SYNC", AT_STATX_FORCE_SYNC), k("AT_STATX_DONT_SYNC", AT_STATX_DONT_SYNC),
		k("AT_RECURSIVE", AT_RECURSIVE),
		k("RESOLVE_NO_XDEV", RESOLVE_NO_XDEV), k("RESOLVE_NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS),
		k("RESOLVE_NO_SYMLINKS", RESOLVE_NO_SYMLINKS), k("RESOLVE_BENEATH", RESOLVE_BENEATH),
		k("RESOLVE_IN_ROOT", RESOLVE_IN_ROOT), k("RESOLVE_CACHED", RESOLVE_CACHED),
		k("RENAME_NOREPLACE", RENAME_NOREPLACE), k("RENAME_EXCHANGE", RENAME_EXCHANGE),
		k("RENAME_WHITEOUT", RENAME_WHITEOUT),
		k("SEEK_SET", SEEK_SET), k("SEEK_CUR", SEEK_CUR), k("SEEK_END", SEEK_END), k("SEEK_DATA", SEEK_DATA),
		k("SEEK_HOLE", SEEK_HOLE), k("F_OK", F_OK), k("X_OK", X_OK), k("W_OK", W_OK), k("R_OK", R_OK),
		k("S_IFMT", S_IFMT), k("S_IFSOCK", S_IFSOCK), k("S_IFLNK", S_IFLNK), k("S_IFREG", S_IFREG),
		k("S_IFBLK", S_IFBLK), k("S_IFDIR", S_IFDIR), k("S_IFCHR", S_IFCHR), k("S_IFIFO", S_IFIFO),
		k("S_ISUID", S_ISUID), k("S_ISGID", S_ISGID), k("S_ISVTX", S_ISVTX), k("S_IRWXU", S_IRWXU),
		k("S_IRUSR", S_IRUSR), k("S_IWUSR", S_IWUSR), k("S_IXUSR", S_IXUSR), k("S_IRWXG", S_IRWXG),
		k("S_IRGRP", S_IRGRP), k("S_IWGRP", S_IWGRP), k("S_IXGRP", S_IXGRP), k("S_IRWXO", S_IRWXO),
		k("S_IROTH", S_IROTH), k("S_IWOTH", S_IWOTH), k("S_IXOTH", S_IXOTH),
		k("DT_UNKNOWN", DT_UNKNOWN), k("DT_FIFO", DT_FIFO), k("DT_CHR", DT_CHR), k("DT_DIR", DT_DIR),
		k("DT_BLK", DT_BLK), k("DT_REG", DT_REG), k("DT_LNK", DT_LNK), k("DT_SOCK", DT_SOCK), k("DT_WHT", DT_WHT),
		k("STATX_TYPE", STATX_TYPE), k("STATX_MODE", STATX_MODE), k("STATX_NLINK", STATX_NLINK),
		k("STATX_UID", STATX_UID), k("STATX_GID", STATX_GID), k("STATX_ATIME", STATX_ATIME),
		k("STATX_MTIME", STATX_MTIME), k("STATX_CTIME", STATX_CTIME), k("STATX_INO", STATX_INO),
		k("STATX_SIZE", STATX_SIZE), k("STATX_BLOCKS", STATX_BLOCKS), k("STATX_BASIC_STATS", STATX_BASIC_STATS),
		k("STATX_BTIME", STATX_BTIME), k("STATX_MNT_ID", STATX_MNT_ID), k("STATX_DIOALIGN", STATX_DIOALIGN),
		k("STATX__RESERVED", STATX__RESERVED), k("STATX_ALL", STATX_ALL),
		k("STATX_ATTR_COMPRESSED", STATX_ATTR_COMPRESSED), k("STATX_ATTR_IMMUTABLE", STATX_ATTR_IMMUTABLE),
		k("STATX_ATTR_APPEND", STATX_ATTR_APPEND), k("STATX_ATTR_NODUMP", STATX_ATTR_NODUMP),
		k("STATX_ATTR_ENCRYPTED", STATX_ATTR_ENCRYPTED), k("STATX_ATTR_AUTOMOUNT", STATX_ATTR_AUTOMOUNT),
		k("STATX_ATTR_MOUNT_ROOT", STATX_ATTR_MOUNT_ROOT), k("STATX_ATTR_VERITY", STATX_ATTR_VERITY),
		k("STATX_ATTR_DAX", STATX_ATTR_DAX),
		// poll, epoll, fd-creating syscalls
		k("POLLIN", POLLIN), k("POLLPRI", POLLPRI), k("POLLOUT", POLLOUT), k("POLLERR", POLLERR),
		k("POLLHUP", POLLHUP), k("POLLNVAL", POLLNVAL), k("POLLRDNORM", POLLRDNORM), k("POLLRDBAND", POLLRDBAND),
		k("POLLWRNORM", POLLWRNORM), k("POLLWRBAND", POLLWRBAND), k("POLLMSG", POLLMSG),
		k("POLLREMOVE", POLLREMOVE), k("POLLRDHUP", POLLRDHUP),
		k("EPOLLIN", EPOLLIN), k("EPOLLPRI", EPOLLPRI), k("EPOLLOUT", EPOLLOUT), k("EPOLLERR", EPOLLERR),
		k("EPOLLHUP", EPOLLHUP), k("EPOLLRDNORM", EPOLLRDNORM),
		k("EPOLLRDBAND", EPOLLRDBAND), k("EPOLLWRNORM", EPOLLWRNORM), k("EPOLLWRBAND", EPOLLWRBAND),
		k("EPOLLMSG", EPOLLMSG), k("EPOLLRDHUP", EPOLLRDHUP), k("EPOLLEXCLUSIVE", EPOLLEXCLUSIVE),
		k("EPOLLWAKEUP", EPOLLWAKEUP), k("EPOLLONESHOT", EPOLLONESHOT), k("EPOLLET", EPOLLET),
		k("EPOLL_CLOEXEC", EPOLL_CLOEXEC), k("EPOLL_CTL_ADD", EPOLL_CTL_ADD), k("EPOLL_CTL_DEL", EPOLL_CTL_DEL),
		k("EPOLL_CTL_MOD", EPOLL_CTL_MOD),
		k("EFD_SEMAPHORE", EFD_SEMAPHORE), k("EFD_CLOEXEC", EFD_CLOEXEC), k("EFD_NONBLOCK", EFD_NONBLOCK),
		k("SFD_CLOEXEC", SFD_CLOEXEC), k("SFD_NONBLOCK", SFD_NONBLOCK), k("TFD_CLOEXEC", TFD_CLOEXEC),
		k("TFD_NONBLOCK", TFD_NONBLOCK), k("TFD_TIMER_ABSTIME", TFD_TIMER_ABSTIME),
		k("TFD_TIMER_CANCEL_ON_SET", TFD_TIMER_CANCEL_ON_SET),
		k("MFD_CLOEXEC", MFD_CLOEXEC), k("MFD_ALLOW_SEALING", MFD_ALLOW_SEALING), k("MFD_HUGETLB", MFD_HUGETLB),
		k("PATH_MAX", PATH_MAX), k("NAME_MAX", NAME_MAX), k("UIO_MAXIOV", UIO_MAXIOV),
		// memory
		k("PROT_NONE", PROT_NONE), k("PROT_READ", PROT_READ), k("PROT_WRITE", PROT_WRITE),
		k("PROT_EXEC", PROT_EXEC), k("PROT_GROWSDOWN", PROT_GROWSDOWN),
		k("PROT_GROWSUP", PROT_GROWSUP),
		k("MAP_SHARED", MAP_SHARED), k("MAP_PRIVATE", MAP_PRIVATE), k("MAP_SHARED_VALIDATE", MAP_SHARED_VALIDATE),
		k("MAP_TYPE", MAP_TYPE), k("MAP_FIXED", MAP_FIXED), k("MAP_ANONYMOUS", MAP_ANONYMOUS),
		k("MAP_ANON", MAP_ANON), k("MAP_32BIT", MAP_32BIT), k("MAP_FILE", MAP_FILE),
		k("MAP_GROWSDOWN", MAP_GROWSDOWN), k("MAP_DENYWRITE", MAP_DENYWRITE), k("MAP_EXECUTABLE", MAP_EXECUTABLE),
		k("MAP_LOCKED", MAP_LOCKED), k("MAP_NORESERVE", MAP_NORESERVE), k("MAP_POPULATE", MAP_POPULATE),
		k("MAP_NONBLOCK", MAP_NONBLOCK), k("MAP_STACK", MAP_STACK), k("MAP_HUGETLB", MAP_HUGETLB),
		k("MAP_SYNC", MAP_SYNC), k("MAP_FIXED_NOREPLACE", MAP_FIXED_NOREPLACE),
		k("MAP_HUGE_SHIFT", MAP_HUGE_SHIFT), k("MAP_HUGE_MASK", MAP_HUGE_MASK),
		k("MADV_NORMAL", MADV_NORMAL), k("MADV_RANDOM", MADV_RANDOM), k("MADV_SEQUENTIAL", MADV_SEQUENTIAL),
		k("MADV_WILLNEED", MADV_WILLNEED), k("MADV_DONTNEED", MADV_DONTNEED), k("MADV_FREE", MADV_FREE),
		k("MADV_REMOVE", MADV_REMOVE), k("MADV_DONTFORK", MADV_DONTFORK), k("MADV_DOFORK", MADV_DOFORK),
		k("MADV_MERGEABLE", MADV_MERGEABLE), k("MADV_UNMERGEABLE", MADV_UNMERGEABLE),
		k("MADV_HUGEPAGE", MADV_HUGEPAGE), k("MADV_NOHUGEPAGE", MADV_NOHUGEPAGE),
		k("MADV_DONTDUMP", MADV_DONTDUMP), k("MADV_DODUMP", MADV_DODUMP), k("MADV_WIPEONFORK", MADV_WIPEONFORK),
		k("MADV_KEEPONFORK", MADV_KEEPONFORK), k("MADV_COLD", MADV_COLD), k("MADV_PAGEOUT", MADV_PAGEOUT),
		k("MADV_POPULATE_READ", MADV_POPULATE_READ), k("MADV_POPULATE_WRITE", MADV_POPULATE_WRITE),
		k("MADV_HWPOISON", MADV_HWPOISON),
		k("MREMAP_MAYMOVE", MREMAP_MAYMOVE), k("MREMAP_FIXED", MREMAP_FIXED),
		k("MREMAP_DONTUNMAP", MREMAP_DONTUNMAP),
		k("MS_ASYNC", MS_ASYNC), k("MS_INVALIDATE", MS_INVALIDATE), k("MS_SYNC", MS_SYNC),
		k("MLOCK_ONFAULT", MLOCK_ONFAULT), k("MCL_CURRENT", MCL_CURRENT), k("MCL_FUTURE", MCL_FUTURE),
		k("MCL_ONFAULT", MCL_ONFAULT),
		// processes
		k("CSIGNAL", CSIGNAL), k("CLONE_NEWTIME", CLONE_NEWTIME), k("CLONE_VM", CLONE_VM), k("CLONE_FS", CLONE_FS),
		k("CLONE_FILES", CLONE_FILES), k("CLONE_SIGHAND", CLONE_SIGHAND), k("CLONE_PIDFD", CLONE_PIDFD),
		k("CLONE_PTRACE", CLONE_PTRACE), k("CLONE_VFORK", CLONE_VFORK), k("CLONE_PARENT", CLONE_PARENT),
		k("CLONE_THREAD", CLONE_THREAD), k("CLONE_NEWNS", CLONE_NEWNS), k("CLONE_SYSVSEM", CLONE_SYSVSEM),
		k("CLONE_SETTLS", CLONE_SETTLS), k("CLONE_PARENT_SETTID", CLONE_PARENT_SETTID),
		k("CLONE_CHILD_CLEARTID", CLONE_CHILD_CLEARTID), k("CLONE_DETACHED", CLONE_DETACHED),
		k("CLONE_UNTRACED", CLONE_UNTRACED), k("CLONE_CHILD_SETTID", CLONE_CHILD_SETTID),
		k("CLONE_NEWCGROUP", CLONE_NEWCGROUP), k("CLONE_NEWUTS", CLONE_NEWUTS), k("CLONE_NEWIPC", CLONE_NEWIPC),
		k("CLONE_NEWUSER", CLONE_NEWUSER), k("CLONE_NEWPID", CLONE_NEWPID), k("CLONE_NEWNET", CLONE_NEWNET),
		k("CLONE_IO", CLONE_IO), k("CLONE_CLEAR_SIGHAND", CLONE_CLEAR_SIGHAND),
		k("CLONE_INTO_CGROUP", CLONE_INTO_CGROUP), k("CLONE_ARGS_SIZE_VER0", CLONE_ARGS_SIZE_VER0),
		k("CLONE_ARGS_SIZE_VER1", CLONE_ARGS_SIZE_VER1), k("CLONE_ARGS_SIZE_VER2", CLONE_ARGS_SIZE_VER2),
		k("WNOHANG", WNOHANG), k("WUNTRACED", WUNTRACED), k("WSTOPPED", WSTOPPED), k("WEXITED", WEXITED),
		k("WCONTINUED", WCONTINUED), k("WNOWAIT", WNOWAIT), k("__WNOTHREAD", WNOTHREAD), k("__WALL", WALL),
		k("__WCLONE", WCLONE), k("P_ALL", P_ALL), k("P_PID", P_PID), k("P_PGID", P_PGID), k("P_PIDFD", P_PIDFD),
		k("RLIMIT_CPU", RLIMIT_CPU), k("RLIMIT_FSIZE", RLIMIT_FSIZE), k("RLIMIT_DATA", RLIMIT_DATA),
		k("RLIMIT_STACK", RLIMIT_STACK), k("RLIMIT_CORE", RLIMIT_CORE), k("RLIMIT_RSS", RLIMIT_RSS),
		k("RLIMIT_NPROC", RLIMIT_NPROC), k("RLIMIT_NOFILE", RLIMIT_NOFILE), k("RLIMIT_MEMLOCK", RLIMIT_MEMLOCK),
		k("RLIMIT_AS", RLIMIT_AS), k("RLIMIT_LOCKS", RLIMIT_LOCKS), k("RLIMIT_SIGPENDING", RLIMIT_SIGPENDING),
		k("RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE), k("RLIMIT_NICE", RLIMIT_NICE), k("RLIMIT_RTPRIO", RLIMIT_RTPRIO),
		k("RLIMIT_RTTIME", RLIMIT_RTTIME), k("RLIMIT_NLIMITS", RLIM_NLIMITS), k("RLIM_INFINITY", rliminf),
		k("RUSAGE_SELF", RUSAGE_SELF), k("RUSAGE_CHILDREN", RUSAGE_CHILDREN), k("RUSAGE_THREAD", RUSAGE_THREAD),
		k("PRIO_PROCESS", PRIO_PROCESS), k("PRIO_PGRP", PRIO_PGRP), k("PRIO_USER", PRIO_USER),
		k("SCHED_OTHER", SCHED_NORMAL), k("SCHED_FIFO", SCHED_FIFO), k("SCHED_RR", SCHED_RR),
		k("SCHED_BATCH", SCHED_BATCH), k("SCHED_IDLE", SCHED_IDLE), k("SCHED_DEADLINE", SCHED_DEADLINE),
		k("SCHED_RESET_ON_FORK", SCHED_RESET_ON_FORK),
		k("PR_SET_PDEATHSIG", PR_SET_PDEATHSIG), k("PR_GET_PDEATHSIG", PR_GET_PDEATHSIG),
		k("PR_GET_DUMPABLE", PR_GET_DUMPABLE), k("PR_SET_DUMPABLE", PR_SET_DUMPABLE),
		k("PR_GET_UNALIGN", PR_GET_UNALIGN), k("PR_SET_UNALIGN", PR_SET_UNALIGN),
		k("PR_GET_KEEPCAPS", PR_GET_KEEPCAPS), k("PR_SET_KEEPCAPS", PR_SET_KEEPCAPS),
		k("PR_GET_FPEMU", PR_GET_FPEMU), k("PR_SET_FPEMU", PR_SET_FPEMU), k("PR_GET_FPEXC", PR_GET_FPEXC),
		k("PR_SET_FPEXC", PR_SET_FPEXC), k("PR_GET_TIMING", PR_GET_TIMING), k("PR_SET_TIMING", PR_SET_TIMING),
		k("PR_SET_NAME", PR_SET_NAME), k("PR_GET_NAME", PR_GET_NAME), k("PR_GET_ENDIAN", PR_GET_ENDIAN),
		k("PR_SET_ENDIAN", PR_SET_ENDIAN), k("PR_GET_SECCOMP", PR_GET_SECCOMP),
		k("PR_SET_SECCOMP", PR_SET_SECCOMP), k("PR_CAPBSET_READ", PR_CAPBSET_READ),
		k("PR_CAPBSET_DROP", PR_CAPBSET_DROP), k("PR_GET_TSC", PR_GET_TSC), k("PR_SET_TSC", PR_SET_TSC),
		k("PR_GET_SECUREBITS", PR_GET_SECUREBITS), k("PR_SET_SECUREBITS", PR_SET_SECUREBITS),
		k("PR_SET_TIMERSLACK", PR_SET_TIMERSLACK), k("PR_GET_TIMERSLACK", PR_GET_TIMERSLACK),
		k("PR_TASK_PERF_EVENTS_DISABLE", PR_TASK_PERF_EVENTS_DISABLE),
		k("PR_TASK_PERF_EVENTS_ENABLE", PR_TASK_PERF_EVENTS_ENABLE), k("PR_MCE_KILL", PR_MCE_KILL),
		k("PR_MCE_KILL_GET", PR_MCE_KILL_GET), k("PR_SET_MM", PR_SET_MM),
		k("PR_SET_CHILD_SUBREAPER", PR_SET_CHILD_SUBREAPER), k("PR_GET_CHILD_SUBREAPER", PR_GET_CHILD_SUBREAPER),
		k("PR_SET_NO_NEW_PRIVS", PR_SET_NO_NEW_PRIVS), k("PR_GET_NO_NEW_PRIVS", PR_GET_NO_NEW_PRIVS),
		k("PR_GET_TID_ADDRESS", PR_GET_TID_ADDRESS), k("PR_SET_THP_DISABLE", PR_SET_THP_DISABLE),
		k("PR_GET_THP_DISABLE", PR_GET_THP_DISABLE), k("PR_MPX_ENABLE_MANAGEMENT", PR_MPX_ENABLE_MANAGEMENT),
		k("PR_MPX_DISABLE_MANAGEMENT", PR_MPX_DISABLE_MANAGEMENT), k("PR_SET_FP_MODE", PR_SET_FP_MODE),
		k("PR_GET_FP_MODE", PR_GET_FP_MODE), k("PR_CAP_AMBIENT", PR_CAP_AMBIENT),
		k("PR_GET_SPECULATION_CTRL", PR_GET_SPECULATION_CTRL), k("PR_SET_SPECULATION_CTRL", PR_SET_SPECULATION_CTRL),
		k("PR_SET_TAGGED_ADDR_CTRL", PR_SET_TAGGED_ADDR_CTRL), k("PR_GET_TAGGED_ADDR_CTRL", PR_GET_TAGGED_ADDR_CTRL),
		k("PR_SET_IO_FLUSHER", PR_SET_IO_FLUSHER), k("PR_GET_IO_FLUSHER", PR_GET_IO_FLUSHER),
		k("PR_SET_SYSCALL_USER_DISPATCH", PR_SET_SYSCALL_USER_DISPATCH), k("PR_SCHED_CORE", PR_SCHED_CORE),
		k("PR_SET_PTRACER", PR_SET_PTRACER), k("PR_SET_VMA", PR_SET_VMA),
		k("PR_SET_PTRACER_ANY", PR_SET_PTRACER_ANY),
		k("PR_SET_MM_START_CODE", PR_SET_MM_START_CODE), k("PR_SET_MM_END_CODE", PR_SET_MM_END_CODE),
		k("PR_SET_MM_START_DATA", PR_SET_MM_START_DATA), k("PR_SET_MM_END_DATA", PR_SET_MM_END_DATA),
		k("PR_SET_MM_START_STACK", PR_SET_MM_START_STACK), k("PR_SET_MM_START_BRK", PR_SET_MM_START_BRK),
		k("PR_SET_MM_BRK", PR_SET_MM_BRK), k("PR_SET_MM_ARG_START", PR_SET_MM_ARG_START),
		k("PR_SET_MM_ARG_END", PR_SET_MM_ARG_END), k("PR_SET_MM_ENV_START", PR_SET_MM_ENV_START),
		k("PR_SET_MM_ENV_END", PR_SET_MM_ENV_END), k("PR_SET_MM_AUXV", PR_SET_MM_AUXV),
		k("PR_SET_MM_EXE_FILE", PR_SET_MM_EXE_FILE), k("PR_SET_MM_MAP", PR_SET_MM_MAP),
		k("PR_SET_MM_MAP_SIZE", PR_SET_MM_MAP_SIZE), k("PR_CAP_AMBIENT_IS_SET", PR_CAP_AMBIENT_IS_SET),
		k("PR_CAP_AMBIENT_RAISE", PR_CAP_AMBIENT_RAISE), k("PR_CAP_AMBIENT_LOWER", PR_CAP_AMBIENT_LOWER),
		k("PR_CAP_AMBIENT_CLEAR_ALL", PR_CAP_AMBIENT_CLEAR_ALL), k("PR_TSC_ENABLE", PR_TSC_ENABLE),
		k("PR_TSC_SIGSEGV", PR_TSC_SIGSEGV), k("PR_SET_VMA_ANON_NAME", PR_SET_VMA_ANON_NAME),
		k("ARCH_SET_GS", ARCH_SET_GS), k("ARCH_SET_FS", ARCH_SET_FS), k("ARCH_GET_FS", ARCH_GET_FS),
		k("ARCH_GET_GS", ARCH_GET_GS), k("ARCH_GET_CPUID", ARCH_GET_CPUID), k("ARCH_SET_CPUID", ARCH_SET_CPUID),
		k("ARCH_GET_XCOMP_SUPP", ARCH_GET_XCOMP_SUPP), k("ARCH_GET_XCOMP_PERM", ARCH_GET_XCOMP_PERM),
		k("ARCH_REQ_XCOMP_PERM", ARCH_REQ_XCOMP_PERM), k("ARCH_MAP_VDSO_X32", ARCH_MAP_VDSO_X32),
		k("ARCH_MAP_VDSO_32", ARCH_MAP_VDSO_32), k("ARCH_MAP_VDSO_64", ARCH_MAP_VDSO_64),
		k("FUTEX_WAIT", FUTEX_WAIT), k("FUTEX_WAKE", FUTEX_WAKE), k("FUTEX_FD", FUTEX_FD),
		k("FUTEX_REQUEUE", FUTEX_REQUEUE), k("FUTEX_CMP_REQUEUE", FUTEX_CMP_REQUEUE),
		k("FUTEX_WAKE_OP", FUTEX_WAKE_OP), k("FUTEX_LOCK_PI", FUTEX_LOCK_PI), k("FUTEX_UNLOCK_PI", FUTEX_UNLOCK_PI),
		k("FUTEX_TRYLOCK_PI", FUTEX_TRYLOCK_PI), k("FUTEX_WAIT_BITSET", FUTEX_WAIT_BITSET),
		k("FUTEX_WAKE_BITSET", FUTEX_WAKE_BITSET), k("FUTEX_WAIT_REQUEUE_PI", FUTEX_WAIT_REQUEUE_PI),
		k("FUTEX_CMP_REQUEUE_PI", FUTEX_CMP_REQUEUE_PI), k("FUTEX_LOCK_PI2", FUTEX_LOCK_PI2),
		k("FUTEX_PRIVATE_FLAG", FUTEX_PRIVATE_FLAG), k("FUTEX_CLOCK_REALTIME", FUTEX_CLOCK_REALTIME),
		k("FUTEX_CMD_MASK", FUTEX_CMD_MASK), k("FUTEX_WAIT_PRIVATE", FUTEX_WAIT_PRIVATE),
		k("FUTEX_WAKE_PRIVATE", FUTEX_WAKE_PRIVATE), k("FUTEX_WAIT_BITSET_PRIVATE", FUTEX_WAIT_BITSET_PRIVATE),
		k("FUTEX_WAKE_BITSET_PRIVATE", FUTEX_WAKE_BITSET_PRIVATE), k("FUTEX_WAITERS", FUTEX_WAITERS),
		k("FUTEX_OWNER_DIED", FUTEX_OWNER_DIED), k("FUTEX_TID_MASK", FUTEX_TID_MASK),
		k("FUTEX_BITSET_MATCH_ANY", FUTEX_BITSET_MATCH_ANY), k("FUTEX_OP_SET", FUTEX_OP_SET),
		k("FUTEX_OP_ADD", FUTEX_OP_ADD), k("FUTEX_OP_OR", FUTEX_OP_OR), k("FUTEX_OP_ANDN", FUTEX_OP_ANDN),
		k("FUTEX_OP_XOR", FUTEX_OP_XOR), k("FUTEX_OP_OPARG_SHIFT", FUTEX_OP_OPARG_SHIFT),
		k("FUTEX_OP_CMP_EQ", FUTEX_OP_CMP_EQ), k("FUTEX_OP_CMP_NE", FUTEX_OP_CMP_NE),
		k("FUTEX_OP_CMP_LT", FUTEX_OP_CMP_LT), k("FUTEX_OP_CMP_LE", FUTEX_OP_CMP_LE),
		k("FUTEX_OP_CMP_GT", FUTEX_OP_CMP_GT), k("FUTEX_OP_CMP_GE", FUTEX_OP_CMP_GE),
		// time
		k("CLOCK_REALTIME", CLOCK_REALTIME), k("CLOCK_MONOTONIC", CLOCK_MONOTONIC),
		k("CLOCK_PROCESS_CPUTIME_ID", CLOCK_PROCESS_CPUTIME_ID), k("CLOCK_THREAD_CPUTIME_ID", CLOCK_THREAD_CPUTIME_ID),
		k("CLOCK_MONOTONIC_RAW", CLOCK_MONOTONIC_RAW), k("CLOCK_REALTIME_COARSE", CLOCK_REALTIME_COARSE),
		k("CLOCK_MONOTONIC_COARSE", CLOCK_MONOTONIC_COARSE), k("CLOCK_BOOTTIME", CLOCK_BOOTTIME),
		k("CLOCK_REALTIME_ALARM", CLOCK_REALTIME_ALARM), k("CLOCK_BOOTTIME_ALARM", CLOCK_BOOTTIME_ALARM),
		k("CLOCK_TAI", CLOCK_TAI), k("TIMER_ABSTIME", TIMER_ABSTIME), k("ITIMER_REAL", ITIMER_REAL),
		k("ITIMER_VIRTUAL", ITIMER_VIRTUAL), k("ITIMER_PROF", ITIMER_PROF),
		// signals
		k("SIGHUP", SIGHUP), k("SIGINT", SIGINT), k("SIGQUIT", SIGQUIT), k("SIGILL", SIGILL), k("SIGTRAP", SIGTRAP),
		k("SIGABRT", SIGABRT), k("SIGIOT", SIGIOT), k("SIGBUS", SIGBUS), k("SIGFPE", SIGFPE), k("SIGKILL", SIGKILL),
		k("SIGUSR1", SIGUSR1), k("SIGSEGV", SIGSEGV), k("SIGUSR2", SIGUSR2), k("SIGPIPE", SIGPIPE),
		k("SIGALRM", SIGALRM), k("SIGTERM", SIGTERM), k("SIGSTKFLT", SIGSTKFLT), k("SIGCHLD", SIGCHLD),
		k("SIGCONT", SIGCONT), k("SIGSTOP", SIGSTOP), k("SIGTSTP", SIGTSTP), k("SIGTTIN", SIGTTIN),
		k("SIGTTOU", SIGTTOU), k("SIGURG", SIGURG), k("SIGXCPU", SIGXCPU), k("SIGXFSZ", SIGXFSZ),
		k("SIGVTALRM", SIGVTALRM), k("SIGPROF", SIGPROF), k("SIGWINCH", SIGWINCH), k("SIGIO", SIGIO),
		k("SIGPOLL", SIGPOLL), k("SIGPWR", SIGPWR), k("SIGSYS", SIGSYS), k("__SIGRTMIN", SIGRTMIN),
		k("__SIGRTMAX", SIGRTMAX), k("_NSIG - 1", SignalMaximum),
		k("SIG_DFL", SIG_DFL), k("SIG_IGN", SIG_IGN), k("SIG_BLOCK", SIG_BLOCK), k("SIG_UNBLOCK", SIG_UNBLOCK),
		k("SIG_SETMASK", SIG_SETMASK),
		k("SA_NOCLDSTOP", SA_NOCLDSTOP), k("SA_NOCLDWAIT", SA_NOCLDWAIT), k("SA_SIGINFO", SA_SIGINFO),
		k("SA_ONSTACK", SA_ONSTACK), k("SA_RESTART", SA_RESTART), k("SA_NODEFER", SA_NODEFER),
		k("SA_RESETHAND", SA_RESETHAND), k("SA_NOMASK", SA_NOMASK), k("SA_ONESHOT", SA_ONESHOT),
		k("SS_ONSTACK", SS_ONSTACK), k("SS_DISABLE", SS_DISABLE),
		k("SI_USER", SI_USER), k("SI_KERNEL", SI_KERNEL), k("SI_QUEUE", SI_QUEUE), k("SI_TIMER", SI_TIMER),
		k("SI_MESGQ", SI_MESGQ), k("SI_ASYNCIO", SI_ASYNCIO), k("SI_SIGIO", SI_SIGIO), k("SI_TKILL", SI_TKILL),
		k("SI_ASYNCNL", SI_ASYNCNL),
		k("ILL_ILLOPC", ILL_ILLOPC), k("ILL_ILLOPN", ILL_ILLOPN), k("ILL_ILLADR", ILL_ILLADR),
		k("ILL_ILLTRP", ILL_ILLTRP), k("ILL_PRVOPC", ILL_PRVOPC), k("ILL_PRVREG", ILL_PRVREG),
		k("ILL_COPROC", ILL_COPROC), k("ILL_BADSTK", ILL_BADSTK), k("ILL_BADIADDR", ILL_BADIADDR),
		k("FPE_INTDIV", FPE_INTDIV), k("FPE_INTOVF", FPE_INTOVF), k("FPE_FLTDIV", FPE_FLTDIV),
		k("FPE_FLTOVF", FPE_FLTOVF), k("FPE_FLTUND", FPE_FLTUND), k("FPE_FLTRES", FPE_FLTRES),
		k("FPE_FLTINV", FPE_FLTINV), k("FPE_FLTSUB", FPE_FLTSUB), k("FPE_FLTUNK", FPE_FLTUNK),
		k("FPE_CONDTRAP", FPE_CONDTRAP),
		k("SEGV_MAPERR", SEGV_MAPERR), k("SEGV_ACCERR", SEGV_ACCERR), k("SEGV_BNDERR", SEGV_BNDERR),
		k("SEGV_PKUERR", SEGV_PKUERR),
		k("BUS_ADRALN", BUS_ADRALN), k("BUS_ADRERR", BUS_ADRERR), k("BUS_OBJERR", BUS_OBJERR),
		k("BUS_MCEERR_AR", BUS_MCEERR_AR), k("BUS_MCEERR_AO", BUS_MCEERR_AO),
		k("TRAP_BRKPT", TRAP_BRKPT), k("TRAP_TRACE", TRAP_TRACE), k("TRAP_BRANCH", TRAP_BRANCH),
		k("TRAP_HWBKPT", TRAP_HWBKPT), k("TRAP_UNK", TRAP_UNK),
		k("CLD_EXITED", CLD_EXITED), k("CLD_KILLED", CLD_KILLED), k("CLD_DUMPED", CLD_DUMPED),
		k("CLD_TRAPPED", CLD_TRAPPED), k("CLD_STOPPED", CLD_STOPPED), k("CLD_CONTINUED", CLD_CONTINUED),
		k("POLL_IN", POLL_IN), k("POLL_OUT", POLL_OUT), k("POLL_MSG", POLL_MSG), k("POLL_ERR", POLL_ERR),
		k("POLL_PRI", POLL_PRI), k("POLL_HUP", POLL_HUP),

		k("SIGEV_SIGNAL", SIGEV_SIGNAL), k("SIGEV_NONE", SIGEV_NONE), k("SIGEV_THREAD", SIGEV_THREAD),
		k("SIGEV_THREAD_ID", SIGEV_THREAD_ID),
		// auxv, ELF, tty, uts
		k("AT_NULL", AT_NULL), k("AT_IGNORE", AT_IGNORE), k("AT_EXECFD", AT_EXECFD), k("AT_PHDR", AT_PHDR),
		k("AT_PHENT", AT_PHENT), k("AT_PHNUM", AT_PHNUM), k("AT_PAGESZ", AT_PAGESZ), k("AT_BASE", AT_BASE),
		k("AT_FLAGS", AT_FLAGS), k("AT_ENTRY", AT_ENTRY), k("AT_NOTELF", AT_NOTELF), k("AT_UID", AT_UID),
		k("AT_EUID", AT_EUID), k("AT_GID", AT_GID), k("AT_EGID", AT_EGID), k("AT_PLATFORM", AT_PLATFORM),
		k("AT_HWCAP", AT_HWCAP), k("AT_CLKTCK", AT_CLKTCK), k("AT_SECURE", AT_SECURE),
		k("AT_BASE_PLATFORM", AT_BASE_PLATFORM), k("AT_RANDOM", AT_RANDOM), k("AT_HWCAP2", AT_HWCAP2),
		k("AT_EXECFN", AT_EXECFN), k("AT_SYSINFO_EHDR", AT_SYSINFO_EHDR), k("AT_MINSIGSTKSZ", AT_MINSIGSTKSZ),
		k("AUDIT_ARCH_X86_64", AUDIT_ARCH_X86_64),
		k("TCGETS", TCGETS), k("TCSETS", TCSETS), k("TCSETSW", TCSETSW), k("TCSETSF", TCSETSF),
		k("TCGETA", TCGETA), k("TCSETA", TCSETA), k("TCSETAW", TCSETAW), k("TCSETAF", TCSETAF),
		k("TCSBRK", TCSBRK), k("TCXONC", TCXONC), k("TCFLSH", TCFLSH), k("TIOCEXCL", TIOCEXCL),
		k("TIOCNXCL", TIOCNXCL), k("TIOCSCTTY", TIOCSCTTY), k("TIOCGPGRP", TIOCGPGRP), k("TIOCSPGRP", TIOCSPGRP),
		k("TIOCOUTQ", TIOCOUTQ), k("TIOCSTI", TIOCSTI), k("TIOCGWINSZ", TIOCGWINSZ), k("TIOCSWINSZ", TIOCSWINSZ),
		k("TIOCMGET", TIOCMGET), k("TIOCMBIS", TIOCMBIS), k("TIOCMBIC", TIOCMBIC), k("TIOCMSET", TIOCMSET),
		k("FIONREAD", FIONREAD), k("TIOCINQ", TIOCINQ), k("TIOCLINUX", TIOCLINUX), k("TIOCCONS", TIOCCONS),
		k("TIOCPKT", TIOCPKT), k("FIONBIO", FIONBIO), k("TIOCNOTTY", TIOCNOTTY), k("TIOCSETD", TIOCSETD),
		k("TIOCGETD", TIOCGETD), k("TIOCSBRK", TIOCSBRK), k("TIOCCBRK", TIOCCBRK), k("TIOCGSID", TIOCGSID),
		k("TIOCGPTN", TIOCGPTN), k("TIOCSPTLCK", TIOCSPTLCK), k("TIOCGDEV", TIOCGDEV), k("TIOCSIG", TIOCSIG),
		k("TIOCVHANGUP", TIOCVHANGUP), k("TIOCGPKT", TIOCGPKT), k("TIOCGPTLCK", TIOCGPTLCK),
		k("TIOCGEXCL", TIOCGEXCL), k("TIOCGPTPEER", TIOCGPTPEER), k("FIONCLEX", FIONCLEX), k("FIOCLEX", FIOCLEX),
		k("FIOASYNC", FIOASYNC), k("FIOQSIZE", FIOQSIZE), k("TIOCPKT_DATA", TIOCPKT_DATA),
		k("sizeof(((struct utsname *)0)->sysname)", UTSLen),
	}
	compareC(t, libcHeaders, checks)
}

func TestConstantsMatchKernelHeaders(t *testing.T) {
	checks := []cCheck{
		// glibc hides the kernel's O_LARGEFILE and SA_RESTORER; check them
		// against the uapi headers, along with the termios bits whose glibc
		// values belong to glibc's own struct termios.
		k("O_LARGEFILE", O_LARGEFILE), k("O_CLOEXEC", O_CLOEXEC), k("SA_RESTORER", SA_RESTORER),
		k("SA_UNSUPPORTED", SA_UNSUPPORTED), k("SA_EXPOSE_TAGBITS", SA_EXPOSE_TAGBITS),
		k("SS_AUTODISARM", SS_AUTODISARM), k("MINSIGSTKSZ", MINSIGSTKSZ), k("SIGSTKSZ", SIGSTKSZ),
		k("SIGRTMIN", SIGRTMIN),
		k("F_GETOWNER_UIDS", F_GETOWNER_UIDS), k("F_CANCELLK", F_CANCELLK), k("EPOLLNVAL", EPOLLNVAL),
		k("PROT_SEM", PROT_SEM), k("SYS_SECCOMP", SIGSYS_SECCOMP), k("SYS_USER_DISPATCH", SIGSYS_USER_DISPATCH),
		k("SI_DETHREAD", SI_DETHREAD), k("UC_FP_XSTATE", UC_FP_XSTATE), k("UC_SIGCONTEXT_SS", UC_SIGCONTEXT_SS),
		k("UC_STRICT_RESTORE_SS", UC_STRICT_RESTORE_SS), k("RLIM_NLIMITS", RLIM_NLIMITS),
		k("NCCS", NCCS), k("VINTR", VINTR), k("VQUIT", VQUIT), k("VERASE", VERASE), k("VKILL", VKILL),
		k("VEOF", VEOF), k("VTIME", VTIME), k("VMIN", VMIN), k("VSWTC", VSWTC), k("VSTART", VSTART),
		k("VSTOP", VSTOP), k("VSUSP", VSUSP), k("VEOL", VEOL), k("VREPRINT", VREPRINT), k("VDISCARD", VDISCARD),
		k("VWERASE", VWERASE), k("VLNEXT", VLNEXT), k("VEOL2", VEOL2),
		k("IGNBRK", IGNBRK), k("BRKINT", BRKINT), k("IGNPAR", IGNPAR), k("PARMRK", PARMRK), k("INPCK", INPCK),
		k("ISTRIP", ISTRIP), k("INLCR", INLCR), k("IGNCR", IGNCR), k("ICRNL", ICRNL), k("IUCLC", IUCLC),
		k("IXON", IXON), k("IXANY", IXANY), k("IXOFF", IXOFF), k("IMAXBEL", IMAXBEL), k("IUTF8", IUTF8),
		k("OPOST", OPOST), k("OLCUC", OLCUC), k("ONLCR", ONLCR), k("OCRNL", OCRNL), k("ONOCR", ONOCR),
		k("ONLRET", ONLRET), k("OFILL", OFILL), k("OFDEL", OFDEL), k("TABDLY", TABDLY), k("XTABS", XTABS),
		k("CBAUD", CBAUD), k("B38400", B38400), k("CSIZE", CSIZE), k("CS5", CS5), k("CS6", CS6), k("CS7", CS7),
		k("CS8", CS8), k("CSTOPB", CSTOPB), k("CREAD", CREAD), k("PARENB", PARENB), k("PARODD", PARODD),
		k("HUPCL", HUPCL), k("CLOCAL", CLOCAL), k("CRTSCTS", CRTSCTS),
		k("ISIG", ISIG), k("ICANON", ICANON), k("XCASE", XCASE), k("ECHO", ECHO), k("ECHOE", ECHOE),
		k("ECHOK", ECHOK), k("ECHONL", ECHONL), k("NOFLSH", NOFLSH), k("TOSTOP", TOSTOP), k("ECHOCTL", ECHOCTL),
		k("ECHOPRT", ECHOPRT), k("ECHOKE", ECHOKE), k("FLUSHO", FLUSHO), k("PENDIN", PENDIN), k("IEXTEN", IEXTEN),
		k("EXTPROC", EXTPROC), k("TCIFLUSH", TCIFLUSH), k("TCOFLUSH", TCOFLUSH), k("TCIOFLUSH", TCIOFLUSH),
		k("TCOOFF", TCOOFF), k("TCOON", TCOON), k("TCIOFF", TCIOFF), k("TCION", TCION),
		k("MAP_UNINITIALIZED", MAP_UNINITIALIZED), k("MADV_DONTNEED_LOCKED", MADV_DONTNEED_LOCKED),
		k("MADV_COLLAPSE", MADV_COLLAPSE), k("MADV_SOFT_OFFLINE", MADV_SOFT_OFFLINE),
		k("AT_SYSINFO_EHDR", AT_SYSINFO_EHDR), k("AT_MINSIGSTKSZ", AT_MINSIGSTKSZ),
		k("FUTEX_WAITERS", FUTEX_WAITERS),
	}
	compareC(t, kernelHeaders, checks)
}

func TestStructLayoutsMatchLibc(t *testing.T) {
	var (
		ts  Timespec
		tv  Timeval
		its Itimerspec
		itv Itimerval
		rl  Rlimit
		st  Stat
		sx  Statx
		sxt StatxTimestamp
		uts Utsname
		si  Sysinfo
		tms Tms
		ru  Rusage
		de  Dirent64
		pfd Pollfd
		ev  EpollEvent
		iov Iovec
		ws  Winsize
		rlh RobustListHead
		ca  CloneArgs
		oh  OpenHow
	)
	checks := []cCheck{
		size("struct timespec", unsafe.Sizeof(ts)), off("struct timespec", "tv_nsec", unsafe.Offsetof(ts.Nsec)),
		size("struct timeval", unsafe.Sizeof(tv)), off("struct timeval", "tv_usec", unsafe.Offsetof(tv.Usec)),
		size("struct itimerspec", unsafe.Sizeof(its)), off("struct itimerspec", "it_value", unsafe.Offsetof(its.Value)),
		size("struct itimerval", unsafe.Sizeof(itv)), off("struct itimerval", "it_value", unsafe.Offsetof(itv.Value)),
		size("struct rlimit", unsafe.Sizeof(rl)), off("struct rlimit", "rlim_max", unsafe.Offsetof(rl.Max)),
		size("struct stat", unsafe.Sizeof(st)),
		off("struct stat", "st_ino", unsafe.Offsetof(st.Ino)), off("struct stat", "st_nlink", unsafe.Offsetof(st.Nlink)),
		off("struct stat", "st_mode", unsafe.Offsetof(st.Mode)), off("struct stat", "st_uid", unsafe.Offsetof(st.UID)),
		off("struct stat", "st_gid", unsafe.Offsetof(st.GID)), off("struct stat", "st_rdev", unsafe.Offsetof(st.Rdev)),
		off("struct stat", "st_size", unsafe.Offsetof(st.Size)), off("struct stat", "st_blksize", unsafe.Offsetof(st.Blksize)),
		off("struct stat", "st_blocks", unsafe.Offsetof(st.Blocks)), off("struct stat", "st_atim", unsafe.Offsetof(st.ATime)),
		off("struct stat", "st_mtim", unsafe.Offsetof(st.MTime)), off("struct stat", "st_ctim", unsafe.Offsetof(st.CTime)),
		size("struct statx_timestamp", unsafe.Sizeof(sxt)),
		off("struct statx_timestamp", "tv_nsec", unsafe.Offsetof(sxt.Nsec)),
		size("struct statx", unsafe.Sizeof(sx)),
		off("struct statx", "stx_blksize", unsafe.Offsetof(sx.Blksize)),
		off("struct statx", "stx_attributes", unsafe.Offsetof(sx.Attributes)),
		off("struct statx", "stx_nlink", unsafe.Offsetof(sx.Nlink)), off("struct statx", "stx_uid", unsafe.Offsetof(sx.UID)),
		off("struct statx", "stx_gid", unsafe.Offsetof(sx.GID)), off("struct statx", "stx_mode", unsafe.Offsetof(sx.Mode)),
		off("struct statx", "stx_ino", unsafe.Offsetof(sx.Ino)), off("struct statx", "stx_size", unsafe.Offsetof(sx.Size)),
		off("struct statx", "stx_blocks", unsafe.Offsetof(sx.Blocks)),
		off("struct statx", "stx_attributes_mask", unsafe.Offsetof(sx.AttributesMask)),
		off("struct statx", "stx_atime", unsafe.Offsetof(sx.ATime)), off("struct statx", "stx_btime", unsafe.Offsetof(sx.BTime)),
		off("struct statx", "stx_ctime", unsafe.Offsetof(sx.CTime)), off("struct statx", "stx_mtime", unsafe.Offsetof(sx.MTime)),
		off("struct statx", "stx_rdev_major", unsafe.Offsetof(sx.RdevMajor)),
		off("struct statx", "stx_rdev_minor", unsafe.Offsetof(sx.RdevMinor)),
		off("struct statx", "stx_dev_major", unsafe.Offsetof(sx.DevMajor)),
		off("struct statx", "stx_dev_minor", unsafe.Offsetof(sx.DevMinor)),
		off("struct statx", "stx_mnt_id", unsafe.Offsetof(sx.MntID)),
		off("struct statx", "stx_dio_mem_align", unsafe.Offsetof(sx.DioMemAlign)),
		off("struct statx", "stx_dio_offset_align", unsafe.Offsetof(sx.DioOffsetAlign)),
		size("struct utsname", unsafe.Sizeof(uts)),
		off("struct utsname", "nodename", unsafe.Offsetof(uts.Nodename)),
		off("struct utsname", "release", unsafe.Offsetof(uts.Release)),
		off("struct utsname", "version", unsafe.Offsetof(uts.Version)),
		off("struct utsname", "machine", unsafe.Offsetof(uts.Machine)),
		off("struct utsname", "domainname", unsafe.Offsetof(uts.Domainname)),
		size("struct sysinfo", unsafe.Sizeof(si)),
		off("struct sysinfo", "loads", unsafe.Offsetof(si.Loads)), off("struct sysinfo", "totalram", unsafe.Offsetof(si.TotalRAM)),
		off("struct sysinfo", "freeram", unsafe.Offsetof(si.FreeRAM)), off("struct sysinfo", "sharedram", unsafe.Offsetof(si.SharedRAM)),
		off("struct sysinfo", "bufferram", unsafe.Offsetof(si.BufferRAM)),
		off("struct sysinfo", "totalswap", unsafe.Offsetof(si.TotalSwap)),
		off("struct sysinfo", "freeswap", unsafe.Offsetof(si.FreeSwap)), off("struct sysinfo", "procs", unsafe.Offsetof(si.Procs)),
		off("struct sysinfo", "totalhigh", unsafe.Offsetof(si.TotalHigh)),
		off("struct sysinfo", "freehigh", unsafe.Offsetof(si.FreeHigh)),
		off("struct sysinfo", "mem_unit", unsafe.Offsetof(si.MemUnit)),
		size("struct tms", unsafe.Sizeof(tms)), off("struct tms", "tms_stime", unsafe.Offsetof(tms.STime)),
		off("struct tms", "tms_cutime", unsafe.Offsetof(tms.CUTime)), off("struct tms", "tms_cstime", unsafe.Offsetof(tms.CSTime)),
		size("struct rusage", unsafe.Sizeof(ru)),
		off("struct rusage", "ru_stime", unsafe.Offsetof(ru.STime)), off("struct rusage", "ru_maxrss", unsafe.Offsetof(ru.MaxRSS)),
		off("struct rusage", "ru_ixrss", unsafe.Offsetof(ru.IXRSS)), off("struct rusage", "ru_idrss", unsafe.Offsetof(ru.IDRSS)),
		off("struct rusage", "ru_isrss", unsafe.Offsetof(ru.ISRSS)), off("struct rusage", "ru_minflt", unsafe.Offsetof(ru.MinFlt)),
		off("struct rusage", "ru_majflt", unsafe.Offsetof(ru.MajFlt)), off("struct rusage", "ru_nswap", unsafe.Offsetof(ru.NSwap)),
		off("struct rusage", "ru_inblock", unsafe.Offsetof(ru.InBlock)), off("struct rusage", "ru_oublock", unsafe.Offsetof(ru.OuBlock)),
		off("struct rusage", "ru_msgsnd", unsafe.Offsetof(ru.MsgSnd)), off("struct rusage", "ru_msgrcv", unsafe.Offsetof(ru.MsgRcv)),
		off("struct rusage", "ru_nsignals", unsafe.Offsetof(ru.NSignals)), off("struct rusage", "ru_nvcsw", unsafe.Offsetof(ru.NVCSw)),
		off("struct rusage", "ru_nivcsw", unsafe.Offsetof(ru.NIvCSw)),
		off("struct dirent64", "d_ino", unsafe.Offsetof(de.Ino)), off("struct dirent64", "d_off", unsafe.Offsetof(de.Off)),
		off("struct dirent64", "d_reclen", unsafe.Offsetof(de.Reclen)), off("struct dirent64", "d_type", unsafe.Offsetof(de.Type)),
		off("struct dirent64", "d_name", SizeOfDirent64Header),
		size("struct pollfd", unsafe.Sizeof(pfd)), off("struct pollfd", "events", unsafe.Offsetof(pfd.Events)),
		off("struct pollfd", "revents", unsafe.Offsetof(pfd.Revents)),
		size("struct epoll_event", unsafe.Sizeof(ev)), off("struct epoll_event", "data", unsafe.Offsetof(ev.Data)),
		size("struct iovec", unsafe.Sizeof(iov)), off("struct iovec", "iov_len", unsafe.Offsetof(iov.Len)),
		size("struct winsize", unsafe.Sizeof(ws)), off("struct winsize", "ws_col", unsafe.Offsetof(ws.Col)),
		off("struct winsize", "ws_xpixel", unsafe.Offsetof(ws.Xpixel)), off("struct winsize", "ws_ypixel", unsafe.Offsetof(ws.Ypixel)),
		size("struct robust_list_head", unsafe.Sizeof(rlh)),
		off("struct robust_list_head", "futex_offset", unsafe.Offsetof(rlh.FutexOffset)),
		off("struct robust_list_head", "list_op_pending", unsafe.Offsetof(rlh.ListOpPending)),
		size("struct clone_args", unsafe.Sizeof(ca)),
		off("struct clone_args", "pidfd", unsafe.Offsetof(ca.Pidfd)), off("struct clone_args", "child_tid", unsafe.Offsetof(ca.ChildTID)),
		off("struct clone_args", "parent_tid", unsafe.Offsetof(ca.ParentTID)),
		off("struct clone_args", "exit_signal", unsafe.Offsetof(ca.ExitSignal)),
		off("struct clone_args", "stack", unsafe.Offsetof(ca.Stack)), off("struct clone_args", "stack_size", unsafe.Offsetof(ca.StackSize)),
		off("struct clone_args", "tls", unsafe.Offsetof(ca.TLS)), off("struct clone_args", "set_tid", unsafe.Offsetof(ca.SetTID)),
		off("struct clone_args", "set_tid_size", unsafe.Offsetof(ca.SetTIDSize)),
		off("struct clone_args", "cgroup", unsafe.Offsetof(ca.Cgroup)),
		size("struct open_how", unsafe.Sizeof(oh)), off("struct open_how", "mode", unsafe.Offsetof(oh.Mode)),
		off("struct open_how", "resolve", unsafe.Offsetof(oh.Resolve)),
		size("Elf64_auxv_t", SizeOfAuxv),
		// ELF headers come from debug/elf, whose Header64 and Prog64 have
		// the C layout; check that this stays true.
		size("Elf64_Ehdr", unsafe.Sizeof(elf.Header64{})), off("Elf64_Ehdr", "e_entry", unsafe.Offsetof(elf.Header64{}.Entry)),
		off("Elf64_Ehdr", "e_phoff", unsafe.Offsetof(elf.Header64{}.Phoff)),
		off("Elf64_Ehdr", "e_phnum", unsafe.Offsetof(elf.Header64{}.Phnum)),
		size("Elf64_Phdr", unsafe.Sizeof(elf.Prog64{})), off("Elf64_Phdr", "p_flags", unsafe.Offsetof(elf.Prog64{}.Flags)),
		off("Elf64_Phdr", "p_offset", unsafe.Offsetof(elf.Prog64{}.Off)),
		off("Elf64_Phdr", "p_vaddr", unsafe.Offsetof(elf.Prog64{}.Vaddr)),
		off("Elf64_Phdr", "p_memsz", unsafe.Offsetof(elf.Prog64{}.Memsz)),
		off("Elf64_Phdr", "p_align", unsafe.Offsetof(elf.Prog64{}.Align)),
	}
	compareC(t, libcHeaders, checks)
}

func TestStructLayoutsMatchKernelHeaders(t *testing.T) {
	var (
		sa  Sigaction
		ss  SignalStack
		si  SignalInfo
		sc  SigContext
		uc  UContext64
		tio Termios
	)
	const union = 16 // offset of SignalInfo.Fields
	checks := []cCheck{
		size("struct sigaction", unsafe.Sizeof(sa)),
		off("struct sigaction", "sa_flags", unsafe.Offsetof(sa.Flags)),
		off("struct sigaction", "sa_restorer", unsafe.Offsetof(sa.Restorer)),
		off("struct sigaction", "sa_mask", unsafe.Offsetof(sa.Mask)),
		size("stack_t", unsafe.Sizeof(ss)), off("stack_t", "ss_flags", unsafe.Offsetof(ss.Flags)),
		off("stack_t", "ss_size", unsafe.Offsetof(ss.Size)),
		size("siginfo_t", unsafe.Sizeof(si)), off("siginfo_t", "si_errno", unsafe.Offsetof(si.Errno)),
		off("siginfo_t", "si_code", unsafe.Offsetof(si.Code)), off("siginfo_t", "_sifields", unsafe.Offsetof(si.Fields)),
		off("siginfo_t", "si_pid", union+siPidOffset), off("siginfo_t", "si_uid", union+siUIDOffset),
		off("siginfo_t", "si_status", union+siStatusOffset), off("siginfo_t", "si_utime", union+siUTimeOffset),
		off("siginfo_t", "si_stime", union+siSTimeOffset), off("siginfo_t", "si_value", union+siValueOffset),
		off("siginfo_t", "si_tid", union+siTimerIDOffset), off("siginfo_t", "si_overrun", union+siOverrunOffset),
		off("siginfo_t", "si_addr", union+siAddrOffset), off("siginfo_t", "si_addr_lsb", union+siAddrLSBOffset),
		off("siginfo_t", "si_call_addr", union+siAddrOffset), off("siginfo_t", "si_syscall", union+siSyscallOffset),
		off("siginfo_t", "si_arch", union+siArchOffset), off("siginfo_t", "si_band", union+siBandOffset),
		off("siginfo_t", "si_fd", union+siFdOffset),
		size("struct sigcontext", unsafe.Sizeof(sc)),
		off("struct sigcontext", "rdi", unsafe.Offsetof(sc.Rdi)), off("struct sigcontext", "rsp", unsafe.Offsetof(sc.Rsp)),
		off("struct sigcontext", "rip", unsafe.Offsetof(sc.Rip)), off("struct sigcontext", "eflags", unsafe.Offsetof(sc.Eflags)),
		off("struct sigcontext", "cs", unsafe.Offsetof(sc.Cs)), off("struct sigcontext", "gs", unsafe.Offsetof(sc.Gs)),
		off("struct sigcontext", "fs", unsafe.Offsetof(sc.Fs)), off("struct sigcontext", "ss", unsafe.Offsetof(sc.Ss)),
		off("struct sigcontext", "err", unsafe.Offsetof(sc.Err)), off("struct sigcontext", "trapno", unsafe.Offsetof(sc.Trapno)),
		off("struct sigcontext", "oldmask", unsafe.Offsetof(sc.Oldmask)), off("struct sigcontext", "cr2", unsafe.Offsetof(sc.Cr2)),
		off("struct sigcontext", "fpstate", unsafe.Offsetof(sc.Fpstate)),
		off("struct sigcontext", "reserved1", unsafe.Offsetof(sc.Reserved)),
		size("struct ucontext", unsafe.Sizeof(uc)), off("struct ucontext", "uc_link", unsafe.Offsetof(uc.Link)),
		off("struct ucontext", "uc_stack", unsafe.Offsetof(uc.Stack)),
		off("struct ucontext", "uc_mcontext", unsafe.Offsetof(uc.MContext)),
		off("struct ucontext", "uc_sigmask", unsafe.Offsetof(uc.Sigmask)),
		size("struct termios", unsafe.Sizeof(tio)), off("struct termios", "c_oflag", unsafe.Offsetof(tio.OutputFlags)),
		off("struct termios", "c_cflag", unsafe.Offsetof(tio.ControlFlags)),
		off("struct termios", "c_lflag", unsafe.Offsetof(tio.LocalFlags)),
		off("struct termios", "c_line", unsafe.Offsetof(tio.LineDiscipline)),
		off("struct termios", "c_cc", unsafe.Offsetof(tio.ControlCharacters)),
		size("struct stat", SizeOfStat), off("struct stat", "st_atime_nsec", unsafe.Offsetof(Stat{}.ATime)+8),
		off("struct stat", "__unused", unsafe.Offsetof(Stat{}.CTime)+SizeOfTimespec),
	}
	compareC(t, kernelHeaders, checks)
}

// TestErrnoNamesMatchLibc compares ErrnoName with glibc's strerrorname_np
// for every errno number up to MaxErrno, and the constants with unix's.
func TestErrnoNamesMatchLibc(t *testing.T) {
	body := fmt.Sprintf(`for (int e = 1; e <= %d; e++) { const char *n = strerrorname_np(e); printf("%%s\n", n ? n : "-"); }`, MaxErrno)
	lines := runC(t, []string{"string.h"}, body)
	if len(lines) != MaxErrno {
		t.Fatalf("C program printed %d lines, want %d", len(lines), MaxErrno)
	}
	for i, cName := range lines {
		e := unix.Errno(i + 1)
		if cName == "-" {
			cName = ""
		}
		if got := ErrnoName(e); got != cName {
			t.Errorf("ErrnoName(%d) = %q, glibc says %q", i+1, got, cName)
		}
	}
}
