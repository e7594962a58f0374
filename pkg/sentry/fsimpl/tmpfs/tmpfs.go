// Package tmpfs owns the in-memory filesystem (tmpfs(5)): its directory
// tree, regular file data kept in pages of the sandbox memory file
// (pgalloc), symlinks, device nodes, FIFOs (served by package pipe),
// socket inodes, hard links, timestamps, extended attributes, and the size
// limit (ENOSPC) it enforces.
package tmpfs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name.
const Name = "tmpfs"

// tmpfsMagic is TMPFS_MAGIC.
const tmpfsMagic = 0x01021994

// defaultMaxSize bounds a tmpfs without size= (Linux defaults to half of
// RAM; the sandbox has no such notion, so pick a fixed generous bound).
const defaultMaxSize = 1 << 34

// FilesystemType implements vfs.FilesystemType.
type FilesystemType struct{}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

// InternalData is passed as GetFilesystemOptions.InternalData.
type InternalData struct {
	// MemoryFile holds file data; nil means the VFS's (SetMemoryFile),
	// else a memory file shared by all such tmpfs instances of the
	// process (tests, tools).
	MemoryFile *pgalloc.MemoryFile
	// Root, if set, is the mode of the root directory's owner/perm
	// (defaults: 01777, owner of the creds).
	RootMode *uint32
}

// filesystem is one tmpfs instance.
type filesystem struct {
	vfsfs   *vfs.Filesystem
	mf      *pgalloc.MemoryFile
	maxSize uint64
	used    atomic.Uint64 // bytes of pages allocated to files
	inodes  atomic.Int64
	lastIno atomic.Uint64
}

// Release implements vfs.FilesystemImpl. Pages are freed with their
// inodes; the memory file belongs to whoever passed it in.
func (fs *filesystem) Release(context.Context) {}

var (
	sharedMFOnce sync.Once
	sharedMF     *pgalloc.MemoryFile
	sharedMFErr  error
)

// sharedMemoryFile returns the process-wide memory file used when the
// mounter supplies none, so that many short-lived instances do not each
// reserve address space for their own.
func sharedMemoryFile() (*pgalloc.MemoryFile, error) {
	sharedMFOnce.Do(func() {
		sharedMF, sharedMFErr = pgalloc.New("tmpfs")
		if sharedMFErr != nil {
			sharedMFErr = fmt.Errorf("tmpfs: creating memory file: %w", sharedMFErr)
		}
	})
	return sharedMF, sharedMFErr
}

// GetFilesystem implements vfs.FilesystemType. Data understands the
// tmpfs(5) options mode=, uid=, gid= and size= (with k/m/g suffixes).
func (FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	mode := uint32(0o1777)
	uid, gid := creds.FilesystemUID, creds.FilesystemGID
	maxSize := uint64(defaultMaxSize)
	for _, o := range strings.Split(opts.Data, ",") {
		if o == "" {
			continue
		}
		k, val, _ := strings.Cut(o, "=")
		switch k {
		case "mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, nil, fmt.Errorf("tmpfs: bad mode %q: %w", val, unix.EINVAL)
			}
			mode = uint32(m)
		case "uid", "gid":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, nil, fmt.Errorf("tmpfs: bad %s %q: %w", k, val, unix.EINVAL)
			}
			if k == "uid" {
				uid = auth.UID(n)
			} else {
				gid = auth.GID(n)
			}
		case "size":
			n, err := parseSize(val)
			if err != nil {
				return nil, nil, err
			}
			maxSize = n
		default:
			return nil, nil, fmt.Errorf("tmpfs: unknown option %q: %w", k, unix.EINVAL)
		}
	}
	fs := &filesystem{maxSize: maxSize}
	if id, ok := opts.InternalData.(*InternalData); ok && id != nil {
		fs.mf = id.MemoryFile
		if id.RootMode != nil {
			mode = *id.RootMode
		}
	}
	if fs.mf == nil {
		fs.mf = v.MemoryFile()
	}
	if fs.mf == nil {
		mf, err := sharedMemoryFile()
		if err != nil {
			return nil, nil, err
		}
		fs.mf = mf
	}
	fs.vfsfs = v.NewFilesystem(fs)
	root := fs.newInode(&vfs.MknodOptions{Mode: unix.S_IFDIR | mode&0o7777, UID: uid, GID: gid})
	root.nlink = 2
	d := fs.vfsfs.NewDentry(root)
	d.IncRef()
	return fs.vfsfs, d, nil
}

// parseSize parses size= with an optional k, m or g suffix; a trailing %
// (percent of RAM) is not supported.
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<63)/mult {
		return 0, fmt.Errorf("tmpfs: bad size %q: %w", s, unix.EINVAL)
	}
	r, ok := hostarch.PageRoundUp(n * mult)
	if !ok {
		return 0, fmt.Errorf("tmpfs: bad size %q: %w", s, unix.EINVAL)
	}
	return r, nil
}

// reserve accounts for n bytes of new pages, or fails with ENOSPC.
func (fs *filesystem) reserve(n uint64) error {
	for {
		u := fs.used.Load()
		if u+n > fs.maxSize {
			return unix.ENOSPC
		}
		if fs.used.CompareAndSwap(u, u+n) {
			return nil
		}
	}
}

func (fs *filesystem) unreserve(n uint64) { fs.used.Add(^(n - 1)) }

// statFS implements statfs for every inode of fs.
func (fs *filesystem) statFS() vfs.Statfs {
	blocks := fs.maxSize / hostarch.PageSize
	used := fs.used.Load() / hostarch.PageSize
	files := uint64(1 << 20)
	return vfs.Statfs{
		Type:    tmpfsMagic,
		Bsize:   hostarch.PageSize,
		Frsize:  hostarch.PageSize,
		Blocks:  blocks,
		Bfree:   blocks - used,
		Bavail:  blocks - used,
		Files:   files,
		Ffree:   files - uint64(fs.inodes.Load()),
		Namelen: 255,
	}
}
