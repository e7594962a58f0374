package systrap

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"golang.org/x/sys/unix"
)

// memOpTimeout bounds how long the Sentry waits for the stub's main thread
// to answer a memory request; it only runs stub code, so silence this long
// means it is gone or wedged.
const memOpTimeout = 10 * time.Second

// addressSpace is one stub process.
type addressSpace struct {
	p   *Platform
	pid int

	pidMu  sync.Mutex
	pidFD  int // guarded by pidMu: readable once the stub exits; -1 once closed
	reqFD  int // write end: one byte per request to the stub's main thread
	doneFD int // read end: one byte per completed request

	ctl pgalloc.FileRange // control area: ctlROSize read-only + ctlRWSize read-write
	ro  []byte            // the Sentry's view of the read-only part
	rw  []byte            // the Sentry's view of the read-write part (untrusted)

	cpuidFaulting bool

	opMu     sync.Mutex // serializes requests (and guards ro's request part)
	reqSeq   uint64     // guarded by opMu: requests sent
	memopCPU int        // guarded by opMu: CPU the main thread is bound to

	dead atomic.Bool // killed (Release) or found dead

	mu        sync.Mutex
	released  bool
	refs      int // the address space's own, plus one per live thread
	slots     []slotMem
	freeSlots []int
	threads   map[*stubThread]struct{}
}

// slotMem is the memory of one thread slot, kept for reuse.
type slotMem struct {
	ctx  pgalloc.FileRange
	page []byte
}

var _ platform.AddressSpace = (*addressSpace)(nil)

// sysOp is one syscall the stub's main thread executes for the Sentry.
type sysOp struct {
	nr   uintptr
	args [6]uintptr
}

func (p *Platform) newAddressSpace() (*addressSpace, error) {
	ctl, err := p.mf.Allocate(ctlROSize + ctlRWSize)
	if err != nil {
		return nil, fmt.Errorf("systrap: allocating control pages: %w", err)
	}
	m, err := p.mf.MapInternal(ctl)
	if err != nil {
		p.mf.DecRef(ctl)
		return nil, fmt.Errorf("systrap: mapping control pages: %w", err)
	}
	as := &addressSpace{p: p, pidFD: -1, memopCPU: -1, ctl: ctl, ro: m[:ctlROSize], rw: m[ctlROSize:], refs: 1, threads: make(map[*stubThread]struct{})}
	writeControlRO(as.ro, p.layout)
	binary.LittleEndian.PutUint32(as.ro[roMemOpSpin:], uint32(p.memOpSpin/2))
	if err := as.start(); err != nil {
		p.mf.DecRef(ctl)
		return nil, err
	}
	return as, nil
}

// start creates the stub process and waits until it is ready.
func (as *addressSpace) start() error {
	pid, fds, err := as.p.forkStub(as.ctl.Start)
	if err != nil {
		return err
	}
	as.pid, as.reqFD, as.doneFD, as.pidFD = pid, fds.reqW, fds.doneR, fds.pidFD
	if err := as.awaitReply(); err != nil {
		as.kill()
		as.closeFDs()
		as.waitExited(memOpTimeout)
		unix.Close(as.pidFD)
		return fmt.Errorf("systrap: stub %d did not start: %w", as.pid, err)
	}
	as.cpuidFaulting = binary.LittleEndian.Uint64(as.rw[rwCPUID:]) == 0
	return nil
}

// waitReadable waits until fd is readable, at most d.
func waitReadable(fd int, d time.Duration) error {
	deadline := time.Now().Add(d)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("no answer in %v: %w", d, platform.ErrStubDied)
		}
		n, err := unix.Poll(fds, pollMillis(left))
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return fmt.Errorf("polling: %w", err)
		}
		return nil
	}
}

// awaitReply waits for the stub's main thread to finish a request.
func (as *addressSpace) awaitReply() error {
	if err := waitReadable(as.doneFD, memOpTimeout); err != nil {
		return err
	}
	var b [1]byte
	for {
		n, err := unix.Read(as.doneFD, b[:])
		if err == unix.EINTR {
			continue
		}
		if n == 1 {
			return nil
		}
		return platform.ErrStubDied
	}
}

