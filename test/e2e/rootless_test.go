package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The tests of `runsc --rootless` run runsc as an unprivileged uid, as a
// user would: the test process (root) only switches to that uid and
// prepares files the uid can reach.

// nobodyID is the "nobody" user and group of Debian.
const nobodyID = 65534

// rootlessEnv is a directory tree owned by an unprivileged uid, holding a
// copy of runsc it can run, its $HOME (also $XDG_RUNTIME_DIR) and its
// runtime root.
type rootlessEnv struct {
	t        testing.TB
	uid, gid uint32
	base     string // owned by uid, 0755
	bin      string
	home     string
	state    string
}

func newRootlessEnv(t testing.TB, uid, gid uint32) *rootlessEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching to an unprivileged uid needs root")
	}
	if data, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("user namespaces are disabled (user.max_user_namespaces = 0)")
	}
	if data, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(data)) == "0" {
		t.Skip("unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)")
	}
	if data, err := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); err == nil && strings.TrimSpace(string(data)) == "1" {
		t.Skip("AppArmor denies capabilities in unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)")
	}
	base, err := os.MkdirTemp("", "e2e-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	e := &rootlessEnv{t: t, uid: uid, gid: gid, base: base,
		bin: filepath.Join(base, "bin", "runsc"), home: filepath.Join(base, "home"), state: filepath.Join(base, "state")}
	t.Cleanup(e.cleanup)
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Dir(e.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, runscBin, e.bin, 0o755)
	for _, d := range []string{e.home, e.state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// command is runsc args as the env's uid, in directory "/", with
// --rootless and the env's --root.
func (e *rootlessEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, append([]string{"--rootless", "--root=" + e.state}, args...)...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + e.home, "XDG_RUNTIME_DIR=" + e.home}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: e.uid, Gid: e.gid, Groups: []uint32{}}}
	return cmd
}

// run runs cmd with stdin and returns its stdout, stderr and exit code.
func (e *rootlessEnv) run(cmd *exec.Cmd, stdin io.Reader) (string, string, int) {
	e.t.Helper()
	return runCommand(e.t, cmd, stdin)
}

func (e *rootlessEnv) runsc(args ...string) (string, string, int) {
	e.t.Helper()
	return e.run(e.command(args...), nil)
}

func (e *rootlessEnv) must(args ...string) string {
	e.t.Helper()
	out, stderr, code := e.runsc(args...)
	if code != 0 {
		e.t.Fatalf("runsc --rootless %v: exit %d: %s", args, code, stderr)
	}
	return out
}

// processes lists the live host processes of this env's runtime root
// (runsc passes --root=… to every Sentry, Gofer and stub it starts).
func (e *rootlessEnv) processes() []int { return processesOfRoot(e.state) }

