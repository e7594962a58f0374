package vfs

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// DirentIterator lists a directory from an entry offset: the IterDirents
// of an Inode.
type DirentIterator interface {
	IterDirents(ctx context.Context, offset int64, parentIno uint64, cb func(Dirent) bool) (int64, error)
}

// DirectoryFile is an open directory of an in-memory file system (tmpfs,
// proc, sys): its offset counts the entries listed so far, and listing
// resumes from it.
type DirectoryFile struct {
	FileDescriptionDefaults
	dir     DirentIterator
	seekEnd bool
	mu      sync.Mutex
	off     int64
}

// NewDirectoryFile returns an open directory listing dir from offset 0;
// SEEK_END is EINVAL, as in Linux's dcache_dir_lseek (tmpfs).
func NewDirectoryFile(dir DirentIterator) *DirectoryFile {
	return &DirectoryFile{dir: dir}
}

// NewSizelessDirectoryFile is NewDirectoryFile for a directory whose
// size is 0, from which SEEK_END seeks, as generic_file_llseek does on
// sysfs (kernfs) directories.
func NewSizelessDirectoryFile(dir DirentIterator) *DirectoryFile {
	return &DirectoryFile{dir: dir, seekEnd: true}
}

// IterDirents implements FileDescriptionImpl.
func (f *DirectoryFile) IterDirents(ctx context.Context, fd *FileDescription, cb func(Dirent) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	off, err := f.dir.IterDirents(ctx, f.off, ParentIno(ctx, fd.VirtualDentry()), cb)
	f.off = off
	return err
}

// Seek implements FileDescriptionImpl.
func (f *DirectoryFile) Seek(_ context.Context, _ *FileDescription, offset int64, whence int32) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seekEnd {
		return MoveOffset(&f.off, 0, offset, whence)
	}
	return MoveDirOffset(&f.off, offset, whence)
}

// Read implements FileDescriptionImpl.
func (*DirectoryFile) Read(context.Context, *FileDescription, usermem.IOSequence, ReadOptions) (int64, error) {
	return 0, unix.EISDIR
}

// IterDots lists the "." (ino) and ".." (parentIno) entries that open
// every directory listing at offsets 0 and 1, from *offset on, and moves
// *offset past them to first, where the directory's own entries start.
// It returns false, leaving *offset at the entry not taken, when cb stops.
func IterDots(offset *int64, ino, parentIno uint64, first int64, cb func(Dirent) bool) bool {
	if *offset == 0 {
		if !cb(Dirent{Name: ".", Ino: ino, Type: unix.DT_DIR, NextOff: 1}) {
			return false
		}
		*offset = 1
	}
	if *offset == 1 {
		if !cb(Dirent{Name: "..", Ino: parentIno, Type: unix.DT_DIR, NextOff: first}) {
			return false
		}
		*offset = first
	}
	return true
}
