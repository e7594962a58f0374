package strace

import (
	"strconv"
	"strings"
	"syscall"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// argKind says how one argument prints. The zero kind is hex.
type argKind uint8

const (
	kindHex argKind = iota
	kindDec
	kindFD          // a descriptor: a C int
	kindDirFD       // AT_FDCWD or a decimal descriptor
	kindOpenFlags   // O_* with the access mode first
	kindMode        // octal file mode
	kindProt        // PROT_*
	kindMmapFlags   // MAP_*
	kindCloneFlags  // CLONE_* with the exit signal in the low byte
	kindSignal      // a signal number
	kindSigHow      // SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK
	kindFcntlCmd    // F_*
	kindSockFamily  // AF_*
	kindSockType    // SOCK_* with SOCK_NONBLOCK/SOCK_CLOEXEC
	kindWaitOptions // WNOHANG, WUNTRACED, …
	kindAtFlags     // AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, …
)

// argKinds lists, per syscall, the arguments that are not plain hex.
var argKinds = map[uintptr][6]argKind{
	linux.SYS_READ:            {kindFD, kindHex, kindDec},
	linux.SYS_WRITE:           {kindFD, kindHex, kindDec},
	linux.SYS_CLOSE:           {kindFD},
	linux.SYS_OPEN:            {kindHex, kindOpenFlags, kindMode},
	linux.SYS_CREAT:           {kindHex, kindMode},
	linux.SYS_OPENAT:          {kindDirFD, kindHex, kindOpenFlags, kindMode},
	linux.SYS_MMAP:            {kindHex, kindDec, kindProt, kindMmapFlags, kindFD, kindHex},
	linux.SYS_MPROTECT:        {kindHex, kindDec, kindProt},
	linux.SYS_MUNMAP:          {kindHex, kindDec},
	linux.SYS_CLONE:           {kindCloneFlags},
	linux.SYS_KILL:            {kindDec, kindSignal},
	linux.SYS_TKILL:           {kindDec, kindSignal},
	linux.SYS_TGKILL:          {kindDec, kindDec, kindSignal},
	linux.SYS_RT_SIGACTION:    {kindSignal, kindHex, kindHex, kindDec},
	linux.SYS_RT_SIGPROCMASK:  {kindSigHow, kindHex, kindHex, kindDec},
	linux.SYS_FCNTL:           {kindFD, kindFcntlCmd},
	linux.SYS_SOCKET:          {kindSockFamily, kindSockType, kindDec},
	linux.SYS_SOCKETPAIR:      {kindSockFamily, kindSockType, kindDec},
	linux.SYS_WAIT4:           {kindDec, kindHex, kindWaitOptions},
	linux.SYS_DUP:             {kindFD},
	linux.SYS_DUP2:            {kindFD, kindFD},
	linux.SYS_DUP3:            {kindFD, kindFD, kindOpenFlags},
	linux.SYS_NEWFSTATAT:      {kindDirFD, kindHex, kindHex, kindAtFlags},
	linux.SYS_FSTAT:           {kindFD},
	linux.SYS_STATX:           {kindDirFD, kindHex, kindAtFlags},
	linux.SYS_FACCESSAT:       {kindDirFD},
	linux.SYS_FACCESSAT2:      {kindDirFD, kindHex, kindHex, kindAtFlags},
	linux.SYS_READLINKAT:      {kindDirFD},
	linux.SYS_MKDIRAT:         {kindDirFD, kindHex, kindMode},
	linux.SYS_MKDIR:           {kindHex, kindMode},
	linux.SYS_CHMOD:           {kindHex, kindMode},
	linux.SYS_UNLINKAT:        {kindDirFD, kindHex, kindAtFlags},
	linux.SYS_EXECVEAT:        {kindDirFD, kindHex, kindHex, kindHex, kindAtFlags},
	linux.SYS_LSEEK:           {kindFD, kindDec, kindDec},
	linux.SYS_PREAD64:         {kindFD, kindHex, kindDec, kindDec},
	linux.SYS_PWRITE64:        {kindFD, kindHex, kindDec, kindDec},
	linux.SYS_GETDENTS64:      {kindFD, kindHex, kindDec},
	linux.SYS_EXIT:            {kindDec},
	linux.SYS_EXIT_GROUP:      {kindDec},
	linux.SYS_PERSONALITY:     {kindHex},
	linux.SYS_RT_SIGQUEUEINFO: {kindDec, kindSignal},
}

// flag is one named bit pattern of a flag set.
type flag struct {
	mask uint64
	name string
}

var openFlags = []flag{
	// Multi-bit values first, so that their bits are consumed together.
	{0x410000, "O_TMPFILE"}, {0x101000, "O_SYNC"},
	{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"}, {unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"}, {unix.O_ASYNC, "O_ASYNC"}, {unix.O_DIRECT, "O_DIRECT"},
	{0x8000, "O_LARGEFILE"}, {unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"}, {unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_PATH, "O_PATH"},
}

var protFlags = []flag{
	{unix.PROT_READ, "PROT_READ"}, {unix.PROT_WRITE, "PROT_WRITE"}, {unix.PROT_EXEC, "PROT_EXEC"},
	{unix.PROT_GROWSDOWN, "PROT_GROWSDOWN"}, {unix.PROT_GROWSUP, "PROT_GROWSUP"},
}

var mmapFlags = []flag{
	{unix.MAP_FIXED, "MAP_FIXED"}, {unix.MAP_ANONYMOUS, "MAP_ANONYMOUS"},
	{unix.MAP_32BIT, "MAP_32BIT"}, {unix.MAP_GROWSDOWN, "MAP_GROWSDOWN"},
	{unix.MAP_DENYWRITE, "MAP_DENYWRITE"}, {unix.MAP_EXECUTABLE, "MAP_EXECUTABLE"},
	{unix.MAP_LOCKED, "MAP_LOCKED"}, {unix.MAP_NORESERVE, "MAP_NORESERVE"},
	{unix.MAP_POPULATE, "MAP_POPULATE"}, {unix.MAP_NONBLOCK, "MAP_NONBLOCK"},
	{unix.MAP_STACK, "MAP_STACK"}, {unix.MAP_HUGETLB, "MAP_HUGETLB"},
	{unix.MAP_SYNC, "MAP_SYNC"}, {unix.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"},
}

var cloneFlags = []flag{
	{unix.CLONE_VM, "CLONE_VM"}, {unix.CLONE_FS, "CLONE_FS"}, {unix.CLONE_FILES, "CLONE_FILES"},
	{unix.CLONE_SIGHAND, "CLONE_SIGHAND"}, {unix.CLONE_PIDFD, "CLONE_PIDFD"},
	{unix.CLONE_PTRACE, "CLONE_PTRACE"}, {unix.CLONE_VFORK, "CLONE_VFORK"},
	{unix.CLONE_PARENT, "CLONE_PARENT"}, {unix.CLONE_THREAD, "CLONE_THREAD"},
	{unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_SYSVSEM, "CLONE_SYSVSEM"},
	{unix.CLONE_SETTLS, "CLONE_SETTLS"}, {unix.CLONE_PARENT_SETTID, "CLONE_PARENT_SETTID"},
	{unix.CLONE_CHILD_CLEARTID, "CLONE_CHILD_CLEARTID"}, {unix.CLONE_DETACHED, "CLONE_DETACHED"},
	{unix.CLONE_UNTRACED, "CLONE_UNTRACED"}, {unix.CLONE_CHILD_SETTID, "CLONE_CHILD_SETTID"},
	{unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {unix.CLONE_NEWUTS, "CLONE_NEWUTS"},
	{unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWUSER, "CLONE_NEWUSER"},
	{unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"},
	{unix.CLONE_IO, "CLONE_IO"},
}

var waitOptions = []flag{
	{unix.WNOHANG, "WNOHANG"}, {unix.WUNTRACED, "WUNTRACED"}, {unix.WEXITED, "WEXITED"},
	{unix.WCONTINUED, "WCONTINUED"}, {unix.WNOWAIT, "WNOWAIT"}, {0x20000000, "__WNOTHREAD"},
	{0x40000000, "__WALL"}, {0x80000000, "__WCLONE"},
}

var atFlags = []flag{
	{unix.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"}, {unix.AT_REMOVEDIR, "AT_REMOVEDIR"},
	{unix.AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"}, {unix.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"},
	{unix.AT_EMPTY_PATH, "AT_EMPTY_PATH"},
}

var fcntlCmds = map[uint64]string{
	unix.F_DUPFD: "F_DUPFD", unix.F_GETFD: "F_GETFD", unix.F_SETFD: "F_SETFD",
	unix.F_GETFL: "F_GETFL", unix.F_SETFL: "F_SETFL", unix.F_GETLK: "F_GETLK",
	unix.F_SETLK: "F_SETLK", unix.F_SETLKW: "F_SETLKW", unix.F_SETOWN: "F_SETOWN",
	unix.F_GETOWN: "F_GETOWN", unix.F_SETSIG: "F_SETSIG", unix.F_GETSIG: "F_GETSIG",
	unix.F_SETOWN_EX: "F_SETOWN_EX", unix.F_GETOWN_EX: "F_GETOWN_EX",
	unix.F_OFD_GETLK: "F_OFD_GETLK", unix.F_OFD_SETLK: "F_OFD_SETLK", unix.F_OFD_SETLKW: "F_OFD_SETLKW",
	unix.F_SETLEASE: "F_SETLEASE", unix.F_GETLEASE: "F_GETLEASE", unix.F_NOTIFY: "F_NOTIFY",
	unix.F_DUPFD_CLOEXEC: "F_DUPFD_CLOEXEC", unix.F_SETPIPE_SZ: "F_SETPIPE_SZ",
	unix.F_GETPIPE_SZ: "F_GETPIPE_SZ", unix.F_ADD_SEALS: "F_ADD_SEALS", unix.F_GET_SEALS: "F_GET_SEALS",
}

var sigHows = map[uint64]string{unix.SIG_BLOCK: "SIG_BLOCK", unix.SIG_UNBLOCK: "SIG_UNBLOCK", unix.SIG_SETMASK: "SIG_SETMASK"}

var sockFamilies = map[uint64]string{
	unix.AF_UNSPEC: "AF_UNSPEC", unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET",
	unix.AF_INET6: "AF_INET6", unix.AF_NETLINK: "AF_NETLINK", unix.AF_PACKET: "AF_PACKET",
}

var sockTypes = map[uint64]string{
	unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM", unix.SOCK_RAW: "SOCK_RAW",
	unix.SOCK_RDM: "SOCK_RDM", unix.SOCK_SEQPACKET: "SOCK_SEQPACKET", unix.SOCK_PACKET: "SOCK_PACKET",
}

// writeFlags writes v as NAME|NAME|0xrest, or "0" when v is zero.
func writeFlags(b *strings.Builder, v uint64, set []flag) {
	first := true
	sep := func() {
		if !first {
			b.WriteByte('|')
		}
		first = false
	}
	for _, f := range set {
		if f.mask != 0 && v&f.mask == f.mask {
			sep()
			b.WriteString(f.name)
			v &^= f.mask
		}
	}
	if v != 0 || first {
		sep()
		b.WriteString("0x")
		b.WriteString(strconv.FormatUint(v, 16))
	}
}

// writeNamed writes names[v], or v in decimal.
func writeNamed(b *strings.Builder, v uint64, names map[uint64]string) {
	if n, ok := names[v]; ok {
		b.WriteString(n)
		return
	}
	b.WriteString(strconv.FormatUint(v, 10))
}

// writeSignal writes a signal's name (SIGTERM) or its number.
func writeSignal(b *strings.Builder, v uint64) {
	if v > 0 && v < 65 {
		if n := unix.SignalName(syscall.Signal(v)); n != "" {
			b.WriteString(n)
			return
		}
		if v >= 34 {
			b.WriteString("SIGRT_")
			b.WriteString(strconv.FormatUint(v-34, 10))
			return
		}
	}
	b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
}

// writeArg writes argument v of the given kind.
func writeArg(b *strings.Builder, kind argKind, v uint64) {
	switch kind {
	case kindDec:
		b.WriteString(strconv.FormatInt(int64(v), 10))
	case kindFD:
		b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
	case kindDirFD:
		if int32(v) == unix.AT_FDCWD {
			b.WriteString("AT_FDCWD")
		} else {
			b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
		}
	case kindOpenFlags:
		switch v & unix.O_ACCMODE {
		case unix.O_RDONLY:
			b.WriteString("O_RDONLY")
		case unix.O_WRONLY:
			b.WriteString("O_WRONLY")
		case unix.O_RDWR:
			b.WriteString("O_RDWR")
		default:
			b.WriteString("O_ACCMODE")
		}
		if rest := v &^ unix.O_ACCMODE; rest != 0 {
			b.WriteByte('|')
			writeFlags(b, rest, openFlags)
		}
	case kindMode:
		b.WriteString("0")
		b.WriteString(strconv.FormatUint(v&0o7777, 8))
	case kindProt:
		if v == unix.PROT_NONE {
			b.WriteString("PROT_NONE")
			return
		}
		writeFlags(b, v, protFlags)
	case kindMmapFlags:
		switch v & unix.MAP_TYPE {
		case unix.MAP_SHARED:
			b.WriteString("MAP_SHARED")
		case unix.MAP_PRIVATE:
			b.WriteString("MAP_PRIVATE")
		case unix.MAP_SHARED_VALIDATE:
			b.WriteString("MAP_SHARED_VALIDATE")
		default:
			b.WriteString("0x")
			b.WriteString(strconv.FormatUint(v&unix.MAP_TYPE, 16))
		}
		if rest := v &^ unix.MAP_TYPE; rest != 0 {
			b.WriteByte('|')
			writeFlags(b, rest, mmapFlags)
		}
	case kindCloneFlags:
		// The low byte is the signal sent to the parent at exit.
		if rest := v &^ 0xff; rest != 0 || v&0xff == 0 {
			writeFlags(b, rest, cloneFlags)
			if v&0xff != 0 {
				b.WriteByte('|')
			}
		}
		if v&0xff != 0 {
			writeSignal(b, v&0xff)
		}
	case kindSignal:
		writeSignal(b, v)
	case kindSigHow:
		writeNamed(b, v, sigHows)
	case kindFcntlCmd:
		writeNamed(b, v, fcntlCmds)
	case kindSockFamily:
		writeNamed(b, v, sockFamilies)
	case kindSockType:
		writeNamed(b, v&0xf, sockTypes)
		if v&unix.SOCK_NONBLOCK != 0 {
			b.WriteString("|SOCK_NONBLOCK")
		}
		if v&unix.SOCK_CLOEXEC != 0 {
			b.WriteString("|SOCK_CLOEXEC")
		}
		if rest := v &^ (0xf | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC); rest != 0 {
			b.WriteString("|0x")
			b.WriteString(strconv.FormatUint(rest, 16))
		}
	case kindWaitOptions:
		writeFlags(b, v, waitOptions)
	case kindAtFlags:
		writeFlags(b, v, atFlags)
	default:
		b.WriteString("0x")
		b.WriteString(strconv.FormatUint(v, 16))
	}
}

// shownArgs is how many arguments nr's line shows: open and openat show
// their mode only when it is used (O_CREAT or O_TMPFILE), as strace does.
func shownArgs(nr uintptr, args [6]uintptr) int {
	n, ok := argCounts[nr]
	if !ok {
		n = 6
	}
	const usesMode = unix.O_CREAT | 0x400000 // O_CREAT or __O_TMPFILE
	switch nr {
	case linux.SYS_OPEN:
		if args[1]&usesMode == 0 {
			n = 2
		}
	case linux.SYS_OPENAT:
		if args[2]&usesMode == 0 {
			n = 3
		}
	}
	return n
}
