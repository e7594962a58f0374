package systrap

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// Timing of the Sentry's wait for a trap.
const (
	// pollInterval is how often a sleeping Switch checks that the thread
	// is alive and that a requested interrupt was answered.
	pollInterval = 50 * time.Millisecond
	// interruptResend: a thread that has not trapped this long after an
	// Interrupt gets the signal again (until interruptGiveUp; it can only
	// be blocking signals by forging a signal frame).
	interruptResend = time.Second

	// parkTimeout bounds the wait for a new thread to reach its handler.
	parkTimeout = 10 * time.Second

	// Spin bounds, in polls of the state word (a few nanoseconds each, no
	// PAUSE: see stub_amd64.gas), for the Sentry's wait (adapted per
	// Context) and the stub's (fixed).
	sentrySpinStart = 2000
	sentrySpinMax   = 100000

	interruptSignal = unix.SIGUSR2

	// scFPStateOffset is where struct sigcontext keeps the fpstate
	// pointer; the registers before it are what the handler restores.
	scFPStateOffset = 184
)

// interruptGiveUp is how long a thread may ignore an Interrupt before
// Switch declares it wedged (a variable for tests).
var interruptGiveUp = 5 * time.Second

// stubThread is one thread of a stub process, parked in the stub's handler
// whenever its Context is not in Switch.
type stubThread struct {
	as    *addressSpace
	slot  int
	tid   int
	page  []byte  // the Sentry's view of the context page (untrusted)
	state *uint32 // futex word in page
	dead  bool    // known to have exited (owner only)
	cpu   int     // CPU the thread is bound to, -1 if none (owner only)
}

func newStubThread(as *addressSpace, slot int, page []byte) *stubThread {
	t := &stubThread{cpu: -1, as: as, slot: slot, page: page, state: (*uint32)(unsafe.Pointer(&page[ctxState]))}
	clear(page[:ctxMcontext+256])
	var flags uint32
	if as.p.fsgsbase {
		flags |= ctxFlagFSGSBase
	}
	binary.LittleEndian.PutUint32(page[ctxFlags:], flags)
	binary.LittleEndian.PutUint32(page[ctxSpin:], uint32(as.p.stubSpin))
	return t
}

func (t *stubThread) word(off int) *uint32 { return (*uint32)(unsafe.Pointer(&t.page[off])) }

// alive reports whether the host thread may still exist: its stub has
// not exited, and the kernel has not zeroed its state word on exit
// (CLONE_CHILD_CLEARTID; an application can forge that too, but then it
// only kills itself). Signal 0 would be exact but the Sentry's seccomp
// filter does not allow it.
func (t *stubThread) alive() bool {
	return !t.as.dead.Load() && !t.as.exited() && atomic.LoadUint32(t.state) != 0
}

// awaitPark waits for a new thread's first trap, which parks it.
func (t *stubThread) awaitPark() error {
	deadline := time.Now().Add(parkTimeout)
	for atomic.LoadUint32(t.state) != stateTrapped {
		if t.as.dead.Load() {
			return platform.ErrStubDied
		}
		if e := int64(binary.LittleEndian.Uint64(t.page[ctxSetupErr:])); e < 0 && e > -4096 {
			errno := unix.Errno(-e)
			return fmt.Errorf("systrap: new stub thread %d could not set up its signal stack or seccomp filter: %w", t.tid, errno)
		}
		if t.as.exited() {
			return fmt.Errorf("%w: stub exited while thread %d was starting", platform.ErrStubDied, t.tid)
		}
		if time.Now().After(deadline) {
			t.as.markDead()
			return fmt.Errorf("%w: new stub thread %d never reached its handler", platform.ErrStubDied, t.tid)
		}
		atomic.StoreUint32(t.word(ctxSentrySleep), 1)
		if v := atomic.LoadUint32(t.state); v != stateTrapped {
			futexWait(t.state, v, 10*time.Millisecond)
		}
		atomic.StoreUint32(t.word(ctxSentrySleep), 0)
	}
	return nil
}

// context is a platform.Context: one application thread, which has a
// stub thread in each address space it has run in.
type context struct {
	p       *Platform
	threads map[*addressSpace]*stubThread
	lastAS  *addressSpace
	last    *stubThread

	interrupt atomic.Bool
	running   atomic.Pointer[stubThread]

	spin     int // adaptive Sentry spin
	released bool

	mctx    [256]byte // scratch copies, so Switch allocates nothing
	siginfo [64]byte
}

var _ platform.Context = (*context)(nil)

