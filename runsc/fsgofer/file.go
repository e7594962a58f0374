package fsgofer

import (
	"encoding/binary"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/p9"
	"golang.org/x/sys/unix"
)

// file is one fid's view of a host file. It owns fd (O_PATH|O_NOFOLLOW on
// the file itself) and parentFD (O_PATH on the directory it was walked from,
// -1 for a mount root), and openFD once opened.
type file struct {
	a *Attacher

	// Identity, fixed at walk time.
	ftype uint32 // S_IFMT bits
	dev   uint64
	ino   uint64
	fd    int

	// Where the file lives; changed by renames under a.renameMu (see
	// Attacher.moved).
	parentFD  int
	parentDev uint64
	parentIno uint64
	name      string

	mu        sync.Mutex // guards openFD, openFlags and the readdir position
	openFD    int
	openFlags p9.OpenFlags
	closed    atomic.Bool
}

// newFile makes a registered file for fd, whose parent directory is the file
// parent (nil for a mount root).
func newFile(a *Attacher, fd int, parent *file, name string) (*file, error) {
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return nil, err
	}
	f := &file{a: a, ftype: st.Mode & unix.S_IFMT, dev: st.Dev, ino: st.Ino, fd: fd, parentFD: -1, name: name, openFD: -1}
	if parent != nil {
		pfd, err := dupFD(parent.fd)
		if err != nil {
			return nil, err
		}
		f.parentFD, f.parentDev, f.parentIno = pfd, parent.dev, parent.ino
	}
	a.register(f)
	return f, nil
}

func (f *file) qid() p9.QID {
	return p9.QID{Type: p9.QIDTypeOfMode(f.ftype), Path: f.ino}
}

func (f *file) readOnly() bool { return f.a.mount.ReadOnly }

// Close implements p9.File.
func (f *file) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.a.unregister(f)
	unix.Close(f.fd)
	if f.parentFD >= 0 {
		unix.Close(f.parentFD)
	}
	if f.openFD >= 0 {
		unix.Close(f.openFD)
	}
	return nil
}

// openat2Unsupported is set once openat2 returns ENOSYS.
var openat2Unsupported atomic.Bool

