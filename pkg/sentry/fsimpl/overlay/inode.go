package overlay

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// copyAll asks copy-up for a regular file's whole data.
const copyAll = math.MaxUint64

// inode is an overlay file: its upper part, its lower part, or both (a
// merged directory, or a copied-up file that keeps its lower inode
// number).
type inode struct {
	fs   *filesystem
	ino  uint64
	refs atomic.Int64

	// lower is fixed at creation (zero if none).
	lower vfs.VirtualDentry
	// upper is set once, at creation or by copy-up, never changed after.
	upper atomic.Pointer[vfs.VirtualDentry]
	// copyMu serialises copy-up of this inode.
	copyMu sync.Mutex

	// parent and name locate a lower-only file for copy-up. Such a file
	// has exactly one overlay name, because rename and link copy up
	// first. parent is referenced.
	parent *inode
	name   string

	// opaque is set for an upper directory that hides the lower's
	// entries of the same path.
	opaque atomic.Bool
	// removed is set when an unlinked file has no upper part left to
	// report a link count.
	removed atomic.Bool
}

// newInode returns an inode taking over the references on upper and lower
// (either may be zero).
func (fs *filesystem) newInode(ctx context.Context, parent *inode, name string, upper, lower vfs.VirtualDentry) (*inode, error) {
	i := &inode{fs: fs, lower: lower, parent: parent, name: name}
	i.refs.Store(1)
	if upper.Ok() {
		u := upper
		i.upper.Store(&u)
	}
	switch {
	case upper.Ok():
		uino := upper.Dentry().Inode()
		if n, ok := parseOrigin(ctx, uino); ok {
			i.ino = n
		} else if lower.Ok() {
			st, err := lower.Dentry().Inode().Stat(ctx, unix.STATX_INO)
			if err != nil {
				i.releaseLayers(ctx)
				return nil, err
			}
			i.ino = st.Ino &^ upperOnlyInoBit
		} else {
			st, err := uino.Stat(ctx, unix.STATX_INO)
			if err != nil {
				i.releaseLayers(ctx)
				return nil, err
			}
			i.ino = st.Ino | upperOnlyInoBit
		}
		if uino.Mode()&unix.S_IFMT == unix.S_IFDIR && isOpaque(ctx, uino) {
			i.opaque.Store(true)
		}
	case lower.Ok():
		st, err := lower.Dentry().Inode().Stat(ctx, unix.STATX_INO)
		if err != nil {
			i.releaseLayers(ctx)
			return nil, err
		}
		i.ino = st.Ino &^ upperOnlyInoBit
	}
	if parent != nil {
		parent.IncRef()
	}
	return i, nil
}

func (i *inode) releaseLayers(ctx context.Context) {
	if u := i.upper.Load(); u != nil {
		u.DecRef(ctx)
	}
	if i.lower.Ok() {
		i.lower.DecRef(ctx)
	}
}

// IncRef implements vfs.Inode.
func (i *inode) IncRef() { i.refs.Add(1) }

// DecRef implements vfs.Inode.
func (i *inode) DecRef(ctx context.Context) {
	if i.refs.Add(-1) != 0 {
		return
	}
	i.releaseLayers(ctx)
	if i.parent != nil {
		i.parent.DecRef(ctx)
	}
}

// upperVD returns the upper part, or nil.
func (i *inode) upperVD() *vfs.VirtualDentry { return i.upper.Load() }

// real returns the layer dentry that answers for the file now.
func (i *inode) real() vfs.VirtualDentry {
	if u := i.upper.Load(); u != nil {
		return *u
	}
	return i.lower
}

func (i *inode) realInode() vfs.Inode { return i.real().Dentry().Inode() }

func (i *inode) isDir() bool { return i.Mode()&unix.S_IFMT == unix.S_IFDIR }

// Mode implements vfs.Inode.
func (i *inode) Mode() uint32 { return i.realInode().Mode() }

// BoundEndpoint implements vfs.BoundEndpointInode: a socket bound in the
// overlay lives in the upper layer; a lower (host) socket file has none.
func (i *inode) BoundEndpoint() vfs.BoundEndpoint {
	if bi, ok := i.realInode().(vfs.BoundEndpointInode); ok {
		return bi.BoundEndpoint()
	}
	return nil
}

