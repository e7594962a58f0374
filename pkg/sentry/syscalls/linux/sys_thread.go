package linux

import (
	"encoding/binary"
	"math"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// Exit implements exit(2): end this thread.
func Exit(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	t.Exit(int(args[0].Int()))
	return 0, kernel.ErrNoSyscallReturn
}

// ExitGroup implements exit_group(2): end every thread of the process.
func ExitGroup(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	t.ExitGroup(int(args[0].Int()))
	return 0, kernel.ErrNoSyscallReturn
}

// Getpid implements getpid(2).
func Getpid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.GetPID()), nil
}

// Gettid implements gettid(2).
func Gettid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.GetTID()), nil
}

// Getppid implements getppid(2).
func Getppid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.GetPPID()), nil
}

// Getuid implements getuid(2).
func Getuid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.Credentials().RealUID), nil
}

// Geteuid implements geteuid(2).
func Geteuid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.Credentials().EffectiveUID), nil
}

// Getgid implements getgid(2).
func Getgid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.Credentials().RealGID), nil
}

// Getegid implements getegid(2).
func Getegid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.Credentials().EffectiveGID), nil
}

func copyOutIDs(t *kernel.Task, args arch.SyscallArguments, ids [3]uint32) (uintptr, error) {
	var b [4]byte
	for i, id := range ids {
		binary.LittleEndian.PutUint32(b[:], id)
		if _, err := t.CopyOut(args[i].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// Getresuid implements getresuid(2).
func Getresuid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	c := t.Credentials()
	return copyOutIDs(t, args, [3]uint32{uint32(c.RealUID), uint32(c.EffectiveUID), uint32(c.SavedUID)})
}

// Getresgid implements getresgid(2).
func Getresgid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	c := t.Credentials()
	return copyOutIDs(t, args, [3]uint32{uint32(c.RealGID), uint32(c.EffectiveGID), uint32(c.SavedGID)})
}

// SetTidAddress implements set_tid_address(2).
func SetTidAddress(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	t.SetClearChildTID(args[0].Pointer())
	return uintptr(t.GetTID()), nil
}

// SetRobustList implements set_robust_list(2); the list is walked at exit
// once futexes exist.
func SetRobustList(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[1].Uint64() != linux.SizeOfRobustListHead {
		return 0, unix.EINVAL
	}
	t.SetRobustList(args[0].Pointer())
	return 0, nil
}

// ArchPrctl implements arch_prctl(2).
func ArchPrctl(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	regs := &t.Arch().Regs
	var b [8]byte
	switch args[0].Int() {
	case linux.ARCH_SET_FS:
		if err := t.Arch().SetTLS(uintptr(args[1].Value)); err != nil {
			return 0, unix.EPERM
		}
	case linux.ARCH_GET_FS:
		binary.LittleEndian.PutUint64(b[:], regs.Fs_base)
		if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
	case linux.ARCH_SET_GS:
		if !arch.IsValidTLS(uintptr(args[1].Value)) {
			return 0, unix.EPERM
		}
		regs.Gs_base = args[1].Uint64()
	case linux.ARCH_GET_GS:
		binary.LittleEndian.PutUint64(b[:], regs.Gs_base)
		if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
			return 0, unix.EFAULT
		}
	case linux.ARCH_GET_CPUID:
		// CPUID is always allowed to execute.
		return 1, nil
	default:
		return 0, unix.EINVAL
	}
	return 0, nil
}

// rlimits: getrlimit/setrlimit/prlimit64.
func checkResource(r int32) error {
	if r < 0 || r >= linux.RLIM_NLIMITS {
		return unix.EINVAL
	}
	return nil
}

func copyOutRlimit(t *kernel.Task, addr hostarch.Addr, l linux.Rlimit) error {
	var b [linux.SizeOfRlimit]byte
	l.MarshalBytes(b[:])
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

func copyInRlimit(t *kernel.Task, addr hostarch.Addr) (linux.Rlimit, error) {
	var b [linux.SizeOfRlimit]byte
	var l linux.Rlimit
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return l, unix.EFAULT
	}
	l.UnmarshalBytes(b[:])
	return l, nil
}

