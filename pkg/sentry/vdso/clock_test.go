package vdso

import (
	"bytes"
	"debug/elf"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Go view of the data page matches vdso.c's struct vvar.
func TestVvarLayout(t *testing.T) {
	var d vvarData
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"seq", unsafe.Offsetof(d.seq), 0},
		{"mode", unsafe.Offsetof(d.mode), 4},
		{"base_tsc", unsafe.Offsetof(d.baseTSC), 8},
		{"base_mono", unsafe.Offsetof(d.baseMono), 16},
		{"mult", unsafe.Offsetof(d.mult), 24},
		{"shift", unsafe.Offsetof(d.shift), 32},
		{"real_offset", unsafe.Offsetof(d.realOffset), 40},
		{"size", unsafe.Sizeof(d), 48},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestParamsAt(t *testing.T) {
	p := params{baseTSC: 1000, baseMono: 5e9, mult: 3 << 31, shift: 32} // 1.5 ns per tick
	for _, c := range []struct{ tsc, want uint64 }{
		{1000, 5e9},
		{1002, 5e9 + 3},
		{999, 5e9},                  // behind the base: no time yet, never earlier
		{1, 5e9},                    // far behind (another CPU's TSC)
		{1000 + 1e12, 5e9 + 1.5e12}, // delta*mult overflows 64 bits
	} {
		if got := p.at(c.tsc); got != c.want {
			t.Errorf("at(%d) = %d, want %d", c.tsc, got, c.want)
		}
	}
}

func requireTSC(t testing.TB) {
	if !invariantTSC() {
		t.Skip("host TSC is not invariant: the vDSO uses the syscall")
	}
}

// testClock is a clock over a data page of ordinary memory.
func testClock(t testing.TB, useTSC bool) *clock {
	t.Helper()
	page, err := unix.Mmap(-1, 0, VvarSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(page) })
	c := &clock{data: dataAt(page), page: page}
	c.init(useTSC)
	return c
}

// loadedImage is the vDSO image loaded in this process, one page above a
// clock's data page, as an application sees it.
type loadedImage struct {
	c    *clock
	syms map[string]uintptr
}

