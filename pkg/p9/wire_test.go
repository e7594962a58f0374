package p9

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

// sampleMessages holds one populated instance of every message type.
func sampleMessages() []Message {
	q := QID{Type: QIDTypeDir, Version: 7, Path: 0x1122334455667788}
	lk := Lock{Type: LockTypeWrite, Flags: LockFlagBlock, Start: 10, Length: 20, ProcID: 42, ClientID: "host"}
	glk := lk
	glk.Flags = 0 // not carried by Tgetlock/Rgetlock
	return []Message{
		&Rlerror{Error: 2},
		&Tstatfs{FID: 1}, &Rstatfs{FSStat: FSStat{Type: 1, BlockSize: 4096, Blocks: 3, BlocksFree: 4, BlocksAvailable: 5, Files: 6, FilesFree: 7, FSID: 8, NameLength: 255}},
		&Tlopen{FID: 1, Flags: 2}, &Rlopen{QID: q, IOUnit: 8192},
		&Tlcreate{FID: 1, Name: "f", Flags: 0o102, Mode: 0o644, GID: 5}, &Rlcreate{QID: q, IOUnit: 1},
		&Tsymlink{FID: 1, Name: "l", Target: "/t", GID: 3}, &Rsymlink{QID: q},
		&Tmknod{DirFID: 1, Name: "n", Mode: 0o20644, Major: 1, Minor: 3, GID: 0}, &Rmknod{QID: q},
		&Trename{FID: 1, DirFID: 2, Name: "r"}, &Rrename{},
		&Treadlink{FID: 9}, &Rreadlink{Target: "../x"},
		&Tgetattr{FID: 1, Mask: AttrAll}, &Rgetattr{Valid: AttrBasic, QID: q, Attr: Attr{Mode: 0o40755, UID: 1, GID: 2, NLink: 3, RDev: 4, Size: 5, BlockSize: 6, Blocks: 7, ATimeSec: 8, ATimeNsec: 9, MTimeSec: 10, MTimeNsec: 11, CTimeSec: 12, CTimeNsec: 13, BTimeSec: 14, BTimeNsec: 15, Gen: 16, DataVersion: 17}},
		&Tsetattr{FID: 1, Valid: SetAttrMode | SetAttrSize, Attr: SetAttr{Mode: 0o600, UID: 1, GID: 2, Size: 3, ATimeSec: 4, ATimeNsec: 5, MTimeSec: 6, MTimeNsec: 7}}, &Rsetattr{},
		&Txattrwalk{FID: 1, NewFID: 2, Name: "user.a"}, &Rxattrwalk{Size: 9},
		&Txattrcreate{FID: 1, Name: "user.b", AttrSize: 3, Flags: 1}, &Rxattrcreate{},
		&Treaddir{FID: 1, Offset: 5, Count: 4096}, &Rreaddir{Entries: []Dirent{{QID: q, Offset: 1, Type: 4, Name: "a"}, {QID: q, Offset: 2, Type: 8, Name: "bb"}}},
		&Tfsync{FID: 1, Datasync: 1}, &Rfsync{},
		&Tlock{FID: 1, Lock: lk}, &Rlock{Status: LockStatusBlocked},
		&Tgetlock{FID: 1, Lock: glk}, &Rgetlock{Lock: glk},
		&Tlink{DirFID: 1, FID: 2, Name: "h"}, &Rlink{},
		&Tmkdir{DirFID: 1, Name: "d", Mode: 0o755, GID: 1}, &Rmkdir{QID: q},
		&Trenameat{OldDirFID: 1, OldName: "a", NewDirFID: 2, NewName: "b"}, &Rrenameat{},
		&Tunlinkat{DirFID: 1, Name: "u", Flags: 0x200}, &Runlinkat{},
		&Tversion{MSize: 8192, Version: Version}, &Rversion{MSize: 8192, Version: Version},
		&Tauth{AuthFID: 3, UserName: "u", AttachName: "/", UID: 1000}, &Rauth{QID: q},
		&Tattach{FID: 1, AuthFID: NoFID, UserName: "u", AttachName: "/", UID: 0}, &Rattach{QID: q},
		&Tflush{OldTag: 3}, &Rflush{},
		&Twalk{FID: 1, NewFID: 2, Names: []string{"a", "b"}}, &Rwalk{QIDs: []QID{q, q}},
		&Twalkgetattr{Walk: Twalk{FID: 1, NewFID: 2, Names: []string{"a"}}, Mask: AttrBasic},
		&Rwalkgetattr{Walk: Rwalk{QIDs: []QID{q}}, Attr: Rgetattr{Valid: AttrBasic, QID: q, Attr: Attr{Mode: 0o100644, Size: 99, Gen: 1}}},
		&Tread{FID: 1, Offset: 2, Count: 3}, &Rread{Data: []byte("hello")},
		&Twrite{FID: 1, Offset: 2, Data: []byte("world")}, &Rwrite{Count: 5},
		&Tclunk{FID: 1}, &Rclunk{},
		&Tremove{FID: 1}, &Rremove{},
	}
}

