// Package p9 owns the 9P2000.L protocol used between the Sentry and the
// Gofer: the wire format of every message of the dialect, a concurrent client
// (tagged, pipelined requests over one socket, with Tflush on cancellation)
// and a server framework that maps fids onto a File interface. Messages travel
// over pkg/unet sockets, so a reply can carry a host file descriptor
// (SCM_RIGHTS), which the server uses to donate open files on Tlopen/Tlcreate.
//
// Two things go beyond 9P2000.L, both ends being ours: Twalkgetattr (a walk
// whose reply carries the attributes of the file reached, one round trip per
// lookup instead of two), and the server's promise to serve metadata
// requests in arrival order, which lets the client pipeline Twalk+Tlopen
// (ClientFile.CloneOpen).
//
// Every decoder is strict: sizes and counts are checked against the bytes
// actually present (and the negotiated msize) before anything is allocated,
// trailing bytes are an error, and no input makes the decoder panic.
package p9

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Version is the only protocol dialect spoken.
const Version = "9P2000.L"

// HeaderSize is size[4] type[1] tag[2].
const HeaderSize = 7

// MaxWalkElements is the most names a single Twalk may carry (MAXWELEM).
const MaxWalkElements = 16

// Overheads of the data-bearing messages, for bounding I/O counts by msize.
const (
	readOverhead    = HeaderSize + 4         // Rread: count[4]
	writeOverhead   = HeaderSize + 4 + 8 + 4 // Twrite: fid[4] offset[8] count[4]
	readdirOverhead = HeaderSize + 4         // Rreaddir: count[4]
)

// MsgType is the type byte of a message.
type MsgType uint8

// Message types of 9P2000.L. Each R type is its T type plus one.
const (
	MsgTlerror      MsgType = 6
	MsgRlerror      MsgType = 7
	MsgTstatfs      MsgType = 8
	MsgRstatfs      MsgType = 9
	MsgTlopen       MsgType = 12
	MsgRlopen       MsgType = 13
	MsgTlcreate     MsgType = 14
	MsgRlcreate     MsgType = 15
	MsgTsymlink     MsgType = 16
	MsgRsymlink     MsgType = 17
	MsgTmknod       MsgType = 18
	MsgRmknod       MsgType = 19
	MsgTrename      MsgType = 20
	MsgRrename      MsgType = 21
	MsgTreadlink    MsgType = 22
	MsgRreadlink    MsgType = 23
	MsgTgetattr     MsgType = 24
	MsgRgetattr     MsgType = 25
	MsgTsetattr     MsgType = 26
	MsgRsetattr     MsgType = 27
	MsgTxattrwalk   MsgType = 30
	MsgRxattrwalk   MsgType = 31
	MsgTxattrcreate MsgType = 32
	MsgRxattrcreate MsgType = 33
	MsgTreaddir     MsgType = 40
	MsgRreaddir     MsgType = 41
	MsgTfsync       MsgType = 50
	MsgRfsync       MsgType = 51
	MsgTlock        MsgType = 52
	MsgRlock        MsgType = 53
	MsgTgetlock     MsgType = 54
	MsgRgetlock     MsgType = 55
	MsgTlink        MsgType = 70
	MsgRlink        MsgType = 71
	MsgTmkdir       MsgType = 72
	MsgRmkdir       MsgType = 73
	MsgTrenameat    MsgType = 74
	MsgRrenameat    MsgType = 75
	MsgTunlinkat    MsgType = 76
	MsgRunlinkat    MsgType = 77
	MsgTversion     MsgType = 100
	MsgRversion     MsgType = 101
	MsgTauth        MsgType = 102
	MsgRauth        MsgType = 103
	MsgTattach      MsgType = 104
	MsgRattach      MsgType = 105
	MsgTflush       MsgType = 108
	MsgRflush       MsgType = 109
	MsgTwalk        MsgType = 110
	MsgRwalk        MsgType = 111
	MsgTread        MsgType = 116
	MsgRread        MsgType = 117
	MsgTwrite       MsgType = 118
	MsgRwrite       MsgType = 119
	MsgTclunk       MsgType = 120
	MsgRclunk       MsgType = 121
	MsgTremove      MsgType = 122
	MsgRremove      MsgType = 123

	// MsgTwalkgetattr is this project's extension (both ends are ours): a
	// Twalk whose reply also carries the attributes of the file reached,
	// saving the Tgetattr round trip that follows nearly every lookup.
	MsgTwalkgetattr MsgType = 130
	MsgRwalkgetattr MsgType = 131
)

