// Package systrap is the platform that runs application code in stub
// processes whose threads trap to the Sentry through a seccomp filter and
// a signal handler, with no ptrace stop on the way.
//
// Each AddressSpace is a stub process that holds nothing of the Sentry's
// but the stub region (the stub code, two control areas and, per
// application thread, a context page and an alternate signal stack) and
// three descriptors: the memory file and the two pipe ends of its
// memory-operation channel. Stubs are forked by a zygote, itself forked
// by New before the Sentry installs its seccomp filter (whose kills would
// otherwise win over the stub filter's traps); the zygote dies with the
// Sentry and the stubs with the zygote. A stub's main thread executes the
// mmap, munmap, mprotect, clone and tgkill calls the Sentry lists, up to
// 64 per request, in a control area that is read-only in the stub, so
// application code can neither forge nor replay them; completion comes
// back through a pipe no application thread may write. Application
// threads are pinned to the CPU of the Sentry thread that waits for them,
// so each handoff is a switch on one CPU. Application threads run under a seccomp filter that returns
// SECCOMP_RET_TRAP for every syscall not made from the stub's code; the
// resulting SIGSYS, like a fault's SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP or
// the SIGUSR2 of Interrupt, runs the stub's handler, which copies the
// application's registers and FP state into the thread's context page (a
// page of the memory file also mapped in the Sentry), hands it to the
// Sentry with a futex and waits, then restores what the Sentry wrote and
// returns to the application with rt_sigreturn.
//
// The context page is writable by application code, so the Sentry treats
// everything in it as untrusted input: it copies each field once, bounds
// every size, and a thread that stops answering, dies or leaves garbage is
// reported as ErrStubDied from Switch.
//
// The stub (stub_amd64.gas, GNU assembler) is assembled by `go generate`
// and committed as stub_amd64.bin, so building needs no assembler. ptrace
// is used once, to let the zygote undo an rseq registration inherited
// from the forking thread; never on the trap path.
package systrap

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/internal/stubproc"
	"golang.org/x/sys/unix"
)

// pinTo binds host thread tid to the caller's CPU (recorded in *bound, -1
// for none), so that handing work to it and waiting for the answer are
// switches on one CPU rather than cross-CPU wakeups, which cost far more
// under a hypervisor.
func pinTo(tid int, bound *int) {
	stubproc.PinTo(tid, int(stubproc.CurrentCPU()), bound)
}

// Platform is the systrap platform.
type Platform struct {
	mf     *pgalloc.MemoryFile
	memFD  int // the memory file, at a number >= 3
	ownFD  bool
	layout stubLayout

	// UserRange gives applications everything from the host's
	// mmap_min_addr up to the stub region.
	stubproc.UserRange

	cpuidFaulting bool
	fsgsbase      bool

	// pin binds stub threads to the CPU of the Sentry thread that waits
	// for them, so every handoff is a switch on one CPU; then neither side
	// gains by spinning (the other cannot run meanwhile), so the stub's
	// spins are off and the Sentry's adapts down to nothing. Measured on
	// the 2-CPU CI VM: python3 startup 2.2-2.9 s pinned without spins,
	// 5.0 s unpinned with spins (ptrace: 2.9-3.8 s). The spins are
	// counts of polls of the shared word.
	pin                          bool
	stubSpin, memOpSpin, ctxSpin int

	// The zygote forks every stub. It is forked from the forker thread,
	// which lives until Close: the zygote's PR_SET_PDEATHSIG fires when
	// that thread exits, and each stub's when the zygote dies, so stubs
	// die with the Sentry.
	zygoteMu   sync.Mutex // serializes requests on zygoteFD
	zygoteFD   int        // SOCK_SEQPACKET to the zygote; -1 once closed
	zygotePID  int
	forkerDone chan struct{} // closed to let the forker thread exit
	forkerGone chan struct{}
}

var _ platform.Platform = (*Platform)(nil)

// zygoteParams is what the zygote's setup code reads from its copy of the
// Sentry's memory (layout fixed in stub_amd64.gas).
type zygoteParams struct {
	memFD, sock uint64
	fds         [2]uint64 // the two, sorted
	ppid        uint64
	allMask     uint64
}

