package ptrace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// stubThread is a thread of a stub process that runs one application
// thread; it is traced by its Context's OS thread.
type stubThread struct {
	ctx  *context
	as   *addressSpace
	pid  int
	tid  int
	slot int

	// lastFP is the FP state the host thread holds, as last read or
	// written; fpValid is false when the host state may differ from it.
	lastFP  []byte
	fpValid bool
	reaped  bool // tracer only
	// gen counts resumptions of the thread, so a deferred FP fetch
	// (arch.FPLoader) can tell whether the state it refers to is still
	// the one in the host thread.
	gen    uint64
	lastAC *arch.Context64
	cpu    int // CPU the thread is bound to, -1 if none
}

// context is a platform.Context. Everything but interrupt, running and the
// dead list is used only by the tracer goroutine.
type context struct {
	p      *Platform
	tracer int // OS thread that traces all of this Context's stub threads

	threads map[*addressSpace]*stubThread
	lastAS  *addressSpace
	last    *stubThread

	interrupt atomic.Bool
	running   atomic.Pointer[stubThread]

	deadMu  sync.Mutex
	dead    []*stubThread
	hasDead atomic.Bool

	released bool
	regs     arch.Registers // scratch, so Switch allocates nothing
	siginfo  [128]byte
}

var _ platform.Context = (*context)(nil)

func newContext(p *Platform) *context {
	return &context{p: p, threads: make(map[*addressSpace]*stubThread)}
}

// Switch implements platform.Context.Switch.
func (c *context) Switch(asI platform.AddressSpace, ac *arch.Context64, trap *platform.Trap) error {
	as, ok := asI.(*addressSpace)
	if !ok || as.p != c.p {
		return fmt.Errorf("ptrace: Switch into a foreign address space: %w", unix.EINVAL)
	}
	if c.released {
		return fmt.Errorf("ptrace: Switch on a released Context: %w", unix.EINVAL)
	}
	if c.hasDead.Load() {
		c.reapDead()
	}
	if c.tracer != 0 && gettid() != c.tracer {
		return platform.ErrContextThread
	}
	t := c.last
	if c.lastAS != as {
		var err error
		if t, err = c.thread(as); err != nil {
			return err
		}
		c.last, c.lastAS = t, as
	}
	c.running.Store(t)
	defer c.running.Store(nil)
	if c.interrupt.Swap(false) {
		*trap = platform.Trap{Kind: platform.TrapInterrupted}
		return nil
	}
	return c.run(t, ac, trap)
}

// run resumes t with ac's state until it traps.
func (c *context) run(t *stubThread, ac *arch.Context64, trap *platform.Trap) error {
	c.regs = ac.Regs
	// With orig_rax -1 the host never applies its own syscall-restart
	// logic to state that the Sentry owns.
	c.regs.Orig_rax = ^uint64(0)
	if e := setRegs(t.tid, &c.regs); e != 0 {
		return c.failed(t, "setting registers", e)
	}
	if l, gen := ac.PendingFP(); l != nil && (l != arch.FPLoader(t) || gen != t.gen) {
		// Deferred from another thread or an older stop: no longer
		// fetchable, so ac.FP is what the Sentry has.
		ac.SetFPLoader(nil, 0)
	}
	if ac != t.lastAC {
		t.fpValid = false
		t.lastAC = ac
	}
	if !t.fpValid || !bytes.Equal(ac.FP, t.lastFP[:min(len(ac.FP), len(t.lastFP))]) {
		copy(t.lastFP, ac.FP)
		if e := setFP(t.tid, t.lastFP); e != 0 {
			t.fpValid = false
			return fmt.Errorf("ptrace: loading FP state: %w", e)
		}
		t.fpValid = true
	}
	pinToCurrentCPU(t.tid, &t.cpu)
	for {
		t.gen++
		if e := ptrace(ptraceSysemu, t.tid, 0, 0); e != 0 {
			return c.failed(t, "resuming", e)
		}
		ws, err := wait(t.tid)
		if err != nil {
			return c.failed(t, "waiting", err)
		}
		if ws.Exited() || ws.Signaled() {
			c.forget(t)
			return platform.ErrStubDied
		}
		if !ws.Stopped() {
			continue
		}
		sig := ws.StopSignal()
		switch {
		case sig == syscallStopSig:
			if err := c.save(t, ac); err != nil {
				return err
			}
			*trap = platform.Trap{Kind: platform.TrapSyscall}
			return nil
		case ws.TrapCause() == ptraceEventStop || sig == unix.SIGSTOP:
			// Our interrupt (or a stop from outside, which is discarded).
			if err := c.save(t, ac); err != nil {
				return err
			}
			c.interrupt.Store(false)
			*trap = platform.Trap{Kind: platform.TrapInterrupted}
			return nil
		case sig == unix.SIGSEGV:
			// Eager FP: delivering the signal to the stub's handler
			// resets the host FP state.
			if err := c.saveFP(t, ac, true); err != nil {
				return err
			}
			handled, err := c.fault(t, trap)
			if err != nil || handled {
				return err
			}
			// A SIGSEGV sent from outside: ignore it and carry on.
			return c.run(t, ac, trap)
		}
		if e := ptrace(unix.PTRACE_GETSIGINFO, t.tid, 0, uintptr(unsafe.Pointer(&c.siginfo))); e != 0 {
			return c.failed(t, "reading siginfo", e)
		}
		code := int32(binary.LittleEndian.Uint32(c.siginfo[8:]))
		if code > 0 && isSynchronous(sig) {
			if err := c.save(t, ac); err != nil {
				return err
			}
			*trap = platform.Trap{
				Kind:  platform.TrapSignal,
				Signo: int32(sig),
				Code:  code,
				Addr:  hostarch.Addr(binary.LittleEndian.Uint64(c.siginfo[16:])),
			}
			return nil
		}
		// Asynchronous signals from outside are discarded: the
		// application's signals are the Sentry's business, not the host's.
	}
}