// openComponent opens one name beneath dirFD as O_PATH without following a
// symlink anywhere.
func openComponent(dirFD int, name string) (int, error) {
	if !p9.ValidName(name) {
		return -1, unix.EINVAL
	}
	if !openat2Unsupported.Load() {
		fd, err := unix.Openat2(dirFD, name, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != unix.ENOSYS {
			return fd, err
		}
		openat2Unsupported.Store(true)
	}
	// A single component with O_NOFOLLOW: nothing is followed.
	return unix.Openat(dirFD, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// Walk implements p9.File.
func (f *file) Walk(names []string) ([]p9.QID, p9.File, error) {
	f.a.renameMu.RLock()
	defer f.a.renameMu.RUnlock()
	if len(names) == 0 {
		fd, err := dupFD(f.fd)
		if err != nil {
			return nil, nil, err
		}
		parent := -1
		if f.parentFD >= 0 {
			if parent, err = dupFD(f.parentFD); err != nil {
				unix.Close(fd)
				return nil, nil, err
			}
		}
		nf := &file{a: f.a, ftype: f.ftype, dev: f.dev, ino: f.ino, fd: fd,
			parentFD: parent, parentDev: f.parentDev, parentIno: f.parentIno, name: f.name, openFD: -1}
		f.a.register(nf)
		return nil, nf, nil
	}
	qids := make([]p9.QID, 0, len(names))
	cur, err := dupFD(f.fd)
	if err != nil {
		return nil, nil, err
	}
	parent := -1
	var st, parentSt unix.Stat_t
	st.Dev, st.Ino = f.dev, f.ino
	for i, name := range names {
		next, err := openComponent(cur, name)
		if err == nil {
			parentSt = st
			if err = fstat(next, &st); err != nil {
				unix.Close(next)
			}
		}
		if err != nil {
			unix.Close(cur)
			if parent >= 0 {
				unix.Close(parent)
			}
			if i == 0 {
				return nil, nil, err
			}
			return qids, nil, nil
		}
		if parent >= 0 {
			unix.Close(parent)
		}
		parent, cur = cur, next
		qids = append(qids, p9.QID{Type: p9.QIDTypeOfMode(st.Mode), Path: st.Ino})
	}
	nf := &file{a: f.a, ftype: st.Mode & unix.S_IFMT, dev: st.Dev, ino: st.Ino, fd: cur,
		parentFD: parent, parentDev: parentSt.Dev, parentIno: parentSt.Ino, name: names[len(names)-1], openFD: -1}
	f.a.register(nf)
	return qids, nf, nil
}

// GetAttr implements p9.File.
func (f *file) GetAttr(mask p9.AttrMask) (p9.QID, p9.AttrMask, p9.Attr, error) {
	var st unix.Stat_t
	if err := fstat(f.fd, &st); err != nil {
		return p9.QID{}, 0, p9.Attr{}, err
	}
	attr := p9.Attr{
		Mode:      st.Mode,
		UID:       p9.UID(st.Uid),
		GID:       p9.GID(st.Gid),
		NLink:     st.Nlink,
		RDev:      st.Rdev,
		Size:      uint64(st.Size),
		BlockSize: uint64(st.Blksize),
		Blocks:    uint64(st.Blocks),
		ATimeSec:  uint64(st.Atim.Sec), ATimeNsec: uint64(st.Atim.Nsec),
		MTimeSec: uint64(st.Mtim.Sec), MTimeNsec: uint64(st.Mtim.Nsec),
		CTimeSec: uint64(st.Ctim.Sec), CTimeNsec: uint64(st.Ctim.Nsec),
	}
	return p9.QID{Type: p9.QIDTypeOfMode(st.Mode), Path: st.Ino}, p9.AttrBasic, attr, nil
}

// reopen returns a new real descriptor for the file with flags. Directories
// are reopened through "." of their own O_PATH descriptor; regular files
// through (parent, name) with O_NOFOLLOW, checking the inode is unchanged
// (ESTALE if it was renamed or replaced behind our back).
func (f *file) reopen(flags int) (int, error) {
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NOCTTY
	switch f.ftype {
	case unix.S_IFDIR:
		return unix.Openat(f.fd, ".", flags|unix.O_DIRECTORY, 0)
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return -1, unix.ELOOP
	default:
		// Device, FIFO and socket nodes are never opened on the host: the
		// Sentry implements them itself.
		return -1, unix.ENXIO
	}
	var fd int
	var err error
	f.a.renameMu.RLock()
	if f.parentFD < 0 {
		fd, err = unix.Openat(f.a.rootDirFD, f.a.rootName, flags, 0)
	} else {
		fd, err = unix.Openat(f.parentFD, f.name, flags, 0)
	}
	f.a.renameMu.RUnlock()
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		unix.Close(fd)
		return -1, unix.ESTALE
	}
	return fd, nil
}

// allowedOpenFlags are the open flags passed through to the host. O_APPEND
// is dropped on purpose: the Sentry tracks file offsets and writes with
// pwrite, which O_APPEND would redirect to the end.
const allowedOpenFlags = unix.O_ACCMODE | unix.O_TRUNC | unix.O_DSYNC | unix.O_SYNC | unix.O_DIRECTORY | unix.O_NOATIME | unix.O_DIRECT

// Open implements p9.File.
func (f *file) Open(flags p9.OpenFlags) (*os.File, p9.QID, uint32, error) {
	if flags&unix.O_CREAT != 0 {
		return nil, p9.QID{}, 0, unix.EINVAL
	}
	if flags.Writable() && f.readOnly() {
		return nil, p9.QID{}, 0, unix.EROFS
	}
	if f.ftype == unix.S_IFDIR && flags.Writable() {
		return nil, p9.QID{}, 0, unix.EISDIR
	}
	if flags&unix.O_DIRECTORY != 0 && f.ftype != unix.S_IFDIR {
		return nil, p9.QID{}, 0, unix.ENOTDIR
	}
	fd, err := f.reopen(int(flags & allowedOpenFlags))
	if err != nil {
		return nil, p9.QID{}, 0, err
	}
	var donate *os.File
	if f.ftype == unix.S_IFREG {
		dfd, err := dupFD(fd)
		if err != nil {
			unix.Close(fd)
			return nil, p9.QID{}, 0, err
		}
		donate = os.NewFile(uintptr(dfd), f.name)
	}
	f.mu.Lock()
	f.openFD, f.openFlags = fd, flags
	f.mu.Unlock()
	return donate, f.qid(), 0, nil
}

func (f *file) openedFD() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD < 0 {
		return -1, unix.EBADF
	}
	return f.openFD, nil
}

// ReadAt implements p9.File.
func (f *file) ReadAt(p []byte, off uint64) (int, error) {
	fd, err := f.openedFD()
	if err != nil {
		return 0, err
	}
	if f.ftype == unix.S_IFDIR {
		return 0, unix.EISDIR
	}
	n, err := unix.Pread(fd, p, int64(off))
	if err != nil {
		return 0, err
	}
	return n, nil
}

// WriteAt implements p9.File.
func (f *file) WriteAt(p []byte, off uint64) (int, error) {
	if f.readOnly() {
		return 0, unix.EROFS
	}
	fd, err := f.openedFD()
	if err != nil {
		return 0, err
	}
	return unix.Pwrite(fd, p, int64(off))
}

// chown gives a new entry its creator's ids. An unprivileged Gofer cannot,
// and then the entry keeps the Gofer's ids, as on a host filesystem mounted
// without ownership support.
func chownNew(dirFD int, name string, uid p9.UID, gid p9.GID) {
	u, g := -1, int(gid)
	if uid != p9.NoUID {
		u = int(uid)
	}
	if err := unix.Fchownat(dirFD, name, u, g, unix.AT_SYMLINK_NOFOLLOW); err != nil && err != unix.EPERM {
		_ = err // the entry exists; ownership is best effort
	}
}

func (f *file) checkDirMutation(name string) error {
	if !p9.ValidName(name) {
		return unix.EINVAL
	}
	if f.readOnly() {
		return unix.EROFS
	}
	if f.ftype != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	return nil
}

// Create implements p9.File.
func (f *file) Create(name string, flags p9.OpenFlags, mode uint32, uid p9.UID, gid p9.GID) (p9.File, *os.File, p9.QID, uint32, error) {
	if err := f.checkDirMutation(name); err != nil {
		return nil, nil, p9.QID{}, 0, err
	}
	hostFlags := int(flags&(allowedOpenFlags|unix.O_EXCL)&^unix.O_DIRECTORY) | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := unix.Openat(f.fd, name, hostFlags, mode&0o7777)
	if err != nil {
		return nil, nil, p9.QID{}, 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, p9.QID{}, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		// O_CREAT without O_EXCL opened an existing non-regular file.
		unix.Close(fd)
		return nil, nil, p9.QID{}, 0, unix.EEXIST
	}
	if st.Uid != uint32(uid) || st.Gid != uint32(gid) {
		u := -1
		if uid != p9.NoUID {
			u = int(uid)
		}
		unix.Fchown(fd, u, int(gid)) // best effort, as chownNew
	}
	pathFD, err := openComponent(f.fd, name)
	if err != nil {
		unix.Close(fd)
		return nil, nil, p9.QID{}, 0, err
	}
	nf, err := newFile(f.a, pathFD, f, name)
	if err != nil {
		unix.Close(fd)
		unix.Close(pathFD)
		return nil, nil, p9.QID{}, 0, err
	}
	if nf.ino != st.Ino || nf.dev != st.Dev {
		unix.Close(fd)
		nf.Close()
		return nil, nil, p9.QID{}, 0, unix.ESTALE
	}
	nf.openFD, nf.openFlags = fd, flags
	dfd, err := dupFD(fd)
	if err != nil {
		nf.Close()
		return nil, nil, p9.QID{}, 0, err
	}
	return nf, os.NewFile(uintptr(dfd), name), nf.qid(), 0, nil
}

func (f *file) statChild(name string) (p9.QID, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(f.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return p9.QID{}, err
	}
	return p9.QID{Type: p9.QIDTypeOfMode(st.Mode), Path: st.Ino}, nil
}

// Mkdir implements p9.File.
func (f *file) Mkdir(name string, mode uint32, uid p9.UID, gid p9.GID) (p9.QID, error) {
	if err := f.checkDirMutation(name); err != nil {
		return p9.QID{}, err
	}
	if err := unix.Mkdirat(f.fd, name, mode&0o7777); err != nil {
		return p9.QID{}, err
	}
	chownNew(f.fd, name, uid, gid)
	return f.statChild(name)
}

// Symlink implements p9.File. The target is stored, never resolved here.
func (f *file) Symlink(name, target string, uid p9.UID, gid p9.GID) (p9.QID, error) {
	if err := f.checkDirMutation(name); err != nil {
		return p9.QID{}, err
	}
	if err := unix.Symlinkat(target, f.fd, name); err != nil {
		return p9.QID{}, err
	}
	chownNew(f.fd, name, uid, gid)
	return f.statChild(name)
}

// Mknod implements p9.File. Device nodes are refused (EPERM, as for a
// process without CAP_MKNOD): the sandbox must not plant devices in a tree
// the host may later use.
func (f *file) Mknod(name string, mode, major, minor uint32, uid p9.UID, gid p9.GID) (p9.QID, error) {
	if err := f.checkDirMutation(name); err != nil {
		return p9.QID{}, err
	}
	switch mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK, 0:
	case unix.S_IFCHR, unix.S_IFBLK:
		return p9.QID{}, unix.EPERM
	default:
		return p9.QID{}, unix.EINVAL
	}
	if err := unix.Mknodat(f.fd, name, mode, 0); err != nil {
		return p9.QID{}, err
	}
	chownNew(f.fd, name, uid, gid)
	return f.statChild(name)
}

