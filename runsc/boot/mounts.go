// Package boot is the Sentry side of `runsc boot`: from the spec and the
// descriptors runsc hands it (the Gofer's sockets, the stdio), it builds the
// sandbox's filesystem tree, its kernel, and its first process.
package boot

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/fsimpl/dev"
	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/fsimpl/gofer"
	"carapace.dev/carapace/pkg/sentry/fsimpl/overlay"
	"carapace.dev/carapace/pkg/sentry/fsimpl/proc"
	"carapace.dev/carapace/pkg/sentry/fsimpl/sys"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MountConfig is what the sandbox's filesystem tree is built from.
type MountConfig struct {
	Spec *specs.Spec
	// GoferMounts and GoferSockets correspond one to one: the root first,
	// then each bind mount (specutils.GoferMounts).
	GoferMounts  []specutils.GoferMount
	GoferSockets []*unet.Socket
	// Overlay puts a tmpfs over the root so the sandbox writes to memory.
	Overlay    bool
	MemoryFile *pgalloc.MemoryFile
}

// NewVFS returns a VirtualFilesystem with every filesystem type the
// Sentry mounts registered.
func NewVFS() (*vfs.VirtualFilesystem, error) {
	v := vfs.New()
	for name, t := range map[string]vfs.FilesystemType{
		tmpfs.Name:   tmpfs.FilesystemType{},
		gofer.Name:   gofer.FilesystemType{},
		overlay.Name: overlay.FilesystemType{},
		devpts.Name:  devpts.FilesystemType{},
	} {
		if err := v.RegisterFilesystemType(name, t); err != nil {
			return nil, err
		}
	}
	if err := dev.Register(v); err != nil {
		return nil, err
	}
	return v, nil
}

// RegisterKernelFilesystems registers proc and sysfs, which describe the
// kernel and so can only exist once it does.
func RegisterKernelFilesystems(v *vfs.VirtualFilesystem, k *kernel.Kernel) error {
	if err := proc.Register(v, k); err != nil {
		return fmt.Errorf("registering proc: %w", err)
	}
	if err := sys.Register(v, proc.NumCPUs()); err != nil {
		return fmt.Errorf("registering sysfs: %w", err)
	}
	return nil
}

