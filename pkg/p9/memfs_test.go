package p9

import (
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// memFS is a small in-memory tree served by the tests through the File
// interface. One lock guards the whole tree: simple, and enough for tests.
type memFS struct {
	mu      sync.Mutex
	root    *memNode
	nextIno uint64
	open    atomic.Int64 // Files not yet closed, to catch leaks
	// gate, if set, makes ReadAt of a node named "slow" wait for it.
	gate chan struct{}
	// entered is signalled when a read of "slow" starts.
	entered chan struct{}
	// readdirMax, if set, caps the entries one Readdir returns, as a host
	// getdents with a small buffer would.
	readdirMax int
}

type memNode struct {
	ino      uint64
	mode     uint32
	uid      UID
	gid      GID
	data     []byte
	target   string
	rdev     uint64
	children map[string]*memNode
	xattrs   map[string][]byte
	nlink    uint64
	lock     *Lock
}

func newMemFS() *memFS {
	fs := &memFS{}
	fs.root = fs.newNode(unix.S_IFDIR|0o755, 0, 0)
	return fs
}

func (fs *memFS) newNode(mode uint32, uid UID, gid GID) *memNode {
	fs.nextIno++
	n := &memNode{ino: fs.nextIno, mode: mode, uid: uid, gid: gid, nlink: 1, xattrs: map[string][]byte{}}
	if mode&unix.S_IFMT == unix.S_IFDIR {
		n.children = map[string]*memNode{}
	}
	return n
}

func (n *memNode) qid() QID {
	return QID{Type: QIDTypeOfMode(n.mode), Path: n.ino}
}

func (fs *memFS) Attach(name string, uid UID) (File, error) {
	if name != "" && name != "/" {
		return nil, unix.ENOENT
	}
	return fs.file(fs.root, nil, ""), nil
}

func (fs *memFS) file(n, parent *memNode, name string) *memFile {
	fs.open.Add(1)
	return &memFile{fs: fs, node: n, parent: parent, name: name}
}

type memFile struct {
	fs     *memFS
	node   *memNode
	parent *memNode
	name   string
	closed atomic.Bool
	flags  OpenFlags
}

func (f *memFile) Close() error {
	if f.closed.Swap(true) {
		panic("double close")
	}
	f.fs.open.Add(-1)
	return nil
}

func (f *memFile) Walk(names []string) ([]QID, File, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, parent, name := f.node, f.parent, f.name
	var qids []QID
	for _, nm := range names {
		if n.children == nil {
			return qids, nil, unix.ENOTDIR
		}
		c, ok := n.children[nm]
		if !ok {
			if len(qids) == 0 {
				return nil, nil, unix.ENOENT
			}
			return qids, nil, nil
		}
		parent, n, name = n, c, nm
		qids = append(qids, c.qid())
	}
	return qids, f.fs.file(n, parent, name), nil
}

func (f *memFile) GetAttr(mask AttrMask) (QID, AttrMask, Attr, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n := f.node
	return n.qid(), AttrBasic, Attr{Mode: n.mode, UID: n.uid, GID: n.gid, NLink: n.nlink, Size: uint64(len(n.data)), RDev: n.rdev}, nil
}

func (f *memFile) SetAttr(valid SetAttrMask, a SetAttr) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n := f.node
	if valid&SetAttrMode != 0 {
		n.mode = n.mode&unix.S_IFMT | a.Mode&0o7777
	}
	if valid&SetAttrUID != 0 {
		n.uid = a.UID
	}
	if valid&SetAttrGID != 0 {
		n.gid = a.GID
	}
	if valid&SetAttrSize != 0 {
		if a.Size > 1<<20 {
			return unix.EFBIG
		}
		d := make([]byte, a.Size)
		copy(d, n.data)
		n.data = d
	}
	return nil
}

func (f *memFile) Open(flags OpenFlags) (*os.File, QID, uint32, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.flags = flags
	if f.name == "donor" {
		// Donate a pipe holding the file's bytes so the test can see the
		// descriptor cross the socket.
		r, w, err := os.Pipe()
		if err != nil {
			return nil, QID{}, 0, err
		}
		w.Write(f.node.data)
		w.Close()
		return r, f.node.qid(), 0, nil
	}
	return nil, f.node.qid(), 0, nil
}

