package linux

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// span is a [start, end) byte range of C padding or reserved space, which
// MarshalBytes writes as zeros.
type span struct{ start, end int }

// structCase describes one ABI struct for the generic tests: a constructor
// returning a fresh zero value, its ABI size and its padding.
type structCase struct {
	name string
	new  func() Marshaler
	size int
	pad  []span
}

var structCases = []structCase{
	{"Timespec", func() Marshaler { return new(Timespec) }, SizeOfTimespec, nil},
	{"Timeval", func() Marshaler { return new(Timeval) }, SizeOfTimeval, nil},
	{"Itimerspec", func() Marshaler { return new(Itimerspec) }, SizeOfItimerspec, nil},
	{"Itimerval", func() Marshaler { return new(Itimerval) }, SizeOfItimerval, nil},
	{"Tms", func() Marshaler { return new(Tms) }, SizeOfTms, nil},
	{"Rlimit", func() Marshaler { return new(Rlimit) }, SizeOfRlimit, nil},
	{"Rusage", func() Marshaler { return new(Rusage) }, SizeOfRusage, nil},
	{"Sysinfo", func() Marshaler { return new(Sysinfo) }, SizeOfSysinfo, []span{{82, 88}, {108, 112}}},
	{"Utsname", func() Marshaler { return new(Utsname) }, SizeOfUtsname, nil},
	{"RobustListHead", func() Marshaler { return new(RobustListHead) }, SizeOfRobustListHead, nil},
	{"CloneArgs", func() Marshaler { return new(CloneArgs) }, SizeOfCloneArgs, nil},
	{"Stat", func() Marshaler { return new(Stat) }, SizeOfStat, []span{{36, 40}, {120, 144}}},
	{"StatxTimestamp", func() Marshaler { return new(StatxTimestamp) }, SizeOfStatxTimestamp, []span{{12, 16}}},
	{"Statx", func() Marshaler { return new(Statx) }, SizeOfStatx,
		[]span{{30, 32}, {76, 80}, {92, 96}, {108, 112}, {124, 128}, {160, 256}}},
	{"OpenHow", func() Marshaler { return new(OpenHow) }, SizeOfOpenHow, nil},
	{"Dirent64", func() Marshaler { return new(Dirent64) }, SizeOfDirent64Header, nil},
	{"Pollfd", func() Marshaler { return new(Pollfd) }, SizeOfPollfd, nil},
	{"EpollEvent", func() Marshaler { return new(EpollEvent) }, SizeOfEpollEvent, nil},
	{"Iovec", func() Marshaler { return new(Iovec) }, SizeOfIovec, nil},
	{"Sigaction", func() Marshaler { return new(Sigaction) }, SizeOfSigaction, nil},
	{"SignalStack", func() Marshaler { return new(SignalStack) }, SizeOfSignalStack, []span{{12, 16}}},
	{"SignalInfo", func() Marshaler { return new(SignalInfo) }, SizeOfSignalInfo, []span{{12, 16}}},
	{"SigContext", func() Marshaler { return new(SigContext) }, SizeOfSigContext, nil},
	{"UContext64", func() Marshaler { return new(UContext64) }, SizeOfUContext64, []span{{16 + 12, 16 + 16}}},
	{"Winsize", func() Marshaler { return new(Winsize) }, SizeOfWinsize, nil},
	{"Termios", func() Marshaler { return new(Termios) }, SizeOfTermios, nil},
	{"Auxv", func() Marshaler { return new(Auxv) }, SizeOfAuxv, nil},
}

// memory returns the in-memory bytes of the struct m points to. On amd64
// the Go layout equals the C layout (the cgo tests prove it), so this is
// exactly what MarshalBytes must produce, padding aside.
func memory(m Marshaler, size int) []byte {
	type iface struct{ typ, data unsafe.Pointer }
	p := (*iface)(unsafe.Pointer(&m)).data
	return unsafe.Slice((*byte)(p), size)
}

func zeroPad(b []byte, pad []span) {
	for _, s := range pad {
		clear(b[s.start:s.end])
	}
}

