package vdso

import (
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	"golang.org/x/sys/unix"

	"carapace.dev/carapace/pkg/sentry/arch"
)

// vvarData is the data page's content, shared with vdso.c's struct vvar
// (the offsets are fixed: TestVvarLayout). The Sentry is the only writer;
// every field is read and written atomically so that the Go readers and
// the vDSO in application threads see a consistent set under seq.
type vvarData struct {
	seq        atomic.Uint32 // odd while being rewritten
	mode       atomic.Uint32 // modeTSC or modeSyscall
	baseTSC    atomic.Uint64 // TSC value at which CLOCK_MONOTONIC read baseMono
	baseMono   atomic.Uint64 // nanoseconds since the kernel booted
	mult       atomic.Uint64 // nanoseconds per tick << shift
	shift      atomic.Uint32
	_          uint32
	realOffset atomic.Int64 // CLOCK_REALTIME - CLOCK_MONOTONIC, ns
}

// The modes of the data page.
const (
	// modeSyscall makes the vDSO functions make the real system call.
	modeSyscall = 0
	// modeTSC makes them compute the time from the TSC.
	modeTSC = 1
)

// clockShift is the fixed-point shift of mult: 2^-32 ns per tick is
// resolution enough for any TSC from 100 MHz to 100 GHz.
const clockShift = 32

// Update policy.
const (
	// firstUpdate and maxUpdate bound the update interval: updates come
	// often while the TSC frequency estimate is young and its error
	// largest, then every maxUpdate.
	firstUpdate = 10 * time.Millisecond
	maxUpdate   = time.Second
	// maxSlew bounds how much faster or slower than the TSC estimate the
	// clock runs while it closes the gap to the host clock.
	maxSlew = 0.01
	// stepAhead is how far behind the host clock the sandbox's may fall
	// before it jumps forward rather than slewing (a paused VM).
	stepAhead = 10 * time.Millisecond
	// reorderGuard is how far ahead of its own TSC reading an update
	// anchors the new parameters. A reader may take its TSC reading a
	// little after its final check of seq (the CPU runs the load early),
	// and CPUs' TSCs differ by some cycles; a reader that used the old
	// parameters therefore read a TSC at most this much past the
	// updater's, and from the anchor on the new parameters give at least
	// what the old ones gave there. The clock stands still for this long
	// at each update.
	reorderGuard = time.Microsecond
	// realtimeStep is how far the host's CLOCK_REALTIME must move against
	// its CLOCK_MONOTONIC (someone set the host clock) before the
	// sandbox's realtime offset follows; smaller differences are the
	// jitter of reading two clocks.
	realtimeStep = 100 * time.Microsecond
)

// params is one consistent reading of the page's clock fields.
type params struct {
	baseTSC, baseMono, mult uint64
	shift                   uint32
}

// at converts a TSC value to CLOCK_MONOTONIC nanoseconds with the same
// arithmetic as vdso.c's read_clock: a 64x64→128-bit product, so hours
// without an update cannot overflow.
func (p params) at(tsc uint64) uint64 {
	delta := tsc - p.baseTSC
	if int64(delta) < 0 {
		delta = 0
	}
	hi, lo := bits.Mul64(delta, p.mult)
	var scaled uint64
	switch s := p.shift; {
	case s == 0:
		scaled = lo
	case s < 64:
		scaled = lo>>s | hi<<(64-s)
	default:
		scaled = hi >> (s - 64)
	}
	return p.baseMono + scaled
}

// read returns CLOCK_MONOTONIC and the realtime offset as the vDSO would
// compute them now, or ok=false in modeSyscall.
func (d *vvarData) read() (mono uint64, realOffset int64, ok bool) {
	for spins := 0; ; spins++ {
		seq := d.seq.Load()
		if seq&1 != 0 {
			// The updater holds the page for a few hundred
			// nanoseconds; if it was descheduled, let it run.
			if spins > 64 {
				runtime.Gosched()
			}
			continue
		}
		if d.mode.Load() != modeTSC {
			return 0, 0, false
		}
		p := params{baseTSC: d.baseTSC.Load(), baseMono: d.baseMono.Load(), mult: d.mult.Load(), shift: d.shift.Load()}
		off := d.realOffset.Load()
		tsc := rdtsc()
		if d.seq.Load() == seq {
			return p.at(tsc), off, true
		}
	}
}

