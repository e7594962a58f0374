package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/proc"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// program is a host executable the test kernel loads (never runs).
const program = "/usr/bin/true"

type env struct {
	t    testing.TB
	k    *kernel.Kernel
	task *kernel.Task
	root vfs.VirtualDentry
}

// newEnv builds a platform-less kernel whose init process (loaded, not
// started) has /proc mounted, and returns it with that task as the
// caller of every operation.
func newEnv(t testing.TB) *env {
	t.Helper()
	if _, err := os.Stat(program); err != nil {
		t.Skipf("%s is needed as the test program: %v", program, err)
	}
	mf, err := pgalloc.New("proc-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	k, err := kernel.New(kernel.Config{MemoryFile: mf, Hostname: "sandbox", TotalMemory: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root, err := kerneltest.NewRoot(ctx, k.VFS(), mf, program)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.DecRef(ctx) })
	if err := proc.Register(k.VFS(), k); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	if err := k.VFS().MkdirAt(ctx, creds, &vfs.PathOperation{Root: root, Start: root, Path: "/proc"}, &vfs.MkdirOptions{Mode: 0o555}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.VFS().MountAt(ctx, creds, "proc", &vfs.PathOperation{Root: root, Start: root, Path: "/proc"}, proc.Name, &vfs.MountOptions{}); err != nil {
		t.Fatal(err)
	}
	tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{
		Filename: program, Argv: []string{"true", "--arg"}, Envv: []string{"A=1", "B=two"},
		Root: root, Umask: 0o022,
	})
	if err != nil {
		t.Fatal(err)
	}
	task := tg.Leader()
	t.Cleanup(func() {
		task.MemoryManager().DecUsers(ctx)
		task.FDTable().DecRef(ctx)
		task.FSContext().DecRef(ctx)
	})
	return &env{t: t, k: k, task: task, root: root}
}

func (e *env) pop(p string) *vfs.PathOperation {
	return &vfs.PathOperation{Root: e.root, Start: e.root, Path: p, FollowFinalSymlink: true}
}

func (e *env) open(p string, flags uint32) (*vfs.FileDescription, error) {
	return e.k.VFS().OpenAt(e.task, e.task.Credentials(), e.pop(p), &vfs.OpenOptions{Flags: flags})
}

// readAll reads p chunk bytes at a time.
func (e *env) readChunks(p string, chunk int) (string, error) {
	f, err := e.open(p, unix.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.DecRef(e.task)
	var out []byte
	for {
		b := make([]byte, chunk)
		dst, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(chunk), usermem.IOOpts{})
		n, err := f.Read(e.task, dst, vfs.ReadOptions{})
		if err != nil {
			return "", err
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, b[:n]...)
	}
}

func (e *env) read(p string) string {
	e.t.Helper()
	s, err := e.readChunks(p, 65536)
	if err != nil {
		e.t.Fatalf("reading %s: %v", p, err)
	}
	return s
}

func (e *env) write(p, data string) error {
	f, err := e.open(p, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer f.DecRef(e.task)
	src, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: []byte(data)}, 0, int64(len(data)), usermem.IOOpts{})
	_, err = f.Write(e.task, src, vfs.WriteOptions{})
	return err
}

func (e *env) readlink(p string) (string, error) {
	return e.k.VFS().ReadlinkAt(e.task, e.task.Credentials(), e.pop(p))
}

