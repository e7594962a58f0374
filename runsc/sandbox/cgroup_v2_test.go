package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }

// fakeV2 makes a cgroup v2 tree in a temp dir with the given controllers
// available at its root and delegated below; files the kernel would make
// with a cgroup are made as Create makes the directory.
func fakeV2(t *testing.T, controllers string) (root string) {
	t.Helper()
	root = t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte(controllers+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// kernelFiles stands in for the kernel populating a new cgroup: its
// cgroup.controllers and the interface files with their defaults.
func kernelFiles(t *testing.T, dir, controllers string, files map[string]string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte(controllers+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, dir, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return string(data)
}

// TestApplyV2Files checks the exact values the v2 code writes for spec
// resources: memory.max, memory.low, memory.swap.max (OCI's swap is
// memory+swap), pids.max, cpu.weight (from shares, runc's linear map of
// 2..262144 onto 1..10000), cpu.max ("quota period"), cpuset.cpus/mems and
// io.weight (from blkio weight, 10..1000 onto 1..10000); then updates of
// one field keep the others.
func TestApplyV2Files(t *testing.T) {
	const all = "cpuset cpu io memory pids"
	root := fakeV2(t, all)
	c, err := newCgroupUnder(root, true, map[string]string{"": "/user.slice"}, "runsc/c1")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "user.slice/runsc/c1")
	if c.Dirs[""] != dir {
		t.Fatalf("Dirs %v, want %s under the caller's cgroup", c.Dirs, dir)
	}
	if err := os.MkdirAll(filepath.Join(root, "user.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	kernelFiles(t, filepath.Join(root, "user.slice"), all, nil)
	if err := c.Create(); err != nil {
		t.Fatal(err)
	}
	// The caller's cgroup was asked to delegate its controllers to the
	// new level (the fake keeps only the last write, one controller).
	if got := readFile(t, filepath.Join(root, "user.slice"), "cgroup.subtree_control"); !strings.HasPrefix(got, "+") || !strings.Contains(all, got[1:]) {
		t.Errorf("user.slice/cgroup.subtree_control %q", got)
	}
	kernelFiles(t, dir, all, map[string]string{"cpu.max": "max 100000\n", "memory.swap.max": "max\n"})
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(384 << 20), Reservation: i64(128 << 20)},
		Pids:    &specs.LinuxPids{Limit: i64(64)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(200000), Cpus: "0-1", Mems: "0"},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500)},
	}
	if err := c.Apply(r); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory.max":      "268435456",
		"memory.low":      "134217728",
		"memory.swap.max": "134217728",
		"pids.max":        "64",
		"cpu.weight":      "39",
		"cpu.max":         "50000 200000",
		"cpuset.cpus":     "0-1",
		"cpuset.mems":     "0",
		"io.weight":       "default 4950",
	} {
		if got := readFile(t, dir, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// runsc update of the quota alone keeps the period; -1 lifts limits.
	if err := c.Apply(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(20000)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "cpu.max"); got != "20000 200000" {
		t.Errorf("cpu.max after a quota update = %q", got)
	}
	if err := c.Apply(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}, Memory: &specs.LinuxMemory{Limit: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"cpu.max": "max 200000", "memory.max": "max", "pids.max": "max", "memory.low": "134217728"} {
		if got := readFile(t, dir, file); got != want {
			t.Errorf("after lifting limits, %s = %q, want %q", file, got, want)
		}
	}
	// Shares at the ends of their range.
	for shares, want := range map[uint64]string{2: "1", 262144: "10000"} {
		if err := c.Apply(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(shares)}}); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, dir, "cpu.weight"); got != want {
			t.Errorf("shares %d: cpu.weight %q, want %q", shares, got, want)
		}
	}
	// Swap without a memory limit has no v2 meaning.
	if err := c.Apply(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(1 << 30)}}); err == nil {
		t.Error("swap without a memory limit accepted")
	}
	// unified may not reach outside the cgroup's own files.
	for _, k := range []string{"../x", "cgroup.procs"} {
		if err := c.Apply(&specs.LinuxResources{Unified: map[string]string{k: "1"}}); err == nil {
			t.Errorf("unified %q accepted", k)
		}
	}
	if err := c.Apply(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1000000"}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "memory.high"); got != "1000000" {
		t.Errorf("unified memory.high = %q", got)
	}
}

// TestApplyV2MissingControllers: a limit whose controller the cgroup
// lacks (a hybrid host's are bound to v1) is a clear error naming it,
// and nothing is written.
func TestApplyV2MissingControllers(t *testing.T) {
	root := fakeV2(t, "cpu")
	c, err := newCgroupUnder(root, true, map[string]string{"": "/"}, "runsc/c2")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(); err != nil {
		t.Fatal(err)
	}
	dir := c.Dirs[""]
	kernelFiles(t, dir, "cpu", nil)
	err = c.Apply(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(1 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(5)},
		CPU:    &specs.LinuxCPU{Shares: u64(512)},
	})
	if !errors.Is(err, ErrNoController) || !strings.Contains(err.Error(), "memory, pids controller") {
		t.Fatalf("Apply without memory and pids controllers: %v", err)
	}
	for _, f := range []string{"memory.max", "pids.max", "cpu.weight"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written although Apply failed", f)
		}
	}
	// What the cgroup has is applied.
	if err := c.Apply(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "cpu.weight"); got != "20" {
		t.Errorf("cpu.weight %q, want 20", got)
	}
}

