package devpts

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// Hooks connect a terminal to the sandbox kernel, which owns sessions and
// process groups. All methods may be called with no lock held by devpts.
type Hooks interface {
	// Signal asks for sig to be sent to t's foreground process group
	// (an ISIG character: SIGINT, SIGQUIT, SIGTSTP; or SIGWINCH).
	Signal(t *Terminal, sig unix.Signal)
	// Foreground returns t's foreground process group (TIOCGPGRP).
	Foreground(ctx context.Context, t *Terminal) (int32, error)
	// SetForeground changes it (TIOCSPGRP), checking the caller's right.
	SetForeground(ctx context.Context, t *Terminal, pgid int32) error
}

// SessionHooks are what Hooks also implement to give terminals to
// sessions (controlling terminals): the kernel owns sessions, devpts only
// forwards the requests.
type SessionHooks interface {
	// Opened is told that the caller opened t without O_NOCTTY: a
	// session leader without a controlling terminal acquires it.
	Opened(ctx context.Context, t *Terminal)
	// SetControlling implements TIOCSCTTY (steal: its argument was 1).
	SetControlling(ctx context.Context, t *Terminal, steal bool) error
	// ReleaseControlling implements TIOCNOTTY.
	ReleaseControlling(ctx context.Context, t *Terminal) error
	// Session implements TIOCGSID.
	Session(ctx context.Context, t *Terminal) (int32, error)
	// CheckAccess is asked before a replica read (read true) or write
	// by the caller: a background process group of t's session gets
	// SIGTTIN or SIGTTOU and an error to return (ERESTARTSYS, or EIO
	// when the signal cannot stop it); nil lets the access proceed.
	CheckAccess(ctx context.Context, t *Terminal, read bool) error
}

// sessionHooks returns t's hooks as SessionHooks, or nil.
func (t *Terminal) sessionHooks() SessionHooks {
	t.mu.Lock()
	h := t.hooks
	t.mu.Unlock()
	sh, _ := h.(SessionHooks)
	return sh
}

// bufSize bounds each direction's buffer (N_TTY_BUF_SIZE).
const bufSize = 4096

// Terminal is one pseudo-terminal pair: the line discipline between the
// master (ptmx) and the replica (/dev/pts/N).
type Terminal struct {
	index uint32
	fs    *filesystem

	masterQ, replicaQ waiter.Queue

	mu      sync.Mutex
	termios unix.Termios
	winsize unix.Winsize
	locked  bool
	hooks   Hooks
	fgPGID  int32 // without hooks

	// Input, master to replica. ready holds what the replica may read;
	// in canonical mode lineLens holds the lengths of the complete lines
	// in it (0 for an end-of-file mark). line is the line being edited.
	ready    []byte
	lineLens []int
	line     []byte
	// Output, replica (and echo) to master.
	out []byte

	masterOpen   bool
	replicaOpens int
	hadReplica   bool

	// The replica's owner and permission bits (/dev/pts/N).
	uid  auth.UID
	gid  auth.GID
	mode uint32
}

// owner returns the replica's owner and permission bits.
func (t *Terminal) owner() (auth.UID, auth.GID, uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.uid, t.gid, t.mode
}

// Index returns the pty number (TIOCGPTN, the N of /dev/pts/N).
func (t *Terminal) Index() uint32 { return t.index }

// SetHooks connects t to the kernel.
func (t *Terminal) SetHooks(h Hooks) {
	t.mu.Lock()
	t.hooks = h
	t.mu.Unlock()
}

// defaultTermios is what a new pty starts with (Linux's tty_std_termios
// with ECHOCTL/ECHOKE, 38400 baud).
func defaultTermios() unix.Termios {
	t := unix.Termios{
		Iflag: unix.ICRNL | unix.IXON,
		Oflag: unix.OPOST | unix.ONLCR,
		Cflag: unix.B38400 | unix.CS8 | unix.CREAD | unix.HUPCL,
		Lflag: unix.ISIG | unix.ICANON | unix.ECHO | unix.ECHOE | unix.ECHOK | unix.ECHOCTL | unix.ECHOKE | unix.IEXTEN,
	}
	cc := map[int]byte{
		unix.VINTR: 0x03, unix.VQUIT: 0x1c, unix.VERASE: 0x7f, unix.VKILL: 0x15,
		unix.VEOF: 0x04, unix.VMIN: 1, unix.VSTART: 0x11, unix.VSTOP: 0x13,
		unix.VSUSP: 0x1a, unix.VREPRINT: 0x12, unix.VDISCARD: 0x0f, unix.VWERASE: 0x17, unix.VLNEXT: 0x16,
	}
	for i, v := range cc {
		t.Cc[i] = v
	}
	t.Ispeed, t.Ospeed = unix.B38400, unix.B38400
	return t
}

