// Package kernel owns the Sentry's process model: the Kernel (platform,
// memory file, clocks, the PID table, hostname), tasks (one goroutine per
// application thread, running the loop "switch to the application, handle
// its syscall, fault or signal, deliver pending signals"), thread groups
// (processes) with their exit and wait semantics, signals, the file
// descriptor table (open *vfs.FileDescriptions), the filesystem context
// (root, cwd, umask), execve through the VFS, and the syscall dispatch
// table that pkg/sentry/syscalls/linux fills in.
package kernel

import (
	"context"
	"fmt"
	"path"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/fsimpl/pipe"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/loader"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/vdso"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// ThreadID is a PID or TID as the sandbox sees it.
type ThreadID int32

// maxPID is where PID allocation wraps (pid_max's default on 64-bit).
const maxPID = 4 << 20

// Config is what a Kernel is built from.
type Config struct {
	// Platform runs application code; nil makes a kernel that can only
	// execute syscalls handed to it directly (unit tests).
	Platform platform.Platform
	// MemoryFile backs all application memory.
	MemoryFile *pgalloc.MemoryFile
	// Syscalls is the syscall table (syscalls/linux.Table()).
	Syscalls *SyscallTable
	// Hostname is the UTS nodename; Domainname the NIS domain name.
	Hostname   string
	Domainname string
	// TotalMemory is what sysinfo and /proc/meminfo report; 0 = the host's.
	TotalMemory uint64
	// Strace logs every syscall (runsc --strace).
	Strace bool
	// VFS is the sandbox's virtual filesystem; nil makes an empty one
	// (unit tests that need no files).
	VFS *vfs.VirtualFilesystem
}

// Kernel is one sandbox's kernel.
type Kernel struct {
	platform platform.Platform
	mf       *pgalloc.MemoryFile
	syscalls *SyscallTable

	// bootTime is when the kernel started (BootTimeNanos); vdso's clock
	// starts CLOCK_MONOTONIC and CLOCK_BOOTTIME at 0 then, as a freshly
	// booted machine's would be.
	bootTime    time.Time
	totalMemory uint64
	strace      bool

	// vdso is the vDSO every address space maps; its data page is the
	// clock (MonotonicNow, RealtimeNow), shared with the applications.
	vdso *vdso.VDSO

	// mu guards the task tree: PIDs, parents and children, zombies. It is
	// taken by clone, exit and wait, never by ordinary syscalls.
	mu      sync.Mutex
	tasks   map[ThreadID]*Task
	groups  map[ThreadID]*ThreadGroup
	lastPID ThreadID
	init    *ThreadGroup
	// rootPIDNS is the sandbox's PID namespace; idRefs counts the users
	// of each allocated root ID and idOwner the namespace it was
	// allocated in (pidns.go).
	rootPIDNS  *PIDNamespace
	idRefs     map[ThreadID]int
	idOwner    map[ThreadID]*PIDNamespace
	futexes    futexTable
	vfs        *vfs.VirtualFilesystem
	pipeOnce   sync.Once
	pipefs     *pipe.Filesystem
	memfdOnce  sync.Once
	memfdfs    *tmpfs.MemfdFS
	memfdErr   error
	hostname   string
	domainname string
	sockets    socketProviders
	// ttys and sessionTTYs are the controlling terminals (tty.go),
	// guarded by mu.
	ttys        map[*devpts.Terminal]*ttyState
	sessionTTYs map[ThreadID]*devpts.Terminal
	// nsfs holds the namespace files (nsfs.go).
	nsfs nsfs
	// klog is the kernel log (syslog.go).
	logOnce sync.Once
	klog    *kernelLog
}

// New returns a kernel with no tasks.
func New(cfg Config) (*Kernel, error) {
	if cfg.MemoryFile == nil {
		return nil, fmt.Errorf("kernel: no memory file: %w", unix.EINVAL)
	}
	if cfg.Syscalls == nil {
		cfg.Syscalls = NewSyscallTable()
	}
	total := cfg.TotalMemory
	if total == 0 {
		var si unix.Sysinfo_t
		if err := unix.Sysinfo(&si); err == nil {
			total = uint64(si.Totalram) * uint64(si.Unit)
		}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "carapace"
	}
	if cfg.VFS == nil {
		cfg.VFS = vfs.New()
	}
	if cfg.Domainname == "" {
		cfg.Domainname = "(none)"
	}
	k := &Kernel{
		platform: cfg.Platform, mf: cfg.MemoryFile, syscalls: cfg.Syscalls,
		bootTime: time.Now(), totalMemory: total, strace: cfg.Strace,
		tasks: make(map[ThreadID]*Task), groups: make(map[ThreadID]*ThreadGroup),
		hostname: cfg.Hostname, domainname: cfg.Domainname, vfs: cfg.VFS,
		idRefs: make(map[ThreadID]int), idOwner: make(map[ThreadID]*PIDNamespace),
	}
	k.rootPIDNS = newRootPIDNamespace(k)
	v, err := vdso.New(cfg.MemoryFile, vdso.Options{})
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	k.vdso = v
	// Terminals of this VFS's devpts mounts report to this kernel, and
	// /dev/tty opens the caller's controlling terminal. A VFS shared with
	// an earlier kernel (tests) keeps its first /dev/tty driver.
	devpts.SetDefaultHooks(cfg.VFS, terminalHooks{k})
	_ = cfg.VFS.RegisterDevice(vfs.CharDevice, ttyAuxMajor, ttyMinor, ttyDevice{k})
	return k, nil
}

// VFS returns the sandbox's virtual filesystem.
func (k *Kernel) VFS() *vfs.VirtualFilesystem { return k.vfs }

// PipeFS returns the filesystem that anonymous pipes (pipe(2)) live in.
func (k *Kernel) PipeFS() *pipe.Filesystem {
	k.pipeOnce.Do(func() { k.pipefs = pipe.NewFilesystem(k.vfs) })
	return k.pipefs
}

// MemfdFS returns the filesystem memfd_create(2) makes files in.
func (k *Kernel) MemfdFS(ctx context.Context) (*tmpfs.MemfdFS, error) {
	k.memfdOnce.Do(func() { k.memfdfs, k.memfdErr = tmpfs.NewMemfdFS(ctx, k.vfs, k.mf) })
	return k.memfdfs, k.memfdErr
}

// Platform returns the platform (nil for a platform-less kernel).
func (k *Kernel) Platform() platform.Platform { return k.platform }

// MemoryFile returns the memory file.
func (k *Kernel) MemoryFile() *pgalloc.MemoryFile { return k.mf }

// Syscalls returns the syscall table.
func (k *Kernel) Syscalls() *SyscallTable { return k.syscalls }

// TotalMemory is the memory size reported to the sandbox.
func (k *Kernel) TotalMemory() uint64 { return k.totalMemory }

// MonotonicNow returns CLOCK_MONOTONIC: time since the kernel booted, as
// the applications' vDSO computes it from the same data page.
func (k *Kernel) MonotonicNow() time.Duration { return time.Duration(k.vdso.MonotonicNanos()) }

// RealtimeNow returns CLOCK_REALTIME, as the vDSO computes it.
func (k *Kernel) RealtimeNow() time.Time { return time.Unix(0, k.vdso.RealtimeNanos()) }

// VDSO returns the vDSO that execve maps into every new address space.
func (k *Kernel) VDSO() *vdso.VDSO { return k.vdso }

// Hostname returns the UTS nodename.
func (k *Kernel) Hostname() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hostname
}

