package boot

import (
	"context"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/fsimpl/dev"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
)

// setConsole makes the first process's terminal the sandbox's
// /dev/console when the spec gives it one (process.terminal), as the OCI
// runtime spec's default devices ask (runc bind-mounts the pty there).
// Its stdin is that pty then. Without a terminal, /dev/console
// answers ENODEV, as Linux does with no console device.
func setConsole(ctx context.Context, v *vfs.VirtualFilesystem, fdt *kernel.FDTable, terminal bool) {
	if !terminal {
		return
	}
	f := fdt.GetFile(0)
	if f == nil {
		return
	}
	defer f.DecRef(ctx)
	if err := dev.SetConsole(ctx, v, f); err != nil {
		log.Warningf("boot: no /dev/console: %v", err)
	}
}
