package p9

import (
	"os"

	"golang.org/x/sys/unix"
)

// Rlerror carries a Linux errno in reply to any failed request.
type Rlerror struct{ Error uint32 }

func (*Rlerror) Type() MsgType       { return MsgRlerror }
func (m *Rlerror) encode(e *encoder) { e.u32(m.Error) }
func (m *Rlerror) decode(d *decoder) { m.Error = d.u32() }

// Tversion negotiates the maximum message size and the dialect.
type Tversion struct {
	MSize   uint32
	Version string
}

func (*Tversion) Type() MsgType { return MsgTversion }
func (m *Tversion) encode(e *encoder) {
	e.u32(m.MSize)
	e.str(m.Version)
}
func (m *Tversion) decode(d *decoder) {
	m.MSize = d.u32()
	m.Version = d.str()
}

// Rversion answers Tversion.
type Rversion struct {
	MSize   uint32
	Version string
}

func (*Rversion) Type() MsgType { return MsgRversion }
func (m *Rversion) encode(e *encoder) {
	e.u32(m.MSize)
	e.str(m.Version)
}
func (m *Rversion) decode(d *decoder) {
	m.MSize = d.u32()
	m.Version = d.str()
}

// Tauth requests an authentication fid.
type Tauth struct {
	AuthFID    FID
	UserName   string
	AttachName string
	UID        UID
}

func (*Tauth) Type() MsgType { return MsgTauth }
func (m *Tauth) encode(e *encoder) {
	e.u32(uint32(m.AuthFID))
	e.str(m.UserName)
	e.str(m.AttachName)
	e.u32(uint32(m.UID))
}
func (m *Tauth) decode(d *decoder) {
	m.AuthFID = FID(d.u32())
	m.UserName = d.str()
	m.AttachName = d.str()
	m.UID = UID(d.u32())
}

// Rauth answers Tauth.
type Rauth struct{ QID QID }

func (*Rauth) Type() MsgType       { return MsgRauth }
func (m *Rauth) encode(e *encoder) { e.qid(m.QID) }
func (m *Rauth) decode(d *decoder) { m.QID = d.qid() }

// Tattach binds FID to the root of the tree named AttachName.
type Tattach struct {
	FID        FID
	AuthFID    FID
	UserName   string
	AttachName string
	UID        UID
}

func (*Tattach) Type() MsgType { return MsgTattach }
func (m *Tattach) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u32(uint32(m.AuthFID))
	e.str(m.UserName)
	e.str(m.AttachName)
	e.u32(uint32(m.UID))
}
func (m *Tattach) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.AuthFID = FID(d.u32())
	m.UserName = d.str()
	m.AttachName = d.str()
	m.UID = UID(d.u32())
}

// Rattach answers Tattach.
type Rattach struct{ QID QID }

func (*Rattach) Type() MsgType       { return MsgRattach }
func (m *Rattach) encode(e *encoder) { e.qid(m.QID) }
func (m *Rattach) decode(d *decoder) { m.QID = d.qid() }

// Tflush asks the server to abandon the request OldTag.
type Tflush struct{ OldTag Tag }

func (*Tflush) Type() MsgType       { return MsgTflush }
func (m *Tflush) encode(e *encoder) { e.u16(uint16(m.OldTag)) }
func (m *Tflush) decode(d *decoder) { m.OldTag = Tag(d.u16()) }

// Rflush answers Tflush once OldTag has been answered or abandoned.
type Rflush struct{}

func (*Rflush) Type() MsgType   { return MsgRflush }
func (*Rflush) encode(*encoder) {}
func (*Rflush) decode(*decoder) {}

// Twalk walks Names from FID and binds the result to NewFID. An empty walk
// clones FID.
type Twalk struct {
	FID    FID
	NewFID FID
	Names  []string
}

