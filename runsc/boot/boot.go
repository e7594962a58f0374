package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/fsimpl/host"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/platform"
	"carapace.dev/carapace/pkg/sentry/platform/ptrace"
	"carapace.dev/carapace/pkg/sentry/platform/systrap"
	unixsocket "carapace.dev/carapace/pkg/sentry/socket/unix"
	syscalls "carapace.dev/carapace/pkg/sentry/syscalls/linux"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/boot/filter"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Args is everything `runsc boot` is handed.
type Args struct {
	Conf *config.Config
	Spec *specs.Spec
	// BundleDir resolves relative paths of the spec.
	BundleDir string
	// GoferSockets are connected to the Gofer, one per
	// specutils.GoferMounts entry, in order.
	GoferSockets []*unet.Socket
	// Stdio are the host descriptors of the container's stdin, stdout and
	// stderr; the sandbox owns them from here on.
	Stdio [3]int
	// Control, for a container made by `runsc create`, is the listening
	// control socket: init is held until a start request, and exec,
	// signal, wait, ps and stats are served (lifecycle.go). Nil for
	// `runsc do`, which starts init at once.
	Control *os.File
	// Ready is written once the container is created; ExitStatus gets
	// init's wait status when it exits. Both optional.
	Ready, ExitStatus *os.File
}

// Run builds the sandbox — memory file, platform, kernel, filesystem
// tree — runs the spec's process as PID 1 and returns its wait status when
// it exits.
func Run(ctx context.Context, a *Args) (kernel.WaitStatus, error) {
	if a.Spec.Process == nil {
		return 0, errors.New("the spec has no process to run")
	}
	mf, err := pgalloc.New("carapace-memory")
	if err != nil {
		return 0, fmt.Errorf("creating the memory file: %w", err)
	}
	defer mf.Close()
	plat, err := newPlatform(a.Conf.Platform, mf)
	if err != nil {
		return 0, err
	}
	defer plat.Close()
	creds := processCredentials(a.Spec.Process)
	ctx = auth.ContextWithCredentials(ctx, creds)
	v, err := NewVFS()
	if err != nil {
		return 0, err
	}
	k, err := kernel.New(kernel.Config{
		Platform: plat, MemoryFile: mf, Syscalls: syscalls.Table(), VFS: v,
		Hostname: a.Spec.Hostname, Domainname: a.Spec.Domainname, Strace: a.Conf.Strace,
	})
	if err != nil {
		return 0, err
	}
	unixsocket.Register(k) // AF_UNIX sockets (pkg/sentry/socket/unix)
	if err := RegisterKernelFilesystems(v, k); err != nil {
		return 0, err
	}
	closeNetwork, err := setupNetwork(k, v, a.Conf.Network) // network.go
	if err != nil {
		return 0, err
	}
	defer closeNetwork()
	mntns, err := BuildMounts(ctx, v, auth.NewRoot(), &MountConfig{
		Spec: a.Spec, GoferMounts: specutils.GoferMounts(a.Spec, a.BundleDir, a.Conf.Overlay),
		GoferSockets: a.GoferSockets, Overlay: a.Conf.Overlay, MemoryFile: mf,
	})
	if err != nil {
		return 0, err
	}
	root := mntns.Root()
	defer root.DecRef(ctx)
	proc := a.Spec.Process
	fdt, term, err := stdioWithTerminal(ctx, v, root, a.Stdio, proc.Terminal) // terminal.go
	if err != nil {
		return 0, err
	}
	setConsole(ctx, v, fdt, term != nil) // console.go: /dev/console is the pty
	if term != nil {
		defer term.close(ctx) // after init's exit: its last output
	}
	filename, err := lookPath(ctx, v, creds, root, proc.Args[0], proc.Env)
	if err != nil {
		fdt.DecRef(ctx)
		return 0, err
	}
	tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{
		Filename: filename, Argv: proc.Args, Envv: proc.Env,
		Credentials: creds, FDTable: fdt, Root: root, WorkingDirectory: proc.Cwd, Umask: processUmask(proc.User),
		NoNewPrivs: proc.NoNewPrivileges,
	})
	if err != nil {
		return 0, err
	}
	if err := applySpecSeccomp(a.Spec, tg); err != nil { // seccomp.go
		return 0, err
	}
	if term != nil {
		if err := term.attach(ctx, v, tg); err != nil {
			return 0, err
		}
		term.relay(ctx)
		defer ignoreTerminalSignals()()
	} else {
		defer forwardTerminalSignals(k, a.Stdio[0])() // lifecycle.go
	}
	if err := filter.Install(filter.Options{MemoryFDs: []int{mf.FD()}, LogOnly: a.Conf.SeccompLogOnly, HostNetwork: a.Conf.Network == config.NetworkHost}); err != nil {
		return 0, err
	}
	applyRlimits(tg, proc.Rlimits)
	if a.Control != nil {
		return serveContainer(ctx, a, k, v, root, tg)
	}
	log.Infof("boot: starting %q as PID 1", filename)
	k.Start(tg)
	select {
	case <-tg.Exited():
	case <-ctx.Done():
		tg.Kill()
		<-tg.Exited()
	}
	return tg.ExitStatus(), nil
}

