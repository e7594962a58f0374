package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Native runs workloads directly on the host.
type Native struct{}

// Name implements Runtime.
func (Native) Name() string { return "native" }

// Run implements Runtime.
func (Native) Run(ctx context.Context, w Workload) (float64, error) {
	switch w.Kind {
	case Memory:
		args := w.Command()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		time.Sleep(idleSettle)
		return pssKiB([]int{cmd.Process.Pid})
	default:
		args := w.Command()
		return timeCommand(ctx, w.Kind, exec.CommandContext(ctx, args[0], args[1:]...))
	}
}

// idleSettle is how long an idle container is left before its memory is read.
const idleSettle = 500 * time.Millisecond

// timeCommand runs cmd and returns its figure: for Micro workloads the
// ns/op it printed, for Macro ones its wall time in ms.
func timeCommand(ctx context.Context, kind Kind, cmd *exec.Cmd) (float64, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A workload that leaves a process holding its output must not hang
	// the harness after it is killed.
	cmd.WaitDelay = 5 * time.Second
	if kind == Macro {
		cmd.Stdout = nil // discarded; a workload's output is not measured
	}
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return 0, commandError(ctx, err, stderr.String())
	}
	if kind == Macro {
		return float64(elapsed.Microseconds()) / 1000, nil
	}
	return parseMicro(stdout.Bytes())
}

func parseMicro(out []byte) (float64, error) {
	// Runtimes may print their own lines; the workload's is the last JSON one.
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if bytes.HasPrefix(bytes.TrimSpace(sc.Bytes()), []byte("{")) {
			last = append(last[:0], sc.Bytes()...)
		}
	}
	var r struct {
		NsPerOp float64 `json:"ns_per_op"`
	}
	if err := json.Unmarshal(last, &r); err != nil || r.NsPerOp <= 0 {
		return 0, errorf("no result in workload output %q", strings.TrimSpace(string(out)))
	}
	return r.NsPerOp, nil
}

// commandError condenses a failed run into one line: the last line of its
// stderr, or how it ended.
func commandError(ctx context.Context, err error, stderr string) error {
	if ctx.Err() != nil {
		return errorf("timed out")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	msg := strings.TrimSpace(lines[len(lines)-1])
	// runc logs errors as logfmt: keep just the message.
	if m := runcMessage.FindStringSubmatch(msg); m != nil {
		msg = strings.ReplaceAll(m[1], `\"`, `"`)
	}
	if msg != "" {
		return errorf("%s", msg)
	}
	return err
}

var runcMessage = regexp.MustCompile(`msg="((?:[^"\\]|\\.)*)"`)

// pssKiB sums the proportional set size of the given processes.
func pssKiB(pids []int) (float64, error) {
	total := 0.0
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			return 0, errorf("reading memory of pid %d: %w", pid, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				v, _ := strconv.ParseFloat(f[1], 64)
				total += v
			}
		}
	}
	return total, nil
}

// Bundle is an OCI bundle whose rootfs is an overlay of the host's root
// filesystem, so runc (and runsc run) see exactly the binaries and files
// the native runs use; writes go to a throw-away upper layer.
type Bundle struct {
	Dir  string
	Env  []string // the harness's environment, given to every container process
	n    atomic.Int64
	runc string
}

// NewBundle mounts the overlay under dir (which must be on the root
// filesystem, so the overlay shows it too). Close unmounts it.
func NewBundle(dir string) (*Bundle, error) {
	b := &Bundle{Dir: dir, Env: os.Environ()}
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := syscall.Mount("overlay", filepath.Join(dir, "rootfs"), "overlay", 0, opts); err != nil {
		return nil, errorf("mounting the bundle's overlay rootfs (needs root): %w", err)
	}
	return b, nil
}

// Close unmounts the overlay and removes the bundle.
func (b *Bundle) Close() error {
	if err := syscall.Unmount(filepath.Join(b.Dir, "rootfs"), syscall.MNT_DETACH); err != nil {
		return err
	}
	return os.RemoveAll(b.Dir)
}

// writeSpec writes config.json for args and returns a fresh container id.
// The container shares the host's network namespace: runc does not bring
// up loopback in a new one, and the loopback workloads need it.
func (b *Bundle) writeSpec(args []string) (string, error) {
	cwd, _ := os.Getwd()
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"user": map[string]int{"uid": 0, "gid": 0},
			"args": args, "env": b.Env, "cwd": cwd,
		},
		"root":     map[string]any{"path": "rootfs"},
		"hostname": "bench",
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
			{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "mode=755"}},
			{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666"}},
			{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": []string{"nosuid", "nodev", "mode=1777"}},
			{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		"linux": map[string]any{
			"namespaces": []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}},
		},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf("bench-%d-%d", os.Getpid(), b.n.Add(1)), nil
}