func (e *env) list(p string) []string {
	e.t.Helper()
	f, err := e.open(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		e.t.Fatalf("opening %s: %v", p, err)
	}
	defer f.DecRef(e.task)
	var names []string
	if err := f.IterDirents(e.task, func(d vfs.Dirent) bool {
		names = append(names, d.Name)
		return true
	}); err != nil {
		e.t.Fatalf("listing %s: %v", p, err)
	}
	return names
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func TestSelfLinks(t *testing.T) {
	e := newEnv(t)
	pid := strconv.Itoa(int(e.task.ThreadGroup().ID()))
	if got, err := e.readlink("/proc/self"); err != nil || got != pid {
		t.Errorf("readlink /proc/self = %q, %v; want %q", got, err, pid)
	}
	want := fmt.Sprintf("%s/task/%d", pid, e.task.ThreadID())
	if got, err := e.readlink("/proc/thread-self"); err != nil || got != want {
		t.Errorf("readlink /proc/thread-self = %q, %v; want %q", got, err, want)
	}
	// Outside a task there is no "self".
	_, err := e.k.VFS().ReadlinkAt(context.Background(), auth.NewRoot(), e.pop("/proc/self"))
	wantErrno(t, "self outside a task", err, unix.ENOENT)
	if s := e.read("/proc/thread-self/status"); !strings.Contains(s, "Pid:\t"+pid+"\n") {
		t.Errorf("thread-self/status lacks the pid:\n%s", s)
	}
}

func TestStatusAndStat(t *testing.T) {
	e := newEnv(t)
	pid := e.task.ThreadGroup().ID()
	s := e.read("/proc/self/status")
	for _, want := range []string{
		"Name:\ttrue\n", "State:\tR (running)\n", fmt.Sprintf("Tgid:\t%d\n", pid), fmt.Sprintf("Pid:\t%d\n", pid),
		"PPid:\t0\n", "Uid:\t0\t0\t0\t0\n", "Gid:\t0\t0\t0\t0\n", "Threads:\t1\n", "SigBlk:\t0000000000000000\n",
		"CapEff:\t", "NoNewPrivs:\t0\n", "Seccomp:\t0\n", "VmRSS:\t", "Umask:\t0022\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("status lacks %q:\n%s", want, s)
		}
	}
	st := e.read("/proc/self/stat")
	rp := strings.LastIndexByte(st, ')')
	if !strings.HasPrefix(st, fmt.Sprintf("%d (true) R ", pid)) || rp < 0 {
		t.Fatalf("stat = %q", st)
	}
	// 52 fields, as proc(5) lists them.
	if n := 2 + len(strings.Fields(st[rp+1:])); n != 52 {
		t.Errorf("stat has %d fields, want 52: %q", n, st)
	}
	statm := strings.Fields(e.read("/proc/self/statm"))
	if len(statm) != 7 || statm[0] == "0" {
		t.Errorf("statm = %q", statm)
	}
	// Seen from outside the task, the process is not the one running.
	f, err := e.k.VFS().OpenAt(context.Background(), auth.NewRoot(), e.pop(fmt.Sprintf("/proc/%d/status", pid)), &vfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(e.task)
	b := make([]byte, 4096)
	dst, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, 4096, usermem.IOOpts{})
	n, _ := f.Read(context.Background(), dst, vfs.ReadOptions{})
	if !strings.Contains(string(b[:n]), "State:\tS (sleeping)\n") {
		t.Errorf("status from outside:\n%s", b[:n])
	}
}

func TestCmdlineEnvironAuxv(t *testing.T) {
	e := newEnv(t)
	if got := e.read("/proc/self/cmdline"); got != "true\x00--arg\x00" {
		t.Errorf("cmdline = %q", got)
	}
	if got := e.read("/proc/self/environ"); got != "A=1\x00B=two\x00" {
		t.Errorf("environ = %q", got)
	}
	auxv := e.read("/proc/self/auxv")
	if len(auxv) < 32 || len(auxv)%16 != 0 || strings.Trim(auxv[len(auxv)-16:], "\x00") != "" {
		t.Errorf("auxv is %d bytes, not AT_NULL-terminated pairs", len(auxv))
	}
}

func TestExeCwdRootLinks(t *testing.T) {
	e := newEnv(t)
	if got, err := e.readlink("/proc/self/exe"); err != nil || got != program {
		t.Errorf("readlink exe = %q, %v", got, err)
	}
	a, err := e.k.VFS().StatAt(e.task, e.task.Credentials(), e.pop("/proc/self/exe"), &vfs.StatOptions{Mask: unix.STATX_INO})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.k.VFS().StatAt(e.task, e.task.Credentials(), e.pop(program), &vfs.StatOptions{Mask: unix.STATX_INO})
	if err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Dev_minor != b.Dev_minor {
		t.Errorf("exe resolves to ino %d dev %d, program is %d dev %d", a.Ino, a.Dev_minor, b.Ino, b.Dev_minor)
	}
	for _, l := range []string{"cwd", "root"} {
		if got, err := e.readlink("/proc/self/" + l); err != nil || got != "/" {
			t.Errorf("readlink %s = %q, %v", l, got, err)
		}
	}
	// Walking through the cwd magic link reaches the real directory.
	if got := e.read("/proc/self/cwd/proc/self/comm"); got != "true\n" {
		t.Errorf("comm through cwd = %q", got)
	}
}

