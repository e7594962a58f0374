package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"carapace.dev/carapace/pkg/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Cgroup is the host cgroup holding one sandbox's processes (Sentry,
// Gofer, stubs): it carries the spec's linux.resources limits and freezes
// them all at once (runsc pause), as runc's does. On cgroup v1 hosts it is
// one directory in each controller hierarchy runsc uses; on v2, one
// directory (cgroup.freeze for pause).
type Cgroup struct {
	// Dirs are its directories, keyed by v1 controller, or "" on v2.
	Dirs map[string]string
	// root is where the cgroup filesystems it was named in are mounted
	// (the v2 hierarchy itself, or the v1 hierarchies' parent); "" (a
	// Cgroup rebuilt from Dirs) means the host's, cgroupFSRoot.
	root string
}

// cgroupFSRoot is where the host's cgroup filesystems are mounted.
const cgroupFSRoot = "/sys/fs/cgroup"

// v1Controllers are the cgroup v1 hierarchies a sandbox's cgroup spans:
// those linux.resources and pause use.
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer"}

// v2Controllers are enabled in the ancestors' cgroup.subtree_control so
// that the sandbox's cgroup has their files.
var v2Controllers = []string{"cpu", "cpuset", "memory", "pids"}

// v2IOController is enabled too when the host has it (io.weight).
const v2IOController = "io"

// CgroupV2 reports whether the host is a unified one: /sys/fs/cgroup is
// itself a cgroup2 mount. A hybrid host (v1 controllers at
// /sys/fs/cgroup/<controller>, an empty cgroup2 at unified/, which
// carries no controller runsc uses) counts as v1.
func CgroupV2() bool { return isCgroup2Mount(cgroupFSRoot) }

// isCgroup2Mount reports whether dir is the root of a cgroup2 mount.
func isCgroup2Mount(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// CgroupPath turns a spec's linux.cgroupsPath into a cgroup path: empty
// means "runsc/ID"; with systemd it must be "slice:prefix:name", which
// becomes the slice's directories and "prefix-name.scope" (systemd's own
// layout; runsc writes the cgroup files itself rather than asking systemd
// over D-Bus). A relative path is under runsc's own cgroup, as runc has it.
func CgroupPath(id, cgroupsPath string, systemd bool) (string, error) {
	if !systemd {
		if cgroupsPath == "" {
			return "runsc/" + id, nil
		}
		if strings.Contains(cgroupsPath, ":") {
			return "", fmt.Errorf("cgroupsPath %q looks like a systemd path; use --systemd-cgroup", cgroupsPath)
		}
		return checkCgroupPath(filepath.Clean(cgroupsPath))
	}
	if cgroupsPath == "" {
		cgroupsPath = "system.slice:runsc:" + id
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("systemd cgroupsPath %q is not slice:prefix:name", cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if name == "" || strings.Contains(prefix+name, "/") {
		return "", fmt.Errorf("systemd cgroupsPath %q: the name must be non-empty and no part may contain a slash", cgroupsPath)
	}
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return checkCgroupPath(filepath.Join(dir, unit))
}

// expandSlice gives a systemd slice's directory: "a-b.slice" is nested in
// "a.slice" ("/a.slice/a-b.slice"); "-.slice" is the root.
func expandSlice(slice string) (string, error) {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid systemd slice %q", slice)
	}
	if name == "-" {
		return "/", nil
	}
	if strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("invalid systemd slice %q", slice)
	}
	dir, prefix := "/", ""
	for _, part := range strings.Split(name, "-") {
		prefix += part
		dir = filepath.Join(dir, prefix+".slice")
		prefix += "-"
	}
	return dir, nil
}

func checkCgroupPath(p string) (string, error) {
	if p == "/" || p == "." || strings.HasPrefix(p, "..") || strings.Contains(p, "/../") {
		return "", fmt.Errorf("cgroupsPath %q does not name a cgroup of its own", p)
	}
	return p, nil
}

// selfCgroups reads /proc/self/cgroup: each v1 controller's path, and the
// v2 path under "".
func selfCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) != 3 {
			continue
		}
		if fields[1] == "" {
			out[""] = fields[2]
			continue
		}
		for _, c := range strings.Split(fields[1], ",") {
			out[c] = fields[2]
		}
	}
	return out, sc.Err()
}