// execute has the stub's main thread make the syscalls in ops, in order,
// and stores their raw results in res (if non-nil). An op's failure does
// not stop the ones after it.
func (as *addressSpace) execute(ops []sysOp, res []uintptr) error {
	if len(ops) > maxOps {
		return fmt.Errorf("systrap: %d memory operations in one request: %w", len(ops), unix.EINVAL)
	}
	as.opMu.Lock()
	defer as.opMu.Unlock()
	if as.dead.Load() {
		return platform.ErrStubDied
	}
	for i, op := range ops {
		o := as.ro[roOps+i*opSize:]
		binary.LittleEndian.PutUint64(o, uint64(op.nr))
		for j, a := range op.args {
			binary.LittleEndian.PutUint64(o[8+8*j:], uint64(a))
		}
	}
	binary.LittleEndian.PutUint64(as.ro[roNOps:], uint64(len(ops)))
	as.reqSeq++
	if as.p.pin {
		pinTo(as.pid, &as.memopCPU)
	}
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&as.ro[roReqSeq])), as.reqSeq)
	var b = [1]byte{1}
	for {
		_, err := unix.Write(as.reqFD, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			as.markDead()
			return fmt.Errorf("%w: sending request: %v", platform.ErrStubDied, err)
		}
		break
	}
	// The stub publishes the counter just before its reply byte: spin on
	// it (a hint only, the page is the application's to scribble on) so
	// that the reply is usually there when the Sentry reads.
	done := (*uint64)(unsafe.Pointer(&as.rw[rwDoneSeq]))
	for i := 0; i < as.p.memOpSpin && atomic.LoadUint64(done) != as.reqSeq; i++ {
	}
	if err := as.awaitReply(); err != nil {
		as.markDead()
		log.Warningf("systrap: stub %d: %v", as.pid, err)
		return platform.ErrStubDied
	}
	// Results come from memory the application can write: they are
	// advisory (an application can only lie about its own mappings).
	for i := range res {
		if i < len(ops) {
			res[i] = uintptr(binary.LittleEndian.Uint64(as.rw[rwResults+8*i:]))
		}
	}
	return nil
}

// errnoOf converts a raw syscall result.
func errnoOf(r uintptr) error {
	if v := int64(r); v < 0 && v > -4096 {
		return unix.Errno(-v)
	}
	return nil
}

// MapFile implements platform.AddressSpace.MapFile.
func (as *addressSpace) MapFile(addr hostarch.Addr, offset, length uint64, at hostarch.AccessType, precommit bool) error {
	if err := as.p.CheckMapFile(addr, offset, length); err != nil {
		return fmt.Errorf("systrap: MapFile: %w", err)
	}
	flags := uintptr(unix.MAP_SHARED | unix.MAP_FIXED)
	if precommit {
		flags |= unix.MAP_POPULATE
	}
	ops := [1]sysOp{{nr: unix.SYS_MMAP, args: [6]uintptr{uintptr(addr), uintptr(length), uintptr(at.Prot()), flags, uintptr(as.p.memFD), uintptr(offset)}}}
	var res [1]uintptr
	if err := as.execute(ops[:], res[:]); err != nil {
		return fmt.Errorf("systrap: mapping file [%#x, +%#x) at %#x: %w", offset, length, uintptr(addr), err)
	}
	if err := errnoOf(res[0]); err != nil {
		return fmt.Errorf("systrap: mapping file [%#x, +%#x) at %#x: %w", offset, length, uintptr(addr), err)
	}
	return nil
}

// Unmap implements platform.AddressSpace.Unmap.
func (as *addressSpace) Unmap(addr hostarch.Addr, length uint64) {
	addr, end, ok := as.p.ClampUnmap(addr, length)
	if !ok {
		return
	}
	ops := [1]sysOp{{nr: unix.SYS_MUNMAP, args: [6]uintptr{uintptr(addr), uintptr(end - addr)}}}
	if err := as.execute(ops[:], nil); err != nil && err != platform.ErrStubDied {
		log.Warningf("systrap: unmapping [%#x, %#x) in stub %d: %v", uintptr(addr), uintptr(end), as.pid, err)
	}
}