// A program re-executed through /proc/self/exe (busybox does this) keeps
// the file itself as its executable: the link must not be looked up by
// the name it was run as, which would name the link itself.
func TestExecThroughProcSelfExe(t *testing.T) {
	e := newEnv(t)
	if err := e.task.Exec(e.task, "/proc/self/exe", []string{"again"}, nil); err != nil {
		t.Fatalf("exec /proc/self/exe: %v", err)
	}
	if got, err := e.readlink("/proc/self/exe"); err != nil || got != program {
		t.Errorf("after re-exec, readlink exe = %q, %v; want %q", got, err, program)
	}
	// The link follows the file, not its old name.
	ctx := e.task
	creds := e.task.Credentials()
	if err := e.k.VFS().RenameAt(ctx, creds, e.pop(program), e.pop("/moved"), &vfs.RenameOptions{}); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if got, err := e.readlink("/proc/self/exe"); err != nil || got != "/moved" {
		t.Errorf("after rename, readlink exe = %q, %v; want /moved", got, err)
	}
}

func TestFdLinksAndFdinfo(t *testing.T) {
	e := newEnv(t)
	f, err := e.open(program, unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := e.task.FDTable().NewFD(3, 1024, f, kernel.FDFlags{CloseOnExec: true})
	f.DecRef(e.task)
	if err != nil {
		t.Fatal(err)
	}
	link := fmt.Sprintf("/proc/self/fd/%d", fd)
	if got, err := e.readlink(link); err != nil || got != program {
		t.Errorf("readlink %s = %q, %v", link, got, err)
	}
	if names := e.list("/proc/self/fd"); !slices.Equal(names, []string{".", "..", strconv.Itoa(int(fd))}) {
		t.Errorf("fd listing = %q", names)
	}
	// Opening the link reopens the file: its own offset, same data.
	want, _ := os.ReadFile(program)
	if got := e.read(link); got != string(want) {
		t.Errorf("reading through %s: %d bytes, want %d", link, len(got), len(want))
	}
	if _, err := f.Seek(e.task, 4, unix.SEEK_SET); err != nil {
		t.Fatal(err)
	}
	info := e.read(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if !strings.Contains(info, "pos:\t4\n") || !strings.Contains(info, fmt.Sprintf("flags:\t0%o\n", unix.O_CLOEXEC|unix.O_LARGEFILE)) {
		t.Errorf("fdinfo = %q", info)
	}
	if err := e.task.FDTable().Remove(e.task, fd); err != nil {
		t.Fatal(err)
	}
	_, err = e.readlink(link)
	wantErrno(t, "readlink of a closed fd", err, unix.ENOENT)
	_, err = e.open(link, unix.O_RDONLY)
	wantErrno(t, "open of a closed fd", err, unix.ENOENT)
	_, err = e.open("/proc/self/fd/notanumber", unix.O_RDONLY)
	wantErrno(t, "open of a bad fd name", err, unix.ENOENT)
}

func TestFdLinkNamesForPipes(t *testing.T) {
	e := newEnv(t)
	r, w, err := e.k.PipeFS().NewPipe(e.task, e.task.Credentials(), 0)
	if err != nil {
		t.Skipf("no anonymous pipes: %v", err)
	}
	defer r.DecRef(e.task)
	defer w.DecRef(e.task)
	fd, err := e.task.FDTable().NewFD(0, 1024, r, kernel.FDFlags{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !strings.HasPrefix(got, "pipe:[") || !strings.HasSuffix(got, "]") {
		t.Errorf("pipe link = %q, %v", got, err)
	}
}

func TestProcessListing(t *testing.T) {
	e := newEnv(t)
	pid := strconv.Itoa(int(e.task.ThreadGroup().ID()))
	names := e.list("/proc")
	for _, want := range []string{".", "..", "self", "thread-self", "cpuinfo", "meminfo", "sys", pid} {
		if !slices.Contains(names, want) {
			t.Errorf("/proc lacks %q: %q", want, names)
		}
	}
	tasks := e.list("/proc/" + pid + "/task")
	if !slices.Equal(tasks, []string{".", "..", strconv.Itoa(int(e.task.ThreadID()))}) {
		t.Errorf("task listing = %q", tasks)
	}
	_, err := e.open("/proc/4000000", unix.O_RDONLY)
	wantErrno(t, "nonexistent pid", err, unix.ENOENT)
	_, err = e.open("/proc/0"+pid, unix.O_RDONLY)
	wantErrno(t, "non-canonical pid", err, unix.ENOENT)
	// Every per-process file can be read.
	for _, n := range e.list("/proc/self") {
		switch n {
		case ".", "..", "fd", "fdinfo", "net", "ns", "task", "cwd", "root", "exe":
			continue
		}
		if _, err := e.readChunks("/proc/self/"+n, 4096); err != nil {
			t.Errorf("reading /proc/self/%s: %v", n, err)
		}
	}
}

func TestMaps(t *testing.T) {
	e := newEnv(t)
	maps := e.read("/proc/self/maps")
	if !strings.Contains(maps, "[stack]\n") {
		t.Errorf("maps has no stack:\n%s", maps)
	}
	// The loader's segments are named by the program's path.
	if !strings.Contains(maps, "r-xp") || !strings.Contains(maps, " "+program+"\n") {
		t.Errorf("maps has no executable mapping of %s:\n%s", program, maps)
	}
	for _, l := range strings.Split(strings.TrimSuffix(maps, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || len(f[1]) != 4 || !strings.Contains(f[0], "-") {
			t.Errorf("bad maps line %q", l)
		}
	}
	smaps := e.read("/proc/self/smaps")
	if strings.Count(smaps, "\nSize:") != strings.Count(maps, "\n") || !strings.Contains(smaps, "Rss:") {
		t.Errorf("smaps does not describe every mapping:\n%s", smaps)
	}
}

func TestSystemFiles(t *testing.T) {
	e := newEnv(t)
	cpu := e.read("/proc/cpuinfo")
	if n := strings.Count(cpu, "processor\t:"); n != proc.NumCPUs() {
		t.Errorf("cpuinfo lists %d processors, want %d", n, proc.NumCPUs())
	}
	if !strings.Contains(cpu, "flags\t\t: fpu") {
		t.Errorf("cpuinfo flags missing:\n%s", cpu)
	}
	mem := e.read("/proc/meminfo")
	if !strings.Contains(mem, fmt.Sprintf("MemTotal:       %8d kB\n", (1<<30)/1024)) || !strings.Contains(mem, "MemFree:") {
		t.Errorf("meminfo:\n%s", mem)
	}
	var up, idle float64
	if _, err := fmt.Sscanf(e.read("/proc/uptime"), "%f %f", &up, &idle); err != nil || up < 0 {
		t.Errorf("uptime: %v", err)
	}
	if la := e.read("/proc/loadavg"); strings.Count(la, " ") != 4 {
		t.Errorf("loadavg = %q", la)
	}
	st := e.read("/proc/stat")
	if !strings.HasPrefix(st, "cpu  ") || !strings.Contains(st, "btime ") {
		t.Errorf("stat:\n%s", st)
	}
	for p, want := range map[string]string{
		"/proc/sys/kernel/ostype":           "Linux\n",
		"/proc/sys/kernel/hostname":         "sandbox\n",
		"/proc/sys/kernel/pid_max":          "4194304\n",
		"/proc/sys/kernel/cap_last_cap":     "40\n",
		"/proc/sys/vm/overcommit_memory":    "0\n",
		"/proc/sys/fs/nr_open":              "1048576\n",
		"/proc/sys/net/core/somaxconn":      "4096\n",
		"/proc/self/uid_map":                "         0          0 4294967295\n",
		"/proc/self/oom_score_adj":          "0\n",
		"/proc/self/cgroup":                 "0::/\n",
		"/proc/sys/kernel/random/boot_id":   e.read("/proc/sys/kernel/random/boot_id"),
		"/proc/self/ns/../ns/../comm":       "true\n",
		"/proc/self/task/../fdinfo/../comm": "true\n",
	} {
		if got := e.read(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if a, b := e.read("/proc/sys/kernel/random/uuid"), e.read("/proc/sys/kernel/random/uuid"); a == b || len(a) != 37 {
		t.Errorf("uuid reads %q then %q", a, b)
	}
	if ns, err := e.readlink("/proc/self/ns/net"); err != nil || !strings.HasPrefix(ns, "net:[") {
		t.Errorf("ns/net = %q, %v", ns, err)
	}
}

func TestMountsAndMountinfo(t *testing.T) {
	e := newEnv(t)
	m := e.read("/proc/self/mounts")
	if !strings.Contains(m, " / tmpfs rw") || !strings.Contains(m, "proc /proc proc rw") {
		t.Errorf("mounts:\n%s", m)
	}
	if link, err := e.readlink("/proc/mounts"); err != nil || link != "self/mounts" {
		t.Errorf("/proc/mounts -> %q, %v", link, err)
	}
	mi := e.read("/proc/self/mountinfo")
	lines := strings.Split(strings.TrimSuffix(mi, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("mountinfo:\n%s", mi)
	}
	root, procLine := strings.Fields(lines[0]), strings.Fields(lines[1])
	if root[4] != "/" || procLine[4] != "/proc" || procLine[1] != root[0] || procLine[len(procLine)-3] != "proc" {
		t.Errorf("mountinfo:\n%s", mi)
	}
}

func TestWritableFiles(t *testing.T) {
	e := newEnv(t)
	if err := e.write("/proc/self/comm", "renamed\x00ignored"); err != nil {
		t.Fatal(err)
	}
	if got := e.read("/proc/self/comm"); got != "renamed\n" || e.task.Name() != "renamed" {
		t.Errorf("comm = %q, task name %q", got, e.task.Name())
	}
	if err := e.write("/proc/self/oom_score_adj", "500"); err != nil {
		t.Fatal(err)
	}
	if got := e.read("/proc/self/oom_score_adj"); got != "500\n" {
		t.Errorf("oom_score_adj = %q", got)
	}
	wantErrno(t, "oom_score_adj out of range", e.write("/proc/self/oom_score_adj", "1001"), unix.EINVAL)
	wantErrno(t, "oom_score_adj not a number", e.write("/proc/self/oom_score_adj", "x"), unix.EINVAL)
	wantErrno(t, "writing status", e.write("/proc/self/status", "x"), unix.EINVAL)
	// An ordinary user may not open a 0444 file for writing.
	user := auth.NewUser(1000, 1000, nil)
	_, err := e.k.VFS().OpenAt(e.task, user, e.pop("/proc/self/status"), &vfs.OpenOptions{Flags: unix.O_WRONLY})
	wantErrno(t, "0444 file opened for writing", err, unix.EACCES)
}

// TestSnapshotReads checks that small reads see one consistent snapshot:
// the file read a byte at a time equals the file read at once, even
// though the process changes in between.
func TestSnapshotReads(t *testing.T) {
	e := newEnv(t)
	f, err := e.open("/proc/self/status", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.DecRef(e.task)
	var got []byte
	for i := 0; ; i++ {
		if i == 5 {
			e.task.SetName("changed")
		}
		b := make([]byte, 1)
		dst, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, 1, usermem.IOOpts{})
		n, err := f.Read(e.task, dst, vfs.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, b[0])
	}
	if !strings.HasPrefix(string(got), "Name:\ttrue\n") {
		t.Errorf("byte-wise read saw a change mid-read: %q", got[:20])
	}
	if _, err := f.Seek(e.task, 0, unix.SEEK_SET); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkReadStatus(b *testing.B) {
	e := newEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.readChunks("/proc/self/status", 4096); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzWritableFiles writes arbitrary bytes to the files that parse what
// they are given: a write either fails with EINVAL or stores the value it
// was given, which reads back within its bounds.
func FuzzWritableFiles(f *testing.F) {
	for _, s := range []string{"0", "-1000", "1000\n", "1001", "+5", " 7 ", "", "\x00", "99999999999999999999", "renamed-to-a-very-long-name"} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, s string) {
		err := e.write("/proc/self/oom_score_adj", s)
		if err != nil && !errors.Is(err, unix.EINVAL) {
			t.Fatalf("writing %q: %v", s, err)
		}
		got, rerr := e.readChunks("/proc/self/oom_score_adj", 64)
		v, perr := strconv.Atoi(strings.TrimSuffix(got, "\n"))
		if rerr != nil || perr != nil || v < -1000 || v > 1000 {
			t.Fatalf("oom_score_adj reads %q (%v) after writing %q", got, rerr, s)
		}
		if want, _ := strconv.Atoi(strings.TrimSpace(s)); err == nil && want != v {
			t.Fatalf("wrote %q, reads %q", s, got)
		}
		if err := e.write("/proc/self/comm", s); err != nil {
			t.Fatalf("writing comm %q: %v", s, err)
		}
		if c, err := e.readChunks("/proc/self/comm", 64); err != nil || len(c) > 16 || !strings.HasSuffix(c, "\n") {
			t.Fatalf("comm reads %q (%v) after writing %q", c, err, s)
		}
	})
}

func BenchmarkReadlinkFd(b *testing.B) {
	e := newEnv(b)
	f, err := e.open(program, unix.O_RDONLY)
	if err != nil {
		b.Fatal(err)
	}
	fd, err := e.task.FDTable().NewFD(3, 1024, f, kernel.FDFlags{})
	f.DecRef(e.task)
	if err != nil {
		b.Fatal(err)
	}
	link := fmt.Sprintf("/proc/self/fd/%d", fd)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.readlink(link); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadCPUInfo(b *testing.B) {
	e := newEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.readChunks("/proc/cpuinfo", 65536); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMountsFromChroot checks that a chrooted reader sees only the mounts
// inside its root, and its root as "/".
func TestMountsFromChroot(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		root   string
		fstype string
	}{{"/usr", "tmpfs"}, {"/proc", "proc"}} {
		vd, err := e.k.VFS().GetDentryAt(e.task, e.task.Credentials(), e.pop(c.root), nil)
		if err != nil {
			t.Fatal(err)
		}
		ms := e.k.VFS().MountsFrom(e.task, vd)
		vd.DecRef(e.task)
		if len(ms) != 1 || ms[0].MountPoint != "/" || ms[0].FSType != c.fstype {
			t.Errorf("mounts seen from %s: %+v", c.root, ms)
		}
	}
}

// TestMountinfoBindRootAndFlags checks mountinfo's root field (the bind
// mount's source directory) and the per-mount flags in mountinfo and
// mounts.
func TestMountinfoBindRootAndFlags(t *testing.T) {
	e := newEnv(t)
	v, creds := e.k.VFS(), auth.NewRoot()
	for _, d := range []string{"/src", "/src/sub dir", "/dst"} {
		if err := v.MkdirAt(e.task, creds, e.pop(d), &vfs.MkdirOptions{Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := v.BindAt(e.task, creds, e.pop("/src/sub dir"), e.pop("/dst"), true)
	if err != nil {
		t.Fatal(err)
	}
	m.SetFlags(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	var line []string
	for _, l := range strings.Split(e.read("/proc/self/mountinfo"), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == "/dst" {
			line = f
		}
	}
	if line == nil {
		t.Fatalf("no /dst in mountinfo:\n%s", e.read("/proc/self/mountinfo"))
	}
	if line[3] != `/src/sub\040dir` || line[5] != "ro,nosuid,nodev,noexec,relatime" {
		t.Errorf("mountinfo line %q: want root /src/sub\\040dir and ro,nosuid,nodev,noexec,relatime", line)
	}
	if !strings.Contains(e.read("/proc/self/mounts"), " /dst tmpfs ro,nosuid,nodev,noexec,relatime 0 0\n") {
		t.Errorf("mounts:\n%s", e.read("/proc/self/mounts"))
	}
	// The whole-filesystem mounts keep "/" as their root.
	for _, l := range strings.Split(strings.TrimSuffix(e.read("/proc/self/mountinfo"), "\n"), "\n") {
		if f := strings.Fields(l); f[4] != "/dst" && f[3] != "/" {
			t.Errorf("mount %s has root %s, want /", f[4], f[3])
		}
	}
}
