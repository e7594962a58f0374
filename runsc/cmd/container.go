package cmd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/container"
	"carapace.dev/carapace/runsc/control"
	"carapace.dev/carapace/runsc/sandbox"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Helpers shared by the lifecycle commands (create, start, run, exec,
// kill, delete, state, list, ps, events, wait, pause, resume).

func storeOf(conf *config.Config) container.Store { return container.Store{Root: conf.RootDir} }

// stateJSON is a container's state as runc prints it (`state`, `list
// --format json`): the OCI state plus rootfs, creation time and owner.
type stateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func toStateJSON(st *container.State) stateJSON {
	oci := st.OCIState()
	return stateJSON{
		OCIVersion: oci.Version, ID: oci.ID, Pid: oci.Pid, Status: string(oci.Status),
		Bundle: oci.Bundle, Rootfs: st.Rootfs, Created: st.Created, Owner: st.Owner,
		Annotations: oci.Annotations,
	}
}

// containerID takes the one container ID argument of a command.
func containerID(args []string, cmd string) (string, error) {
	if len(args) < 1 || args[0] == "" {
		return "", fmt.Errorf("%s: a container id is required", cmd)
	}
	return args[0], nil
}

// parseSignal accepts a signal as runc kill does: a number, or a name
// with or without "SIG", in any case.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// waitStatusCode turns a wait status into a shell's exit code.
func waitStatusCode(ws uint32) int {
	w := unix.WaitStatus(ws)
	if w.Signaled() {
		return 128 + int(w.Signal())
	}
	return w.ExitStatus()
}

// writePidFile writes pid to path atomically, as runc does (no newline).
func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("writing the pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the pid file: %w", err)
	}
	return nil
}

// openPty makes a host pseudo-terminal pair.
func openPty() (master, replica *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a pty: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("naming the pty: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	r, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	return m, r, nil
}

// setConsoleSize applies the spec's console size to a pty.
func setConsoleSize(f *os.File, size *specs.Box) {
	if size == nil {
		return
	}
	unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
}

// sendConsole hands the pty master to whoever listens on the console
// socket, as runc does: one message naming the pty, with the descriptor.
func sendConsole(socketPath string, master *os.File) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socketPath}); err != nil {
		return fmt.Errorf("connecting to the console socket %s: %w", socketPath, err)
	}
	if err := unix.Sendmsg(fd, []byte(master.Name()), unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("sending the console to %s: %w", socketPath, err)
	}
	return nil
}

// createOptions are create's and run's flags.
type createOptions struct {
	bundle        string
	pidFile       string
	consoleSocket string
	// relayTTY (run in the foreground) keeps the pty master for the
	// caller to relay instead of sending it over a console socket.
	relayTTY bool
}

// created is a container just made by createContainer.
type created struct {
	state  *container.State
	sentry *sandbox.Sentry
	// master is the pty master with relayTTY, else nil.
	master *os.File
}