// NewCgroup names the cgroup at path (see CgroupPath) in every hierarchy
// the host has. Nothing is created yet.
func NewCgroup(path string) (*Cgroup, error) {
	own, err := selfCgroups()
	if err != nil {
		return nil, fmt.Errorf("reading this process's cgroups: %w", err)
	}
	return newCgroupUnder(cgroupFSRoot, CgroupV2(), own, path)
}

// newCgroupUnder names the cgroup at path in the cgroup filesystems
// mounted at root: with v2, the one hierarchy mounted there; otherwise
// each v1 controller's at root/<controller>. A relative path is under
// own (the caller's cgroups, as /proc/self/cgroup gives them).
func newCgroupUnder(root string, v2 bool, own map[string]string, path string) (*Cgroup, error) {
	under := func(controller string) string {
		if filepath.IsAbs(path) {
			return path
		}
		return filepath.Join("/", own[controller], path)
	}
	c := &Cgroup{Dirs: map[string]string{}, root: root}
	if v2 {
		c.Dirs[""] = filepath.Join(root, under(""))
		return c, nil
	}
	for _, ctrl := range v1Controllers {
		if st, err := os.Stat(filepath.Join(root, ctrl)); err != nil || !st.IsDir() {
			continue
		}
		c.Dirs[ctrl] = filepath.Join(root, ctrl, under(ctrl))
	}
	if len(c.Dirs) == 0 {
		return nil, fmt.Errorf("%s has no cgroup hierarchy runsc can use", root)
	}
	return c, nil
}

// fsRoot is where c's cgroup filesystems are mounted.
func (c *Cgroup) fsRoot() string {
	if c.root != "" {
		return c.root
	}
	return cgroupFSRoot
}

// CgroupFor names the default cgroup of container id (runsc/ID under
// runsc's own), used when the spec gives none.
func CgroupFor(id string) (*Cgroup, error) { return NewCgroup("runsc/" + id) }

func (c *Cgroup) v2() bool { _, ok := c.Dirs[""]; return ok }

// dirs returns the distinct directories (v1 hierarchies may be
// co-mounted, cpu and cpuacct often are).
func (c *Cgroup) dirs() []string {
	seen := map[string]bool{}
	var out []string
	keys := make([]string, 0, len(c.Dirs))
	for k := range c.Dirs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d := c.Dirs[k]
		if r, err := filepath.EvalSymlinks(filepath.Dir(d)); err == nil {
			d = filepath.Join(r, filepath.Base(d))
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// Create makes the cgroup's directories. A new v1 cpuset cgroup starts
// with no CPU and no memory node, which no process may join, so each new
// level gets its parent's; on v2 the ancestors delegate the controllers.
func (c *Cgroup) Create() error {
	for ctrl, dir := range c.Dirs {
		root := c.fsRoot()
		if ctrl != "" {
			root = filepath.Join(root, ctrl)
		}
		if err := mkdirCgroup(ctrl, root, dir); err != nil {
			return err
		}
	}
	return nil
}

func mkdirCgroup(ctrl, root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		parent := cur
		cur = filepath.Join(cur, part)
		if ctrl == "" {
			delegateV2Controllers(parent)
		}
		err := os.Mkdir(cur, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("creating cgroup %s: %w", cur, err)
		}
		if ctrl == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					return fmt.Errorf("creating cgroup %s: %w", cur, err)
				}
				if err := writeCgroupFile(cur, f, strings.TrimSpace(string(v))); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// delegateV2Controllers enables in parent's children the controllers
// runsc uses that parent has. Those it lacks (a hybrid host's are bound
// to v1) stay absent: Apply reports a limit that needs one.
func delegateV2Controllers(parent string) {
	data, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return
	}
	have := strings.Fields(string(data))
	for _, name := range append(v2Controllers, v2IOController) {
		if slices.Contains(have, name) {
			if err := writeCgroupFile(parent, "cgroup.subtree_control", "+"+name); err != nil {
				log.Warningf("cgroup: %v", err)
			}
		}
	}
}

// Join moves process pid, and so its future children, into the cgroup.
func (c *Cgroup) Join(pid int) error {
	for _, d := range c.dirs() {
		if err := writeCgroupFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("joining cgroup: %w", err)
		}
	}
	return nil
}

