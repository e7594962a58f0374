package proc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// taskSeccompMode is the task's seccomp mode (0 disabled, 1 strict,
// 2 filter), from the kernel's accessor when it has one.
func taskSeccompMode(t *kernel.Task) int {
	if s, ok := any(t).(interface{ SeccompMode() int }); ok && t != nil {
		return s.SeccompMode()
	}
	return 0
}

// taskNoNewPrivs is the task's no_new_privs bit, when the kernel keeps it.
func taskNoNewPrivs(t *kernel.Task) bool {
	if s, ok := any(t).(interface{ NoNewPrivs() bool }); ok && t != nil {
		return s.NoNewPrivs()
	}
	return false
}

// fdDir is /proc/[pid]/fd (info false: magic links to the open files) or
// /proc/[pid]/fdinfo (info true: position and flags of each).
func (f *filesystem) fdDir(who owner, info bool) *dirNode {
	kind, mode := kindFdDir, uint32(0o500)
	if info {
		kind, mode = kindFdinfoDir, 0o500
	}
	d := f.newDir(taskIno(who.tid, kind, 0), who, mode, nil)
	ref := &node{fs: f, who: who}
	entry := func(fd int32) vfs.Inode {
		if info {
			return f.fdinfoFile(ref, fd)
		}
		return f.fdLink(ref, fd)
	}
	d.list = func(ctx context.Context) []child {
		t := ref.task()
		if t == nil || !mayPtrace(ctx, t) {
			return nil
		}
		fdt := t.FDTableRef()
		if fdt == nil {
			return nil
		}
		defer fdt.DecRef(ctx)
		var cs []child
		for _, fd := range fdt.Descriptors() {
			cs = append(cs, child{strconv.Itoa(int(fd)), entry(fd)})
		}
		return cs
	}
	d.lookup = func(ctx context.Context, name string) (vfs.Inode, error) {
		n, err := strconv.ParseInt(name, 10, 32)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != name {
			return nil, unix.ENOENT
		}
		// Called with the tree lock held: check without taking a file
		// reference, whose release could re-enter this filesystem.
		if err := fdOpen(ctx, ref, int32(n)); err != nil {
			return nil, err
		}
		return entry(int32(n)), nil
	}
	return d
}

// fdOpen reports whether descriptor fd of the node's task is open (nil)
// and visible to the caller, without taking a reference to the file.
func fdOpen(ctx context.Context, ref *node, fd int32) error {
	t := ref.task()
	if t == nil {
		return unix.ENOENT
	}
	if !mayPtrace(ctx, t) {
		return unix.EACCES
	}
	if !t.HasFD(fd) {
		return unix.ENOENT
	}
	return nil
}

// fileOf returns the file at descriptor fd of the node's task, with a
// reference the caller must drop.
func fileOf(ctx context.Context, ref *node, fd int32) (*vfs.FileDescription, error) {
	fdt, err := fdTableOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer fdt.DecRef(ctx)
	file := fdt.GetFile(fd)
	if file == nil {
		return nil, unix.ENOENT
	}
	return file, nil
}

// fdTableOf returns the FD table of the node's task, with a reference
// the caller must drop: ENOENT once the task or its table is gone, EACCES
// for a caller that may not ptrace the task.
func fdTableOf(ctx context.Context, ref *node) (*kernel.FDTable, error) {
	t := ref.task()
	if t == nil {
		return nil, unix.ENOENT
	}
	if !mayPtrace(ctx, t) {
		return nil, unix.EACCES
	}
	fdt := t.FDTableRef()
	if fdt == nil {
		return nil, unix.ENOENT
	}
	return fdt, nil
}

// fdNode is the common part of fd links and fdinfo files: it exists only
// while the descriptor is open.
type fdLinkNode struct {
	magicLinkNode
	ref *node
	fd  int32
}

