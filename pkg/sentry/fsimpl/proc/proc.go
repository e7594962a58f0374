// Package proc owns procfs (proc(5)) inside the sandbox: a synthetic
// filesystem generated from the kernel's state on every lookup. It holds
// /proc/self and /proc/thread-self, a directory per process and thread
// (status, stat, maps, fd links that reopen the file …), system-wide files
// (cpuinfo, meminfo, uptime …) and the commonly read /proc/sys values.
//
// Nodes hold no state of their own beyond a PID/TID: each operation looks
// the process up again, so a dentry the VFS keeps cached for a process
// that has gone answers ENOENT, as Linux's does. Generated files are
// snapshotted when opened and served from that buffer (seq_file style),
// so a reader sees one consistent text however small its reads.
package proc

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name.
const Name = "proc"

// procMagic is PROC_SUPER_MAGIC (statfs f_type).
const procMagic = 0x9fa0

// Register adds the proc filesystem type for kernel k to v.
func Register(v *vfs.VirtualFilesystem, k *kernel.Kernel) error {
	return v.RegisterFilesystemType(Name, FilesystemType{Kernel: k})
}

// FilesystemType makes proc instances over one kernel.
type FilesystemType struct {
	Kernel *kernel.Kernel
}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

// GetFilesystem implements vfs.FilesystemType.
func (ft FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	if ft.Kernel == nil {
		return nil, nil, fmt.Errorf("proc: no kernel: %w", unix.EINVAL)
	}
	p := &filesystem{k: ft.Kernel, born: time.Now(), oomAdj: make(map[*kernel.ThreadGroup]int), ns: ft.Kernel.RootPIDNamespace()}
	// An instance shows the PID namespace of the task that mounted it.
	if t, ok := ctx.(*kernel.Task); ok {
		p.ns = t.PIDNamespace()
	}
	fs := v.NewFilesystem(p)
	root := fs.NewDentry(p.rootDir())
	root.IncRef()
	return fs, root, nil
}

// filesystem is one proc instance.
type filesystem struct {
	k    *kernel.Kernel
	born time.Time
	// ns is the PID namespace whose processes and numbers it shows.
	ns *kernel.PIDNamespace

	// mu guards oomAdj, the oom_score_adj of each process that has one
	// set (keyed by the process itself, so a reused PID starts afresh).
	mu     sync.Mutex
	oomAdj map[*kernel.ThreadGroup]int
}

// oomScoreAdjLocked returns tg's oom_score_adj. The kernel does not keep
// it, so a process that never set one takes its nearest ancestor's, as
// fork would have copied it (exact unless the ancestor changed it after
// the fork). Call with f.mu held.
func (f *filesystem) oomScoreAdjLocked(tg *kernel.ThreadGroup) int {
	for i, g := 0, tg; g != nil && i < 64; i++ {
		if v, ok := f.oomAdj[g]; ok {
			return v
		}
		pp := g.ParentPID()
		if pp == 0 {
			break
		}
		g = f.k.GroupWithID(pp)
	}
	return 0
}

// setOOMScoreAdjLocked records v for tg and forgets reaped processes.
func (f *filesystem) setOOMScoreAdjLocked(tg *kernel.ThreadGroup, v int) {
	for g := range f.oomAdj {
		if g.IsReaped() {
			delete(f.oomAdj, g)
		}
	}
	f.oomAdj[tg] = v
}

// Release implements vfs.FilesystemImpl.
func (*filesystem) Release(context.Context) {}

// FilesystemTypeName implements vfs.FilesystemTypeNamer.
func (*filesystem) FilesystemTypeName() string { return Name }

// Inode numbers: system nodes count up from 1; a thread's nodes are
// derived from its TID and the node's kind so that they stay stable
// across lookups (ls -i, find's cycle checks).
const (
	taskInoBase = uint64(1) << 40
	fdKindShift = 20
)

func taskIno(tid kernel.ThreadID, kind int, fd int32) uint64 {
	return taskInoBase | uint64(uint32(tid))<<28 | uint64(kind)<<fdKindShift | uint64(uint32(fd)&(1<<fdKindShift-1))
}

// owner identifies whose node it is: the zero value is the system's
// (owned by root, always present); otherwise a process's or a thread's.
type owner struct {
	pid kernel.ThreadID // thread group
	tid kernel.ThreadID // thread; equals pid for /proc/[pid] itself
}

// node is what every proc inode shares.
type node struct {
	vfs.InodeDefaults
	fs   *filesystem
	ino  uint64
	mode uint32
	who  owner
}

// IncRef implements vfs.Inode: proc nodes are garbage collected.
func (*node) IncRef() {}

// DecRef implements vfs.Inode.
func (*node) DecRef(context.Context) {}

// Mode implements vfs.Inode.
func (n *node) Mode() uint32 { return n.mode }

// task returns the live thread the node belongs to (any live thread of
// the process for process-wide nodes whose leader has exited), or nil.
func (n *node) task() *kernel.Task {
	if n.who.pid == 0 {
		return nil
	}
	if t := n.fs.k.TaskWithID(n.who.tid); t != nil && t.ThreadGroup().ID() == n.who.pid {
		return t
	}
	if n.who.tid != n.who.pid {
		return nil
	}
	if tg := n.fs.k.GroupWithID(n.who.pid); tg != nil {
		if ts := tg.Tasks(); len(ts) > 0 {
			return ts[0]
		}
	}
	return nil
}

