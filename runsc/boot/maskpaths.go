package boot

import (
	"context"
	"errors"
	"fmt"
	"path"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/fsimpl/dev"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// applyPathRestrictions applies the spec's linux.maskedPaths and
// linux.readonlyPaths to the finished mount tree, as runc does: a masked
// file gets the null device bound over it, a masked directory an empty
// read-only tmpfs; a read-only path is bound onto itself read-only. A path
// the sandbox does not have is skipped (Docker's defaults name /proc files
// such as kcore and timer_list that the Sentry's /proc lacks), and so is
// one reached through a missing or non-directory component; any other
// failure fails the container rather than leave the path exposed.
func applyPathRestrictions(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, mc *MountConfig) error {
	l := mc.Spec.Linux
	if l == nil || (len(l.MaskedPaths) == 0 && len(l.ReadonlyPaths) == 0) {
		return nil
	}
	var nullDev *vfs.MountNamespace
	defer func() {
		if nullDev != nil {
			nullDev.DecRef(ctx)
		}
	}()
	at := func(p string) *vfs.PathOperation {
		return &vfs.PathOperation{Root: root, Start: root, Path: p, FollowFinalSymlink: true}
	}
	for _, p := range l.MaskedPaths {
		p = path.Clean("/" + p)
		st, err := v.StatAt(ctx, creds, at(p), &vfs.StatOptions{Mask: linux.STATX_TYPE})
		if skippable(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			_, err = v.MountAt(ctx, creds, "tmpfs", at(p), tmpfs.Name, &vfs.MountOptions{
				ReadOnly: true,
				GetFilesystemOptions: vfs.GetFilesystemOptions{
					Data: "mode=0555", InternalData: &tmpfs.InternalData{MemoryFile: mc.MemoryFile},
				},
			})
		} else {
			if nullDev == nil {
				// A device filesystem of its own, so masking does not
				// depend on the spec mounting /dev.
				if nullDev, err = v.NewMountNamespace(ctx, creds, "masked", dev.Name, &vfs.MountOptions{}); err != nil {
					return fmt.Errorf("masking %s: %w", p, err)
				}
			}
			devRoot := nullDev.Root()
			_, err = v.BindAt(ctx, creds, &vfs.PathOperation{Root: devRoot, Start: devRoot, Path: "null"}, at(p), true)
			devRoot.DecRef(ctx)
		}
		if err != nil && !skippable(err) {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range l.ReadonlyPaths {
		p = path.Clean("/" + p)
		if _, err := v.BindAt(ctx, creds, at(p), at(p), true); err != nil && !skippable(err) {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}

// skippable reports errors meaning "the path is not there".
func skippable(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}
