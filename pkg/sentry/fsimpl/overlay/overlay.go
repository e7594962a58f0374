// Package overlay owns the overlay filesystem that serves a container's
// root: a writable upper filesystem (tmpfs) stacked over a read-only lower
// filesystem (the gofer's, or any vfs filesystem). Reads go to whichever
// layer holds a file; the first change to a lower file copies it up
// (data, attributes, xattrs) into the upper; deletions of lower names leave
// whiteouts in the upper; directories re-created over a whiteout are
// opaque. The lower is only ever read.
//
// Representation private to the upper layer, as Linux overlayfs does it:
// a whiteout is a character device 0:0; an opaque directory carries the
// xattr trusted.overlay.opaque="y"; a copied-up file carries
// trusted.overlay.origin=<lower inode number> so that its st_ino stays the
// lower's. Files created in the upper report their upper inode number with
// bit 63 set, so the two numbering spaces never collide.
//
// Renaming a directory that has a lower part returns EXDEV, as Linux
// overlayfs does without redirect_dir; mv(1) then copies.
package overlay

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name.
const Name = "overlay"

// overlayMagic is OVERLAYFS_SUPER_MAGIC.
const overlayMagic = 0x794c7630

// Xattr names private to the upper layer.
const (
	xattrPrefix = "trusted.overlay."
	xattrOpaque = xattrPrefix + "opaque"
	xattrOrigin = xattrPrefix + "origin"
)

// upperOnlyInoBit marks inode numbers of files that exist only in the upper.
const upperOnlyInoBit = 1 << 63

// copyChunk is the size of the buffer that copy-up moves data through.
const copyChunk = 64 << 10

// Options is passed as GetFilesystemOptions.InternalData. The overlay takes
// its own references on both.
type Options struct {
	// Lower is the root of the read-only layer.
	Lower vfs.VirtualDentry
	// Upper is the root of the writable layer: an empty tmpfs normally.
	Upper vfs.VirtualDentry
	// DentryCacheLimit bounds the unused overlay names kept cached: 0
	// means vfs.DefaultDentryCacheLimit, a negative value no bound.
	DentryCacheLimit int
}

// FilesystemType implements vfs.FilesystemType.
type FilesystemType struct{}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

// filesystem is one overlay instance.
type filesystem struct {
	vfsfs        *vfs.Filesystem
	lower, upper vfs.VirtualDentry
	// creds do the overlay's own work on the layers: the vfs has checked
	// the caller's permissions at the overlay already.
	creds *auth.Credentials
	// dcacheLimit is the vfs.DentryCacheLimiter answer.
	dcacheLimit int
}

// GetFilesystem implements vfs.FilesystemType.
func (FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	o, ok := opts.InternalData.(*Options)
	if !ok || o == nil || !o.Lower.Ok() || !o.Upper.Ok() {
		return nil, nil, fmt.Errorf("overlay: lower and upper layers are required: %w", unix.EINVAL)
	}
	if o.Upper.Mount().ReadOnly() {
		return nil, nil, fmt.Errorf("overlay: upper layer is read-only: %w", unix.EROFS)
	}
	fs := &filesystem{lower: o.Lower, upper: o.Upper, creds: auth.NewRoot(), dcacheLimit: o.DentryCacheLimit}
	if fs.dcacheLimit == 0 {
		fs.dcacheLimit = vfs.DefaultDentryCacheLimit
	}
	for _, vd := range []vfs.VirtualDentry{o.Lower, o.Upper} {
		if vd.Dentry().Inode().Mode()&unix.S_IFMT != unix.S_IFDIR {
			return nil, nil, fmt.Errorf("overlay: layer root is not a directory: %w", unix.ENOTDIR)
		}
	}
	o.Lower.IncRef()
	o.Upper.IncRef()
	root, err := fs.newInode(ctx, nil, "", o.Upper, o.Lower)
	if err != nil {
		o.Lower.DecRef(ctx)
		o.Upper.DecRef(ctx)
		return nil, nil, fmt.Errorf("overlay: root: %w", err)
	}
	if err := fs.adoptLowerRootAttrs(ctx); err != nil {
		root.DecRef(ctx)
		return nil, nil, fmt.Errorf("overlay: root attributes: %w", err)
	}
	fs.vfsfs = v.NewFilesystem(fs)
	d := fs.vfsfs.NewDentry(root)
	d.IncRef()
	return fs.vfsfs, d, nil
}

// adoptLowerRootAttrs gives a fresh (empty) upper root the lower root's
// owner and mode, so that the container's / looks like its image's.
func (fs *filesystem) adoptLowerRootAttrs(ctx context.Context) error {
	names, err := fs.listLayer(ctx, fs.upper)
	if err != nil || len(names) != 0 {
		return err
	}
	lino := fs.lower.Dentry().Inode()
	uid, gid := lino.Owner()
	return fs.upper.Dentry().Inode().SetStat(ctx, &vfs.SetStatOptions{
		Mask: unix.STATX_MODE | unix.STATX_UID | unix.STATX_GID,
		Mode: lino.Mode() & 0o7777, UID: uid, GID: gid,
	})
}

// DentryCacheLimit implements vfs.DentryCacheLimiter: an overlay inode is
// rebuilt from its layers by Lookup, and an overlay dentry pins the layer
// dentries below it, so the overlay's cache must be bounded for the
// lower layer's to be.
func (fs *filesystem) DentryCacheLimit() int { return fs.dcacheLimit }

