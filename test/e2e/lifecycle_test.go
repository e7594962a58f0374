package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sh", "-c", "echo started $GREETING; exec sleep 1000"}, nil)
	out := newOutput(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "--pid-file", pidFile, "c1"); code != 0 {
		t.Fatalf("create: exit %d: %s", code, msg)
	}

	st := e.state("c1")
	if st.Status != "created" || st.ID != "c1" || st.Bundle != bundle || st.OCIVersion != specs.Version {
		t.Errorf("state after create: %+v", st)
	}
	if st.Annotations["org.example.test"] != "e2e" {
		t.Errorf("annotations not preserved: %v", st.Annotations)
	}
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := strconv.Atoi(string(pidData)); pid != st.Pid || pid <= 0 {
		t.Errorf("pid file %q, state pid %d", pidData, st.Pid)
	}
	if err := syscall.Kill(st.Pid, 0); err != nil {
		t.Errorf("the Sentry (pid %d) is not running after create returned: %v", st.Pid, err)
	}
	if data, _ := os.ReadFile(out.f.Name()); len(data) != 0 {
		t.Errorf("init ran before start: output %q", data)
	}

	// A second container with the same ID is refused; the first is intact.
	e.fails("exists", "create", "--bundle", bundle, "c1")
	if st := e.state("c1"); st.Status != "created" {
		t.Errorf("after duplicate create: %s", st.Status)
	}

	e.must("start", "c1")
	out.waitFor("started hello")
	if st := e.state("c1"); st.Status != "running" {
		t.Errorf("after start: %s", st.Status)
	}
	e.fails("already running", "start", "c1")

	ps := e.must("ps", "c1")
	if !strings.Contains(ps, "PID") || !strings.Contains(ps, "sleep 1000") {
		t.Errorf("ps:\n%s", ps)
	}
	// runc's columns (ps -ef's); init's start time is known.
	if rows := strings.Split(strings.TrimSpace(ps), "\n"); len(rows) != 2 ||
		strings.Join(strings.Fields(rows[0]), " ") != "UID PID PPID C STIME TTY TIME CMD" ||
		len(strings.Fields(rows[1])) != 9 || strings.Fields(rows[1])[0] != "root" || strings.Fields(rows[1])[4] == "?" {
		t.Errorf("ps table:\n%s", ps)
	}
	var pids []int
	if err := json.Unmarshal([]byte(e.must("ps", "--format", "json", "c1")), &pids); err != nil || len(pids) != 1 || pids[0] != 1 {
		t.Errorf("ps --format json: %v, %v", pids, err)
	}

	// A running container is not deleted without --force.
	e.fails("not stopped", "delete", "c1")

	e.must("kill", "c1", "TERM")
	e.waitStatus("c1", "stopped")
	if st := e.state("c1"); st.Pid != 0 {
		t.Errorf("stopped container reports pid %d", st.Pid)
	}
	var w struct {
		ID         string `json:"id"`
		ExitStatus int    `json:"exitStatus"`
	}
	if err := json.Unmarshal([]byte(e.must("wait", "c1")), &w); err != nil || w.ExitStatus != 128+15 {
		t.Errorf("wait after SIGTERM: %+v, %v", w, err)
	}
	e.fails("container not running", "kill", "c1", "KILL")
	e.fails("stopped", "start", "c1")
	e.fails("stopped", "exec", "c1", "/bin/true")
	e.must("delete", "c1")
	e.fails("does not exist", "state", "c1")
	e.fails("does not exist", "delete", "c1")
	e.must("delete", "--force", "c1") // runc: --force on a missing container is fine
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, nil)
	e.must("create", "--bundle", bundle, "x")
	// runc allows exec before start; init stays held.
	if out := e.must("exec", "x", "/bin/echo", "early"); out != "early\n" {
		t.Errorf("exec in a created container: %q", out)
	}
	if st := e.state("x"); st.Status != "created" {
		t.Errorf("after exec before start: %s", st.Status)
	}
	e.must("start", "x")

	out, _, code := e.runsc("exec", "x", "/bin/sh", "-c", "echo $GREETING; exit 3")
	if code != 3 || out != "hello\n" {
		t.Errorf("exec: exit %d, output %q; want 3 and the container's env", code, out)
	}
	if out := e.must("exec", "--env", "GREETING=bye", "--env", "NEW=1", "x", "/bin/sh", "-c", "echo $GREETING $NEW"); out != "bye 1\n" {
		t.Errorf("exec --env: %q", out)
	}
	if out := e.must("exec", "--cwd", "/tmp", "x", "/bin/pwd"); out != "/tmp\n" {
		t.Errorf("exec --cwd: %q", out)
	}
	if out := e.must("exec", "--user", "1234:567", "x", "/bin/sh", "-c", "echo $(id -u) $(id -g)"); out != "1234 567\n" {
		t.Errorf("exec --user: %q", out)
	}
	// A process killed by a signal: 128+n, as a shell reports it.
	if _, _, code := e.runsc("exec", "x", "/bin/sh", "-c", "kill -9 $$"); code != 137 {
		t.Errorf("exec killed by SIGKILL: exit %d, want 137", code)
	}
	// --process: an OCI process description.
	proc := specs.Process{Args: []string{"/bin/sh", "-c", "echo from-process-file; exit 5"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	data, _ := json.Marshal(proc)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, data, 0o644)
	if out, _, code := e.runsc("exec", "--process", pf, "x"); code != 5 || out != "from-process-file\n" {
		t.Errorf("exec --process: exit %d, %q", code, out)
	}
	// A missing program fails cleanly and the container lives on.
	if _, stderr, code := e.runsc("exec", "x", "/no/such/program"); code == 0 || !strings.Contains(stderr, "no/such/program") {
		t.Errorf("exec of a missing program: exit %d, %q", code, stderr)
	}
	// --detach returns at once; the pid file names a process that exits
	// with the exec'd process's code.
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	e.must("exec", "--detach", "--pid-file", pidFile, "x", "/bin/sh", "-c", "sleep 0.2; exit 9")
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(pidData))
	if pid <= 0 {
		t.Fatalf("exec --detach pid file: %q", pidData)
	}
	// The waiter is not our child: poll for it to finish.
	for i := 0; i < 1000 && syscall.Kill(pid, 0) == nil && !isZombie(pid); i++ {
		sleepMs(10)
	}
	if ps := e.must("ps", "x"); strings.Contains(ps, "sleep 0.2") {
		t.Errorf("the detached process is still listed:\n%s", ps)
	}
	if st := e.state("x"); st.Status != "running" {
		t.Errorf("container after execs: %s", st.Status)
	}
}

