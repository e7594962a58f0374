package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// A process with a terminal (spec process.terminal, `runsc do` typed at,
// `runsc exec --tty`) gets a pty of the sandbox's own devpts as its
// controlling terminal, so the sandbox's line discipline and job control
// (kernel/tty.go) serve it: ^C, ^Z and ^\ are characters that become
// signals to the sandbox's foreground process group. The bytes travel to
// and from the user over the host pty runsc handed the Sentry as stdio
// (its replica, put in raw mode here: the sandbox's pty does the editing):
//
//	user's terminal ⇄ runsc ⇄ host pty master ⇄ host replica ⇄ Sentry ⇄ sandbox master ⇄ sandbox replica
//
// The host master's window size (set by runsc on SIGWINCH, or by whoever
// got it over --console-socket) is carried to the sandbox's pty. The
// host replica is not the Sentry's controlling terminal (the terminal's
// SIGHUP and SIGWINCH would reach the platform's stub processes too), so
// the Sentry learns of size changes by looking at it each tick.

// winsizePoll is how often the host pty's window size is compared with
// the sandbox's.
const winsizePoll = 100 * time.Millisecond

// outputDrainLimit bounds how long passing on the sandbox's last output
// may take once the process is gone.
const outputDrainLimit = 2 * time.Second

// sandboxTerminal is one sandbox pty relayed to a host pty.
type sandboxTerminal struct {
	pts     vfs.VirtualDentry // the devpts it is in
	master  *vfs.FileDescription
	replica *vfs.FileDescription // the Sentry's own reference, dropped at close
	host    int                  // the host pty's replica (one of hostFDs)
	hostOld *unix.Termios        // its modes before raw, restored at close
	// ttyGID is the container's group "tty" from its /etc/group, which
	// the replica is given to (hasTTYGroup false: there is none).
	ttyGID      auth.GID
	hasTTYGroup bool

	// hostFDs are the host stdio descriptors the pty stands for, owned
	// (as imported stdio is) and closed with it.
	hostFDs []int

	relaying  bool
	stop      chan struct{}
	closeOnce sync.Once
	inDone    chan struct{}
	outDone   chan struct{}
}

// isHostTerminal reports whether fd is a host terminal.
func isHostTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// sameTerminal reports whether host descriptors a and b are the same
// terminal device.
func sameTerminal(a, b int) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(a, &sa) != nil || unix.Fstat(b, &sb) != nil {
		return false
	}
	return sa.Mode&unix.S_IFMT == unix.S_IFCHR && sb.Mode&unix.S_IFMT == unix.S_IFCHR && sa.Rdev == sb.Rdev
}

// ptyIoctl calls an ioctl of a sandbox pty end from the Sentry itself,
// with arg as the argument's memory.
func ptyIoctl(ctx context.Context, fd *vfs.FileDescription, cmd uintptr, arg []byte) error {
	_, err := fd.Ioctl(ctx, &usermem.BytesIO{Bytes: arg}, unix.SYS_IOCTL, [6]uintptr{0, cmd, 0})
	return err
}

// kernelTermiosSize is the kernel's struct termios (no speeds), what
// TCGETS/TCSETS copy.
const kernelTermiosSize = 36

