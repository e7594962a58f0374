package vfs

import (
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// FilesystemType creates filesystem instances (mount(2)'s fstype).
type FilesystemType interface {
	// GetFilesystem returns a new (or shared) filesystem and its root
	// dentry, each with a reference for the caller.
	GetFilesystem(ctx context.Context, vfs *VirtualFilesystem, creds *auth.Credentials, source string, opts GetFilesystemOptions) (*Filesystem, *Dentry, error)
	// Name is the type's name (/proc/filesystems).
	Name() string
}

// GetFilesystemOptions are mount(2)'s flags and data.
type GetFilesystemOptions struct {
	Flags uint64
	Data  string
	// InternalData passes Go values between Sentry components (a
	// memory file, a device registry).
	InternalData any
}

// MountOptions are the per-mount flags.
type MountOptions struct {
	// ReadOnly is MS_RDONLY.
	ReadOnly bool
	GetFilesystemOptions
}

// Mount is one mount: a filesystem subtree (root) attached at a point in a
// parent mount.
type Mount struct {
	vfs  *VirtualFilesystem
	fs   *Filesystem
	root *Dentry
	ns   *MountNamespace
	ID   uint64

	readOnly atomic.Bool
	// source is mount(2)'s source argument, which /proc/[pid]/mounts
	// shows; empty for mounts made without one (namespace roots, binds).
	source string
	// flags holds MS_NOSUID, MS_NODEV and MS_NOEXEC (see mountops.go).
	flags atomic.Uint32
	// refs counts VirtualDentries naming this mount, plus one for being in
	// the mount tree.
	refs atomic.Int64

	// Guarded by vfs.mountMu.
	parent   *Mount
	point    *Dentry
	children map[*Mount]struct{}
	detached bool
}

// Filesystem returns the mounted filesystem.
func (m *Mount) Filesystem() *Filesystem { return m.fs }

// Root returns the mount's root dentry.
func (m *Mount) Root() *Dentry { return m.root }

// ReadOnly reports MS_RDONLY.
func (m *Mount) ReadOnly() bool { return m.readOnly.Load() }

// SetReadOnly changes MS_RDONLY (mount -o remount).
func (m *Mount) SetReadOnly(ro bool) { m.readOnly.Store(ro) }

// IncRef adds a reference.
func (m *Mount) IncRef() { m.refs.Add(1) }

// DecRef drops a reference; a detached mount is torn down with its last.
func (m *Mount) DecRef(ctx context.Context) {
	if m.refs.Add(-1) == 0 {
		m.root.DecRef(ctx)
		m.fs.DecRef(ctx)
	}
}

// mountKey is where a mount is attached.
type mountKey struct {
	parent *Mount
	point  *Dentry
}

// MountNamespace is a mount tree (mount_namespaces(7)).
type MountNamespace struct {
	root *Mount
	// refs counts the namespace's users (see CloneMountNamespace).
	refs atomic.Int64
}

// Root returns the namespace's root with a new reference.
func (mns *MountNamespace) Root() VirtualDentry {
	vd := VirtualDentry{mount: mns.root, dentry: mns.root.root}
	vd.IncRef()
	return vd
}

// VirtualFilesystem is the Sentry's VFS: filesystem types and the mount
// table. One per sandbox kernel.
type VirtualFilesystem struct {
	typesMu sync.RWMutex
	types   map[string]FilesystemType

	// mountMu guards the mount table and every Mount's tree fields.
	mountMu sync.RWMutex
	// mounts maps an attachment point to the stack of mounts on it, the
	// last the visible one.
	mounts map[mountKey][]*Mount

	lastMountID atomic.Uint64
	lastDev     atomic.Uint32
	devs        deviceRegistry
	anon        anonFS

	// inotify holds the inotify(7) watches.
	inotify inotifyState

	// fileLocks holds the flock/fcntl lock state of inodes that have
	// been locked.
	locksMu   sync.Mutex
	fileLocks map[Inode]*fileLocks
	// lockedInodes is len(fileLocks), readable without locksMu so that
	// closing a file when nothing is locked anywhere takes no lock.
	lockedInodes atomic.Int64

	// memoryFile is the kernel's memory file (see SetMemoryFile).
	memoryFile atomic.Pointer[pgalloc.MemoryFile]
}

// SetMemoryFile names the memory file of the kernel this VFS serves:
// filesystems that keep file data in memory (tmpfs, /dev, the Gofer's
// cache) allocate there when their mounter passes none, as mount(2) does.
// It must be the one the platform maps into application address spaces,
// since nothing else can be mapped there.
func (vfs *VirtualFilesystem) SetMemoryFile(mf *pgalloc.MemoryFile) { vfs.memoryFile.Store(mf) }

// MemoryFile returns the memory file set by SetMemoryFile, or nil.
func (vfs *VirtualFilesystem) MemoryFile() *pgalloc.MemoryFile { return vfs.memoryFile.Load() }

// New returns an empty VirtualFilesystem.
func New() *VirtualFilesystem {
	return &VirtualFilesystem{types: make(map[string]FilesystemType), mounts: make(map[mountKey][]*Mount)}
}

// RegisterFilesystemType makes a type mountable by name.
func (vfs *VirtualFilesystem) RegisterFilesystemType(name string, t FilesystemType) error {
	vfs.typesMu.Lock()
	defer vfs.typesMu.Unlock()
	if _, ok := vfs.types[name]; ok {
		return fmt.Errorf("filesystem type %q already registered", name)
	}
	vfs.types[name] = t
	return nil
}

// FilesystemTypes lists the registered type names.
func (vfs *VirtualFilesystem) FilesystemTypes() []string {
	vfs.typesMu.RLock()
	defer vfs.typesMu.RUnlock()
	var names []string
	for n := range vfs.types {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NewFilesystem returns a Filesystem with one reference, for
// FilesystemType implementations.
func (vfs *VirtualFilesystem) NewFilesystem(impl FilesystemImpl) *Filesystem {
	fs := &Filesystem{vfs: vfs, impl: impl, devMinor: vfs.lastDev.Add(1)}
	fs.refs.Store(1)
	if rv, ok := impl.(Revalidator); ok && rv.NeedsRevalidation() {
		fs.revalidator = rv
	}
	if cl, ok := impl.(DentryCacheLimiter); ok {
		fs.lru.limit = max(cl.DentryCacheLimit(), 0)
	}
	return fs
}

func (vfs *VirtualFilesystem) getFilesystem(ctx context.Context, creds *auth.Credentials, source, fstype string, opts *MountOptions) (*Filesystem, *Dentry, error) {
	vfs.typesMu.RLock()
	t, ok := vfs.types[fstype]
	vfs.typesMu.RUnlock()
	if !ok {
		return nil, nil, unix.ENODEV
	}
	return t.GetFilesystem(ctx, vfs, creds, source, opts.GetFilesystemOptions)
}

func (vfs *VirtualFilesystem) newMount(fs *Filesystem, root *Dentry, ns *MountNamespace, ro bool) *Mount {
	m := &Mount{vfs: vfs, fs: fs, root: root, ns: ns, ID: vfs.lastMountID.Add(1)}
	m.readOnly.Store(ro)
	m.refs.Store(1)
	return m
}

// NewMountNamespace creates a mount namespace whose root is a new instance
// of fstype.
func (vfs *VirtualFilesystem) NewMountNamespace(ctx context.Context, creds *auth.Credentials, source, fstype string, opts *MountOptions) (*MountNamespace, error) {
	fs, root, err := vfs.getFilesystem(ctx, creds, source, fstype, opts)
	if err != nil {
		return nil, fmt.Errorf("creating root filesystem %q: %w", fstype, err)
	}
	ns := &MountNamespace{}
	ns.refs.Store(1)
	ns.root = vfs.newMount(fs, root, ns, opts.ReadOnly)
	return ns, nil
}

// NewDisconnectedMount returns a mount of fs rooted at root that is in no
// namespace, for anonymous files (pipes, eventfds, memfds). It takes over
// the caller's references on fs and root.
func (vfs *VirtualFilesystem) NewDisconnectedMount(fs *Filesystem, root *Dentry) *Mount {
	m := vfs.newMount(fs, root, nil, false)
	m.detached = true
	return m
}

// mountAt returns the mount visible at (parent, point), or nil.
func (vfs *VirtualFilesystem) mountAt(parent *Mount, point *Dentry) *Mount {
	if point.mounts.Load() == 0 {
		return nil
	}
	vfs.mountMu.RLock()
	defer vfs.mountMu.RUnlock()
	st := vfs.mounts[mountKey{parent, point}]
	if len(st) == 0 {
		return nil
	}
	return st[len(st)-1]
}

func (vfs *VirtualFilesystem) attachLocked(m, parent *Mount, point *Dentry) {
	k := mountKey{parent, point}
	// A new mount goes on top: it hides earlier mounts on the same point.
	vfs.mounts[k] = append(vfs.mounts[k], m)
	m.parent, m.point = parent, point
	m.ns = parent.ns
	if parent.children == nil {
		parent.children = make(map[*Mount]struct{})
	}
	parent.children[m] = struct{}{}
	point.mounts.Add(1)
	point.IncRef()
	parent.IncRef()
}

// MountAt mounts a new instance of fstype at the directory named by target,
// with the per-mount flags of opts.Flags (MountFlagsMask).
func (vfs *VirtualFilesystem) MountAt(ctx context.Context, creds *auth.Credentials, source string, target *PathOperation, fstype string, opts *MountOptions) (*Mount, error) {
	if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
		return nil, unix.EPERM
	}
	vd, err := vfs.GetDentryAt(ctx, creds, target, &GetDentryOptions{CheckSearchable: true})
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(ctx)
	fs, root, err := vfs.getFilesystem(ctx, creds, source, fstype, opts)
	if err != nil {
		return nil, err
	}
	m := vfs.newMount(fs, root, nil, opts.ReadOnly)
	m.source = source
	// The per-mount flags hold from the moment the mount is visible.
	m.SetFlags(uint32(opts.Flags))
	if err := vfs.attach(m, vd); err != nil {
		m.DecRef(ctx)
		return nil, err
	}
	return m, nil
}

func (vfs *VirtualFilesystem) attach(m *Mount, vd VirtualDentry) error {
	vfs.mountMu.Lock()
	defer vfs.mountMu.Unlock()
	if vd.mount.detached || vd.mount.ns == nil || vd.dentry.dead.Load() {
		return unix.ENOENT
	}
	vfs.attachLocked(m, vd.mount, vd.dentry)
	return nil
}

// BindAt makes the subtree at source visible at target too (MS_BIND).
func (vfs *VirtualFilesystem) BindAt(ctx context.Context, creds *auth.Credentials, source, target *PathOperation, readOnly bool) (*Mount, error) {
	if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
		return nil, unix.EPERM
	}
	src, err := vfs.GetDentryAt(ctx, creds, source, &GetDentryOptions{})
	if err != nil {
		return nil, err
	}
	defer src.DecRef(ctx)
	dst, err := vfs.GetDentryAt(ctx, creds, target, &GetDentryOptions{})
	if err != nil {
		return nil, err
	}
	defer dst.DecRef(ctx)
	// A file may be bound over a file and a directory over a directory.
	if src.dentry.isDir() != dst.dentry.isDir() {
		if src.dentry.isDir() {
			return nil, unix.ENOTDIR
		}
		return nil, unix.EISDIR
	}
	src.mount.fs.IncRef()
	src.dentry.IncRef()
	m := vfs.newMount(src.mount.fs, src.dentry, nil, readOnly)
	// A bind shows the source of the mount it was taken from, as on Linux.
	m.source = src.mount.source
	if err := vfs.attach(m, dst); err != nil {
		m.DecRef(ctx)
		return nil, err
	}
	return m, nil
}

// UmountOptions are umount2(2)'s flags.
type UmountOptions struct {
	// Detach is MNT_DETACH: unmount now even if busy, tear down when the
	// last user goes away.
	Detach bool
}

// UmountAt unmounts the mount whose root target names.
func (vfs *VirtualFilesystem) UmountAt(ctx context.Context, creds *auth.Credentials, target *PathOperation, opts *UmountOptions) error {
	if !creds.HasCapability(auth.CAP_SYS_ADMIN) {
		return unix.EPERM
	}
	vd, err := vfs.GetDentryAt(ctx, creds, target, &GetDentryOptions{})
	if err != nil {
		return err
	}
	m := vd.mount
	if vd.dentry != m.root {
		vd.DecRef(ctx)
		return unix.EINVAL
	}
	vfs.mountMu.Lock()
	if m.parent == nil || m.detached {
		// The namespace root cannot be unmounted; neither can what is
		// not in a tree.
		vfs.mountMu.Unlock()
		vd.DecRef(ctx)
		return unix.EINVAL
	}
	if !opts.Detach {
		// Busy: something is mounted below it, or someone other than the
		// tree and this call holds it (an open file, a cwd).
		if len(m.children) > 0 || m.refs.Load() > 2 {
			vfs.mountMu.Unlock()
			vd.DecRef(ctx)
			return unix.EBUSY
		}
	}
	var drop dropList
	vfs.detachTreeLocked(m, &drop)
	vfs.mountMu.Unlock()
	vd.DecRef(ctx)
	drop.release(ctx)
	return nil
}

// dropList collects references to drop once the mount lock is released.
type dropList struct {
	mounts   []*Mount
	dentries []*Dentry
}

func (l *dropList) release(ctx context.Context) {
	for _, d := range l.dentries {
		d.DecRef(ctx)
	}
	for _, m := range l.mounts {
		m.DecRef(ctx)
	}
}

// detachTreeLocked removes m and its submounts from the tree.
func (vfs *VirtualFilesystem) detachTreeLocked(m *Mount, drop *dropList) {
	for c := range m.children {
		vfs.detachTreeLocked(c, drop)
	}
	k := mountKey{m.parent, m.point}
	st := vfs.mounts[k]
	for i, x := range st {
		if x == m {
			st = append(st[:i], st[i+1:]...)
			break
		}
	}
	if len(st) == 0 {
		delete(vfs.mounts, k)
	} else {
		vfs.mounts[k] = st
	}
	delete(m.parent.children, m)
	m.point.mounts.Add(-1)
	m.detached = true
	// The tree's references: m's own, and those attach took on the
	// parent mount and the point.
	drop.mounts = append(drop.mounts, m, m.parent)
	drop.dentries = append(drop.dentries, m.point)
}
