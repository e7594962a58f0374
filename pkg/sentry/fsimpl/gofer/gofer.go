// Package gofer owns the Sentry's 9P2000.L client filesystem ("9p"): the
// lower layer of the container root and of bind mounts, served by the Gofer
// (runsc/fsgofer) over a p9.Client. It maps vfs lookups, attributes,
// directory listings, creation, rename, removal, xattrs and file I/O onto 9P
// requests, uses the host descriptors the Gofer donates for regular-file I/O,
// and keeps a page cache in the memory file (pgalloc) so that gofer files can
// be mmapped (memmap.Mappable).
//
// Caching. Dentries are cached by the vfs. In "exclusive" mode (the
// default: the sandbox owns the tree) attributes are trusted until this
// filesystem changes the file itself, and failed lookups are remembered
// (negative entries). In "shared" mode every stat refetches attributes,
// nothing negative is remembered, and every cached name a path walk uses
// is revalidated with one Twalk (vfs.Revalidator), so host-side changes,
// including files replaced or removed by name, are seen. Either way the
// vfs keeps at most InternalData.DentryCacheLimit unused names cached
// (vfs.DentryCacheLimiter): forgotten names cost a walk again, and their
// fids are clunked, so a long walk of the tree holds a bounded number of
// the Gofer's host descriptors.
//
// Renames are one Trenameat (vfs.Renamer): the Gofer's renameat(2)
// replaces a target atomically. removexattr(2) uses the XattrRemove
// extension of Txattrcreate (see pkg/p9).
//
// Coherence of read/write and mmap: the page cache holds only pages that a
// mapping has touched. Clean cached pages equal the host file (write(2)
// writes the host file and updates any cached page it covers); pages
// written through a shared mapping are dirty, newer than the host, and
// written back on msync (Sync), munmap of a writable mapping, the last
// close and release. read(2) reads cached pages from the cache and the rest
// from the host, so both paths always see the same bytes.
package gofer

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name.
const Name = "9p"

// CachePolicy says how far the filesystem trusts what it has cached.
type CachePolicy int

const (
	// CacheExclusive trusts cached attributes and negative lookups: only
	// the sandbox changes the tree.
	CacheExclusive CachePolicy = iota
	// CacheShared revalidates attributes on each stat and caches no
	// negative lookups: the host may change the tree.
	CacheShared
)

// InternalData is passed as vfs.GetFilesystemOptions.InternalData.
type InternalData struct {
	// Client is a connected 9P client; the filesystem does not close it.
	Client *p9.Client
	// Socket, used when Client is nil, is a connection to a Gofer; the
	// filesystem makes a client of it and closes it on release.
	Socket *unet.Socket
	// MSize is the message size asked for with Socket (0: the default).
	MSize uint32
	// AttachName is the tree to attach ("" or "/").
	AttachName string
	// MemoryFile holds the page cache; nil means one shared by every such
	// filesystem of the process.
	MemoryFile *pgalloc.MemoryFile
	// Cache is the revalidation policy; mount data "cache=shared" or
	// "cache=exclusive" overrides it.
	Cache CachePolicy
	// DentryCacheLimit bounds the unused names kept cached: 0 means
	// vfs.DefaultDentryCacheLimit, a negative value no bound.
	DentryCacheLimit int
}

// FilesystemType implements vfs.FilesystemType.
type FilesystemType struct{}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

// maxNegative bounds the negative entries one directory remembers.
const maxNegative = 1024

// filesystem is one mounted 9P tree.
type filesystem struct {
	vfsfs      *vfs.Filesystem
	client     *p9.Client
	ownsClient bool
	mf         *pgalloc.MemoryFile
	shared     bool
	// dcacheLimit is the vfs.DentryCacheLimiter answer.
	dcacheLimit int

	// liveMu guards live, every inode not yet released, so that Release
	// can close their fids and handles: the vfs never drops the cached
	// dentries of a live tree.
	liveMu sync.Mutex
	live   map[*inode]struct{}
	// byIno finds the inode of a multiply linked regular file by host
	// inode number (see inodeFor).
	byIno map[uint64]*inode
}

var (
	sharedMFOnce sync.Once
	sharedMF     *pgalloc.MemoryFile
	sharedMFErr  error
)