func isSynchronous(sig unix.Signal) bool {
	switch sig {
	case unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS:
		return true
	}
	return false
}

// fault lets the stub's SIGSEGV handler run so it can report the hardware
// error code, trap number and fault address, then fills trap. handled is
// false for a SIGSEGV that did not come from the hardware.
func (c *context) fault(t *stubThread, trap *platform.Trap) (handled bool, err error) {
	t.fpValid = false // signal delivery resets the host FP state
	sig := uintptr(unix.SIGSEGV)
	for {
		t.gen++
		if e := ptrace(ptraceSysemu, t.tid, 0, sig); e != 0 {
			return false, c.failed(t, "delivering SIGSEGV to stub", e)
		}
		sig = 0
		ws, err := wait(t.tid)
		if err != nil {
			return false, c.failed(t, "waiting", err)
		}
		if ws.Exited() || ws.Signaled() {
			c.forget(t)
			return false, platform.ErrStubDied
		}
		if !ws.Stopped() {
			continue
		}
		s := ws.StopSignal()
		if s == syscallStopSig {
			break
		}
		if s == unix.SIGSTOP || ws.TrapCause() == ptraceEventStop {
			c.interrupt.Store(true) // report it on the next Switch
			continue
		}
		if s == unix.SIGSEGV {
			// The handler frame could not be built: report what siginfo says.
			if e := ptrace(unix.PTRACE_GETSIGINFO, t.tid, 0, uintptr(unsafe.Pointer(&c.siginfo))); e != 0 {
				return false, c.failed(t, "reading siginfo", e)
			}
			*trap = platform.Trap{
				Kind:  platform.TrapSignal,
				Signo: int32(unix.SIGSEGV),
				Code:  int32(binary.LittleEndian.Uint32(c.siginfo[8:])),
				Addr:  hostarch.Addr(binary.LittleEndian.Uint64(c.siginfo[16:])),
			}
			return true, nil
		}
	}
	if e := getRegs(t.tid, &c.regs); e != 0 {
		return false, c.failed(t, "reading handler registers", e)
	}
	if c.regs.Orig_rax != handlerMagic || c.regs.Rip != uint64(c.p.layout.handlerTrap) {
		return false, c.failed(t, "stub fault handler", fmt.Errorf("unexpected trap at %#x (syscall %d)", c.regs.Rip, int64(c.regs.Orig_rax)))
	}
	errCode, trapno, cr2 := c.regs.R12, c.regs.R13, c.regs.R14
	code := int32(uint32(c.regs.R15))
	if code <= 0 {
		return false, nil
	}
	if trapno == stubproc.PageFaultTrap {
		at := stubproc.PageFaultAccess(errCode)
		*trap = platform.Trap{Kind: platform.TrapFault, Addr: hostarch.Addr(cr2), Access: at, Signo: int32(unix.SIGSEGV), Code: code}
		return true, nil
	}
	*trap = platform.Trap{Kind: platform.TrapSignal, Signo: int32(unix.SIGSEGV), Code: code, Addr: hostarch.Addr(c.regs.Rbx)}
	return true, nil
}