// Release implements vfs.FilesystemImpl.
func (fs *filesystem) Release(ctx context.Context) {
	fs.lower.DecRef(ctx)
	fs.upper.DecRef(ctx)
}

// pop names child name of dir (a layer dentry) without following symlinks;
// dir is also the walk's root, so nothing can lead out of it.
func pop(dir vfs.VirtualDentry, name string) *vfs.PathOperation {
	return &vfs.PathOperation{Root: dir, Start: dir, Path: name, AllowEmptyPath: name == ""}
}

// lookupLayer returns dir's child name in a layer, with a reference.
func (fs *filesystem) lookupLayer(ctx context.Context, dir vfs.VirtualDentry, name string) (vfs.VirtualDentry, error) {
	return dir.Mount().Filesystem().VFS().GetDentryAt(ctx, fs.creds, pop(dir, name), nil)
}

// layerEntry is one name of a layer directory.
type layerEntry struct {
	name string
	ino  uint64
	typ  uint8
}

// listLayer returns the entries of a layer directory, "." and ".."
// excluded.
func (fs *filesystem) listLayer(ctx context.Context, dir vfs.VirtualDentry) ([]layerEntry, error) {
	fd, err := dir.Mount().Filesystem().VFS().OpenAt(ctx, fs.creds, pop(dir, ""), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		return nil, err
	}
	defer fd.DecRef(ctx)
	var out []layerEntry
	for {
		n := len(out)
		err := fd.IterDirents(ctx, func(d vfs.Dirent) bool {
			if d.Name != "." && d.Name != ".." {
				out = append(out, layerEntry{d.Name, d.Ino, d.Type})
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if len(out) == n {
			return out, nil
		}
	}
}

// isWhiteout reports whether a layer dentry is a whiteout.
func isWhiteout(ctx context.Context, vd vfs.VirtualDentry) bool {
	ino := vd.Dentry().Inode()
	if ino.Mode()&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	st, err := ino.Stat(ctx, unix.STATX_TYPE)
	return err == nil && st.Rdev_major == 0 && st.Rdev_minor == 0
}

// createCreds returns credentials that create files owned by uid:gid.
func (fs *filesystem) createCreds(uid auth.UID, gid auth.GID) *auth.Credentials {
	c := fs.creds.Fork()
	c.FilesystemUID, c.FilesystemGID = uid, gid
	return c
}

// makeWhiteout creates a whiteout called name in the upper directory dir.
func (fs *filesystem) makeWhiteout(ctx context.Context, dir vfs.VirtualDentry, name string) error {
	v := dir.Mount().Filesystem().VFS()
	return v.MknodAt(ctx, fs.creds, pop(dir, name), &vfs.MknodOptions{Mode: unix.S_IFCHR})
}

// removeWhiteout removes a whiteout called name from the upper directory
// dir, reporting whether there was one.
func (fs *filesystem) removeWhiteout(ctx context.Context, dir vfs.VirtualDentry, name string) (bool, error) {
	vd, err := fs.lookupLayer(ctx, dir, name)
	if err == unix.ENOENT {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	wh := isWhiteout(ctx, vd)
	vd.DecRef(ctx)
	if !wh {
		return false, nil
	}
	return true, dir.Mount().Filesystem().VFS().UnlinkAt(ctx, fs.creds, pop(dir, name))
}

// clearWhiteouts removes every whiteout in an upper directory, so that it
// can be removed or replaced once it is empty to the overlay.
func (fs *filesystem) clearWhiteouts(ctx context.Context, dir vfs.VirtualDentry) error {
	es, err := fs.listLayer(ctx, dir)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.typ != unix.DT_CHR {
			continue
		}
		if _, err := fs.removeWhiteout(ctx, dir, e.name); err != nil {
			return err
		}
	}
	return nil
}

// copyData copies up to limit bytes of src's file to dst's (both layer
// dentries of regular files).
func (fs *filesystem) copyData(ctx context.Context, src, dst vfs.VirtualDentry, limit uint64) error {
	in, err := src.Mount().Filesystem().VFS().OpenAt(ctx, fs.creds, pop(src, ""), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_NOATIME})
	if err != nil {
		return err
	}
	defer in.DecRef(ctx)
	out, err := dst.Mount().Filesystem().VFS().OpenAt(ctx, fs.creds, pop(dst, ""), &vfs.OpenOptions{Flags: unix.O_WRONLY})
	if err != nil {
		return err
	}
	defer out.DecRef(ctx)
	buf := make([]byte, copyChunk)
	var off uint64
	for off < limit {
		want := min(uint64(len(buf)), limit-off)
		n, err := in.PRead(ctx, byteSeq(buf[:want]), int64(off), vfs.ReadOptions{})
		if n > 0 {
			if _, werr := out.PWrite(ctx, byteSeq(buf[:n]), int64(off), vfs.WriteOptions{}); werr != nil {
				return werr
			}
			off += uint64(n)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return nil
}

func byteSeq(b []byte) usermem.IOSequence {
	s, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	return s
}

// parseOrigin reads the origin inode number a copied-up upper file keeps.
func parseOrigin(ctx context.Context, ino vfs.Inode) (uint64, bool) {
	v, err := ino.GetXattr(ctx, xattrOrigin)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// isOpaque reports whether an upper directory hides the lower's entries.
func isOpaque(ctx context.Context, ino vfs.Inode) bool {
	v, err := ino.GetXattr(ctx, xattrOpaque)
	return err == nil && v == "y"
}

func isPrivateXattr(name string) bool { return strings.HasPrefix(name, xattrPrefix) }