// New returns a systrap platform whose address spaces map mf. It must be
// called before the Sentry installs its own seccomp filter: the zygote
// forked here, and every stub it forks, must not inherit that filter. It
// checks that the host allows what the platform needs by creating a stub
// and running a thread in it.
func New(mf *pgalloc.MemoryFile) (platform.Platform, error) {
	layout, err := setupStub()
	if err != nil {
		return nil, err
	}
	p := &Platform{mf: mf, memFD: mf.FD(), layout: layout, UserRange: stubproc.NewUserRange(layout.base), fsgsbase: hostHasFSGSBase(), zygoteFD: -1,
		pin: true, ctxSpin: sentrySpinStart}
	if p.memFD < 3 {
		fd, err := unix.FcntlInt(uintptr(p.memFD), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("systrap: duplicating memory file fd: %w", err)
		}
		p.memFD, p.ownFD = fd, true
	}
	if err := p.startZygote(); err != nil {
		p.Close()
		return nil, err
	}
	as, err := p.newAddressSpace()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("systrap: starting probe stub: %w", err)
	}
	defer as.Release()
	p.cpuidFaulting = as.cpuidFaulting
	if _, err := as.newThread(); err != nil {
		p.Close()
		return nil, fmt.Errorf("systrap: starting probe stub thread: %w", err)
	}
	return p, nil
}

// startZygote forks the zygote from a new locked OS thread that stays
// until Close.
func (p *Platform) startZygote() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("systrap: creating zygote socket: %w", err)
	}
	if fds[1] < 3 { // stdio closed: keep the zygote's descriptors above 2
		nfd, err := unix.FcntlInt(uintptr(fds[1]), unix.F_DUPFD_CLOEXEC, 3)
		unix.Close(fds[1])
		if err != nil {
			unix.Close(fds[0])
			return fmt.Errorf("systrap: duplicating zygote socket: %w", err)
		}
		fds[1] = nfd
	}
	params := &zygoteParams{memFD: uint64(p.memFD), sock: uint64(fds[1]), ppid: uint64(unix.Getpid()), allMask: ^uint64(0)}
	params.fds = [2]uint64{min(params.memFD, params.sock), max(params.memFD, params.sock)}
	p.forkerDone = make(chan struct{})
	p.forkerGone = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		defer close(p.forkerGone)
		// The zygote reads params in RDI.
		pid, errno := stubproc.RawFork(p.layout.entry, uintptr(unsafe.Pointer(params)), 0)
		runtime.KeepAlive(params)
		if errno != 0 {
			started <- fmt.Errorf("systrap: forking zygote: %w", unix.Errno(errno))
			return
		}
		p.zygotePID = int(pid)
		if err := handOverRseq(int(pid)); err != nil {
			unix.Kill(int(pid), unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(int(pid), &ws, unix.WALL, nil)
			started <- err
			return
		}
		started <- nil
		<-p.forkerDone
	}()
	err = <-started
	unix.Close(fds[1])
	if err != nil {
		unix.Close(fds[0])
		return err
	}
	p.zygoteFD = fds[0]
	return nil
}

// stubFDs are the Sentry's descriptors of a new stub.
type stubFDs struct {
	reqW, doneR, pidFD int
}

// handOverRseq waits for the new zygote's one ptrace stop, tells it the
// rseq registration it inherited from the forking thread (so it can undo
// it) and lets it go. Called on the forking thread, the zygote's tracer.
func handOverRseq(pid int) error {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("systrap: waiting for the zygote: %w", err)
		}
		break
	}
	if !ws.Stopped() || ws.StopSignal() != unix.SIGSTOP {
		return fmt.Errorf("systrap: zygote failed to start (wait status %#x)", uint32(ws))
	}
	rc, _ := stubproc.GetRseqConfig(pid) // zero on older kernels: no rseq to undo either
	var regs unix.PtraceRegs
	if err := unix.PtraceGetRegs(pid, &regs); err != nil {
		return fmt.Errorf("systrap: reading zygote registers: %w", err)
	}
	regs.R8, regs.R9, regs.R10 = rc.Pointer, uint64(rc.Size), uint64(rc.Signature)
	if err := unix.PtraceSetRegs(pid, &regs); err != nil {
		return fmt.Errorf("systrap: setting zygote registers: %w", err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("systrap: detaching from the zygote: %w", err)
	}
	return nil
}