// save copies the stopped thread's state into ac (the FP state only when
// the platform does not defer it).
func (c *context) save(t *stubThread, ac *arch.Context64) error {
	return c.saveFP(t, ac, !c.p.lazyFP)
}

func (c *context) saveFP(t *stubThread, ac *arch.Context64, eagerFP bool) error {
	if e := getRegs(t.tid, &ac.Regs); e != 0 {
		return c.failed(t, "reading registers", e)
	}
	if !eagerFP {
		// ac.FP keeps the value last synced with the thread; the thread
		// holds the current one until someone asks (arch.SyncFP).
		ac.SetFPLoader(t, t.gen)
		return nil
	}
	ac.SetFPLoader(nil, 0)
	if _, e := getFP(t.tid, t.lastFP); e != 0 {
		t.fpValid = false
		return c.failed(t, "reading FP state", e)
	}
	copy(ac.FP, t.lastFP)
	t.fpValid = true
	return nil
}

// LoadFP implements arch.FPLoader: it fetches the FP state the thread has
// held since stop gen. Only the tracer thread can do this.
func (t *stubThread) LoadFP(dst arch.FPState, gen uint64) bool {
	if gen != t.gen || t.reaped || gettid() != t.ctx.tracer {
		log.Warningf("ptrace: FP state of stub thread %d requested after it ran on or off its tracer thread; using the last saved state", t.tid)
		return false
	}
	if _, e := getFP(t.tid, t.lastFP); e != 0 {
		t.fpValid = false
		return false
	}
	copy(dst, t.lastFP)
	t.fpValid = true
	return true
}

// failed turns a ptrace failure on t into an error for the task. ESRCH
// means the thread is gone (killed with its stub): reap it.
func (c *context) failed(t *stubThread, what string, err error) error {
	if err == unix.ESRCH || err == unix.ECHILD {
		c.reap(t)
		c.forget(t)
		return platform.ErrStubDied
	}
	return fmt.Errorf("ptrace: %s stub thread %d: %w", what, t.tid, err)
}

// forget drops t from the Context's threads.
func (c *context) forget(t *stubThread) {
	t.reaped = true
	t.as.forgetLocal(t)
	if c.threads[t.as] == t {
		delete(c.threads, t.as)
	}
	if c.last == t {
		c.last, c.lastAS = nil, nil
	}
}

// thread creates and attaches this Context's thread in as.
func (c *context) thread(as *addressSpace) (*stubThread, error) {
	if t, ok := c.threads[as]; ok {
		return t, nil
	}
	self := gettid()
	if c.tracer == 0 {
		c.tracer = self
	} else if c.tracer != self {
		return nil, platform.ErrContextThread
	}
	tid, slot, err := as.newThread()
	if err != nil {
		return nil, err
	}
	t := &stubThread{cpu: -1, ctx: c, as: as, pid: as.pid, tid: tid, slot: slot, lastFP: alignedBytes(c.p.fpSize)}
	if err := c.attach(t); err != nil {
		// The thread is left parked; it dies with its stub.
		return nil, err
	}
	if !as.addThread(t) {
		c.reap(t)
		return nil, platform.ErrStubDied
	}
	c.threads[as] = t
	return t, nil
}