// TestStatsV2 parses usage and limits from v2 files.
func TestStatsV2(t *testing.T) {
	root := fakeV2(t, "cpu memory pids")
	dir := filepath.Join(root, "c")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kernelFiles(t, dir, "cpu memory pids", map[string]string{
		"memory.current": "12345678\n",
		"memory.max":     "268435456\n",
		"memory.stat":    "anon 1000\nfile 2000\nkernel_stack 16384\n",
		"pids.current":   "3\n",
		"pids.max":       "max\n",
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n",
	})
	c := &Cgroup{Dirs: map[string]string{"": dir}}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := CgroupStats{
		MemoryUsage: 12345678, MemoryLimit: 268435456,
		PidsCurrent: 3, PidsLimit: 0,
		CPUUsage: 1500000, CPUUser: 1000000, CPUSystem: 500000,
		CPUPeriods: 10, CPUThrottledPeriods: 2, CPUThrottledTime: 300000,
	}
	got := *s
	got.MemoryStat = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats = %+v\nwant %+v", got, want)
	}
	if s.MemoryStat["anon"] != 1000 || s.MemoryStat["file"] != 2000 || s.MemoryStat["kernel_stack"] != 16384 || len(s.MemoryStat) != 3 {
		t.Errorf("memory.stat %v", s.MemoryStat)
	}
	os.WriteFile(filepath.Join(dir, "pids.current"), []byte("three\n"), 0o644)
	if _, err := c.Stats(); err == nil || !strings.Contains(err.Error(), "pids.current") {
		t.Errorf("a malformed pids.current: %v", err)
	}
}