func (f *memFile) ReadAt(p []byte, off uint64) (int, error) {
	if f.name == "slow" && f.fs.gate != nil {
		f.fs.entered <- struct{}{}
		<-f.fs.gate
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= uint64(len(f.node.data)) {
		return 0, nil
	}
	return copy(p, f.node.data[off:]), nil
}

func (f *memFile) WriteAt(p []byte, off uint64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	end := off + uint64(len(p))
	if end > 1<<24 {
		return 0, unix.EFBIG
	}
	if end > uint64(len(f.node.data)) {
		d := make([]byte, end)
		copy(d, f.node.data)
		f.node.data = d
	}
	return copy(f.node.data[off:], p), nil
}

func (f *memFile) addChild(name string, n *memNode) error {
	if f.node.children == nil {
		return unix.ENOTDIR
	}
	if _, ok := f.node.children[name]; ok {
		return unix.EEXIST
	}
	f.node.children[name] = n
	return nil
}

func (f *memFile) Create(name string, flags OpenFlags, mode uint32, uid UID, gid GID) (File, *os.File, QID, uint32, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n := f.fs.newNode(unix.S_IFREG|mode&0o7777, uid, gid)
	if err := f.addChild(name, n); err != nil {
		return nil, nil, QID{}, 0, err
	}
	nf := f.fs.file(n, f.node, name)
	nf.flags = flags
	return nf, nil, n.qid(), 0, nil
}

func (f *memFile) Mkdir(name string, mode uint32, uid UID, gid GID) (QID, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n := f.fs.newNode(unix.S_IFDIR|mode&0o7777, uid, gid)
	return n.qid(), f.addChild(name, n)
}

func (f *memFile) Symlink(name, target string, uid UID, gid GID) (QID, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n := f.fs.newNode(unix.S_IFLNK|0o777, uid, gid)
	n.target = target
	return n.qid(), f.addChild(name, n)
}

func (f *memFile) Mknod(name string, mode, major, minor uint32, uid UID, gid GID) (QID, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n := f.fs.newNode(mode, uid, gid)
	n.rdev = unix.Mkdev(major, minor)
	return n.qid(), f.addChild(name, n)
}

func (f *memFile) Link(target File, name string) error {
	t, ok := target.(*memFile)
	if !ok {
		return unix.EXDEV
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.addChild(name, t.node); err != nil {
		return err
	}
	t.node.nlink++
	return nil
}

func (f *memFile) Rename(newDir File, newName string) error {
	if f.parent == nil {
		return unix.EBUSY
	}
	d, ok := newDir.(*memFile)
	if !ok {
		return unix.EXDEV
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if d.node.children == nil {
		return unix.ENOTDIR
	}
	delete(f.parent.children, f.name)
	d.node.children[newName] = f.node
	f.parent, f.name = d.node, newName
	return nil
}

func (f *memFile) RenameAt(oldName string, newDir File, newName string) error {
	d, ok := newDir.(*memFile)
	if !ok {
		return unix.EXDEV
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, ok := f.node.children[oldName]
	if !ok {
		return unix.ENOENT
	}
	delete(f.node.children, oldName)
	d.node.children[newName] = n
	return nil
}

func (f *memFile) UnlinkAt(name string, flags uint32) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, ok := f.node.children[name]
	if !ok {
		return unix.ENOENT
	}
	isDir := n.children != nil
	if isDir != (flags&unix.AT_REMOVEDIR != 0) {
		if isDir {
			return unix.EISDIR
		}
		return unix.ENOTDIR
	}
	delete(f.node.children, name)
	return nil
}

func (f *memFile) Remove() error {
	if f.parent == nil {
		return unix.EBUSY
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	delete(f.parent.children, f.name)
	return nil
}

func (f *memFile) Readlink() (string, error) {
	if f.node.mode&unix.S_IFMT != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	return f.node.target, nil
}

func (f *memFile) Readdir(offset uint64, count uint32) ([]Dirent, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.node.children == nil {
		return nil, unix.ENOTDIR
	}
	names := make([]string, 0, len(f.node.children))
	for n := range f.node.children {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Dirent
	for i := int(min(offset, uint64(len(names)))); i < len(names); i++ {
		c := f.node.children[names[i]]
		out = append(out, Dirent{QID: c.qid(), Offset: uint64(i + 1), Type: uint8(c.mode >> 12), Name: names[i]})
		if f.fs.readdirMax > 0 && len(out) == f.fs.readdirMax {
			break
		}
	}
	return out, nil
}

func (f *memFile) StatFS() (FSStat, error) {
	return FSStat{Type: 0x01021994, BlockSize: 4096, Blocks: 100, NameLength: 255}, nil
}

func (f *memFile) FSync(bool) error { return nil }

func (f *memFile) GetXattr(name string) ([]byte, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	v, ok := f.node.xattrs[name]
	if !ok {
		return nil, unix.ENODATA
	}
	return append([]byte(nil), v...), nil
}

func (f *memFile) ListXattr() ([]string, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	var names []string
	for n := range f.node.xattrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (f *memFile) RemoveXattr(name string) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if _, ok := f.node.xattrs[name]; !ok {
		return unix.ENODATA
	}
	delete(f.node.xattrs, name)
	return nil
}

func (f *memFile) SetXattr(name string, value []byte, flags uint32) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	_, exists := f.node.xattrs[name]
	if flags&unix.XATTR_CREATE != 0 && exists {
		return unix.EEXIST
	}
	if flags&unix.XATTR_REPLACE != 0 && !exists {
		return unix.ENODATA
	}
	f.node.xattrs[name] = append([]byte(nil), value...)
	return nil
}

func (f *memFile) Lock(l Lock) (uint8, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if l.Type == LockTypeUnlock {
		f.node.lock = nil
		return LockStatusSuccess, nil
	}
	if f.node.lock != nil && f.node.lock.ClientID != l.ClientID {
		return LockStatusBlocked, nil
	}
	f.node.lock = &l
	return LockStatusSuccess, nil
}

func (f *memFile) GetLock(l Lock) (Lock, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.node.lock != nil && f.node.lock.ClientID != l.ClientID {
		return *f.node.lock, nil
	}
	l.Type = LockTypeUnlock
	return l, nil
}