func TestRunExitCodeAndOutput(t *testing.T) {
	e := newEnv(t)
	umask := uint32(0o027)
	bundle := e.bundle([]string{"/bin/sh", "-c", "echo $(uname -n) $(ulimit -n) $(umask); exit 7"}, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 777, Soft: 777}}
		s.Process.User.Umask = &umask
	})
	out, stderr, code := e.runsc("run", "--bundle", bundle, "r1")
	if code != 7 {
		t.Errorf("run: exit %d (stderr %q), want 7", code, stderr)
	}
	if out != "e2e-host 777 0027\n" {
		t.Errorf("run output %q, want the spec's hostname, rlimit and umask", out)
	}
	// run removes the container when it exits.
	if list := e.must("list", "--quiet"); list != "" {
		t.Errorf("containers after run: %q", list)
	}
}

func TestReadonlyRoot(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sh", "-c", "touch /carapace-e2e-file 2>/dev/null && echo wrote; touch /tmp/ok && echo tmp-ok"}, nil)
	out, _, _ := e.runsc("run", "--bundle", bundle, "ro")
	if out != "tmp-ok\n" {
		t.Errorf("output %q: want the root read-only and the /tmp mount writable", out)
	}
	if _, err := os.Stat("/carapace-e2e-file"); err == nil {
		os.Remove("/carapace-e2e-file")
		t.Errorf("the container wrote to the host's root")
	}
}

func TestRunDetachAndWait(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sh", "-c", "sleep 0.3; exit 4"}, nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.must("run", "--detach", "--bundle", bundle, "--pid-file", pidFile, "d1")
	if st := e.state("d1"); st.Status != "running" {
		t.Errorf("after run --detach: %s", st.Status)
	}
	var w struct {
		ExitStatus int `json:"exitStatus"`
	}
	if err := json.Unmarshal([]byte(e.must("wait", "d1")), &w); err != nil || w.ExitStatus != 4 {
		t.Errorf("wait: %+v, %v", w, err)
	}
	e.waitStatus("d1", "stopped")
	// The status survives the Sentry.
	if _, _, code := e.runsc("wait", "--exit", "d1"); code != 4 {
		t.Errorf("wait --exit on a stopped container: %d", code)
	}
	e.must("delete", "d1")
}

func TestKillAllAndSignalNumbers(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sh", "-c", "trap 'echo got-usr1' USR1; sleep 1000 & echo ready; while :; do sleep 0.05; done"}, nil)
	out := newOutput(t)
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "k"); code != 0 {
		t.Fatalf("create: %s", msg)
	}
	e.must("start", "k")
	out.waitFor("ready")      // the trap is set
	e.must("kill", "k", "10") // SIGUSR1 by number
	out.waitFor("got-usr1")
	e.fails("unknown signal", "kill", "k", "SIGNOPE")
	e.must("kill", "--all", "k", "SIGKILL")
	e.waitStatus("k", "stopped")
	e.must("delete", "k")
}

