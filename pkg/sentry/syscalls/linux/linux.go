// Package linux owns the Linux syscall surface of the Sentry: one handler
// per syscall, grouped by family (sys_thread.go, sys_mm.go, sys_signal.go,
// sys_time.go, sys_file.go …), and Table, which installs them into a
// kernel.SyscallTable. Handlers decode arguments, copy to and from the
// application through the task, and call the kernel, mm and VFS; they hold
// no state of their own.
package linux

import (
	"sync"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

var (
	tableOnce sync.Once
	table     *kernel.SyscallTable
)

// Table returns the amd64 syscall table with every implemented syscall.
// It is built once and shared by all kernels.
func Table() *kernel.SyscallTable {
	tableOnce.Do(func() {
		table = kernel.NewSyscallTable()
		for nr, fn := range handlers() {
			table.Register(nr, fn)
		}
	})
	return table
}

// enosys is for syscalls that Linux builds may leave out, so programs
// probe for them (rseq): ENOSYS without the "unimplemented" log line.
func enosys(*kernel.Task, arch.SyscallArguments) (uintptr, error) { return 0, unix.ENOSYS }

func handlers() map[uintptr]kernel.SyscallFn {
	return map[uintptr]kernel.SyscallFn{
		// Processes and threads.
		linux.SYS_EXIT:            Exit,
		linux.SYS_EXIT_GROUP:      ExitGroup,
		linux.SYS_GETPID:          Getpid,
		linux.SYS_GETTID:          Gettid,
		linux.SYS_GETPPID:         Getppid,
		linux.SYS_GETUID:          Getuid,
		linux.SYS_GETEUID:         Geteuid,
		linux.SYS_GETGID:          Getgid,
		linux.SYS_GETEGID:         Getegid,
		linux.SYS_GETRESUID:       Getresuid,
		linux.SYS_GETRESGID:       Getresgid,
		linux.SYS_SET_TID_ADDRESS: SetTidAddress,
		linux.SYS_SET_ROBUST_LIST: SetRobustList,
		linux.SYS_RSEQ:            enosys,
		// glibc tries clone3 first and falls back to clone on ENOSYS.
		linux.SYS_CLONE3:     enosys,
		linux.SYS_ARCH_PRCTL: ArchPrctl,
		linux.SYS_PRLIMIT64:  Prlimit64,
		linux.SYS_GETRLIMIT:  Getrlimit,
		linux.SYS_SETRLIMIT:  Setrlimit,
		linux.SYS_CLONE:      Clone,
		linux.SYS_FORK:       Fork,
		linux.SYS_VFORK:      Vfork,
		linux.SYS_WAIT4:      Wait4,
		linux.SYS_WAITID:     Waitid,
		// Go's os/exec probes pidfd_open and falls back to waitid.
		linux.SYS_PIDFD_OPEN: enosys,
		linux.SYS_KILL:       Kill,
		linux.SYS_TGKILL:     Tgkill,
		linux.SYS_TKILL:      Tkill,
		linux.SYS_FUTEX:      Futex,
		linux.SYS_GETPGID:    Getpgid,
		linux.SYS_GETPGRP:    Getpgrp,
		linux.SYS_GETSID:     Getsid,
		linux.SYS_SETPGID:    Setpgid,
		linux.SYS_SETSID:     Setsid,
		linux.SYS_EXECVE:     Execve,
		// Memory.
		linux.SYS_BRK:        Brk,
		linux.SYS_MMAP:       Mmap,
		linux.SYS_MUNMAP:     Munmap,
		linux.SYS_MPROTECT:   Mprotect,
		linux.SYS_MREMAP:     Mremap,
		linux.SYS_MADVISE:    Madvise,
		linux.SYS_MSYNC:      Msync,
		linux.SYS_MINCORE:    Mincore,
		linux.SYS_MLOCK:      Mlock,
		linux.SYS_MUNLOCK:    Mlock,
		linux.SYS_MLOCK2:     Mlock,
		linux.SYS_MLOCKALL:   Mlockall,
		linux.SYS_MUNLOCKALL: Mlockall,
		// Signals.
		linux.SYS_RT_SIGACTION:   RtSigaction,
		linux.SYS_RT_SIGPROCMASK: RtSigprocmask,
		linux.SYS_RT_SIGRETURN:   RtSigreturn,
		linux.SYS_SIGALTSTACK:    Sigaltstack,
		linux.SYS_RT_SIGSUSPEND:  RtSigsuspend,
		linux.SYS_RT_SIGPENDING:  RtSigpending,
		linux.SYS_PAUSE:          Pause,
		// Time, identity, randomness.
		linux.SYS_UNAME:             Uname,
		linux.SYS_GETRANDOM:         Getrandom,
		linux.SYS_CLOCK_GETTIME:     ClockGettime,
		linux.SYS_CLOCK_GETRES:      ClockGetres,
		linux.SYS_GETTIMEOFDAY:      Gettimeofday,
		linux.SYS_TIME:              Time,
		linux.SYS_NANOSLEEP:         Nanosleep,
		linux.SYS_CLOCK_NANOSLEEP:   ClockNanosleep,
		linux.SYS_RESTART_SYSCALL:   RestartSyscall,
		linux.SYS_SCHED_YIELD:       SchedYield,
		linux.SYS_SYSINFO:           Sysinfo,
		linux.SYS_GETRUSAGE:         Getrusage,
		linux.SYS_TIMES:             Times,
		linux.SYS_PRCTL:             Prctl,
		linux.SYS_SCHED_GETAFFINITY: SchedGetaffinity,
		linux.SYS_GETCPU:            Getcpu,
		linux.SYS_EXECVEAT:          Execveat,
		// Files.
		linux.SYS_READ:            Read,
		linux.SYS_WRITE:           Write,
		linux.SYS_PREAD64:         Pread64,
		linux.SYS_PWRITE64:        Pwrite64,
		linux.SYS_READV:           Readv,
		linux.SYS_WRITEV:          Writev,
		linux.SYS_PREADV:          Preadv,
		linux.SYS_PWRITEV:         Pwritev,
		linux.SYS_LSEEK:           Lseek,
		linux.SYS_CLOSE:           Close,
		linux.SYS_DUP:             Dup,
		linux.SYS_DUP2:            Dup2,
		linux.SYS_DUP3:            Dup3,
		linux.SYS_FCNTL:           Fcntl,
		linux.SYS_IOCTL:           Ioctl,
		linux.SYS_PIPE:            Pipe,
		linux.SYS_PIPE2:           Pipe2,
		linux.SYS_FSYNC:           Fsync,
		linux.SYS_FDATASYNC:       Fsync,
		linux.SYS_FADVISE64:       Fadvise64,
		linux.SYS_FALLOCATE:       Fallocate,
		linux.SYS_OPEN:            Open,
		linux.SYS_OPENAT:          Openat,
		linux.SYS_CREAT:           Creat,
		linux.SYS_FSTAT:           Fstat,
		linux.SYS_STAT:            Stat,
		linux.SYS_LSTAT:           Lstat,
		linux.SYS_NEWFSTATAT:      Newfstatat,
		linux.SYS_STATX:           Statx,
		linux.SYS_ACCESS:          Access,
		linux.SYS_FACCESSAT:       Faccessat,
		linux.SYS_FACCESSAT2:      Faccessat2,
		linux.SYS_READLINK:        Readlink,
		linux.SYS_READLINKAT:      Readlinkat,
		linux.SYS_GETCWD:          Getcwd,
		linux.SYS_CHDIR:           Chdir,
		linux.SYS_FCHDIR:          Fchdir,
		linux.SYS_CHROOT:          Chroot,
		linux.SYS_UMASK:           Umask,
		linux.SYS_GETDENTS64:      Getdents64,
		linux.SYS_MKDIR:           Mkdir,
		linux.SYS_MKDIRAT:         Mkdirat,
		linux.SYS_MKNOD:           Mknod,
		linux.SYS_MKNODAT:         Mknodat,
		linux.SYS_UNLINK:          Unlink,
		linux.SYS_UNLINKAT:        Unlinkat,
		linux.SYS_RMDIR:           Rmdir,
		linux.SYS_RENAME:          Rename,
		linux.SYS_RENAMEAT:        Renameat,
		linux.SYS_RENAMEAT2:       Renameat2,
		linux.SYS_SYMLINK:         Symlink,
		linux.SYS_SYMLINKAT:       Symlinkat,
		linux.SYS_LINK:            Link,
		linux.SYS_LINKAT:          Linkat,
		linux.SYS_CHMOD:           Chmod,
		linux.SYS_FCHMOD:          Fchmod,
		linux.SYS_FCHMODAT:        Fchmodat,
		linux.SYS_CHOWN:           Chown,
		linux.SYS_LCHOWN:          Lchown,
		linux.SYS_FCHOWN:          Fchown,
		linux.SYS_FCHOWNAT:        Fchownat,
		linux.SYS_TRUNCATE:        Truncate,
		linux.SYS_FTRUNCATE:       Ftruncate,
		linux.SYS_UTIMENSAT:       Utimensat,
		linux.SYS_STATFS:          Statfs,
		linux.SYS_FSTATFS:         Fstatfs,
		linux.SYS_SENDFILE:        Sendfile,
		linux.SYS_COPY_FILE_RANGE: CopyFileRange,
		linux.SYS_EVENTFD:         Eventfd,
		linux.SYS_EVENTFD2:        Eventfd2,
		linux.SYS_MEMFD_CREATE:    MemfdCreate,
		linux.SYS_TIMERFD_CREATE:  TimerfdCreate,
		linux.SYS_TIMERFD_SETTIME: TimerfdSettime,
		linux.SYS_TIMERFD_GETTIME: TimerfdGettime,
		linux.SYS_FLOCK:           Flock,
		linux.SYS_CLOSE_RANGE:     CloseRange,
		linux.SYS_OPENAT2:         Openat2,
		linux.SYS_ALARM:           Alarm,
		linux.SYS_SETITIMER:       Setitimer,
		linux.SYS_GETITIMER:       Getitimer,
		linux.SYS_POLL:            Poll,
		linux.SYS_PPOLL:           Ppoll,
		linux.SYS_SELECT:          Select,
		linux.SYS_PSELECT6:        Pselect6,
		linux.SYS_EPOLL_CREATE:    EpollCreate,
		linux.SYS_EPOLL_CREATE1:   EpollCreate1,
		linux.SYS_EPOLL_CTL:       EpollCtl,
		linux.SYS_EPOLL_WAIT:      EpollWait,
		linux.SYS_EPOLL_PWAIT:     EpollPwait,
		linux.SYS_EPOLL_PWAIT2:    EpollPwait2,
		linux.SYS_GETXATTR:        Getxattr,
		linux.SYS_LGETXATTR:       Lgetxattr,
		linux.SYS_FGETXATTR:       Fgetxattr,
		linux.SYS_SETXATTR:        Setxattr,
		linux.SYS_LSETXATTR:       Lsetxattr,
		linux.SYS_FSETXATTR:       Fsetxattr,
		linux.SYS_LISTXATTR:       Listxattr,
		linux.SYS_LLISTXATTR:      Llistxattr,
		linux.SYS_FLISTXATTR:      Flistxattr,
		linux.SYS_REMOVEXATTR:     Removexattr,
		linux.SYS_LREMOVEXATTR:    Lremovexattr,
		linux.SYS_FREMOVEXATTR:    Fremovexattr,
		// Sockets (sys_socket.go).
		// Seccomp (sys_seccomp.go).
		// Mounts, splice, inotify (sys_mount.go, sys_splice.go, sys_inotify.go).
		// Identity, capabilities, POSIX timers, scheduling (sys_identity.go, sys_timer.go, sys_sched.go).
	}
}