func TestStructSizes(t *testing.T) {
	for _, c := range structCases {
		m := c.new()
		if m.SizeBytes() != c.size {
			t.Errorf("%s.SizeBytes() = %d, want %d", c.name, m.SizeBytes(), c.size)
		}
	}
	// Go sizes equal the ABI sizes, except Dirent64 whose Go struct is
	// padded past the 19-byte header.
	for _, c := range []struct {
		name string
		got  uintptr
		want int
	}{
		{"Timespec", unsafe.Sizeof(Timespec{}), SizeOfTimespec}, {"Stat", unsafe.Sizeof(Stat{}), SizeOfStat},
		{"Statx", unsafe.Sizeof(Statx{}), SizeOfStatx}, {"SignalInfo", unsafe.Sizeof(SignalInfo{}), SizeOfSignalInfo},
		{"Sigaction", unsafe.Sizeof(Sigaction{}), SizeOfSigaction}, {"UContext64", unsafe.Sizeof(UContext64{}), SizeOfUContext64},
		{"SigContext", unsafe.Sizeof(SigContext{}), SizeOfSigContext}, {"EpollEvent", unsafe.Sizeof(EpollEvent{}), SizeOfEpollEvent},
		{"Termios", unsafe.Sizeof(Termios{}), SizeOfTermios}, {"CloneArgs", unsafe.Sizeof(CloneArgs{}), SizeOfCloneArgs},
		{"Sysinfo", unsafe.Sizeof(Sysinfo{}), SizeOfSysinfo}, {"Rusage", unsafe.Sizeof(Rusage{}), SizeOfRusage},
		{"Utsname", unsafe.Sizeof(Utsname{}), SizeOfUtsname}, {"SignalStack", unsafe.Sizeof(SignalStack{}), SizeOfSignalStack},
	} {
		if int(c.got) != c.want {
			t.Errorf("unsafe.Sizeof(%s) = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestMarshalMatchesMemoryLayout fills each struct with random bytes and
// checks that MarshalBytes reproduces its memory image with padding zeroed,
// which proves every field is encoded at its C offset and width.
func TestMarshalMatchesMemoryLayout(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range structCases {
		for iter := 0; iter < 20; iter++ {
			m := c.new()
			mem := memory(m, c.size)
			rng.Read(mem)
			want := bytes.Clone(mem)
			zeroPad(want, c.pad)
			dst := make([]byte, c.size+3)
			rng.Read(dst) // stale bytes that must be overwritten
			rest := m.MarshalBytes(dst)
			if len(rest) != 3 {
				t.Fatalf("%s.MarshalBytes returned %d trailing bytes, want 3", c.name, len(rest))
			}
			if !bytes.Equal(dst[:c.size], want) {
				t.Fatalf("%s: MarshalBytes\n got %x\nwant %x", c.name, dst[:c.size], want)
			}
		}
	}
}

// TestUnmarshalRoundTrip decodes random bytes and re-encodes them: the
// output equals the input except padding, and decoding fills every field.
func TestUnmarshalRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, c := range structCases {
		for iter := 0; iter < 20; iter++ {
			src := make([]byte, c.size+5)
			rng.Read(src)
			m := c.new()
			rest := m.UnmarshalBytes(src)
			if len(rest) != 5 {
				t.Fatalf("%s.UnmarshalBytes returned %d trailing bytes, want 5", c.name, len(rest))
			}
			want := bytes.Clone(src[:c.size])
			zeroPad(want, c.pad)
			if got := memory(m, c.size); !bytes.Equal(got, want) {
				t.Fatalf("%s: UnmarshalBytes memory\n got %x\nwant %x", c.name, got, want)
			}
			out := make([]byte, c.size)
			m.MarshalBytes(out)
			if !bytes.Equal(out, want) {
				t.Fatalf("%s: round trip\n got %x\nwant %x", c.name, out, want)
			}
		}
	}
}

func TestMarshalDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 512)
	for _, c := range structCases {
		m := c.new()
		if n := testing.AllocsPerRun(100, func() {
			m.MarshalBytes(buf)
			m.UnmarshalBytes(buf)
		}); n != 0 {
			t.Errorf("%s: %v allocations per Marshal+Unmarshal", c.name, n)
		}
	}
}

func TestShortBufferPanics(t *testing.T) {
	for _, c := range structCases {
		for _, op := range []string{"marshal", "unmarshal"} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s %s of %d bytes did not panic", c.name, op, c.size-1)
					}
				}()
				buf := make([]byte, c.size-1)
				if op == "marshal" {
					c.new().MarshalBytes(buf)
				} else {
					c.new().UnmarshalBytes(buf)
				}
			}()
		}
	}
}