func TestDeleteForceAndList(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, nil)
	e.must("create", "--bundle", bundle, "a")
	e.must("run", "--detach", "--bundle", bundle, "b")
	var list []state
	if err := json.Unmarshal([]byte(e.must("list", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "a" || list[0].Status != "created" || list[1].ID != "b" || list[1].Status != "running" {
		t.Errorf("list --format json: %+v", list)
	}
	table := e.must("list")
	if !strings.HasPrefix(table, "ID") || !strings.Contains(table, "created") || !strings.Contains(table, "running") {
		t.Errorf("list:\n%s", table)
	}
	// A created container may be deleted without --force (runc kills its
	// waiting init); a running one needs it.
	e.must("delete", "a")
	e.must("delete", "--force", "b")
	if left := e.processes(); len(left) != 0 {
		t.Errorf("processes after delete --force: %v", left)
	}
	if list := e.must("list", "--quiet"); list != "" {
		t.Errorf("list after deletes: %q", list)
	}
}

func TestEventsStats(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, nil)
	e.must("run", "--detach", "--bundle", bundle, "ev")
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Pids struct {
				Current int `json:"current"`
			} `json:"pids"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
				} `json:"usage"`
			} `json:"memory"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.must("events", "--stats", "ev")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "stats" || ev.ID != "ev" || ev.Data.Pids.Current != 1 || ev.Data.Memory.Usage.Usage == 0 {
		t.Errorf("events --stats: %+v", ev)
	}
	e.must("kill", "ev", "KILL")
	e.waitStatus("ev", "stopped")
	// events ends by itself once the container has stopped.
	e.must("events", "--interval", "10ms", "ev")
	e.must("delete", "ev")
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sh", "-c", "while :; do echo tick; sleep 0.01; done"}, nil)
	out := newOutput(t)
	if msg, code := e.createWithOutput(out, "--bundle", bundle, "p"); code != 0 {
		t.Fatalf("create: %s", msg)
	}
	e.fails("not running", "pause", "p") // created, not started
	e.must("start", "p")
	out.waitFor("tick")
	e.fails("not paused", "resume", "p")
	if _, stderr, code := e.runsc("pause", "p"); code != 0 {
		if strings.Contains(stderr, "cgroup") {
			t.Skipf("pause needs a cgroup freezer: %s", stderr)
		}
		t.Fatalf("pause: %s", stderr)
	}
	if st := e.state("p"); st.Status != "paused" {
		t.Errorf("after pause: %s", st.Status)
	}
	size := func() int64 {
		fi, _ := os.Stat(out.f.Name())
		return fi.Size()
	}
	before := size()
	sleepMs(200)
	if after := size(); after != before {
		t.Errorf("the paused container wrote %d bytes", after-before)
	}
	e.fails("not stopped", "delete", "p")
	e.must("resume", "p")
	if st := e.state("p"); st.Status != "running" {
		t.Errorf("after resume: %s", st.Status)
	}
	for i := 0; i < 500 && size() == before; i++ {
		sleepMs(10)
	}
	if size() == before {
		t.Errorf("the resumed container does not run")
	}
	if out := e.must("exec", "p", "/bin/echo", "alive"); out != "alive\n" {
		t.Errorf("exec after resume: %q", out)
	}
	e.must("pause", "p")
	e.must("delete", "--force", "p") // a paused container can be force-deleted
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.fails("config.json", "create", "--bundle", t.TempDir(), "nobundle")
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "config.json"), []byte("{not json"), 0o644)
	e.fails("", "create", "--bundle", bad, "badspec")
	e.fails("invalid container id", "create", "--bundle", bad, "../escape")
	e.fails("does not exist", "start", "nosuch")
	e.fails("does not exist", "kill", "nosuch")
	if _, _, code := e.runsc("create"); code != 2 {
		t.Errorf("create with no id: exit %d, want 2", code)
	}
	if list := e.must("list", "--quiet"); list != "" {
		t.Errorf("containers after failed creates: %q", list)
	}
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] == 'Z'
}