// Owner implements vfs.Inode.
func (i *inode) Owner() (auth.UID, auth.GID) { return i.realInode().Owner() }

// Stat implements vfs.Inode.
func (i *inode) Stat(ctx context.Context, mask uint32) (vfs.Statx, error) {
	st, err := i.realInode().Stat(ctx, mask)
	if err != nil {
		return st, err
	}
	st.Ino = i.ino
	if i.isDir() && i.lower.Ok() && i.upper.Load() != nil && !i.opaque.Load() {
		// Neither layer knows a merged directory's subdirectory count;
		// 1 tells find(1) and friends not to rely on it.
		st.Nlink = 1
	}
	if i.removed.Load() {
		st.Nlink = 0
	}
	return st, nil
}

// copyUp gives the file an upper part holding its lower data (up to limit
// bytes for a regular file), attributes and xattrs, copying up its parent
// directories first.
func (i *inode) copyUp(ctx context.Context, limit uint64) error {
	if i.upper.Load() != nil {
		return nil
	}
	i.copyMu.Lock()
	defer i.copyMu.Unlock()
	if i.upper.Load() != nil {
		return nil
	}
	p := i.parent
	if p == nil {
		return unix.EIO // only the root has no parent, and it has an upper
	}
	if err := p.copyUp(ctx, copyAll); err != nil {
		return err
	}
	fs := i.fs
	pu := *p.upper.Load()
	v := pu.Mount().Filesystem().VFS()
	low := i.lower.Dentry().Inode()
	st, err := low.Stat(ctx, unix.STATX_BASIC_STATS)
	if err != nil {
		return err
	}
	mode := low.Mode()
	uid, gid := low.Owner()
	creds := fs.createCreds(uid, gid)
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		err = v.MkdirAt(ctx, creds, pop(pu, i.name), &vfs.MkdirOptions{Mode: mode & 0o7777})
	case unix.S_IFLNK:
		var target string
		if target, err = low.Readlink(ctx); err == nil {
			err = v.SymlinkAt(ctx, creds, pop(pu, i.name), target)
		}
	default:
		err = v.MknodAt(ctx, creds, pop(pu, i.name), &vfs.MknodOptions{Mode: mode, DevMajor: st.Rdev_major, DevMinor: st.Rdev_minor})
	}
	if err != nil {
		return err
	}
	uvd, err := fs.lookupLayer(ctx, pu, i.name)
	if err == nil {
		err = i.copyContents(ctx, uvd, &st, limit)
		if err != nil {
			uvd.DecRef(ctx)
		}
	}
	if err != nil {
		// Leave no half-made copy behind.
		if mode&unix.S_IFMT == unix.S_IFDIR {
			_ = v.RmdirAt(ctx, fs.creds, pop(pu, i.name))
		} else {
			_ = v.UnlinkAt(ctx, fs.creds, pop(pu, i.name))
		}
		return err
	}
	i.upper.Store(&uvd)
	return nil
}

// copyContents copies data, xattrs and attributes from the lower part to
// the new upper file uvd.
func (i *inode) copyContents(ctx context.Context, uvd vfs.VirtualDentry, st *vfs.Statx, limit uint64) error {
	low := i.lower.Dentry().Inode()
	up := uvd.Dentry().Inode()
	mode := low.Mode()
	if mode&unix.S_IFMT == unix.S_IFREG {
		if err := i.fs.copyData(ctx, i.lower, uvd, min(limit, st.Size)); err != nil {
			return err
		}
	}
	names, err := low.ListXattr(ctx)
	if err != nil && err != unix.EOPNOTSUPP && err != unix.EACCES {
		// EACCES: a lower directory the host user may search but not
		// read (a rootless Gofer under a 0711 directory) keeps xattrs it
		// could never have shown; the copy goes on without them.
		return err
	}
	for _, n := range names {
		if isPrivateXattr(n) {
			continue
		}
		val, err := low.GetXattr(ctx, n)
		if err != nil {
			continue // removed meanwhile
		}
		if err := up.SetXattr(ctx, n, val, 0); err != nil {
			return err
		}
	}
	if err := up.SetXattr(ctx, xattrOrigin, strconv.FormatUint(i.ino, 10), 0); err != nil {
		return err
	}
	uid, gid := low.Owner()
	return up.SetStat(ctx, &vfs.SetStatOptions{
		Mask:  unix.STATX_MODE | unix.STATX_UID | unix.STATX_GID | unix.STATX_ATIME | unix.STATX_MTIME,
		Mode:  mode & 0o7777,
		UID:   uid,
		GID:   gid,
		Atime: unix.Timespec{Sec: st.Atime.Sec, Nsec: int64(st.Atime.Nsec)},
		Mtime: unix.Timespec{Sec: st.Mtime.Sec, Nsec: int64(st.Mtime.Nsec)},
	})
}