func (*Twalk) Type() MsgType { return MsgTwalk }
func (m *Twalk) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u32(uint32(m.NewFID))
	e.u16(uint16(len(m.Names)))
	for _, n := range m.Names {
		e.str(n)
	}
}
func (m *Twalk) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.NewFID = FID(d.u32())
	n := int(d.u16())
	if n > MaxWalkElements {
		d.fail("walk of %d names exceeds %d", n, MaxWalkElements)
		return
	}
	if n*2 > len(d.buf) {
		d.fail("walk of %d names in %d bytes", n, len(d.buf))
		return
	}
	m.Names = make([]string, n)
	for i := range m.Names {
		m.Names[i] = d.str()
	}
}

// Rwalk answers Twalk with the QIDs of the names walked.
type Rwalk struct{ QIDs []QID }

func (*Rwalk) Type() MsgType { return MsgRwalk }
func (m *Rwalk) encode(e *encoder) {
	e.u16(uint16(len(m.QIDs)))
	for _, q := range m.QIDs {
		e.qid(q)
	}
}
func (m *Rwalk) decode(d *decoder) {
	n := int(d.u16())
	if n > MaxWalkElements {
		d.fail("walk reply of %d qids exceeds %d", n, MaxWalkElements)
		return
	}
	if n*qidSize > len(d.buf) {
		d.fail("walk reply of %d qids in %d bytes", n, len(d.buf))
		return
	}
	m.QIDs = make([]QID, n)
	for i := range m.QIDs {
		m.QIDs[i] = d.qid()
	}
}

// Tread reads Count bytes at Offset from an open fid (or an xattr fid).
type Tread struct {
	FID    FID
	Offset uint64
	Count  uint32
}

func (*Tread) Type() MsgType { return MsgTread }
func (m *Tread) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u64(m.Offset)
	e.u32(m.Count)
}
func (m *Tread) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Offset = d.u64()
	m.Count = d.u32()
}

// Rread answers Tread. When decoding, if Data already has room for the
// payload it is filled in place (the client points it at the caller's buffer);
// otherwise a copy is allocated.
type Rread struct{ Data []byte }

func (*Rread) Type() MsgType { return MsgRread }
func (m *Rread) encode(e *encoder) {
	e.u32(uint32(len(m.Data)))
	e.buf = append(e.buf, m.Data...)
}
func (m *Rread) decode(d *decoder) {
	n := d.count(1)
	b := d.take(n)
	if d.err != nil {
		return
	}
	if cap(m.Data) >= n {
		m.Data = m.Data[:n]
		copy(m.Data, b)
	} else {
		m.Data = append([]byte(nil), b...)
	}
}

// Twrite writes Data at Offset to an open fid (or an xattr-create fid).
type Twrite struct {
	FID    FID
	Offset uint64
	Data   []byte
}

func (*Twrite) Type() MsgType { return MsgTwrite }
func (m *Twrite) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u64(m.Offset)
	e.u32(uint32(len(m.Data)))
	e.buf = append(e.buf, m.Data...)
}

// decode aliases the receive buffer: the server owns it for the request's life.
func (m *Twrite) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Offset = d.u64()
	n := d.count(1)
	m.Data = d.take(n)
}

// Rwrite answers Twrite.
type Rwrite struct{ Count uint32 }

func (*Rwrite) Type() MsgType       { return MsgRwrite }
func (m *Rwrite) encode(e *encoder) { e.u32(m.Count) }
func (m *Rwrite) decode(d *decoder) { m.Count = d.u32() }

// Tclunk forgets FID.
type Tclunk struct{ FID FID }

func (*Tclunk) Type() MsgType       { return MsgTclunk }
func (m *Tclunk) encode(e *encoder) { e.u32(uint32(m.FID)) }
func (m *Tclunk) decode(d *decoder) { m.FID = FID(d.u32()) }

// Rclunk answers Tclunk.
type Rclunk struct{}

func (*Rclunk) Type() MsgType   { return MsgRclunk }
func (*Rclunk) encode(*encoder) {}
func (*Rclunk) decode(*decoder) {}