// group returns the process (possibly a zombie), or nil once reaped.
func (n *node) group() *kernel.ThreadGroup {
	if n.who.pid == 0 {
		return nil
	}
	tg := n.fs.k.GroupWithID(n.who.pid)
	if tg == nil {
		return nil
	}
	if n.who.tid != n.who.pid && n.task() == nil {
		return nil
	}
	return tg
}

// exists reports whether what the node describes is still there.
func (n *node) exists() bool { return n.who.pid == 0 || n.group() != nil }

// Owner implements vfs.Inode: a process's files belong to its effective
// IDs, as they do on Linux for dumpable processes.
func (n *node) Owner() (auth.UID, auth.GID) {
	if t := n.task(); t != nil {
		c := t.Credentials()
		return c.EffectiveUID, c.EffectiveGID
	}
	return auth.RootUID, auth.RootGID
}

// Stat implements vfs.Inode.
func (n *node) Stat(ctx context.Context, mask uint32) (vfs.Statx, error) {
	if !n.exists() {
		return vfs.Statx{}, unix.ENOENT
	}
	uid, gid := n.Owner()
	ts := unix.StatxTimestamp{Sec: n.fs.born.Unix(), Nsec: uint32(n.fs.born.Nanosecond())}
	nlink := uint32(1)
	if n.mode&unix.S_IFMT == unix.S_IFDIR {
		nlink = 2
	}
	return vfs.Statx{
		Mask: unix.STATX_BASIC_STATS, Blksize: 4096, Nlink: nlink, Mode: uint16(n.mode),
		Uid: uint32(uid), Gid: uint32(gid), Ino: n.ino, Atime: ts, Mtime: ts, Ctime: ts,
	}, nil
}

// SetStat implements vfs.Inode: proc attributes are fixed, except that
// truncation of a writable file (open with O_TRUNC, shells' ">") is a
// harmless no-op, as on Linux.
func (n *node) SetStat(_ context.Context, opts *vfs.SetStatOptions) error {
	if opts.Mask&^uint32(unix.STATX_SIZE|unix.STATX_ATIME|unix.STATX_MTIME) == 0 && n.mode&0o222 != 0 {
		return nil
	}
	return unix.EPERM
}

// StatFS implements vfs.Inode.
func (*node) StatFS(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: procMagic, Bsize: 4096, Frsize: 4096, Namelen: 255}, nil
}

// Open implements vfs.Inode for nodes that cannot be opened.
func (*node) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return nil, unix.ENXIO
}

// callerTask returns the task making the call, or nil outside a task
// (tests, the Sentry's own setup).
func callerTask(ctx context.Context) *kernel.Task {
	t, _ := ctx.(*kernel.Task)
	return t
}

// ---- Directories ----

// child is one entry of a directory listing.
type child struct {
	name  string
	inode vfs.Inode
}

// dirNode is a directory whose entries are computed on demand.
type dirNode struct {
	node
	// list returns the entries in listing order.
	list func(ctx context.Context) []child
	// lookup, when set, finds one entry without building the list.
	lookup func(ctx context.Context, name string) (vfs.Inode, error)
}

func (f *filesystem) newDir(ino uint64, who owner, mode uint32, list func(context.Context) []child) *dirNode {
	return &dirNode{node: node{fs: f, ino: ino, mode: unix.S_IFDIR | mode, who: who}, list: list}
}

// Lookup implements vfs.Inode.
func (d *dirNode) Lookup(ctx context.Context, name string) (vfs.Inode, error) {
	if !d.exists() {
		return nil, unix.ENOENT
	}
	if d.lookup != nil {
		return d.lookup(ctx, name)
	}
	for _, c := range d.list(ctx) {
		if c.name == name {
			return c.inode, nil
		}
	}
	return nil, unix.ENOENT
}

// IterDirents implements vfs.Inode: offsets are positions in the listing
// (0 ".", 1 "..", then the entries).
func (d *dirNode) IterDirents(ctx context.Context, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	if !d.exists() {
		return offset, unix.ENOENT
	}
	if !vfs.IterDots(&offset, d.ino, parentIno, 2, cb) {
		return offset, nil
	}
	list := d.list(ctx)
	for i := offset - 2; i < int64(len(list)); i++ {
		c := list[i]
		st, err := c.inode.Stat(ctx, unix.STATX_INO)
		if err != nil {
			continue // gone while listing
		}
		if !cb(vfs.Dirent{Name: c.name, Ino: st.Ino, Type: vfs.DirentType(c.inode.Mode()), NextOff: i + 3}) {
			return i + 2, nil
		}
		offset = i + 3
	}
	return offset, nil
}

// Open implements vfs.Inode.
func (d *dirNode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	if !d.exists() {
		return nil, unix.ENOENT
	}
	// pread(2) of it is EISDIR through vfs.FileDescription.PRead, as for
	// every directory.
	return vfs.NewDirectoryFile(d), nil
}