// newThread clones a thread in the stub and waits until it is parked in
// the handler. Its slot's context page and stack are mapped in the same
// request as the clone.
func (as *addressSpace) newThread() (*stubThread, error) {
	as.mu.Lock()
	if as.released {
		as.mu.Unlock()
		return nil, platform.ErrStubDied
	}
	slot := -1
	if n := len(as.freeSlots); n > 0 {
		slot = as.freeSlots[n-1]
		as.freeSlots = as.freeSlots[:n-1]
	} else if len(as.slots) < maxSlots {
		slot = len(as.slots)
		as.slots = append(as.slots, slotMem{})
	}
	if slot < 0 {
		as.mu.Unlock()
		return nil, fmt.Errorf("systrap: stub has %d threads already: %w", maxSlots, unix.EAGAIN)
	}
	as.refs++
	sm := as.slots[slot]
	as.mu.Unlock()

	fail := func(err error) (*stubThread, error) {
		as.mu.Lock()
		as.freeSlots = append(as.freeSlots, slot)
		as.mu.Unlock()
		as.unref()
		return nil, err
	}
	l := &as.p.layout
	var ops [3]sysOp
	n := 0
	if sm.page == nil {
		fr, err := as.p.mf.Allocate(ctxSize)
		if err != nil {
			return fail(fmt.Errorf("systrap: allocating context page: %w", err))
		}
		m, err := as.p.mf.MapInternal(fr)
		if err != nil {
			as.p.mf.DecRef(fr)
			return fail(fmt.Errorf("systrap: mapping context page: %w", err))
		}
		sm = slotMem{ctx: fr, page: m}
		as.mu.Lock()
		as.slots[slot] = sm
		as.mu.Unlock()
		ops[0] = sysOp{nr: unix.SYS_MMAP, args: [6]uintptr{l.ctxAddr(slot), ctxSize, unix.PROT_READ | unix.PROT_WRITE,
			unix.MAP_SHARED | unix.MAP_FIXED, uintptr(as.p.memFD), uintptr(fr.Start)}}
		ops[1] = sysOp{nr: unix.SYS_MMAP, args: [6]uintptr{l.stackAddr(slot), stackSize, unix.PROT_READ | unix.PROT_WRITE,
			unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, ^uintptr(0), 0}}
		n = 2
	}
	t := newStubThread(as, slot, sm.page)
	const cloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_CHILD_CLEARTID
	ops[n] = sysOp{nr: unix.SYS_CLONE, args: [6]uintptr{cloneFlags, l.stackAddr(slot), 0, l.ctxAddr(slot) + ctxState, 0}}
	n++
	var res [3]uintptr
	if err := as.execute(ops[:n], res[:n]); err != nil {
		return fail(fmt.Errorf("systrap: creating stub thread: %w", err))
	}
	for i := 0; i < n-1; i++ {
		if err := errnoOf(res[i]); err != nil {
			return fail(fmt.Errorf("systrap: mapping stub thread memory: %w", err))
		}
	}
	if err := errnoOf(res[n-1]); err != nil {
		return fail(fmt.Errorf("systrap: cloning stub thread: %w", err))
	}
	t.tid = int(res[n-1])
	if err := t.awaitPark(); err != nil {
		// The thread may be alive but wedged: its slot is not reused.
		as.unref()
		return nil, err
	}
	as.mu.Lock()
	if as.released {
		as.mu.Unlock()
		as.unref()
		return nil, platform.ErrStubDied
	}
	as.threads[t] = struct{}{}
	as.mu.Unlock()
	return t, nil
}

// threadGone is called by a Context once it no longer uses t. reusable
// says that t's host thread is known to have exited, so its slot may be
// handed out again.
func (as *addressSpace) threadGone(t *stubThread, reusable bool) {
	as.mu.Lock()
	delete(as.threads, t)
	if reusable && !as.released {
		as.freeSlots = append(as.freeSlots, t.slot)
	}
	as.mu.Unlock()
	as.unref()
}

// unref drops a reference; the last frees the shared pages, which no one
// can touch any more: the stub is dead and no Context holds a thread.
func (as *addressSpace) unref() {
	as.mu.Lock()
	as.refs--
	last := as.refs == 0
	as.mu.Unlock()
	if !last {
		return
	}
	// A dying stub still maps these pages (and the kernel zeroes each
	// thread's state word as it exits): they may go back to the memory
	// file only once the process is gone, or they would be scribbled on
	// after being handed to someone else.
	if !as.waitExited(memOpTimeout) {
		log.Warningf("systrap: stub %d did not exit; leaking its %d shared pages", as.pid, len(as.slots)*ctxSize/hostarch.PageSize+3)
		return
	}
	as.pidMu.Lock()
	unix.Close(as.pidFD)
	as.pidFD = -1
	as.pidMu.Unlock()
	for _, sm := range as.slots {
		if sm.page != nil {
			as.p.mf.DecRef(sm.ctx)
		}
	}
	as.slots = nil
	as.p.mf.DecRef(as.ctl)
}