// Stat implements vfs.Inode: ENOENT once the descriptor is closed.
func (l *fdLinkNode) Stat(ctx context.Context, mask uint32) (vfs.Statx, error) {
	file, err := fileOf(ctx, l.ref, l.fd)
	if err != nil {
		return vfs.Statx{}, unix.ENOENT
	}
	file.DecRef(ctx)
	st, err := l.magicLinkNode.Stat(ctx, mask)
	// Linux's fd links show the access mode in their permission bits.
	st.Mode = unix.S_IFLNK
	if file.IsReadable() {
		st.Mode |= 0o500
	}
	if file.IsWritable() {
		st.Mode |= 0o200
	}
	return st, err
}

func (f *filesystem) fdLink(ref *node, fd int32) *fdLinkNode {
	l := &fdLinkNode{ref: ref, fd: fd}
	l.magicLinkNode = magicLinkNode{linkNode{node: node{fs: f, ino: taskIno(ref.who.tid, kindFd, fd), mode: unix.S_IFLNK | 0o700, who: ref.who}}}
	l.target = func(ctx context.Context) (string, error) {
		file, err := fileOf(ctx, ref, fd)
		if err != nil {
			return "", err
		}
		defer file.DecRef(ctx)
		return describeFile(ctx, ref.task(), file), nil
	}
	l.resolve = func(ctx context.Context) (vfs.VirtualDentry, error) {
		file, err := fileOf(ctx, ref, fd)
		if err != nil {
			return vfs.VirtualDentry{}, err
		}
		defer file.DecRef(ctx)
		vd := file.VirtualDentry()
		vd.IncRef()
		return vd, nil
	}
	return l
}

// describeFile is what readlink of an fd link shows: the path, or for
// files no path reaches, "pipe:[ino]", "socket:[ino]" or
// "anon_inode:[name]".
func describeFile(ctx context.Context, t *kernel.Task, file *vfs.FileDescription) string {
	vd := file.VirtualDentry()
	ino := file.Inode()
	st, _ := ino.Stat(ctx, unix.STATX_INO)
	if t != nil {
		if root, ok := callerRoot(ctx, t); ok {
			_, reachable := root.Mount().Filesystem().VFS().PathnameFrom(root, vd)
			if reachable {
				p := pathOf(ctx, t, vd)
				root.DecRef(ctx)
				return p
			}
			root.DecRef(ctx)
		}
	}
	switch ino.Mode() & unix.S_IFMT {
	case unix.S_IFIFO:
		return fmt.Sprintf("pipe:[%d]", st.Ino)
	case unix.S_IFSOCK:
		return fmt.Sprintf("socket:[%d]", st.Ino)
	case 0:
		name := vd.Dentry().Name()
		if !strings.HasPrefix(name, "[") {
			name = "[" + name + "]"
		}
		return "anon_inode:" + name
	}
	// A file of an unmounted filesystem: a memfd has a name, shown as a
	// deleted file; an imported host file has none the sandbox may know.
	if name := vd.Dentry().Name(); name != "" {
		return "/" + name + " (deleted)"
	}
	return fmt.Sprintf("host:[%d]", st.Ino)
}

// fdinfoFile is /proc/[pid]/fdinfo/N.
func (f *filesystem) fdinfoFile(ref *node, fd int32) *fileNode {
	n := f.newFile(taskIno(ref.who.tid, kindFdinfo, fd), ref.who, 0o444, func(ctx context.Context) ([]byte, error) {
		fdt, err := fdTableOf(ctx, ref)
		if err != nil {
			return nil, err
		}
		defer fdt.DecRef(ctx)
		file, flags, ok := fdt.Get(fd)
		if !ok {
			return nil, unix.ENOENT
		}
		defer file.DecRef(ctx)
		pos, err := file.Seek(ctx, 0, unix.SEEK_CUR)
		if err != nil {
			pos = 0
		}
		fl := file.StatusFlags()
		if flags.CloseOnExec {
			fl |= unix.O_CLOEXEC
		}
		st, _ := file.Inode().Stat(ctx, unix.STATX_INO)
		return fmt.Appendf(nil, "pos:\t%d\nflags:\t0%o\nmnt_id:\t%d\nino:\t%d\n", pos, fl, file.Mount().ID, st.Ino), nil
	})
	return n
}
