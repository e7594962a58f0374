package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// processCredentials are the IDs and capabilities of a process from the
// spec. With no capabilities given, root keeps every capability and
// anyone else none (what `runsc do` relies on).
func processCredentials(p *specs.Process) *auth.Credentials {
	c := credentials(p.User)
	applyCapabilities(c, p.Capabilities)
	return c
}

// processUmask is the spec's umask, or the usual 022.
func processUmask(u specs.User) uint32 {
	if u.Umask != nil {
		return *u.Umask & 0o777
	}
	return 0o022
}

// applyCapabilities sets the capability sets named in caps.
func applyCapabilities(c *auth.Credentials, caps *specs.LinuxCapabilities) {
	if caps == nil {
		return
	}
	set := func(names []string) auth.CapabilitySet {
		var s auth.CapabilitySet
		for _, n := range names {
			if v, ok := specutils.CapabilityNames[n]; ok && v <= int(auth.CAP_LAST_CAP) {
				s |= auth.CapabilitySetOf(auth.Capability(v))
			} else {
				log.Warningf("capability %q is not supported; not granted", n)
			}
		}
		return s
	}
	c.BoundingCaps = set(caps.Bounding)
	c.EffectiveCaps = set(caps.Effective)
	c.PermittedCaps = set(caps.Permitted)
	c.InheritableCaps = set(caps.Inheritable)
	c.AmbientCaps = set(caps.Ambient)
}

