package linux

// Winsize is struct winsize, for TIOCGWINSZ and TIOCSWINSZ.
type Winsize struct {
	Row    uint16
	Col    uint16
	Xpixel uint16
	Ypixel uint16
}

// Termios is the kernel's struct termios (asm-generic/termbits.h), the
// argument of TCGETS and TCSETS*. glibc's struct termios is larger and is
// converted by libc; applications' ioctls carry this one.
type Termios struct {
	InputFlags        uint32
	OutputFlags       uint32
	ControlFlags      uint32
	LocalFlags        uint32
	LineDiscipline    uint8
	ControlCharacters [NCCS]uint8
}

// Struct sizes.
const (
	SizeOfWinsize = 8
	SizeOfTermios = 36
)

// SizeBytes implements Marshaler.
func (*Winsize) SizeBytes() int { return SizeOfWinsize }

// MarshalBytes implements Marshaler.
func (w *Winsize) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfWinsize-1]
	le.PutUint16(dst[0:], w.Row)
	le.PutUint16(dst[2:], w.Col)
	le.PutUint16(dst[4:], w.Xpixel)
	le.PutUint16(dst[6:], w.Ypixel)
	return dst[SizeOfWinsize:]
}

// UnmarshalBytes implements Marshaler.
func (w *Winsize) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfWinsize-1]
	w.Row = le.Uint16(src[0:])
	w.Col = le.Uint16(src[2:])
	w.Xpixel = le.Uint16(src[4:])
	w.Ypixel = le.Uint16(src[6:])
	return src[SizeOfWinsize:]
}

// SizeBytes implements Marshaler.
func (*Termios) SizeBytes() int { return SizeOfTermios }

// MarshalBytes implements Marshaler.
func (t *Termios) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfTermios-1]
	le.PutUint32(dst[0:], t.InputFlags)
	le.PutUint32(dst[4:], t.OutputFlags)
	le.PutUint32(dst[8:], t.ControlFlags)
	le.PutUint32(dst[12:], t.LocalFlags)
	dst[16] = t.LineDiscipline
	copy(dst[17:SizeOfTermios], t.ControlCharacters[:])
	return dst[SizeOfTermios:]
}

// UnmarshalBytes implements Marshaler.
func (t *Termios) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfTermios-1]
	t.InputFlags = le.Uint32(src[0:])
	t.OutputFlags = le.Uint32(src[4:])
	t.ControlFlags = le.Uint32(src[8:])
	t.LocalFlags = le.Uint32(src[12:])
	t.LineDiscipline = src[16]
	copy(t.ControlCharacters[:], src[17:SizeOfTermios])
	return src[SizeOfTermios:]
}