// setLimit applies the rules of setrlimit(2): soft <= hard, and raising
// the hard limit needs CAP_SYS_RESOURCE.
func setLimit(t *kernel.Task, tg *kernel.ThreadGroup, r int, l linux.Rlimit) error {
	if l.Cur > l.Max {
		return unix.EINVAL
	}
	if old := tg.Limit(r); l.Max > old.Max && !t.Credentials().HasCapability(auth.CAP_SYS_RESOURCE) {
		return unix.EPERM
	}
	if r == linux.RLIMIT_NOFILE && l.Max > 1<<20 {
		return unix.EPERM // nr_open
	}
	tg.SetLimit(r, l)
	return nil
}

// Getrlimit implements getrlimit(2).
func Getrlimit(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	r := args[0].Int()
	if err := checkResource(r); err != nil {
		return 0, err
	}
	return 0, copyOutRlimit(t, args[1].Pointer(), t.ThreadGroup().Limit(int(r)))
}

// Setrlimit implements setrlimit(2).
func Setrlimit(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	r := args[0].Int()
	if err := checkResource(r); err != nil {
		return 0, err
	}
	l, err := copyInRlimit(t, args[1].Pointer())
	if err != nil {
		return 0, err
	}
	return 0, setLimit(t, t.ThreadGroup(), int(r), l)
}

// Prlimit64 implements prlimit64(2). Another process's limits may be
// read or set by a caller whose real, effective and saved IDs all equal
// the target's real, effective and saved ones, or by CAP_SYS_RESOURCE.
func Prlimit64(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	pid := kernel.ThreadID(args[0].Int())
	r := args[1].Int()
	if err := checkResource(r); err != nil {
		return 0, err
	}
	tg := t.ThreadGroup()
	if pid != 0 && pid != t.GetPID() {
		o := t.LookupTask(pid)
		if o == nil {
			return 0, unix.ESRCH
		}
		c, oc := t.Credentials(), o.Credentials()
		sameIDs := c.RealUID == oc.RealUID && c.RealUID == oc.EffectiveUID && c.RealUID == oc.SavedUID &&
			c.RealGID == oc.RealGID && c.RealGID == oc.EffectiveGID && c.RealGID == oc.SavedGID
		if !sameIDs && !c.HasCapability(auth.CAP_SYS_RESOURCE) {
			return 0, unix.EPERM
		}
		tg = o.ThreadGroup()
	}
	old := tg.Limit(int(r))
	if newAddr := args[2].Pointer(); newAddr != 0 {
		l, err := copyInRlimit(t, newAddr)
		if err != nil {
			return 0, err
		}
		if err := setLimit(t, tg, int(r), l); err != nil {
			return 0, err
		}
	}
	if oldAddr := args[3].Pointer(); oldAddr != 0 {
		return 0, copyOutRlimit(t, oldAddr, old)
	}
	return 0, nil
}

// Clone implements clone(2): flags, stack, parent_tid, child_tid, tls
// (the amd64 argument order).
func Clone(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tid, err := t.Clone(kernel.CloneOptions{
		Flags: args[0].Uint64(), Stack: args[1].Pointer(), ParentTID: args[2].Pointer(),
		ChildTID: args[3].Pointer(), TLS: uintptr(args[4].Value),
	})
	return uintptr(tid), err
}

// Fork implements fork(2).
func Fork(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	tid, err := t.Clone(kernel.CloneOptions{Flags: uint64(unix.SIGCHLD)})
	return uintptr(tid), err
}

// Vfork implements vfork(2).
func Vfork(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	tid, err := t.Clone(kernel.CloneOptions{Flags: linux.CLONE_VM | linux.CLONE_VFORK | uint64(unix.SIGCHLD)})
	return uintptr(tid), err
}

// Wait4 implements wait4(2).
func Wait4(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	pid := args[0].Int()
	opts := args[2].Uint()
	const known = linux.WNOHANG | linux.WUNTRACED | linux.WCONTINUED | linux.WNOTHREAD | linux.WALL | linux.WCLONE
	if opts&^uint32(known) != 0 {
		return 0, unix.EINVAL
	}
	o := kernel.WaitOptions{
		PID:    kernel.ThreadID(pid),
		NoHang: opts&linux.WNOHANG != 0, Clone: opts&linux.WCLONE != 0, All: opts&linux.WALL != 0,
		Exited: true, Stopped: opts&linux.WUNTRACED != 0, Continued: opts&linux.WCONTINUED != 0,
		Blocker: t,
	}
	var usage kernel.CPUUsage
	var maxRSS uint64
	if args[3].Pointer() != 0 {
		o.Usage, o.MaxRSS = &usage, &maxRSS
	}
	cpid, status, err := t.ThreadGroup().Wait(o)
	if err != nil {
		return 0, err
	}
	if cpid != 0 {
		if addr := args[1].Pointer(); addr != 0 {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(status))
			if _, err := t.CopyOut(addr, b[:]); err != nil {
				return 0, unix.EFAULT
			}
		}
		if addr := args[3].Pointer(); addr != 0 {
			b := rusageOf(usage, maxRSS)
			if _, err := t.CopyOut(addr, b[:]); err != nil {
				return 0, unix.EFAULT
			}
		}
	}
	return uintptr(cpid), nil
}