func newTerminal(fs *filesystem, index uint32, hooks Hooks) *Terminal {
	return &Terminal{fs: fs, index: index, termios: defaultTermios(), locked: true, hooks: hooks, masterOpen: true}
}

func (t *Terminal) lflag(f uint32) bool { return t.termios.Lflag&f != 0 }

// lflagLocked is lflag taking t.mu.
func (t *Terminal) lflagLocked(f uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lflag(f)
}
func (t *Terminal) iflag(f uint32) bool { return t.termios.Iflag&f != 0 }

// outputLocked appends b to the master's buffer with output processing
// (OPOST: ONLCR, OCRNL), as much as fits; it returns the input bytes
// consumed.
func (t *Terminal) outputLocked(b []byte) int {
	post := t.termios.Oflag&unix.OPOST != 0
	for i, c := range b {
		if post && c == '\n' && t.termios.Oflag&unix.ONLCR != 0 {
			if len(t.out)+2 > bufSize {
				return i
			}
			t.out = append(t.out, '\r', '\n')
			continue
		}
		if post && c == '\r' && t.termios.Oflag&unix.OCRNL != 0 {
			c = '\n'
		}
		if len(t.out)+1 > bufSize {
			return i
		}
		t.out = append(t.out, c)
	}
	return len(b)
}

// echoLocked echoes an input byte: control characters as ^X with ECHOCTL.
func (t *Terminal) echoLocked(c byte) {
	if !t.lflag(unix.ECHO) {
		if c == '\n' && t.lflag(unix.ECHONL) && t.lflag(unix.ICANON) {
			t.outputLocked([]byte{'\n'})
		}
		return
	}
	if t.lflag(unix.ECHOCTL) && (c < 0x20 && c != '\t' && c != '\n' || c == 0x7f) {
		t.outputLocked([]byte{'^', c ^ 0x40})
		return
	}
	t.outputLocked([]byte{c})
}

// eraseLocked removes the last character of the line being edited.
func (t *Terminal) eraseLocked() bool {
	if len(t.line) == 0 {
		return false
	}
	c := t.line[len(t.line)-1]
	t.line = t.line[:len(t.line)-1]
	if t.lflag(unix.ECHO) && t.lflag(unix.ECHOE) {
		n := 1
		if t.lflag(unix.ECHOCTL) && (c < 0x20 && c != '\t' || c == 0x7f) {
			n = 2 // it was echoed as ^X
		}
		for range n {
			t.outputLocked([]byte("\b \b"))
		}
	}
	return true
}

func (t *Terminal) pushLineLocked(withEOF bool) {
	t.ready = append(t.ready, t.line...)
	t.lineLens = append(t.lineLens, len(t.line))
	t.line = t.line[:0]
	_ = withEOF
}

func (t *Terminal) roomLocked() int {
	return bufSize - len(t.ready) - len(t.line)
}