// sample is a simultaneous reading of the TSC and the host's clocks.
type sample struct {
	tsc  uint64
	mono int64 // host CLOCK_MONOTONIC, ns since processEpoch
	real int64 // host CLOCK_REALTIME, ns since the Unix epoch
}

// processEpoch anchors the host monotonic readings of this process.
var processEpoch = time.Now()

// takeSample reads the host clocks between two TSC reads, keeping the
// tightest of a few tries, and attributes them to the TSC midpoint.
func takeSample() sample {
	var best sample
	bestWidth := uint64(math.MaxUint64)
	for range 5 {
		t1 := rdtsc()
		now := time.Now()
		t2 := rdtsc()
		if w := t2 - t1; t2 >= t1 && w < bestWidth {
			bestWidth = w
			best = sample{tsc: t1 + w/2, mono: int64(now.Sub(processEpoch)), real: now.UnixNano()}
		}
	}
	return best
}

// calibration estimates the TSC frequency against the host's
// CLOCK_MONOTONIC for the whole process; every update's sample lengthens
// the baseline and so sharpens the estimate.
var calibration struct {
	once  sync.Once
	mu    sync.Mutex
	first sample
	freq  float64 // ticks per nanosecond
}

// minBaseline is the least time between the two samples of the first
// estimate (its error is about 50 ns of sampling over this).
const minBaseline = 2 * time.Millisecond

// ticksPerNano returns the current TSC frequency estimate, refined by s.
func ticksPerNano(s sample) float64 {
	calibration.once.Do(func() {
		calibration.first = takeSample()
		for time.Since(processEpoch.Add(time.Duration(calibration.first.mono))) < minBaseline {
			time.Sleep(minBaseline / 4)
		}
		second := takeSample()
		calibration.freq = float64(second.tsc-calibration.first.tsc) / float64(second.mono-calibration.first.mono)
	})
	calibration.mu.Lock()
	defer calibration.mu.Unlock()
	first := calibration.first
	if s.mono-first.mono > int64(minBaseline) && s.tsc > first.tsc {
		calibration.freq = float64(s.tsc-first.tsc) / float64(s.mono-first.mono)
	}
	return calibration.freq
}

// multFor returns the mult that makes the clock run rate times the host's
// speed at freq ticks per nanosecond.
func multFor(freq, rate float64) uint64 {
	return uint64(math.Round(rate / freq * (1 << clockShift)))
}

// clock keeps one data page: the Sentry's CLOCK_MONOTONIC and
// CLOCK_REALTIME, for the Go readers and, through the page, the vDSO.
type clock struct {
	data *vvarData
	// page is the Sentry's own mapping of the data page (see New).
	page []byte
	tsc  bool
	// bootMono and bootReal are the host clocks when the kernel booted
	// (modeSyscall reads the host directly relative to them).
	bootMono int64
	bootHost time.Time
	// mu serializes updates.
	mu sync.Mutex
}

// initClock starts the clock at 0 (CLOCK_MONOTONIC of a fresh boot).
func (c *clock) init(useTSC bool) {
	c.tsc = useTSC
	c.bootHost = time.Now()
	d := c.data
	d.seq.Store(1)
	if useTSC {
		s := takeSample()
		f := ticksPerNano(s)
		c.bootMono = s.mono
		d.baseTSC.Store(s.tsc)
		d.baseMono.Store(0)
		d.mult.Store(multFor(f, 1))
		d.shift.Store(clockShift)
		d.realOffset.Store(s.real)
		d.mode.Store(modeTSC)
	} else {
		d.mode.Store(modeSyscall)
	}
	d.seq.Store(2)
}

