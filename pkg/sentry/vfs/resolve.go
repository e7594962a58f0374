package vfs

import (
	"context"
	"strings"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// VirtualDentry names a file: a dentry as seen through a mount. The zero
// value names nothing.
type VirtualDentry struct {
	mount  *Mount
	dentry *Dentry
}

// MakeVirtualDentry returns a VirtualDentry without taking references.
func MakeVirtualDentry(m *Mount, d *Dentry) VirtualDentry { return VirtualDentry{m, d} }

// Ok reports whether vd names something.
func (vd VirtualDentry) Ok() bool { return vd.mount != nil }

// Mount returns vd's mount.
func (vd VirtualDentry) Mount() *Mount { return vd.mount }

// Dentry returns vd's dentry.
func (vd VirtualDentry) Dentry() *Dentry { return vd.dentry }

// IncRef takes a reference on both halves.
func (vd VirtualDentry) IncRef() {
	vd.mount.IncRef()
	vd.dentry.IncRef()
}

// DecRef drops a reference on both halves.
func (vd VirtualDentry) DecRef(ctx context.Context) {
	vd.dentry.DecRef(ctx)
	vd.mount.DecRef(ctx)
}

// PathOperation says where a path walk starts and what it resolves.
type PathOperation struct {
	// Root is the caller's root (chroot): ".." never climbs above it and
	// absolute paths and symlinks start there.
	Root VirtualDentry
	// Start is where a relative path starts (cwd or the dirfd).
	Start VirtualDentry
	Path  string
	// FollowFinalSymlink follows a symlink in the last component.
	FollowFinalSymlink bool
	// AllowEmptyPath is AT_EMPTY_PATH: an empty Path names Start.
	AllowEmptyPath bool
	// Resolve holds openat2(2) RESOLVE_* flags.
	Resolve uint64
}

const (
	maxSymlinkTraversals = 40
	maxNameLen           = 255
	maxPathLen           = 4096 // PATH_MAX, counting the NUL
)

// resolver walks a path one component at a time.
type resolver struct {
	vfs   *VirtualFilesystem
	creds *auth.Credentials
	root  VirtualDentry // borrowed from the PathOperation
	cur   VirtualDentry // owned reference
	// rest is what remains of the path to walk; mustBeDir is set when the
	// path (or the symlink target being walked) ended in a slash.
	rest      string
	mustBeDir bool
	symlinks  int
	flags     uint64

	// pre[preI:preN] are names a batched revalidation has checked ahead
	// of the walk (see revalidate).
	pre        [maxBatchRevalidate - 1]prechecked
	preI, preN int
}

// initResolver prepares r (a caller's stack value, so that a walk
// allocates nothing) to walk pop.
func (vfs *VirtualFilesystem) initResolver(r *resolver, creds *auth.Credentials, pop *PathOperation) error {
	if len(pop.Path) >= maxPathLen {
		return unix.ENAMETOOLONG
	}
	if pop.Path == "" && !pop.AllowEmptyPath {
		return unix.ENOENT
	}
	*r = resolver{vfs: vfs, creds: creds, root: pop.Root, flags: pop.Resolve}
	if r.flags&linux.RESOLVE_IN_ROOT != 0 && r.flags&linux.RESOLVE_BENEATH != 0 {
		return unix.EINVAL
	}
	if r.flags&(linux.RESOLVE_IN_ROOT|linux.RESOLVE_BENEATH) != 0 {
		// The start directory is the root for the whole walk.
		r.root = pop.Start
	}
	if strings.HasPrefix(pop.Path, "/") {
		if r.flags&linux.RESOLVE_BENEATH != 0 {
			return unix.EXDEV
		}
		r.cur = r.root
	} else {
		r.cur = pop.Start
	}
	r.cur.IncRef()
	r.setRest(pop.Path)
	return nil
}

func (r *resolver) setRest(p string) {
	r.mustBeDir = strings.HasSuffix(p, "/")
	r.rest = strings.TrimLeft(p, "/")
}

func (r *resolver) release(ctx context.Context) {
	if r.cur.Ok() {
		r.cur.DecRef(ctx)
		r.cur = VirtualDentry{}
	}
}

// next splits off the next component; last says it is the final one.
func (r *resolver) next() (name string, last bool) {
	i := strings.IndexByte(r.rest, '/')
	if i < 0 {
		name, r.rest = r.rest, ""
		return name, true
	}
	name = r.rest[:i]
	r.rest = strings.TrimLeft(r.rest[i:], "/")
	return name, r.rest == ""
}

// set replaces cur, taking over the caller's reference on vd.
func (r *resolver) set(ctx context.Context, vd VirtualDentry) {
	r.cur.DecRef(ctx)
	r.cur = vd
}

// mayTraverse checks search permission on the current directory.
func (r *resolver) mayTraverse() error {
	d := r.cur.dentry
	if !d.isDir() {
		return unix.ENOTDIR
	}
	return checkInodePermissions(r.creds, d.inode, MayExec)
}

// dotdot moves cur to its parent, never above the root and across mounts.
func (r *resolver) dotdot(ctx context.Context) error {
	for {
		if r.cur.mount == r.root.mount && r.cur.dentry == r.root.dentry {
			if r.flags&linux.RESOLVE_BENEATH != 0 {
				return unix.EXDEV
			}
			return nil
		}
		if r.cur.dentry != r.cur.mount.root {
			break
		}
		// At the root of a mount: continue in the parent mount, at the
		// mount point, then take its parent.
		r.vfs.mountMu.RLock()
		m := r.cur.mount
		parent, point := m.parent, m.point
		detached := m.detached
		r.vfs.mountMu.RUnlock()
		if parent == nil || detached {
			return nil
		}
		if r.flags&linux.RESOLVE_NO_XDEV != 0 {
			return unix.EXDEV
		}
		vd := VirtualDentry{parent, point}
		vd.IncRef()
		r.set(ctx, vd)
	}
	d := r.cur.dentry
	d.fs.treeMu.RLock()
	p := d.parent
	if p == nil {
		p = d
	}
	p.IncRef()
	d.fs.treeMu.RUnlock()
	r.cur.mount.IncRef()
	r.set(ctx, VirtualDentry{r.cur.mount, p})
	return nil
}

// lookupChild returns a referenced child of the current directory.
func (r *resolver) lookupChild(ctx context.Context, name string) (*Dentry, error) {
	if len(name) > maxNameLen {
		return nil, unix.ENAMETOOLONG
	}
	d := r.cur.dentry
	fs := d.fs
	if fs.revalidator != nil {
		r.revalidate(ctx, d, name)
	}
	fs.treeMu.RLock()
	c, ok := d.children[name]
	if ok {
		c.IncRef()
		fs.treeMu.RUnlock()
		return c, nil
	}
	fs.treeMu.RUnlock()
	fs.treeMu.Lock()
	c, err := d.childLocked(ctx, name)
	if err == nil {
		c.IncRef()
	}
	fs.treeMu.Unlock()
	return c, err
}

// crossMounts follows mounts stacked on vd, taking over vd's reference.
func (r *resolver) crossMounts(ctx context.Context, vd VirtualDentry) (VirtualDentry, error) {
	for {
		m := r.vfs.mountAt(vd.mount, vd.dentry)
		if m == nil {
			return vd, nil
		}
		if r.flags&linux.RESOLVE_NO_XDEV != 0 {
			vd.DecRef(ctx)
			return VirtualDentry{}, unix.EXDEV
		}
		next := VirtualDentry{m, m.root}
		next.IncRef()
		vd.DecRef(ctx)
		vd = next
	}
}

// step resolves one component name of the current directory into a
// referenced VirtualDentry, without following a symlink.
func (r *resolver) step(ctx context.Context, name string) (VirtualDentry, error) {
	if name == "" {
		// The path was "/", empty (AT_EMPTY_PATH) or the start itself.
		r.cur.IncRef()
		return r.cur, nil
	}
	if err := r.mayTraverse(); err != nil {
		return VirtualDentry{}, err
	}
	switch name {
	case ".":
		r.cur.IncRef()
		return r.cur, nil
	case "..":
		if err := r.dotdot(ctx); err != nil {
			return VirtualDentry{}, err
		}
		r.cur.IncRef()
		return r.cur, nil
	}
	c, err := r.lookupChild(ctx, name)
	if err != nil {
		return VirtualDentry{}, err
	}
	r.cur.mount.IncRef()
	return r.crossMounts(ctx, VirtualDentry{r.cur.mount, c})
}

// MagicLink is implemented by symlink inodes whose target is a file rather
// than a path (/proc/[pid]/fd/N, /proc/[pid]/exe, cwd, root): following
// one jumps straight to the file it names.
type MagicLink interface {
	// ResolveMagicLink returns the file the link names, with a reference.
	ResolveMagicLink(ctx context.Context) (VirtualDentry, error)
}

// followSymlink makes the walk continue through the symlink vd (whose
// reference the caller keeps), prepending its target to what remains.
func (r *resolver) followSymlink(ctx context.Context, vd VirtualDentry) error {
	if r.flags&linux.RESOLVE_NO_SYMLINKS != 0 {
		return unix.ELOOP
	}
	r.symlinks++
	if r.symlinks > maxSymlinkTraversals {
		return unix.ELOOP
	}
	if ml, ok := vd.dentry.inode.(MagicLink); ok {
		// RESOLVE_BENEATH and RESOLVE_IN_ROOT forbid magic links too
		// (openat2(2)): they could leave the subtree.
		if r.flags&(linux.RESOLVE_NO_MAGICLINKS|linux.RESOLVE_BENEATH|linux.RESOLVE_IN_ROOT) != 0 {
			return unix.ELOOP
		}
		target, err := ml.ResolveMagicLink(ctx)
		if err != nil {
			return err
		}
		// What remains is walked from the target; if nothing remains,
		// the final name is "" and names the target itself.
		r.set(ctx, target)
		return nil
	}
	target, err := vd.dentry.inode.Readlink(ctx)
	if err != nil {
		return err
	}
	if target == "" {
		return unix.ENOENT
	}
	if target[0] == '/' {
		if r.flags&linux.RESOLVE_BENEATH != 0 {
			return unix.EXDEV
		}
		r.root.IncRef()
		r.set(ctx, r.root)
	}
	mustBeDir := r.mustBeDir
	if r.rest == "" {
		r.setRest(target)
		r.mustBeDir = r.mustBeDir || mustBeDir
	} else {
		r.setRest(target + "/" + r.rest)
		r.mustBeDir = mustBeDir
	}
	if len(r.rest) >= maxPathLen {
		return unix.ENAMETOOLONG
	}
	return nil
}

// walkToFinal walks every component but the last, following symlinks, and
// returns the last (which may be "", "." or "..").
func (r *resolver) walkToFinal(ctx context.Context) (string, error) {
	for {
		name, last := r.next()
		if last {
			return name, nil
		}
		vd, err := r.step(ctx, name)
		if err != nil {
			return "", err
		}
		if vd.dentry.isSymlink() {
			err := r.followSymlink(ctx, vd)
			vd.DecRef(ctx)
			if err != nil {
				return "", err
			}
			continue
		}
		r.set(ctx, vd)
	}
}

// resolve walks the whole path and returns the file it names (with a
// reference), following a final symlink if follow is set or the path ends
// in a slash.
func (r *resolver) resolve(ctx context.Context, follow bool) (VirtualDentry, error) {
	for {
		name, err := r.walkToFinal(ctx)
		if err != nil {
			return VirtualDentry{}, err
		}
		vd, err := r.step(ctx, name)
		if err != nil {
			return VirtualDentry{}, err
		}
		if vd.dentry.isSymlink() && (follow || r.mustBeDir) {
			err := r.followSymlink(ctx, vd)
			vd.DecRef(ctx)
			if err != nil {
				return VirtualDentry{}, err
			}
			continue
		}
		if r.mustBeDir && !vd.dentry.isDir() {
			vd.DecRef(ctx)
			return VirtualDentry{}, unix.ENOTDIR
		}
		return vd, nil
	}
}

// GetDentryOptions modify GetDentryAt.
type GetDentryOptions struct {
	// CheckSearchable requires the result to be a searchable directory
	// (chdir, chroot).
	CheckSearchable bool
}

// GetDentryAt returns the file pop names, with a reference.
func (vfs *VirtualFilesystem) GetDentryAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation, opts *GetDentryOptions) (VirtualDentry, error) {
	var r resolver
	if err := vfs.initResolver(&r, creds, pop); err != nil {
		return VirtualDentry{}, err
	}
	defer r.release(ctx)
	vd, err := r.resolve(ctx, pop.FollowFinalSymlink)
	if err != nil {
		return VirtualDentry{}, err
	}
	if opts != nil && opts.CheckSearchable {
		if !vd.dentry.isDir() {
			vd.DecRef(ctx)
			return VirtualDentry{}, unix.ENOTDIR
		}
		if err := checkInodePermissions(creds, vd.dentry.inode, MayExec); err != nil {
			vd.DecRef(ctx)
			return VirtualDentry{}, err
		}
	}
	return vd, nil
}