// Link implements p9.File.
func (f *file) Link(target p9.File, name string) error {
	if err := f.checkDirMutation(name); err != nil {
		return err
	}
	t, ok := target.(*file)
	if !ok || t.a != f.a {
		return unix.EXDEV
	}
	if t.ftype == unix.S_IFDIR {
		return unix.EPERM
	}
	// Linking the O_PATH descriptor itself needs CAP_DAC_READ_SEARCH; without
	// it, link by (parent, name), which never follows a symlink.
	err := unix.Linkat(t.fd, "", f.fd, name, unix.AT_EMPTY_PATH)
	if err != unix.ENOENT && err != unix.EPERM {
		return err
	}
	f.a.renameMu.RLock()
	defer f.a.renameMu.RUnlock()
	if t.parentFD < 0 {
		return unix.EBUSY
	}
	return unix.Linkat(t.parentFD, t.name, f.fd, name, 0)
}

// Rename implements p9.File.
func (f *file) Rename(newDir p9.File, newName string) error {
	d, ok := newDir.(*file)
	if !ok || d.a != f.a {
		return unix.EXDEV
	}
	if err := d.checkDirMutation(newName); err != nil {
		return err
	}
	f.a.renameMu.Lock()
	defer f.a.renameMu.Unlock()
	if f.parentFD < 0 {
		return unix.EBUSY
	}
	if err := unix.Renameat(f.parentFD, f.name, d.fd, newName); err != nil {
		return err
	}
	f.a.moved(f.parentDev, f.parentIno, f.name, d, newName)
	return nil
}