// Tremove removes the file FID names and clunks FID (even on failure).
type Tremove struct{ FID FID }

func (*Tremove) Type() MsgType       { return MsgTremove }
func (m *Tremove) encode(e *encoder) { e.u32(uint32(m.FID)) }
func (m *Tremove) decode(d *decoder) { m.FID = FID(d.u32()) }

// Rremove answers Tremove.
type Rremove struct{}

func (*Rremove) Type() MsgType   { return MsgRremove }
func (*Rremove) encode(*encoder) {}
func (*Rremove) decode(*decoder) {}

// Tstatfs asks for the statistics of FID's filesystem.
type Tstatfs struct{ FID FID }

func (*Tstatfs) Type() MsgType       { return MsgTstatfs }
func (m *Tstatfs) encode(e *encoder) { e.u32(uint32(m.FID)) }
func (m *Tstatfs) decode(d *decoder) { m.FID = FID(d.u32()) }

// Rstatfs answers Tstatfs.
type Rstatfs struct{ FSStat FSStat }

func (*Rstatfs) Type() MsgType { return MsgRstatfs }
func (m *Rstatfs) encode(e *encoder) {
	s := &m.FSStat
	e.u32(s.Type)
	e.u32(s.BlockSize)
	e.u64(s.Blocks)
	e.u64(s.BlocksFree)
	e.u64(s.BlocksAvailable)
	e.u64(s.Files)
	e.u64(s.FilesFree)
	e.u64(s.FSID)
	e.u32(s.NameLength)
}
func (m *Rstatfs) decode(d *decoder) {
	s := &m.FSStat
	s.Type = d.u32()
	s.BlockSize = d.u32()
	s.Blocks = d.u64()
	s.BlocksFree = d.u64()
	s.BlocksAvailable = d.u64()
	s.Files = d.u64()
	s.FilesFree = d.u64()
	s.FSID = d.u64()
	s.NameLength = d.u32()
}

// Tlopen opens FID with Linux open flags.
type Tlopen struct {
	FID   FID
	Flags OpenFlags
}

func (*Tlopen) Type() MsgType { return MsgTlopen }
func (m *Tlopen) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u32(uint32(m.Flags))
}
func (m *Tlopen) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Flags = OpenFlags(d.u32())
}

// Rlopen answers Tlopen. File, when not nil, is a host descriptor for the
// opened file passed alongside the message (SCM_RIGHTS); it is not part of the
// byte encoding.
type Rlopen struct {
	QID    QID
	IOUnit uint32
	File   *os.File
}

func (*Rlopen) Type() MsgType { return MsgRlopen }
func (m *Rlopen) encode(e *encoder) {
	e.qid(m.QID)
	e.u32(m.IOUnit)
}
func (m *Rlopen) decode(d *decoder) {
	m.QID = d.qid()
	m.IOUnit = d.u32()
}
func (m *Rlopen) file() *os.File     { return m.File }
func (m *Rlopen) setFile(f *os.File) { m.File = f }

// Tlcreate creates and opens Name in directory FID; FID then names the new
// file.
type Tlcreate struct {
	FID   FID
	Name  string
	Flags OpenFlags
	Mode  uint32
	GID   GID
}

func (*Tlcreate) Type() MsgType { return MsgTlcreate }
func (m *Tlcreate) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.str(m.Name)
	e.u32(uint32(m.Flags))
	e.u32(m.Mode)
	e.u32(uint32(m.GID))
}
func (m *Tlcreate) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Name = d.str()
	m.Flags = OpenFlags(d.u32())
	m.Mode = d.u32()
	m.GID = GID(d.u32())
}

// Rlcreate answers Tlcreate; File as in Rlopen.
type Rlcreate struct {
	QID    QID
	IOUnit uint32
	File   *os.File
}

