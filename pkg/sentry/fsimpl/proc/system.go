package proc

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"strconv"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// The kernel identity /proc reports; it matches uname(2) in the sandbox.
const (
	osType    = "Linux"
	osRelease = "4.4.0"
	osVersion = "#1 SMP Sun Jan 10 15:06:54 PST 2016"
)

// Values of /proc/sys that the Sentry's limits imply.
const (
	pidMax      = 4 << 20 // kernel.maxPID
	ngroupsMax  = 65536
	capLastCap  = 40
	nrOpen      = 1 << 20
	pipeMaxSize = 1 << 20
	somaxconn   = 4096
	maxMapCount = 65530
	mmapMinAddr = 65536
)

// NumCPUs is how many CPUs the sandbox sees: those the Sentry may run on,
// as sched_getaffinity reports them (capped at 64, its mask's size).
func NumCPUs() int { return min(runtime.NumCPU(), 64) }

// rootDir builds / of a proc instance.
func (f *filesystem) rootDir() *dirNode {
	var next uint64 = 1
	ino := func() uint64 { next++; return next }
	file := func(name string, gen func(context.Context) ([]byte, error)) child {
		return child{name, f.newFile(ino(), owner{}, 0o444, gen)}
	}
	dir := func(name string, entries ...child) child {
		return child{name, f.newDir(ino(), owner{}, 0o555, func(context.Context) []child { return entries })}
	}
	text := func(name, s string) child { return file(name, staticText(s+"\n")) }
	num := func(name string, v int64) child { return text(name, strconv.FormatInt(v, 10)) }

	bootID := newUUID()
	static := []child{
		{"self", f.newLink(ino(), owner{}, func(ctx context.Context) (string, error) {
			t := callerTask(ctx)
			if t == nil {
				return "", unix.ENOENT
			}
			id := f.ns.IDOfThreadGroup(t.ThreadGroup())
			if id == 0 {
				return "", unix.ENOENT
			}
			return strconv.Itoa(int(id)), nil
		})},
		{"thread-self", f.newLink(ino(), owner{}, func(ctx context.Context) (string, error) {
			t := callerTask(ctx)
			if t == nil {
				return "", unix.ENOENT
			}
			pid, tid := f.ns.IDOfThreadGroup(t.ThreadGroup()), f.ns.IDOfTask(t)
			if pid == 0 || tid == 0 {
				return "", unix.ENOENT
			}
			return fmt.Sprintf("%d/task/%d", pid, tid), nil
		})},
		{"mounts", f.newLink(ino(), owner{}, func(context.Context) (string, error) { return "self/mounts", nil })},
		// As on Linux, /proc/net is the caller's own network namespace.
		{"net", f.newLink(ino(), owner{}, func(context.Context) (string, error) { return "self/net", nil })},
		file("cpuinfo", func(context.Context) ([]byte, error) { return cachedCPUInfo(NumCPUs()), nil }),
		file("meminfo", f.meminfo),
		file("stat", f.systemStat),
		file("uptime", f.uptime),
		file("loadavg", f.loadavg),
		text("version", fmt.Sprintf("%s version %s (carapace@carapace) (gcc) %s", osType, osRelease, osVersion)),
		file("filesystems", f.filesystems),
		text("cmdline", "BOOT_IMAGE=/vmlinuz-"+osRelease+" ro"),
		dir("sys",
			dir("kernel",
				file("hostname", func(context.Context) ([]byte, error) { return []byte(f.k.Hostname() + "\n"), nil }),
				file("domainname", func(context.Context) ([]byte, error) { return []byte(f.k.Domainname() + "\n"), nil }),
				text("osrelease", osRelease),
				text("ostype", osType),
				text("version", osVersion),
				num("pid_max", pidMax),
				num("ngroups_max", ngroupsMax),
				num("cap_last_cap", capLastCap),
				num("threads-max", 1<<20),
				dir("random",
					text("boot_id", bootID),
					file("uuid", func(context.Context) ([]byte, error) { return []byte(newUUID() + "\n"), nil }),
					num("entropy_avail", 256),
					num("poolsize", 256),
				),
			),
			dir("vm",
				num("overcommit_memory", 0),
				num("max_map_count", maxMapCount),
				num("mmap_min_addr", mmapMinAddr),
			),
			dir("fs",
				num("nr_open", nrOpen),
				num("file-max", 9223372036854775807),
				num("pipe-max-size", pipeMaxSize),
			),
			dir("net",
				dir("core", num("somaxconn", somaxconn)),
			),
		),
	}
	root := f.newDir(1, owner{}, 0o555, nil)
	root.list = func(ctx context.Context) []child {
		out := append([]child(nil), static...)
		for _, tg := range f.ns.ThreadGroups() {
			if tg.IsReaped() {
				continue
			}
			pid := tg.ID()
			if id := f.ns.IDOfThreadGroup(tg); id > 0 {
				out = append(out, child{strconv.Itoa(int(id)), f.processDir(owner{pid, pid})})
			}
		}
		return out
	}
	root.lookup = func(ctx context.Context, name string) (vfs.Inode, error) {
		if nsID, ok := parsePID(name); ok {
			// Names are PIDs in the namespace the proc was mounted from.
			id, ok := f.ns.RootID(nsID)
			if !ok {
				return nil, unix.ENOENT
			}
			if tg := f.k.GroupWithID(id); tg != nil {
				return f.processDir(owner{id, id}), nil
			}
			// A thread's TID works as a directory name too, unlisted.
			if t := f.k.TaskWithID(id); t != nil {
				return f.processDir(owner{t.ThreadGroup().ID(), id}), nil
			}
			return nil, unix.ENOENT
		}
		for _, c := range static {
			if c.name == name {
				return c.inode, nil
			}
		}
		return nil, unix.ENOENT
	}
	return root
}

