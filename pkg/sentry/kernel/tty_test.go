package kernel

import (
	"context"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// newTerminal mounts a devpts on k's VFS and opens a master, returning
// its terminal.
func newTerminal(t *testing.T, k *Kernel) *devpts.Terminal {
	ctx := context.Background()
	v := k.VFS()
	if err := v.RegisterFilesystemType(devpts.Name, devpts.FilesystemType{}); err != nil && !errors.Is(err, unix.EEXIST) {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "", devpts.Name, &vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	m, err := v.OpenAt(ctx, creds, &vfs.PathOperation{Root: root, Start: root, Path: "ptmx"}, &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.DecRef(ctx) })
	term, ok := devpts.TerminalFromFile(m)
	if !ok {
		t.Fatal("ptmx is not a terminal")
	}
	return term
}

func TestControllingTerminalJobControl(t *testing.T) {
	leader := newSignalTask(t)
	k := leader.k
	term := newTerminal(t, k)
	h := terminalHooks{k}
	if _, err := h.Session(leader, term); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TIOCGSID before acquiring: %v", err)
	}
	if _, err := (ttyDevice{k}).Open(leader, vfs.VirtualDentry{}, unix.O_RDWR); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("/dev/tty without a controlling terminal: %v", err)
	}
	// Init leads session 1; opening without O_NOCTTY makes it the ctty.
	h.Opened(leader, term)
	impl, err := (ttyDevice{k}).Open(leader, vfs.VirtualDentry{}, unix.O_RDWR)
	if err != nil {
		t.Fatalf("/dev/tty: %v", err)
	}
	impl.Release(leader)
	if sid, err := h.Session(leader, term); err != nil || sid != int32(leader.tg.pid) {
		t.Fatalf("TIOCGSID = %d, %v", sid, err)
	}
	if fg, err := h.Foreground(leader, term); err != nil || fg != int32(leader.tg.pgid) {
		t.Fatalf("TIOCGPGRP = %d, %v", fg, err)
	}
	child := forkChild(t, leader)
	if err := h.SetControlling(child, term, false); !errors.Is(err, unix.EPERM) {
		t.Fatalf("TIOCSCTTY by a non-leader: %v", err)
	}
	// A grandchild moves to its own, background, process group; its
	// parent (in the leader's group) keeps that group from being orphaned.
	grandchild := forkChild(t, child)
	if err := child.tg.SetProcessGroup(grandchild.tg, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckAccess(grandchild, term, true); !errors.Is(err, linux.ERESTARTSYS) {
		t.Fatalf("background read: %v", err)
	}
	if !grandchild.PendingSignals().Contains(linux.SIGTTIN) {
		t.Fatal("no SIGTTIN for a background read")
	}
	grandchild.SigAction(linux.SIGTTIN, &linux.Sigaction{Handler: linux.SIG_IGN})
	if err := h.CheckAccess(grandchild, term, true); !errors.Is(err, unix.EIO) {
		t.Fatalf("background read ignoring SIGTTIN: %v", err)
	}
	if err := h.CheckAccess(leader, term, true); err != nil {
		t.Fatalf("foreground read: %v", err)
	}
	// Foreground to the child's group: ISIG signals go there.
	if err := h.SetForeground(leader, term, 9999); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("TIOCSPGRP to no group: %v", err)
	}
	if err := h.SetForeground(leader, term, int32(grandchild.tg.pid)); err != nil {
		t.Fatal(err)
	}
	h.Signal(term, unix.SIGINT)
	if !grandchild.PendingSignals().Contains(linux.SIGINT) || leader.PendingSignals().Contains(linux.SIGINT) {
		t.Fatal("SIGINT did not go to the foreground group alone")
	}
	// The leader gives the terminal up: the foreground group is hung up.
	if err := h.ReleaseControlling(leader, term); err != nil {
		t.Fatal(err)
	}
	if !grandchild.PendingSignals().Contains(linux.SIGHUP) {
		t.Fatal("no SIGHUP at TIOCNOTTY")
	}
	if _, err := h.Session(leader, term); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TIOCGSID after TIOCNOTTY: %v", err)
	}
	k.mu.Lock()
	_, kept := k.ttys[term]
	k.mu.Unlock()
	if kept {
		t.Fatal("the kernel still holds a terminal no session controls")
	}
	if err := h.SetControlling(leader, term, false); err != nil {
		t.Fatalf("TIOCSCTTY of a free terminal: %v", err)
	}
	// The child alone in a group whose parent is init, in another group
	// of the session, is not orphaned: the sandbox's init is a
	// container's (a shell's jobs), not Linux's global init.
	if err := leader.tg.SetProcessGroup(child.tg, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckAccess(child, term, true); !errors.Is(err, linux.ERESTARTSYS) {
		t.Fatalf("background read in a job of init's: %v", err)
	}
	// A group whose members' parents are all in another session is
	// orphaned: a background read is EIO, not SIGTTIN.
	other := forkChild(t, leader)
	orphan := forkChild(t, other)
	if err := other.tg.SetProcessGroup(orphan.tg, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := other.tg.CreateSession(); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckAccess(orphan, term, true); !errors.Is(err, unix.EIO) {
		t.Fatalf("background read in an orphaned group: %v", err)
	}
	if orphan.PendingSignals().Contains(linux.SIGTTIN) {
		t.Fatal("SIGTTIN sent to an orphaned group")
	}
}
