package linux

import "golang.org/x/sys/unix"

// Errnos, re-exported from golang.org/x/sys/unix so that code importing this
// package for the ABI need not also import unix for the common values. They
// are the same unix.Errno values, interchangeable with unix.EINVAL and so on.
const (
	EPERM           = unix.EPERM
	ENOENT          = unix.ENOENT
	ESRCH           = unix.ESRCH
	EINTR           = unix.EINTR
	EIO             = unix.EIO
	ENXIO           = unix.ENXIO
	E2BIG           = unix.E2BIG
	ENOEXEC         = unix.ENOEXEC
	EBADF           = unix.EBADF
	ECHILD          = unix.ECHILD
	EAGAIN          = unix.EAGAIN
	ENOMEM          = unix.ENOMEM
	EACCES          = unix.EACCES
	EFAULT          = unix.EFAULT
	ENOTBLK         = unix.ENOTBLK
	EBUSY           = unix.EBUSY
	EEXIST          = unix.EEXIST
	EXDEV           = unix.EXDEV
	ENODEV          = unix.ENODEV
	ENOTDIR         = unix.ENOTDIR
	EISDIR          = unix.EISDIR
	EINVAL          = unix.EINVAL
	ENFILE          = unix.ENFILE
	EMFILE          = unix.EMFILE
	ENOTTY          = unix.ENOTTY
	ETXTBSY         = unix.ETXTBSY
	EFBIG           = unix.EFBIG
	ENOSPC          = unix.ENOSPC
	ESPIPE          = unix.ESPIPE
	EROFS           = unix.EROFS
	EMLINK          = unix.EMLINK
	EPIPE           = unix.EPIPE
	EDOM            = unix.EDOM
	ERANGE          = unix.ERANGE
	EDEADLK         = unix.EDEADLK
	ENAMETOOLONG    = unix.ENAMETOOLONG
	ENOLCK          = unix.ENOLCK
	ENOSYS          = unix.ENOSYS
	ENOTEMPTY       = unix.ENOTEMPTY
	ELOOP           = unix.ELOOP
	EWOULDBLOCK     = unix.EWOULDBLOCK
	ENOMSG          = unix.ENOMSG
	EIDRM           = unix.EIDRM
	ECHRNG          = unix.ECHRNG
	EL2NSYNC        = unix.EL2NSYNC
	EL3HLT          = unix.EL3HLT
	EL3RST          = unix.EL3RST
	ELNRNG          = unix.ELNRNG
	EUNATCH         = unix.EUNATCH
	ENOCSI          = unix.ENOCSI
	EL2HLT          = unix.EL2HLT
	EBADE           = unix.EBADE
	EBADR           = unix.EBADR
	EXFULL          = unix.EXFULL
	ENOANO          = unix.ENOANO
	EBADRQC         = unix.EBADRQC
	EBADSLT         = unix.EBADSLT
	EDEADLOCK       = unix.EDEADLOCK
	EBFONT          = unix.EBFONT
	ENOSTR          = unix.ENOSTR
	ENODATA         = unix.ENODATA
	ETIME           = unix.ETIME
	ENOSR           = unix.ENOSR
	ENONET          = unix.ENONET
	ENOPKG          = unix.ENOPKG
	EREMOTE         = unix.EREMOTE
	ENOLINK         = unix.ENOLINK
	EADV            = unix.EADV
	ESRMNT          = unix.ESRMNT
	ECOMM           = unix.ECOMM
	EPROTO          = unix.EPROTO
	EMULTIHOP       = unix.EMULTIHOP
	EDOTDOT         = unix.EDOTDOT
	EBADMSG         = unix.EBADMSG
	EOVERFLOW       = unix.EOVERFLOW
	ENOTUNIQ        = unix.ENOTUNIQ
	EBADFD          = unix.EBADFD
	EREMCHG         = unix.EREMCHG
	ELIBACC         = unix.ELIBACC
	ELIBBAD         = unix.ELIBBAD
	ELIBSCN         = unix.ELIBSCN
	ELIBMAX         = unix.ELIBMAX
	ELIBEXEC        = unix.ELIBEXEC
	EILSEQ          = unix.EILSEQ
	ERESTART        = unix.ERESTART
	ESTRPIPE        = unix.ESTRPIPE
	EUSERS          = unix.EUSERS
	ENOTSOCK        = unix.ENOTSOCK
	EDESTADDRREQ    = unix.EDESTADDRREQ
	EMSGSIZE        = unix.EMSGSIZE
	EPROTOTYPE      = unix.EPROTOTYPE
	ENOPROTOOPT     = unix.ENOPROTOOPT
	EPROTONOSUPPORT = unix.EPROTONOSUPPORT
	ESOCKTNOSUPPORT = unix.ESOCKTNOSUPPORT
	EOPNOTSUPP      = unix.EOPNOTSUPP
	EPFNOSUPPORT    = unix.EPFNOSUPPORT
	EAFNOSUPPORT    = unix.EAFNOSUPPORT
	EADDRINUSE      = unix.EADDRINUSE
	EADDRNOTAVAIL   = unix.EADDRNOTAVAIL
	ENETDOWN        = unix.ENETDOWN
	ENETUNREACH     = unix.ENETUNREACH
	ENETRESET       = unix.ENETRESET
	ECONNABORTED    = unix.ECONNABORTED
	ECONNRESET      = unix.ECONNRESET
	ENOBUFS         = unix.ENOBUFS
	EISCONN         = unix.EISCONN
	ENOTCONN        = unix.ENOTCONN
	ESHUTDOWN       = unix.ESHUTDOWN
	ETOOMANYREFS    = unix.ETOOMANYREFS
	ETIMEDOUT       = unix.ETIMEDOUT
	ECONNREFUSED    = unix.ECONNREFUSED
	EHOSTDOWN       = unix.EHOSTDOWN
	EHOSTUNREACH    = unix.EHOSTUNREACH
	EALREADY        = unix.EALREADY
	EINPROGRESS     = unix.EINPROGRESS
	ESTALE          = unix.ESTALE
	EUCLEAN         = unix.EUCLEAN
	ENOTNAM         = unix.ENOTNAM
	ENAVAIL         = unix.ENAVAIL
	EISNAM          = unix.EISNAM
	EREMOTEIO       = unix.EREMOTEIO
	EDQUOT          = unix.EDQUOT
	ENOMEDIUM       = unix.ENOMEDIUM
	EMEDIUMTYPE     = unix.EMEDIUMTYPE
	ECANCELED       = unix.ECANCELED
	ENOKEY          = unix.ENOKEY
	EKEYEXPIRED     = unix.EKEYEXPIRED
	EKEYREVOKED     = unix.EKEYREVOKED
	EKEYREJECTED    = unix.EKEYREJECTED
	EOWNERDEAD      = unix.EOWNERDEAD
	ENOTRECOVERABLE = unix.ENOTRECOVERABLE
	ERFKILL         = unix.ERFKILL
	EHWPOISON       = unix.EHWPOISON
	ENOTSUP         = unix.ENOTSUP
)