func (*Rlcreate) Type() MsgType { return MsgRlcreate }
func (m *Rlcreate) encode(e *encoder) {
	e.qid(m.QID)
	e.u32(m.IOUnit)
}
func (m *Rlcreate) decode(d *decoder) {
	m.QID = d.qid()
	m.IOUnit = d.u32()
}
func (m *Rlcreate) file() *os.File     { return m.File }
func (m *Rlcreate) setFile(f *os.File) { m.File = f }

// Tsymlink creates symlink Name -> Target in directory FID.
type Tsymlink struct {
	FID    FID
	Name   string
	Target string
	GID    GID
}

func (*Tsymlink) Type() MsgType { return MsgTsymlink }
func (m *Tsymlink) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.str(m.Name)
	e.str(m.Target)
	e.u32(uint32(m.GID))
}
func (m *Tsymlink) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Name = d.str()
	m.Target = d.str()
	m.GID = GID(d.u32())
}

// Rsymlink answers Tsymlink.
type Rsymlink struct{ QID QID }

func (*Rsymlink) Type() MsgType       { return MsgRsymlink }
func (m *Rsymlink) encode(e *encoder) { e.qid(m.QID) }
func (m *Rsymlink) decode(d *decoder) { m.QID = d.qid() }

// Tmknod creates a device, FIFO or socket node Name in directory DirFID.
type Tmknod struct {
	DirFID FID
	Name   string
	Mode   uint32
	Major  uint32
	Minor  uint32
	GID    GID
}

func (*Tmknod) Type() MsgType { return MsgTmknod }
func (m *Tmknod) encode(e *encoder) {
	e.u32(uint32(m.DirFID))
	e.str(m.Name)
	e.u32(m.Mode)
	e.u32(m.Major)
	e.u32(m.Minor)
	e.u32(uint32(m.GID))
}
func (m *Tmknod) decode(d *decoder) {
	m.DirFID = FID(d.u32())
	m.Name = d.str()
	m.Mode = d.u32()
	m.Major = d.u32()
	m.Minor = d.u32()
	m.GID = GID(d.u32())
}

// Rmknod answers Tmknod.
type Rmknod struct{ QID QID }

func (*Rmknod) Type() MsgType       { return MsgRmknod }
func (m *Rmknod) encode(e *encoder) { e.qid(m.QID) }
func (m *Rmknod) decode(d *decoder) { m.QID = d.qid() }

// Trename moves the file FID names to Name in directory DirFID.
type Trename struct {
	FID    FID
	DirFID FID
	Name   string
}

func (*Trename) Type() MsgType { return MsgTrename }
func (m *Trename) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u32(uint32(m.DirFID))
	e.str(m.Name)
}
func (m *Trename) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.DirFID = FID(d.u32())
	m.Name = d.str()
}

// Rrename answers Trename.
type Rrename struct{}

func (*Rrename) Type() MsgType   { return MsgRrename }
func (*Rrename) encode(*encoder) {}
func (*Rrename) decode(*decoder) {}

// Treadlink reads the target of symlink FID.
type Treadlink struct{ FID FID }

func (*Treadlink) Type() MsgType       { return MsgTreadlink }
func (m *Treadlink) encode(e *encoder) { e.u32(uint32(m.FID)) }
func (m *Treadlink) decode(d *decoder) { m.FID = FID(d.u32()) }

// Rreadlink answers Treadlink.
type Rreadlink struct{ Target string }

func (*Rreadlink) Type() MsgType       { return MsgRreadlink }
func (m *Rreadlink) encode(e *encoder) { e.str(m.Target) }
func (m *Rreadlink) decode(d *decoder) { m.Target = d.str() }

// Twalkgetattr is Twalk followed, if every name was walked, by Tgetattr of
// Mask on the new fid, in one round trip.
type Twalkgetattr struct {
	Walk Twalk
	Mask AttrMask
}

func (*Twalkgetattr) Type() MsgType { return MsgTwalkgetattr }
func (m *Twalkgetattr) encode(e *encoder) {
	m.Walk.encode(e)
	e.u64(uint64(m.Mask))
}
func (m *Twalkgetattr) decode(d *decoder) {
	m.Walk.decode(d)
	m.Mask = AttrMask(d.u64())
}

