package linux

// Rlimit is struct rlimit (and struct rlimit64, identical on amd64).
type Rlimit struct {
	Cur uint64
	Max uint64
}

// Rusage is struct rusage, for getrusage(2) and wait4(2).
type Rusage struct {
	UTime    Timeval
	STime    Timeval
	MaxRSS   int64
	IXRSS    int64
	IDRSS    int64
	ISRSS    int64
	MinFlt   int64
	MajFlt   int64
	NSwap    int64
	InBlock  int64
	OuBlock  int64
	MsgSnd   int64
	MsgRcv   int64
	NSignals int64
	NVCSw    int64
	NIvCSw   int64
}

// Sysinfo is struct sysinfo, for sysinfo(2).
type Sysinfo struct {
	Uptime    int64
	Loads     [3]uint64
	TotalRAM  uint64
	FreeRAM   uint64
	SharedRAM uint64
	BufferRAM uint64
	TotalSwap uint64
	FreeSwap  uint64
	Procs     uint16
	_         [6]byte
	TotalHigh uint64
	FreeHigh  uint64
	MemUnit   uint32
	_         [4]byte
}

// UTSLen is the size of each Utsname field, NUL included (__NEW_UTS_LEN+1).
const UTSLen = 65

// Utsname is struct new_utsname, for uname(2). Each field is a NUL-padded
// string.
type Utsname struct {
	Sysname    [UTSLen]byte
	Nodename   [UTSLen]byte
	Release    [UTSLen]byte
	Version    [UTSLen]byte
	Machine    [UTSLen]byte
	Domainname [UTSLen]byte
}

// RobustListHead is struct robust_list_head, registered by
// set_robust_list(2).
type RobustListHead struct {
	List          uint64
	FutexOffset   int64
	ListOpPending uint64
}

// CloneArgs is struct clone_args, the argument of clone3(2), in its largest
// known version (CLONE_ARGS_SIZE_VER2). Smaller versions are prefixes.
type CloneArgs struct {
	Flags      uint64
	Pidfd      uint64
	ChildTID   uint64
	ParentTID  uint64
	ExitSignal uint64
	Stack      uint64
	StackSize  uint64
	TLS        uint64
	SetTID     uint64
	SetTIDSize uint64
	Cgroup     uint64
}

// Struct sizes.
const (
	SizeOfRlimit         = 16
	SizeOfRusage         = 144
	SizeOfSysinfo        = 112
	SizeOfUtsname        = 6 * UTSLen
	SizeOfRobustListHead = 24
	SizeOfCloneArgs      = CLONE_ARGS_SIZE_VER2
)

// SetUtsField copies s into a Utsname field, truncated so that a NUL
// always remains, and zero-fills the rest.
func SetUtsField(field *[UTSLen]byte, s string) {
	n := copy(field[:UTSLen-1], s)
	clear(field[n:])
}

// UtsFieldString returns a Utsname field up to its first NUL.
func UtsFieldString(field *[UTSLen]byte) string {
	for i, c := range field {
		if c == 0 {
			return string(field[:i])
		}
	}
	return string(field[:])
}

// SizeBytes implements Marshaler.
func (*Rlimit) SizeBytes() int { return SizeOfRlimit }

// MarshalBytes implements Marshaler.
func (r *Rlimit) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfRlimit-1]
	le.PutUint64(dst[0:], r.Cur)
	le.PutUint64(dst[8:], r.Max)
	return dst[SizeOfRlimit:]
}

// UnmarshalBytes implements Marshaler.
func (r *Rlimit) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfRlimit-1]
	r.Cur = le.Uint64(src[0:])
	r.Max = le.Uint64(src[8:])
	return src[SizeOfRlimit:]
}

// SizeBytes implements Marshaler.
func (*Rusage) SizeBytes() int { return SizeOfRusage }

func (r *Rusage) counters() *[14]int64 {
	// The 14 counters are consecutive int64s, so they can be walked as an
	// array; TestStructLayouts checks the offsets this relies on.
	return (*[14]int64)(unsafePointer(&r.MaxRSS))
}

// MarshalBytes implements Marshaler.
func (r *Rusage) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfRusage-1]
	r.UTime.MarshalBytes(dst[0:])
	r.STime.MarshalBytes(dst[16:])
	for i, v := range r.counters() {
		le.PutUint64(dst[32+8*i:], uint64(v))
	}
	return dst[SizeOfRusage:]
}

// UnmarshalBytes implements Marshaler.
func (r *Rusage) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfRusage-1]
	r.UTime.UnmarshalBytes(src[0:])
	r.STime.UnmarshalBytes(src[16:])
	c := r.counters()
	for i := range c {
		c[i] = int64(le.Uint64(src[32+8*i:]))
	}
	return src[SizeOfRusage:]
}

// SizeBytes implements Marshaler.
func (*Sysinfo) SizeBytes() int { return SizeOfSysinfo }

