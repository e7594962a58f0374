package linux

// open(2) flags, as the kernel sees them on amd64. Note O_LARGEFILE: glibc
// defines it as 0 on 64-bit, but the kernel bit is 0100000 and open(2)
// always sets it on 64-bit, so it shows up in F_GETFL.
const (
	O_ACCMODE   = 0o3
	O_RDONLY    = 0o0
	O_WRONLY    = 0o1
	O_RDWR      = 0o2
	O_CREAT     = 0o100
	O_EXCL      = 0o200
	O_NOCTTY    = 0o400
	O_TRUNC     = 0o1000
	O_APPEND    = 0o2000
	O_NONBLOCK  = 0o4000
	O_NDELAY    = O_NONBLOCK
	O_DSYNC     = 0o10000
	O_ASYNC     = 0o20000 // FASYNC
	O_DIRECT    = 0o40000
	O_LARGEFILE = 0o100000
	O_DIRECTORY = 0o200000
	O_NOFOLLOW  = 0o400000
	O_NOATIME   = 0o1000000
	O_CLOEXEC   = 0o2000000
	O_SYNC      = 0o4000000 | O_DSYNC
	O_PATH      = 0o10000000
	O_TMPFILE   = 0o20000000 | O_DIRECTORY
)

// fcntl(2) commands.
const (
	F_DUPFD         = 0
	F_GETFD         = 1
	F_SETFD         = 2
	F_GETFL         = 3
	F_SETFL         = 4
	F_GETLK         = 5
	F_SETLK         = 6
	F_SETLKW        = 7
	F_SETOWN        = 8
	F_GETOWN        = 9
	F_SETSIG        = 10
	F_GETSIG        = 11
	F_SETOWN_EX     = 15
	F_GETOWN_EX     = 16
	F_GETOWNER_UIDS = 17
	F_OFD_GETLK     = 36
	F_OFD_SETLK     = 37
	F_OFD_SETLKW    = 38
	F_SETLEASE      = 1024
	F_GETLEASE      = 1025
	F_NOTIFY        = 1026
	F_CANCELLK      = 1029
	F_DUPFD_CLOEXEC = 1030
	F_SETPIPE_SZ    = 1031
	F_GETPIPE_SZ    = 1032
	F_ADD_SEALS     = 1033
	F_GET_SEALS     = 1034
)

// F_GETFD/F_SETFD flag.
const FD_CLOEXEC = 1

// Lock types for struct flock, and F_SETOWN_EX owner types.
const (
	F_RDLCK      = 0
	F_WRLCK      = 1
	F_UNLCK      = 2
	F_OWNER_TID  = 0
	F_OWNER_PID  = 1
	F_OWNER_PGRP = 2
)

// memfd seals (F_ADD_SEALS).
const (
	F_SEAL_SEAL         = 0x1
	F_SEAL_SHRINK       = 0x2
	F_SEAL_GROW         = 0x4
	F_SEAL_WRITE        = 0x8
	F_SEAL_FUTURE_WRITE = 0x10
)

// *at(2) flags. AT_EACCESS and AT_REMOVEDIR share a bit; each syscall
// accepts only the one that makes sense for it.
const (
	AT_FDCWD              = -100
	AT_SYMLINK_NOFOLLOW   = 0x100
	AT_EACCESS            = 0x200
	AT_REMOVEDIR          = 0x200
	AT_SYMLINK_FOLLOW     = 0x400
	AT_NO_AUTOMOUNT       = 0x800
	AT_EMPTY_PATH         = 0x1000
	AT_STATX_SYNC_TYPE    = 0x6000
	AT_STATX_SYNC_AS_STAT = 0x0000
	AT_STATX_FORCE_SYNC   = 0x2000
	AT_STATX_DONT_SYNC    = 0x4000
	AT_RECURSIVE          = 0x8000
)

// openat2(2) resolve flags (OpenHow.Resolve).
const (
	RESOLVE_NO_XDEV       = 0x01
	RESOLVE_NO_MAGICLINKS = 0x02
	RESOLVE_NO_SYMLINKS   = 0x04
	RESOLVE_BENEATH       = 0x08
	RESOLVE_IN_ROOT       = 0x10
	RESOLVE_CACHED        = 0x20
)

// renameat2(2) flags.
const (
	RENAME_NOREPLACE = 1 << 0
	RENAME_EXCHANGE  = 1 << 1
	RENAME_WHITEOUT  = 1 << 2
)

// lseek(2) whence values.
const (
	SEEK_SET  = 0
	SEEK_CUR  = 1
	SEEK_END  = 2
	SEEK_DATA = 3
	SEEK_HOLE = 4
)

// access(2) modes.
const (
	F_OK = 0
	X_OK = 1
	W_OK = 2
	R_OK = 4
)