// Rwalkgetattr answers Twalkgetattr: the QIDs of the names walked and, when
// there is one for each name (the new fid exists), the attributes of the
// last; otherwise Attr is zero.
type Rwalkgetattr struct {
	Walk Rwalk
	Attr Rgetattr
}

func (*Rwalkgetattr) Type() MsgType { return MsgRwalkgetattr }
func (m *Rwalkgetattr) encode(e *encoder) {
	m.Walk.encode(e)
	m.Attr.encode(e)
}
func (m *Rwalkgetattr) decode(d *decoder) {
	m.Walk.decode(d)
	m.Attr.decode(d)
}

// Tgetattr asks for the attributes in Mask of FID.
type Tgetattr struct {
	FID  FID
	Mask AttrMask
}

func (*Tgetattr) Type() MsgType { return MsgTgetattr }
func (m *Tgetattr) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u64(uint64(m.Mask))
}
func (m *Tgetattr) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Mask = AttrMask(d.u64())
}

// Rgetattr answers Tgetattr; Valid says which fields of Attr are meaningful.
type Rgetattr struct {
	Valid AttrMask
	QID   QID
	Attr  Attr
}

func (*Rgetattr) Type() MsgType { return MsgRgetattr }
func (m *Rgetattr) encode(e *encoder) {
	a := &m.Attr
	e.u64(uint64(m.Valid))
	e.qid(m.QID)
	e.u32(a.Mode)
	e.u32(uint32(a.UID))
	e.u32(uint32(a.GID))
	e.u64(a.NLink)
	e.u64(a.RDev)
	e.u64(a.Size)
	e.u64(a.BlockSize)
	e.u64(a.Blocks)
	e.u64(a.ATimeSec)
	e.u64(a.ATimeNsec)
	e.u64(a.MTimeSec)
	e.u64(a.MTimeNsec)
	e.u64(a.CTimeSec)
	e.u64(a.CTimeNsec)
	e.u64(a.BTimeSec)
	e.u64(a.BTimeNsec)
	e.u64(a.Gen)
	e.u64(a.DataVersion)
}
func (m *Rgetattr) decode(d *decoder) {
	a := &m.Attr
	m.Valid = AttrMask(d.u64())
	m.QID = d.qid()
	a.Mode = d.u32()
	a.UID = UID(d.u32())
	a.GID = GID(d.u32())
	a.NLink = d.u64()
	a.RDev = d.u64()
	a.Size = d.u64()
	a.BlockSize = d.u64()
	a.Blocks = d.u64()
	a.ATimeSec = d.u64()
	a.ATimeNsec = d.u64()
	a.MTimeSec = d.u64()
	a.MTimeNsec = d.u64()
	a.CTimeSec = d.u64()
	a.CTimeNsec = d.u64()
	a.BTimeSec = d.u64()
	a.BTimeNsec = d.u64()
	a.Gen = d.u64()
	a.DataVersion = d.u64()
}

// Tsetattr changes the attributes in Valid of FID.
type Tsetattr struct {
	FID   FID
	Valid SetAttrMask
	Attr  SetAttr
}

func (*Tsetattr) Type() MsgType { return MsgTsetattr }
func (m *Tsetattr) encode(e *encoder) {
	a := &m.Attr
	e.u32(uint32(m.FID))
	e.u32(uint32(m.Valid))
	e.u32(a.Mode)
	e.u32(uint32(a.UID))
	e.u32(uint32(a.GID))
	e.u64(a.Size)
	e.u64(a.ATimeSec)
	e.u64(a.ATimeNsec)
	e.u64(a.MTimeSec)
	e.u64(a.MTimeNsec)
}
func (m *Tsetattr) decode(d *decoder) {
	a := &m.Attr
	m.FID = FID(d.u32())
	m.Valid = SetAttrMask(d.u32())
	a.Mode = d.u32()
	a.UID = UID(d.u32())
	a.GID = GID(d.u32())
	a.Size = d.u64()
	a.ATimeSec = d.u64()
	a.ATimeNsec = d.u64()
	a.MTimeSec = d.u64()
	a.MTimeNsec = d.u64()
}

