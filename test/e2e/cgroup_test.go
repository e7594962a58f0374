package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostCgroups is the host's cgroup layout as the tests see it.
type hostCgroups struct {
	v2  bool
	own map[string]string // this process's cgroup per v1 controller, "" for v2
}

func newHostCgroups(t *testing.T) hostCgroups {
	t.Helper()
	h := hostCgroups{own: map[string]string{}}
	// As runsc decides: v2 when /sys/fs/cgroup is itself cgroup2.
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
		h.v2 = true
	} else if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		t.Skip("the host has neither cgroup v2 nor a v1 memory hierarchy")
	}
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			h.own[c] = parts[2]
		}
	}
	return h
}

// dir is the directory of relative cgroup path rel (under this process's
// cgroup, as runsc puts relative paths) for a v1 controller.
func (h hostCgroups) dir(ctrl, rel string) string {
	if h.v2 {
		return filepath.Join("/sys/fs/cgroup", h.own[""], rel)
	}
	return filepath.Join("/sys/fs/cgroup", ctrl, h.own[ctrl], rel)
}

func (h hostCgroups) read(t *testing.T, ctrl, rel, v1file, v2file string) string {
	t.Helper()
	file := v1file
	if h.v2 {
		file = v2file
	}
	data, err := os.ReadFile(filepath.Join(h.dir(ctrl, rel), file))
	if err != nil {
		t.Errorf("reading %s: %v", file, err)
	}
	return strings.TrimSpace(string(data))
}