func TestSentryKilled(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, nil)
	e.must("run", "--detach", "--bundle", bundle, "victim")
	st := e.state("victim")
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("victim", "stopped")
	// The Gofer and the stubs go with the Sentry.
	for i := 0; i < 500 && len(e.processes()) > 0; i++ {
		sleepMs(10)
	}
	if left := e.processes(); len(left) != 0 {
		t.Errorf("after SIGKILL of the Sentry: %v", left)
	}
	e.fails("container not running", "kill", "victim")
	// With no status left by the Sentry, init reads as killed by
	// SIGKILL, as runc reports a container whose init was killed.
	var w struct {
		ExitStatus int `json:"exitStatus"`
	}
	if out := e.must("wait", "victim"); json.Unmarshal([]byte(out), &w) != nil || w.ExitStatus != 137 {
		t.Errorf("wait after the Sentry was killed: %q, want exitStatus 137", out)
	}
	if _, _, code := e.runsc("wait", "--exit", "victim"); code != 137 {
		t.Errorf("wait --exit after the Sentry was killed: exit %d, want 137", code)
	}
	e.must("delete", "victim")
}

func TestManyContainers(t *testing.T) {
	e := newEnv(t)
	bundle := e.bundle([]string{"/bin/true"}, nil)
	const n = 20
	for i := range n {
		e.must("create", "--bundle", bundle, "many-"+strconv.Itoa(i))
	}
	if ids := strings.Fields(e.must("list", "--quiet")); len(ids) != n {
		t.Errorf("list shows %d containers, want %d", len(ids), n)
	}
	for i := range n {
		e.must("delete", "many-"+strconv.Itoa(i))
	}
	// newEnv's cleanup checks that no process or state is left.
}

func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		caps []string
		want string
	}{
		{[]string{"CAP_KILL"}, "denied\n"},
		{[]string{"CAP_CHOWN"}, "chowned\n"},
	} {
		bundle := e.bundle([]string{"/bin/sh", "-c", "touch /tmp/f; chown 5 /tmp/f 2>/dev/null && echo chowned || echo denied"}, func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: tc.caps, Effective: tc.caps, Permitted: tc.caps}
		})
		if out, stderr, _ := e.runsc("run", "--bundle", bundle, "caps"); out != tc.want {
			t.Errorf("root with %v: %q (stderr %q), want %q", tc.caps, out, stderr, tc.want)
		}
	}
}

func TestHooks(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			Prestart:      []specs.Hook{hook("prestart")}, //nolint:staticcheck
			CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart:     []specs.Hook{hook("poststart")},
			Poststop:      []specs.Hook{hook("poststop")},
		}
	})
	e.must("create", "--bundle", bundle, "hk")
	e.must("start", "hk")
	e.must("delete", "--force", "hk")
	for name, status := range map[string]string{"prestart": "created", "createRuntime": "created", "poststart": "running", "poststop": "stopped"} {
		var st state
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || json.Unmarshal(data, &st) != nil || st.ID != "hk" || st.Status != status {
			t.Errorf("%s hook saw %q (%v), want the state of hk, %s", name, data, err, status)
		}
	}

	// A failing prestart hook fails create and leaves nothing behind.
	failing := e.bundle([]string{"/bin/true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	})
	e.fails("createRuntime hook", "create", "--bundle", failing, "hk2")
	if list := e.must("list", "--quiet"); list != "" {
		t.Errorf("after a failed hook: %q", list)
	}
}

// TestNoNewPrivileges: the spec's process.noNewPrivileges reaches init, and
// exec'd processes get it from the container's process or from
// --no-new-privs, as with runc.
func TestNoNewPrivileges(t *testing.T) {
	e := newEnv(t)
	nnp := []string{"/bin/sh", "-c", "grep NoNewPrivs: /proc/self/status"}
	procMount := specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}
	for _, want := range []bool{true, false} {
		bundle := e.bundle(nnp, func(s *specs.Spec) {
			s.Process.NoNewPrivileges = want
			s.Mounts = append(s.Mounts, procMount)
		})
		out, stderr, code := e.runsc("run", "--bundle", bundle, "nnp")
		wantOut := "NoNewPrivs:\t0\n"
		if want {
			wantOut = "NoNewPrivs:\t1\n"
		}
		if code != 0 || out != wantOut {
			t.Errorf("run with noNewPrivileges=%v: exit %d, %q (stderr %q), want %q", want, code, out, stderr, wantOut)
		}
	}
	bundle := e.bundle([]string{"/bin/sleep", "1000"}, func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Mounts = append(s.Mounts, procMount)
	})
	e.must("create", "--bundle", bundle, "x")
	e.must("start", "x")
	if out := e.must(append([]string{"exec", "x"}, nnp...)...); out != "NoNewPrivs:\t0\n" {
		t.Errorf("exec in a container without noNewPrivileges: %q", out)
	}
	if out := e.must(append([]string{"exec", "--no-new-privs", "x"}, nnp...)...); out != "NoNewPrivs:\t1\n" {
		t.Errorf("exec --no-new-privs: %q", out)
	}
	e.must("kill", "x", "KILL")
	e.must("delete", "--force", "x")
}