// Switch implements platform.Context.Switch.
func (c *context) Switch(asI platform.AddressSpace, ac *arch.Context64, trap *platform.Trap) error {
	as, ok := asI.(*addressSpace)
	if !ok || as.p != c.p {
		return fmt.Errorf("systrap: Switch into a foreign address space: %w", unix.EINVAL)
	}
	if c.released {
		return fmt.Errorf("systrap: Switch on a released Context: %w", unix.EINVAL)
	}
	t := c.last
	if c.lastAS != as {
		var err error
		if t, err = c.thread(as); err != nil {
			return err
		}
		c.last, c.lastAS = t, as
	}
	if as.dead.Load() {
		c.drop(t)
		return platform.ErrStubDied
	}
	c.running.Store(t)
	defer c.running.Store(nil)
	if c.interrupt.Swap(false) {
		*trap = platform.Trap{Kind: platform.TrapInterrupted}
		return nil
	}
	ac.SyncFP()
	for {
		c.load(t, ac)
		if err := c.resumeAndWait(t); err != nil {
			return err
		}
		done, err := c.save(t, ac, trap)
		if err != nil || done {
			return err
		}
	}
}

// load writes ac into the thread's context page.
func (c *context) load(t *stubThread, ac *arch.Context64) {
	r := &ac.Regs
	m := t.page[ctxMcontext : ctxMcontext+scFPStateOffset]
	for i, v := range [...]uint64{r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15,
		r.Rdi, r.Rsi, r.Rbp, r.Rbx, r.Rdx, r.Rax, r.Rcx, r.Rsp, r.Rip, r.Eflags} {
		binary.LittleEndian.PutUint64(m[8*i:], v)
	}
	// cs, gs, fs, ss: the 64-bit user selectors, whatever ac says.
	binary.LittleEndian.PutUint64(m[8*18:], uint64(arch.UserCS)|uint64(arch.UserSS)<<48)
	binary.LittleEndian.PutUint64(t.page[ctxFSBase:], r.Fs_base)
	binary.LittleEndian.PutUint64(t.page[ctxGSBase:], r.Gs_base)
	copy(t.page[ctxFP:ctxFP+fpCap], ac.FP)
}

// resumeAndWait lets the thread return to the application and waits for
// its next trap.
func (c *context) resumeAndWait(t *stubThread) error {
	if c.p.pin {
		pinTo(t.tid, &t.cpu)
	}
	atomic.StoreUint32(t.state, stateResume)
	if atomic.LoadUint32(t.word(ctxStubSleep)) != 0 {
		futexWake(t.state)
	}
	// Adaptive: an answer that came while spinning keeps the spin long
	// enough to catch it next time; a miss halves it (to nothing when the
	// thread shares the CPU and cannot answer while the Sentry spins).
	for i := 0; i < c.spin; i++ {
		if atomic.LoadUint32(t.state) == stateTrapped {
			c.spin = min(max(c.spin, 2*i), sentrySpinMax)
			return nil
		}
	}
	c.spin /= 2
	var interruptSeen, lastSignal time.Time
	sleep := t.word(ctxSentrySleep)
	for {
		atomic.StoreUint32(sleep, 1)
		v := atomic.LoadUint32(t.state)
		if v == stateTrapped {
			atomic.StoreUint32(sleep, 0)
			return nil
		}
		futexWait(t.state, v, pollInterval)
		atomic.StoreUint32(sleep, 0)
		if atomic.LoadUint32(t.state) == stateTrapped {
			return nil
		}
		if t.as.dead.Load() || !t.alive() {
			c.drop(t)
			return platform.ErrStubDied
		}
		if c.interrupt.Load() {
			now := time.Now()
			if interruptSeen.IsZero() {
				interruptSeen, lastSignal = now, now
			} else if now.Sub(interruptSeen) > interruptGiveUp {
				t.as.markDead()
				c.drop(t)
				return fmt.Errorf("%w: stub thread %d ignores interrupts", platform.ErrStubDied, t.tid)
			} else if now.Sub(lastSignal) > interruptResend {
				t.as.interruptThread(t.tid)
				lastSignal = now
			}
		}
	}
}

