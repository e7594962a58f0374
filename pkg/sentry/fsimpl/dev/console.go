package dev

import (
	"context"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// consoleMinor is /dev/console's minor number under TTYAUX_MAJOR (5:1).
const consoleMinor = 1

// console is the /dev/console driver of one VFS. A container whose
// process has a terminal (OCI process.terminal) gets that terminal as
// its console, as runc bind-mounts the pty onto /dev/console: opening
// /dev/console opens the terminal again, as opening its own name would
// (the same pty, or for a host terminal a new description of it).
// Without one, open fails with ENODEV, which is what Linux answers for
// 5:1 when no console device is configured (open(2) lists ENODEV for a
// device node without a device, noting that Linux returns it where
// POSIX would say ENXIO).
//
// The console keeps the terminal's name (its dentry), not an open file:
// holding the pty open would keep its master from seeing the replica side
// close (EIO) when the container's processes are gone.
type console struct {
	mu       sync.Mutex
	terminal vfs.VirtualDentry // with a reference; !Ok(): no console
}

// Open implements vfs.Device.
func (c *console) Open(ctx context.Context, _ vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	c.mu.Lock()
	vd := c.terminal
	if vd.Ok() {
		vd.IncRef()
	}
	c.mu.Unlock()
	if !vd.Ok() {
		return nil, unix.ENODEV
	}
	defer vd.DecRef(ctx)
	return vd.Dentry().Inode().Open(ctx, vd, flags)
}

// SetConsole makes the file terminal is open on (the init process's
// terminal: a devpts replica, or an imported host terminal) what
// /dev/console opens in v; nil removes the console. The caller checks
// that it is a terminal. Register must have installed the driver.
func SetConsole(ctx context.Context, v *vfs.VirtualFilesystem, terminal *vfs.FileDescription) error {
	d, ok := v.Device(vfs.CharDevice, ttyMajor, consoleMinor)
	c, isConsole := d.(*console)
	if !ok || !isConsole {
		return fmt.Errorf("setting /dev/console: the dev driver is not registered: %w", unix.ENODEV)
	}
	var vd vfs.VirtualDentry
	if terminal != nil {
		vd = terminal.VirtualDentry()
		vd.IncRef()
	}
	c.mu.Lock()
	old := c.terminal
	c.terminal = vd
	c.mu.Unlock()
	if old.Ok() {
		old.DecRef(ctx)
	}
	return nil
}