// RenameAt implements p9.File.
func (f *file) RenameAt(oldName string, newDir p9.File, newName string) error {
	d, ok := newDir.(*file)
	if !ok || d.a != f.a {
		return unix.EXDEV
	}
	if err := f.checkDirMutation(oldName); err != nil {
		return err
	}
	if err := d.checkDirMutation(newName); err != nil {
		return err
	}
	f.a.renameMu.Lock()
	defer f.a.renameMu.Unlock()
	if err := unix.Renameat(f.fd, oldName, d.fd, newName); err != nil {
		return err
	}
	f.a.moved(f.dev, f.ino, oldName, d, newName)
	return nil
}

// UnlinkAt implements p9.File.
func (f *file) UnlinkAt(name string, flags uint32) error {
	if err := f.checkDirMutation(name); err != nil {
		return err
	}
	if flags&^unix.AT_REMOVEDIR != 0 {
		return unix.EINVAL
	}
	return unix.Unlinkat(f.fd, name, int(flags))
}

// Remove implements p9.File.
func (f *file) Remove() error {
	if f.readOnly() {
		return unix.EROFS
	}
	f.a.renameMu.RLock()
	defer f.a.renameMu.RUnlock()
	if f.parentFD < 0 {
		return unix.EBUSY
	}
	var st unix.Stat_t
	if err := unix.Fstatat(f.parentFD, f.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return unix.ESTALE
	}
	flags := 0
	if f.ftype == unix.S_IFDIR {
		flags = unix.AT_REMOVEDIR
	}
	return unix.Unlinkat(f.parentFD, f.name, flags)
}

