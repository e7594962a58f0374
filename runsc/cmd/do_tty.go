package cmd

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ttyRelay connects the user's terminal to a sandbox process that has a
// terminal (`runsc do` typed at, `runsc run` of a process.terminal bundle
// without --console-socket). The process's terminal is a pty of the
// sandbox's own, its controlling terminal, with the sandbox's line
// discipline and job control; the Sentry carries its bytes over a host
// pty whose replica it holds (runsc/boot/terminal.go). Here, runsc holds
// that host pty's master: the user's terminal goes raw (so ^C, ^Z and ^\
// travel as characters to the sandbox's line discipline, which signals
// its foreground job), bytes are copied both ways, and the terminal's
// window changes (SIGWINCH) are set on the master, whence the Sentry
// passes them on. The same relay serves do and run.
type ttyRelay struct {
	master *os.File
	// replica is the host pty's replica for the Sentry's stdio; nil when
	// the caller made the pty (run).
	replica *os.File

	restore    func()
	sigs       chan os.Signal
	sigsDone   chan struct{}
	copied     chan struct{}
	stopping   atomic.Bool
	closeOnce  sync.Once
	restoreMu  sync.Mutex
	terminated atomic.Bool
}

// newTTYRelay makes a host pty for the Sentry with the user's terminal
// modes and window size (the Sentry gives them to the sandbox's pty).
func newTTYRelay(term *os.File) (*ttyRelay, error) {
	master, replica, err := openPty()
	if err != nil {
		return nil, err
	}
	if t, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS); err == nil {
		unix.IoctlSetTermios(int(replica.Fd()), unix.TCSETS, t)
	}
	copyWinsize(term, master)
	return &ttyRelay{master: master, replica: replica, restore: func() {}, copied: make(chan struct{})}, nil
}

// relayMaster relays an existing pty master (made by createContainer).
func relayMaster(master *os.File) *ttyRelay {
	return &ttyRelay{master: master, restore: func() {}, copied: make(chan struct{})}
}

func copyWinsize(from, to *os.File) { copyWinsizeFD(int(from.Fd()), int(to.Fd())) }

func copyWinsizeFD(from, to int) {
	if ws, err := unix.IoctlGetWinsize(from, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(to, unix.TIOCSWINSZ, ws)
	}
}

// terminalOutput returns where the user's terminal is written: the first
// of outs that is the terminal in is, else in itself (a terminal is open
// for reading and writing), so that output redirected elsewhere does not
// get the terminal's echo.
func terminalOutput(in *os.File, outs ...*os.File) *os.File {
	var st unix.Stat_t
	if unix.Fstat(int(in.Fd()), &st) != nil {
		return in
	}
	for _, o := range outs {
		var ost unix.Stat_t
		if unix.Fstat(int(o.Fd()), &ost) == nil && ost.Mode&unix.S_IFMT == unix.S_IFCHR && ost.Rdev == st.Rdev {
			return o
		}
	}
	return in
}

// run puts in (the user's terminal) in raw mode and starts relaying
// between it, out and the master. terminate, if not nil, is called when
// runsc is told to stop (SIGTERM, SIGHUP: the user's terminal is gone);
// SIGINT and SIGQUIT sent to runsc are then ignored, as the sandbox gets
// the terminal's.
func (r *ttyRelay) run(in, out *os.File, terminate func()) {
	r.restore = rawTerminal(in)
	// The descriptors, taken once: the goroutines must not call Fd on
	// files close may be closing.
	inFD, masterFD := int(in.Fd()), int(r.master.Fd())
	r.sigs = make(chan os.Signal, 4)
	r.sigsDone = make(chan struct{})
	sigs := []os.Signal{syscall.SIGWINCH}
	if terminate != nil {
		sigs = append(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT)
	}
	signal.Notify(r.sigs, sigs...)
	copyWinsizeFD(inFD, masterFD)
	go func() {
		defer close(r.sigsDone)
		for s := range r.sigs {
			switch s {
			case syscall.SIGWINCH:
				copyWinsizeFD(inFD, masterFD)
			case syscall.SIGTERM, syscall.SIGHUP:
				// The terminal goes back to how it was at once, in case
				// the sandbox does not stop.
				r.restoreTerminal()
				if r.terminated.CompareAndSwap(false, true) {
					terminate()
				}
			}
		}
	}()
	go r.copyOut(out, masterFD)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				if _, err := r.master.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
}

// copyOut copies the pty's output to out until it reads end of file or
// drain asks it to stop and nothing is left to read.
func (r *ttyRelay) copyOut(out *os.File, fd int) {
	defer close(r.copied)
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
		if n == 0 || pfd[0].Revents&(unix.POLLIN|unix.POLLHUP) == 0 {
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
			continue
		}
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		// EIO: the replica is closed everywhere and all was read.
		return
	}
}

// drain copies the sandbox's last output once the Sentry has exited
// (it flushed it to the host pty before exiting).
func (r *ttyRelay) drain() {
	if r.sigs != nil {
		r.stopping.Store(true)
		<-r.copied
	}
}

// waitClosed waits (at most limit) for the pty's replica to be closed
// everywhere and its output copied, for a process in a Sentry that lives
// on (exec), then stops copying.
func (r *ttyRelay) waitClosed(limit time.Duration) {
	if r.sigs == nil {
		return
	}
	select {
	case <-r.copied:
	case <-time.After(limit):
	}
	r.drain()
}

func (r *ttyRelay) restoreTerminal() {
	r.restoreMu.Lock()
	defer r.restoreMu.Unlock()
	r.restore()
	r.restore = func() {}
}

// close restores the user's terminal and releases the pty.
func (r *ttyRelay) close() {
	r.closeOnce.Do(func() {
		if r.sigs != nil {
			signal.Stop(r.sigs)
			close(r.sigs)
			<-r.sigsDone
			r.drain() // copyOut is done with the master
		}
		r.restoreTerminal()
		r.master.Close()
		if r.replica != nil {
			r.replica.Close()
		}
	})
}
