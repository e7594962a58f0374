package proc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// Kinds of per-thread nodes, for their inode numbers.
const (
	kindDir = iota + 1
	kindTaskDir
	kindFdDir
	kindFdinfoDir
	kindNsDir
	kindNetDir
	kindFd
	kindFdinfo
	kindFirstFile // files are numbered from here in listing order
)

// processDir returns /proc/[pid] (who.tid == who.pid) or
// /proc/[pid]/task/[tid].
func (f *filesystem) processDir(who owner) *dirNode {
	kind := kindDir
	if who.tid != who.pid {
		kind = kindTaskDir
	}
	d := f.newDir(taskIno(who.tid, kind, 0), who, 0o555, nil)
	d.list = func(context.Context) []child { return f.processEntries(who, false) }
	return d
}

// threadDir is /proc/[pid]/task/[tid]: the process's files as one of its
// threads sees them; they differ where Linux reports per-thread values
// (io).
func (f *filesystem) threadDir(who owner) *dirNode {
	d := f.processDir(who)
	d.list = func(context.Context) []child { return f.processEntries(who, true) }
	return d
}

// taskGen generates a file of a live thread; zombies get what gen makes
// of a nil task.
type taskGen func(ctx context.Context, tg *kernel.ThreadGroup, t *kernel.Task) ([]byte, error)