// Readlink implements p9.File.
func (f *file) Readlink() (string, error) {
	if f.ftype != unix.S_IFLNK {
		return "", unix.EINVAL
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(f.fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Readdir implements p9.File. Offsets are the host's d_off cookies, so a
// client can resume anywhere it has been.
func (f *file) Readdir(offset uint64, count uint32) ([]p9.Dirent, error) {
	if f.ftype != unix.S_IFDIR {
		return nil, unix.ENOTDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openFD < 0 {
		return nil, unix.EBADF
	}
	if _, err := unix.Seek(f.openFD, int64(offset), 0); err != nil {
		return nil, err
	}
	bufp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bufp)
	buf := *bufp
	if int(count) < len(buf) {
		buf = buf[:max(int(count), 4096)]
	}
	n, err := unix.Getdents(f.openFD, buf)
	if err != nil {
		return nil, err
	}
	return parseDirents(buf[:n]), nil
}

// direntBufs holds getdents buffers: a listing takes several Readdir calls
// (p9.Server fills each reply), and a fresh 64 KiB each time is garbage.
// Entries are copied out of the buffer (parseDirents), so it is reused at once.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// parseDirents decodes linux_dirent64 records, dropping "." and "..".
func parseDirents(buf []byte) []p9.Dirent {
	var out []p9.Dirent
	for len(buf) >= 19 {
		ino := binary.NativeEndian.Uint64(buf[0:])
		off := binary.NativeEndian.Uint64(buf[8:])
		reclen := int(binary.NativeEndian.Uint16(buf[16:]))
		if reclen < 19 || reclen > len(buf) {
			break
		}
		typ := buf[18]
		name := buf[19:reclen]
		if i := strings.IndexByte(string(name), 0); i >= 0 {
			name = name[:i]
		}
		buf = buf[reclen:]
		if s := string(name); s == "." || s == ".." {
			continue
		}
		qt := p9.QIDTypeRegular
		switch typ {
		case unix.DT_DIR:
			qt = p9.QIDTypeDir
		case unix.DT_LNK:
			qt = p9.QIDTypeSymlink
		}
		out = append(out, p9.Dirent{QID: p9.QID{Type: qt, Path: ino}, Offset: off, Type: typ, Name: string(name)})
	}
	return out
}

// StatFS implements p9.File.
func (f *file) StatFS() (p9.FSStat, error) {
	var s unix.Statfs_t
	if err := unix.Fstatfs(f.fd, &s); err != nil {
		return p9.FSStat{}, err
	}
	return p9.FSStat{
		Type:            uint32(s.Type),
		BlockSize:       uint32(s.Bsize),
		Blocks:          s.Blocks,
		BlocksFree:      s.Bfree,
		BlocksAvailable: s.Bavail,
		Files:           s.Files,
		FilesFree:       s.Ffree,
		FSID:            uint64(uint32(s.Fsid.Val[0])) | uint64(uint32(s.Fsid.Val[1]))<<32,
		NameLength:      uint32(s.Namelen),
	}, nil
}

// FSync implements p9.File.
func (f *file) FSync(datasync bool) error {
	fd, err := f.openedFD()
	if err != nil {
		return err
	}
	if datasync {
		return unix.Fdatasync(fd)
	}
	return unix.Fsync(fd)
}

// xattrAllowed limits extended attributes to the user namespace: the
// sandbox must not set security.* (e.g. file capabilities) or trusted.* on
// host files.
func xattrAllowed(name string) bool {
	return strings.HasPrefix(name, "user.") && len(name) > len("user.") && len(name) <= 255 // XATTR_NAME_MAX
}

// withMetaFD runs fn on the open descriptor if any, else on a fresh
// read-only reopen.
func (f *file) withMetaFD(fn func(fd int) error) error {
	f.mu.Lock()
	fd := f.openFD
	f.mu.Unlock()
	if fd >= 0 {
		return fn(fd)
	}
	if f.ftype != unix.S_IFREG && f.ftype != unix.S_IFDIR {
		return unix.EOPNOTSUPP
	}
	fd, err := f.reopen(unix.O_RDONLY | unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(fd)
}

// GetXattr implements p9.File.
func (f *file) GetXattr(name string) ([]byte, error) {
	if !xattrAllowed(name) {
		return nil, unix.EOPNOTSUPP
	}
	var val []byte
	err := f.withMetaFD(func(fd int) error {
		buf := make([]byte, p9.MaxXattrSize)
		n, err := unix.Fgetxattr(fd, name, buf)
		if err != nil {
			return err
		}
		val = buf[:n]
		return nil
	})
	return val, err
}

// ListXattr implements p9.File.
func (f *file) ListXattr() ([]string, error) {
	var names []string
	err := f.withMetaFD(func(fd int) error {
		buf := make([]byte, p9.MaxXattrSize)
		n, err := unix.Flistxattr(fd, buf)
		if err != nil {
			return err
		}
		for _, nm := range strings.Split(string(buf[:n]), "\x00") {
			if xattrAllowed(nm) {
				names = append(names, nm)
			}
		}
		return nil
	})
	if err == unix.EOPNOTSUPP {
		return nil, nil
	}
	return names, err
}

// SetXattr implements p9.File.
func (f *file) SetXattr(name string, value []byte, flags uint32) error {
	if f.readOnly() {
		return unix.EROFS
	}
	if !xattrAllowed(name) {
		return unix.EOPNOTSUPP
	}
	if flags&^(unix.XATTR_CREATE|unix.XATTR_REPLACE) != 0 {
		return unix.EINVAL
	}
	return f.withMetaFD(func(fd int) error {
		return unix.Fsetxattr(fd, name, value, int(flags))
	})
}

// RemoveXattr implements p9.XattrRemover.
func (f *file) RemoveXattr(name string) error {
	if f.readOnly() {
		return unix.EROFS
	}
	if !xattrAllowed(name) {
		return unix.EOPNOTSUPP
	}
	return f.withMetaFD(func(fd int) error {
		return unix.Fremovexattr(fd, name)
	})
}

// SetAttr implements p9.File.
func (f *file) SetAttr(valid p9.SetAttrMask, attr p9.SetAttr) error {
	if valid == 0 {
		return nil
	}
	if f.readOnly() {
		return unix.EROFS
	}
	if valid&p9.SetAttrSize != 0 {
		if err := f.truncate(attr.Size); err != nil {
			return err
		}
	}
	if valid&p9.SetAttrMode != 0 {
		if err := f.chmod(attr.Mode & 0o7777); err != nil {
			return err
		}
	}
	if valid&(p9.SetAttrUID|p9.SetAttrGID) != 0 {
		uid, gid := -1, -1
		if valid&p9.SetAttrUID != 0 {
			uid = int(attr.UID)
		}
		if valid&p9.SetAttrGID != 0 {
			gid = int(attr.GID)
		}
		if err := unix.Fchownat(f.fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if valid&(p9.SetAttrATime|p9.SetAttrMTime) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if valid&p9.SetAttrATime != 0 {
			ts[0] = timespec(valid&p9.SetAttrATimeSet != 0, attr.ATimeSec, attr.ATimeNsec)
		}
		if valid&p9.SetAttrMTime != 0 {
			ts[1] = timespec(valid&p9.SetAttrMTimeSet != 0, attr.MTimeSec, attr.MTimeNsec)
		}
		if err := f.utimes(ts); err != nil {
			return err
		}
	}
	return nil
}

func timespec(set bool, sec, nsec uint64) unix.Timespec {
	if !set {
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
}

func (f *file) truncate(size uint64) error {
	switch f.ftype {
	case unix.S_IFDIR:
		return unix.EISDIR
	case unix.S_IFREG:
	default:
		return unix.EINVAL
	}
	if int64(size) < 0 {
		return unix.EFBIG
	}
	f.mu.Lock()
	fd, flags := f.openFD, f.openFlags
	f.mu.Unlock()
	if fd >= 0 && flags.AccessMode() != unix.O_RDONLY {
		return unix.Ftruncate(fd, int64(size))
	}
	fd, err := f.reopen(unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, int64(size))
}

func (f *file) chmod(mode uint32) error {
	if f.ftype == unix.S_IFLNK {
		return unix.EOPNOTSUPP // Linux cannot chmod a symlink either
	}
	err := unix.Fchmodat(f.fd, "", mode, unix.AT_EMPTY_PATH)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	// No fchmodat2 (kernels before 6.6): chmod a real descriptor instead.
	return f.withMetaFD(func(fd int) error { return unix.Fchmod(fd, mode) })
}

func (f *file) utimes(ts []unix.Timespec) error {
	err := unix.UtimesNanoAt(f.fd, "", ts, unix.AT_EMPTY_PATH)
	if err != unix.EINVAL {
		return err
	}
	// utimensat without AT_EMPTY_PATH support: name the entry itself, not
	// following a symlink.
	f.a.renameMu.RLock()
	defer f.a.renameMu.RUnlock()
	if f.parentFD < 0 {
		return unix.UtimesNanoAt(unix.AT_FDCWD, f.a.mount.HostPath, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	return unix.UtimesNanoAt(f.parentFD, f.name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// Lock implements p9.File with host open-file-description locks, which
// belong to this fid's open file as POSIX locks belong to a process. They
// are advisory and never block the Gofer: a conflict is LockStatusBlocked
// and the client retries.
func (f *file) Lock(l p9.Lock) (uint8, error) {
	fd, err := f.openedFD()
	if err != nil {
		return p9.LockStatusError, err
	}
	fl, err := hostFlock(l)
	if err != nil {
		return p9.LockStatusError, err
	}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &fl); err != nil {
		if err == unix.EAGAIN || err == unix.EACCES {
			return p9.LockStatusBlocked, nil
		}
		return p9.LockStatusError, err
	}
	return p9.LockStatusSuccess, nil
}

// GetLock implements p9.File.
func (f *file) GetLock(l p9.Lock) (p9.Lock, error) {
	fd, err := f.openedFD()
	if err != nil {
		return p9.Lock{}, err
	}
	fl, err := hostFlock(l)
	if err != nil {
		return p9.Lock{}, err
	}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &fl); err != nil {
		return p9.Lock{}, err
	}
	out := l
	switch fl.Type {
	case unix.F_UNLCK:
		out.Type = p9.LockTypeUnlock
		return out, nil
	case unix.F_RDLCK:
		out.Type = p9.LockTypeRead
	default:
		out.Type = p9.LockTypeWrite
	}
	out.Start, out.Length = uint64(fl.Start), uint64(fl.Len)
	out.ProcID = 0 // the host pid means nothing inside the sandbox
	return out, nil
}

func hostFlock(l p9.Lock) (unix.Flock_t, error) {
	fl := unix.Flock_t{Whence: 0, Start: int64(l.Start), Len: int64(l.Length)}
	if fl.Start < 0 || fl.Len < 0 {
		return fl, unix.EINVAL
	}
	switch l.Type {
	case p9.LockTypeRead:
		fl.Type = unix.F_RDLCK
	case p9.LockTypeWrite:
		fl.Type = unix.F_WRLCK
	case p9.LockTypeUnlock:
		fl.Type = unix.F_UNLCK
	default:
		return fl, unix.EINVAL
	}
	return fl, nil
}