func newPlatform(name config.Platform, mf *pgalloc.MemoryFile) (platform.Platform, error) {
	switch name {
	case config.PlatformPtrace:
		p, err := ptrace.New(mf)
		if err != nil {
			return nil, fmt.Errorf("starting the ptrace platform: %w", err)
		}
		return p, nil
	case config.PlatformSystrap:
		// Must precede filter.Install: the stubs must not inherit it.
		p, err := systrap.New(mf)
		if err != nil {
			return nil, fmt.Errorf("starting the systrap platform: %w", err)
		}
		return p, nil
	default:
		return nil, fmt.Errorf("platform %q is not available yet; use --platform=ptrace", name)
	}
}

// credentials are the process's IDs from the spec; root keeps every
// capability, anyone else none (the spec's capability sets are not
// applied yet).
func credentials(u specs.User) *auth.Credentials {
	if u.UID == 0 {
		c := auth.NewRoot()
		c.RealGID, c.EffectiveGID, c.SavedGID, c.FilesystemGID = auth.GID(u.GID), auth.GID(u.GID), auth.GID(u.GID), auth.GID(u.GID)
		c.SetExtraGIDs(toGIDs(u.AdditionalGids))
		return c
	}
	return auth.NewUser(auth.UID(u.UID), auth.GID(u.GID), toGIDs(u.AdditionalGids))
}

func toGIDs(ids []uint32) []auth.GID {
	out := make([]auth.GID, len(ids))
	for i, g := range ids {
		out[i] = auth.GID(g)
	}
	return out
}

// importStdio makes the host stdio descriptors the process's 0, 1 and 2.
func importStdio(ctx context.Context, v *vfs.VirtualFilesystem, stdio [3]int) (*kernel.FDTable, error) {
	hfs := host.NewFilesystem(v)
	defer hfs.Release(ctx)
	fdt := kernel.NewFDTable()
	for i, hostFD := range stdio {
		if hostFD < 0 {
			continue // not given, or a terminal the caller installs
		}
		fd, err := hfs.ImportFD(ctx, hostFD, host.ImportOptions{})
		if err != nil {
			fdt.DecRef(ctx)
			return nil, fmt.Errorf("importing stdio fd %d: %w", i, err)
		}
		if _, err := fdt.NewFD(int32(i), 1024, fd, kernel.FDFlags{}); err != nil {
			fd.DecRef(ctx)
			fdt.DecRef(ctx)
			return nil, fmt.Errorf("installing stdio fd %d: %w", i, err)
		}
		fd.DecRef(ctx)
	}
	return fdt, nil
}

// lookPath finds name as execvp(3) does: a name with a slash is used as
// is; otherwise the first executable match in the process's PATH.
func lookPath(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, name)
		f, err := kernel.OpenExecutable(ctx, v, creds, &vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinalSymlink: true})
		if err == nil {
			if r, ok := f.(interface{ DecRef(context.Context) }); ok {
				r.DecRef(ctx)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: executable not found in $PATH", name)
}