func TestEveryMessageRoundTrips(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, m := range sampleMessages() {
		wire := EncodeMessage(nil, 77, m)
		if got := binary.LittleEndian.Uint32(wire); int(got) != len(wire) {
			t.Errorf("%T: size field %d, len %d", m, got, len(wire))
		}
		if MsgType(wire[4]) != m.Type() || binary.LittleEndian.Uint16(wire[5:]) != 77 {
			t.Errorf("%T: bad header % x", m, wire[:7])
		}
		got, err := DecodeMessage(m.Type(), wire[HeaderSize:])
		if err != nil {
			t.Errorf("%T: decode: %v", m, err)
			continue
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%T: round trip\n got %+v\nwant %+v", m, got, m)
		}
		// Every strict prefix must be rejected, never panic.
		for i := 0; i < len(wire)-HeaderSize; i++ {
			if _, err := DecodeMessage(m.Type(), wire[HeaderSize:HeaderSize+i]); err == nil {
				t.Errorf("%T: truncated to %d bytes decoded without error", m, i)
			}
		}
		// Trailing garbage is rejected.
		if _, err := DecodeMessage(m.Type(), append(append([]byte(nil), wire[HeaderSize:]...), 0)); err == nil {
			t.Errorf("%T: trailing byte accepted", m)
		}
		seen[m.Type()] = true
	}
	for t0 := MsgType(0); t0 < 255; t0++ {
		if newMessage(t0) != nil && !seen[t0] {
			t.Errorf("message type %d has no sample", t0)
		}
	}
	if len(seen) != 59 { // 29 T/R pairs and Rlerror (Tlerror is never sent)
		t.Errorf("sampled %d message types, want 59", len(seen))
	}
}

func TestUnknownTypeRejected(t *testing.T) {
	for _, typ := range []MsgType{0, 1, MsgTlerror, 10, 28, 99, 106, 107, 124, 200, 255} {
		if _, err := DecodeMessage(typ, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("type %d: %v, want ErrMalformed", typ, err)
		}
	}
}

// allocsDuring returns the bytes allocated by fn.
func allocsDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestAbsurdCountsDoNotAllocate(t *testing.T) {
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	cases := []struct {
		typ  MsgType
		body []byte
	}{
		{MsgRread, append(le32(0x80000000), "abc"...)},
		{MsgRreaddir, append(le32(0xffffffff), make([]byte, 30)...)},
		{MsgTwrite, append(append(make([]byte, 12), le32(0x7fffffff)...), "x"...)},
		{MsgTwalk, append(make([]byte, 8), 0xff, 0xff)},
		{MsgTwalk, append(make([]byte, 8), 16, 0)}, // 16 names, no bytes
		{MsgRwalk, []byte{16, 0}},
		{MsgTversion, append(le32(8192), 0xff, 0xff, 'x')},
	}
	for _, c := range cases {
		var err error
		used := allocsDuring(func() { _, err = DecodeMessage(c.typ, c.body) })
		if err == nil {
			t.Errorf("type %d body % x decoded", c.typ, c.body)
		}
		if used > 64<<10 {
			t.Errorf("type %d: decoding a lying count allocated %d bytes", c.typ, used)
		}
	}
}

func TestStringsLongerThanWireLimitAreCut(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), 70000))
	wire := EncodeMessage(nil, 1, &Rreadlink{Target: long})
	m, err := DecodeMessage(MsgRreadlink, wire[HeaderSize:])
	if err != nil || len(m.(*Rreadlink).Target) != 0xffff {
		t.Fatalf("decode: %v len %d", err, len(m.(*Rreadlink).Target))
	}
}

// FuzzDecodeMessage checks every decoder: no panic, and whatever decodes
// re-encodes to exactly the same bytes (so nothing is silently dropped).
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		wire := EncodeMessage(nil, 1, m)
		f.Add(uint8(m.Type()), wire[HeaderSize:])
		if len(wire) > HeaderSize {
			f.Add(uint8(m.Type()), wire[HeaderSize:len(wire)-1])
		}
	}
	f.Add(uint8(MsgRread), []byte{0, 0, 0, 0x80, 1, 2})
	f.Add(uint8(MsgTwalk), []byte{1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff})
	f.Add(uint8(3), []byte{})
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		m, err := DecodeMessage(MsgType(typ), body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again := EncodeMessage(nil, 0, m)[HeaderSize:]
		if !bytes.Equal(again, body) {
			t.Fatalf("%T re-encodes differently:\n got % x\nwant % x", m, again, body)
		}
	})
}