// FuzzUnmarshal feeds arbitrary bytes to every decoder: none may panic on
// a buffer of sufficient length, and re-encoding is stable.
func FuzzUnmarshal(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Add(bytes.Repeat([]byte{0xff}, 400))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range structCases {
			if len(data) < c.size {
				continue
			}
			m := c.new()
			m.UnmarshalBytes(data)
			a := make([]byte, c.size)
			m.MarshalBytes(a)
			m2 := c.new()
			m2.UnmarshalBytes(a)
			b := make([]byte, c.size)
			m2.MarshalBytes(b)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: re-encoding not stable", c.name)
			}
		}
	})
}

// The kernel tests below let the host kernel write the structs and check
// that decoding them gives what x/sys/unix reports.

func TestKernelStat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("hello, abi"), 0o640); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	fdcwd := AT_FDCWD
	var buf [SizeOfStat]byte
	p, _ := unix.BytePtrFromString(path)
	if _, _, e := unix.Syscall6(SYS_NEWFSTATAT, uintptr(fdcwd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&buf[0])), 0, 0, 0); e != 0 {
		t.Fatalf("newfstatat: %v", e)
	}
	var st Stat
	st.UnmarshalBytes(buf[:])
	if st.Ino != want.Ino || st.Dev != want.Dev || st.Size != 10 || st.Mode != S_IFREG|0o640 ||
		st.UID != want.Uid || st.Nlink != 1 || st.MTime.Sec != want.Mtim.Sec || st.MTime.Nsec != want.Mtim.Nsec ||
		st.Blksize != int64(want.Blksize) {
		t.Errorf("decoded %+v, unix says %+v", st, want)
	}

	var xbuf [SizeOfStatx]byte
	if _, _, e := unix.Syscall6(SYS_STATX, uintptr(fdcwd), uintptr(unsafe.Pointer(p)), 0, STATX_BASIC_STATS, uintptr(unsafe.Pointer(&xbuf[0])), 0); e != 0 {
		t.Skipf("statx unavailable: %v", e)
	}
	var sx Statx
	sx.UnmarshalBytes(xbuf[:])
	if sx.Mask&STATX_BASIC_STATS != STATX_BASIC_STATS || sx.Ino != st.Ino || sx.Size != 10 ||
		uint32(sx.Mode) != st.Mode || sx.MTime.Sec != st.MTime.Sec || int64(sx.MTime.Nsec) != st.MTime.Nsec ||
		unix.Mkdev(sx.DevMajor, sx.DevMinor) != st.Dev {
		t.Errorf("statx decoded %+v, stat says %+v", sx, st)
	}
}

func TestKernelUtsnameAndRlimit(t *testing.T) {
	var want unix.Utsname
	if err := unix.Uname(&want); err != nil {
		t.Fatal(err)
	}
	var buf [SizeOfUtsname]byte
	if _, _, e := unix.RawSyscall(SYS_UNAME, uintptr(unsafe.Pointer(&buf[0])), 0, 0); e != 0 {
		t.Fatalf("uname: %v", e)
	}
	var u Utsname
	u.UnmarshalBytes(buf[:])
	if got := UtsFieldString(&u.Machine); got != "x86_64" {
		t.Errorf("machine = %q", got)
	}
	if u.Release != want.Release || u.Nodename != want.Nodename || u.Domainname != want.Domainname {
		t.Errorf("decoded utsname differs from unix.Uname")
	}

	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	var rbuf [SizeOfRlimit]byte
	if _, _, e := unix.RawSyscall6(SYS_PRLIMIT64, 0, RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&rbuf[0])), 0, 0); e != 0 {
		t.Fatalf("prlimit64: %v", e)
	}
	var got Rlimit
	got.UnmarshalBytes(rbuf[:])
	if got.Cur != rl.Cur || got.Max != rl.Max {
		t.Errorf("decoded rlimit %+v, unix says %+v", got, rl)
	}
}

func BenchmarkStatMarshal(b *testing.B) {
	st := Stat{Ino: 1, Size: 2, Mode: S_IFREG}
	buf := make([]byte, SizeOfStat)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		st.MarshalBytes(buf)
	}
}

var sinkSignalInfo SignalInfo

func BenchmarkSignalInfoUnmarshal(b *testing.B) {
	buf := make([]byte, SizeOfSignalInfo)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf[0] = byte(i)
		sinkSignalInfo.UnmarshalBytes(buf)
	}
}

func BenchmarkSigContextMarshal(b *testing.B) {
	var sc SigContext
	buf := make([]byte, SizeOfSigContext)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sc.MarshalBytes(buf)
	}
}