// Tag identifies an outstanding request.
type Tag uint16

// NoTag is the tag of Tversion.
const NoTag Tag = 0xffff

// FID names a file on the server, chosen by the client.
type FID uint32

// NoFID means "no fid" (e.g. the afid of an unauthenticated Tattach).
const NoFID FID = 0xffffffff

// NoUID means "no uid" in n_uname fields.
const NoUID UID = 0xffffffff

// UID and GID are numeric host ids as carried on the wire.
type (
	UID uint32
	GID uint32
)

// QIDType is the type byte of a QID.
type QIDType uint8

// QID types.
const (
	QIDTypeDir     QIDType = 0x80
	QIDTypeAppend  QIDType = 0x40
	QIDTypeExcl    QIDType = 0x20
	QIDTypeMount   QIDType = 0x10
	QIDTypeAuth    QIDType = 0x08
	QIDTypeTmp     QIDType = 0x04
	QIDTypeSymlink QIDType = 0x02
	QIDTypeLink    QIDType = 0x01
	QIDTypeRegular QIDType = 0x00
)

// QID is the server's unique identity of a file.
type QID struct {
	Type    QIDType
	Version uint32
	Path    uint64
}

const qidSize = 13

// QIDTypeOfMode maps a Linux file mode to a QID type.
func QIDTypeOfMode(mode uint32) QIDType {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return QIDTypeDir
	case unix.S_IFLNK:
		return QIDTypeSymlink
	default:
		return QIDTypeRegular
	}
}

// AttrMask selects fields of Tgetattr/Rgetattr.
type AttrMask uint64

// Getattr mask bits.
const (
	AttrMode        AttrMask = 0x1
	AttrNLink       AttrMask = 0x2
	AttrUID         AttrMask = 0x4
	AttrGID         AttrMask = 0x8
	AttrRDev        AttrMask = 0x10
	AttrATime       AttrMask = 0x20
	AttrMTime       AttrMask = 0x40
	AttrCTime       AttrMask = 0x80
	AttrINo         AttrMask = 0x100
	AttrSize        AttrMask = 0x200
	AttrBlocks      AttrMask = 0x400
	AttrBTime       AttrMask = 0x800
	AttrGen         AttrMask = 0x1000
	AttrDataVersion AttrMask = 0x2000
	AttrBasic       AttrMask = 0x7ff
	AttrAll         AttrMask = 0x3fff
)

// Attr is the body of Rgetattr after the QID.
type Attr struct {
	Mode                uint32
	UID                 UID
	GID                 GID
	NLink               uint64
	RDev                uint64
	Size                uint64
	BlockSize           uint64
	Blocks              uint64
	ATimeSec, ATimeNsec uint64
	MTimeSec, MTimeNsec uint64
	CTimeSec, CTimeNsec uint64
	BTimeSec, BTimeNsec uint64
	Gen, DataVersion    uint64
}

// SetAttrMask selects fields of Tsetattr.
type SetAttrMask uint32

// Setattr mask bits.
const (
	SetAttrMode     SetAttrMask = 0x1
	SetAttrUID      SetAttrMask = 0x2
	SetAttrGID      SetAttrMask = 0x4
	SetAttrSize     SetAttrMask = 0x8
	SetAttrATime    SetAttrMask = 0x10
	SetAttrMTime    SetAttrMask = 0x20
	SetAttrCTime    SetAttrMask = 0x40
	SetAttrATimeSet SetAttrMask = 0x80 // ATime holds an explicit time (else "now")
	SetAttrMTimeSet SetAttrMask = 0x100
)

// SetAttr is the body of Tsetattr after valid.
type SetAttr struct {
	Mode                uint32
	UID                 UID
	GID                 GID
	Size                uint64
	ATimeSec, ATimeNsec uint64
	MTimeSec, MTimeNsec uint64
}

// OpenFlags are Linux open(2) flags as carried by Tlopen/Tlcreate (the
// 9P2000.L encoding coincides with x86-64 Linux).
type OpenFlags uint32