// inputLocked runs bytes the master wrote through the line discipline,
// returning how many it took and the signals to raise.
func (t *Terminal) inputLocked(b []byte) (int, []unix.Signal) {
	var sigs []unix.Signal
	cc := &t.termios.Cc
	for i, c := range b {
		if t.roomLocked() <= 0 {
			// Canonical mode keeps taking editing characters and line
			// ends so that a full buffer cannot jam the terminal; others
			// wait for the reader.
			if !t.lflag(unix.ICANON) {
				return i, sigs
			}
		}
		if t.iflag(unix.ISTRIP) {
			c &= 0x7f
		}
		switch {
		case c == '\r' && t.iflag(unix.IGNCR):
			continue
		case c == '\r' && t.iflag(unix.ICRNL):
			c = '\n'
		case c == '\n' && t.iflag(unix.INLCR):
			c = '\r'
		}
		if t.lflag(unix.ISIG) {
			var sig unix.Signal
			switch {
			case c == cc[unix.VINTR] && c != 0:
				sig = unix.SIGINT
			case c == cc[unix.VQUIT] && c != 0:
				sig = unix.SIGQUIT
			case c == cc[unix.VSUSP] && c != 0:
				sig = unix.SIGTSTP
			}
			if sig != 0 {
				if !t.lflag(unix.NOFLSH) {
					t.ready, t.lineLens, t.line = t.ready[:0], t.lineLens[:0], t.line[:0]
				}
				t.echoLocked(c)
				sigs = append(sigs, sig)
				continue
			}
		}
		if t.lflag(unix.ICANON) {
			switch {
			case c == cc[unix.VERASE] && c != 0:
				t.eraseLocked()
				continue
			case c == cc[unix.VKILL] && c != 0:
				if t.lflag(unix.ECHOKE) && t.lflag(unix.ECHOE) {
					for t.eraseLocked() {
					}
				} else {
					t.line = t.line[:0]
					t.echoLocked(c)
					if t.lflag(unix.ECHOK) && t.lflag(unix.ECHO) {
						t.outputLocked([]byte{'\n'})
					}
				}
				continue
			case c == cc[unix.VWERASE] && c != 0 && t.lflag(unix.IEXTEN):
				for len(t.line) > 0 && t.line[len(t.line)-1] == ' ' {
					t.eraseLocked()
				}
				for len(t.line) > 0 && t.line[len(t.line)-1] != ' ' {
					t.eraseLocked()
				}
				continue
			case c == cc[unix.VEOF] && c != 0:
				t.pushLineLocked(true)
				continue
			case c == '\n' || (c == cc[unix.VEOL] && c != 0) || (c == cc[unix.VEOL2] && c != 0):
				t.line = append(t.line, c)
				t.echoLocked(c)
				t.pushLineLocked(false)
				continue
			}
			if t.roomLocked() <= 1 {
				continue // the line is full: drop, as n_tty does
			}
			t.line = append(t.line, c)
			t.echoLocked(c)
			continue
		}
		t.ready = append(t.ready, c)
		t.echoLocked(c)
	}
	return len(b), sigs
}

// replicaReadableLocked reports whether a replica read would return now.
func (t *Terminal) replicaReadableLocked() bool {
	if t.lflag(unix.ICANON) {
		return len(t.lineLens) > 0
	}
	return len(t.ready) > 0
}

// readReplicaLocked takes up to n bytes for a replica read.
func (t *Terminal) readReplicaLocked(n int) ([]byte, bool) {
	if !t.lflag(unix.ICANON) {
		if len(t.ready) == 0 {
			return nil, false
		}
		k := min(n, len(t.ready))
		b := append([]byte(nil), t.ready[:k]...)
		t.ready = append(t.ready[:0], t.ready[k:]...)
		return b, true
	}
	if len(t.lineLens) == 0 {
		return nil, false
	}
	k := min(n, t.lineLens[0])
	b := append([]byte(nil), t.ready[:k]...)
	t.ready = append(t.ready[:0], t.ready[k:]...)
	if k == t.lineLens[0] {
		t.lineLens = t.lineLens[1:]
	} else {
		t.lineLens[0] -= k
	}
	return b, true
}

// setTermiosLocked installs new settings; leaving canonical mode makes
// the line being edited readable.
func (t *Terminal) setTermiosLocked(n unix.Termios) {
	wasCanon := t.lflag(unix.ICANON)
	t.termios = n
	if wasCanon && !t.lflag(unix.ICANON) {
		t.ready = append(t.ready, t.line...)
		t.line = t.line[:0]
		t.lineLens = t.lineLens[:0]
	} else if !wasCanon && t.lflag(unix.ICANON) && len(t.ready) > 0 {
		// What raw mode left unread reads as one line.
		t.lineLens = append(t.lineLens[:0], len(t.ready))
	}
}

func (t *Terminal) notify() {
	t.masterQ.Notify(waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp)
	t.replicaQ.Notify(waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp)
}

func (t *Terminal) raise(sigs []unix.Signal) {
	if len(sigs) == 0 {
		return
	}
	t.mu.Lock()
	h := t.hooks
	t.mu.Unlock()
	if h == nil {
		return
	}
	for _, s := range sigs {
		h.Signal(t, s)
	}
}
