package cmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/specutils"
	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec implements `runsc exec`: run a new process in a running container.
type Exec struct {
	process       string
	cwd           string
	env           stringList
	user          string
	caps          stringList
	tty           bool
	noNewPrivs    bool
	detach        bool
	pidFile       string
	consoleSocket string
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Name implements subcommands.Command.
func (*Exec) Name() string { return "exec" }

// Synopsis implements subcommands.Command.
func (*Exec) Synopsis() string { return "run a new process inside a running container" }

// Usage implements subcommands.Command.
func (*Exec) Usage() string {
	return `exec [flags] <container-id> [COMMAND [ARG...]]
	Runs COMMAND (or the process described by --process, an OCI process
	JSON file) in the running container, with the container's
	environment, working directory, user and capabilities unless flags say
	otherwise. Exits with the process's exit code (128+n if signal n
	killed it). With --detach it returns at once; the pid file then names
	a runsc process that waits for the new process and exits with its
	code, for callers that reap it as runc's.
`
}

// SetFlags implements subcommands.Command.
func (e *Exec) SetFlags(f *flag.FlagSet) {
	f.StringVar(&e.process, "process", "", "path to a process.json (OCI process) describing the process.")
	f.StringVar(&e.process, "p", "", "short for --process.")
	f.StringVar(&e.cwd, "cwd", "", "working directory inside the container.")
	f.Var(&e.env, "env", "set an environment variable (KEY=VALUE); repeatable.")
	f.Var(&e.env, "e", "short for --env.")
	f.StringVar(&e.user, "user", "", "UID[:GID] to run as.")
	f.StringVar(&e.user, "u", "", "short for --user.")
	f.Var(&e.caps, "cap", "add a capability (CAP_…); repeatable.")
	f.BoolVar(&e.tty, "tty", false, "give the process a pseudo-terminal.")
	f.BoolVar(&e.noNewPrivs, "no-new-privs", false, "set no_new_privs for the process (set-ID bits are then ignored).")
	f.BoolVar(&e.tty, "t", false, "short for --tty.")
	f.BoolVar(&e.detach, "detach", false, "return once the process is started.")
	f.BoolVar(&e.detach, "d", false, "short for --detach.")
	f.StringVar(&e.pidFile, "pid-file", "", "file to write a pid that exits with the process (see above).")
	f.StringVar(&e.consoleSocket, "console-socket", "", "unix socket to send the pty master to, with --tty.")
}

// Execute implements subcommands.Command.
func (e *Exec) Execute(_ context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	conf := configFrom(args)
	if f.NArg() < 1 {
		return usageError("exec: a container id is required")
	}
	id := f.Arg(0)
	st, err := loadForAction(conf, id)
	if err != nil {
		return Failure("exec: %v", err)
	}
	switch st.Status {
	case container.Running, container.Created:
	case container.Stopped:
		return Failure("exec: cannot exec in a stopped container")
	default:
		return Failure("exec: cannot exec in a %s container", st.Status)
	}
	ea, tty, err := e.processArgs(st, f.Args()[1:])
	if err != nil {
		return Failure("exec: %v", err)
	}
	if tty && e.consoleSocket == "" && e.detach {
		return Failure("exec: cannot allocate tty if runc will detach without setting console socket")
	}
	stdio := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var master *os.File
	if tty {
		m, replica, err := openPty()
		if err != nil {
			return Failure("exec: %v", err)
		}
		defer m.Close()
		defer replica.Close()
		if e.consoleSocket != "" {
			if err := sendConsole(e.consoleSocket, m); err != nil {
				return Failure("exec: %v", err)
			}
		} else {
			master = m
			// The relayed terminal starts with the caller's size.
			if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
				unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
		stdio = [3]*os.File{replica, replica, replica}
		ea.Terminal = true
	}
	stateDir := storeOf(conf).StateDir(id)
	fds := []int{int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd())}
	resp, err := control.Call(stateDir, &control.Request{Method: control.MethodExec, Exec: ea}, fds)
	if err == control.ErrNoSandbox {
		return Failure("exec: cannot exec in a stopped container")
	}
	if err != nil {
		return Failure("exec: %v", err)
	}
	pid := resp.PID
	if tty {
		// The Sentry holds the replica now; with ours closed, reading the
		// master ends (EIO) once the process's side is gone.
		stdio[0].Close()
	}
	if e.detach {
		waiter, err := startExecWaiter(conf, id, pid)
		if err != nil {
			return Failure("exec: %v", err)
		}
		if err := writePidFile(e.pidFile, waiter); err != nil {
			return Failure("exec: %v", err)
		}
		return subcommands.ExitSuccess
	}
	if err := writePidFile(e.pidFile, os.Getpid()); err != nil {
		return Failure("exec: %v", err)
	}
	var relay *ttyRelay
	if master != nil {
		// The process's terminal is a sandbox pty the Sentry relays to
		// the host pty (as for run and do, do_tty.go).
		relay = relayMaster(master)
		relay.run(os.Stdin, terminalOutput(os.Stdin, os.Stdout, os.Stderr), nil)
		defer relay.close()
	}
	code, err := waitProcess(conf, id, pid)
	if err != nil {
		return Failure("exec: %v", err)
	}
	if relay != nil {
		// Let the last output through: the Sentry lets go of the pty
		// once it has passed it on; a child that kept the terminal open
		// must not hold exec forever.
		relay.waitClosed(2 * time.Second)
	}
	return subcommands.ExitStatus(code)
}

// processArgs builds the exec request from --process or the flags, with
// the container's own process as the defaults.
func (e *Exec) processArgs(st *container.State, argv []string) (*control.ExecArgs, bool, error) {
	spec, err := specutils.Load(st.Bundle)
	if err != nil {
		return nil, false, fmt.Errorf("reading the container's spec: %w", err)
	}
	base := spec.Process
	var p specs.Process
	if e.process != "" {
		data, err := os.ReadFile(e.process)
		if err != nil {
			return nil, false, err
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, false, fmt.Errorf("parsing %s: %w", e.process, err)
		}
		if len(argv) > 0 {
			return nil, false, fmt.Errorf("a command and --process exclude each other")
		}
	} else {
		if len(argv) == 0 {
			return nil, false, fmt.Errorf("a command to run is required")
		}
		p = specs.Process{Args: argv, Env: base.Env, Cwd: base.Cwd, User: base.User, Capabilities: base.Capabilities, Terminal: e.tty,
			NoNewPrivileges: base.NoNewPrivileges || e.noNewPrivs}
		if e.cwd != "" {
			p.Cwd = e.cwd
		}
		p.Env = mergeEnv(p.Env, e.env)
		if e.user != "" {
			uid, gid, err := parseUser(e.user)
			if err != nil {
				return nil, false, err
			}
			p.User = specs.User{UID: uid, GID: gid}
		}
		if len(e.caps) > 0 {
			c := specs.LinuxCapabilities{}
			if p.Capabilities != nil {
				c = *p.Capabilities
			}
			c.Bounding = append(append([]string(nil), c.Bounding...), e.caps...)
			c.Effective = append(append([]string(nil), c.Effective...), e.caps...)
			c.Permitted = append(append([]string(nil), c.Permitted...), e.caps...)
			p.Capabilities = &c
		}
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	ea := &control.ExecArgs{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: p.User.UID, GID: p.User.GID,
		AdditionalGids: p.User.AdditionalGids, NoNewPrivs: p.NoNewPrivileges || e.noNewPrivs,
	}
	if c := p.Capabilities; c != nil {
		ea.Capabilities = &control.Capabilities{Bounding: c.Bounding, Effective: c.Effective, Permitted: c.Permitted, Inheritable: c.Inheritable, Ambient: c.Ambient}
	}
	return ea, p.Terminal || e.tty, nil
}

// mergeEnv overrides or adds KEY=VALUE entries.
func mergeEnv(env, overrides []string) []string {
	out := append([]string(nil), env...)
	for _, o := range overrides {
		key, _, _ := strings.Cut(o, "=")
		replaced := false
		for i, e := range out {
			if k, _, _ := strings.Cut(e, "="); k == key {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// parseUser parses UID[:GID] (numbers only: the container's passwd is
// not read).
func parseUser(s string) (uint32, uint32, error) {
	u, g, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid --user %q: want numeric UID[:GID]", s)
	}
	gid := uint64(0)
	if hasGID {
		if gid, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("invalid --user %q: want numeric UID[:GID]", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}

// startExecWaiter starts `runsc wait --exit --pid=PID` in the background:
// a host process that exits with the exec'd process's code, which is
// what a caller holding exec's pid file waits for.
func startExecWaiter(conf *config.Config, id string, pid int32) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	args := append(conf.ToFlags(), "wait", "--exit", "--pid="+strconv.Itoa(int(pid)), id)
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the exec waiter: %w", err)
	}
	w := cmd.Process.Pid
	cmd.Process.Release()
	return w, nil
}