// AccessMode returns the O_ACCMODE bits.
func (f OpenFlags) AccessMode() OpenFlags { return f & unix.O_ACCMODE }

// Writable reports whether the flags open for writing or truncate.
func (f OpenFlags) Writable() bool {
	m := f.AccessMode()
	return m == unix.O_WRONLY || m == unix.O_RDWR || f&unix.O_TRUNC != 0
}

// FSStat is the body of Rstatfs.
type FSStat struct {
	Type            uint32
	BlockSize       uint32
	Blocks          uint64
	BlocksFree      uint64
	BlocksAvailable uint64
	Files           uint64
	FilesFree       uint64
	FSID            uint64
	NameLength      uint32
}

// Dirent is one Rreaddir entry. Offset is the cookie to pass to the next
// Treaddir to continue after this entry.
type Dirent struct {
	QID    QID
	Offset uint64
	Type   uint8 // DT_* value
	Name   string
}

// Lock types, flags and statuses of Tlock/Tgetlock.
const (
	LockTypeRead   uint8 = 0
	LockTypeWrite  uint8 = 1
	LockTypeUnlock uint8 = 2

	LockFlagBlock   uint32 = 1
	LockFlagReclaim uint32 = 2

	LockStatusSuccess uint8 = 0
	LockStatusBlocked uint8 = 1
	LockStatusError   uint8 = 2
	LockStatusGrace   uint8 = 3
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("p9: malformed message")

// Message is one 9P message body (without the size/type/tag header).
type Message interface {
	Type() MsgType
	encode(e *encoder)
	decode(d *decoder)
}

// fdMessage is a message that can carry a host file descriptor.
type fdMessage interface {
	Message
	file() *os.File
	setFile(*os.File)
}

type encoder struct{ buf []byte }

func (e *encoder) u8(v uint8) { e.buf = append(e.buf, v) }
func (e *encoder) u16(v uint16) {
	e.buf = binary.LittleEndian.AppendUint16(e.buf, v)
}
func (e *encoder) u32(v uint32) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, v)
}
func (e *encoder) u64(v uint64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
}

// str writes a 9P string; strings longer than 65535 bytes are cut, which the
// peer then rejects as a bad name rather than misparsing the stream.
func (e *encoder) str(s string) {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	e.u16(uint16(len(s)))
	e.buf = append(e.buf, s...)
}
func (e *encoder) qid(q QID) {
	e.u8(uint8(q.Type))
	e.u32(q.Version)
	e.u64(q.Path)
}

// decoder reads from buf; after the first short read every accessor returns
// zero values and err is set, so message decoders need no error plumbing.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf) {
		d.err = fmt.Errorf("%w: need %d bytes, have %d", ErrMalformed, n, len(d.buf))
		d.buf = nil
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}
func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}
func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}
func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}
func (d *decoder) str() string {
	n := d.u16()
	return string(d.take(int(n)))
}
func (d *decoder) qid() QID {
	return QID{Type: QIDType(d.u8()), Version: d.u32(), Path: d.u64()}
}

