package e2e

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerd is a private Docker daemon: its own data root, exec root, pid
// file and socket in a temporary directory, with runsc installed as a
// runtime by `runsc install`.
type dockerd struct {
	t    *testing.T
	dir  string
	cmd  *exec.Cmd
	host string
	// newPaths are host paths dockerd creates outside its roots
	// whatever the flags say, that did not exist before it started.
	newPaths []string
}

// dockerdHostPaths are what dockerd makes outside --data-root and
// --exec-root: its identity key and the plugin socket directory.
var dockerdHostPaths = []string{"/etc/docker/key.json", "/run/docker/plugins", "/run/docker"}

// startDockerd starts the daemon, or skips the test saying why it cannot.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dockerd needs root")
	}
	for _, bin := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (Debian: docker.io)", bin)
		}
	}
	// A short path: the daemon's sockets must fit sun_path.
	dir, err := os.MkdirTemp("", "dk")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{t: t, dir: dir, host: "unix://" + filepath.Join(dir, "d.sock")}
	cfg := filepath.Join(dir, "daemon.json")
	if out, err := exec.Command(runscBin, "install", "--config-file", cfg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("runsc install: %v: %s", err, out)
	}
	logFile, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	d.cmd = exec.Command("dockerd",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", d.host, "--config-file", cfg,
		"--iptables=false", "--ip6tables=false", "--bridge=none")
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	for _, p := range dockerdHostPaths {
		if _, err := os.Lstat(p); err != nil {
			d.newPaths = append(d.newPaths, p)
		}
	}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Skipf("dockerd does not start here: %v", err)
	}
	t.Cleanup(d.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, _, code := d.docker(nil, "version"); code == 0 {
			return d
		}
		if d.cmd.ProcessState != nil || time.Now().After(deadline) || syscall.Kill(d.cmd.Process.Pid, 0) != nil {
			log, _ := os.ReadFile(logFile.Name())
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			t.Skipf("dockerd did not come up in this environment; last log line: %s", lines[len(lines)-1])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// docker runs the client against this daemon.
func (d *dockerd) docker(stdin []byte, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", d.host}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return stdout.String(), stderr.String(), code
}

// stop removes every container, stops the daemon and its containerd,
// and removes its directory.
func (d *dockerd) stop() {
	if ids, _, _ := d.docker(nil, "ps", "-aq"); strings.TrimSpace(ids) != "" {
		d.docker(nil, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	// Whatever dockerd left mounted under its roots goes before the files.
	if data, err := os.ReadFile("/proc/self/mounts"); err == nil {
		lines := strings.Split(string(data), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], d.dir+"/") {
				syscall.Unmount(f[1], syscall.MNT_DETACH)
			}
		}
	}
	os.RemoveAll(d.dir)
	for _, p := range d.newPaths {
		os.Remove(p) // only if empty, for directories
	}
}

// importBusybox makes an image from a tree holding only a static busybox.
func (d *dockerd) importBusybox(name string) {
	d.t.Helper()
	f, err := elf.Open("/bin/busybox")
	if err != nil {
		d.t.Skipf("no /bin/busybox (Debian: busybox-static): %v", err)
	}
	static := true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			static = false
		}
	}
	f.Close()
	if !static {
		d.t.Skip("/bin/busybox is not static (Debian: busybox-static)")
	}
	root := filepath.Join(d.dir, "rootfs")
	for _, dir := range []string{"bin", "etc", "tmp", "proc", "dev", "sys"} {
		os.MkdirAll(filepath.Join(root, dir), 0o755)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		d.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755)
	for _, applet := range []string{"sh", "echo", "cat", "sleep", "hostname", "id", "ls", "true"} {
		os.Symlink("busybox", filepath.Join(root, "bin", applet))
	}
	tarball, err := exec.Command("tar", "-C", root, "-c", ".").Output()
	if err != nil {
		d.t.Fatalf("tar: %v", err)
	}
	if _, stderr, code := d.docker(tarball, "import", "-", name); code != 0 {
		d.t.Fatalf("docker import: %s", stderr)
	}
}

