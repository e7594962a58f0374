package linux

// Stat is struct stat on amd64 (asm/stat.h), what stat(2), fstat(2),
// lstat(2) and newfstatat(2) write.
type Stat struct {
	Dev     uint64
	Ino     uint64
	Nlink   uint64
	Mode    uint32
	UID     uint32
	GID     uint32
	_       int32
	Rdev    uint64
	Size    int64
	Blksize int64
	Blocks  int64
	ATime   Timespec
	MTime   Timespec
	CTime   Timespec
	_       [3]int64
}

// StatxTimestamp is struct statx_timestamp.
type StatxTimestamp struct {
	Sec  int64
	Nsec uint32
	_    int32
}

// Statx is struct statx, what statx(2) writes. Spare space at the end is
// zero; newer kernels define fields there, which a zero Mask bit tells the
// application not to trust.
type Statx struct {
	Mask           uint32
	Blksize        uint32
	Attributes     uint64
	Nlink          uint32
	UID            uint32
	GID            uint32
	Mode           uint16
	_              uint16
	Ino            uint64
	Size           uint64
	Blocks         uint64
	AttributesMask uint64
	ATime          StatxTimestamp
	BTime          StatxTimestamp
	CTime          StatxTimestamp
	MTime          StatxTimestamp
	RdevMajor      uint32
	RdevMinor      uint32
	DevMajor       uint32
	DevMinor       uint32
	MntID          uint64
	DioMemAlign    uint32
	DioOffsetAlign uint32
	_              [12]uint64
}

// OpenHow is struct open_how, the argument of openat2(2).
type OpenHow struct {
	Flags   uint64
	Mode    uint64
	Resolve uint64
}

// Dirent64 is the fixed header of struct linux_dirent64, which getdents64(2)
// writes; the NUL-terminated name follows at offset SizeOfDirent64Header and
// Reclen covers header, name and padding to 8 bytes. The Go struct is padded
// to 24 bytes; only its first 19 are the ABI, hence the Marshal methods.
type Dirent64 struct {
	Ino    uint64
	Off    int64
	Reclen uint16
	Type   uint8
}

// Pollfd is struct pollfd.
type Pollfd struct {
	Fd      int32
	Events  int16
	Revents int16
}

// EpollEvent is struct epoll_event, which is packed on amd64 (and only there):
// the 64-bit data field sits at offset 4 and the struct is 12 bytes. Data is
// kept as two 32-bit halves so Go lays it out the same way.
type EpollEvent struct {
	Events uint32
	Data   [2]uint32
}

// Iovec is struct iovec.
type Iovec struct {
	Base uint64
	Len  uint64
}

// Struct sizes.
const (
	SizeOfStat           = 144
	SizeOfStatxTimestamp = 16
	SizeOfStatx          = 256
	SizeOfOpenHow        = 24
	SizeOfDirent64Header = 19
	SizeOfPollfd         = 8
	SizeOfEpollEvent     = 12
	SizeOfIovec          = 16
)

// DataUint64 returns the event's 64-bit user data.
func (e *EpollEvent) DataUint64() uint64 {
	return uint64(e.Data[0]) | uint64(e.Data[1])<<32
}

// SetDataUint64 sets the event's 64-bit user data.
func (e *EpollEvent) SetDataUint64(v uint64) {
	e.Data[0] = uint32(v)
	e.Data[1] = uint32(v >> 32)
}

// SizeBytes implements Marshaler.
func (*Stat) SizeBytes() int { return SizeOfStat }

// MarshalBytes implements Marshaler.
func (s *Stat) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfStat-1]
	le.PutUint64(dst[0:], s.Dev)
	le.PutUint64(dst[8:], s.Ino)
	le.PutUint64(dst[16:], s.Nlink)
	le.PutUint32(dst[24:], s.Mode)
	le.PutUint32(dst[28:], s.UID)
	le.PutUint32(dst[32:], s.GID)
	le.PutUint32(dst[36:], 0)
	le.PutUint64(dst[40:], s.Rdev)
	le.PutUint64(dst[48:], uint64(s.Size))
	le.PutUint64(dst[56:], uint64(s.Blksize))
	le.PutUint64(dst[64:], uint64(s.Blocks))
	s.ATime.MarshalBytes(dst[72:])
	s.MTime.MarshalBytes(dst[88:])
	s.CTime.MarshalBytes(dst[104:])
	clear(dst[120:SizeOfStat])
	return dst[SizeOfStat:]
}