// Kill implements kill(2): a process, the caller's process group (0), a
// process group (-pgid), or every process but init and the caller (-1).
func Kill(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	pid := args[0].Int()
	sig := linux.Signal(args[1].Int())
	if sig != 0 && !sig.IsValid() {
		return 0, unix.EINVAL
	}
	// The sender's PID is filled in for each receiver's namespace.
	info := linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}
	info.SetUID(uint32(t.Credentials().RealUID))
	switch {
	case pid > 0:
		tg := t.LookupThreadGroup(kernel.ThreadID(pid))
		if tg == nil {
			return 0, unix.ESRCH
		}
		if err := t.MaySignalGroup(tg, sig); err != nil {
			return 0, err
		}
		if sig == 0 {
			return 0, nil
		}
		return 0, t.SignalProcess(tg, &info)
	case pid == 0:
		return 0, t.KillProcessGroup(t.ThreadGroup().ProcessGroupID(), &info)
	case pid == -1:
		return 0, t.KillAll(&info)
	default:
		if pid == math.MinInt32 {
			return 0, unix.ESRCH // -INT_MIN does not exist
		}
		pgid, ok := t.RootIDOf(kernel.ThreadID(-pid))
		if !ok {
			return 0, unix.ESRCH
		}
		return 0, t.KillProcessGroup(pgid, &info)
	}
}

// Getpgid implements getpgid(2).
func Getpgid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tg, err := groupArg(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	return uintptr(t.IDOf(tg.ProcessGroupID())), nil
}

// Getpgrp implements getpgrp(2).
func Getpgrp(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	return uintptr(t.IDOf(t.ThreadGroup().ProcessGroupID())), nil
}

// Getsid implements getsid(2).
func Getsid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tg, err := groupArg(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	return uintptr(t.IDOf(tg.SessionID())), nil
}

// Setpgid implements setpgid(2).
func Setpgid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	pgid := args[1].Int()
	if pgid < 0 {
		return 0, unix.EINVAL
	}
	tg, err := groupArg(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	root := kernel.ThreadID(0)
	if pgid != 0 {
		var ok bool
		if root, ok = t.RootIDOf(kernel.ThreadID(pgid)); !ok {
			return 0, unix.EPERM
		}
	}
	return 0, t.ThreadGroup().SetProcessGroup(tg, root)
}

// Setsid implements setsid(2).
func Setsid(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	sid, err := t.ThreadGroup().CreateSession()
	return uintptr(t.IDOf(sid)), err
}

// groupArg resolves a pid argument where 0 means the caller.
func groupArg(t *kernel.Task, pid int32) (*kernel.ThreadGroup, error) {
	if pid == 0 {
		return t.ThreadGroup(), nil
	}
	if pid < 0 {
		return nil, unix.EINVAL
	}
	tg := t.LookupThreadGroup(kernel.ThreadID(pid))
	if tg == nil {
		return nil, unix.ESRCH
	}
	return tg, nil
}

// Tgkill implements tgkill(2).
func Tgkill(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tgid, tid := args[0].Int(), args[1].Int()
	if tgid <= 0 || tid <= 0 {
		return 0, unix.EINVAL
	}
	return tkill(t, kernel.ThreadID(tid), kernel.ThreadID(tgid), linux.Signal(args[2].Int()))
}

// Tkill implements tkill(2).
func Tkill(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	tid := args[0].Int()
	if tid <= 0 {
		return 0, unix.EINVAL
	}
	return tkill(t, kernel.ThreadID(tid), 0, linux.Signal(args[1].Int()))
}