// MarshalBytes implements Marshaler.
func (s *Sysinfo) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfSysinfo-1]
	le.PutUint64(dst[0:], uint64(s.Uptime))
	le.PutUint64(dst[8:], s.Loads[0])
	le.PutUint64(dst[16:], s.Loads[1])
	le.PutUint64(dst[24:], s.Loads[2])
	le.PutUint64(dst[32:], s.TotalRAM)
	le.PutUint64(dst[40:], s.FreeRAM)
	le.PutUint64(dst[48:], s.SharedRAM)
	le.PutUint64(dst[56:], s.BufferRAM)
	le.PutUint64(dst[64:], s.TotalSwap)
	le.PutUint64(dst[72:], s.FreeSwap)
	le.PutUint16(dst[80:], s.Procs)
	clear(dst[82:88])
	le.PutUint64(dst[88:], s.TotalHigh)
	le.PutUint64(dst[96:], s.FreeHigh)
	le.PutUint32(dst[104:], s.MemUnit)
	clear(dst[108:SizeOfSysinfo])
	return dst[SizeOfSysinfo:]
}

// UnmarshalBytes implements Marshaler.
func (s *Sysinfo) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfSysinfo-1]
	*s = Sysinfo{
		Uptime:    int64(le.Uint64(src[0:])),
		Loads:     [3]uint64{le.Uint64(src[8:]), le.Uint64(src[16:]), le.Uint64(src[24:])},
		TotalRAM:  le.Uint64(src[32:]),
		FreeRAM:   le.Uint64(src[40:]),
		SharedRAM: le.Uint64(src[48:]),
		BufferRAM: le.Uint64(src[56:]),
		TotalSwap: le.Uint64(src[64:]),
		FreeSwap:  le.Uint64(src[72:]),
		Procs:     le.Uint16(src[80:]),
		TotalHigh: le.Uint64(src[88:]),
		FreeHigh:  le.Uint64(src[96:]),
		MemUnit:   le.Uint32(src[104:]),
	}
	return src[SizeOfSysinfo:]
}

// SizeBytes implements Marshaler.
func (*Utsname) SizeBytes() int { return SizeOfUtsname }

// MarshalBytes implements Marshaler.
func (u *Utsname) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfUtsname-1]
	copy(dst[0*UTSLen:], u.Sysname[:])
	copy(dst[1*UTSLen:], u.Nodename[:])
	copy(dst[2*UTSLen:], u.Release[:])
	copy(dst[3*UTSLen:], u.Version[:])
	copy(dst[4*UTSLen:], u.Machine[:])
	copy(dst[5*UTSLen:], u.Domainname[:])
	return dst[SizeOfUtsname:]
}

// UnmarshalBytes implements Marshaler.
func (u *Utsname) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfUtsname-1]
	copy(u.Sysname[:], src[0*UTSLen:])
	copy(u.Nodename[:], src[1*UTSLen:])
	copy(u.Release[:], src[2*UTSLen:])
	copy(u.Version[:], src[3*UTSLen:])
	copy(u.Machine[:], src[4*UTSLen:])
	copy(u.Domainname[:], src[5*UTSLen:])
	return src[SizeOfUtsname:]
}

// SizeBytes implements Marshaler.
func (*RobustListHead) SizeBytes() int { return SizeOfRobustListHead }

// MarshalBytes implements Marshaler.
func (h *RobustListHead) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfRobustListHead-1]
	le.PutUint64(dst[0:], h.List)
	le.PutUint64(dst[8:], uint64(h.FutexOffset))
	le.PutUint64(dst[16:], h.ListOpPending)
	return dst[SizeOfRobustListHead:]
}

// UnmarshalBytes implements Marshaler.
func (h *RobustListHead) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfRobustListHead-1]
	h.List = le.Uint64(src[0:])
	h.FutexOffset = int64(le.Uint64(src[8:]))
	h.ListOpPending = le.Uint64(src[16:])
	return src[SizeOfRobustListHead:]
}

func (c *CloneArgs) words() *[11]uint64 {
	return (*[11]uint64)(unsafePointer(c))
}

// SizeBytes implements Marshaler.
func (*CloneArgs) SizeBytes() int { return SizeOfCloneArgs }

// MarshalBytes implements Marshaler.
func (c *CloneArgs) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfCloneArgs-1]
	for i, w := range c.words() {
		le.PutUint64(dst[8*i:], w)
	}
	return dst[SizeOfCloneArgs:]
}

// UnmarshalBytes implements Marshaler. Callers handling clone3 with an
// older, shorter struct copy it into a zeroed SizeOfCloneArgs buffer first.
func (c *CloneArgs) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfCloneArgs-1]
	w := c.words()
	for i := range w {
		w[i] = le.Uint64(src[8*i:])
	}
	return src[SizeOfCloneArgs:]
}