// attach seizes t and runs it until it is parked in pause(2), which means
// its alternate signal stack is set up.
func (c *context) attach(t *stubThread) error {
	if e := ptrace(unix.PTRACE_SEIZE, t.tid, 0, traceOptions); e != 0 {
		return fmt.Errorf("ptrace: PTRACE_SEIZE of stub thread %d: %w", t.tid, e)
	}
	if e := ptrace(unix.PTRACE_INTERRUPT, t.tid, 0, 0); e != 0 {
		return c.failed(t, "interrupting new", e)
	}
	for i := 0; ; i++ {
		ws, err := wait(t.tid)
		if err != nil {
			return c.failed(t, "waiting for new", err)
		}
		if ws.Exited() || ws.Signaled() {
			t.reaped = true
			return platform.ErrStubDied
		}
		if ws.Stopped() && ws.StopSignal() == syscallStopSig {
			if e := getRegs(t.tid, &c.regs); e != 0 {
				return c.failed(t, "reading new", e)
			}
			if c.regs.Orig_rax == unix.SYS_PAUSE {
				return nil
			}
		}
		if i > 100 {
			return fmt.Errorf("ptrace: stub thread %d did not reach its parking loop", t.tid)
		}
		if e := ptrace(unix.PTRACE_SYSCALL, t.tid, 0, 0); e != 0 {
			return c.failed(t, "stepping new", e)
		}
	}
}

// Interrupt implements platform.Context.Interrupt.
func (c *context) Interrupt() {
	c.interrupt.Store(true)
	if t := c.running.Load(); t != nil {
		unix.Tgkill(t.pid, t.tid, unix.SIGSTOP)
	}
}

// addDead queues t, whose stub was killed, to be reaped by the tracer.
func (c *context) addDead(t *stubThread) {
	c.deadMu.Lock()
	c.dead = append(c.dead, t)
	c.hasDead.Store(true)
	c.deadMu.Unlock()
}

// reapDead reaps the threads of released address spaces.
func (c *context) reapDead() {
	c.deadMu.Lock()
	dead := c.dead
	c.dead = nil
	c.hasDead.Store(false)
	c.deadMu.Unlock()
	for _, t := range dead {
		c.reap(t)
		c.forget(t)
	}
}

// reap collects an exiting thread's exit status so the host can free it
// (a traced thread stays a zombie until its tracer does this).
func (c *context) reap(t *stubThread) {
	if t.reaped || gettid() != c.tracer {
		return
	}
	for {
		ws, err := wait(t.tid)
		if err != nil || ws.Exited() || ws.Signaled() {
			break
		}
		// Still stopped from before the kill: let the kill take effect.
		ptrace(unix.PTRACE_CONT, t.tid, 0, 0)
	}
	t.reaped = true
}

// Release implements platform.Context.Release. Called on the goroutine
// that switched the Context, it makes each of its stub threads exit; from
// anywhere else the threads are left to die with their stubs.
func (c *context) Release() {
	if c.released {
		return
	}
	c.released = true
	c.reapDead()
	if len(c.threads) > 0 && gettid() != c.tracer {
		log.Warningf("ptrace: Context released off its tracer thread; %d stub threads left to their stubs", len(c.threads))
		return
	}
	for _, t := range c.threads {
		c.exitThread(t)
	}
	c.threads = nil
	c.last, c.lastAS = nil, nil
}

// exitThread makes t call exit(2) and reaps it.
func (c *context) exitThread(t *stubThread) {
	if e := getRegs(t.tid, &c.regs); e == 0 {
		c.regs.Rip = uint64(c.p.layout.syscallGadget)
		c.regs.Rax = unix.SYS_EXIT
		c.regs.Rdi = 0
		c.regs.Orig_rax = ^uint64(0)
		if setRegs(t.tid, &c.regs) == 0 {
			ptrace(unix.PTRACE_CONT, t.tid, 0, 0)
		}
	}
	c.reap(t)
	t.as.removeThread(t)
}

// alignedBytes returns n zero bytes at a 64-byte aligned address, as the
// XSAVE layout expects.
func alignedBytes(n int) []byte {
	buf := make([]byte, n+63)
	off := int((64 - uintptr(unsafe.Pointer(&buf[0]))%64) % 64)
	return buf[off : off+n : off+n]
}

// pinToCurrentCPU binds tracee tid to the CPU the tracer runs on, so that
// resuming it and waiting for it are switches on one CPU. The CPU comes
// from getcpu, not stubproc.CurrentCPU: ptrace must keep working on hosts
// whose CPU or hypervisor hides RDTSCP.
func pinToCurrentCPU(tid int, bound *int) {
	var cpu, node uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), uintptr(unsafe.Pointer(&node)), 0); e != 0 {
		return
	}
	stubproc.PinTo(tid, int(cpu), bound)
}
