package linux

import (
	"math"
	"testing"
	"time"
)

func TestTimespecConversions(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want Timespec
	}{
		{0, Timespec{0, 0}},
		{1_500_000_000, Timespec{1, 500_000_000}},
		{-1, Timespec{-1, 999_999_999}},
		{-1_000_000_000, Timespec{-1, 0}},
	} {
		if got := NsecToTimespec(c.ns); got != c.want {
			t.Errorf("NsecToTimespec(%d) = %+v, want %+v", c.ns, got, c.want)
		}
		if got := c.want.ToNsec(); got != c.ns {
			t.Errorf("%+v.ToNsec() = %d, want %d", c.want, got, c.ns)
		}
	}
	if got := (Timespec{Sec: math.MaxInt64}).ToNsec(); got != math.MaxInt64 {
		t.Errorf("huge timespec did not saturate: %d", got)
	}
	if got := (Timespec{Sec: math.MinInt64}).ToNsec(); got != math.MinInt64 {
		t.Errorf("hugely negative timespec did not saturate: %d", got)
	}
	if DurationToTimespec(2500*time.Millisecond) != (Timespec{2, 500_000_000}) {
		t.Error("DurationToTimespec wrong")
	}
	if (Timespec{3, 4}).ToDuration() != 3*time.Second+4 {
		t.Error("ToDuration wrong")
	}
	for ts, want := range map[Timespec]bool{{0, 0}: true, {1, 999_999_999}: true, {1, 1e9}: false, {-1, 0}: false, {0, -1}: false} {
		if ts.Valid() != want {
			t.Errorf("%+v.Valid() = %v", ts, !want)
		}
	}
	if got := NsecToTimeval(1_000_001_999); got != (Timeval{1, 1}) {
		t.Errorf("NsecToTimeval = %+v", got)
	}
	if (Timeval{1, 2}).ToNsec() != 1_000_002_000 || (Timeval{0, 1e6}).Valid() || !(Timeval{0, 999_999}).Valid() {
		t.Error("Timeval helpers wrong")
	}
}

func TestEpollEventData(t *testing.T) {
	var e EpollEvent
	e.SetDataUint64(0x0102030405060708)
	if e.Data != [2]uint32{0x05060708, 0x01020304} || e.DataUint64() != 0x0102030405060708 {
		t.Errorf("epoll data halves %#x", e.Data)
	}
	buf := make([]byte, SizeOfEpollEvent)
	e.Events = EPOLLIN | EPOLLET
	e.MarshalBytes(buf)
	if le.Uint64(buf[4:]) != 0x0102030405060708 || le.Uint32(buf) != EPOLLIN|EPOLLET {
		t.Errorf("packed layout wrong: %x", buf)
	}
}

func TestUtsFields(t *testing.T) {
	var u Utsname
	SetUtsField(&u.Nodename, "sandbox")
	if UtsFieldString(&u.Nodename) != "sandbox" {
		t.Errorf("got %q", UtsFieldString(&u.Nodename))
	}
	long := string(make([]byte, 100))
	for i := range u.Release {
		u.Release[i] = 'x'
	}
	SetUtsField(&u.Release, long[:0]+"abc")
	if UtsFieldString(&u.Release) != "abc" || u.Release[UTSLen-1] != 0 {
		t.Error("SetUtsField did not clear the old contents")
	}
	big := make([]byte, 80)
	for i := range big {
		big[i] = 'y'
	}
	SetUtsField(&u.Machine, string(big))
	if got := UtsFieldString(&u.Machine); len(got) != UTSLen-1 || u.Machine[UTSLen-1] != 0 {
		t.Errorf("long value not truncated with NUL: len %d", len(got))
	}
	var full [UTSLen]byte
	for i := range full {
		full[i] = 'z'
	}
	if len(UtsFieldString(&full)) != UTSLen {
		t.Error("unterminated field misread")
	}
}

func TestDirent64RecordLen(t *testing.T) {
	for name, want := range map[int]int{0: 24, 1: 24, 4: 24, 5: 32, 12: 32, 13: 40, 255: 280} {
		if got := Dirent64RecordLen(name); got != want {
			t.Errorf("Dirent64RecordLen(%d) = %d, want %d", name, got, want)
		}
	}
}
