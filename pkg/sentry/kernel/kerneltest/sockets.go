package kerneltest

import (
	"context"
	"fmt"
	"os"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/socket/unix"
)

// RegisterSockets gives a test kernel the socket families that need no
// host network: AF_UNIX.
func RegisterSockets(k *kernel.Kernel) {
	unix.Register(k)
}

// NewTask creates a process in k (a kernel without a platform, so it
// never runs) whose program is the running test binary itself, for tests
// that need a *kernel.Task to call the Sentry with: its root is a new
// tmpfs holding that binary. release frees what the task holds.
func NewTask(ctx context.Context, k *kernel.Kernel) (t *kernel.Task, release func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("finding the test binary: %w", err)
	}
	root, err := NewRoot(ctx, k.VFS(), k.MemoryFile(), self)
	if err != nil {
		return nil, nil, err
	}
	defer root.DecRef(ctx)
	tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{Filename: self, Argv: []string{"test"}, Root: root, Umask: 0o022})
	if err != nil {
		return nil, nil, err
	}
	t = tg.Leader()
	return t, func() {
		t.FDTable().RemoveRange(ctx, 0, ^uint32(0), false)
		t.MemoryManager().DecUsers(ctx)
		t.FDTable().DecRef(ctx)
		t.FSContext().DecRef(ctx)
	}, nil
}