// Rsetattr answers Tsetattr.
type Rsetattr struct{}

func (*Rsetattr) Type() MsgType   { return MsgRsetattr }
func (*Rsetattr) encode(*encoder) {}
func (*Rsetattr) decode(*decoder) {}

// Txattrwalk binds NewFID to the value of extended attribute Name of FID (or
// to the list of names if Name is empty), to be read with Tread.
type Txattrwalk struct {
	FID    FID
	NewFID FID
	Name   string
}

func (*Txattrwalk) Type() MsgType { return MsgTxattrwalk }
func (m *Txattrwalk) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u32(uint32(m.NewFID))
	e.str(m.Name)
}
func (m *Txattrwalk) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.NewFID = FID(d.u32())
	m.Name = d.str()
}

// Rxattrwalk answers Txattrwalk with the size of the value.
type Rxattrwalk struct{ Size uint64 }

func (*Rxattrwalk) Type() MsgType       { return MsgRxattrwalk }
func (m *Rxattrwalk) encode(e *encoder) { e.u64(m.Size) }
func (m *Rxattrwalk) decode(d *decoder) { m.Size = d.u64() }

// Txattrcreate turns FID into a fid that receives, by Twrite, the value of
// attribute Name; the attribute is set when FID is clunked.
type Txattrcreate struct {
	FID      FID
	Name     string
	AttrSize uint64
	Flags    uint32 // XATTR_CREATE / XATTR_REPLACE
}

func (*Txattrcreate) Type() MsgType { return MsgTxattrcreate }
func (m *Txattrcreate) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.str(m.Name)
	e.u64(m.AttrSize)
	e.u32(m.Flags)
}
func (m *Txattrcreate) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Name = d.str()
	m.AttrSize = d.u64()
	m.Flags = d.u32()
}

// Rxattrcreate answers Txattrcreate.
type Rxattrcreate struct{}

func (*Rxattrcreate) Type() MsgType   { return MsgRxattrcreate }
func (*Rxattrcreate) encode(*encoder) {}
func (*Rxattrcreate) decode(*decoder) {}

// Treaddir reads directory entries of open directory FID from cookie Offset,
// at most Count bytes of encoded entries.
type Treaddir struct {
	FID    FID
	Offset uint64
	Count  uint32
}

func (*Treaddir) Type() MsgType { return MsgTreaddir }
func (m *Treaddir) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u64(m.Offset)
	e.u32(m.Count)
}
func (m *Treaddir) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Offset = d.u64()
	m.Count = d.u32()
}

// Rreaddir answers Treaddir.
type Rreaddir struct{ Entries []Dirent }

// maxDirentSize is the encoded size of an entry with the longest name a
// Linux directory holds (NAME_MAX).
const maxDirentSize = qidSize + 8 + 1 + 2 + 255

// direntSize is the encoded size of an entry.
func direntSize(name string) int { return qidSize + 8 + 1 + 2 + len(name) }

// minDirentSize bounds how many entries a count of bytes can hold.
const minDirentSize = qidSize + 8 + 1 + 2

