package fsgofer

import (
	"carapace.dev/carapace/pkg/seccomp"
	"golang.org/x/sys/unix"
)

// SeccompRules are the host syscalls serving 9P needs beyond the Go
// runtime's (confine.GoRuntimeRules): the file operations of file.go and
// the socket I/O of pkg/unet. Keep it in step with the code: a syscall
// added there without a rule here kills the Gofer (run with
// --seccomp-log-only to find what is missing).
func SeccompRules() *seccomp.RuleSet {
	s := seccomp.NewRuleSet()
	s.Allow(
		unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_CLOSE,
		unix.SYS_NEWFSTATAT, unix.SYS_FSTAT, unix.SYS_FSTATFS,
		unix.SYS_FCHMODAT, unix.SYS_FCHMOD, unix.SYS_FCHOWNAT, unix.SYS_FCHOWN,
		unix.SYS_UTIMENSAT, unix.SYS_FTRUNCATE, unix.SYS_PREAD64, unix.SYS_PWRITE64,
		unix.SYS_LSEEK, unix.SYS_GETDENTS64, unix.SYS_MKDIRAT, unix.SYS_SYMLINKAT,
		unix.SYS_MKNODAT, unix.SYS_LINKAT, unix.SYS_RENAMEAT, unix.SYS_UNLINKAT,
		unix.SYS_READLINKAT, unix.SYS_FSYNC, unix.SYS_FDATASYNC,
		unix.SYS_FGETXATTR, unix.SYS_FSETXATTR, unix.SYS_FLISTXATTR, unix.SYS_FREMOVEXATTR,
		unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SHUTDOWN,
		unix.SYS_FCHMODAT2, // chmod without following symlinks (Linux 6.6+)
	)
	for _, cmd := range []uint64{
		unix.F_DUPFD_CLOEXEC, unix.F_GETFD, unix.F_SETFD, unix.F_GETFL, unix.F_SETFL,
		unix.F_OFD_GETLK, unix.F_OFD_SETLK,
	} {
		s.Add(unix.SYS_FCNTL, seccomp.ActionAllow, seccomp.AnyValue(), seccomp.EqualTo(cmd))
	}
	s.Add(unix.SYS_GETSOCKOPT, seccomp.ActionAllow, seccomp.AnyValue(), seccomp.EqualTo(unix.SOL_SOCKET), seccomp.EqualTo(unix.SO_TYPE))
	return s
}