// processEntries lists the files of a process directory, or of a thread
// directory (under task/) when thread is set.
func (f *filesystem) processEntries(who owner, thread bool) []child {
	ref := &node{fs: f, who: who}
	kind := kindFirstFile
	var out []child
	file := func(name string, mode uint32, gen taskGen) *fileNode {
		n := f.newFile(taskIno(who.tid, kind, 0), who, mode, func(ctx context.Context) ([]byte, error) {
			tg := ref.group()
			if tg == nil {
				return nil, unix.ENOENT
			}
			return gen(ctx, tg, ref.task())
		})
		kind++
		out = append(out, child{name, n})
		return n
	}
	link := func(name string, target func(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, string, error)) {
		resolveTask := func(ctx context.Context) (vfs.VirtualDentry, string, error) {
			t := ref.task()
			if t == nil {
				return vfs.VirtualDentry{}, "", unix.ENOENT
			}
			if !mayPtrace(ctx, t) {
				return vfs.VirtualDentry{}, "", unix.EACCES
			}
			return target(ctx, t)
		}
		l := f.newMagicLink(taskIno(who.tid, kind, 0), who,
			func(ctx context.Context) (string, error) {
				vd, p, err := resolveTask(ctx)
				if vd.Ok() {
					vd.DecRef(ctx)
				}
				return p, err
			},
			func(ctx context.Context) (vfs.VirtualDentry, error) {
				vd, _, err := resolveTask(ctx)
				if err == nil && !vd.Ok() {
					err = unix.ENOENT
				}
				return vd, err
			})
		kind++
		out = append(out, child{name, l})
	}

	file("auxv", 0o400, auxv)
	file("cgroup", 0o444, func(context.Context, *kernel.ThreadGroup, *kernel.Task) ([]byte, error) {
		return []byte("0::/\n"), nil
	})
	file("cmdline", 0o444, func(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		return stackStrings(ctx, t, true), nil
	})
	comm := file("comm", 0o644, func(_ context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		if t == nil {
			return []byte("\n"), nil
		}
		return []byte(t.Name() + "\n"), nil
	})
	comm.write = func(ctx context.Context, data []byte) error {
		t := ref.task()
		if t == nil {
			return unix.ESRCH
		}
		caller := callerTask(ctx)
		if caller == nil || caller.ThreadGroup() != t.ThreadGroup() {
			return unix.EINVAL
		}
		// A task's name is its own to change; another thread of the
		// process asking for it is refused rather than raced with.
		if caller != t {
			return unix.EINVAL
		}
		// Like Linux, the name is taken as written (a newline included)
		// up to the first NUL.
		if i := bytes.IndexByte(data, 0); i >= 0 {
			data = data[:i]
		}
		t.SetName(string(data))
		return nil
	}
	link("cwd", func(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, string, error) {
		return fsLink(ctx, t, false)
	})
	file("environ", 0o400, func(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		return stackStrings(ctx, t, false), nil
	})
	link("exe", func(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, string, error) {
		return exeLink(ctx, t)
	})
	out = append(out, child{"fd", f.fdDir(who, false)}, child{"fdinfo", f.fdDir(who, true)})
	file("gid_map", 0o444, idMap)
	if thread {
		file("io", 0o400, threadIOAccounting)
	} else {
		file("io", 0o400, ioAccounting)
	}
	file("limits", 0o444, limits)
	// No audit session: the "unset" values.
	file("loginuid", 0o444, fixedText("4294967295"))
	file("maps", 0o444, func(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		return maps(ctx, t, false), nil
	})
	file("mountinfo", 0o444, f.mountinfo)
	file("mounts", 0o444, f.mounts)
	out = append(out, child{"net", f.netDir(who)})
	out = append(out, child{"ns", f.nsDir(who)})
	file("personality", 0o400, func(_ context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		if t == nil {
			return []byte("00000000\n"), nil
		}
		return fmt.Appendf(nil, "%08x\n", t.Personality()), nil
	})
	file("oom_score", 0o444, func(context.Context, *kernel.ThreadGroup, *kernel.Task) ([]byte, error) {
		return []byte("0\n"), nil
	})
	adj := file("oom_score_adj", 0o644, func(_ context.Context, tg *kernel.ThreadGroup, _ *kernel.Task) ([]byte, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return []byte(strconv.Itoa(f.oomScoreAdjLocked(tg)) + "\n"), nil
	})
	adj.write = func(ctx context.Context, data []byte) error {
		v, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || v < -1000 || v > 1000 {
			return unix.EINVAL
		}
		tg := ref.group()
		if tg == nil {
			return unix.ESRCH
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		// Lowering the score needs CAP_SYS_RESOURCE, as on Linux.
		if v < f.oomScoreAdjLocked(tg) {
			if c := auth.CredentialsFromContext(ctx); c == nil || !c.HasCapability(auth.CAP_SYS_RESOURCE) {
				return unix.EACCES
			}
		}
		f.setOOMScoreAdjLocked(tg, v)
		return nil
	}
	link("root", func(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, string, error) {
		return fsLink(ctx, t, true)
	})
	file("sessionid", 0o444, fixedText("4294967295"))
	file("setgroups", 0o444, fixedText("allow\n"))
	file("smaps", 0o444, func(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		return maps(ctx, t, true), nil
	})
	file("stat", 0o444, func(ctx context.Context, tg *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		return statLine(ctx, f.ns, tg, t, who.tid), nil
	})
	file("statm", 0o444, statm)
	file("status", 0o444, func(ctx context.Context, tg *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
		return status(ctx, f.ns, tg, t, who.tid), nil
	})
	if who.tid == who.pid {
		task := f.newDir(taskIno(who.tid, kind, 0), who, 0o555, func(context.Context) []child {
			tg := ref.group()
			if tg == nil {
				return nil
			}
			var cs []child
			for _, t := range tg.Tasks() {
				if id := f.ns.IDOfTask(t); id > 0 {
					cs = append(cs, child{strconv.Itoa(int(id)), f.threadDir(owner{who.pid, t.ThreadID()})})
				}
			}
			return cs
		})
		kind++
		out = append(out, child{"task", task})
	}
	file("uid_map", 0o444, idMap)
	file("wchan", 0o444, fixedText("0"))
	return out
}

// ioAccounting is /proc/[pid]/io. The storage-level counters stay zero:
// the Sentry's files are in memory or behind the Gofer, so no block
// device I/O is attributable to the process.
func ioAccounting(_ context.Context, tg *kernel.ThreadGroup, _ *kernel.Task) ([]byte, error) {
	return ioText(tg.IOTotals()), nil
}

// threadIOAccounting is /proc/[pid]/task/[tid]/io: that thread's own
// counts (zero once it has exited, as its task is gone).
func threadIOAccounting(_ context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
	var c kernel.IOSnapshot
	if t != nil {
		c = t.IOCounts().Snapshot()
	}
	return ioText(c), nil
}

func ioText(c kernel.IOSnapshot) []byte {
	return fmt.Appendf(nil, "rchar: %d\nwchar: %d\nsyscr: %d\nsyscw: %d\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n",
		c.ReadBytes, c.WriteBytes, c.ReadCalls, c.WriteCalls)
}

// fixedText returns a generator of the same text for every process.
func fixedText(s string) taskGen {
	return func(context.Context, *kernel.ThreadGroup, *kernel.Task) ([]byte, error) { return []byte(s), nil }
}

// mayPtrace is the check Linux makes before exposing a process's links
// (PTRACE_MODE_READ_FSCREDS, simplified): the same user, or
// CAP_SYS_PTRACE.
func mayPtrace(ctx context.Context, t *kernel.Task) bool {
	c := auth.CredentialsFromContext(ctx)
	if c == nil {
		return true
	}
	if c.HasCapability(auth.CAP_SYS_PTRACE) {
		return true
	}
	tc := t.Credentials()
	return c.FilesystemUID == tc.RealUID && c.FilesystemUID == tc.EffectiveUID && c.FilesystemUID == tc.SavedUID
}

// rootOf returns t's root with a reference, or false once it exited.
func rootOf(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, bool) {
	fsc := t.FSContextRef()
	if fsc == nil {
		return vfs.VirtualDentry{}, false
	}
	defer fsc.DecRef(ctx)
	r := fsc.Root()
	return r, r.Ok()
}

// callerRoot returns the root paths are shown from: the caller's own
// (Linux prints links relative to the reader's root), else t's.
func callerRoot(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, bool) {
	if c := callerTask(ctx); c != nil {
		if r, ok := rootOf(ctx, c); ok {
			return r, true
		}
	}
	return rootOf(ctx, t)
}

// fsLink resolves cwd (root false) or root of t.
func fsLink(ctx context.Context, t *kernel.Task, root bool) (vfs.VirtualDentry, string, error) {
	fsc := t.FSContextRef()
	if fsc == nil {
		return vfs.VirtualDentry{}, "", unix.ENOENT
	}
	var vd vfs.VirtualDentry
	if root {
		vd = fsc.Root()
	} else {
		vd = fsc.WorkingDirectory()
	}
	fsc.DecRef(ctx)
	if !vd.Ok() {
		return vd, "", unix.ENOENT
	}
	return vd, pathOf(ctx, t, vd), nil
}

// pathOf names vd as the reader sees it.
func pathOf(ctx context.Context, t *kernel.Task, vd vfs.VirtualDentry) string {
	r, ok := callerRoot(ctx, t)
	if !ok {
		return "/"
	}
	defer r.DecRef(ctx)
	v := vd.Mount().Filesystem().VFS()
	p, err := v.PathnameWithDeleted(ctx, r, vd)
	if err != nil {
		return "/"
	}
	return p
}

// exeLink resolves /proc/[pid]/exe: the file the process's address space
// was loaded from, kept by reference since execve (Linux's exe_file), so
// it is never looked up again by name: a program run as /proc/self/exe
// must not resolve to itself.
func exeLink(ctx context.Context, t *kernel.Task) (vfs.VirtualDentry, string, error) {
	vd, ok := t.Executable(ctx)
	if !ok {
		return vfs.VirtualDentry{}, "", unix.ENOENT
	}
	return vd, pathOf(ctx, t, vd), nil
}

// readMemory reads [start, end) of t's address space.
func readMemory(ctx context.Context, t *kernel.Task, start, end hostarch.Addr) []byte {
	if t == nil || end <= start || end-start > 1<<20 {
		return nil
	}
	m := t.MemoryManagerRef()
	if m == nil {
		return nil
	}
	defer m.DecUsers(ctx)
	buf := make([]byte, end-start)
	n, _ := m.CopyIn(ctx, start, buf, usermem.IOOpts{})
	return buf[:n]
}

// stackStrings returns the argument (argv true) or environment area that
// execve laid out on the initial stack.
func stackStrings(ctx context.Context, t *kernel.Task, argv bool) []byte {
	if t == nil {
		return nil
	}
	img := t.ImageSnapshot()
	if img == nil {
		return nil
	}
	s := img.Stack
	if argv {
		return readMemory(ctx, t, s.ArgvStart, s.ArgvEnd)
	}
	return readMemory(ctx, t, s.EnvvStart, s.EnvvEnd)
}

// auxv is the auxiliary vector execve gave the program, AT_NULL
// terminated, as native-endian pairs.
func auxv(_ context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
	if t == nil {
		return nil, nil
	}
	img := t.ImageSnapshot()
	if img == nil {
		return nil, nil
	}
	var b []byte
	for _, e := range img.Stack.Auxv {
		if e.Key == 0 {
			break
		}
		b = binary.LittleEndian.AppendUint64(b, e.Key)
		b = binary.LittleEndian.AppendUint64(b, e.Value)
	}
	return append(b, make([]byte, 16)...), nil
}

// idMap is uid_map/gid_map: the sandbox has one user namespace, the
// identity over the whole range.
func idMap(context.Context, *kernel.ThreadGroup, *kernel.Task) ([]byte, error) {
	return fmt.Appendf(nil, "%10d %10d %10d\n", 0, 0, uint32(4294967295)), nil
}

// limitNames are the rows of /proc/[pid]/limits, in RLIMIT_* order.
var limitNames = [...]struct{ name, unit string }{
	{"Max cpu time", "seconds"}, {"Max file size", "bytes"}, {"Max data size", "bytes"},
	{"Max stack size", "bytes"}, {"Max core file size", "bytes"}, {"Max resident set", "bytes"},
	{"Max processes", "processes"}, {"Max open files", "files"}, {"Max locked memory", "bytes"},
	{"Max address space", "bytes"}, {"Max file locks", "locks"}, {"Max pending signals", "signals"},
	{"Max msgqueue size", "bytes"}, {"Max nice priority", ""}, {"Max realtime priority", ""},
	{"Max realtime timeout", "us"},
}

func limits(_ context.Context, tg *kernel.ThreadGroup, _ *kernel.Task) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units")
	val := func(v uint64) string {
		if v == linux.RLIM_INFINITY {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	for i, l := range limitNames {
		r := tg.Limit(i)
		fmt.Fprintf(&b, "%-25s %-20s %-20s %-10s\n", l.name, val(r.Cur), val(r.Max), l.unit)
	}
	return b.Bytes(), nil
}

// mapName is the name column of a maps line.
func mapName(m mm.MappingInfo, brk hostarch.AddrRange) string {
	if m.Hint != "" {
		return m.Hint
	}
	if m.Anonymous && brk.Start < brk.End && m.Range.Start < brk.End && brk.Start < m.Range.End {
		return "[heap]"
	}
	return ""
}

// maps renders /proc/[pid]/maps, or smaps with per-mapping sizes.
func maps(ctx context.Context, t *kernel.Task, smaps bool) []byte {
	if t == nil {
		return nil
	}
	m := t.MemoryManagerRef()
	if m == nil {
		return nil
	}
	defer m.DecUsers(ctx)
	brk := m.BrkRange()
	var b bytes.Buffer
	for _, v := range m.Mappings() {
		perm := func(ok bool, c byte) byte {
			if ok {
				return c
			}
			return '-'
		}
		share := byte('p')
		if !v.Private {
			share = 's'
		}
		line := fmt.Sprintf("%08x-%08x %c%c%c%c %08x 00:00 0 ", uint64(v.Range.Start), uint64(v.Range.End),
			perm(v.Perms.Read, 'r'), perm(v.Perms.Write, 'w'), perm(v.Perms.Execute, 'x'), share, v.Offset)
		if name := mapName(v, brk); name != "" {
			// Linux pads the name to a fixed column.
			line = fmt.Sprintf("%-73s%s", line, name)
		}
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
		if smaps {
			size := uint64(v.Range.End - v.Range.Start)
			rss := uint64(0)
			if res, err := m.Residency(v.Range.Start, size); err == nil {
				for _, r := range res {
					if r&1 != 0 {
						rss += hostarch.PageSize
					}
				}
			}
			anon := uint64(0)
			if v.Anonymous || v.Private {
				anon = rss
			}
			fmt.Fprintf(&b, "Size:           %8d kB\nKernelPageSize: %8d kB\nMMUPageSize:    %8d kB\n", size/1024, 4, 4)
			fmt.Fprintf(&b, "Rss:            %8d kB\nPss:            %8d kB\n", rss/1024, rss/1024)
			fmt.Fprintf(&b, "Shared_Clean:   %8d kB\nShared_Dirty:   %8d kB\nPrivate_Clean:  %8d kB\nPrivate_Dirty:  %8d kB\n", 0, 0, 0, anon/1024)
			fmt.Fprintf(&b, "Referenced:     %8d kB\nAnonymous:      %8d kB\nSwap:           %8d kB\nLocked:         %8d kB\n", rss/1024, anon/1024, 0, 0)
			var flags []string
			for _, fl := range []struct {
				ok   bool
				name string
			}{{v.Perms.Read, "rd"}, {v.Perms.Write, "wr"}, {v.Perms.Execute, "ex"}, {!v.Private, "sh"},
				{v.MaxPerms.Read, "mr"}, {v.MaxPerms.Write, "mw"}, {v.MaxPerms.Execute, "me"}, {v.GrowsDown, "gd"}} {
				if fl.ok {
					flags = append(flags, fl.name)
				}
			}
			fmt.Fprintf(&b, "VmFlags: %s \n", strings.Join(flags, " "))
		}
	}
	return b.Bytes()
}

// memSizes returns the address space size and resident set in bytes.
func memSizes(ctx context.Context, t *kernel.Task) (vsize, rss uint64) {
	if t == nil {
		return 0, 0
	}
	m := t.MemoryManagerRef()
	if m == nil {
		return 0, 0
	}
	defer m.DecUsers(ctx)
	for _, v := range m.Mappings() {
		vsize += uint64(v.Range.End - v.Range.Start)
	}
	return vsize, uint64(m.ResidentPages()) * hostarch.PageSize
}

func statm(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
	vsize, rss := memSizes(ctx, t)
	return fmt.Appendf(nil, "%d %d 0 0 0 %d 0\n", vsize/hostarch.PageSize, rss/hostarch.PageSize, vsize/hostarch.PageSize), nil
}

// stateOf is the one-letter state and its name: the reader itself runs;
// other threads are (as far as /proc can tell) sleeping in the Sentry.
func stateOf(ctx context.Context, tg *kernel.ThreadGroup, t *kernel.Task) (byte, string) {
	switch {
	case t == nil || tg.IsZombie():
		return 'Z', "zombie"
	case callerTask(ctx) == t:
		return 'R', "running"
	}
	return 'S', "sleeping"
}

// commOf is the thread's name, or the process's for a zombie.
func commOf(t *kernel.Task) string {
	if t == nil {
		return ""
	}
	return t.Name()
}

// statLine renders /proc/[pid]/stat (proc(5) field order).
func statLine(ctx context.Context, ns *kernel.PIDNamespace, tg *kernel.ThreadGroup, t *kernel.Task, tid kernel.ThreadID) []byte {
	state, _ := stateOf(ctx, tg, t)
	vsize, rss := memSizes(ctx, t)
	nthreads := len(tg.Tasks())
	var sigPend, sigBlk, sigIgn, sigCgt linux.SignalSet
	sigIgn, sigCgt = tg.SignalDispositions()
	var startStack, argStart, argEnd, envStart, envEnd, startBrk uint64
	if t != nil {
		sigPend = t.ThreadPendingSignals() | tg.SharedPendingSignals()
		sigBlk = t.BlockedSignals()
		if img := t.ImageSnapshot(); img != nil {
			startStack = uint64(img.Stack.SP)
			argStart, argEnd = uint64(img.Stack.ArgvStart), uint64(img.Stack.ArgvEnd)
			envStart, envEnd = uint64(img.Stack.EnvvStart), uint64(img.Stack.EnvvEnd)
			startBrk = uint64(img.BrkStart)
		}
	}
	rssLim := tg.Limit(linux.RLIMIT_RSS).Cur
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d (%s) %c %d %d %d 0 -1 ", ns.IDOf(tid), commOf(t), state, ns.IDOf(tg.ParentPID()), ns.IDOf(tg.ProcessGroupID()), ns.IDOf(tg.SessionID()))
	// flags minflt cminflt majflt cmajflt utime stime cutime cstime
	b.WriteString("4194560 0 0 0 0 0 0 0 0 ")
	// priority nice num_threads itrealvalue starttime
	fmt.Fprintf(&b, "20 0 %d 0 0 ", nthreads)
	fmt.Fprintf(&b, "%d %d %d ", vsize, rss/hostarch.PageSize, rssLim)
	// startcode endcode startstack kstkesp kstkeip
	fmt.Fprintf(&b, "0 0 %d 0 0 ", startStack)
	// signal blocked sigignore sigcatch (obsolete decimal bitmaps)
	fmt.Fprintf(&b, "%d %d %d %d ", uint64(sigPend), uint64(sigBlk), uint64(sigIgn), uint64(sigCgt))
	// wchan nswap cnswap exit_signal processor rt_priority policy
	// delayacct_blkio_ticks guest_time cguest_time
	b.WriteString("0 0 0 17 0 0 0 0 0 0 ")
	// start_data end_data start_brk arg_start arg_end env_start env_end exit_code
	fmt.Fprintf(&b, "0 0 %d %d %d %d %d 0\n", startBrk, argStart, argEnd, envStart, envEnd)
	return b.Bytes()
}

// status renders /proc/[pid]/status.
func status(ctx context.Context, ns *kernel.PIDNamespace, tg *kernel.ThreadGroup, t *kernel.Task, tid kernel.ThreadID) []byte {
	state, stateName := stateOf(ctx, tg, t)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Name:\t%s\n", commOf(t))
	umask := uint32(0o022)
	if t != nil {
		if fsc := t.FSContextRef(); fsc != nil {
			umask = fsc.Umask()
			fsc.DecRef(ctx)
		}
	}
	fmt.Fprintf(&b, "Umask:\t%04o\n", umask)
	fmt.Fprintf(&b, "State:\t%c (%s)\n", state, stateName)
	fmt.Fprintf(&b, "Tgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\nTracerPid:\t0\n", ns.IDOf(tg.ID()), ns.IDOf(tid), ns.IDOf(tg.ParentPID()))
	c := auth.NewRoot()
	if t != nil {
		c = t.Credentials()
	}
	fmt.Fprintf(&b, "Uid:\t%d\t%d\t%d\t%d\n", c.RealUID, c.EffectiveUID, c.SavedUID, c.FilesystemUID)
	fmt.Fprintf(&b, "Gid:\t%d\t%d\t%d\t%d\n", c.RealGID, c.EffectiveGID, c.SavedGID, c.FilesystemGID)
	fdSize := 64
	if t != nil {
		if fdt := t.FDTableRef(); fdt != nil {
			if ds := fdt.Descriptors(); len(ds) > 0 {
				for fdSize <= int(ds[len(ds)-1]) {
					fdSize *= 2
				}
			}
			fdt.DecRef(ctx)
		}
	}
	fmt.Fprintf(&b, "FDSize:\t%d\n", fdSize)
	b.WriteString("Groups:\t")
	for i, g := range c.ExtraGIDs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", g)
	}
	b.WriteString("\n")
	// Each ID in the proc's namespace and every one below it.
	fmt.Fprintf(&b, "NStgid:\t%s\nNSpid:\t%s\nNSpgid:\t%s\nNSsid:\t%s\n", nsIDs(ns, tg.ID()), nsIDs(ns, tid),
		nsIDs(ns, tg.ProcessGroupID()), nsIDs(ns, tg.SessionID()))
	if t != nil {
		vsize, rss := memSizes(ctx, t)
		fmt.Fprintf(&b, "VmPeak:\t%8d kB\nVmSize:\t%8d kB\nVmLck:\t%8d kB\nVmPin:\t%8d kB\n", vsize/1024, vsize/1024, 0, 0)
		fmt.Fprintf(&b, "VmHWM:\t%8d kB\nVmRSS:\t%8d kB\nRssAnon:\t%8d kB\nRssFile:\t%8d kB\nRssShmem:\t%8d kB\n", rss/1024, rss/1024, rss/1024, 0, 0)
		fmt.Fprintf(&b, "VmData:\t%8d kB\nVmStk:\t%8d kB\nVmExe:\t%8d kB\nVmLib:\t%8d kB\nVmPTE:\t%8d kB\nVmSwap:\t%8d kB\n", 0, 0, 0, 0, 0, 0)
	}
	fmt.Fprintf(&b, "Threads:\t%d\n", len(tg.Tasks()))
	ign, cgt := tg.SignalDispositions()
	var pnd, blk linux.SignalSet
	if t != nil {
		pnd, blk = t.ThreadPendingSignals(), t.BlockedSignals()
	}
	shd := tg.SharedPendingSignals()
	fmt.Fprintf(&b, "SigQ:\t%d/%d\n", (pnd | shd).Len(), tg.Limit(linux.RLIMIT_SIGPENDING).Cur)
	fmt.Fprintf(&b, "SigPnd:\t%016x\nShdPnd:\t%016x\nSigBlk:\t%016x\nSigIgn:\t%016x\nSigCgt:\t%016x\n",
		uint64(pnd), uint64(shd), uint64(blk), uint64(ign), uint64(cgt))
	fmt.Fprintf(&b, "CapInh:\t%016x\nCapPrm:\t%016x\nCapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\n",
		uint64(c.InheritableCaps), uint64(c.PermittedCaps), uint64(c.EffectiveCaps), uint64(c.BoundingCaps), uint64(c.AmbientCaps))
	fmt.Fprintf(&b, "NoNewPrivs:\t%d\n", boolInt(noNewPrivs(t)))
	fmt.Fprintf(&b, "Seccomp:\t%d\nSeccomp_filters:\t%d\n", seccompMode(t), 0)
	fmt.Fprintf(&b, "Speculation_Store_Bypass:\tthread vulnerable\n")
	n := NumCPUs()
	fmt.Fprintf(&b, "Cpus_allowed:\t%x\nCpus_allowed_list:\t0-%d\n", uint64(1)<<n-1, n-1)
	b.WriteString("Mems_allowed:\t1\nMems_allowed_list:\t0\n")
	b.WriteString("voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n")
	return b.Bytes()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// seccompMode and noNewPrivs report the task's seccomp state; they are
// answered by the seccomp helper's accessors once those exist.
func seccompMode(t *kernel.Task) int { return taskSeccompMode(t) }

func noNewPrivs(t *kernel.Task) bool { return taskNoNewPrivs(t) }

// mounts renders /proc/[pid]/mounts (fstab format), seen from the
// task's root.
func (f *filesystem) mounts(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
	return f.mountTable(ctx, t, func(b *bytes.Buffer, m vfs.MountInfo) {
		fmt.Fprintf(b, "%s %s %s %s 0 0\n", escapeMountPath(mountSource(m)), escapeMountPath(m.MountPoint), m.FSType, mountOpts(m))
	}), nil
}

// mountinfo renders /proc/[pid]/mountinfo (proc(5)).
func (f *filesystem) mountinfo(ctx context.Context, _ *kernel.ThreadGroup, t *kernel.Task) ([]byte, error) {
	return f.mountTable(ctx, t, func(b *bytes.Buffer, m vfs.MountInfo) {
		fmt.Fprintf(b, "%d %d 0:%d %s %s %s - %s %s %s\n", m.ID, m.ParentID, m.DevMinor,
			escapeMountPath(m.Root), escapeMountPath(m.MountPoint), mountOpts(m), m.FSType, escapeMountPath(mountSource(m)), rwOpt(m))
	}), nil
}

// mountTable renders one row per mount that t sees from its root; nothing
// once the task or its root is gone.
func (f *filesystem) mountTable(ctx context.Context, t *kernel.Task, row func(*bytes.Buffer, vfs.MountInfo)) []byte {
	if t == nil {
		return nil
	}
	root, ok := rootOf(ctx, t)
	if !ok {
		return nil
	}
	defer root.DecRef(ctx)
	var b bytes.Buffer
	for _, m := range f.k.VFS().MountsFrom(ctx, root) {
		row(&b, m)
	}
	return b.Bytes()
}

// mountSource is the source field of mounts and mountinfo: what mount(2)
// was given, or the type name for mounts made without one.
func mountSource(m vfs.MountInfo) string {
	if m.Source == "" {
		return m.FSType
	}
	return m.Source
}

func rwOpt(m vfs.MountInfo) string {
	if m.ReadOnly {
		return "ro"
	}
	return "rw"
}

// mountOpts are a mount's per-mount options, in Linux's order
// (show_mnt_opts: ro/rw, nosuid, nodev, noexec, then the atime mode).
func mountOpts(m vfs.MountInfo) string {
	o := rwOpt(m)
	if m.Flags&unix.MS_NOSUID != 0 {
		o += ",nosuid"
	}
	if m.Flags&unix.MS_NODEV != 0 {
		o += ",nodev"
	}
	if m.Flags&unix.MS_NOEXEC != 0 {
		o += ",noexec"
	}
	return o + ",relatime"
}

// escapeMountPath escapes what would break the space-separated format,
// as Linux's seq_escape does (octal).
func escapeMountPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// nsDir is /proc/[pid]/ns: one namespace of each kind for the sandbox.
func (f *filesystem) nsDir(who owner) *dirNode {
	d := f.newDir(taskIno(who.tid, kindNsDir, 0), who, 0o511, nil)
	ref := &d.node
	names := []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"}
	inos := map[string]uint64{"cgroup": 4026531835, "ipc": 4026531839, "mnt": 4026531841, "net": 4026531840,
		"pid": 4026531836, "pid_for_children": 4026531836, "time": 4026531834, "time_for_children": 4026531834,
		"user": 4026531837, "uts": 4026531838}
	d.list = func(context.Context) []child {
		var cs []child
		for i, n := range names {
			kind := strings.TrimSuffix(n, "_for_children")
			target := fmt.Sprintf("%s:[%d]", kind, inos[n])
			ino := taskIno(who.tid, kindNsDir, int32(i+1))
			if kind == "pid" {
				// The thread's own PID namespace, or where its children
				// go: a magic link to the namespace's file, for setns.
				forChildren := n != kind
				nsOf := func() (*kernel.PIDNamespace, error) {
					t := ref.task()
					if t == nil {
						return nil, unix.ENOENT
					}
					ns := t.PIDNamespace()
					if forChildren {
						// A namespace made by unshare shows once its
						// init exists, as on Linux.
						if ns = t.PIDNamespaceForChildren(); ns != t.PIDNamespace() && ns.InitProcess() == nil {
							return nil, unix.ENOENT
						}
					}
					return ns, nil
				}
				cs = append(cs, child{n, f.newMagicLink(ino, who,
					func(context.Context) (string, error) {
						ns, err := nsOf()
						if err != nil {
							return "", err
						}
						return fmt.Sprintf("pid:[%d]", ns.Inode()), nil
					},
					func(ctx context.Context) (vfs.VirtualDentry, error) {
						if t := ref.task(); t != nil && !mayPtrace(ctx, t) {
							return vfs.VirtualDentry{}, unix.EACCES
						}
						ns, err := nsOf()
						if err != nil {
							return vfs.VirtualDentry{}, err
						}
						return ns.VirtualDentry(), nil
					})})
				continue
			}
			cs = append(cs, child{n, f.newLink(ino, who, func(context.Context) (string, error) { return target, nil })})
		}
		return cs
	}
	return d
}

// nsIDs formats root's numbers from ns down, tab-separated (the NS*
// lines of status); "0" when it is not visible in ns.
func nsIDs(ns *kernel.PIDNamespace, root kernel.ThreadID) string {
	ids := ns.IDs(root)
	if len(ids) == 0 {
		return "0"
	}
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	return b.String()
}