// openSandboxTerminal allocates a pty in the sandbox's /dev/pts and
// gives it host's modes and window size; host goes raw. Call attach once
// the process exists, then relay.
func openSandboxTerminal(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, host int) (*sandboxTerminal, error) {
	pts, err := sandboxPts(ctx, v, root)
	if err != nil {
		return nil, err
	}
	open := func(name string) (*vfs.FileDescription, error) {
		return v.OpenAt(ctx, auth.NewRoot(), &vfs.PathOperation{Root: pts, Start: pts, Path: name},
			&vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	}
	master, err := open("ptmx")
	if err != nil {
		pts.DecRef(ctx)
		return nil, fmt.Errorf("opening the sandbox's /dev/pts/ptmx: %w", err)
	}
	term, ok := devpts.TerminalFromFile(master)
	if !ok {
		master.DecRef(ctx)
		pts.DecRef(ctx)
		return nil, errors.New("the sandbox's /dev/pts/ptmx is not a devpts master")
	}
	unlock := make([]byte, 4)
	if err := ptyIoctl(ctx, master, unix.TIOCSPTLCK, unlock); err != nil {
		master.DecRef(ctx)
		pts.DecRef(ctx)
		return nil, fmt.Errorf("unlocking the sandbox's pty: %w", err)
	}
	replica, err := open(strconv.Itoa(int(term.Index())))
	if err != nil {
		master.DecRef(ctx)
		pts.DecRef(ctx)
		return nil, fmt.Errorf("opening the sandbox's pty: %w", err)
	}
	st := &sandboxTerminal{
		pts: pts, master: master, replica: replica, host: host,
		stop: make(chan struct{}), inDone: make(chan struct{}), outDone: make(chan struct{}),
	}
	st.ttyGID, st.hasTTYGroup = containerGroup(ctx, v, root, "tty")
	if old, err := unix.IoctlGetTermios(host, unix.TCGETS); err == nil {
		// The user's settings (erase character, modes) for the sandbox.
		b := unsafe.Slice((*byte)(unsafe.Pointer(old)), kernelTermiosSize)
		if err := ptyIoctl(ctx, master, unix.TCSETS, append([]byte(nil), b...)); err != nil {
			log.Warningf("terminal: copying the modes: %v", err)
		}
		st.hostOld = old
		raw := *old
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if err := unix.IoctlSetTermios(host, unix.TCSETS, &raw); err != nil {
			log.Warningf("terminal: raw mode on the host pty: %v", err)
		}
	}
	st.syncWinsize(ctx, nil)
	return st, nil
}

// sandboxPts returns the sandbox's /dev/pts if it is a devpts (the
// spec's mounts, as runc requires for a terminal); without one, a devpts
// instance of the Sentry's own, mounted nowhere, so the process still has
// a terminal (one that ttyname(3) cannot name).
func sandboxPts(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry) (vfs.VirtualDentry, error) {
	creds := auth.NewRoot()
	pop := &vfs.PathOperation{Root: root, Start: root, Path: "/dev/pts", FollowFinalSymlink: true}
	if vd, err := v.GetDentryAt(ctx, creds, pop, &vfs.GetDentryOptions{}); err == nil {
		if isDevpts(ctx, v, creds, vd) {
			return vd, nil
		}
		vd.DecRef(ctx)
	}
	log.Warningf("terminal: the sandbox has no devpts at /dev/pts; its terminal gets a private one")
	fs, d, err := devpts.FilesystemType{}.GetFilesystem(ctx, v, creds, "devpts", vfs.GetFilesystemOptions{})
	if err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("a devpts for the terminal: %w", err)
	}
	return vfs.MakeVirtualDentry(v.NewDisconnectedMount(fs, d), d), nil
}

// isDevpts reports whether vd is the root of a devpts (it has a ptmx
// that opens a devpts master).
func isDevpts(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, vd vfs.VirtualDentry) bool {
	fd, err := v.OpenAt(ctx, creds, &vfs.PathOperation{Root: vd, Start: vd, Path: "ptmx"}, &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	if err != nil {
		return false
	}
	defer fd.DecRef(ctx)
	_, ok := devpts.TerminalFromFile(fd)
	return ok
}

// syncWinsize gives the sandbox's pty the host pty's window size if it
// differs from last, and returns it.
func (st *sandboxTerminal) syncWinsize(ctx context.Context, last *unix.Winsize) *unix.Winsize {
	ws, err := unix.IoctlGetWinsize(st.host, unix.TIOCGWINSZ)
	if err != nil || (last != nil && *ws == *last) {
		return last
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(ws)), unsafe.Sizeof(*ws))
	if err := ptyIoctl(ctx, st.master, unix.TIOCSWINSZ, append([]byte(nil), b...)); err != nil {
		log.Warningf("terminal: window size: %v", err)
	}
	return ws
}

// attach makes the pty the controlling terminal of tg, a session leader
// not yet started: as its opening the replica would (open(2) without
// O_NOCTTY by a session leader with none).
//
// The replica becomes the process's, as a container runtime leaves its
// console and grantpt(3) a pty: owned by the process's uid, group "tty"
// of the container (else the process's gid), mode 0620 (crw--w----), so
// that a process not running as root can reopen its own terminal
// (/dev/tty, /dev/pts/N, tty(1), su, script).
func (st *sandboxTerminal) attach(ctx context.Context, v *vfs.VirtualFilesystem, tg *kernel.ThreadGroup) error {
	term, _ := devpts.TerminalFromFile(st.master)
	pop := &vfs.PathOperation{Root: st.pts, Start: st.pts, Path: strconv.Itoa(int(term.Index()))}
	if creds := auth.CredentialsFromContext(tg.Leader()); creds != nil {
		gid := creds.EffectiveGID
		if st.hasTTYGroup {
			gid = st.ttyGID
		}
		own := &vfs.SetStatOptions{Mask: unix.STATX_UID | unix.STATX_GID | unix.STATX_MODE, UID: creds.EffectiveUID, GID: gid, Mode: 0o620}
		if err := v.SetStatAt(ctx, auth.NewRoot(), pop, own); err != nil {
			return fmt.Errorf("giving the sandbox's pty to the process: %w", err)
		}
		if tg.ID() == 1 {
			// The sandbox's first process: its terminal is /dev/console
			// (console.go); an exec'd process's is not.
			giveConsole(ctx, v, tg.Leader(), own)
		}
	}
	// Root's credentials open it; the task is who acquires it.
	fd, err := v.OpenAt(tg.Leader(), auth.NewRoot(), pop, &vfs.OpenOptions{Flags: unix.O_RDWR})
	if err != nil {
		return fmt.Errorf("making the sandbox's pty the controlling terminal: %w", err)
	}
	fd.DecRef(ctx)
	return nil
}

