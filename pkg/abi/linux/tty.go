package linux

// Terminal and generic file ioctl request numbers (asm-generic/ioctls.h,
// which amd64 uses unchanged).
const (
	TCGETS       = 0x5401
	TCSETS       = 0x5402
	TCSETSW      = 0x5403
	TCSETSF      = 0x5404
	TCGETA       = 0x5405
	TCSETA       = 0x5406
	TCSETAW      = 0x5407
	TCSETAF      = 0x5408
	TCSBRK       = 0x5409
	TCXONC       = 0x540a
	TCFLSH       = 0x540b
	TIOCEXCL     = 0x540c
	TIOCNXCL     = 0x540d
	TIOCSCTTY    = 0x540e
	TIOCGPGRP    = 0x540f
	TIOCSPGRP    = 0x5410
	TIOCOUTQ     = 0x5411
	TIOCSTI      = 0x5412
	TIOCGWINSZ   = 0x5413
	TIOCSWINSZ   = 0x5414
	TIOCMGET     = 0x5415
	TIOCMBIS     = 0x5416
	TIOCMBIC     = 0x5417
	TIOCMSET     = 0x5418
	FIONREAD     = 0x541b
	TIOCINQ      = FIONREAD
	TIOCLINUX    = 0x541c
	TIOCCONS     = 0x541d
	TIOCPKT      = 0x5420
	FIONBIO      = 0x5421
	TIOCNOTTY    = 0x5422
	TIOCSETD     = 0x5423
	TIOCGETD     = 0x5424
	TIOCSBRK     = 0x5427
	TIOCCBRK     = 0x5428
	TIOCGSID     = 0x5429
	TIOCGPTN     = 0x80045430
	TIOCSPTLCK   = 0x40045431
	TIOCGDEV     = 0x80045432
	TIOCSIG      = 0x40045436
	TIOCVHANGUP  = 0x5437
	TIOCGPKT     = 0x80045438
	TIOCGPTLCK   = 0x80045439
	TIOCGEXCL    = 0x80045440
	TIOCGPTPEER  = 0x5441
	FIONCLEX     = 0x5450
	FIOCLEX      = 0x5451
	FIOASYNC     = 0x5452
	FIOQSIZE     = 0x5460
	TIOCPKT_DATA = 0
)

// Indexes into Termios.ControlCharacters.
const (
	VINTR    = 0
	VQUIT    = 1
	VERASE   = 2
	VKILL    = 3
	VEOF     = 4
	VTIME    = 5
	VMIN     = 6
	VSWTC    = 7
	VSTART   = 8
	VSTOP    = 9
	VSUSP    = 10
	VEOL     = 11
	VREPRINT = 12
	VDISCARD = 13
	VWERASE  = 14
	VLNEXT   = 15
	VEOL2    = 16
)

// Termios.InputFlags bits.
const (
	IGNBRK  = 0x1
	BRKINT  = 0x2
	IGNPAR  = 0x4
	PARMRK  = 0x8
	INPCK   = 0x10
	ISTRIP  = 0x20
	INLCR   = 0x40
	IGNCR   = 0x80
	ICRNL   = 0x100
	IUCLC   = 0x200
	IXON    = 0x400
	IXANY   = 0x800
	IXOFF   = 0x1000
	IMAXBEL = 0x2000
	IUTF8   = 0x4000
)

// Termios.OutputFlags bits.
const (
	OPOST  = 0x1
	OLCUC  = 0x2
	ONLCR  = 0x4
	OCRNL  = 0x8
	ONOCR  = 0x10
	ONLRET = 0x20
	OFILL  = 0x40
	OFDEL  = 0x80
	TABDLY = 0x1800
	XTABS  = 0x1800
)

// Termios.ControlFlags bits.
const (
	CBAUD   = 0x100f
	B38400  = 0xf
	CSIZE   = 0x30
	CS5     = 0x0
	CS6     = 0x10
	CS7     = 0x20
	CS8     = 0x30
	CSTOPB  = 0x40
	CREAD   = 0x80
	PARENB  = 0x100
	PARODD  = 0x200
	HUPCL   = 0x400
	CLOCAL  = 0x800
	CRTSCTS = 0x80000000
)

// Termios.LocalFlags bits.
const (
	ISIG    = 0x1
	ICANON  = 0x2
	XCASE   = 0x4
	ECHO    = 0x8
	ECHOE   = 0x10
	ECHOK   = 0x20
	ECHONL  = 0x40
	NOFLSH  = 0x80
	TOSTOP  = 0x100
	ECHOCTL = 0x200
	ECHOPRT = 0x400
	ECHOKE  = 0x800
	FLUSHO  = 0x1000
	PENDIN  = 0x4000
	IEXTEN  = 0x8000
	EXTPROC = 0x10000
)

// TCFLSH and TCXONC arguments.
const (
	TCIFLUSH  = 0
	TCOFLUSH  = 1
	TCIOFLUSH = 2
	TCOOFF    = 0
	TCOON     = 1
	TCIOFF    = 2
	TCION     = 3
)

// NCCS is the number of control characters in the kernel's struct termios
// (glibc's user-space struct termios has 32 and is a different layout).
const NCCS = 19
