// Package sys owns the sandbox's sysfs (sysfs(5)): a small, read-only,
// fixed tree with what programs read to size themselves — the CPU lists
// under /sys/devices/system/cpu (glibc's sysconf, Go, node, Python's
// os.cpu_count), the transparent hugepage mode — and the empty
// directories container tooling expects (/sys/fs/cgroup, /sys/class/net).
package sys

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name.
const Name = "sysfs"

// sysfsMagic is SYSFS_MAGIC (statfs f_type).
const sysfsMagic = 0x62656572

// kernelMax is the highest CPU number the kernel was built for
// (/sys/devices/system/cpu/kernel_max, NR_CPUS-1 of common builds).
const kernelMax = 8191

// Register adds the sysfs type to v for a sandbox that sees ncpus CPUs
// (0 means as many as the Sentry may run on, capped at 64 like
// sched_getaffinity's mask).
func Register(v *vfs.VirtualFilesystem, ncpus int) error {
	if ncpus <= 0 {
		ncpus = min(runtime.NumCPU(), 64)
	}
	return v.RegisterFilesystemType(Name, FilesystemType{CPUs: ncpus})
}

// FilesystemType makes sysfs instances.
type FilesystemType struct {
	// CPUs is how many CPUs the tree describes (at least 1).
	CPUs int
}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

// GetFilesystem implements vfs.FilesystemType.
func (ft FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	b := &builder{born: time.Now()}
	fs := v.NewFilesystem(fsImpl{})
	root := fs.NewDentry(b.tree(max(ft.CPUs, 1)))
	root.IncRef()
	return fs, root, nil
}

type fsImpl struct{}

func (fsImpl) Release(context.Context) {}

// FilesystemTypeName implements vfs.FilesystemTypeNamer.
func (fsImpl) FilesystemTypeName() string { return Name }

// builder numbers the nodes of one instance.
type builder struct {
	born time.Time
	next uint64
}

func (b *builder) node(mode uint32) node {
	b.next++
	return node{ino: b.next, mode: mode, born: b.born}
}

func (b *builder) dir(entries ...entry) *dirNode {
	return &dirNode{node: b.node(unix.S_IFDIR | 0o755), entries: entries}
}

func (b *builder) file(text string) *fileNode {
	return &fileNode{node: b.node(unix.S_IFREG | 0o444), data: []byte(text)}
}

// cpuList formats CPUs 0..n-1 as the kernel's cpulist format does.
func cpuList(n int) string {
	if n == 1 {
		return "0\n"
	}
	return fmt.Sprintf("0-%d\n", n-1)
}

// tree builds the whole sysfs.
func (b *builder) tree(ncpus int) *dirNode {
	cpus := []entry{
		{"online", b.file(cpuList(ncpus))},
		{"possible", b.file(cpuList(ncpus))},
		{"present", b.file(cpuList(ncpus))},
		{"offline", b.file("\n")},
		{"kernel_max", b.file(fmt.Sprintf("%d\n", kernelMax))},
	}
	for i := range ncpus {
		cpus = append(cpus, entry{fmt.Sprintf("cpu%d", i), b.dir(
			entry{"online", b.file("1\n")},
			entry{"topology", b.dir(
				entry{"core_id", b.file(fmt.Sprintf("%d\n", i))},
				entry{"physical_package_id", b.file("0\n")},
			)},
		)})
	}
	return b.dir(
		entry{"block", b.dir()},
		entry{"bus", b.dir()},
		entry{"class", b.dir(entry{"net", b.dir()})},
		entry{"dev", b.dir()},
		entry{"devices", b.dir(
			entry{"system", b.dir(entry{"cpu", b.dir(cpus...)})},
		)},
		entry{"firmware", b.dir()},
		entry{"fs", b.dir(entry{"cgroup", b.dir()})},
		entry{"kernel", b.dir(
			entry{"mm", b.dir(
				entry{"transparent_hugepage", b.dir(
					entry{"enabled", b.file("always [madvise] never\n")},
					entry{"defrag", b.file("always defer defer+madvise [madvise] never\n")},
				)},
			)},
		)},
		entry{"module", b.dir()},
	)
}

// node is what sysfs inodes share: fixed mode and inode number, owned by
// root, never changed.
type node struct {
	vfs.InodeDefaults
	ino  uint64
	mode uint32
	born time.Time
}

// IncRef implements vfs.Inode; sysfs nodes are garbage collected.
func (*node) IncRef() {}

// DecRef implements vfs.Inode.
func (*node) DecRef(context.Context) {}

// Mode implements vfs.Inode.
func (n *node) Mode() uint32 { return n.mode }

// Owner implements vfs.Inode.
func (*node) Owner() (auth.UID, auth.GID) { return auth.RootUID, auth.RootGID }

// Stat implements vfs.Inode.
func (n *node) Stat(context.Context, uint32) (vfs.Statx, error) {
	ts := unix.StatxTimestamp{Sec: n.born.Unix(), Nsec: uint32(n.born.Nanosecond())}
	nlink := uint32(1)
	if n.mode&unix.S_IFMT == unix.S_IFDIR {
		nlink = 2
	}
	return vfs.Statx{Mask: unix.STATX_BASIC_STATS, Blksize: 4096, Nlink: nlink, Mode: uint16(n.mode),
		Ino: n.ino, Size: 4096 * uint64(nlink-1), Atime: ts, Mtime: ts, Ctime: ts}, nil
}

// StatFS implements vfs.Inode.
func (*node) StatFS(context.Context) (vfs.Statfs, error) {
	return vfs.Statfs{Type: sysfsMagic, Bsize: 4096, Frsize: 4096, Namelen: 255}, nil
}

// entry is a named child.
type entry struct {
	name  string
	inode vfs.Inode
}

// dirNode is a directory with fixed entries.
type dirNode struct {
	node
	entries []entry
}

// Lookup implements vfs.Inode.
func (d *dirNode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	for _, e := range d.entries {
		if e.name == name {
			return e.inode, nil
		}
	}
	return nil, unix.ENOENT
}

// IterDirents implements vfs.Inode: offset 0 ".", 1 "..", then entries.
func (d *dirNode) IterDirents(ctx context.Context, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	for ; offset < int64(len(d.entries))+2; offset++ {
		var de vfs.Dirent
		switch offset {
		case 0:
			de = vfs.Dirent{Name: ".", Ino: d.ino, Type: unix.DT_DIR}
		case 1:
			de = vfs.Dirent{Name: "..", Ino: parentIno, Type: unix.DT_DIR}
		default:
			e := d.entries[offset-2]
			st, _ := e.inode.Stat(ctx, unix.STATX_INO)
			de = vfs.Dirent{Name: e.name, Ino: st.Ino, Type: vfs.DirentType(e.inode.Mode())}
		}
		de.NextOff = offset + 1
		if !cb(de) {
			return offset, nil
		}
	}
	return offset, nil
}

// Open implements vfs.Inode.
func (d *dirNode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return vfs.NewSizelessDirectoryFile(d), nil
}

// fileNode is a read-only file with fixed contents.
type fileNode struct {
	node
	data []byte
}

// Open implements vfs.Inode.
func (n *fileNode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return vfs.NewBytesFile(n.data), nil
}