func (*Rreaddir) Type() MsgType { return MsgRreaddir }
func (m *Rreaddir) encode(e *encoder) {
	n := 0
	for i := range m.Entries {
		n += direntSize(m.Entries[i].Name)
	}
	e.u32(uint32(n))
	for i := range m.Entries {
		ent := &m.Entries[i]
		e.qid(ent.QID)
		e.u64(ent.Offset)
		e.u8(ent.Type)
		e.str(ent.Name)
	}
}
func (m *Rreaddir) decode(d *decoder) {
	n := d.count(1)
	if d.err != nil {
		return
	}
	if n != len(d.buf) {
		d.fail("readdir count %d but %d bytes follow", n, len(d.buf))
		return
	}
	sub := decoder{buf: d.take(n)}
	m.Entries = make([]Dirent, 0, n/minDirentSize)
	for len(sub.buf) > 0 && sub.err == nil {
		var ent Dirent
		ent.QID = sub.qid()
		ent.Offset = sub.u64()
		ent.Type = sub.u8()
		ent.Name = sub.str()
		if sub.err == nil {
			m.Entries = append(m.Entries, ent)
		}
	}
	if sub.err != nil {
		d.err = sub.err
	}
}

// Tfsync flushes FID to stable storage; Datasync asks for fdatasync.
type Tfsync struct {
	FID      FID
	Datasync uint32
}

func (*Tfsync) Type() MsgType { return MsgTfsync }
func (m *Tfsync) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u32(m.Datasync)
}
func (m *Tfsync) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Datasync = d.u32()
}

// Rfsync answers Tfsync.
type Rfsync struct{}

func (*Rfsync) Type() MsgType   { return MsgRfsync }
func (*Rfsync) encode(*encoder) {}
func (*Rfsync) decode(*decoder) {}

// Lock is the body shared by Tlock (with Flags) and Tgetlock/Rgetlock.
type Lock struct {
	Type     uint8
	Flags    uint32 // Tlock only
	Start    uint64
	Length   uint64
	ProcID   uint32
	ClientID string
}

// Tlock acquires or releases a POSIX byte-range lock on FID.
type Tlock struct {
	FID  FID
	Lock Lock
}

func (*Tlock) Type() MsgType { return MsgTlock }
func (m *Tlock) encode(e *encoder) {
	e.u32(uint32(m.FID))
	e.u8(m.Lock.Type)
	e.u32(m.Lock.Flags)
	e.u64(m.Lock.Start)
	e.u64(m.Lock.Length)
	e.u32(m.Lock.ProcID)
	e.str(m.Lock.ClientID)
}
func (m *Tlock) decode(d *decoder) {
	m.FID = FID(d.u32())
	m.Lock.Type = d.u8()
	m.Lock.Flags = d.u32()
	m.Lock.Start = d.u64()
	m.Lock.Length = d.u64()
	m.Lock.ProcID = d.u32()
	m.Lock.ClientID = d.str()
}

// Rlock answers Tlock with a LockStatus value.
type Rlock struct{ Status uint8 }

func (*Rlock) Type() MsgType       { return MsgRlock }
func (m *Rlock) encode(e *encoder) { e.u8(m.Status) }
func (m *Rlock) decode(d *decoder) { m.Status = d.u8() }

// Tgetlock tests whether Lock could be acquired on FID.
type Tgetlock struct {
	FID  FID
	Lock Lock
}

func (*Tgetlock) Type() MsgType { return MsgTgetlock }
func (m *Tgetlock) encode(e *encoder) {
	e.u32(uint32(m.FID))
	encodeGetlock(e, &m.Lock)
}
func (m *Tgetlock) decode(d *decoder) {
	m.FID = FID(d.u32())
	decodeGetlock(d, &m.Lock)
}

// Rgetlock answers Tgetlock with the conflicting lock, or Type unlock.
type Rgetlock struct{ Lock Lock }

func (*Rgetlock) Type() MsgType       { return MsgRgetlock }
func (m *Rgetlock) encode(e *encoder) { encodeGetlock(e, &m.Lock) }
func (m *Rgetlock) decode(d *decoder) { decodeGetlock(d, &m.Lock) }

func encodeGetlock(e *encoder, l *Lock) {
	e.u8(l.Type)
	e.u64(l.Start)
	e.u64(l.Length)
	e.u32(l.ProcID)
	e.str(l.ClientID)
}
func decodeGetlock(d *decoder, l *Lock) {
	l.Type = d.u8()
	l.Start = d.u64()
	l.Length = d.u64()
	l.ProcID = d.u32()
	l.ClientID = d.str()
}

