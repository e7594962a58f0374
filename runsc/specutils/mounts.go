package specutils

import (
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// GoferMount is one host tree the Gofer serves to the Sentry.
type GoferMount struct {
	// Destination is where the Sentry mounts it ("/" for the root).
	Destination string
	// HostPath is the tree on the host.
	HostPath string
	// ReadOnly makes the Gofer refuse every write (EROFS).
	ReadOnly bool
}

// GoferMounts lists, in the order the Gofer serves them and the Sentry
// attaches them, the trees that reach the sandbox through the Gofer: the
// root first, then every bind mount in spec order. Every other mount type
// (proc, tmpfs, sysfs, devpts…) is implemented inside the Sentry. With
// overlay, the root is served read-only: the sandbox writes to memory.
func GoferMounts(spec *specs.Spec, bundleDir string, overlay bool) []GoferMount {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(bundleDir, p)
	}
	mounts := []GoferMount{{Destination: "/", HostPath: abs(spec.Root.Path), ReadOnly: spec.Root.Readonly || overlay}}
	for _, m := range spec.Mounts {
		if !IsBindMount(m) {
			continue
		}
		mounts = append(mounts, GoferMount{Destination: m.Destination, HostPath: abs(m.Source), ReadOnly: hasOption(m.Options, "ro")})
	}
	return mounts
}

// IsBindMount reports whether m brings a host path into the sandbox.
func IsBindMount(m specs.Mount) bool {
	return m.Type == "bind" || hasOption(m.Options, "bind", "rbind")
}