// monotonic returns CLOCK_MONOTONIC in nanoseconds.
func (c *clock) monotonic() int64 {
	if mono, _, ok := c.data.read(); ok {
		return int64(mono)
	}
	return int64(time.Since(c.bootHost))
}

// realtime returns CLOCK_REALTIME in nanoseconds since the Unix epoch.
func (c *clock) realtime() int64 {
	if mono, off, ok := c.data.read(); ok {
		return int64(mono) + off
	}
	return time.Now().UnixNano()
}

// update re-anchors the clock at the current TSC, continuous with its
// previous value, at a rate that brings it back onto the host's
// CLOCK_MONOTONIC by the next update, planned after next.
func (c *clock) update(next time.Duration) {
	if !c.tsc {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := takeSample()
	freq := ticksPerNano(s)
	target := s.mono - c.bootMono // what the host says the clock read at s.tsc
	hostOffset := s.real - target
	d := c.data
	seq := d.seq.Load()
	// From here until seq is even again, readers retry. The TSC is read
	// after the odd value is visible (atomic stores are full barriers on
	// amd64), so readers that used the old parameters read a TSC before
	// now, give or take reorderGuard: anchoring the new parameters at
	// now+reorderGuard, continuous with the old ones there, means the
	// clock cannot step back at the switch.
	d.seq.Store(seq + 1)
	now := rdtsc() + uint64(float64(reorderGuard)*freq)
	old := params{baseTSC: d.baseTSC.Load(), baseMono: d.baseMono.Load(), mult: d.mult.Load(), shift: d.shift.Load()}
	cur := old.at(now)
	targetNow := target + int64(float64(int64(now-s.tsc))/freq)
	gap := targetNow - int64(cur)
	if gap > int64(stepAhead) {
		cur, gap = uint64(targetNow), 0
	}
	rate := 1 + float64(gap)/float64(next)
	rate = max(1-maxSlew, min(1+maxSlew, rate))
	// base_tsc only moves forward, even if this CPU's TSC lags.
	if now < old.baseTSC {
		now = old.baseTSC
	}
	d.baseTSC.Store(now)
	d.baseMono.Store(cur)
	d.mult.Store(multFor(freq, rate))
	d.shift.Store(clockShift)
	if off := d.realOffset.Load(); hostOffset-off > int64(realtimeStep) || off-hostOffset > int64(realtimeStep) {
		d.realOffset.Store(hostOffset)
	}
	d.seq.Store(seq + 2)
}

// startUpdater keeps c close to the host's clock for as long as c is
// reachable: the goroutine holds it only weakly, so a kernel that is
// dropped (tests make many) takes its updater with it.
func startUpdater(c *clock) {
	if !c.tsc {
		return
	}
	w := weak.Make(c)
	go func() {
		interval := firstUpdate
		for {
			time.Sleep(interval)
			next := min(2*interval, maxUpdate)
			c := w.Value()
			if c == nil {
				return
			}
			c.update(next)
			interval = next
		}
	}()
}

// invariantTSC reports whether the TSC ticks at a constant rate whatever
// the CPU's frequency and sleep states (CPUID 0x80000007 EDX bit 8, from
// which Linux derives constant_tsc and nonstop_tsc), so that it can be a
// clock.
func invariantTSC() bool {
	maxExt, _, _, _ := arch.CPUID(0x80000000, 0)
	if maxExt < 0x80000007 {
		return false
	}
	_, _, _, edx := arch.CPUID(0x80000007, 0)
	return edx&(1<<8) != 0
}

// mapPage maps size bytes of the memory file at off into the Sentry,
// shared, read-write. The mapping outlives the memory file's own (it
// holds the file open), so a late update never writes through a stale
// address.
func mapPage(fd int, off uint64, size int) ([]byte, error) {
	return unix.Mmap(fd, int64(off), size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func dataAt(b []byte) *vvarData { return (*vvarData)(unsafe.Pointer(&b[0])) }

// Assembly (tsc_amd64.s).
func rdtsc() uint64
func callC(fn, a0, a1, a2 uintptr) uintptr