// count reads a 32-bit length and checks it against the bytes present before
// the caller allocates or slices anything.
func (d *decoder) count(elemSize int) int {
	n := d.u32()
	if d.err == nil && uint64(n)*uint64(elemSize) > uint64(len(d.buf)) {
		d.err = fmt.Errorf("%w: count %d exceeds %d remaining bytes", ErrMalformed, n, len(d.buf))
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

// newMessage returns an empty message of type t, or nil for an unknown type.
func newMessage(t MsgType) Message {
	switch t {
	case MsgRlerror:
		return &Rlerror{}
	case MsgTstatfs:
		return &Tstatfs{}
	case MsgRstatfs:
		return &Rstatfs{}
	case MsgTlopen:
		return &Tlopen{}
	case MsgRlopen:
		return &Rlopen{}
	case MsgTlcreate:
		return &Tlcreate{}
	case MsgRlcreate:
		return &Rlcreate{}
	case MsgTsymlink:
		return &Tsymlink{}
	case MsgRsymlink:
		return &Rsymlink{}
	case MsgTmknod:
		return &Tmknod{}
	case MsgRmknod:
		return &Rmknod{}
	case MsgTrename:
		return &Trename{}
	case MsgRrename:
		return &Rrename{}
	case MsgTreadlink:
		return &Treadlink{}
	case MsgRreadlink:
		return &Rreadlink{}
	case MsgTgetattr:
		return &Tgetattr{}
	case MsgRgetattr:
		return &Rgetattr{}
	case MsgTsetattr:
		return &Tsetattr{}
	case MsgRsetattr:
		return &Rsetattr{}
	case MsgTxattrwalk:
		return &Txattrwalk{}
	case MsgRxattrwalk:
		return &Rxattrwalk{}
	case MsgTxattrcreate:
		return &Txattrcreate{}
	case MsgRxattrcreate:
		return &Rxattrcreate{}
	case MsgTreaddir:
		return &Treaddir{}
	case MsgRreaddir:
		return &Rreaddir{}
	case MsgTfsync:
		return &Tfsync{}
	case MsgRfsync:
		return &Rfsync{}
	case MsgTlock:
		return &Tlock{}
	case MsgRlock:
		return &Rlock{}
	case MsgTgetlock:
		return &Tgetlock{}
	case MsgRgetlock:
		return &Rgetlock{}
	case MsgTlink:
		return &Tlink{}
	case MsgRlink:
		return &Rlink{}
	case MsgTmkdir:
		return &Tmkdir{}
	case MsgRmkdir:
		return &Rmkdir{}
	case MsgTrenameat:
		return &Trenameat{}
	case MsgRrenameat:
		return &Rrenameat{}
	case MsgTunlinkat:
		return &Tunlinkat{}
	case MsgRunlinkat:
		return &Runlinkat{}
	case MsgTversion:
		return &Tversion{}
	case MsgRversion:
		return &Rversion{}
	case MsgTauth:
		return &Tauth{}
	case MsgRauth:
		return &Rauth{}
	case MsgTattach:
		return &Tattach{}
	case MsgRattach:
		return &Rattach{}
	case MsgTflush:
		return &Tflush{}
	case MsgRflush:
		return &Rflush{}
	case MsgTwalk:
		return &Twalk{}
	case MsgRwalk:
		return &Rwalk{}
	case MsgTwalkgetattr:
		return &Twalkgetattr{}
	case MsgRwalkgetattr:
		return &Rwalkgetattr{}
	case MsgTread:
		return &Tread{}
	case MsgRread:
		return &Rread{}
	case MsgTwrite:
		return &Twrite{}
	case MsgRwrite:
		return &Rwrite{}
	case MsgTclunk:
		return &Tclunk{}
	case MsgRclunk:
		return &Rclunk{}
	case MsgTremove:
		return &Tremove{}
	case MsgRremove:
		return &Rremove{}
	}
	return nil
}

// DecodeMessage parses a message body of type t. It is the entry point of the
// fuzz targets and of both ends of a connection.
func DecodeMessage(t MsgType, body []byte) (Message, error) {
	m := newMessage(t)
	if m == nil {
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, t)
	}
	if err := decodeInto(m, body); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeInto(m Message, body []byte) error {
	var d decoder
	return decodeWith(&d, m, body)
}

// decodeWith decodes using caller-owned scratch d, which (being reached
// through an interface call) would otherwise be a heap allocation per message.
func decodeWith(d *decoder, m Message, body []byte) error {
	*d = decoder{buf: body}
	m.decode(d)
	if d.err != nil {
		return fmt.Errorf("decoding %T: %w", m, d.err)
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("decoding %T: %w: %d trailing bytes", m, ErrMalformed, len(d.buf))
	}
	return nil
}

// EncodeMessage appends the full wire form (header included) of m to buf.
func EncodeMessage(buf []byte, tag Tag, m Message) []byte {
	var e encoder
	return encodeWith(&e, buf, tag, m)
}

// encodeWith is EncodeMessage with caller-owned scratch e (see decodeWith).
func encodeWith(e *encoder, buf []byte, tag Tag, m Message) []byte {
	start := len(buf)
	e.buf = append(buf, 0, 0, 0, 0, uint8(m.Type()), 0, 0)
	binary.LittleEndian.PutUint16(e.buf[start+5:], uint16(tag))
	m.encode(e)
	binary.LittleEndian.PutUint32(e.buf[start:], uint32(len(e.buf)-start))
	out := e.buf
	e.buf = nil
	return out
}

func asErrno(err error, target *unix.Errno) bool { return errors.As(err, target) }