func loadImage(t testing.TB) *loadedImage {
	t.Helper()
	size := VvarSize + int(TextSize())
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	copy(mem[VvarSize:], image)
	if err := unix.Mprotect(mem[VvarSize:], unix.PROT_READ|unix.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	c := &clock{data: dataAt(mem), page: mem[:VvarSize]}
	c.init(true)
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	li := &loadedImage{c: c, syms: map[string]uintptr{}}
	base := uintptr(unsafe.Pointer(&mem[VvarSize]))
	for _, s := range syms {
		li.syms[s.Name] = base + uintptr(s.Value)
	}
	return li
}

func (li *loadedImage) call(t testing.TB, name string, a0, a1, a2 uintptr) int64 {
	fn, ok := li.syms[name]
	if !ok {
		t.Fatalf("no symbol %s", name)
	}
	return int64(callC(fn, a0, a1, a2))
}

func (li *loadedImage) clockGettime(t testing.TB, clock int) (int64, int64) {
	var ts unix.Timespec
	if r := li.call(t, "__vdso_clock_gettime", uintptr(clock), uintptr(unsafe.Pointer(&ts)), 0); int32(r) != 0 {
		t.Fatalf("clock_gettime(%d) = %d", clock, int32(r))
	}
	return ts.Nano(), 0
}

// The vDSO's own code, run against a data page, computes exactly what the
// Sentry's Go reader does: each answer lies between two Go readings.
func TestImageAgreesWithSentryClock(t *testing.T) {
	requireTSC(t)
	li := loadImage(t)
	for i := 0; i < 1000; i++ {
		before := li.c.monotonic()
		got, _ := li.clockGettime(t, unix.CLOCK_MONOTONIC)
		after := li.c.monotonic()
		if got < before || got > after {
			t.Fatalf("vDSO CLOCK_MONOTONIC %d outside Go readings [%d, %d]", got, before, after)
		}
		before = li.c.realtime()
		got, _ = li.clockGettime(t, unix.CLOCK_REALTIME)
		after = li.c.realtime()
		if got < before || got > after {
			t.Fatalf("vDSO CLOCK_REALTIME %d outside Go readings [%d, %d]", got, before, after)
		}
	}
	for _, id := range []int{unix.CLOCK_MONOTONIC_RAW, unix.CLOCK_MONOTONIC_COARSE, unix.CLOCK_BOOTTIME} {
		before := li.c.monotonic()
		got, _ := li.clockGettime(t, id)
		if after := li.c.monotonic(); got < before || got > after {
			t.Errorf("clock %d: %d outside [%d, %d]", id, got, before, after)
		}
	}
	before := li.c.realtime()
	got, _ := li.clockGettime(t, unix.CLOCK_REALTIME_COARSE)
	if after := li.c.realtime(); got < before || got > after {
		t.Errorf("CLOCK_REALTIME_COARSE: %d outside [%d, %d]", got, before, after)
	}

	var tv unix.Timeval
	var tz [2]int32
	tz[0], tz[1] = 7, 7
	before = li.c.realtime()
	if r := li.call(t, "__vdso_gettimeofday", uintptr(unsafe.Pointer(&tv)), uintptr(unsafe.Pointer(&tz)), 0); r != 0 {
		t.Fatalf("gettimeofday = %d", r)
	}
	after := li.c.realtime()
	if us := tv.Nano(); us < before/1000*1000 || us > after || tv.Usec >= 1e6 || tz != [2]int32{} {
		t.Errorf("gettimeofday %+v tz %v outside [%d, %d]", tv, tz, before, after)
	}
	var secs int64
	before = li.c.realtime()
	r := li.call(t, "__vdso_time", uintptr(unsafe.Pointer(&secs)), 0, 0)
	after = li.c.realtime()
	if r != secs || r < before/1e9 || r > after/1e9 {
		t.Errorf("time = %d (stored %d) outside [%d, %d]", r, secs, before/1e9, after/1e9)
	}
	if r := li.call(t, "time", 0, 0, 0); r < before/1e9 {
		t.Errorf("time(NULL) = %d", r)
	}

	for _, c := range []struct {
		clock int
		res   int64
	}{{unix.CLOCK_REALTIME, 1}, {unix.CLOCK_MONOTONIC, 1}, {unix.CLOCK_BOOTTIME, 1}, {unix.CLOCK_MONOTONIC_COARSE, 1e7}, {unix.CLOCK_REALTIME_COARSE, 1e7}} {
		var ts unix.Timespec
		if r := li.call(t, "__vdso_clock_getres", uintptr(c.clock), uintptr(unsafe.Pointer(&ts)), 0); int32(r) != 0 || ts.Nano() != c.res {
			t.Errorf("clock_getres(%d) = %d, %d ns; want %d ns", c.clock, int32(r), ts.Nano(), c.res)
		}
	}
}

// What the vDSO does not serve reaches the kernel as the real syscall (here
// the host's, in the Sentry the trapped one), with its raw -errno result.
func TestImageFallsBackToSyscall(t *testing.T) {
	requireTSC(t)
	li := loadImage(t)
	var ts unix.Timespec
	if r := li.call(t, "__vdso_clock_gettime", 100, uintptr(unsafe.Pointer(&ts)), 0); int32(r) != -int32(unix.EINVAL) {
		t.Errorf("clock_gettime(100) = %d, want -EINVAL", int32(r))
	}
	if r := li.call(t, "__vdso_clock_gettime", unix.CLOCK_THREAD_CPUTIME_ID, uintptr(unsafe.Pointer(&ts)), 0); int32(r) != 0 || ts.Nano() <= 0 {
		t.Errorf("clock_gettime(THREAD_CPUTIME) = %d, %v", int32(r), ts)
	}
	if r := li.call(t, "__vdso_clock_gettime", unix.CLOCK_MONOTONIC, 0, 0); int32(r) != -int32(unix.EFAULT) {
		t.Errorf("clock_gettime(MONOTONIC, NULL) = %d, want -EFAULT", int32(r))
	}
	if r := li.call(t, "__vdso_clock_getres", 100, uintptr(unsafe.Pointer(&ts)), 0); int32(r) != -int32(unix.EINVAL) {
		t.Errorf("clock_getres(100) = %d, want -EINVAL", int32(r))
	}
	cpu := uint32(1 << 30)
	if r := li.call(t, "__vdso_getcpu", uintptr(unsafe.Pointer(&cpu)), 0, 0); r != 0 || cpu >= 1<<20 {
		t.Errorf("getcpu = %d, cpu %d", r, cpu)
	}

	// Switched to syscall mode, every clock is the host's.
	li.c.data.mode.Store(modeSyscall)
	before := time.Now().UnixNano()
	if r := li.call(t, "__vdso_clock_gettime", unix.CLOCK_REALTIME, uintptr(unsafe.Pointer(&ts)), 0); int32(r) != 0 {
		t.Fatalf("clock_gettime = %d", int32(r))
	}
	after := time.Now().UnixNano()
	if ts.Nano() < before || ts.Nano() > after {
		t.Errorf("syscall mode: CLOCK_REALTIME %d outside host [%d, %d]", ts.Nano(), before, after)
	}
	var tv unix.Timeval
	if r := li.call(t, "__vdso_gettimeofday", uintptr(unsafe.Pointer(&tv)), 0, 0); r != 0 || tv.Nano() < before/1000*1000 {
		t.Errorf("syscall mode: gettimeofday = %d, %v", r, tv)
	}
	if r := li.call(t, "__vdso_time", 0, 0, 0); r < before/1e9 || r > time.Now().Unix() {
		t.Errorf("syscall mode: time = %d", r)
	}
}

// CLOCK_MONOTONIC never goes back, whichever reader (Go or vDSO) and
// however the updater re-anchors and slews it meanwhile.
func TestMonotonicAcrossUpdates(t *testing.T) {
	requireTSC(t)
	li := loadImage(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		intervals := []time.Duration{time.Microsecond, 10 * time.Millisecond, time.Second, 50 * time.Microsecond}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			li.c.update(intervals[i%len(intervals)])
			// Push the clock off the host's, so updates slew hard.
			if i%7 == 0 {
				li.c.data.seq.Add(1)
				li.c.data.baseMono.Add(uint64(time.Millisecond))
				li.c.data.seq.Add(1)
			}
		}
	}()
	last := int64(0)
	for i := 0; i < 200000; i++ {
		var now int64
		if i%2 == 0 {
			now = li.c.monotonic()
		} else {
			now, _ = li.clockGettime(t, unix.CLOCK_MONOTONIC)
		}
		if now < last {
			close(stop)
			wg.Wait()
			t.Fatalf("iteration %d: CLOCK_MONOTONIC went back from %d to %d", i, last, now)
		}
		last = now
	}
	close(stop)
	wg.Wait()
}