// giveConsole gives the container's /dev/console, when it is the
// console device (5:1) that opens this terminal, the terminal's owner
// and mode: runc bind-mounts the pty there, so it shows the pty's.
func giveConsole(ctx context.Context, v *vfs.VirtualFilesystem, leader *kernel.Task, own *vfs.SetStatOptions) {
	fsc := leader.FSContext()
	if fsc == nil {
		return
	}
	root := fsc.Root()
	if !root.Ok() {
		return
	}
	defer root.DecRef(ctx)
	pop := &vfs.PathOperation{Root: root, Start: root, Path: "/dev/console"}
	st, err := v.StatAt(ctx, auth.NewRoot(), pop, &vfs.StatOptions{Mask: unix.STATX_TYPE})
	const consoleMajor, consoleMinor = 5, 1
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev_major != consoleMajor || st.Rdev_minor != consoleMinor {
		return
	}
	if err := v.SetStatAt(ctx, auth.NewRoot(), pop, own); err != nil {
		log.Warningf("terminal: giving /dev/console to the process: %v", err)
	}
}

// maxGroupFile bounds how much of the container's /etc/group is read.
const maxGroupFile = 1 << 20

// containerGroup looks group name up in the container's /etc/group
// (group(5): name:password:GID:members).
func containerGroup(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, name string) (auth.GID, bool) {
	fd, err := v.OpenAt(ctx, auth.NewRoot(), &vfs.PathOperation{Root: root, Start: root, Path: "/etc/group", FollowFinalSymlink: true},
		&vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		return 0, false
	}
	defer fd.DecRef(ctx)
	var data []byte
	buf := make([]byte, 32<<10)
	for len(data) < maxGroupFile {
		n, err := fd.Read(ctx, bytesSeq(buf), vfs.ReadOptions{})
		data = append(data, buf[:n]...)
		if n == 0 || err != nil {
			break
		}
	}
	return parseGroupFile(data, name)
}

// parseGroupFile finds group name's GID in the text of an /etc/group.
func parseGroupFile(data []byte, name string) (auth.GID, bool) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		if gid, err := strconv.ParseUint(strings.TrimSpace(f[2]), 10, 32); err == nil {
			return auth.GID(gid), true
		}
	}
	return 0, false
}

// relay starts copying between the host pty and the sandbox's.
func (st *sandboxTerminal) relay(ctx context.Context) {
	st.relaying = true
	go st.copyIn(ctx)
	go st.copyOut(ctx)
}

// copyIn copies the user's input to the sandbox's master, where its line
// discipline takes it (and turns ISIG characters into signals), and
// carries window size changes.
func (st *sandboxTerminal) copyIn(ctx context.Context) {
	defer close(st.inDone)
	ws := st.syncWinsize(ctx, nil)
	buf := make([]byte, 4096)
	for {
		select {
		case <-st.stop:
			return
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(st.host), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(winsizePoll/time.Millisecond))
		ws = st.syncWinsize(ctx, ws)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil || pfd[0].Revents&unix.POLLNVAL != 0 {
			return
		}
		m, err := unix.Read(st.host, buf)
		if m <= 0 {
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			// The host master is gone (EIO): nobody types any more.
			return
		}
		if !st.writeMaster(ctx, buf[:m]) {
			return
		}
	}
}

// writeMaster writes all of b to the sandbox's master, waiting while its
// input queue is full; false once stopping.
func (st *sandboxTerminal) writeMaster(ctx context.Context, b []byte) bool {
	e, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	st.master.EventRegister(e)
	defer st.master.EventUnregister(e)
	for len(b) > 0 {
		n, err := st.master.Write(ctx, bytesSeq(b), vfs.WriteOptions{})
		b = b[n:]
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			select {
			case <-ch:
			case <-st.stop:
				return false
			case <-time.After(winsizePoll):
			}
		default:
			return false
		}
	}
	return true
}