// UnmarshalBytes implements Marshaler.
func (s *Stat) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfStat-1]
	*s = Stat{
		Dev:     le.Uint64(src[0:]),
		Ino:     le.Uint64(src[8:]),
		Nlink:   le.Uint64(src[16:]),
		Mode:    le.Uint32(src[24:]),
		UID:     le.Uint32(src[28:]),
		GID:     le.Uint32(src[32:]),
		Rdev:    le.Uint64(src[40:]),
		Size:    int64(le.Uint64(src[48:])),
		Blksize: int64(le.Uint64(src[56:])),
		Blocks:  int64(le.Uint64(src[64:])),
	}
	s.ATime.UnmarshalBytes(src[72:])
	s.MTime.UnmarshalBytes(src[88:])
	s.CTime.UnmarshalBytes(src[104:])
	return src[SizeOfStat:]
}

// SizeBytes implements Marshaler.
func (*StatxTimestamp) SizeBytes() int { return SizeOfStatxTimestamp }

// MarshalBytes implements Marshaler.
func (t *StatxTimestamp) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfStatxTimestamp-1]
	le.PutUint64(dst[0:], uint64(t.Sec))
	le.PutUint32(dst[8:], t.Nsec)
	le.PutUint32(dst[12:], 0)
	return dst[SizeOfStatxTimestamp:]
}

// UnmarshalBytes implements Marshaler.
func (t *StatxTimestamp) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfStatxTimestamp-1]
	*t = StatxTimestamp{Sec: int64(le.Uint64(src[0:])), Nsec: le.Uint32(src[8:])}
	return src[SizeOfStatxTimestamp:]
}

// SizeBytes implements Marshaler.
func (*Statx) SizeBytes() int { return SizeOfStatx }

// MarshalBytes implements Marshaler.
func (s *Statx) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfStatx-1]
	le.PutUint32(dst[0:], s.Mask)
	le.PutUint32(dst[4:], s.Blksize)
	le.PutUint64(dst[8:], s.Attributes)
	le.PutUint32(dst[16:], s.Nlink)
	le.PutUint32(dst[20:], s.UID)
	le.PutUint32(dst[24:], s.GID)
	le.PutUint16(dst[28:], s.Mode)
	le.PutUint16(dst[30:], 0)
	le.PutUint64(dst[32:], s.Ino)
	le.PutUint64(dst[40:], s.Size)
	le.PutUint64(dst[48:], s.Blocks)
	le.PutUint64(dst[56:], s.AttributesMask)
	s.ATime.MarshalBytes(dst[64:])
	s.BTime.MarshalBytes(dst[80:])
	s.CTime.MarshalBytes(dst[96:])
	s.MTime.MarshalBytes(dst[112:])
	le.PutUint32(dst[128:], s.RdevMajor)
	le.PutUint32(dst[132:], s.RdevMinor)
	le.PutUint32(dst[136:], s.DevMajor)
	le.PutUint32(dst[140:], s.DevMinor)
	le.PutUint64(dst[144:], s.MntID)
	le.PutUint32(dst[152:], s.DioMemAlign)
	le.PutUint32(dst[156:], s.DioOffsetAlign)
	clear(dst[160:SizeOfStatx])
	return dst[SizeOfStatx:]
}

// UnmarshalBytes implements Marshaler.
func (s *Statx) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfStatx-1]
	*s = Statx{
		Mask:           le.Uint32(src[0:]),
		Blksize:        le.Uint32(src[4:]),
		Attributes:     le.Uint64(src[8:]),
		Nlink:          le.Uint32(src[16:]),
		UID:            le.Uint32(src[20:]),
		GID:            le.Uint32(src[24:]),
		Mode:           le.Uint16(src[28:]),
		Ino:            le.Uint64(src[32:]),
		Size:           le.Uint64(src[40:]),
		Blocks:         le.Uint64(src[48:]),
		AttributesMask: le.Uint64(src[56:]),
		RdevMajor:      le.Uint32(src[128:]),
		RdevMinor:      le.Uint32(src[132:]),
		DevMajor:       le.Uint32(src[136:]),
		DevMinor:       le.Uint32(src[140:]),
		MntID:          le.Uint64(src[144:]),
		DioMemAlign:    le.Uint32(src[152:]),
		DioOffsetAlign: le.Uint32(src[156:]),
	}
	s.ATime.UnmarshalBytes(src[64:])
	s.BTime.UnmarshalBytes(src[80:])
	s.CTime.UnmarshalBytes(src[96:])
	s.MTime.UnmarshalBytes(src[112:])
	return src[SizeOfStatx:]
}