// File mode bits (st_mode).
const (
	S_IFMT   = 0o170000
	S_IFSOCK = 0o140000
	S_IFLNK  = 0o120000
	S_IFREG  = 0o100000
	S_IFBLK  = 0o060000
	S_IFDIR  = 0o040000
	S_IFCHR  = 0o020000
	S_IFIFO  = 0o010000

	S_ISUID = 0o4000
	S_ISGID = 0o2000
	S_ISVTX = 0o1000

	S_IRWXU = 0o700
	S_IRUSR = 0o400
	S_IWUSR = 0o200
	S_IXUSR = 0o100
	S_IRWXG = 0o070
	S_IRGRP = 0o040
	S_IWGRP = 0o020
	S_IXGRP = 0o010
	S_IRWXO = 0o007
	S_IROTH = 0o004
	S_IWOTH = 0o002
	S_IXOTH = 0o001
)

// Directory entry types (Dirent64.Type), matching S_IFMT >> 12.
const (
	DT_UNKNOWN = 0
	DT_FIFO    = 1
	DT_CHR     = 2
	DT_DIR     = 4
	DT_BLK     = 6
	DT_REG     = 8
	DT_LNK     = 10
	DT_SOCK    = 12
	DT_WHT     = 14
)

// statx(2) mask bits (Statx.Mask).
const (
	STATX_TYPE        = 0x1
	STATX_MODE        = 0x2
	STATX_NLINK       = 0x4
	STATX_UID         = 0x8
	STATX_GID         = 0x10
	STATX_ATIME       = 0x20
	STATX_MTIME       = 0x40
	STATX_CTIME       = 0x80
	STATX_INO         = 0x100
	STATX_SIZE        = 0x200
	STATX_BLOCKS      = 0x400
	STATX_BASIC_STATS = 0x7ff
	STATX_BTIME       = 0x800
	STATX_MNT_ID      = 0x1000
	STATX_DIOALIGN    = 0x2000
	STATX__RESERVED   = 0x80000000
	STATX_ALL         = 0xfff
)

// statx(2) attribute bits (Statx.Attributes).
const (
	STATX_ATTR_COMPRESSED = 0x4
	STATX_ATTR_IMMUTABLE  = 0x10
	STATX_ATTR_APPEND     = 0x20
	STATX_ATTR_NODUMP     = 0x40
	STATX_ATTR_ENCRYPTED  = 0x800
	STATX_ATTR_AUTOMOUNT  = 0x1000
	STATX_ATTR_MOUNT_ROOT = 0x2000
	STATX_ATTR_VERITY     = 0x100000
	STATX_ATTR_DAX        = 0x200000
)

// poll(2) event bits (Pollfd.Events/Revents).
const (
	POLLIN     = 0x1
	POLLPRI    = 0x2
	POLLOUT    = 0x4
	POLLERR    = 0x8
	POLLHUP    = 0x10
	POLLNVAL   = 0x20
	POLLRDNORM = 0x40
	POLLRDBAND = 0x80
	POLLWRNORM = 0x100
	POLLWRBAND = 0x200
	POLLMSG    = 0x400
	POLLREMOVE = 0x1000
	POLLRDHUP  = 0x2000
)

// epoll(7) event bits and epoll_ctl(2) operations.
const (
	EPOLLIN        = 0x1
	EPOLLPRI       = 0x2
	EPOLLOUT       = 0x4
	EPOLLERR       = 0x8
	EPOLLHUP       = 0x10
	EPOLLNVAL      = 0x20
	EPOLLRDNORM    = 0x40
	EPOLLRDBAND    = 0x80
	EPOLLWRNORM    = 0x100
	EPOLLWRBAND    = 0x200
	EPOLLMSG       = 0x400
	EPOLLRDHUP     = 0x2000
	EPOLLEXCLUSIVE = 1 << 28
	EPOLLWAKEUP    = 1 << 29
	EPOLLONESHOT   = 1 << 30
	EPOLLET        = 1 << 31

	EPOLL_CLOEXEC = O_CLOEXEC
	EPOLL_CTL_ADD = 1
	EPOLL_CTL_DEL = 2
	EPOLL_CTL_MOD = 3
)

// Flags of eventfd2, pipe2, signalfd4, timerfd_create, inotify_init1 and
// memfd_create, all of which reuse the open(2) bits where they can.
const (
	EFD_SEMAPHORE = 1
	EFD_CLOEXEC   = O_CLOEXEC
	EFD_NONBLOCK  = O_NONBLOCK

	SFD_CLOEXEC  = O_CLOEXEC
	SFD_NONBLOCK = O_NONBLOCK

	TFD_CLOEXEC  = O_CLOEXEC
	TFD_NONBLOCK = O_NONBLOCK

	MFD_CLOEXEC       = 0x1
	MFD_ALLOW_SEALING = 0x2
	MFD_HUGETLB       = 0x4
)

// Lengths.
const (
	PATH_MAX = 4096
	NAME_MAX = 255
)