// copyOut copies what the sandbox writes to its terminal to the host
// pty until no sandbox process has the replica open any more.
func (st *sandboxTerminal) copyOut(ctx context.Context) {
	defer close(st.outDone)
	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp)
	st.master.EventRegister(e)
	defer st.master.EventUnregister(e)
	buf := make([]byte, 32<<10)
	for {
		n, err := st.master.Read(ctx, bytesSeq(buf), vfs.ReadOptions{})
		if n > 0 {
			if !writeHost(st.host, buf[:n]) {
				return
			}
			continue
		}
		if !errors.Is(err, unix.EAGAIN) {
			return // EIO: every replica is closed and the output read
		}
		select {
		case <-st.stop:
			return // and all of it was read
		default:
		}
		select {
		case <-ch:
		case <-st.stop:
		case <-time.After(winsizePoll):
		}
	}
}

// writeHost writes all of b to host descriptor fd.
func writeHost(fd int, b []byte) bool {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		switch err {
		case unix.EINTR:
		case unix.EAGAIN:
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(winsizePoll/time.Millisecond))
		default:
			return false
		}
	}
	return true
}

// close waits (bounded) for the sandbox's last output to reach the host,
// stops relaying and releases the pty; the host pty gets its modes back.
func (st *sandboxTerminal) close(ctx context.Context) {
	st.closeOnce.Do(func() {
		if st.replica != nil {
			st.replica.DecRef(ctx)
			st.replica = nil
		}
		if st.relaying {
			// The process's output is in the pty already (its writes
			// completed): copyOut passes on what is there and ends. Some
			// other holder of the replica (/dev/console, a process not
			// yet gone) must not keep it waiting for end of file.
			close(st.stop)
			select {
			case <-st.outDone:
			case <-time.After(outputDrainLimit):
				log.Warningf("terminal: the user's side took no output for %v; dropping the rest", outputDrainLimit)
			}
			<-st.inDone
		}
		st.master.DecRef(ctx)
		st.pts.DecRef(ctx)
		if st.hostOld != nil {
			unix.IoctlSetTermios(st.host, unix.TCSETS, st.hostOld)
		}
		for _, fd := range st.hostFDs {
			unix.Close(fd)
		}
	})
}

// stdioWithTerminal builds a process's descriptor table from host stdio:
// with terminal set and stdin a host terminal, a sandbox pty takes the
// place of every stdio descriptor that is that terminal (the others are
// imported as they are). The caller attaches and relays the returned
// terminal (nil without one) once the process exists.
func stdioWithTerminal(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, stdio [3]int, terminal bool) (*kernel.FDTable, *sandboxTerminal, error) {
	if !terminal || stdio[0] < 0 || !isHostTerminal(stdio[0]) {
		fdt, err := importStdio(ctx, v, stdio)
		return fdt, nil, err
	}
	st, err := openSandboxTerminal(ctx, v, root, stdio[0])
	if err != nil {
		return nil, nil, err
	}
	var rest [3]int
	isTerm := [3]bool{true}
	for i := range stdio {
		rest[i] = -1
		if i > 0 && stdio[i] >= 0 && sameTerminal(stdio[0], stdio[i]) {
			isTerm[i] = true
		} else if i > 0 {
			rest[i] = stdio[i]
		}
		if isTerm[i] {
			st.hostFDs = append(st.hostFDs, stdio[i])
		}
	}
	fdt, err := importStdio(ctx, v, rest)
	if err != nil {
		st.hostFDs = nil // importStdio's failure leaves the caller's
		st.close(ctx)
		return nil, nil, err
	}
	for i := range stdio {
		if !isTerm[i] {
			continue
		}
		// The table takes a reference of its own.
		if _, err := fdt.NewFD(int32(i), 1024, st.replica, kernel.FDFlags{}); err != nil {
			fdt.DecRef(ctx)
			st.close(ctx)
			return nil, nil, fmt.Errorf("installing the terminal as fd %d: %w", i, err)
		}
	}
	return fdt, st, nil
}

// ignoreTerminalSignals keeps SIGINT and SIGQUIT sent to the Sentry
// (only kill(1) sends them now: the terminal is the sandbox's) from
// killing it; SIGTERM still stops the sandbox. It returns the function
// that undoes it.
func ignoreTerminalSignals() func() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGQUIT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				log.Infof("ignoring %v: the sandbox has a terminal of its own", s)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// bytesSeq is an IOSequence over the Sentry's own buffer b.
func bytesSeq(b []byte) usermem.IOSequence {
	s, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	return s
}