// Tlink creates hard link Name in directory DirFID to the file FID.
type Tlink struct {
	DirFID FID
	FID    FID
	Name   string
}

func (*Tlink) Type() MsgType { return MsgTlink }
func (m *Tlink) encode(e *encoder) {
	e.u32(uint32(m.DirFID))
	e.u32(uint32(m.FID))
	e.str(m.Name)
}
func (m *Tlink) decode(d *decoder) {
	m.DirFID = FID(d.u32())
	m.FID = FID(d.u32())
	m.Name = d.str()
}

// Rlink answers Tlink.
type Rlink struct{}

func (*Rlink) Type() MsgType   { return MsgRlink }
func (*Rlink) encode(*encoder) {}
func (*Rlink) decode(*decoder) {}

// Tmkdir creates directory Name in DirFID.
type Tmkdir struct {
	DirFID FID
	Name   string
	Mode   uint32
	GID    GID
}

func (*Tmkdir) Type() MsgType { return MsgTmkdir }
func (m *Tmkdir) encode(e *encoder) {
	e.u32(uint32(m.DirFID))
	e.str(m.Name)
	e.u32(m.Mode)
	e.u32(uint32(m.GID))
}
func (m *Tmkdir) decode(d *decoder) {
	m.DirFID = FID(d.u32())
	m.Name = d.str()
	m.Mode = d.u32()
	m.GID = GID(d.u32())
}

// Rmkdir answers Tmkdir.
type Rmkdir struct{ QID QID }

func (*Rmkdir) Type() MsgType       { return MsgRmkdir }
func (m *Rmkdir) encode(e *encoder) { e.qid(m.QID) }
func (m *Rmkdir) decode(d *decoder) { m.QID = d.qid() }

// Trenameat renames OldName in OldDirFID to NewName in NewDirFID.
type Trenameat struct {
	OldDirFID FID
	OldName   string
	NewDirFID FID
	NewName   string
}

func (*Trenameat) Type() MsgType { return MsgTrenameat }
func (m *Trenameat) encode(e *encoder) {
	e.u32(uint32(m.OldDirFID))
	e.str(m.OldName)
	e.u32(uint32(m.NewDirFID))
	e.str(m.NewName)
}
func (m *Trenameat) decode(d *decoder) {
	m.OldDirFID = FID(d.u32())
	m.OldName = d.str()
	m.NewDirFID = FID(d.u32())
	m.NewName = d.str()
}

// Rrenameat answers Trenameat.
type Rrenameat struct{}

func (*Rrenameat) Type() MsgType   { return MsgRrenameat }
func (*Rrenameat) encode(*encoder) {}
func (*Rrenameat) decode(*decoder) {}

// Tunlinkat removes Name from DirFID; Flags may hold AT_REMOVEDIR.
type Tunlinkat struct {
	DirFID FID
	Name   string
	Flags  uint32
}

func (*Tunlinkat) Type() MsgType { return MsgTunlinkat }
func (m *Tunlinkat) encode(e *encoder) {
	e.u32(uint32(m.DirFID))
	e.str(m.Name)
	e.u32(m.Flags)
}
func (m *Tunlinkat) decode(d *decoder) {
	m.DirFID = FID(d.u32())
	m.Name = d.str()
	m.Flags = d.u32()
}

// Runlinkat answers Tunlinkat.
type Runlinkat struct{}

func (*Runlinkat) Type() MsgType   { return MsgRunlinkat }
func (*Runlinkat) encode(*encoder) {}
func (*Runlinkat) decode(*decoder) {}

// Errno extracts the Linux errno of err for an Rlerror, defaulting to EIO for
// errors that carry none.
func Errno(err error) unix.Errno {
	var errno unix.Errno
	if asErrno(err, &errno) && errno != 0 {
		return errno
	}
	return unix.EIO
}