// SetStat implements vfs.Inode.
func (i *inode) SetStat(ctx context.Context, o *vfs.SetStatOptions) error {
	limit := uint64(copyAll)
	if o.Mask&unix.STATX_SIZE != 0 {
		limit = o.Size // truncation: copying what goes is wasted work
	}
	if err := i.copyUp(ctx, limit); err != nil {
		return err
	}
	return i.upper.Load().Dentry().Inode().SetStat(ctx, o)
}

// Readlink implements vfs.Inode.
func (i *inode) Readlink(ctx context.Context) (string, error) { return i.realInode().Readlink(ctx) }

// Open implements vfs.Inode.
func (i *inode) Open(ctx context.Context, vd vfs.VirtualDentry, flags uint32) (vfs.FileDescriptionImpl, error) {
	switch i.Mode() & unix.S_IFMT {
	case unix.S_IFDIR:
		return &dirFD{inode: i}, nil
	case unix.S_IFREG:
		if flags&unix.O_ACCMODE != unix.O_RDONLY || flags&unix.O_TRUNC != 0 {
			if err := i.copyUp(ctx, copyAll); err != nil {
				return nil, err
			}
		}
	}
	return i.newFileFD(ctx, flags)
}

// openReal opens the layer file that answers for i now. The vfs has
// checked permissions at the overlay, and a truncation has been done by
// SetStat, so the layer inode opens it directly.
func (i *inode) openReal(ctx context.Context, flags uint32) (*vfs.FileDescription, error) {
	r := i.real()
	flags &^= unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_NOCTTY | unix.O_CLOEXEC | unix.O_DIRECTORY
	if i.upper.Load() == nil {
		// Reading through the overlay leaves the lower's atime alone.
		flags |= unix.O_NOATIME
	}
	impl, err := r.Dentry().Inode().Open(ctx, r, flags)
	if err != nil {
		return nil, err
	}
	return vfs.NewFileDescription(impl, flags|unix.O_LARGEFILE, r), nil
}

// Lookup implements vfs.Inode.
func (i *inode) Lookup(ctx context.Context, name string) (vfs.Inode, error) {
	if !i.isDir() {
		return nil, unix.ENOTDIR
	}
	fs := i.fs
	var upper vfs.VirtualDentry
	if u := i.upperVD(); u != nil {
		vd, err := fs.lookupLayer(ctx, *u, name)
		switch {
		case err == nil:
			if isWhiteout(ctx, vd) {
				vd.DecRef(ctx)
				return nil, unix.ENOENT
			}
			uino := vd.Dentry().Inode()
			if i.opaque.Load() || uino.Mode()&unix.S_IFMT != unix.S_IFDIR || isOpaque(ctx, uino) {
				return fs.newInode(ctx, i, name, vd, vfs.VirtualDentry{})
			}
			upper = vd
		case err != unix.ENOENT:
			return nil, err
		}
	}
	if i.lower.Ok() && !i.opaque.Load() {
		vd, err := fs.lookupLayer(ctx, i.lower, name)
		switch {
		case err == nil:
			if upper.Ok() && vd.Dentry().Inode().Mode()&unix.S_IFMT != unix.S_IFDIR {
				// An upper directory over a lower non-directory hides it.
				vd.DecRef(ctx)
				vd = vfs.VirtualDentry{}
			}
			return fs.newInode(ctx, i, name, upper, vd)
		case err != unix.ENOENT:
			if upper.Ok() {
				upper.DecRef(ctx)
			}
			return nil, err
		}
	}
	if upper.Ok() {
		return fs.newInode(ctx, i, name, upper, vfs.VirtualDentry{})
	}
	return nil, unix.ENOENT
}