// SetHostname changes the UTS nodename (sethostname(2)).
func (k *Kernel) SetHostname(name string) {
	k.mu.Lock()
	k.hostname = name
	k.mu.Unlock()
}

// Domainname returns the NIS domain name.
func (k *Kernel) Domainname() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.domainname
}

// allocatePIDLocked returns the next free PID, counting up from the last
// one and wrapping like Linux (never reusing 1 while init lives).
func (k *Kernel) allocatePIDLocked() (ThreadID, error) {
	for range maxPID {
		k.lastPID++
		if k.lastPID >= maxPID {
			k.lastPID = 2
		}
		if _, used := k.tasks[k.lastPID]; used {
			continue
		}
		if _, used := k.groups[k.lastPID]; used { // a zombie's PID
			continue
		}
		if k.idRefs[k.lastPID] > 0 { // a process group's or session's
			continue
		}
		return k.lastPID, nil
	}
	return 0, fmt.Errorf("no free PID: %w", unix.EAGAIN)
}

// TaskCount returns the number of live tasks (sysinfo's procs).
func (k *Kernel) TaskCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.tasks)
}

// TaskWithID returns the live task with the given TID, or nil.
func (k *Kernel) TaskWithID(tid ThreadID) *Task {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tasks[tid]
}

// CreateProcessArgs describe the first process (or any process the
// runtime starts from outside, like `runsc exec`).
type CreateProcessArgs struct {
	// Filename, Argv and Envv are as for execve: Filename is resolved
	// from Root and WorkingDirectory, and its interpreter from Root.
	Filename string
	Argv     []string
	Envv     []string
	// Root is the process's root directory (its mount namespace's root);
	// WorkingDirectory its cwd, resolved from Root ("" means the root).
	Root             vfs.VirtualDentry
	WorkingDirectory string
	// Umask is the file mode creation mask (0o022 is the usual one).
	Umask uint32
	// Credentials of the process; nil means root.
	Credentials *auth.Credentials
	// FDTable is the process's files (stdio); nil means empty.
	// CreateProcess takes over the caller's reference, and releases it
	// if it fails.
	FDTable *FDTable
	// Random, for a deterministic AT_RANDOM and layout in tests; nil
	// means crypto/rand.
	Random interface{ Read([]byte) (int, error) }
	// NoNewPrivs starts the process with no_new_privs set (the OCI
	// process's noNewPrivileges): the program's set-ID bits are then
	// ignored, here and in every later execve.
	NoNewPrivs bool
}

