package ptrace

import (
	"fmt"
	"runtime"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// addressSpace is one stub process. Its main thread is traced by a
// dedicated locked OS thread (the manager goroutine), which forked it and
// injects every mmap/munmap/clone it makes; application threads are other
// threads of the process, traced by their Contexts' OS threads.
type addressSpace struct {
	p   *Platform
	pid int

	// Set up by the manager before the first request; read-only after.
	cpuidFaulting bool
	fpSize        int
	template      arch.Registers // main thread registers at its initial stop

	reqs    chan *request
	sendMu  sync.Mutex // serializes senders with Release closing reqs
	stopped bool       // guarded by sendMu: reqs is closed

	mu          sync.Mutex
	released    bool
	dead        bool
	freeSlots   []int
	nextSlot    int
	mappedSlots int
	threads     map[*stubThread]struct{}
	mainCPU     int // manager only: CPU the main thread is bound to

	localMu sync.RWMutex
	local   map[int]*stubThread // by tracer tid
	exited  chan struct{}       // closed when the stub is reaped
}

var _ platform.AddressSpace = (*addressSpace)(nil)

type request struct {
	fn   func() error
	done chan error
}

// newAddressSpace forks a stub from a new locked OS thread, which stays
// its tracer (and, through PR_SET_PDEATHSIG, its lifeline) until Release.
func (p *Platform) newAddressSpace(probe bool) (*addressSpace, error) {
	as := &addressSpace{
		p:       p,
		reqs:    make(chan *request),
		threads: make(map[*stubThread]struct{}),
		local:   make(map[int]*stubThread),
		mainCPU: -1,
		exited:  make(chan struct{}),
	}
	started := make(chan error, 1)
	go as.manage(probe, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return as, nil
}

// manage is the manager goroutine. It never unlocks its OS thread, so the
// thread exits with it and cannot be reused by goroutines that have nothing
// to do with the stub.
func (as *addressSpace) manage(probe bool, started chan<- error) {
	runtime.LockOSThread()
	defer close(as.exited)
	if err := as.start(probe); err != nil {
		started <- err
		return
	}
	started <- nil
	for req := range as.reqs {
		req.done <- req.fn()
	}
	// Released: the stub was killed. Reap it; this returns once every
	// Context that traced one of its threads has reaped that thread.
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(as.pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || ws.Exited() || ws.Signaled() {
			return
		}
	}
}

// start forks the stub and waits for it to stop itself after setup.
func (as *addressSpace) start(probe bool) error {
	l := &as.p.layout
	// The stub reads the memory file in R12 and the Sentry's pid in R13.
	pid, errno := stubproc.RawFork(l.entry, uintptr(as.p.stubFD), uintptr(unix.Getpid()))
	if errno != 0 {
		return fmt.Errorf("ptrace: forking stub: %w", unix.Errno(errno))
	}
	as.pid = int(pid)
	fail := func(err error) error {
		unix.Kill(as.pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			if _, e := unix.Wait4(as.pid, &ws, unix.WALL, nil); e != unix.EINTR {
				break
			}
		}
		return err
	}
	ws, err := wait(as.pid)
	if err != nil {
		return fail(fmt.Errorf("ptrace: waiting for stub %d: %w", as.pid, err))
	}
	if !ws.Stopped() || ws.StopSignal() != unix.SIGSTOP {
		var r arch.Registers
		if ws.Stopped() {
			getRegs(as.pid, &r)
		}
		return fail(fmt.Errorf("ptrace: stub %d failed to start (wait status %#x, rip %#x, stub at %#x)", as.pid, uint32(ws), r.Rip, as.p.layout.base))
	}
	if e := ptrace(unix.PTRACE_SETOPTIONS, as.pid, 0, traceOptions); e != 0 {
		return fail(fmt.Errorf("ptrace: PTRACE_SETOPTIONS on stub: %w", e))
	}
	if e := getRegs(as.pid, &as.template); e != 0 {
		return fail(fmt.Errorf("ptrace: reading stub registers: %w", e))
	}
	as.cpuidFaulting = as.template.Rbx == 0
	if err := as.dropSentryMemory(); err != nil {
		return fail(err)
	}
	if probe {
		size := arch.FPStateSize()
		if arch.UsesXSAVE() {
			buf := make([]byte, 1<<16)
			n, e := getFP(as.pid, buf)
			if e != 0 {
				return fail(fmt.Errorf("ptrace: reading stub FP state: %w", e))
			}
			size = n
		}
		as.fpSize = size
	}
	return nil
}

// dropSentryMemory unmaps everything the stub inherited from the Sentry
// but the stub region; manager only, while the stub is stopped.
func (as *addressSpace) dropSentryMemory() error {
	if rc, e := stubproc.GetRseqConfig(as.pid); e == 0 && rc.Pointer != 0 {
		if _, err := as.syscall(unix.SYS_RSEQ, uintptr(rc.Pointer), uintptr(rc.Size), stubproc.RseqFlagUnregister, uintptr(rc.Signature)); err != nil {
			return fmt.Errorf("ptrace: unregistering inherited rseq in stub: %w", err)
		}
	}
	l := &as.p.layout
	if _, err := as.syscall(unix.SYS_MUNMAP, 0, l.base); err != nil {
		return fmt.Errorf("ptrace: unmapping Sentry memory below the stub: %w", err)
	}
	if _, err := as.syscall(unix.SYS_MUNMAP, l.end, stubproc.HostTaskTop-l.end); err != nil {
		return fmt.Errorf("ptrace: unmapping Sentry memory above the stub: %w", err)
	}
	return nil
}

// do runs fn on the manager thread.
func (as *addressSpace) do(fn func() error) error {
	as.sendMu.Lock()
	defer as.sendMu.Unlock()
	if as.stopped {
		return platform.ErrStubDied
	}
	req := &request{fn: fn, done: make(chan error, 1)}
	as.reqs <- req
	return <-req.done
}

// runInjected makes the stopped tracee tid run the syscall set up in regs
// (rip at a gadget that ends in int3) and reads its registers back into
// out. The caller is tid's tracer. exited reports that the tracee is gone.
func runInjected(tid int, regs, out *arch.Registers) (exited bool, err error) {
	if e := setRegs(tid, regs); e != 0 {
		return e == unix.ESRCH, fmt.Errorf("setting registers: %w", e)
	}
	for {
		if e := ptrace(unix.PTRACE_CONT, tid, 0, 0); e != 0 {
			return e == unix.ESRCH, fmt.Errorf("resuming: %w", e)
		}
		ws, err := wait(tid)
		if err != nil {
			return true, fmt.Errorf("waiting: %w", err)
		}
		if ws.Exited() || ws.Signaled() {
			return true, platform.ErrStubDied
		}
		if ws.Stopped() && ws.StopSignal() == unix.SIGTRAP {
			break
		}
		// Anything else (a stray signal sent from outside) is discarded.
	}
	if e := getRegs(tid, out); e != 0 {
		return e == unix.ESRCH, fmt.Errorf("reading registers: %w", e)
	}
	return false, nil
}

// injectResult checks where an injected syscall trapped and converts its
// return value.
func (as *addressSpace) injectResult(regs, out *arch.Registers) (uintptr, error) {
	if out.Rip != regs.Rip+3 && out.Rip != uint64(as.p.layout.cloneTrap) {
		return 0, fmt.Errorf("ptrace: stub trapped at unexpected %#x", out.Rip)
	}
	ret := out.Rax
	if int64(ret) < 0 && int64(ret) > -4096 {
		return 0, unix.Errno(-int64(ret))
	}
	return uintptr(ret), nil
}

// inject makes the stub's main thread execute one syscall; manager only.
func (as *addressSpace) inject(regs *arch.Registers) (uintptr, error) {
	if as.dead {
		return 0, platform.ErrStubDied
	}
	pinToCurrentCPU(as.pid, &as.mainCPU)
	var out arch.Registers
	if _, err := runInjected(as.pid, regs, &out); err != nil {
		return 0, as.died(fmt.Errorf("ptrace: stub main thread: %w", err))
	}
	r, err := as.injectResult(regs, &out)
	if err != nil && !isErrno(err) {
		return 0, as.died(err)
	}
	return r, err
}

func isErrno(err error) bool {
	_, ok := err.(unix.Errno)
	return ok
}

// syscallRegs sets up registers for injecting syscall nr.
func (as *addressSpace) syscallRegs(regs *arch.Registers, nr uintptr, args []uintptr) {
	*regs = as.template
	regs.Rip = uint64(as.p.layout.syscallGadget)
	regs.Rax = uint64(nr)
	regs.Orig_rax = ^uint64(0)
	dst := [...]*uint64{&regs.Rdi, &regs.Rsi, &regs.Rdx, &regs.R10, &regs.R8, &regs.R9}
	for i, a := range args {
		*dst[i] = uint64(a)
	}
}

// inAddressSpace runs syscall nr in the stub. When the caller is the
// tracer of one of the stub's threads (a task mapping memory for itself,
// the common case) that thread, stopped between Switches, runs it: no
// handoff to the manager thread is needed. Otherwise the manager's main
// thread runs it.
func (as *addressSpace) inAddressSpace(nr uintptr, args ...uintptr) (uintptr, error) {
	as.localMu.RLock()
	t := as.local[gettid()]
	as.localMu.RUnlock()
	if t != nil && !t.reaped {
		var regs, out arch.Registers
		as.syscallRegs(&regs, nr, args)
		pinToCurrentCPU(t.tid, &t.cpu)
		if exited, err := runInjected(t.tid, &regs, &out); err != nil {
			if exited {
				t.ctx.forget(t)
				return 0, platform.ErrStubDied
			}
			return 0, fmt.Errorf("ptrace: stub thread %d: %w", t.tid, err)
		}
		return as.injectResult(&regs, &out)
	}
	var r uintptr
	err := as.do(func() error {
		var err error
		r, err = as.syscall(nr, args...)
		return err
	})
	return r, err
}

// died marks the stub unusable after a failure of its main thread.
func (as *addressSpace) died(err error) error {
	as.dead = true
	log.Warningf("ptrace: stub %d: %v", as.pid, err)
	if err == platform.ErrStubDied {
		return err
	}
	return fmt.Errorf("%w: %v", platform.ErrStubDied, err)
}

// syscall injects a syscall with up to six arguments; manager only.
func (as *addressSpace) syscall(nr uintptr, args ...uintptr) (uintptr, error) {
	var regs arch.Registers
	as.syscallRegs(&regs, nr, args)
	return as.inject(&regs)
}

// MapFile implements platform.AddressSpace.MapFile.
func (as *addressSpace) MapFile(addr hostarch.Addr, offset, length uint64, at hostarch.AccessType, precommit bool) error {
	if err := as.p.CheckMapFile(addr, offset, length); err != nil {
		return fmt.Errorf("ptrace: MapFile: %w", err)
	}
	flags := uintptr(unix.MAP_SHARED | unix.MAP_FIXED)
	if precommit {
		flags |= unix.MAP_POPULATE
	}
	_, err := as.inAddressSpace(unix.SYS_MMAP, uintptr(addr), uintptr(length), accessProt(at), flags, uintptr(as.p.stubFD), uintptr(offset))
	if err != nil {
		return fmt.Errorf("ptrace: mapping file [%#x, +%#x) at %#x: %w", offset, length, uintptr(addr), err)
	}
	return nil
}

// Unmap implements platform.AddressSpace.Unmap.
func (as *addressSpace) Unmap(addr hostarch.Addr, length uint64) {
	addr, end, ok := as.p.ClampUnmap(addr, length)
	if !ok {
		return
	}
	_, err := as.inAddressSpace(unix.SYS_MUNMAP, uintptr(addr), uintptr(end-addr))
	if err != nil && err != platform.ErrStubDied {
		log.Warningf("ptrace: unmapping [%#x, %#x) in stub %d: %v", uintptr(addr), uintptr(end), as.pid, err)
	}
}

// newThread makes a new thread in the stub, parked in the pause loop with
// its own alternate signal stack, and returns its tid and slot.
func (as *addressSpace) newThread() (int, int, error) {
	as.mu.Lock()
	if as.released {
		as.mu.Unlock()
		return 0, 0, platform.ErrStubDied
	}
	slot := -1
	if n := len(as.freeSlots); n > 0 {
		slot = as.freeSlots[n-1]
		as.freeSlots = as.freeSlots[:n-1]
	} else if as.nextSlot < maxStubThreads {
		slot = as.nextSlot
		as.nextSlot++
	}
	as.mu.Unlock()
	if slot < 0 {
		return 0, 0, fmt.Errorf("ptrace: stub has %d threads already: %w", maxStubThreads, unix.EAGAIN)
	}
	var tid int
	err := as.do(func() error {
		l := &as.p.layout
		if slot >= as.mappedSlots {
			// Map the alternate stacks up to this slot (slots are handed
			// out in order, so this is one new stack at a time).
			start := l.slotAddr(as.mappedSlots)
			_, err := as.syscall(unix.SYS_MMAP, start, l.slotAddr(slot+1)-start, unix.PROT_READ|unix.PROT_WRITE,
				unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED, ^uintptr(0), 0)
			if err != nil {
				return fmt.Errorf("ptrace: mapping stub signal stack: %w", err)
			}
			as.mappedSlots = slot + 1
		}
		regs := as.template
		regs.Rip = uint64(l.cloneGadget)
		regs.Orig_rax = ^uint64(0)
		regs.Rax = unix.SYS_CLONE
		regs.Rdi = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
			unix.CLONE_THREAD | unix.CLONE_SYSVSEM
		regs.Rsi, regs.Rdx, regs.R10, regs.R8 = 0, 0, 0, 0
		regs.R12 = uint64(l.slotAddr(slot))
		regs.R13 = altStackSize
		t, err := as.inject(&regs)
		if err != nil {
			return fmt.Errorf("ptrace: cloning stub thread: %w", err)
		}
		tid = int(t)
		return nil
	})
	if err != nil {
		as.freeSlot(slot)
		return 0, 0, err
	}
	return tid, slot, nil
}

func (as *addressSpace) freeSlot(slot int) {
	as.mu.Lock()
	as.freeSlots = append(as.freeSlots, slot)
	as.mu.Unlock()
}

// addThread records a thread traced by a Context, so Release can tell the
// Context to reap it.
func (as *addressSpace) addThread(t *stubThread) bool {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.released {
		return false
	}
	as.threads[t] = struct{}{}
	as.localMu.Lock()
	as.local[t.ctx.tracer] = t
	as.localMu.Unlock()
	return true
}

// removeThread forgets a thread that exited cleanly and frees its slot.
func (as *addressSpace) removeThread(t *stubThread) {
	as.mu.Lock()
	defer as.mu.Unlock()
	delete(as.threads, t)
	as.freeSlots = append(as.freeSlots, t.slot)
	as.forgetLocal(t)
}

// forgetLocal stops using t for syscalls made on its tracer's behalf.
func (as *addressSpace) forgetLocal(t *stubThread) {
	as.localMu.Lock()
	if as.local[t.ctx.tracer] == t {
		delete(as.local, t.ctx.tracer)
	}
	as.localMu.Unlock()
}

// Release implements platform.AddressSpace.Release: the stub is killed and
// each Context that traced one of its threads reaps that thread on its next
// Switch or Release; the manager reaps the process after that.
func (as *addressSpace) Release() {
	as.mu.Lock()
	if as.released {
		as.mu.Unlock()
		return
	}
	as.released = true
	threads := as.threads
	as.threads = nil
	as.mu.Unlock()

	unix.Kill(as.pid, unix.SIGKILL)
	for t := range threads {
		t.ctx.addDead(t)
	}
	as.sendMu.Lock()
	as.stopped = true
	close(as.reqs)
	as.sendMu.Unlock()
}