func tkill(t *kernel.Task, tid, tgid kernel.ThreadID, sig linux.Signal) (uintptr, error) {
	if sig != 0 && !sig.IsValid() {
		return 0, unix.EINVAL
	}
	o := t.LookupTask(tid)
	if o == nil || (tgid != 0 && t.IDOf(o.ThreadGroup().ID()) != tgid) {
		return 0, unix.ESRCH
	}
	if err := t.MaySignal(o, sig); err != nil {
		return 0, err
	}
	if sig == 0 {
		return 0, nil
	}
	info := linux.SignalInfo{Signo: int32(sig), Code: linux.SI_TKILL}
	info.SetUID(uint32(t.Credentials().RealUID))
	return 0, t.SignalThread(o, &info)
}

// Waitid implements waitid(2): exited (WEXITED), stopped (WSTOPPED) and
// continued (WCONTINUED) children.
func Waitid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	idtype, id, infop, opts := args[0].Int(), args[1].Int(), args[2].Pointer(), args[3].Uint()
	const known = linux.WNOHANG | linux.WEXITED | linux.WSTOPPED | linux.WCONTINUED | linux.WNOWAIT |
		linux.WNOTHREAD | linux.WALL | linux.WCLONE
	if opts&^uint32(known) != 0 || opts&(linux.WEXITED|linux.WSTOPPED|linux.WCONTINUED) == 0 {
		return 0, unix.EINVAL
	}
	o := kernel.WaitOptions{
		NoHang: opts&linux.WNOHANG != 0, Clone: opts&linux.WCLONE != 0, All: opts&linux.WALL != 0,
		NoReap: opts&linux.WNOWAIT != 0, Blocker: t,
		Exited: opts&linux.WEXITED != 0, Stopped: opts&linux.WSTOPPED != 0, Continued: opts&linux.WCONTINUED != 0,
	}
	switch idtype {
	case linux.P_ALL:
		o.PID = -1
	case linux.P_PID:
		if id <= 0 {
			return 0, unix.EINVAL
		}
		o.PID = kernel.ThreadID(id)
	case linux.P_PGID:
		if id < 0 {
			return 0, unix.EINVAL
		}
		if id == 0 {
			// The caller's own group, as wait4's pid 0.
			o.PID = 0
		} else {
			o.PID, o.InGroup = kernel.ThreadID(id), true
		}
	default:
		return 0, unix.EINVAL
	}
	cpid, status, err := t.ThreadGroup().Wait(o)
	if err != nil {
		return 0, err
	}
	if infop == 0 {
		return 0, nil
	}
	if cpid == 0 {
		return 0, zeroSiginfo(t, infop)
	}
	info := linux.SignalInfo{Signo: int32(unix.SIGCHLD)}
	info.SetPid(int32(cpid))
	// The child's real UID is not kept past its exit; children share
	// the parent's unless they changed it.
	info.SetUID(uint32(t.Credentials().RealUID))
	switch {
	case status.Continued():
		info.Code = linux.CLD_CONTINUED
		info.SetStatus(int32(unix.SIGCONT))
	case status.Stopped():
		info.Code = linux.CLD_STOPPED
		info.SetStatus(int32(status.StopSignal()))
	case status.Signaled():
		info.Code = linux.CLD_KILLED
		info.SetStatus(int32(status.Signal()))
	default:
		info.Code = linux.CLD_EXITED
		info.SetStatus(int32(status.ExitStatus()))
	}
	var b [linux.SizeOfSignalInfo]byte
	info.MarshalBytes(b[:])
	if _, err := t.CopyOut(infop, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

func zeroSiginfo(t *kernel.Task, addr hostarch.Addr) error {
	if addr == 0 {
		return nil
	}
	var b [linux.SizeOfSignalInfo]byte
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// clone3Flags are the flags clone3 accepts beyond clone's: CLONE_DETACHED
// and the exit-signal byte are not among them.
const clone3Flags = (1<<32-1)&^(linux.CSIGNAL|linux.CLONE_DETACHED) | linux.CLONE_NEWTIME |
	linux.CLONE_CLEAR_SIGHAND | linux.CLONE_INTO_CGROUP

// Clone3 implements clone3(2): struct clone_args of any known size
// (larger ones only if the tail is zero), checked as Linux checks it.
func Clone3(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	size := args[1].Uint64()
	if size > hostarch.PageSize {
		return 0, unix.E2BIG
	}
	if size < linux.CLONE_ARGS_SIZE_VER0 {
		return 0, unix.EINVAL
	}
	buf := make([]byte, size)
	if _, err := t.CopyIn(args[0].Pointer(), buf); err != nil {
		return 0, unix.EFAULT
	}
	for _, b := range buf[min(size, linux.CLONE_ARGS_SIZE_VER2):] {
		if b != 0 {
			return 0, unix.E2BIG
		}
	}
	var ca [11]uint64 // flags pidfd child_tid parent_tid exit_signal stack stack_size tls set_tid set_tid_size cgroup
	for i := range ca {
		if off := 8 * i; off+8 <= len(buf) {
			ca[i] = binary.LittleEndian.Uint64(buf[off:])
		}
	}
	flags, pidfd, childTID, parentTID, exitSignal := ca[0], ca[1], ca[2], ca[3], ca[4]
	stack, stackSize, tls, setTID, setTIDSize, cgroup := ca[5], ca[6], ca[7], ca[8], ca[9], ca[10]
	switch {
	case exitSignal&^linux.CSIGNAL != 0,
		exitSignal != 0 && !linux.Signal(exitSignal).IsValid(),
		setTIDSize > 32, // MAX_PID_NS_LEVEL
		setTID == 0 && setTIDSize != 0,
		setTID != 0 && setTIDSize == 0,
		cgroup > 1<<31-1,
		flags&^clone3Flags != 0,
		flags&(linux.CLONE_THREAD|linux.CLONE_PARENT) != 0 && exitSignal != 0,
		(stack == 0) != (stackSize == 0):
		return 0, unix.EINVAL
	}
	if setTIDSize != 0 {
		// Choosing PIDs needs CAP_SYS_ADMIN over the PID namespace; the
		// Sentry allocates PIDs itself and does not offer it.
		if !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
			return 0, unix.EPERM
		}
		return 0, unix.EINVAL
	}
	if flags&(linux.CLONE_PIDFD|linux.CLONE_INTO_CGROUP|linux.CLONE_NEWTIME) != 0 {
		// No pidfds, cgroups or time namespaces in the Sentry.
		return 0, unix.EINVAL
	}
	_ = pidfd
	o := kernel.CloneOptions{
		Flags: flags, ParentTID: hostarch.Addr(parentTID), ChildTID: hostarch.Addr(childTID),
		TLS: uintptr(tls), Clone3: true, ExitSignal: unix.Signal(exitSignal),
	}
	if stack != 0 {
		// The stack grows down from the end of the area.
		o.Stack = hostarch.Addr(stack + stackSize)
	}
	tid, err := t.Clone(o)
	return uintptr(tid), err
}

// Unshare implements unshare(2).
func Unshare(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return 0, t.Unshare(args[0].Uint64())
}

// Setns implements setns(2) for the namespace files the Sentry has, PID
// namespaces (/proc/[pid]/ns/pid and pid_for_children): the caller's
// later children go into the namespace, which must be its own or one
// below it.
func Setns(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	nstype := args[1].Int()
	f, _, ok := t.FDTable().Get(args[0].Int())
	if !ok {
		return 0, unix.EBADF
	}
	defer f.DecRef(t)
	ns, ok := kernel.PIDNamespaceOfFile(f)
	if !ok || (nstype != 0 && nstype != linux.CLONE_NEWPID) {
		return 0, unix.EINVAL
	}
	if !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	return 0, t.SetPIDNamespaceForChildren(ns)
}

// hostNameMax is __NEW_UTS_LEN.
const hostNameMax = 64

func setUTSName(t *kernel.Task, args arch.SyscallArguments, domain bool) (uintptr, error) {
	if !t.Credentials().HasCapability(auth.CAP_SYS_ADMIN) {
		return 0, unix.EPERM
	}
	n := args[1].Int()
	if n < 0 || n > hostNameMax {
		return 0, unix.EINVAL
	}
	b := make([]byte, n)
	if _, err := t.CopyIn(args[0].Pointer(), b); err != nil {
		return 0, unix.EFAULT
	}
	// The name ends at the first NUL, if any.
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	t.SetUTSName(string(b), domain)
	return 0, nil
}

// Sethostname implements sethostname(2).
func Sethostname(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return setUTSName(t, args, false)
}

// Setdomainname implements setdomainname(2).
func Setdomainname(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return setUTSName(t, args, true)
}
