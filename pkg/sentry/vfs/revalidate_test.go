package vfs_test

import (
	"context"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// treeFS is a revalidating filesystem whose "host" is a map of paths to
// inode numbers that the test changes behind the cache's back.
type treeFS struct {
	host map[string]uint64 // path without leading slash -> ino
	// calls and batch record the PathRevalidator calls: how many, and
	// the names of each.
	calls   int
	batches [][]string
	single  int
}

type treeNode struct {
	vfs.InodeDefaults
	fs   *treeFS
	path string
	ino  uint64
	dir  bool
}

func (*treeNode) IncRef()                     {}
func (*treeNode) DecRef(context.Context)      {}
func (*treeNode) Owner() (auth.UID, auth.GID) { return 0, 0 }
func (n *treeNode) Mode() uint32 {
	if n.dir {
		return unix.S_IFDIR | 0o755
	}
	return unix.S_IFREG | 0o644
}
func (n *treeNode) Stat(context.Context, uint32) (vfs.Statx, error) {
	return vfs.Statx{Mode: uint16(n.Mode()), Ino: n.ino}, nil
}
func (*treeNode) SetStat(context.Context, *vfs.SetStatOptions) error { return unix.EPERM }
func (*treeNode) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return nil, unix.ENXIO
}
func (n *treeNode) Lookup(_ context.Context, name string) (vfs.Inode, error) {
	p := strings.TrimPrefix(n.path+"/"+name, "/")
	ino, ok := n.fs.host[p]
	if !ok {
		return nil, unix.ENOENT
	}
	_, dir := n.fs.host[p+"/"]
	return &treeNode{fs: n.fs, path: p, ino: ino, dir: dir}, nil
}

func (*treeFS) Release(context.Context) {}
func (*treeFS) NeedsRevalidation() bool { return true }
func (fs *treeFS) RevalidateChild(_ context.Context, dir vfs.Inode, name string, child vfs.Inode) bool {
	fs.single++
	return fs.host[strings.TrimPrefix(dir.(*treeNode).path+"/"+name, "/")] == child.(*treeNode).ino
}
func (fs *treeFS) RevalidatePath(_ context.Context, dir vfs.Inode, names []string, children []vfs.Inode) int {
	fs.calls++
	fs.batches = append(fs.batches, append([]string(nil), names...))
	p := dir.(*treeNode).path
	for i, name := range names {
		p = strings.TrimPrefix(p+"/"+name, "/")
		if fs.host[p] != children[i].(*treeNode).ino {
			return i
		}
	}
	return len(names)
}

type treeFSType struct{ fs *treeFS }

func (treeFSType) Name() string { return "tree" }
func (t treeFSType) GetFilesystem(_ context.Context, v *vfs.VirtualFilesystem, _ *auth.Credentials, _ string, _ vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	fs := v.NewFilesystem(t.fs)
	d := fs.NewDentry(&treeNode{fs: t.fs, ino: 1, dir: true})
	d.IncRef()
	return fs, d, nil
}

// TestBatchedRevalidation checks that a walk through cached names of a
// PathRevalidator costs one call per run of up to 16 names, and that a
// name found stale in the middle of the run is looked up afresh.
func TestBatchedRevalidation(t *testing.T) {
	e := newEnv(t)
	host := map[string]uint64{}
	var deep []string
	for i := 0; i < 20; i++ {
		deep = append(deep, "d")
		p := strings.Join(deep, "/")
		host[p], host[p+"/"] = uint64(100+i), 0
	}
	host["a"], host["a/"] = 2, 0
	host["a/b"], host["a/b/"] = 3, 0
	host["a/b/c"], host["a/b/c/"] = 4, 0
	host["a/b/c/f"] = 5
	tfs := &treeFS{host: host}
	e.must(e.vfs.RegisterFilesystemType("tree", treeFSType{tfs}))
	e.must(e.mkdir("/t", 0o755))
	_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/t"), "tree", &vfs.MountOptions{})
	e.must(err)
	stat := func(p string) (vfs.Statx, error) {
		return e.vfs.StatAt(e.ctx, e.creds, e.pop(p), &vfs.StatOptions{})
	}
	if _, err := stat("/t/a/b/c/f"); err != nil { // fills the cache
		t.Fatal(err)
	}
	tfs.calls, tfs.batches, tfs.single = 0, nil, 0
	if st, err := stat("/t/a/b/c/f"); err != nil || st.Ino != 5 {
		t.Fatalf("cached stat: ino %d, %v", st.Ino, err)
	}
	if tfs.calls != 1 || tfs.single != 0 || strings.Join(tfs.batches[0], "/") != "a/b/c/f" {
		t.Errorf("cached 4-name walk: %d batched calls %q, %d single; want one batch of a/b/c/f", tfs.calls, tfs.batches, tfs.single)
	}

	// The host replaces b (and so everything under it): the walk must
	// see the new inodes, not the cached ones.
	host["a/b"], host["a/b/c"], host["a/b/c/f"] = 30, 40, 50
	if st, err := stat("/t/a/b/c/f"); err != nil || st.Ino != 50 {
		t.Errorf("after the host replaced a/b: ino %d, %v; want 50", st.Ino, err)
	}
	// And removes it.
	delete(host, "a/b/c/f")
	if _, err := stat("/t/a/b/c/f"); err != unix.ENOENT {
		t.Errorf("after the host removed a/b/c/f: %v, want ENOENT", err)
	}

	// Twenty cached names take two calls: 16, then the last 4.
	p := "/t/" + strings.Join(deep, "/")
	if st, err := stat(p); err != nil || st.Ino != 119 {
		t.Fatalf("deep stat: ino %d, %v", st.Ino, err)
	}
	tfs.calls, tfs.batches = 0, nil
	if _, err := stat(p); err != nil {
		t.Fatal(err)
	}
	if tfs.calls != 2 || len(tfs.batches[0]) != 16 || len(tfs.batches[1]) != 4 {
		t.Errorf("20-name walk: batches %q", tfs.batches)
	}
	// Paths with "." and ".." stop a batch where they occur, and still
	// resolve.
	if st, err := stat("/t/a/./b/../b/c"); err != nil || st.Ino != 40 {
		t.Errorf("walk with . and ..: ino %d, %v", st.Ino, err)
	}
}