// Updates keep the clock on the host's CLOCK_MONOTONIC and CLOCK_REALTIME:
// a clock behind jumps forward, one ahead slows down until it is back.
func TestTracksHostClock(t *testing.T) {
	requireTSC(t)
	for _, c := range []struct {
		name string
		skew time.Duration
	}{{"behind", -20 * time.Millisecond}, {"ahead", 500 * time.Microsecond}} {
		t.Run(c.name, func(t *testing.T) {
			clk := testClock(t, true)
			clk.data.seq.Add(1)
			clk.data.baseMono.Add(uint64(c.skew))
			clk.data.seq.Add(1)
			for range 8 {
				clk.update(20 * time.Millisecond)
				time.Sleep(20 * time.Millisecond)
			}
			clk.update(20 * time.Millisecond)
			const tolerance = 250 * time.Microsecond
			if d := time.Duration(clk.monotonic() - int64(time.Since(clk.bootHost))); d > tolerance || d < -tolerance {
				t.Errorf("CLOCK_MONOTONIC %v off the host's", d)
			}
			if d := time.Duration(clk.realtime() - time.Now().UnixNano()); d > tolerance || d < -tolerance {
				t.Errorf("CLOCK_REALTIME %v off the host's", d)
			}
		})
	}
}

// Without the TSC the clock is the host's and the page says so.
func TestSyscallMode(t *testing.T) {
	c := testClock(t, false)
	if c.data.mode.Load() != modeSyscall || c.data.seq.Load()&1 != 0 {
		t.Fatalf("mode %d seq %d", c.data.mode.Load(), c.data.seq.Load())
	}
	before := time.Now().UnixNano()
	got := c.realtime()
	if after := time.Now().UnixNano(); got < before || got > after {
		t.Errorf("realtime %d outside host [%d, %d]", got, before, after)
	}
	m1 := c.monotonic()
	m2 := c.monotonic()
	if m1 < 0 || m2 < m1 {
		t.Errorf("monotonic %d then %d", m1, m2)
	}
}

// invariantTSC agrees with the flags Linux shows.
func TestInvariantTSCMatchesCPUInfo(t *testing.T) {
	b, err := readFileIfExists("/proc/cpuinfo")
	if err != nil || len(b) == 0 {
		t.Skip("no /proc/cpuinfo")
	}
	flags := ""
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("flags")) {
			flags = " " + string(line) + " "
			break
		}
	}
	want := bytes.Contains([]byte(flags), []byte(" constant_tsc ")) && bytes.Contains([]byte(flags), []byte(" nonstop_tsc "))
	if got := invariantTSC(); got != want {
		t.Errorf("invariantTSC() = %v, /proc/cpuinfo says %v", got, want)
	}
}

func BenchmarkGoMonotonic(b *testing.B) {
	requireTSC(b)
	c := testClock(b, true)
	for b.Loop() {
		c.monotonic()
	}
}

func BenchmarkImageClockGettime(b *testing.B) {
	requireTSC(b)
	li := loadImage(b)
	fn := li.syms["__vdso_clock_gettime"]
	var ts unix.Timespec
	p := uintptr(unsafe.Pointer(&ts))
	for b.Loop() {
		callC(fn, unix.CLOCK_MONOTONIC, p, 0)
	}
}

func BenchmarkHostSyscallClockGettime(b *testing.B) {
	var ts unix.Timespec
	for b.Loop() {
		unix.Syscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(&ts)), 0)
	}
}

func readFileIfExists(name string) ([]byte, error) { return os.ReadFile(name) }