// EnterSelf moves the calling process into the cgroup, so the processes
// it starts are born there and charged there from their first page, and
// returns the function that moves it back to where it was.
func (c *Cgroup) EnterSelf() (leave func() error, err error) {
	own, err := selfCgroups()
	if err != nil {
		return nil, err
	}
	leave = func() error {
		var firstErr error
		for ctrl := range c.Dirs {
			back := filepath.Join(c.fsRoot(), own[ctrl])
			if ctrl != "" {
				back = filepath.Join(c.fsRoot(), ctrl, own[ctrl])
			}
			if err := writeCgroupFile(back, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		return firstErr
	}
	if err := c.Join(os.Getpid()); err != nil {
		leave()
		return nil, err
	}
	return leave, nil
}

// Procs lists the pids in the cgroup (from its first directory).
func (c *Cgroup) Procs() ([]int, error) {
	data, err := os.ReadFile(filepath.Join(c.dirs()[0], "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func writeCgroupFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	return nil
}

// Freeze stops every process in the cgroup and waits until they are.
func (c *Cgroup) Freeze() error { return c.setFrozen(true) }

// Thaw lets them run again.
func (c *Cgroup) Thaw() error { return c.setFrozen(false) }

func (c *Cgroup) setFrozen(frozen bool) error {
	dir, file, value := c.Dirs["freezer"], "freezer.state", "THAWED"
	if frozen {
		value = "FROZEN"
	}
	v2 := c.v2()
	if v2 {
		dir, file, value = c.Dirs[""], "cgroup.freeze", "0"
		if frozen {
			value = "1"
		}
	} else if dir == "" {
		return errors.New("the host has no cgroup freezer")
	}
	if err := writeCgroupFile(dir, file, value); err != nil {
		return err
	}
	// v1 passes through FREEZING; v2 reports the settled state in
	// cgroup.events ("frozen 1").
	for range 1000 {
		var got string
		if v2 {
			data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "frozen "); ok {
					got = v
				}
			}
		} else {
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				return err
			}
			got = strings.TrimSpace(string(data))
		}
		if got == value {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("cgroup %s did not become %s", dir, value)
}

// Remove deletes the cgroup, which must hold no process.
func (c *Cgroup) Remove() error {
	for _, d := range c.dirs() {
		if err := removeCgroupDir(d); err != nil {
			return err
		}
		// The default parent, runsc/, goes with its last container
		// (rmdir fails harmlessly while others remain).
		if parent := filepath.Dir(d); filepath.Base(parent) == "runsc" {
			unix.Rmdir(parent)
		}
	}
	return nil
}

func removeCgroupDir(dir string) error {
	for range 200 {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		// Processes just killed leave the cgroup a moment after they die.
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: still in use", dir)
}

// JoinTree moves pid and then every process descended from it into the
// cgroup. Moving the parent first means a child it forks meanwhile is
// born inside; children that already exist are found afterwards.
func (c *Cgroup) JoinTree(pid int) error {
	if err := c.Join(pid); err != nil {
		return err
	}
	for _, d := range descendants(pid) {
		if err := c.Join(d); err != nil && processExists(d) {
			return err
		}
	}
	return nil
}

func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// descendants returns the pids of every live descendant of pid (the
// Sentry's platform stubs), from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		end := strings.LastIndexByte(string(data), ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(string(data[end+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(fields[1]) // field 4
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Descendants returns the live descendants of pid.
func Descendants(pid int) []int { return descendants(pid) }

// warnUnsupported logs resources runsc does not apply: of blockIO, v2's
// io.weight alone is.
func warnUnsupported(r *specs.LinuxResources, v2 bool) {
	if b := r.BlockIO; b != nil {
		if !v2 || b.LeafWeight != nil || len(b.WeightDevice) > 0 || len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
			len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0 {
			log.Warningf("linux.resources.blockIO is not applied (on cgroup v2, its weight alone is)")
		}
	}
	if len(r.HugepageLimits) > 0 {
		log.Warningf("linux.resources.hugepageLimits are not applied")
	}
	if r.Network != nil {
		log.Warningf("linux.resources.network is not applied")
	}
	if r.CPU != nil && (r.CPU.RealtimeRuntime != nil || r.CPU.RealtimePeriod != nil) {
		log.Warningf("linux.resources.cpu realtime limits are not applied")
	}
}
