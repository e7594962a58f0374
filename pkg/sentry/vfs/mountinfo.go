package vfs

// Read-only views of the mount tree for /proc/[pid]/mounts and mountinfo,
// and path names that say whether they are reachable (/proc fd links).

import (
	"context"
	"slices"
	"strings"
)

// FilesystemTypeNamer may be implemented by a FilesystemImpl to name its
// type in mount listings; otherwise the name is derived from statfs's
// f_type.
type FilesystemTypeNamer interface {
	FilesystemTypeName() string
}

// MountInfo describes one mount as /proc/[pid]/mountinfo shows it.
type MountInfo struct {
	ID, ParentID uint64
	// DevMinor is the filesystem's anonymous device minor (major 0).
	DevMinor uint32
	// MountPoint is where the mount is attached, as a path from the root
	// the listing was made for.
	MountPoint string
	// Root is the path of the mount's root within its filesystem: "/"
	// for a whole filesystem, the source directory for a bind mount.
	Root     string
	ReadOnly bool
	// Flags holds the mount's MS_NOSUID, MS_NODEV and MS_NOEXEC bits.
	Flags uint32
	// FSType is the filesystem type name ("tmpfs", "proc" …).
	FSType string
	// Source is the mount's source as mount(2) was given it; FSType
	// stands in for mounts made without one.
	Source string
}

// magicNames maps statfs f_type values to filesystem type names.
var magicNames = map[int64]string{
	0x01021994: "tmpfs",
	0x01021997: "9p",
	0x794c7630: "overlay",
	0x9fa0:     "proc",
	0x62656572: "sysfs",
	0x1cd1:     "devpts",
	0x50495045: "pipefs",
	0x09041934: "anon_inodefs",
	0x27e0eb:   "cgroup",
	0x63677270: "cgroup2",
}

func (m *Mount) typeName(ctx context.Context) string {
	if n, ok := m.fs.impl.(FilesystemTypeNamer); ok {
		return n.FilesystemTypeName()
	}
	if st, err := m.root.inode.StatFS(ctx); err == nil {
		if n, ok := magicNames[int64(st.Type)]; ok {
			return n
		}
	}
	return "none"
}

// MountsFrom lists the mounts visible from root (root's mount and every
// mount attached below it that root can reach), in mount ID order.
func (vfs *VirtualFilesystem) MountsFrom(ctx context.Context, root VirtualDentry) []MountInfo {
	if !root.Ok() {
		return nil
	}
	type found struct {
		m      *Mount
		parent uint64
	}
	var list []found
	vfs.mountMu.RLock()
	var walk func(m *Mount)
	walk = func(m *Mount) {
		pid := m.ID
		if m.parent != nil && m != root.mount {
			pid = m.parent.ID
		}
		list = append(list, found{m, pid})
		for c := range m.children {
			if !c.detached {
				walk(c)
			}
		}
	}
	walk(root.mount)
	// Take references so the mounts outlive the lock while we name them.
	for _, f := range list {
		f.m.IncRef()
	}
	vfs.mountMu.RUnlock()
	slices.SortFunc(list, func(a, b found) int {
		switch {
		case a.m.ID < b.m.ID:
			return -1
		case a.m.ID > b.m.ID:
			return 1
		}
		return 0
	})
	out := make([]MountInfo, 0, len(list))
	for _, f := range list {
		p, reachable := vfs.pathname(root, VirtualDentry{f.m, f.m.root})
		if f.m == root.mount {
			// The mount holding the root (perhaps below its own root,
			// after chroot) is where the listing starts.
			p, reachable = "/", true
		}
		if !reachable {
			// Outside a chroot: not part of what the caller sees.
			f.m.DecRef(ctx)
			continue
		}
		out = append(out, MountInfo{
			ID: f.m.ID, ParentID: f.parent, DevMinor: f.m.fs.devMinor, MountPoint: p,
			Root: f.m.root.pathInFilesystem(), ReadOnly: f.m.ReadOnly(), Flags: f.m.Flags(),
			FSType: f.m.typeName(ctx), Source: f.m.source,
		})
		f.m.DecRef(ctx)
	}
	return out
}

// pathInFilesystem returns d's path from the root of its filesystem,
// ignoring mounts (mountinfo's "root" field). A removed directory gets
// Linux's " (deleted)" suffix.
func (d *Dentry) pathInFilesystem() string {
	d.fs.treeMu.RLock()
	defer d.fs.treeMu.RUnlock()
	var names []string
	for x := d; x.parent != nil; x = x.parent {
		names = append(names, x.name)
	}
	if len(names) == 0 {
		return "/"
	}
	var b strings.Builder
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(names[i])
	}
	if d.dead.Load() {
		b.WriteString(" (deleted)")
	}
	return b.String()
}

// PathnameFrom returns vd's path as seen from root and whether root can
// reach it at all (files of unmounted filesystems — pipes, sockets,
// anonymous files — cannot).
func (vfs *VirtualFilesystem) PathnameFrom(root, vd VirtualDentry) (string, bool) {
	return vfs.pathname(root, vd)
}
