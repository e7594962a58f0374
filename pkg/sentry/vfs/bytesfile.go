package vfs

import (
	"context"
	"sync"

	"carapace.dev/carapace/pkg/usermem"
)

// BytesFile is an open file whose whole content is a byte slice fixed at
// open (a sysfs attribute, a snapshot of a generated proc file): reads
// and seeks over it, as a regular file of that size.
type BytesFile struct {
	FileDescriptionDefaults
	data []byte
	mu   sync.Mutex
	off  int64
}

// NewBytesFile returns an open file reading data, which must not change.
func NewBytesFile(data []byte) *BytesFile {
	return &BytesFile{data: data}
}

// Read implements FileDescriptionImpl.
func (f *BytesFile) Read(ctx context.Context, _ *FileDescription, dst usermem.IOSequence, _ ReadOptions) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := ReadBytesAt(ctx, dst, f.data, f.off)
	f.off += n
	return n, err
}

// PRead implements FileDescriptionImpl.
func (f *BytesFile) PRead(ctx context.Context, _ *FileDescription, dst usermem.IOSequence, off int64, _ ReadOptions) (int64, error) {
	return ReadBytesAt(ctx, dst, f.data, off)
}

// Seek implements FileDescriptionImpl.
func (f *BytesFile) Seek(_ context.Context, _ *FileDescription, offset int64, whence int32) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return MoveOffset(&f.off, int64(len(f.data)), offset, whence)
}