// Kernel-internal errnos that ask for a syscall to be restarted after a signal
// handler runs (or, when no handler runs, transparently). Applications never
// see them: signal delivery turns them into EINTR or a restart. Values from
// include/linux/errno.h.
const (
	ERESTARTSYS           = unix.Errno(512)
	ERESTARTNOINTR        = unix.Errno(513)
	ERESTARTNOHAND        = unix.Errno(514)
	ERESTART_RESTARTBLOCK = unix.Errno(516)
)

// IsRestartErrno reports whether e is one of the kernel-internal restart
// errnos, which must never reach an application.
func IsRestartErrno(e unix.Errno) bool {
	switch e {
	case ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK:
		return true
	}
	return false
}

// MaxErrno is the largest errno an application can see; syscall return
// values in [-MaxErrno, -1] are errors. Kernel-internal errnos (512 and up)
// lie below the kernel's MAX_ERRNO of 4095 but above this.
const MaxErrno = 133

// errnoNames names each application-visible errno. Where the kernel has two
// names for one value (EAGAIN/EWOULDBLOCK, EDEADLK/EDEADLOCK,
// EOPNOTSUPP/ENOTSUP) the first, the one strace prints, is used.
var errnoNames = [MaxErrno + 1]string{
	EPERM:           "EPERM",
	ENOENT:          "ENOENT",
	ESRCH:           "ESRCH",
	EINTR:           "EINTR",
	EIO:             "EIO",
	ENXIO:           "ENXIO",
	E2BIG:           "E2BIG",
	ENOEXEC:         "ENOEXEC",
	EBADF:           "EBADF",
	ECHILD:          "ECHILD",
	EAGAIN:          "EAGAIN",
	ENOMEM:          "ENOMEM",
	EACCES:          "EACCES",
	EFAULT:          "EFAULT",
	ENOTBLK:         "ENOTBLK",
	EBUSY:           "EBUSY",
	EEXIST:          "EEXIST",
	EXDEV:           "EXDEV",
	ENODEV:          "ENODEV",
	ENOTDIR:         "ENOTDIR",
	EISDIR:          "EISDIR",
	EINVAL:          "EINVAL",
	ENFILE:          "ENFILE",
	EMFILE:          "EMFILE",
	ENOTTY:          "ENOTTY",
	ETXTBSY:         "ETXTBSY",
	EFBIG:           "EFBIG",
	ENOSPC:          "ENOSPC",
	ESPIPE:          "ESPIPE",
	EROFS:           "EROFS",
	EMLINK:          "EMLINK",
	EPIPE:           "EPIPE",
	EDOM:            "EDOM",
	ERANGE:          "ERANGE",
	EDEADLK:         "EDEADLK",
	ENAMETOOLONG:    "ENAMETOOLONG",
	ENOLCK:          "ENOLCK",
	ENOSYS:          "ENOSYS",
	ENOTEMPTY:       "ENOTEMPTY",
	ELOOP:           "ELOOP",
	ENOMSG:          "ENOMSG",
	EIDRM:           "EIDRM",
	ECHRNG:          "ECHRNG",
	EL2NSYNC:        "EL2NSYNC",
	EL3HLT:          "EL3HLT",
	EL3RST:          "EL3RST",
	ELNRNG:          "ELNRNG",
	EUNATCH:         "EUNATCH",
	ENOCSI:          "ENOCSI",
	EL2HLT:          "EL2HLT",
	EBADE:           "EBADE",
	EBADR:           "EBADR",
	EXFULL:          "EXFULL",
	ENOANO:          "ENOANO",
	EBADRQC:         "EBADRQC",
	EBADSLT:         "EBADSLT",
	EBFONT:          "EBFONT",
	ENOSTR:          "ENOSTR",
	ENODATA:         "ENODATA",
	ETIME:           "ETIME",
	ENOSR:           "ENOSR",
	ENONET:          "ENONET",
	ENOPKG:          "ENOPKG",
	EREMOTE:         "EREMOTE",
	ENOLINK:         "ENOLINK",
	EADV:            "EADV",
	ESRMNT:          "ESRMNT",
	ECOMM:           "ECOMM",
	EPROTO:          "EPROTO",
	EMULTIHOP:       "EMULTIHOP",
	EDOTDOT:         "EDOTDOT",
	EBADMSG:         "EBADMSG",
	EOVERFLOW:       "EOVERFLOW",
	ENOTUNIQ:        "ENOTUNIQ",
	EBADFD:          "EBADFD",
	EREMCHG:         "EREMCHG",
	ELIBACC:         "ELIBACC",
	ELIBBAD:         "ELIBBAD",
	ELIBSCN:         "ELIBSCN",
	ELIBMAX:         "ELIBMAX",
	ELIBEXEC:        "ELIBEXEC",
	EILSEQ:          "EILSEQ",
	ERESTART:        "ERESTART",
	ESTRPIPE:        "ESTRPIPE",
	EUSERS:          "EUSERS",
	ENOTSOCK:        "ENOTSOCK",
	EDESTADDRREQ:    "EDESTADDRREQ",
	EMSGSIZE:        "EMSGSIZE",
	EPROTOTYPE:      "EPROTOTYPE",
	ENOPROTOOPT:     "ENOPROTOOPT",
	EPROTONOSUPPORT: "EPROTONOSUPPORT",
	ESOCKTNOSUPPORT: "ESOCKTNOSUPPORT",
	EOPNOTSUPP:      "EOPNOTSUPP",
	EPFNOSUPPORT:    "EPFNOSUPPORT",
	EAFNOSUPPORT:    "EAFNOSUPPORT",
	EADDRINUSE:      "EADDRINUSE",
	EADDRNOTAVAIL:   "EADDRNOTAVAIL",
	ENETDOWN:        "ENETDOWN",
	ENETUNREACH:     "ENETUNREACH",
	ENETRESET:       "ENETRESET",
	ECONNABORTED:    "ECONNABORTED",
	ECONNRESET:      "ECONNRESET",
	ENOBUFS:         "ENOBUFS",
	EISCONN:         "EISCONN",
	ENOTCONN:        "ENOTCONN",
	ESHUTDOWN:       "ESHUTDOWN",
	ETOOMANYREFS:    "ETOOMANYREFS",
	ETIMEDOUT:       "ETIMEDOUT",
	ECONNREFUSED:    "ECONNREFUSED",
	EHOSTDOWN:       "EHOSTDOWN",
	EHOSTUNREACH:    "EHOSTUNREACH",
	EALREADY:        "EALREADY",
	EINPROGRESS:     "EINPROGRESS",
	ESTALE:          "ESTALE",
	EUCLEAN:         "EUCLEAN",
	ENOTNAM:         "ENOTNAM",
	ENAVAIL:         "ENAVAIL",
	EISNAM:          "EISNAM",
	EREMOTEIO:       "EREMOTEIO",
	EDQUOT:          "EDQUOT",
	ENOMEDIUM:       "ENOMEDIUM",
	EMEDIUMTYPE:     "EMEDIUMTYPE",
	ECANCELED:       "ECANCELED",
	ENOKEY:          "ENOKEY",
	EKEYEXPIRED:     "EKEYEXPIRED",
	EKEYREVOKED:     "EKEYREVOKED",
	EKEYREJECTED:    "EKEYREJECTED",
	EOWNERDEAD:      "EOWNERDEAD",
	ENOTRECOVERABLE: "ENOTRECOVERABLE",
	ERFKILL:         "ERFKILL",
	EHWPOISON:       "EHWPOISON",
}

// ErrnoName returns the symbolic name of e ("EINVAL"), including the
// kernel-internal restart errnos, or "" if e has no name.
func ErrnoName(e unix.Errno) string {
	if e < unix.Errno(len(errnoNames)) {
		return errnoNames[e]
	}
	switch e {
	case ERESTARTSYS:
		return "ERESTARTSYS"
	case ERESTARTNOINTR:
		return "ERESTARTNOINTR"
	case ERESTARTNOHAND:
		return "ERESTARTNOHAND"
	case ERESTART_RESTARTBLOCK:
		return "ERESTART_RESTARTBLOCK"
	}
	return ""
}
