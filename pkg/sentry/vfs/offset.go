package vfs

import (
	"context"

	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// The helpers below are the file-offset arithmetic that every synthetic
// file system (proc, sys, tmpfs, overlay, gofer) needs in the same form;
// callers hold whatever lock guards *off.

// MoveOffset applies lseek(2)'s SEEK_SET, SEEK_CUR or SEEK_END to *off
// for a file of the given size and returns the new offset. Any other
// whence, or a result below zero, is EINVAL and leaves *off as it was.
func MoveOffset(off *int64, size, offset int64, whence int32) (int64, error) {
	switch whence {
	case unix.SEEK_SET:
	case unix.SEEK_CUR:
		offset += *off
	case unix.SEEK_END:
		offset += size
	default:
		return 0, unix.EINVAL
	}
	if offset < 0 {
		return 0, unix.EINVAL
	}
	*off = offset
	return offset, nil
}

// MoveDirOffset is MoveOffset for a directory whose offset counts
// entries rather than bytes: there is no end to seek from, so SEEK_END
// is EINVAL, as in Linux's in-memory directories (dcache_dir_lseek).
func MoveDirOffset(off *int64, offset int64, whence int32) (int64, error) {
	if whence == unix.SEEK_END {
		return 0, unix.EINVAL
	}
	return MoveOffset(off, 0, offset, whence)
}

// ReadBytesAt copies data from off on into dst, for files whose whole
// content is a byte slice: 0 at or past the end, EINVAL for off < 0. A
// partial copy reports what it copied and no error, as read(2) does.
func ReadBytesAt(ctx context.Context, dst usermem.IOSequence, data []byte, off int64) (int64, error) {
	if off < 0 {
		return 0, unix.EINVAL
	}
	if off >= int64(len(data)) {
		return 0, nil
	}
	n, err := dst.CopyOut(ctx, data[off:])
	if n > 0 {
		return int64(n), nil
	}
	return 0, err
}