// lowerHas reports whether the lower part of directory i shows name, so
// that removing or moving the overlay's name needs a whiteout.
func (i *inode) lowerHas(ctx context.Context, name string) bool {
	if !i.lower.Ok() || i.opaque.Load() {
		return false
	}
	vd, err := i.fs.lookupLayer(ctx, i.lower, name)
	if err != nil {
		return false
	}
	vd.DecRef(ctx)
	return true
}

// NewChild implements vfs.Inode.
func (i *inode) NewChild(ctx context.Context, name string, opts *vfs.MknodOptions) (vfs.Inode, error) {
	if err := i.copyUp(ctx, copyAll); err != nil {
		return nil, err
	}
	fs := i.fs
	u := *i.upper.Load()
	v := u.Mount().Filesystem().VFS()
	hadWhiteout, err := fs.removeWhiteout(ctx, u, name)
	if err != nil {
		return nil, err
	}
	creds := fs.createCreds(opts.UID, opts.GID)
	isDir := opts.Mode&unix.S_IFMT == unix.S_IFDIR
	switch opts.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		err = v.MkdirAt(ctx, creds, pop(u, name), &vfs.MkdirOptions{Mode: opts.Mode & 0o7777})
	case unix.S_IFLNK:
		err = v.SymlinkAt(ctx, creds, pop(u, name), opts.Target)
	default:
		o := *opts
		err = v.MknodAt(ctx, creds, pop(u, name), &o)
	}
	if err != nil {
		if hadWhiteout {
			_ = fs.makeWhiteout(ctx, u, name)
		}
		return nil, err
	}
	vd, err := fs.lookupLayer(ctx, u, name)
	if err != nil {
		return nil, err
	}
	if isDir && hadWhiteout {
		// A directory made where a lower name was removed must not show
		// that name's old entries.
		if err := vd.Dentry().Inode().SetXattr(ctx, xattrOpaque, "y", 0); err != nil {
			vd.DecRef(ctx)
			return nil, err
		}
	}
	return fs.newInode(ctx, i, name, vd, vfs.VirtualDentry{})
}

// NewTmpfile implements vfs.TmpfileMaker: the unnamed file lives in the
// upper layer, like every file the overlay makes.
func (i *inode) NewTmpfile(ctx context.Context, opts *vfs.MknodOptions) (vfs.Inode, error) {
	if err := i.copyUp(ctx, copyAll); err != nil {
		return nil, err
	}
	u := *i.upper.Load()
	v := u.Mount().Filesystem().VFS()
	vd, err := v.NewTmpfileAt(ctx, i.fs.createCreds(opts.UID, opts.GID), u, opts.Mode, true)
	if err != nil {
		return nil, err
	}
	return i.fs.newInode(ctx, i, "", vd, vfs.VirtualDentry{})
}

// Link implements vfs.Inode (link(2); renames go through Rename).
func (i *inode) Link(ctx context.Context, name string, child vfs.Inode, rename bool) error {
	c, ok := child.(*inode)
	if !ok || c.fs != i.fs || rename {
		return unix.EXDEV
	}
	if err := i.copyUp(ctx, copyAll); err != nil {
		return err
	}
	if err := c.copyUp(ctx, copyAll); err != nil {
		return err
	}
	fs := i.fs
	u := *i.upper.Load()
	hadWhiteout, err := fs.removeWhiteout(ctx, u, name)
	if err != nil {
		return err
	}
	err = u.Mount().Filesystem().VFS().LinkAt(ctx, fs.creds, pop(*c.upper.Load(), ""), pop(u, name))
	if err != nil && hadWhiteout {
		_ = fs.makeWhiteout(ctx, u, name)
	}
	return err
}