// save copies the trapped thread's state into ac and fills trap. done is
// false for a trap the application must not see (a stray interrupt
// signal): the caller resumes the thread.
func (c *context) save(t *stubThread, ac *arch.Context64, trap *platform.Trap) (done bool, err error) {
	// Copy once: the page may change under us.
	copy(c.mctx[:], t.page[ctxMcontext:ctxMcontext+256])
	copy(c.siginfo[:], t.page[ctxSiginfo:ctxSiginfo+64])
	fpSize := int(binary.LittleEndian.Uint32(t.page[ctxFPSize:]))
	fsBase := binary.LittleEndian.Uint64(t.page[ctxFSBase:])
	gsBase := binary.LittleEndian.Uint64(t.page[ctxGSBase:])
	m := c.mctx[:]
	w := func(i int) uint64 { return binary.LittleEndian.Uint64(m[8*i:]) }
	r := &ac.Regs
	r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15 = w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7)
	r.Rdi, r.Rsi, r.Rbp, r.Rbx, r.Rdx, r.Rax, r.Rcx, r.Rsp = w(8), w(9), w(10), w(11), w(12), w(13), w(14), w(15)
	r.Rip, r.Eflags = w(16), w(17)
	r.Cs, r.Ss = arch.UserCS, arch.UserSS
	r.Orig_rax = ^uint64(0)
	if arch.IsValidTLS(uintptr(fsBase)) {
		r.Fs_base = fsBase
	}
	if arch.IsValidTLS(uintptr(gsBase)) {
		r.Gs_base = gsBase
	}
	ac.SetFPLoader(nil, 0)
	copy(ac.FP, t.page[ctxFP:ctxFP+min(max(fpSize, 0), fpCap, len(ac.FP))])

	signo := int32(binary.LittleEndian.Uint32(c.siginfo[0:]))
	code := int32(binary.LittleEndian.Uint32(c.siginfo[8:]))
	addr := hostarch.Addr(binary.LittleEndian.Uint64(c.siginfo[16:]))
	errCode, trapno, cr2 := w(19), w(20), w(22)
	switch unix.Signal(signo) {
	case unix.SIGSYS:
		const sysSeccomp = 1
		if code != sysSeccomp {
			return false, c.corrupt(t, "SIGSYS with si_code %d", code)
		}
		r.Orig_rax = r.Rax
		*trap = platform.Trap{Kind: platform.TrapSyscall}
		return true, nil
	case interruptSignal:
		if c.interrupt.Swap(false) {
			*trap = platform.Trap{Kind: platform.TrapInterrupted}
			return true, nil
		}
		return false, nil // an Interrupt already reported
	case unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP:
		if code <= 0 {
			return false, c.corrupt(t, "signal %d with si_code %d", signo, code)
		}
		if signo == int32(unix.SIGSEGV) && trapno == stubproc.PageFaultTrap {
			at := stubproc.PageFaultAccess(errCode)
			*trap = platform.Trap{Kind: platform.TrapFault, Addr: hostarch.Addr(cr2), Access: at, Signo: signo, Code: code}
			return true, nil
		}
		*trap = platform.Trap{Kind: platform.TrapSignal, Signo: signo, Code: code, Addr: addr}
		return true, nil
	}
	return false, c.corrupt(t, "unknown signal %d", signo)
}

// corrupt reports a context page that no handler run could have written:
// the application scribbled on it. Its address space is killed.
func (c *context) corrupt(t *stubThread, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	log.Warningf("systrap: stub %d thread %d: corrupt context page: %s", t.as.pid, t.tid, msg)
	t.as.markDead()
	c.drop(t)
	return fmt.Errorf("%w: corrupt context page: %s", platform.ErrStubDied, msg)
}

// thread returns this Context's thread in as, creating it on first use.
func (c *context) thread(as *addressSpace) (*stubThread, error) {
	if t, ok := c.threads[as]; ok {
		return t, nil
	}
	t, err := as.newThread()
	if err != nil {
		return nil, err
	}
	c.threads[as] = t
	return t, nil
}

// drop forgets t, whose stub is dead or which has exited.
func (c *context) drop(t *stubThread) {
	if c.threads[t.as] != t {
		return
	}
	delete(c.threads, t.as)
	if c.last == t {
		c.last, c.lastAS = nil, nil
	}
	t.as.threadGone(t, false)
}

// Interrupt implements platform.Context.Interrupt.
func (c *context) Interrupt() {
	c.interrupt.Store(true)
	if t := c.running.Load(); t != nil {
		t.as.interruptThread(t.tid)
	}
}

// Release implements platform.Context.Release: each of its stub threads
// is told to exit.
func (c *context) Release() {
	if c.released {
		return
	}
	c.released = true
	for as, t := range c.threads {
		reusable := false
		if !as.dead.Load() {
			atomic.StoreUint32(t.state, stateExit)
			futexWake(t.state)
			// The slot can be reused once the thread is surely gone
			// (CLONE_CHILD_CLEARTID zeroes the state word at exit).
			deadline := time.Now().Add(100 * time.Millisecond)
			for time.Now().Before(deadline) {
				if !t.alive() {
					reusable = true
					break
				}
				futexWait(t.state, stateExit, 5*time.Millisecond)
			}
		}
		delete(c.threads, as)
		as.threadGone(t, reusable)
	}
	c.last, c.lastAS = nil, nil
}