// forkStub asks the zygote for a new stub whose control area is at ctlOff
// in the memory file. The zygote makes the stub's pipes and pidfd itself
// (the Sentry's seccomp filter allows neither pipe2 nor pidfd_open) and
// hands the Sentry its ends. It returns the stub's pid.
func (p *Platform) forkStub(ctlOff uint64) (int, stubFDs, error) {
	p.zygoteMu.Lock()
	defer p.zygoteMu.Unlock()
	if p.zygoteFD < 0 {
		return 0, stubFDs{}, fmt.Errorf("systrap: platform closed: %w", unix.EINVAL)
	}
	var msg [8]byte
	binary.LittleEndian.PutUint64(msg[:], ctlOff)
	if _, err := unix.Write(p.zygoteFD, msg[:]); err != nil {
		return 0, stubFDs{}, fmt.Errorf("systrap: asking the zygote for a stub: %w", err)
	}
	if err := waitReadable(p.zygoteFD, memOpTimeout); err != nil {
		return 0, stubFDs{}, fmt.Errorf("systrap: zygote: %w", err)
	}
	var reply [8]byte
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := unix.Recvmsg(p.zygoteFD, reply[:], oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n != 8 {
		return 0, stubFDs{}, fmt.Errorf("systrap: zygote did not answer (%d bytes, %v): %w", n, err, platform.ErrStubDied)
	}
	var fds []int
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cmsgs) == 1 {
		fds, _ = unix.ParseUnixRights(&cmsgs[0])
	}
	if len(fds) != 3 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return 0, stubFDs{}, fmt.Errorf("systrap: zygote sent %d descriptors, want 3: %w", len(fds), platform.ErrStubDied)
	}
	pid := int64(binary.LittleEndian.Uint64(reply[:]))
	return int(pid), stubFDs{reqW: fds[0], doneR: fds[1], pidFD: fds[2]}, nil
}

// hostHasFSGSBase reports whether user code may use RDFSBASE/RDGSBASE:
// the kernel says so with HWCAP2_FSGSBASE in the auxiliary vector (read
// from the runtime's copy, so it works after the Sentry leaves /proc).
func hostHasFSGSBase() bool {
	auxv, err := unix.Auxv()
	if err != nil {
		return false
	}
	const atHWCap2, hwcap2FSGSBase = 26, 1 << 1
	for _, kv := range auxv {
		if kv[0] == atHWCap2 {
			return kv[1]&hwcap2FSGSBase != 0
		}
	}
	return false
}

// NewAddressSpace implements platform.Platform.NewAddressSpace.
func (p *Platform) NewAddressSpace() (platform.AddressSpace, error) {
	as, err := p.newAddressSpace()
	if err != nil {
		return nil, err
	}
	return as, nil
}

// NewContext implements platform.Platform.NewContext.
func (p *Platform) NewContext() (platform.Context, error) {
	return &context{p: p, threads: make(map[*addressSpace]*stubThread), spin: p.ctxSpin}, nil
}

// CPUIDFaulting implements platform.Platform.CPUIDFaulting.
func (p *Platform) CPUIDFaulting() bool { return p.cpuidFaulting }

// Close implements platform.Platform.Close. Address spaces and contexts
// must have been released; any stub left dies with the zygote.
func (p *Platform) Close() {
	p.zygoteMu.Lock()
	if p.zygoteFD >= 0 {
		unix.Close(p.zygoteFD) // the zygote exits when it reads EOF
		p.zygoteFD = -1
	}
	p.zygoteMu.Unlock()
	if p.forkerDone != nil {
		close(p.forkerDone)
		<-p.forkerGone
		p.forkerDone = nil
		if p.zygotePID > 0 {
			for {
				var ws unix.WaitStatus
				if _, err := unix.Wait4(p.zygotePID, &ws, unix.WALL, nil); err != unix.EINTR {
					break
				}
			}
		}
	}
	if p.ownFD {
		unix.Close(p.memFD)
		p.ownFD = false
	}
}