// removeParent removes the test's parent cgroup directories at the end.
func (h hostCgroups) removeParent(t *testing.T, rel string) {
	t.Cleanup(func() {
		for _, ctrl := range []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer"} {
			os.Remove(h.dir(ctrl, rel))
		}
	})
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func TestCgroupResources(t *testing.T) {
	e := newEnv(t)
	h := newHostCgroups(t)
	parent := "e2e-runsc-" + strconv.Itoa(os.Getpid())
	rel := parent + "/limited"
	h.removeParent(t, parent)
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = rel
		s.Linux.Resources = &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: i64(512 << 20), Reservation: i64(256 << 20)},
			Pids:   &specs.LinuxPids{Limit: i64(300)},
			CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
		}
	})
	e.must("create", "--bundle", bundle, "limited")
	st := e.state("limited")

	type check struct{ ctrl, v1file, v2file, v1want, v2want string }
	checks := []check{
		{"memory", "memory.limit_in_bytes", "memory.max", "536870912", "536870912"},
		{"memory", "memory.soft_limit_in_bytes", "memory.low", "268435456", "268435456"},
		{"pids", "pids.max", "pids.max", "300", "300"},
		{"cpu", "cpu.shares", "cpu.weight", "512", "20"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "50000", "50000 100000"},
		{"cpuset", "cpuset.cpus", "cpuset.cpus", "0", "0"},
	}
	verify := func(checks []check) {
		t.Helper()
		for _, c := range checks {
			want := c.v1want
			if h.v2 {
				want = c.v2want
			}
			if got := h.read(t, c.ctrl, rel, c.v1file, c.v2file); got != want {
				t.Errorf("%s/%s = %q, want %q", c.ctrl, c.v1file, got, want)
			}
		}
	}
	verify(checks)

	// The Sentry, its stubs and the Gofer are all inside; runsc is not.
	procs := strings.Fields(h.read(t, "memory", rel, "cgroup.procs", "cgroup.procs"))
	if !slices.Contains(procs, strconv.Itoa(st.Pid)) {
		t.Errorf("the Sentry (%d) is not in the cgroup: %v", st.Pid, procs)
	}
	if len(procs) < 3 {
		t.Errorf("cgroup.procs %v: want the Sentry, the Gofer and a stub", procs)
	}
	for _, p := range procs {
		cmdline, _ := os.ReadFile("/proc/" + p + "/cmdline")
		pid, _ := strconv.Atoi(p)
		// The Sentry, the Gofer, or a platform stub (descended from the
		// Sentry, with no command line of its own).
		if !strings.HasPrefix(string(cmdline), "runsc-gofer\x00") && !descendsFrom(pid, st.Pid) {
			t.Errorf("process %s (%q) in the sandbox's cgroup", p, cmdline)
		}
	}

	e.must("start", "limited")
	e.must("update", "--memory", "256m", "--memory-reservation", "128M", "--pids-limit", "100",
		"--cpu-quota", "20000", "--cpu-share", "256", "limited")
	verify([]check{
		{"memory", "memory.limit_in_bytes", "memory.max", "268435456", "268435456"},
		{"memory", "memory.soft_limit_in_bytes", "memory.low", "134217728", "134217728"},
		{"pids", "pids.max", "pids.max", "100", "100"},
		{"cpu", "cpu.shares", "cpu.weight", "256", "10"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "20000", "20000 100000"},
		// Limits not named are kept.
		{"cpuset", "cpuset.cpus", "cpuset.cpus", "0", "0"},
	})

	resources := filepath.Join(t.TempDir(), "resources.json")
	data, _ := json.Marshal(specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}, Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}})
	if err := os.WriteFile(resources, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.must("update", "-r", resources, "limited")
	verify([]check{
		{"memory", "memory.limit_in_bytes", "memory.max", "1073741824", "1073741824"},
		{"pids", "pids.max", "pids.max", "max", "max"},
	})
	// events --stats reads the limits and memory.stat back from the
	// cgroup.
	var ev struct {
		Data struct {
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
					Limit uint64 `json:"limit"`
				} `json:"usage"`
				Raw map[string]uint64 `json:"raw"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.must("events", "--stats", "limited")), &ev); err != nil {
		t.Fatal(err)
	}
	if m := ev.Data.Memory; m.Usage.Limit != 1<<30 || len(m.Raw) == 0 || m.Usage.Usage == 0 {
		t.Errorf("events --stats memory: %+v; want the 1 GiB limit, memory.stat and a usage", m)
	}
	if p := ev.Data.Pids; p.Limit != 0 || p.Current != 1 {
		t.Errorf("events --stats pids: %+v; want no limit (max) and init alone", p)
	}
	e.fails("invalid size", "update", "--memory", "lots", "limited")
	e.fails("does not exist", "update", "--memory", "1g", "nosuch")

	e.must("delete", "--force", "limited")
	for _, ctrl := range []string{"memory", "pids", "cpu", "cpuset", "freezer"} {
		if _, err := os.Stat(h.dir(ctrl, rel)); !os.IsNotExist(err) {
			t.Errorf("%s cgroup left after delete: %v", ctrl, err)
		}
	}
}

func TestUpdateWithoutCgroupAndRun(t *testing.T) {
	e := newEnv(t)
	h := newHostCgroups(t)
	// A container created without limits gets its cgroup at update.
	e.must("run", "--detach", "--bundle", e.bundle([]string{"/bin/sleep", "1000"}, nil), "later")
	e.must("update", "--pids-limit", "200", "later")
	rel := "runsc/later"
	if got := h.read(t, "pids", rel, "pids.max", "pids.max"); got != "200" {
		t.Errorf("pids.max after update: %q", got)
	}
	// It pauses and resumes through that same cgroup.
	e.must("pause", "later")
	e.waitStatus("later", "paused")
	e.must("resume", "later")
	e.must("delete", "--force", "later")
	if _, err := os.Stat(h.dir("pids", rel)); !os.IsNotExist(err) {
		t.Errorf("cgroup left after delete: %v", err)
	}

	// run in the foreground removes the cgroup when the container ends.
	parent := "e2e-runsc-run-" + strconv.Itoa(os.Getpid())
	h.removeParent(t, parent)
	bundle := e.bundle([]string{"/bin/sh", "-c", "exit 3"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = parent + "/fg"
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(500)}}
	})
	if _, stderr, code := e.runsc("run", "--bundle", bundle, "fg"); code != 3 {
		t.Errorf("run: exit %d, want 3: %s", code, stderr)
	}
	if _, err := os.Stat(h.dir("pids", parent+"/fg")); !os.IsNotExist(err) {
		t.Errorf("cgroup left after run: %v", err)
	}
}

// TestCgroupV2Sandbox runs runsc as on a unified (cgroup v2) host: in a
// private mount namespace, /sys/fs/cgroup becomes a cgroup2 mount, so
// runsc picks its v2 code. That hierarchy is this hybrid host's empty
// one: the container's cgroup is made there, the Sentry, the Gofer and the
// stubs join it, delete removes it; a limit, with every controller bound
// to v1, fails create with the error Apply promises, leaving nothing.
func TestCgroupV2Sandbox(t *testing.T) {
	e := newEnv(t)
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &fs); err != nil || fs.Type == unix.CGROUP2_SUPER_MAGIC {
		t.Skip("needs a v1 or hybrid host (a unified host runs the v2 code in every cgroup test)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1)")
	}
	parent := "e2e-runsc-v2-" + strconv.Itoa(os.Getpid())
	plain := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) { s.Linux.CgroupsPath = parent + "/v2c" })
	limited := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = parent + "/v2l"
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}}
	})
	script := `set -e
mount -t cgroup2 cgroup2 /sys/fs/cgroup
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
dir=/sys/fs/cgroup${own%/}/$PARENT
R="$RUNSC --root=$ROOT"
$R run --detach --bundle "$PLAIN" v2c
pid=$($R state v2c | tr -d ' \n' | sed 's/.*"pid":\([0-9]*\).*/\1/')
echo "sentry $pid"
echo "member $(grep '^0::' /proc/$pid/cgroup)"
echo "want 0::${own%/}/$PARENT/v2c"
echo "procs $(tr '\n' ' ' < $dir/v2c/cgroup.procs)"
$R delete --force v2c
if test -e $dir/v2c; then echo cgroup-left; else echo cgroup-gone; fi
if $R create --bundle "$LIMITED" v2l 2>&1; then echo created-with-limits; else echo create-failed; fi
if test -e $dir/v2l; then echo limited-left; fi
rmdir $dir
`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "RUNSC="+runscBin, "ROOT="+e.root, "PARENT="+parent, "PLAIN="+plain, "LIMITED="+limited)
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("in the namespace:\n%s", out)
	field := func(name string) string {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				return v
			}
		}
		t.Fatalf("no %q line in:\n%s", name, out)
		return ""
	}
	sentry := field("sentry")
	if got, want := field("member"), field("want"); got != want {
		t.Errorf("the Sentry's /proc/%s/cgroup has %q, want %q", sentry, got, want)
	}
	procs := strings.Fields(field("procs"))
	if !slices.Contains(procs, sentry) || len(procs) < 3 {
		t.Errorf("cgroup.procs %v: want the Sentry (%s), the Gofer and a stub", procs, sentry)
	}
	for _, w := range []string{"cgroup-gone", "needs the memory controller", "create-failed"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, bad := range []string{"cgroup-left", "created-with-limits", "limited-left"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
}

func TestFeatures(t *testing.T) {
	e := newEnv(t)
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		Linux         struct {
			Namespaces []string `json:"namespaces"`
			Cgroup     struct {
				V1, V2 bool
			} `json:"cgroup"`
			Seccomp struct {
				Enabled bool     `json:"enabled"`
				Actions []string `json:"actions"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	out := e.must("features")
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("features: %v in %q", err, out)
	}
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	if v2 := err == nil; f.Linux.Cgroup.V2 != v2 || f.Linux.Cgroup.V1 == v2 {
		t.Errorf("cgroup features %+v on a host with v2=%v", f.Linux.Cgroup, v2)
	}
	if f.OCIVersionMax != specs.Version || !slices.Contains(f.Linux.Namespaces, "network") ||
		slices.Contains(f.Linux.Namespaces, "user") || !f.Linux.Seccomp.Enabled ||
		!slices.Contains(f.Linux.Seccomp.Actions, "SCMP_ACT_ERRNO") || !slices.Contains(f.Hooks, "poststop") {
		t.Errorf("features: %s", out)
	}
}

// descendsFrom reports whether pid is ancestor or one of its descendants.
func descendsFrom(pid, ancestor int) bool {
	for range 64 {
		if pid == ancestor {
			return true
		}
		if pid <= 1 {
			return false
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if i < 0 || len(f) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(f[1])
	}
	return false
}