// TestStatsV1 parses the same from v1 hierarchies, "no limit" included.
func TestStatsV1(t *testing.T) {
	root := t.TempDir()
	dirs := map[string]string{}
	for _, ctrl := range []string{"memory", "pids", "cpu", "cpuacct"} {
		dirs[ctrl] = filepath.Join(root, ctrl, "runsc/x")
		if err := os.MkdirAll(dirs[ctrl], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for file, v := range map[string]string{
		"memory/memory.usage_in_bytes": "4096\n",
		"memory/memory.limit_in_bytes": "9223372036854771712\n",
		"memory/memory.stat":           "cache 10\nrss 20\n",
		"pids/pids.current":            "7\n",
		"pids/pids.max":                "100\n",
		"cpuacct/cpuacct.usage":        "123456789\n",
		"cpuacct/cpuacct.stat":         "user 3\nsystem 4\n",
		"cpu/cpu.stat":                 "nr_periods 5\nnr_throttled 1\nthrottled_time 999\n",
	} {
		ctrl, f, _ := strings.Cut(file, "/")
		if err := os.WriteFile(filepath.Join(dirs[ctrl], f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := (&Cgroup{Dirs: dirs}).Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := CgroupStats{
		MemoryUsage: 4096, MemoryLimit: 0, PidsCurrent: 7, PidsLimit: 100,
		CPUUsage: 123456789, CPUUser: 30_000_000, CPUSystem: 40_000_000,
		CPUPeriods: 5, CPUThrottledPeriods: 1, CPUThrottledTime: 999,
	}
	got := *s
	got.MemoryStat = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats = %+v\nwant %+v", got, want)
	}
	if s.MemoryStat["rss"] != 20 || s.MemoryStat["cache"] != 10 {
		t.Errorf("memory.stat %v", s.MemoryStat)
	}
}

func FuzzParseFlatKeyed(f *testing.F) {
	for _, s := range []string{"", "a 1\nb 2\n", "usage_usec 18446744073709551615", "x", "k -1", "k 1 2", " \n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseFlatKeyed(data)
		if err != nil {
			return
		}
		// Whatever parsed is written back the same way.
		var b strings.Builder
		for k, v := range m {
			fmt.Fprintf(&b, "%s %d\n", k, v)
		}
		again, err := parseFlatKeyed([]byte(b.String()))
		if err != nil || len(again) != len(m) {
			t.Fatalf("%q parsed to %v, which reparses to %v, %v", data, m, again, err)
		}
	})
}

// TestCgroupVersionChoice: v2 exactly when /sys/fs/cgroup is a cgroup2
// mount; a hybrid host's unified/ does not count.
func TestCgroupVersionChoice(t *testing.T) {
	if isCgroup2Mount(t.TempDir()) {
		t.Error("a plain directory counted as cgroup2")
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Skipf("no /sys/fs/cgroup: %v", err)
	}
	if got, want := CgroupV2(), st.Type == unix.CGROUP2_SUPER_MAGIC; got != want {
		t.Errorf("CgroupV2() = %v; /sys/fs/cgroup magic %#x", got, st.Type)
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && !isCgroup2Mount("/sys/fs/cgroup/unified") {
		t.Error("the hybrid host's unified/ is not recognised as cgroup2")
	}
}

// TestCgroupV2RealHierarchy runs the v2 code against the kernel: a cgroup2
// filesystem mounted in a private mount namespace (a thread of its own,
// which ends with the test, taking the namespace and mount along). It
// creates a container cgroup, moves a process and then runsc itself in
// (cgroup.procs, checked in /proc/PID/cgroup), freezes and thaws it, and
// deletes it. On a host whose controllers are bound to v1, limits fail
// with the error Apply promises.
func TestCgroupV2RealHierarchy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting cgroup2 needs root")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread, and its mount namespace, end with
		// this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			t.Errorf("unshare(CLONE_NEWNS): %v", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			t.Errorf("making mounts private: %v", err)
			return
		}
		mnt, err := os.MkdirTemp("", "cgroup2-")
		if err != nil {
			t.Error(err)
			return
		}
		defer os.Remove(mnt)
		if err := unix.Mount("cgroup2", mnt, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			t.Logf("SKIP: cannot mount cgroup2: %v", err)
			return
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		realV2(t, mnt)
	}()
	<-done
}

func realV2(t *testing.T, mnt string) {
	own, err := selfCgroups()
	if err != nil {
		t.Error(err)
		return
	}
	parent := fmt.Sprintf("runsc-v2test-%d", os.Getpid())
	c, err := newCgroupUnder(mnt, true, own, parent+"/c1")
	if err != nil {
		t.Error(err)
		return
	}
	defer os.Remove(filepath.Join(mnt, own[""], parent))
	if err := c.Create(); err != nil {
		t.Errorf("Create: %v", err)
		return
	}
	removed := false
	defer func() {
		if !removed {
			c.Remove()
		}
	}()
	if _, err := os.Stat(filepath.Join(c.Dirs[""], "cgroup.procs")); err != nil {
		t.Errorf("the new cgroup is not a cgroup: %v", err)
		return
	}
	rel := filepath.Join("/", own[""], parent, "c1")
	member := func(pid int) bool {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			t.Error(err)
			return false
		}
		return strings.Contains(string(data), "0::"+rel+"\n")
	}
	child := exec.Command("/bin/sleep", "30")
	if err := child.Start(); err != nil {
		t.Error(err)
		return
	}
	defer func() {
		child.Process.Kill()
		child.Wait()
	}()
	if err := c.Join(child.Process.Pid); err != nil {
		t.Errorf("Join: %v", err)
		return
	}
	if !member(child.Process.Pid) {
		t.Errorf("process %d is not in %s after Join", child.Process.Pid, rel)
	}
	if procs, err := c.Procs(); err != nil || len(procs) != 1 || procs[0] != child.Process.Pid {
		t.Errorf("Procs = %v, %v; want [%d]", procs, err, child.Process.Pid)
	}
	// runsc enters the cgroup to start the sandbox there, and leaves.
	leave, err := c.EnterSelf()
	if err != nil {
		t.Errorf("EnterSelf: %v", err)
		return
	}
	inside := member(os.Getpid())
	if err := leave(); err != nil {
		t.Errorf("leaving: %v", err)
	}
	if !inside || member(os.Getpid()) {
		t.Errorf("EnterSelf: inside %v, still inside after leaving %v", inside, member(os.Getpid()))
	}
	if err := c.Freeze(); err != nil {
		t.Errorf("Freeze: %v", err)
	}
	if err := c.Thaw(); err != nil {
		t.Errorf("Thaw: %v", err)
	}
	if _, err := c.Stats(); err != nil {
		t.Errorf("Stats: %v", err)
	}
	have, _ := os.ReadFile(filepath.Join(c.Dirs[""], "cgroup.controllers"))
	err = c.Apply(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}, Pids: &specs.LinuxPids{Limit: i64(32)}})
	if !strings.Contains(string(have), "memory") || !strings.Contains(string(have), "pids") {
		if !errors.Is(err, ErrNoController) {
			t.Errorf("limits without their controllers (%q): %v, want ErrNoController", have, err)
		}
	} else if err != nil {
		t.Errorf("Apply with the controllers present: %v", err)
	} else if got, _ := os.ReadFile(filepath.Join(c.Dirs[""], "memory.max")); strings.TrimSpace(string(got)) != "67108864" {
		t.Errorf("memory.max = %q", got)
	}
	child.Process.Kill()
	child.Wait()
	if err := c.Remove(); err != nil {
		t.Errorf("Remove: %v", err)
	}
	removed = true
	if _, err := os.Stat(c.Dirs[""]); !os.IsNotExist(err) {
		t.Errorf("the cgroup is still there after Remove: %v", err)
	}
}