// createContainer does `runsc create`: it records the container, starts
// its sandbox with init held, and returns once it is ready. On failure
// nothing is left behind.
func createContainer(conf *config.Config, id string, o createOptions) (_ *created, retErr error) {
	if err := container.ValidateID(id); err != nil {
		return nil, err
	}
	bundle := o.bundle
	if bundle == "" {
		bundle = "."
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	spec, err := specutils.Load(bundle)
	if err != nil {
		return nil, err
	}
	specutils.WarnIgnored(spec)
	if spec.Process == nil {
		return nil, errors.New("the spec has no process to run")
	}
	if err := sandbox.CheckRootless(conf, spec); err != nil {
		return nil, err
	}
	if spec.Process.Terminal && o.consoleSocket == "" && !o.relayTTY {
		return nil, errors.New("cannot allocate tty if runc will detach without setting console socket")
	}
	if !spec.Process.Terminal && o.consoleSocket != "" {
		return nil, errors.New("cannot use console socket if runc will not detach or allocate tty")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	st := &container.State{
		ID: id, Status: container.Creating, Bundle: bundle, Rootfs: rootfs,
		Created: time.Now().UTC(), Owner: ownerName(), Annotations: spec.Annotations,
	}
	store := storeOf(conf)
	unlock, err := store.Create(st)
	if err != nil {
		if errors.Is(err, container.ErrExist) {
			return nil, fmt.Errorf("container with id exists: %s", id)
		}
		return nil, err
	}
	defer unlock()
	defer func() {
		if retErr != nil {
			store.Remove(id)
		}
	}()

	stateDir := store.StateDir(id)
	ln, err := control.Listen(stateDir)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	exitFile, err := os.OpenFile(store.ExitStatusPath(id), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the exit status file: %w", err)
	}
	defer exitFile.Close()

	stdio := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var relayed *os.File
	if spec.Process.Terminal {
		master, replica, err := openPty()
		if err != nil {
			return nil, err
		}
		defer replica.Close()
		setConsoleSize(master, spec.Process.ConsoleSize)
		if o.relayTTY {
			// The relayed terminal starts with the user's size: the
			// Sentry gives it to the container's pty as it makes it.
			if spec.Process.ConsoleSize == nil {
				copyWinsize(os.Stdin, master)
			}
			relayed = master
			defer func() {
				if retErr != nil {
					master.Close()
				}
			}()
		} else {
			defer master.Close()
			if err := sendConsole(o.consoleSocket, master); err != nil {
				return nil, err
			}
		}
		stdio = [3]*os.File{replica, replica, replica}
	}

	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the runsc binary: %w", err)
	}
	cg, err := sandboxCgroup(conf, id, spec)
	if err != nil {
		return nil, err
	}
	if cg != nil {
		defer func() {
			if retErr != nil {
				cg.Remove()
			}
		}()
		// The Gofer and the Sentry (and its stubs) are born in the
		// cgroup, charged there from their first page.
		st.Cgroup = cg.Dirs
	}
	g, s, err := startInCgroup(cg, func() (*sandbox.Gofer, *sandbox.Sentry, error) {
		return sandbox.StartContainer(self, conf, spec, bundle, sandbox.ContainerOptions{
			Stdio: stdio, Control: ln, ExitStatus: exitFile, Detach: true,
		})
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*created, error) {
		s.Kill()
		s.Wait()
		g.Kill()
		return nil, err
	}
	start, err := container.ProcessStartTime(s.Pid())
	if err != nil {
		return fail(fmt.Errorf("the sandbox died while starting: %w", err))
	}
	st.Status, st.SentryPid, st.SentryStart, st.GoferPid = container.Created, s.Pid(), start, g.Pid()
	if err := store.Save(st); err != nil {
		return fail(err)
	}
	if h := spec.Hooks; h != nil {
		if len(h.CreateContainer) > 0 || len(h.StartContainer) > 0 {
			log.Warningf("createContainer and startContainer hooks run inside the container in runc; runsc does not run them")
		}
		if err := runHooks("prestart", h.Prestart, st); err != nil { // deprecated by OCI, still used by Docker
			return fail(err)
		}
		if err := runHooks("createRuntime", h.CreateRuntime, st); err != nil {
			return fail(err)
		}
	}
	if err := writePidFile(o.pidFile, s.Pid()); err != nil {
		return fail(err)
	}
	return &created{state: st, sentry: s, master: relayed}, nil
}

func ownerName() string {
	if u := os.Getenv("USER"); u != "" && os.Getuid() != 0 {
		return u
	}
	if os.Getuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Getuid())
}

// destroyContainer kills a container's sandbox (if it still runs) and
// removes its cgroup and record. The caller holds its lock.
func destroyContainer(store container.Store, st *container.State) error {
	cg := cgroupOf(st)
	if cg != nil {
		// A frozen process cannot die.
		cg.Thaw()
	}
	if container.Alive(st.SentryPid, st.SentryStart) {
		unix.Kill(st.SentryPid, unix.SIGKILL)
		for i := 0; i < 2000 && container.Alive(st.SentryPid, st.SentryStart); i++ {
			time.Sleep(time.Millisecond)
		}
	}
	// The Gofer exits once the Sentry's sockets close; if it is still
	// there (the Sentry never connected), it goes too.
	if st.GoferPid > 0 && processIsRunsc(st.GoferPid) {
		unix.Kill(st.GoferPid, unix.SIGKILL)
	}
	if cg != nil {
		if err := cg.Remove(); err != nil {
			return err
		}
	}
	// Poststop hooks run once the container is gone; like runc, a
	// failing one is reported and the deletion goes on.
	if spec, err := specutils.Load(st.Bundle); err == nil && spec.Hooks != nil {
		st.Status = container.Stopped
		if err := runHooks("poststop", spec.Hooks.Poststop, st); err != nil {
			log.Warningf("%v", err)
		}
	}
	return store.Remove(st.ID)
}

// processIsRunsc reports whether pid is a runsc gofer still running.
func processIsRunsc(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.HasPrefix(string(data), "runsc-gofer\x00")
}

// cgroupOf is the container's cgroup, or nil.
func cgroupOf(st *container.State) *sandbox.Cgroup {
	if len(st.Cgroup) == 0 {
		return nil
	}
	return &sandbox.Cgroup{Dirs: st.Cgroup}
}

// startInCgroup runs start with this process inside cg (when not nil),
// so that the Gofer and the Sentry (and its stubs) are born there and
// charged there from their first page; the hooks and the rest of `run`
// stay outside.
func startInCgroup(cg *sandbox.Cgroup, start func() (*sandbox.Gofer, *sandbox.Sentry, error)) (*sandbox.Gofer, *sandbox.Sentry, error) {
	if cg == nil {
		return start()
	}
	leave, err := cg.EnterSelf()
	if err != nil {
		return nil, nil, err
	}
	g, s, err := start()
	if lerr := leave(); lerr != nil && err == nil {
		s.Kill()
		s.Wait()
		g.Kill()
		return nil, nil, fmt.Errorf("leaving the container's cgroup: %w", lerr)
	}
	return g, s, err
}

// sandboxCgroup makes the cgroup a new container's processes are born in
// when its spec asks for one (a cgroupsPath or resource limits), with the
// limits applied; else it returns nil and the cgroup is made at the first
// pause. The caller removes it if the create fails.
func sandboxCgroup(conf *config.Config, id string, spec *specs.Spec) (*sandbox.Cgroup, error) {
	if spec.Linux == nil || (spec.Linux.CgroupsPath == "" && !sandbox.HasResources(spec.Linux.Resources)) {
		return nil, nil
	}
	path, err := sandbox.CgroupPath(id, spec.Linux.CgroupsPath, conf.SystemdCgroup)
	if err != nil {
		return nil, err
	}
	cg, err := sandbox.NewCgroup(path)
	if err != nil {
		return nil, err
	}
	if err := cg.Create(); err != nil {
		cg.Remove()
		return rootlessWithoutCgroup(conf, spec, err)
	}
	if err := cg.Apply(spec.Linux.Resources); err != nil {
		cg.Remove()
		if conf.Rootless && sandbox.CgroupDenied(err) {
			return rootlessWithoutCgroup(conf, spec, err)
		}
		return nil, fmt.Errorf("linux.resources: %w", err)
	}
	if conf.Rootless {
		// A delegated cgroup may still refuse this user's processes
		// (cgroup v2 also checks the common ancestor's cgroup.procs).
		leave, err := cg.EnterSelf()
		if err != nil {
			cg.Remove()
			return rootlessWithoutCgroup(conf, spec, err)
		}
		if err := leave(); err != nil {
			cg.Remove()
			return nil, fmt.Errorf("leaving the container's cgroup: %w", err)
		}
	}
	return cg, nil
}

// rootlessWithoutCgroup decides what a cgroup error means: fatal with
// host root; with --rootless, when the user may not write the cgroup tree
// (no delegated cgroup), the container runs without one, as runc's
// rootless mode does, and the user is told its limits are not enforced.
func rootlessWithoutCgroup(conf *config.Config, spec *specs.Spec, err error) (*sandbox.Cgroup, error) {
	if !conf.Rootless || !sandbox.CgroupDenied(err) {
		return nil, err
	}
	if sandbox.HasResources(spec.Linux.Resources) {
		log.Warningf("--rootless: no writable cgroup (%v): the spec's linux.resources (memory, pids, cpu limits) are NOT enforced; delegate a cgroup to this user to enforce them", err)
	} else {
		log.Warningf("--rootless: no writable cgroup (%v): the container runs in runsc's own cgroup, not linux.cgroupsPath", err)
	}
	return nil, nil
}

// printJSON writes v indented, as runc prints state.
func printJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// loadForAction loads a container for a command that acts on it.
func loadForAction(conf *config.Config, id string) (*container.State, error) {
	st, err := storeOf(conf).Load(id)
	if errors.Is(err, container.ErrNotExist) {
		return nil, fmt.Errorf("container %s does not exist", id)
	}
	return st, err
}

// rootlessDefaults gives a --rootless invocation the defaults a runtime
// without host root needs, for the settings the command line left alone:
// --network=none rather than sandbox (whose veth needs host root;
// --network=host works unprivileged and an explicit sandbox is refused
// with a clear error when the sandbox starts), and the state root under
// $XDG_RUNTIME_DIR, as runc does, rather than /var/run. Every command
// applies it (configFrom), so create, start and delete agree.
func rootlessDefaults(conf *config.Config, cmdline []string) {
	if !conf.Rootless {
		return
	}
	given := globalFlagsGiven(cmdline)
	if !given["network"] && conf.Network == config.NetworkSandbox {
		conf.Network = config.NetworkNone
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" && !given["root"] && os.Geteuid() != 0 {
		conf.RootDir = filepath.Join(dir, "runsc")
	}
}

// globalFlagsGiven names the global flags cmdline (the arguments before
// the subcommand and its own) sets explicitly.
func globalFlagsGiven(cmdline []string) map[string]bool {
	fs := flag.NewFlagSet("runsc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.RegisterFlags(fs)
	fs.Bool("version", false, "")
	given := map[string]bool{}
	// A parse error was already reported by the real parse.
	fs.Parse(cmdline)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
}