// processesOfRoot lists the live host processes of runtime root root.
func processesOfRoot(root string) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("--root="+root+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// waitNoProcesses fails the test if processes of the env outlive a few
// seconds.
func (e *rootlessEnv) waitNoProcesses() {
	e.t.Helper()
	waitNoneLeft(e.t, e.state, e.processes)
}

func (e *rootlessEnv) cleanup() {
	if _, err := os.Stat(e.bin); err == nil {
		out, _, _ := e.runsc("list", "--quiet")
		for _, id := range strings.Fields(out) {
			if _, stderr, code := e.runsc("delete", "--force", id); code != 0 {
				e.t.Errorf("cleanup: delete --force %s: %s", id, stderr)
			}
		}
	}
	e.waitNoProcesses()
	for _, pid := range e.processes() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if entries, _ := os.ReadDir(e.state); len(entries) != 0 {
		e.t.Errorf("state left in %s: %v", e.state, entries)
	}
	os.RemoveAll(e.base)
}

// hostRootBundle writes, where the env's uid can read it, a bundle whose
// root is the host's, read-only, running args as the container's root.
func (e *rootlessEnv) hostRootBundle(name string, args []string, change func(*specs.Spec)) string {
	e.t.Helper()
	dir := filepath.Join(e.base, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}},
		Root:    &specs.Root{Path: "/", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmp", Options: []string{"mode=1777"}},
		},
		Linux: &specs.Linux{},
	}
	if change != nil {
		change(spec)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// busyboxBundle builds the images/busybox bundle where the env's uid can
// read it, with the process off the terminal.
func (e *rootlessEnv) busyboxBundle(args ...string) string {
	e.t.Helper()
	dir := filepath.Join(e.base, "busybox")
	if err := os.Mkdir(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	buildBusyboxBundle(e.t, dir, args...)
	return dir
}

// TestRootlessDoExitCodes runs `runsc --rootless do` as nobody and as a
// uid no passwd entry names: the command's exit status is runsc's.
func TestRootlessDoExitCodes(t *testing.T) {
	for _, id := range []uint32{nobodyID, 54321} {
		t.Run(strconv.Itoa(int(id)), func(t *testing.T) {
			e := newRootlessEnv(t, id, id)
			for _, c := range []struct {
				args []string
				want int
			}{
				{[]string{"/bin/true"}, 0},
				{[]string{"/bin/false"}, 1},
				{[]string{"/bin/sh", "-c", "exit 7"}, 7},
			} {
				if _, stderr, code := e.runsc(append([]string{"do"}, c.args...)...); code != c.want {
					t.Errorf("do %v as uid %d: exit %d, want %d; stderr %q", c.args, id, code, c.want, stderr)
				}
			}
			e.waitNoProcesses()
		})
	}
}

// TestRootlessDoPython runs python3 from the host's root, and pipes stdin
// through the sandbox.
func TestRootlessDoPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	e := newRootlessEnv(t, nobodyID, nobodyID)
	if out, stderr, code := e.runsc("do", "python3", "-c", "print(1)"); code != 0 || out != "1\n" {
		t.Errorf("do python3: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	in := "first line\nsecond line\n"
	if out, stderr, code := e.run(e.command("do", "cat"), strings.NewReader(in)); code != 0 || out != in {
		t.Errorf("echo | do cat: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// The caller is root of its user namespace, and so of the sandbox.
	if out, stderr, code := e.runsc("do", "/bin/sh", "-c", "id -u; id -g"); code != 0 || out != "0\n0\n" {
		t.Errorf("do id: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestRootlessCopyUpBelowUnreadableDirectory writes, in the sandbox's
// overlay, below a root-owned directory the user may search but not read
// (0711): the copy-up of that directory cannot list its xattrs on the host
// and must go on without them.
func TestRootlessCopyUpBelowUnreadableDirectory(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	locked := filepath.Join(e.base, "locked")
	mine := filepath.Join(locked, "mine")
	if err := os.MkdirAll(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mine, int(nobodyID), int(nobodyID)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(mine, "f")
	out, stderr, code := e.runsc("do", "/bin/sh", "-c", "echo written > "+file+" && cat "+file)
	if code != 0 || out != "written\n" {
		t.Errorf("write below a 0711 directory: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the write reached the host's %s (stat: %v); it belongs in the overlay", file, err)
	}
}

// hostIDs reads a process's real uid and the first line of its uid_map.
func hostIDs(pid int) (uid string, uidMap string, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	m, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		return "", "", err
	}
	return uid, strings.Join(strings.Fields(string(m)), " "), nil
}

// TestRootlessSandboxProcessesAndKill checks, while `runsc --rootless do
// sleep` runs, that every sandbox process (Gofer, Sentry, stubs) is the
// caller on the host and lives in a user namespace mapping the caller
// alone to 0; then SIGKILLs the Sentry and checks nothing is left.
func TestRootlessSandboxProcessesAndKill(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	cmd := e.command("do", "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ownNS, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the Gofer and the Sentry.
	var sentry, gofer int
	deadline := time.Now().Add(10 * time.Second)
	for (sentry == 0 || gofer == 0) && time.Now().Before(deadline) {
		for _, pid := range e.processes() {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			switch {
			case bytes.HasPrefix(cmdline, []byte("runsc-boot\x00")):
				sentry = pid
			case bytes.HasPrefix(cmdline, []byte("runsc-gofer\x00")):
				gofer = pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sentry == 0 || gofer == 0 {
		t.Fatalf("sandbox processes not found: sentry %d, gofer %d", sentry, gofer)
	}
	// Without --network, a rootless sandbox has no veth: netstack with
	// loopback only.
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", sentry)); !bytes.Contains(cmdline, []byte("\x00--network=none\x00")) {
		t.Errorf("the Sentry's default network is not none: %q", cmdline)
	}
	time.Sleep(200 * time.Millisecond) // the stubs
	// The platform's stubs are the Sentry's descendants; their command
	// line is not runsc's.
	sandboxPids := append(liveDescendants(sentry), liveDescendants(gofer)...)
	for _, pid := range e.processes() {
		if pid != cmd.Process.Pid && !slices.Contains(sandboxPids, pid) {
			sandboxPids = append(sandboxPids, pid)
		}
	}
	if len(sandboxPids) < 3 {
		t.Errorf("sandbox processes %v: want the Gofer, the Sentry and a stub at least", sandboxPids)
	}
	for _, pid := range sandboxPids {
		uid, uidMap, err := hostIDs(pid)
		if err != nil {
			continue // exited meanwhile
		}
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
		if uid != strconv.Itoa(nobodyID) || uidMap != "0 65534 1" || ns == ownNS {
			t.Errorf("pid %d: host uid %s, uid_map %q, user namespace %s (the host's: %s)", pid, uid, uidMap, ns, ownNS)
		}
	}
	// Confinement works relative to the user namespace: the Sentry keeps
	// no capability, and its root is an empty directory.
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", sentry)); err != nil || !strings.Contains(string(status), "CapEff:\t0000000000000000\n") {
		t.Errorf("the Sentry kept capabilities: %v\n%s", err, status)
	}
	if entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/", sentry)); err != nil || len(entries) != 0 {
		t.Errorf("the Sentry's root is not empty: %v, %v", entries, err)
	}
	if err := syscall.Kill(sentry, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+9 {
		t.Errorf("runsc do after SIGKILL of the Sentry: %v, want exit %d", err, 128+9)
	}
	e.waitNoProcesses()
	waitGone(t, sandboxPids)
}

// TestRootlessRunscKilled SIGKILLs `runsc --rootless do` itself: the
// sandbox processes, in their user namespace, still die with it.
func TestRootlessRunscKilled(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	cmd := e.command("do", "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var sandboxPids []int
	deadline := time.Now().Add(10 * time.Second)
	for len(sandboxPids) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		sandboxPids = liveDescendants(cmd.Process.Pid)
	}
	if len(sandboxPids) < 3 {
		t.Errorf("sandbox processes %v: want the Gofer, the Sentry and a stub at least", sandboxPids)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitGone(t, sandboxPids)
	e.waitNoProcesses()
}

// liveDescendants lists the processes below pid that have not exited.
func liveDescendants(pid int) []int {
	children := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procParent(p); ok && state != 'Z' {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// procParent reads a process's parent and state from /proc.
func procParent(pid int) (ppid int, state byte, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// waitGone fails the test unless every pid has exited within seconds.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for {
			_, state, ok := procParent(pid)
			if !ok || state == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("sandbox process %d outlived its sandbox", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestRootlessLifecycle takes the busybox image through create, state,
// start, exec, ps, kill, wait and delete as nobody, then `run` with an
// exit code: the state, pid file and control socket are the user's.
func TestRootlessLifecycle(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	bundle := e.busyboxBundle("/bin/sh", "-c", "echo up $(id -u); exec sleep 1000")
	pidFile := filepath.Join(e.home, "pid")
	outPath := filepath.Join(e.base, "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	create := e.command("create", "--bundle", bundle, "--pid-file", pidFile, "bb")
	create.Stdout, create.Stderr = out, out
	if err := create.Run(); err != nil {
		data, _ := os.ReadFile(outPath)
		t.Fatalf("create: %v: %s", err, data)
	}
	var st state
	if err := json.Unmarshal([]byte(e.must("state", "bb")), &st); err != nil || st.Status != "created" || st.Bundle != bundle {
		t.Fatalf("state after create: %+v, %v", st, err)
	}
	if data, err := os.ReadFile(pidFile); err != nil || string(data) != strconv.Itoa(st.Pid) {
		t.Errorf("pid file: %q, %v; want %d", data, err, st.Pid)
	}
	if fi, err := os.Stat(filepath.Join(e.state, "bb")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != nobodyID {
		t.Errorf("the container's state directory is not the user's: %v", err)
	}
	e.must("start", "bb")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(outPath)
		if strings.Contains(string(data), "up 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init's output: %q, want \"up 0\"", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if stdout, stderr, code := e.runsc("exec", "bb", "/bin/sh", "-c", "echo in-$(hostname); exit 3"); code != 3 || !strings.HasPrefix(stdout, "in-") {
		t.Errorf("exec: exit %d, stdout %q, stderr %q; want exit 3", code, stdout, stderr)
	}
	if ps := e.must("ps", "bb"); !strings.Contains(ps, "sleep 1000") {
		t.Errorf("ps: %q", ps)
	}
	e.must("kill", "bb", "KILL")
	deadline = time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(e.must("state", "bb")), &st); err == nil && st.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container not stopped after kill: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var w struct {
		ExitStatus int `json:"exitStatus"`
	}
	if err := json.Unmarshal([]byte(e.must("wait", "bb")), &w); err != nil || w.ExitStatus != 128+9 {
		t.Errorf("wait after SIGKILL: %+v, %v", w, err)
	}
	e.must("delete", "bb")
	if _, _, code := e.runsc("state", "bb"); code == 0 {
		t.Error("state of a deleted container succeeded")
	}
	e.waitNoProcesses()

	bundle2 := e.hostRootBundle("exit5", []string{"/bin/sh", "-c", "exit 5"}, nil)
	if _, stderr, code := e.runsc("run", "--bundle", bundle2, "five"); code != 5 {
		t.Errorf("run: exit %d, want 5; stderr %q", code, stderr)
	}
	e.waitNoProcesses()
}

// TestRootlessBindMounts checks that what the container writes to a rw
// bind mount is the real user's on the host, and that a ro one stays so.
func TestRootlessBindMounts(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	rw, ro := filepath.Join(e.base, "rw"), filepath.Join(e.base, "ro")
	for _, d := range []string{rw, ro} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, nobodyID, nobodyID); err != nil {
			t.Fatal(err)
		}
	}
	bundle := e.hostRootBundle("binds", []string{"/bin/sh", "-c",
		"echo data > /mnt/rw/file && mkdir /mnt/rw/dir && stat -c %u:%g /mnt/rw/file && if touch /mnt/ro/file 2>/dev/null; then echo ro-writable; fi"},
		func(s *specs.Spec) {
			// The mount points are made in the overlay over the host's root.
			s.Root.Readonly = false
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: rw, Options: []string{"rbind", "rw"}},
				specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: ro, Options: []string{"rbind", "ro"}})
		})
	stdout, stderr, code := e.runsc("run", "--bundle", bundle, "binds")
	if code != 0 {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Inside, the caller's files are root's.
	if stdout != "0:0\n" {
		t.Errorf("container output %q, want \"0:0\" (the file as the container sees it)", stdout)
	}
	for _, p := range []string{filepath.Join(rw, "file"), filepath.Join(rw, "dir")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s was not created on the host: %v", p, err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobodyID || st.Gid != nobodyID {
			t.Errorf("%s is owned by %d:%d on the host, want the user's %d:%d", p, st.Uid, st.Gid, nobodyID, nobodyID)
		}
	}
	if data, err := os.ReadFile(filepath.Join(rw, "file")); err != nil || string(data) != "data\n" {
		t.Errorf("host sees %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "file")); err == nil {
		t.Error("the read-only bind mount was written")
	}
	e.waitNoProcesses()
}

// TestRootlessCgroupWarning sets resource limits the user cannot apply
// (no cgroup is delegated to nobody here): runsc says they are not
// enforced and the container runs anyway.
func TestRootlessCgroupWarning(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	limit := int64(256 << 20)
	pids := int64(100)
	bundle := e.hostRootBundle("limits", []string{"/bin/true"}, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
		s.Linux.CgroupsPath = "e2e-rootless-limits"
	})
	_, stderr, code := e.runsc("run", "--bundle", bundle, "limits")
	if code != 0 {
		t.Fatalf("run with resources: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "NOT enforced") {
		t.Errorf("no warning that the limits are not enforced: stderr %q", stderr)
	}
	// Nothing was half made in any hierarchy.
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/e2e-rootless-limits"); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	if _, err := os.Stat("/sys/fs/cgroup/e2e-rootless-limits"); err == nil {
		t.Error("cgroup left: /sys/fs/cgroup/e2e-rootless-limits")
	}
	e.waitNoProcesses()
}

// TestRootlessNetworkModes: host works unprivileged, an explicit sandbox
// is refused (the default, none, is checked with the sandbox processes).
func TestRootlessNetworkModes(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	if _, stderr, code := e.runsc("--network=sandbox", "do", "/bin/true"); code != 1 || !strings.Contains(stderr, "--network=sandbox needs host root") {
		t.Errorf("--network=sandbox: exit %d, stderr %q; want a refusal", code, stderr)
	}
	if _, stderr, code := e.runsc("--network=host", "do", "/bin/true"); code != 0 {
		t.Errorf("--network=host: exit %d, stderr %q", code, stderr)
	}
	e.waitNoProcesses()
}

// TestRootlessStateRootDefault: without --root, a rootless runsc keeps
// its state under $XDG_RUNTIME_DIR/runsc, as runc does.
func TestRootlessStateRootDefault(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	bundle := e.hostRootBundle("xdg", []string{"/bin/sleep", "1000"}, nil)
	noRoot := func(args ...string) *exec.Cmd {
		cmd := e.command(args...)
		cmd.Args = append(cmd.Args[:2], cmd.Args[3:]...) // drop --root
		return cmd
	}
	if _, stderr, code := e.run(noRoot("create", "--bundle", bundle, "xdg"), nil); code != 0 {
		t.Fatalf("create without --root: exit %d, %s", code, stderr)
	}
	_, statErr := os.Stat(filepath.Join(e.home, "runsc", "xdg", "state.json"))
	if _, stderr, code := e.run(noRoot("delete", "--force", "xdg"), nil); code != 0 {
		t.Errorf("delete: exit %d, %s", code, stderr)
	}
	if statErr != nil {
		t.Errorf("no state under $XDG_RUNTIME_DIR/runsc: %v", statErr)
	}
	xdgRoot := filepath.Join(e.home, "runsc")
	deadline := time.Now().Add(5 * time.Second)
	for len(processesOfRoot(xdgRoot)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := processesOfRoot(xdgRoot); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
}

// TestRootlessUserNamespaceSpec runs a bundle as `runc spec --rootless`
// writes them (a user namespace mapping the caller to 0), and refuses one
// whose mapping runsc cannot make.
func TestRootlessUserNamespaceSpec(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	withMaps := func(hostID uint32) func(*specs.Spec) {
		return func(s *specs.Spec) {
			s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UserNamespace}}
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostID, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: nobodyID, Size: 1}}
		}
	}
	good := e.hostRootBundle("userns", []string{"/bin/sh", "-c", "exit 4"}, withMaps(nobodyID))
	if _, stderr, code := e.runsc("run", "--bundle", good, "userns"); code != 4 {
		t.Errorf("run with the caller mapped to 0: exit %d, want 4; stderr %q", code, stderr)
	}
	bad := e.hostRootBundle("otheruid", []string{"/bin/true"}, withMaps(1000))
	if _, stderr, code := e.runsc("run", "--bundle", bad, "otheruid"); code != 1 || !strings.Contains(stderr, "maps uid 0 to host uid 1000") {
		t.Errorf("run with uid 0 mapped to 1000: exit %d, stderr %q; want a refusal", code, stderr)
	}
	e.waitNoProcesses()
}

// TestRootlessConsoleSocket creates a terminal container as nobody: runsc
// makes the pty and sends its master over the console socket.
func TestRootlessConsoleSocket(t *testing.T) {
	e := newRootlessEnv(t, nobodyID, nobodyID)
	bundle := e.hostRootBundle("tty", []string{"/bin/sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; exit 6"}, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	sockPath := filepath.Join(e.base, "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Connecting needs write permission on the socket.
	if err := os.Chmod(sockPath, 0o777); err != nil {
		t.Fatal(err)
	}
	got := receiveConsole(t, ln)
	e.must("create", "--bundle", bundle, "--console-socket", sockPath, "tty")
	master := awaitConsole(t, got)
	defer master.Close()
	e.must("start", "tty")
	out := readTerminalUntil(master, "is-a-tty")
	if !strings.Contains(out, "is-a-tty") {
		t.Errorf("terminal output %q: the process's stdio is not the pty", out)
	}
	if _, _, code := e.runsc("wait", "--exit", "tty"); code != 6 {
		t.Errorf("wait --exit: %d, want 6", code)
	}
	e.must("delete", "tty")
}

// BenchmarkRootlessDoTrue times `runsc do /bin/true` whole with
// --network=none, as root and as nobody with --rootless: the cost of the
// user namespaces is the difference.
func BenchmarkRootlessDoTrue(b *testing.B) {
	e := newRootlessEnv(b, nobodyID, nobodyID)
	b.Run("root", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command(e.bin, "--root="+e.state, "--network=none", "do", "/bin/true")
			cmd.Dir = "/"
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("runsc do /bin/true: %v: %s", err, out)
			}
		}
	})
	b.Run("rootless", func(b *testing.B) {
		for b.Loop() {
			if out, err := e.command("do", "/bin/true").CombinedOutput(); err != nil {
				b.Fatalf("runsc --rootless do /bin/true: %v: %s", err, out)
			}
		}
	})
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