// ---- Symlinks ----

// linkNode is a symlink whose target is computed when read; with resolve
// set it is a magic link (following it jumps to the file itself).
type linkNode struct {
	node
	target  func(ctx context.Context) (string, error)
	resolve func(ctx context.Context) (vfs.VirtualDentry, error)
}

func (f *filesystem) newLink(ino uint64, who owner, target func(context.Context) (string, error)) *linkNode {
	return &linkNode{node: node{fs: f, ino: ino, mode: unix.S_IFLNK | 0o777, who: who}, target: target}
}

// Readlink implements vfs.Inode.
func (l *linkNode) Readlink(ctx context.Context) (string, error) {
	if !l.exists() {
		return "", unix.ENOENT
	}
	return l.target(ctx)
}

// magicLinkNode is a linkNode that also implements vfs.MagicLink.
type magicLinkNode struct{ linkNode }

// ResolveMagicLink implements vfs.MagicLink.
func (l *magicLinkNode) ResolveMagicLink(ctx context.Context) (vfs.VirtualDentry, error) {
	if !l.exists() {
		return vfs.VirtualDentry{}, unix.ENOENT
	}
	return l.resolve(ctx)
}

func (f *filesystem) newMagicLink(ino uint64, who owner, target func(context.Context) (string, error), resolve func(context.Context) (vfs.VirtualDentry, error)) *magicLinkNode {
	l := &magicLinkNode{linkNode{node: node{fs: f, ino: ino, mode: unix.S_IFLNK | 0o777, who: who}, target: target}}
	l.resolve = resolve
	return l
}

// ---- Generated files ----

// fileNode is a regular file whose contents are generated when opened.
type fileNode struct {
	node
	gen func(ctx context.Context) ([]byte, error)
	// write, when set, takes what is written (at offset 0; each write
	// call is a whole new value, as for most of Linux's proc files).
	write func(ctx context.Context, data []byte) error
}

func (f *filesystem) newFile(ino uint64, who owner, mode uint32, gen func(context.Context) ([]byte, error)) *fileNode {
	return &fileNode{node: node{fs: f, ino: ino, mode: unix.S_IFREG | mode, who: who}, gen: gen}
}

// staticText returns a generator of fixed text.
func staticText(s string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return []byte(s), nil }
}

// Open implements vfs.Inode.
func (n *fileNode) Open(ctx context.Context, _ vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	if !n.exists() {
		return nil, unix.ENOENT
	}
	var data []byte
	if flags&unix.O_ACCMODE != unix.O_WRONLY {
		// Snapshot now: the reader sees the state at open, in one piece.
		var err error
		if data, err = n.gen(ctx); err != nil {
			return nil, err
		}
	}
	return &seqFile{BytesFile: vfs.NewBytesFile(data), node: n}, nil
}

// seqFile serves one snapshot of a generated file, and passes writes to
// the node.
type seqFile struct {
	*vfs.BytesFile
	node *fileNode
}

// maxWrite bounds what a proc file accepts in one write.
const maxWrite = 4096

// Write implements vfs.FileDescriptionImpl.
func (f *seqFile) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	return f.PWrite(ctx, nil, src, 0, vfs.WriteOptions{})
}

// PWrite implements vfs.FileDescriptionImpl.
func (f *seqFile) PWrite(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, off int64, _ vfs.WriteOptions) (int64, error) {
	if f.node.write == nil {
		return 0, unix.EINVAL
	}
	if off != 0 {
		return 0, unix.EINVAL
	}
	n := min(src.NumBytes(), maxWrite)
	buf := make([]byte, n)
	c, err := src.CopyIn(ctx, buf)
	if c == 0 && err != nil {
		return 0, err
	}
	if err := f.node.write(ctx, buf[:c]); err != nil {
		return 0, err
	}
	return int64(c), nil
}

// parsePID parses a /proc directory name as a PID; ok is false for
// anything that is not a canonical positive decimal number.
func parsePID(name string) (kernel.ThreadID, bool) {
	if name == "" || name[0] == '0' || len(name) > 10 {
		return 0, false
	}
	v, err := strconv.ParseInt(name, 10, 32)
	if err != nil || v <= 0 {
		return 0, false
	}
	return kernel.ThreadID(v), true
}

// procNode is implemented by every proc inode.
type procNode interface{ base() *node }

func (n *node) base() *node { return n }

// NeedsRevalidation implements vfs.Revalidator: proc's names come and go
// with processes and descriptors.
func (*filesystem) NeedsRevalidation() bool { return true }

// RevalidateChild implements vfs.Revalidator: a cached name stays valid
// while the process, thread or descriptor it names exists, so the dentry
// cache does not keep every process that ever lived.
func (*filesystem) RevalidateChild(ctx context.Context, _ vfs.Inode, _ string, child vfs.Inode) bool {
	if l, ok := child.(*fdLinkNode); ok {
		return fdOpen(ctx, l.ref, l.fd) == nil
	}
	if p, ok := child.(procNode); ok {
		return p.base().exists()
	}
	return true
}
