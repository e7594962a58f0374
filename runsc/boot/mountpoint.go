package boot

import (
	"context"
	"errors"
	"fmt"
	"path"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// mountAt mounts at dst, creating the mount point if the image lacks it,
// as runc does: a directory, or an empty file when a bind mount brings a
// file (Docker's /etc/resolv.conf, /etc/hostname, /etc/hosts).
func mountAt(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, dst, source string, target *vfs.PathOperation, fstype string, opts *vfs.MountOptions) error {
	if err := mkdirAll(ctx, v, creds, root, path.Dir(dst)); err != nil {
		return fmt.Errorf("creating mount point %s: %w", dst, err)
	}
	if fstype != gofer.Name {
		if err := mkdirAll(ctx, v, creds, root, dst); err != nil {
			return fmt.Errorf("creating mount point %s: %w", dst, err)
		}
		_, err := v.MountAt(ctx, creds, source, target, fstype, opts)
		return err
	}
	// A bind mount: attach the served tree on its own first, to learn
	// whether it is a directory or a file, then bind its root over a
	// mount point of the same kind.
	ns, err := v.NewMountNamespace(ctx, creds, source, fstype, opts)
	if err != nil {
		return err
	}
	treeRoot := ns.Root()
	defer treeRoot.DecRef(ctx)
	rootOp := &vfs.PathOperation{Root: treeRoot, Start: treeRoot, AllowEmptyPath: true}
	st, err := v.StatAt(ctx, creds, rootOp, &vfs.StatOptions{Mask: linux.STATX_TYPE})
	if err != nil {
		return fmt.Errorf("stat of the served tree: %w", err)
	}
	at := &vfs.PathOperation{Root: root, Start: root, Path: dst}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := v.MkdirAt(ctx, creds, at, &vfs.MkdirOptions{Mode: 0o755}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("creating mount point %s: %w", dst, err)
		}
	} else {
		fd, err := v.OpenAt(ctx, creds, at, &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644})
		if err != nil && !errors.Is(err, unix.EISDIR) {
			return fmt.Errorf("creating file mount point %s: %w", dst, err)
		}
		if fd != nil {
			fd.DecRef(ctx)
		}
	}
	_, err = v.BindAt(ctx, creds, rootOp, target, opts.ReadOnly)
	return err
}