// Runc runs workloads as runc containers on a Bundle.
type Runc struct {
	Bundle *Bundle
	Binary string // "runc" by default
}

// Name implements Runtime.
func (r *Runc) Name() string { return "runc" }

func (r *Runc) binary() string {
	if r.Binary == "" {
		return "runc"
	}
	return r.Binary
}

// Run implements Runtime.
func (r *Runc) Run(ctx context.Context, w Workload) (float64, error) {
	id, err := r.Bundle.writeSpec(w.Command())
	if err != nil {
		return 0, err
	}
	defer exec.Command(r.binary(), "delete", "--force", id).Run()
	if w.Kind == Memory {
		return r.idlePSS(ctx, id)
	}
	return timeCommand(ctx, w.Kind, exec.CommandContext(ctx, r.binary(), "run", "--bundle", r.Bundle.Dir, id))
}

func (r *Runc) idlePSS(ctx context.Context, id string) (float64, error) {
	// A detached container keeps runc's stdio: a pipe would never reach
	// end of file, so the output goes to a file.
	out, err := os.CreateTemp("", "runc-detached")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	run := exec.CommandContext(ctx, r.binary(), "run", "--detach", "--bundle", r.Bundle.Dir, id)
	run.Stdout, run.Stderr = out, out
	if err := run.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return 0, commandError(ctx, err, string(msg))
	}
	state, err := exec.CommandContext(ctx, r.binary(), "state", id).Output()
	if err != nil {
		return 0, errorf("runc state: %w", err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(state, &st); err != nil || st.Pid <= 0 {
		return 0, errorf("runc state gave no pid: %s", state)
	}
	time.Sleep(idleSettle)
	return pssKiB([]int{st.Pid})
}

// Runsc runs workloads in the Carapace sandbox: `runsc do` on the host root
// or, for Bundle workloads, `runsc run` on the bundle.
type Runsc struct {
	Binary   string
	Platform string
	Network  string
	Bundle   *Bundle
	Root     string // --root for `runsc run`'s state
}

// Name implements Runtime.
func (r *Runsc) Name() string { return "runsc-" + r.Platform }

func (r *Runsc) flags() []string {
	return []string{"--platform=" + r.Platform, "--network=" + r.Network, "--root=" + r.Root}
}

// Run implements Runtime.
func (r *Runsc) Run(ctx context.Context, w Workload) (float64, error) {
	if w.Kind == Memory {
		return r.idlePSS(ctx, w)
	}
	if w.Bundle {
		id, err := r.Bundle.writeSpec(w.Command())
		if err != nil {
			return 0, err
		}
		defer exec.Command(r.Binary, append(r.flags(), "delete", "--force", id)...).Run()
		cmd := exec.CommandContext(ctx, r.Binary, append(r.flags(), "run", "--bundle", r.Bundle.Dir, id)...)
		return timeCommand(ctx, w.Kind, cmd)
	}
	cmd := exec.CommandContext(ctx, r.Binary, append(append(r.flags(), "do"), w.Command()...)...)
	return timeCommand(ctx, w.Kind, cmd)
}

// idlePSS starts the workload as a detached container (`runsc run
// --detach`) and measures the proportional set size of every host process
// of its sandbox: Sentry, Gofer and platform stubs.
func (r *Runsc) idlePSS(ctx context.Context, w Workload) (float64, error) {
	id, err := r.Bundle.writeSpec(w.Command())
	if err != nil {
		return 0, err
	}
	defer exec.Command(r.Binary, append(r.flags(), "delete", "--force", id)...).Run()
	// The detached sandbox keeps runsc's stdio: a file, not a pipe.
	out, err := os.CreateTemp("", "runsc-detached")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	run := exec.CommandContext(ctx, r.Binary, append(r.flags(), "run", "--detach", "--bundle", r.Bundle.Dir, id)...)
	run.Stdout, run.Stderr = out, out
	if err := run.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return 0, commandError(ctx, err, string(msg))
	}
	time.Sleep(idleSettle)
	pids := sandboxPids(r.Root)
	if len(pids) == 0 {
		return 0, errorf("no sandbox process found for container %s", id)
	}
	return pssKiB(pids)
}

// sandboxPids lists the live host processes of sandboxes under the runsc
// root (each carries --root=ROOT on its command line).
func sandboxPids(root string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), "\x00--root="+root+"\x00") {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}