// BuildMounts makes the sandbox's mount namespace: the root from the Gofer
// (under an overlay when asked), then the spec's mounts in order. Mount
// types the Sentry does not implement yet are skipped with a warning, not
// silently.
func BuildMounts(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, mc *MountConfig) (*vfs.MountNamespace, error) {
	if len(mc.GoferMounts) == 0 || len(mc.GoferMounts) != len(mc.GoferSockets) {
		return nil, fmt.Errorf("%d gofer sockets for %d served trees", len(mc.GoferSockets), len(mc.GoferMounts))
	}
	// Memory filesystems made later (/dev, mount(2) of tmpfs) must use
	// the memory file the platform maps, not one of their own.
	if mc.MemoryFile != nil {
		v.SetMemoryFile(mc.MemoryFile)
	}
	goferOpts := func(i int) *vfs.MountOptions {
		// The sandbox owns its root and may cache it; a bind mount is the
		// host's, which can change it behind the sandbox's back.
		cache := gofer.CacheExclusive
		if i > 0 {
			cache = gofer.CacheShared
		}
		return &vfs.MountOptions{
			ReadOnly: mc.GoferMounts[i].ReadOnly && !(i == 0 && mc.Overlay),
			GetFilesystemOptions: vfs.GetFilesystemOptions{InternalData: &gofer.InternalData{
				Socket: mc.GoferSockets[i], AttachName: "/", MemoryFile: mc.MemoryFile, Cache: cache,
			}},
		}
	}
	var mntns *vfs.MountNamespace
	if mc.Overlay {
		lower, err := v.NewMountNamespace(ctx, creds, "gofer-root", gofer.Name, &vfs.MountOptions{
			ReadOnly: true, GetFilesystemOptions: goferOpts(0).GetFilesystemOptions,
		})
		if err != nil {
			return nil, fmt.Errorf("mounting the root from the gofer: %w", err)
		}
		upper, err := v.NewMountNamespace(ctx, creds, "overlay-upper", tmpfs.Name, &vfs.MountOptions{
			GetFilesystemOptions: vfs.GetFilesystemOptions{InternalData: &tmpfs.InternalData{MemoryFile: mc.MemoryFile}},
		})
		if err != nil {
			return nil, fmt.Errorf("mounting the overlay's upper layer: %w", err)
		}
		lowerRoot, upperRoot := lower.Root(), upper.Root()
		mntns, err = v.NewMountNamespace(ctx, creds, "root", overlay.Name, &vfs.MountOptions{
			ReadOnly: mc.Spec.Root.Readonly,
			GetFilesystemOptions: vfs.GetFilesystemOptions{
				InternalData: &overlay.Options{Lower: lowerRoot, Upper: upperRoot},
			},
		})
		// The overlay holds its own references to both layers.
		lowerRoot.DecRef(ctx)
		upperRoot.DecRef(ctx)
		if err != nil {
			return nil, fmt.Errorf("mounting the root overlay: %w", err)
		}
	} else {
		var err error
		if mntns, err = v.NewMountNamespace(ctx, creds, "gofer-root", gofer.Name, goferOpts(0)); err != nil {
			return nil, fmt.Errorf("mounting the root from the gofer: %w", err)
		}
	}
	root := mntns.Root()
	defer root.DecRef(ctx)

	bind := 1
	for _, m := range mc.Spec.Mounts {
		dst := path.Clean("/" + m.Destination)
		target := &vfs.PathOperation{Root: root, Start: root, Path: dst, FollowFinalSymlink: true}
		var fstype string
		opts := &vfs.MountOptions{ReadOnly: hasOption(m.Options, "ro")}
		switch {
		case specutils.IsBindMount(m):
			if bind >= len(mc.GoferMounts) {
				return nil, fmt.Errorf("bind mount %s has no gofer socket", dst)
			}
			fstype, opts = gofer.Name, goferOpts(bind)
			bind++
		case m.Type == "tmpfs" && dst == "/dev":
			// /dev gets the Sentry's own device nodes (null, zero, …).
			fstype = dev.Name
		case m.Type == "tmpfs":
			fstype = tmpfs.Name
			opts.GetFilesystemOptions = vfs.GetFilesystemOptions{
				Data:         tmpfsData(m.Options),
				InternalData: &tmpfs.InternalData{MemoryFile: mc.MemoryFile},
			}
		case m.Type == devpts.Name:
			// Terminals; the kernel supplies job control (kernel/tty.go).
			fstype = devpts.Name
			opts.GetFilesystemOptions = vfs.GetFilesystemOptions{Data: devpts.MountData(m.Options)}
		case (m.Type == proc.Name || m.Type == sys.Name) && slices.Contains(v.FilesystemTypes(), m.Type):
			// Registered by RegisterKernelFilesystems once a kernel exists.
			fstype = m.Type
		default:
			log.Warningf("mount of %s (type %q) is not supported yet; skipped", dst, m.Type)
			continue
		}
		// The spec's per-mount flags (runc's defaults: /proc, /sys,
		// /dev/shm nosuid,noexec,nodev); vfs.MountAt applies them.
		for flag, name := range map[uint64]string{unix.MS_NOSUID: "nosuid", unix.MS_NODEV: "nodev", unix.MS_NOEXEC: "noexec"} {
			if hasOption(m.Options, name) {
				opts.Flags |= flag
			}
		}
		if err := mountAt(ctx, v, creds, root, dst, m.Source, target, fstype, opts); err != nil {
			return nil, fmt.Errorf("mounting %s (%s): %w", dst, m.Type, err)
		}
	}
	if err := applyPathRestrictions(ctx, v, creds, root, mc); err != nil { // maskpaths.go
		return nil, err
	}
	return mntns, nil
}

// tmpfsData keeps the options of an OCI tmpfs mount that tmpfs reads
// (mode, size, uid, gid); the rest are mount flags or do not apply.
func tmpfsData(options []string) string {
	var keep []string
	for _, o := range options {
		if k, _, ok := strings.Cut(o, "="); ok && (k == "mode" || k == "size" || k == "uid" || k == "gid") {
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ",")
}

// mkdirAll creates dst and its missing parents, as runc does for mount
// points an image lacks.
func mkdirAll(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry, dst string) error {
	p := ""
	for _, c := range strings.Split(strings.TrimPrefix(dst, "/"), "/") {
		if c == "" {
			continue
		}
		p += "/" + c
		err := v.MkdirAt(ctx, creds, &vfs.PathOperation{Root: root, Start: root, Path: p}, &vfs.MkdirOptions{Mode: 0o755})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	return nil
}

func hasOption(opts []string, want string) bool {
	for _, o := range opts {
		if o == want {
			return true
		}
	}
	return false
}