// mergedEntries lists directory i as the overlay shows it: upper entries
// that are not whiteouts, then lower entries that no upper entry or
// whiteout hides.
func (i *inode) mergedEntries(ctx context.Context) ([]vfs.Dirent, error) {
	fs := i.fs
	var out []vfs.Dirent
	var hidden map[string]struct{}
	u := i.upperVD()
	if u != nil {
		es, err := fs.listLayer(ctx, *u)
		if err != nil {
			return nil, err
		}
		hidden = make(map[string]struct{}, len(es))
		for _, e := range es {
			hidden[e.name] = struct{}{}
			vd, err := fs.lookupLayer(ctx, *u, e.name)
			if err != nil {
				continue // removed meanwhile
			}
			if isWhiteout(ctx, vd) {
				vd.DecRef(ctx)
				continue
			}
			ino, ok := parseOrigin(ctx, vd.Dentry().Inode())
			if !ok {
				ino = e.ino | upperOnlyInoBit
			}
			vd.DecRef(ctx)
			out = append(out, vfs.Dirent{Name: e.name, Ino: ino, Type: e.typ})
		}
	}
	if i.lower.Ok() && !i.opaque.Load() {
		es, err := fs.listLayer(ctx, i.lower)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if _, ok := hidden[e.name]; ok {
				continue
			}
			out = append(out, vfs.Dirent{Name: e.name, Ino: e.ino &^ upperOnlyInoBit, Type: e.typ})
		}
	}
	return out, nil
}

// isEmptyDir reports whether directory i shows no entries.
func (i *inode) isEmptyDir(ctx context.Context) (bool, error) {
	es, err := i.mergedEntries(ctx)
	return len(es) == 0, err
}

// Unlink implements vfs.Inode (unlink and rmdir; renames go through
// Rename).
func (i *inode) Unlink(ctx context.Context, name string, child vfs.Inode, rename bool) error {
	c, ok := child.(*inode)
	if !ok || rename {
		return unix.EXDEV
	}
	if err := i.copyUp(ctx, copyAll); err != nil {
		return err
	}
	fs := i.fs
	u := *i.upper.Load()
	v := u.Mount().Filesystem().VFS()
	dir := c.isDir()
	if dir {
		empty, err := c.isEmptyDir(ctx)
		if err != nil {
			return err
		}
		if !empty {
			return unix.ENOTEMPTY
		}
	}
	whiteout := i.lowerHas(ctx, name)
	if cu := c.upperVD(); cu != nil {
		if dir {
			if err := fs.clearWhiteouts(ctx, *cu); err != nil {
				return err
			}
			if err := v.RmdirAt(ctx, fs.creds, pop(u, name)); err != nil {
				return err
			}
		} else if err := v.UnlinkAt(ctx, fs.creds, pop(u, name)); err != nil {
			return err
		}
	}
	if whiteout {
		if err := fs.makeWhiteout(ctx, u, name); err != nil {
			return err
		}
	}
	if dir || c.upperVD() == nil {
		c.removed.Store(true)
	}
	return nil
}

// Rename implements vfs.Renamer: the rename happens in the upper layer in
// one step, after the copy-ups it needs; a whiteout then hides the lower
// name that was moved away.
func (i *inode) Rename(ctx context.Context, oldName string, old vfs.Inode, newParent vfs.Inode, newName string, repl vfs.Inode, flags uint32) error {
	o, ok1 := old.(*inode)
	np, ok2 := newParent.(*inode)
	if !ok1 || !ok2 || np.fs != i.fs {
		return unix.EXDEV
	}
	var r *inode
	if repl != nil {
		var ok bool
		if r, ok = repl.(*inode); !ok {
			return unix.EXDEV
		}
	}
	exchange := flags&unix.RENAME_EXCHANGE != 0
	if o.isDir() && o.lower.Ok() {
		return unix.EXDEV // a directory with lower entries (no redirect_dir)
	}
	if exchange && r.isDir() && r.lower.Ok() {
		return unix.EXDEV
	}
	if r != nil && !exchange && r.isDir() {
		empty, err := r.isEmptyDir(ctx)
		if err != nil {
			return err
		}
		if !empty {
			return unix.ENOTEMPTY
		}
	}
	for _, x := range []*inode{i, np, o} {
		if err := x.copyUp(ctx, copyAll); err != nil {
			return err
		}
	}
	if exchange {
		if err := r.copyUp(ctx, copyAll); err != nil {
			return err
		}
	}
	fs := i.fs
	ou, nu := *i.upper.Load(), *np.upper.Load()
	v := ou.Mount().Filesystem().VFS()
	if r == nil {
		// A whiteout at the new name is replaced, not renamed over:
		// neither a directory nor RENAME_NOREPLACE could go over it.
		if _, err := fs.removeWhiteout(ctx, nu, newName); err != nil {
			return err
		}
	} else if !exchange && r.isDir() {
		if ru := r.upperVD(); ru != nil {
			if err := fs.clearWhiteouts(ctx, *ru); err != nil {
				return err
			}
		}
	}
	whiteout := !exchange && i.lowerHas(ctx, oldName)
	if err := v.RenameAt(ctx, fs.creds, pop(ou, oldName), pop(nu, newName), &vfs.RenameOptions{Flags: flags}); err != nil {
		return err
	}
	// A moved upper directory must not merge with whatever lower
	// directory its new path has.
	for _, x := range []*inode{o, r} {
		if x == nil || (x == r && !exchange) || !x.isDir() {
			continue
		}
		if err := x.upper.Load().Dentry().Inode().SetXattr(ctx, xattrOpaque, "y", 0); err != nil {
			return err
		}
		x.opaque.Store(true)
	}
	if whiteout {
		if err := fs.makeWhiteout(ctx, ou, oldName); err != nil {
			return err
		}
	}
	if r != nil && !exchange && (r.isDir() || r.upperVD() == nil) {
		r.removed.Store(true)
	}
	return nil
}