// newUUID returns a random (version 4) UUID in its text form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// meminfo reports the sandbox's memory: its configured total and what the
// memory file holds committed.
func (f *filesystem) meminfo(context.Context) ([]byte, error) {
	total := f.k.TotalMemory()
	used := f.k.MemoryFile().CommittedBytes()
	if used > total {
		used = total
	}
	free := total - used
	var b bytes.Buffer
	kb := func(name string, v uint64) { fmt.Fprintf(&b, "%-16s%8d kB\n", name+":", v/1024) }
	kb("MemTotal", total)
	kb("MemFree", free)
	kb("MemAvailable", free)
	kb("Buffers", 0)
	kb("Cached", 0)
	kb("SwapCached", 0)
	kb("Active", used)
	kb("Inactive", 0)
	kb("Active(anon)", used)
	kb("Inactive(anon)", 0)
	kb("Active(file)", 0)
	kb("Inactive(file)", 0)
	kb("Unevictable", 0)
	kb("Mlocked", 0)
	kb("SwapTotal", 0)
	kb("SwapFree", 0)
	kb("Dirty", 0)
	kb("Writeback", 0)
	kb("AnonPages", used)
	kb("Mapped", 0)
	kb("Shmem", 0)
	kb("Slab", 0)
	kb("CommitLimit", total)
	kb("Committed_AS", used)
	kb("VmallocTotal", 34359738367*1024)
	kb("VmallocUsed", 0)
	kb("VmallocChunk", 0)
	kb("HugePages_Total", 0)
	kb("Hugepagesize", 2048*1024)
	return b.Bytes(), nil
}

// ticksPerSecond is USER_HZ, the unit of /proc's tick counts.
const ticksPerSecond = 100

// systemStat is /proc/stat. The Sentry does not account CPU time per
// CPU, so every CPU is shown idle since boot.
func (f *filesystem) systemStat(context.Context) ([]byte, error) {
	n := NumCPUs()
	idle := int64(f.k.MonotonicNow().Seconds() * ticksPerSecond)
	var b bytes.Buffer
	fmt.Fprintf(&b, "cpu  0 0 0 %d 0 0 0 0 0 0\n", idle*int64(n))
	for i := range n {
		fmt.Fprintf(&b, "cpu%d 0 0 0 %d 0 0 0 0 0 0\n", i, idle)
	}
	running, total := f.taskCounts()
	fmt.Fprintf(&b, "intr 0\nctxt 0\nbtime %d\nprocesses %d\nprocs_running %d\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
		f.k.BootTimeNanos()/1e9, total, running)
	return b.Bytes(), nil
}

// taskCounts returns the number of running tasks (the callers) and of all
// tasks.
func (f *filesystem) taskCounts() (running, total int) {
	total = f.k.TaskCount()
	return min(1, total), total
}

// uptime is /proc/uptime: seconds since boot and summed idle seconds.
func (f *filesystem) uptime(context.Context) ([]byte, error) {
	up := f.k.MonotonicNow().Seconds()
	return fmt.Appendf(nil, "%.2f %.2f\n", up, up*float64(NumCPUs())), nil
}

// loadavg is /proc/loadavg; the Sentry keeps no load average.
func (f *filesystem) loadavg(context.Context) ([]byte, error) {
	running, total := f.taskCounts()
	last := kernel.ThreadID(0)
	if gs := f.ns.ThreadGroups(); len(gs) > 0 {
		last = f.ns.IDOfThreadGroup(gs[len(gs)-1])
	}
	return fmt.Appendf(nil, "0.00 0.00 0.00 %d/%d %d\n", running, total, last), nil
}

// filesystems lists the registered types; those without a backing device
// are marked "nodev" as Linux does.
func (f *filesystem) filesystems(context.Context) ([]byte, error) {
	var b bytes.Buffer
	for _, name := range f.k.VFS().FilesystemTypes() {
		fmt.Fprintf(&b, "nodev\t%s\n", name)
	}
	return b.Bytes(), nil
}