// SizeBytes implements Marshaler.
func (*OpenHow) SizeBytes() int { return SizeOfOpenHow }

// MarshalBytes implements Marshaler.
func (h *OpenHow) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfOpenHow-1]
	le.PutUint64(dst[0:], h.Flags)
	le.PutUint64(dst[8:], h.Mode)
	le.PutUint64(dst[16:], h.Resolve)
	return dst[SizeOfOpenHow:]
}

// UnmarshalBytes implements Marshaler.
func (h *OpenHow) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfOpenHow-1]
	h.Flags = le.Uint64(src[0:])
	h.Mode = le.Uint64(src[8:])
	h.Resolve = le.Uint64(src[16:])
	return src[SizeOfOpenHow:]
}

// SizeBytes implements Marshaler; it is the header size, 19, not the Go
// struct's 24.
func (*Dirent64) SizeBytes() int { return SizeOfDirent64Header }

// MarshalBytes implements Marshaler.
func (d *Dirent64) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfDirent64Header-1]
	le.PutUint64(dst[0:], d.Ino)
	le.PutUint64(dst[8:], uint64(d.Off))
	le.PutUint16(dst[16:], d.Reclen)
	dst[18] = d.Type
	return dst[SizeOfDirent64Header:]
}

// UnmarshalBytes implements Marshaler.
func (d *Dirent64) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfDirent64Header-1]
	d.Ino = le.Uint64(src[0:])
	d.Off = int64(le.Uint64(src[8:]))
	d.Reclen = le.Uint16(src[16:])
	d.Type = src[18]
	return src[SizeOfDirent64Header:]
}

// Dirent64RecordLen returns d_reclen for an entry with a name of nameLen
// bytes: header, name, NUL, rounded up to 8.
func Dirent64RecordLen(nameLen int) int {
	return (SizeOfDirent64Header + nameLen + 1 + 7) &^ 7
}

// SizeBytes implements Marshaler.
func (*Pollfd) SizeBytes() int { return SizeOfPollfd }

// MarshalBytes implements Marshaler.
func (p *Pollfd) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfPollfd-1]
	le.PutUint32(dst[0:], uint32(p.Fd))
	le.PutUint16(dst[4:], uint16(p.Events))
	le.PutUint16(dst[6:], uint16(p.Revents))
	return dst[SizeOfPollfd:]
}

// UnmarshalBytes implements Marshaler.
func (p *Pollfd) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfPollfd-1]
	p.Fd = int32(le.Uint32(src[0:]))
	p.Events = int16(le.Uint16(src[4:]))
	p.Revents = int16(le.Uint16(src[6:]))
	return src[SizeOfPollfd:]
}

// SizeBytes implements Marshaler.
func (*EpollEvent) SizeBytes() int { return SizeOfEpollEvent }

// MarshalBytes implements Marshaler.
func (e *EpollEvent) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfEpollEvent-1]
	le.PutUint32(dst[0:], e.Events)
	le.PutUint32(dst[4:], e.Data[0])
	le.PutUint32(dst[8:], e.Data[1])
	return dst[SizeOfEpollEvent:]
}

// UnmarshalBytes implements Marshaler.
func (e *EpollEvent) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfEpollEvent-1]
	e.Events = le.Uint32(src[0:])
	e.Data[0] = le.Uint32(src[4:])
	e.Data[1] = le.Uint32(src[8:])
	return src[SizeOfEpollEvent:]
}

// SizeBytes implements Marshaler.
func (*Iovec) SizeBytes() int { return SizeOfIovec }

// MarshalBytes implements Marshaler.
func (v *Iovec) MarshalBytes(dst []byte) []byte {
	_ = dst[SizeOfIovec-1]
	le.PutUint64(dst[0:], v.Base)
	le.PutUint64(dst[8:], v.Len)
	return dst[SizeOfIovec:]
}

// UnmarshalBytes implements Marshaler.
func (v *Iovec) UnmarshalBytes(src []byte) []byte {
	_ = src[SizeOfIovec-1]
	v.Base = le.Uint64(src[0:])
	v.Len = le.Uint64(src[8:])
	return src[SizeOfIovec:]
}

// UIO_MAXIOV is the most iovecs readv(2) and friends accept.
const UIO_MAXIOV = 1024