// kill kills the stub unless it has exited already (its pid may then be
// reused). kill(2) rather than pidfd_send_signal(2): the Sentry's seccomp
// filter allows the former with SIGKILL.
func (as *addressSpace) kill() {
	if as.pid <= 0 || as.exited() {
		return
	}
	unix.Kill(as.pid, unix.SIGKILL)
}

// exited reports whether the stub process is known to have exited.
func (as *addressSpace) exited() bool { return as.waitExited(0) }

// waitExited waits at most d for the stub process to exit and reports
// whether it has.
func (as *addressSpace) waitExited(d time.Duration) bool {
	return as.waitExitedUntil(time.Now().Add(d))
}

// waitExitedUntil waits until deadline at most for the stub process to
// exit and reports whether it has. A deadline already past only checks.
func (as *addressSpace) waitExitedUntil(deadline time.Time) bool {
	as.pidMu.Lock()
	defer as.pidMu.Unlock()
	if as.pidFD < 0 {
		return true // closed only once the stub was seen to exit
	}
	fds := [1]unix.PollFd{{Fd: int32(as.pidFD), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds[:], pollMillis(time.Until(deadline)))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n == 1
	}
}

// pollMillis is poll(2)'s timeout for a wait with left to go: whole
// milliseconds rounded up, and 0 once the deadline has passed. Never
// negative: poll waits forever for any negative timeout, and a deadline
// that passed while the caller was descheduled, or retried after EINTR,
// must end the wait. (It once made the liveness check in Switch's
// polling loop, waitExited(0), block until the stub died, so the thread's
// next trap went unanswered.)
func pollMillis(left time.Duration) int {
	if left <= 0 {
		return 0
	}
	return int((left + time.Millisecond - 1) / time.Millisecond)
}

// markDead kills the stub after a failure, so every thread's waiter sees
// it gone.
func (as *addressSpace) markDead() {
	if as.dead.Swap(true) {
		return
	}
	as.kill()
	as.wakeAll()
}

// wakeAll wakes every Sentry waiter of the stub's threads, so they notice
// the stub is dead.
func (as *addressSpace) wakeAll() {
	as.mu.Lock()
	defer as.mu.Unlock()
	for t := range as.threads {
		futexWake(t.state)
	}
}

func (as *addressSpace) closeFDs() {
	unix.Close(as.reqFD)
	unix.Close(as.doneFD)
}

// Release implements platform.AddressSpace.Release: the stub is killed
// and reaped; its pages are freed once every Context has dropped its
// thread in it.
func (as *addressSpace) Release() {
	as.mu.Lock()
	if as.released {
		as.mu.Unlock()
		return
	}
	as.released = true
	as.mu.Unlock()
	as.dead.Store(true)
	as.kill()
	as.wakeAll()
	as.opMu.Lock() // no request in flight past this point
	as.closeFDs()
	as.opMu.Unlock()
	// The zygote, the stub's parent, ignores SIGCHLD: the kernel reaps
	// the stub.
	as.unref()
}

// futexWake wakes one waiter on the shared futex word w.
func futexWake(w *uint32) {
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWakeOp, 1, 0, 0, 0)
}

// futexWait waits while *w == v, at most d.
func futexWait(w *uint32, v uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWaitOp, uintptr(v), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// Shared (not FUTEX_PRIVATE) futex operations: the word is in a page of
// the memory file mapped in two processes.
const (
	futexWaitOp = 0
	futexWakeOp = 1
)

// interruptThread sends the interrupt signal to thread tid of the stub.
// The stub's main thread sends it (tgkill of its own process): the
// Sentry's seccomp filter lets the Sentry send no signal but SIGSTOP and
// SIGKILL to other processes. It returns at once; the signal follows
// within one memory-request round trip.
func (as *addressSpace) interruptThread(tid int) {
	go func() {
		ops := [1]sysOp{{nr: unix.SYS_TGKILL, args: [6]uintptr{uintptr(as.pid), uintptr(tid), uintptr(interruptSignal)}}}
		if err := as.execute(ops[:], nil); err != nil && err != platform.ErrStubDied {
			log.Warningf("systrap: interrupting stub %d thread %d: %v", as.pid, tid, err)
		}
	}()
}