func TestDocker(t *testing.T) {
	d := startDockerd(t)
	d.importBusybox("carapace-busybox")

	out, stderr, code := d.docker(nil, "run", "--rm", "--runtime=runsc", "--hostname=dockerbox", "carapace-busybox",
		"/bin/sh", "-c", "echo hello from runsc; hostname; exit 3")
	if code != 3 || out != "hello from runsc\ndockerbox\n" {
		t.Fatalf("docker run: exit %d, stdout %q, stderr %q; want 3 and the greeting", code, out, stderr)
	}

	if _, stderr, code := d.docker(nil, "run", "-d", "--runtime=runsc", "--name=svc", "carapace-busybox", "/bin/sleep", "1000"); code != 0 {
		t.Fatalf("docker run -d: %s", stderr)
	}
	if out, stderr, code := d.docker(nil, "exec", "svc", "/bin/sh", "-c", "echo inside; exit 5"); code != 5 || out != "inside\n" {
		t.Errorf("docker exec: exit %d, %q, %q", code, out, stderr)
	}
	if out, _, _ := d.docker(nil, "inspect", "-f", "{{.State.Status}}", "svc"); strings.TrimSpace(out) != "running" {
		t.Errorf("status after exec: %q", out)
	}
	// sleep as PID 1 ignores SIGTERM only if it handles it; docker stop
	// falls back to SIGKILL after the timeout either way.
	if _, stderr, code := d.docker(nil, "stop", "-t", "2", "svc"); code != 0 {
		t.Errorf("docker stop: %s", stderr)
	}
	if out, _, _ := d.docker(nil, "inspect", "-f", "{{.State.Status}}", "svc"); strings.TrimSpace(out) != "exited" {
		t.Errorf("status after stop: %q", out)
	}
	if _, stderr, code := d.docker(nil, "rm", "svc"); code != 0 {
		t.Errorf("docker rm: %s", stderr)
	}

	// Resource limits reach the sandbox's host cgroup, and docker update
	// (runsc update --resources -) changes them.
	if _, stderr, code := d.docker(nil, "run", "-d", "--runtime=runsc", "--name=lim", "--memory=64m",
		"--pids-limit=77", "carapace-busybox", "/bin/sleep", "1000"); code != 0 {
		t.Fatalf("docker run --memory: %s", stderr)
	}
	pid, _, _ := d.docker(nil, "inspect", "-f", "{{.State.Pid}}", "lim")
	memoryFile := func(v1, v2 string) string {
		t.Helper()
		data, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			var p string
			switch {
			case f[1] == "memory":
				p = filepath.Join("/sys/fs/cgroup/memory", f[2], v1)
			case f[0] == "0" && f[1] == "" && fileExists("/sys/fs/cgroup/cgroup.controllers"):
				p = filepath.Join("/sys/fs/cgroup", f[2], v2)
			default:
				continue
			}
			v, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
		t.Fatalf("the sandbox has no memory cgroup: %s", data)
		return ""
	}
	if got := memoryFile("memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("memory limit of the sandbox: %q, want 64 MiB", got)
	}
	if _, stderr, code := d.docker(nil, "update", "--memory=128m", "--memory-swap=256m", "lim"); code != 0 {
		t.Errorf("docker update: %s", stderr)
	} else if got := memoryFile("memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("memory limit after docker update: %q, want 128 MiB", got)
	}
	// Another container joins this one's network namespace.
	if out, stderr, code := d.docker(nil, "run", "--rm", "--runtime=runsc", "--network=container:lim", "carapace-busybox",
		"/bin/echo", "joined"); code != 0 || out != "joined\n" {
		t.Errorf("docker run --network=container: exit %d, %q, %q", code, out, stderr)
	}
	if _, stderr, code := d.docker(nil, "rm", "-f", "lim"); code != 0 {
		t.Errorf("docker rm -f: %s", stderr)
	}
	t.Run("bridge network", func(t *testing.T) { checkDockerBridge(t, d) }) // network_test.go
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