// StdinIsTerminal tells whether the sandbox's stdin is a host terminal
// (`runsc do` typed at, a terminal container): then a SIGINT the Sentry
// gets is not a request to stop the sandbox (terminal.go ignores it; a
// process without a terminal of its own gets it, forwardTerminalSignals).
func StdinIsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// forwardTerminalSignals passes SIGINT, SIGQUIT and SIGWINCH that the host
// terminal on stdinFD sends the Sentry (it is in the terminal's foreground
// group) to every process of the sandbox. It serves a process without a
// terminal of its own (spec process.terminal false) whose stdin is still
// a host terminal: that terminal is no sandbox process's controlling
// terminal, so its processes share one group, which is whom the terminal
// would signal. A process with a terminal gets a sandbox pty instead
// (terminal.go) and needs none of this. It returns the function that
// stops forwarding.
func forwardTerminalSignals(k *kernel.Kernel, stdinFD int) func() {
	if !StdinIsTerminal(stdinFD) {
		return func() {}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGQUIT, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if err := k.SignalAllProcesses(s.(unix.Signal)); err != nil {
					log.Warningf("forwarding %v from the terminal: %v", s, err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// applyRlimits gives the process the spec's resource limits.
func applyRlimits(tg *kernel.ThreadGroup, rlimits []specs.POSIXRlimit) {
	for _, r := range rlimits {
		res, ok := specutils.RlimitResource(r.Type)
		if !ok {
			log.Warningf("rlimit %q is not supported; ignored", r.Type)
			continue
		}
		tg.SetLimit(res, linux.Rlimit{Cur: r.Soft, Max: r.Hard})
	}
}

// container is the running sandbox as the control server sees it: the
// init process, created but held until start, and the processes exec'd
// since.
type container struct {
	k    *kernel.Kernel
	v    *vfs.VirtualFilesystem
	root vfs.VirtualDentry
	init *kernel.ThreadGroup
	// spec is the container's spec: exec'd processes get its seccomp
	// profile, as runc's `exec` applies the container's.
	spec *specs.Spec

	mu      sync.Mutex
	started bool
	// execs are the processes exec started, kept until waited for so
	// their status outlives them.
	execs map[kernel.ThreadID]*kernel.ThreadGroup
	// started records when init and exec'd processes started (for ps),
	// forgotten once they are gone.
	startedAt map[*kernel.ThreadGroup]time.Time
}

// maxExecs bounds the exec'd processes remembered and not yet waited for.
const maxExecs = 4096

// serveContainer holds init until a start request, serves control
// requests, and returns init's status once it has exited and every
// request about it has been answered.
func serveContainer(ctx context.Context, a *Args, k *kernel.Kernel, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, tg *kernel.ThreadGroup) (kernel.WaitStatus, error) {
	c := &container{k: k, v: v, root: root, init: tg, spec: a.Spec, execs: make(map[kernel.ThreadID]*kernel.ThreadGroup), startedAt: make(map[*kernel.ThreadGroup]time.Time)}
	srv, err := control.Serve(a.Control, c.handle)
	if err != nil {
		tg.Kill()
		c.start()
		<-tg.Exited()
		return 0, err
	}
	if a.Ready != nil {
		// `runsc create` returns when it reads this: the container
		// exists and waits for start.
		_, werr := a.Ready.Write([]byte("ready\n"))
		a.Ready.Close()
		if werr != nil {
			log.Warningf("telling runsc the sandbox is ready: %v", werr)
		}
	}
	select {
	case <-tg.Exited():
	case <-ctx.Done():
		tg.Kill()
		c.start() // a task never started cannot finish exiting
		<-tg.Exited()
	}
	status := tg.ExitStatus()
	if a.ExitStatus != nil {
		a.ExitStatus.WriteString(strconv.FormatUint(uint64(status), 10) + "\n")
		a.ExitStatus.Close()
	}
	// Answer the waiters for init before the process goes away.
	srv.Close(2 * time.Second)
	return status, nil
}

// start releases init once.
func (c *container) start() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return false
	}
	c.started = true
	c.startedAt[c.init] = time.Now()
	c.k.Start(c.init)
	return true
}

func (c *container) handle(req *control.Request, fds []*os.File) *control.Response {
	switch req.Method {
	case control.MethodStart:
		if !c.start() {
			return control.ErrorResponse(errors.New("the container has already been started"))
		}
		return &control.Response{}
	case control.MethodExec:
		pid, err := c.exec(req.Exec, fds)
		if err != nil {
			return control.ErrorResponse(err)
		}
		return &control.Response{PID: int32(pid)}
	case control.MethodSignal:
		if err := c.signal(req.Signal); err != nil {
			return control.ErrorResponse(err)
		}
		return &control.Response{}
	case control.MethodWait:
		st, err := c.wait(kernel.ThreadID(req.Wait.PID))
		if err != nil {
			return control.ErrorResponse(err)
		}
		ws := uint32(st)
		return &control.Response{WaitStatus: &ws}
	case control.MethodNetwork:
		if err := installNetwork(req.Network, fds); err != nil { // network.go
			return control.ErrorResponse(err)
		}
		return &control.Response{}
	case control.MethodProcesses:
		return &control.Response{Processes: c.processes()}
	case control.MethodStats:
		return &control.Response{Stats: &control.Stats{
			Processes: c.k.ProcessCount(), Threads: c.k.TaskCount(),
			MemoryBytes: c.k.MemoryFile().UsedBytes(),
		}}
	}
	return control.ErrorResponse(fmt.Errorf("method %q not served", req.Method))
}

func (c *container) signal(s *control.SignalArgs) error {
	sig := unix.Signal(s.Signo)
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		// A created container's init has run no instruction: a signal
		// that would kill it kills it (as it kills runc's waiting init);
		// others have nothing to act on.
		switch linux.DefaultAction(linux.Signal(sig)) {
		case linux.SignalDefaultTerminate, linux.SignalDefaultCore:
		default:
			if sig != unix.SIGKILL {
				return nil
			}
		}
		if err := c.k.SignalProcess(c.init.ID(), sig); err != nil {
			return err
		}
		c.start() // deliver it: the task dies before its first instruction
		return nil
	}
	if s.All {
		return c.k.SignalAllProcesses(sig)
	}
	pid := kernel.ThreadID(s.PID)
	if pid == 0 {
		pid = c.init.ID()
	}
	return c.k.SignalProcess(pid, sig)
}

func (c *container) wait(pid kernel.ThreadID) (kernel.WaitStatus, error) {
	tg := c.init
	if pid != 0 && pid != c.init.ID() {
		c.mu.Lock()
		tg = c.execs[pid]
		c.mu.Unlock()
		if tg == nil {
			return 0, fmt.Errorf("process %d was not started by exec or was already waited for: %w", pid, unix.ECHILD)
		}
	}
	<-tg.Exited()
	if tg != c.init {
		c.mu.Lock()
		delete(c.execs, pid)
		c.mu.Unlock()
	}
	return tg.ExitStatus(), nil
}

func (c *container) exec(e *control.ExecArgs, fds []*os.File) (kernel.ThreadID, error) {
	stdio := [3]int{-1, -1, -1}
	for i, f := range fds {
		// The imported files own the descriptors from here on.
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		if err != nil {
			for _, d := range stdio {
				if d >= 0 {
					unix.Close(d)
				}
			}
			return 0, fmt.Errorf("exec: stdio: %w", err)
		}
		stdio[i] = fd
	}
	// As with runc, a created container's init may still be held: the
	// new process runs beside it.
	c.mu.Lock()
	n := len(c.execs)
	c.mu.Unlock()
	closeStdio := func() {
		for _, d := range stdio {
			unix.Close(d)
		}
	}
	if n >= maxExecs {
		closeStdio()
		return 0, fmt.Errorf("exec: %d processes not waited for: %w", n, unix.EAGAIN)
	}
	select {
	case <-c.init.Exited():
		closeStdio()
		return 0, fmt.Errorf("exec: the container has stopped: %w", unix.ESRCH)
	default:
	}
	creds := credentials(specs.User{UID: e.UID, GID: e.GID, AdditionalGids: e.AdditionalGids})
	if e.Capabilities != nil {
		applyCapabilities(creds, &specs.LinuxCapabilities{
			Bounding: e.Capabilities.Bounding, Effective: e.Capabilities.Effective,
			Permitted: e.Capabilities.Permitted, Inheritable: e.Capabilities.Inheritable,
			Ambient: e.Capabilities.Ambient,
		})
	}
	ctx := auth.ContextWithCredentials(context.Background(), creds)
	// With --tty it gets a sandbox pty as its controlling terminal, as
	// init does (terminal.go).
	fdt, term, err := stdioWithTerminal(ctx, c.v, c.root, stdio, e.Terminal)
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	filename, err := lookPath(ctx, c.v, creds, c.root, e.Args[0], e.Env)
	if err != nil {
		fdt.DecRef(ctx)
		if term != nil {
			term.close(ctx)
		}
		return 0, fmt.Errorf("exec: %w", err)
	}
	tg, err := c.k.CreateProcess(ctx, kernel.CreateProcessArgs{
		Filename: filename, Argv: e.Args, Envv: e.Env, Credentials: creds,
		FDTable: fdt, Root: c.root, WorkingDirectory: e.Cwd, Umask: 0o022,
		NoNewPrivs: e.NoNewPrivs,
	})
	if err != nil {
		if term != nil {
			term.close(ctx)
		}
		return 0, fmt.Errorf("exec: %w", err)
	}
	if term != nil {
		if err := term.attach(ctx, c.v, tg); err != nil {
			log.Warningf("exec: %v", err)
		}
		term.relay(ctx)
		go func() {
			<-tg.Exited()
			term.close(ctx)
		}()
	}
	// Exec'd processes get init's limits, as a process joining the
	// container's namespaces would.
	for r := 0; r < linux.RLIM_NLIMITS; r++ {
		tg.SetLimit(r, c.init.Limit(r))
	}
	if err := applySpecSeccomp(c.spec, tg); err != nil { // seccomp.go
		// Never run it unconfined: it dies before its first instruction.
		tg.Kill()
		c.k.Start(tg)
		return 0, fmt.Errorf("exec: %w", err)
	}
	c.mu.Lock()
	c.execs[tg.ID()] = tg
	c.startedAt[tg] = time.Now()
	c.mu.Unlock()
	log.Infof("exec: starting %q as PID %d", filename, tg.ID())
	c.k.Start(tg)
	return tg.ID(), nil
}

// processes lists the live processes for ps.
func (c *container) processes() []control.Process {
	var out []control.Process
	c.mu.Lock()
	defer c.mu.Unlock()
	for tg := range c.startedAt {
		select {
		case <-tg.Exited():
			delete(c.startedAt, tg)
		default:
		}
	}
	for _, p := range c.k.Processes() {
		if p.Zombie {
			continue
		}
		cp := control.Process{
			PID: int32(p.PID), PPID: int32(p.PPID), UID: uint32(p.UID), Name: p.Name, Args: p.Argv,
			CPUTime: int64(p.CPU.Total()),
		}
		if tg := c.k.ProcessWithID(p.PID); tg != nil {
			if t, ok := c.startedAt[tg]; ok {
				cp.Started = t.UnixNano()
			}
		}
		out = append(out, cp)
	}
	return out
}