func sharedMemoryFile() (*pgalloc.MemoryFile, error) {
	sharedMFOnce.Do(func() {
		sharedMF, sharedMFErr = pgalloc.New("gofer-cache")
		if sharedMFErr != nil {
			sharedMFErr = fmt.Errorf("gofer: creating memory file: %w", sharedMFErr)
		}
	})
	return sharedMF, sharedMFErr
}

// GetFilesystem implements vfs.FilesystemType: it attaches to the Gofer
// and returns the root. Data understands cache=exclusive|shared.
func (FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	id, ok := opts.InternalData.(*InternalData)
	if !ok || id == nil {
		return nil, nil, fmt.Errorf("gofer: mount needs *gofer.InternalData: %w", unix.EINVAL)
	}
	policy := id.Cache
	for _, o := range strings.Split(opts.Data, ",") {
		switch o {
		case "":
		case "cache=shared":
			policy = CacheShared
		case "cache=exclusive":
			policy = CacheExclusive
		default:
			return nil, nil, fmt.Errorf("gofer: unknown mount option %q: %w", o, unix.EINVAL)
		}
	}
	fs := &filesystem{client: id.Client, mf: id.MemoryFile, shared: policy == CacheShared, live: make(map[*inode]struct{}), byIno: make(map[uint64]*inode)}
	switch {
	case id.DentryCacheLimit == 0:
		fs.dcacheLimit = vfs.DefaultDentryCacheLimit
	case id.DentryCacheLimit > 0:
		fs.dcacheLimit = id.DentryCacheLimit
	}
	if fs.client == nil {
		if id.Socket == nil {
			return nil, nil, fmt.Errorf("gofer: neither client nor socket given: %w", unix.EINVAL)
		}
		c, err := p9.NewClient(id.Socket, id.MSize)
		if err != nil {
			return nil, nil, fmt.Errorf("gofer: connecting: %w", err)
		}
		fs.client, fs.ownsClient = c, true
	}
	fail := func(err error) (*vfs.Filesystem, *vfs.Dentry, error) {
		if fs.ownsClient {
			fs.client.Close()
		}
		return nil, nil, err
	}
	if fs.mf == nil {
		fs.mf = v.MemoryFile()
	}
	if fs.mf == nil {
		mf, err := sharedMemoryFile()
		if err != nil {
			return fail(err)
		}
		fs.mf = mf
	}
	root, qid, err := fs.client.Attach(ctx, id.AttachName, p9.UID(creds.FilesystemUID))
	if err != nil {
		return fail(fmt.Errorf("gofer: %w", err))
	}
	_, valid, attr, err := root.GetAttr(ctx, p9.AttrBasic)
	if err != nil {
		root.Close(context.Background())
		return fail(fmt.Errorf("gofer: getattr of the root: %w", err))
	}
	fs.vfsfs = v.NewFilesystem(fs)
	ino := fs.newInode(root, qid, valid, &attr)
	d := fs.vfsfs.NewDentry(ino)
	d.IncRef()
	return fs.vfsfs, d, nil
}

// Release implements vfs.FilesystemImpl: it writes back and frees every
// inode's cache, clunks every fid and closes an owned client.
func (fs *filesystem) Release(ctx context.Context) {
	fs.liveMu.Lock()
	inodes := make([]*inode, 0, len(fs.live))
	for i := range fs.live {
		inodes = append(inodes, i)
	}
	fs.live, fs.byIno = nil, nil
	fs.liveMu.Unlock()
	for _, i := range inodes {
		i.destroy(ctx)
	}
	if fs.ownsClient {
		if err := fs.client.Close(); err != nil {
			log.Warningf("gofer: closing client: %v", err)
		}
	}
}

func (fs *filesystem) register(i *inode) {
	fs.liveMu.Lock()
	if fs.live != nil {
		fs.live[i] = struct{}{}
	}
	fs.liveMu.Unlock()
}

// unregister reports whether i was still registered (so the caller, not
// Release, destroys it).
func (fs *filesystem) unregister(i *inode) bool {
	fs.liveMu.Lock()
	defer fs.liveMu.Unlock()
	if _, ok := fs.live[i]; !ok {
		return false
	}
	delete(fs.live, i)
	if fs.byIno[i.ino] == i {
		delete(fs.byIno, i.ino)
	}
	return true
}
