package cmd

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// ttyRelay stands between the user's terminal and `runsc do`'s sandbox.
// The Sentry gets a pty of its own, in a process group of its own, rather
// than the user's terminal: the terminal's signals (^C, window changes)
// would otherwise reach the platform's stub processes too, and a Sentry
// outside the terminal's foreground group could not read it. The user's
// terminal goes raw; the pty does the line editing; runsc turns its
// interrupt and quit characters and window changes into host signals for
// the Sentry, which passes them to the sandbox's processes.
type ttyRelay struct {
	master, replica *os.File
	restore         func()
	sigs            chan os.Signal
	copied          chan struct{}
	stopping        atomic.Bool
}

func newTTYRelay(term *os.File) (*ttyRelay, error) {
	master, replica, err := openPty()
	if err != nil {
		return nil, err
	}
	if t, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS); err == nil {
		// The user's settings (erase character, modes) for the pty.
		unix.IoctlSetTermios(int(replica.Fd()), unix.TCSETS, t)
	}
	copyWinsize(term, master)
	return &ttyRelay{master: master, replica: replica, restore: func() {}, copied: make(chan struct{})}, nil
}

func copyWinsize(from, to *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// run starts relaying between term (in, out) and the pty once the Sentry
// (sentryPid) holds the pty's replica.
func (r *ttyRelay) run(sentryPid int, in, out *os.File) {
	// runsc keeps its replica (to flush input as ^C does), so the master
	// never reads EOF: drain stops the output copy instead.
	r.restore = rawTerminal(in)
	r.sigs = make(chan os.Signal, 4)
	// In raw mode the terminal sends no ^C; SIGINT and SIGQUIT from
	// elsewhere (kill) are for the sandbox as well.
	signal.Notify(r.sigs, syscall.SIGWINCH, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		for s := range r.sigs {
			if s == syscall.SIGWINCH {
				copyWinsize(in, r.master)
			}
			unix.Kill(sentryPid, s.(syscall.Signal))
		}
	}()
	go r.copyOut(out)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				r.forward(sentryPid, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

// forward writes input to the pty, turning the pty's interrupt and quit
// characters into signals for the Sentry when its line discipline would
// (ISIG): the pty belongs to no host session, so its own ISIG signals
// nobody.
func (r *ttyRelay) forward(sentryPid int, b []byte) {
	t, err := unix.IoctlGetTermios(int(r.master.Fd()), unix.TCGETS)
	if err != nil || t.Lflag&unix.ISIG == 0 {
		r.master.Write(b)
		return
	}
	start := 0
	for i, c := range b {
		var sig syscall.Signal
		switch {
		case c == t.Cc[unix.VINTR] && c != 0:
			sig = syscall.SIGINT
		case c == t.Cc[unix.VQUIT] && c != 0:
			sig = syscall.SIGQUIT
		default:
			continue
		}
		r.master.Write(b[start:i])
		start = i + 1
		// As the line discipline does: pending input is discarded.
		unix.IoctlSetInt(int(r.replica.Fd()), unix.TCFLSH, unix.TCIFLUSH)
		unix.Kill(sentryPid, sig)
	}
	r.master.Write(b[start:])
}

// copyOut copies the pty's output to out until drain asks it to stop and
// nothing is left to read.
func (r *ttyRelay) copyOut(out *os.File) {
	defer close(r.copied)
	fd := int(r.master.Fd())
	buf := make([]byte, 32<<10)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 50)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pfd[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return
		}
		if n == 0 || pfd[0].Revents&unix.POLLIN == 0 {
			if r.stopping.Load() {
				return
			}
			continue
		}
		m, err := unix.Read(fd, buf)
		if m > 0 {
			if _, werr := out.Write(buf[:m]); werr != nil {
				return
			}
		}
		if err != nil && err != unix.EINTR && err != unix.EAGAIN {
			return
		}
	}
}

// drain copies the sandbox's last output once the Sentry has exited:
// what it wrote is already in the pty.
func (r *ttyRelay) drain() {
	if r.sigs != nil {
		r.stopping.Store(true)
		<-r.copied
	}
}

// close restores the user's terminal and releases the pty.
func (r *ttyRelay) close() {
	if r.sigs != nil {
		signal.Stop(r.sigs)
		close(r.sigs)
	}
	r.restore()
	r.master.Close()
	r.replica.Close()
}