// IterDirents implements vfs.Inode.
func (i *inode) IterDirents(ctx context.Context, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) (int64, error) {
	if !i.isDir() {
		return offset, unix.ENOTDIR
	}
	es, err := i.mergedEntries(ctx)
	if err != nil {
		return offset, err
	}
	return iterSnapshot(i, es, offset, parentIno, cb), nil
}

// iterSnapshot walks a listing: offset 0 is ".", 1 is "..", 2+k is es[k].
func iterSnapshot(i *inode, es []vfs.Dirent, offset int64, parentIno uint64, cb func(vfs.Dirent) bool) int64 {
	if i.removed.Load() {
		return offset
	}
	if !vfs.IterDots(&offset, i.ino, parentIno, 2, cb) {
		return offset
	}
	for ; offset-2 < int64(len(es)); offset++ {
		d := es[offset-2]
		d.NextOff = offset + 1
		if !cb(d) {
			return offset
		}
	}
	return offset
}

// GetXattr implements vfs.Inode.
func (i *inode) GetXattr(ctx context.Context, name string) (string, error) {
	if isPrivateXattr(name) {
		return "", unix.ENODATA
	}
	return i.realInode().GetXattr(ctx, name)
}

// SetXattr implements vfs.Inode.
func (i *inode) SetXattr(ctx context.Context, name, value string, flags uint32) error {
	if isPrivateXattr(name) {
		return unix.EPERM
	}
	if err := i.copyUp(ctx, copyAll); err != nil {
		return err
	}
	return i.upper.Load().Dentry().Inode().SetXattr(ctx, name, value, flags)
}

// ListXattr implements vfs.Inode.
func (i *inode) ListXattr(ctx context.Context) ([]string, error) {
	names, err := i.realInode().ListXattr(ctx)
	if err != nil {
		return nil, err
	}
	out := names[:0:0]
	for _, n := range names {
		if !isPrivateXattr(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// RemoveXattr implements vfs.Inode.
func (i *inode) RemoveXattr(ctx context.Context, name string) error {
	if isPrivateXattr(name) {
		return unix.ENODATA
	}
	if _, err := i.realInode().GetXattr(ctx, name); err != nil {
		return err // nothing to remove: no reason to copy up
	}
	if err := i.copyUp(ctx, copyAll); err != nil {
		return err
	}
	return i.upper.Load().Dentry().Inode().RemoveXattr(ctx, name)
}

// StatFS implements vfs.Inode: the upper's figures, as Linux reports.
func (i *inode) StatFS(ctx context.Context) (vfs.Statfs, error) {
	st, err := i.fs.upper.Dentry().Inode().StatFS(ctx)
	st.Type = overlayMagic
	return st, err
}

var (
	_ vfs.Inode   = (*inode)(nil)
	_ vfs.Renamer = (*inode)(nil)
)