// CreateProcess loads a program into a new address space and creates its
// thread group and first task, not yet running: call Start. The first
// process created gets PID 1.
func (k *Kernel) CreateProcess(ctx context.Context, args CreateProcessArgs) (*ThreadGroup, error) {
	minAddr, maxAddr := hostarch.Addr(0x10000), hostarch.MaxUserAddress
	if k.platform != nil {
		minAddr, maxAddr = k.platform.MinUserAddress(), k.platform.MaxUserAddress()
	}
	m := mm.New(k.mf, mm.Layout{MinAddr: minAddr, MaxAddr: maxAddr})
	creds := args.Credentials
	if creds == nil {
		creds = auth.NewRoot()
	}
	// The process owns args.FDTable from here on, failure included.
	releaseFiles := func() {
		if args.FDTable != nil {
			args.FDTable.DecRef(ctx)
		}
	}
	if !args.Root.Ok() {
		m.DecUsers(ctx)
		releaseFiles()
		return nil, fmt.Errorf("creating a process: no root directory: %w", unix.EINVAL)
	}
	cwd := args.Root
	if args.WorkingDirectory != "" {
		var err error
		cwd, err = k.vfs.GetDentryAt(ctx, creds, &vfs.PathOperation{
			Root: args.Root, Start: args.Root, Path: args.WorkingDirectory, FollowFinalSymlink: true,
		}, &vfs.GetDentryOptions{CheckSearchable: true})
		if err != nil {
			m.DecUsers(ctx)
			releaseFiles()
			return nil, fmt.Errorf("working directory %q: %w", args.WorkingDirectory, err)
		}
		defer cwd.DecRef(ctx)
	}
	fsc := NewFSContext(args.Root, cwd, args.Umask)
	opener := &fsOpener{vfs: k.vfs, creds: creds, fs: fsc}
	file, err := opener.OpenExecutable(ctx, args.Filename)
	if err != nil {
		m.DecUsers(ctx)
		fsc.DecRef(ctx)
		releaseFiles()
		return nil, fmt.Errorf("loading %q: %w", args.Filename, err)
	}
	defer file.(*execFile).DecRef(ctx)
	// The program's set-ID bits apply as execve applies them (runc's
	// exec'd processes start through execve), unless no_new_privs or a
	// nosuid mount rules them out. Without them the credentials stay as
	// given: the caller's capability sets are those the process runs
	// with, not ones for execve to transform.
	execCreds, secure := creds, false
	if xf := execSetID(ctx, opener, file, args.NoNewPrivs); xf.SetUID || xf.SetGID {
		execCreds, secure = creds.ForExecOf(xf, args.NoNewPrivs)
	}
	la := loader.Args{
		MM: m, Opener: opener, File: file, Filename: args.Filename,
		Argv: args.Argv, Envv: args.Envv, Creds: execCreds, Secure: secure, VDSO: k.vdso,
	}
	if args.Random != nil {
		la.Random = args.Random
	}
	res, err := loader.Load(ctx, la)
	if err != nil {
		m.DecUsers(ctx)
		fsc.DecRef(ctx)
		releaseFiles()
		return nil, fmt.Errorf("loading %q: %w", args.Filename, err)
	}
	fdt := args.FDTable
	if fdt == nil {
		fdt = NewFDTable()
	}
	t, err := k.newTask(ctx, newTaskArgs{
		mm: m, fdTable: fdt, fsContext: fsc, creds: execCreds, newGroup: true,
		handlers: NewSignalHandlers(), image: res, pidns: k.rootPIDNS,
	})
	if err != nil {
		m.DecUsers(ctx)
		fdt.DecRef(ctx)
		fsc.DecRef(ctx)
		return nil, err
	}
	t.noNewPrivs = args.NoNewPrivs
	if secure {
		// As after a set-ID execve: not dumpable.
		t.tg.dumpable.Store(0)
	}
	t.ac.SetIP(res.Entry)
	t.ac.SetStack(res.Stack.SP)
	t.SetName(path.Base(res.Filename))
	return t.tg, nil
}

// Start runs every task of tg that has not started.
func (k *Kernel) Start(tg *ThreadGroup) {
	k.mu.Lock()
	tasks := append([]*Task(nil), tg.tasks...)
	k.mu.Unlock()
	for _, t := range tasks {
		t.start()
	}
}

// killAllLocked sends SIGKILL to every thread group (init died).
func (k *Kernel) killAllLocked() {
	for _, tg := range k.groups {
		tg.exitGroup(WaitStatusSignaled(unix.SIGKILL))
	}
}
