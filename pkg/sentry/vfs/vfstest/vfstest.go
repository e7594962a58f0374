// Package vfstest holds helpers for tests of the vfs and its filesystems:
// building path operations and doing I/O on file descriptions through
// plain byte slices.
package vfstest

import (
	"context"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
)

// Pop returns a PathOperation for path relative to root (also the start),
// following a final symlink.
func Pop(root vfs.VirtualDentry, path string) *vfs.PathOperation {
	return &vfs.PathOperation{Root: root, Start: root, Path: path, FollowFinalSymlink: true}
}

// PopAt is Pop with a separate start directory.
func PopAt(root, start vfs.VirtualDentry, path string) *vfs.PathOperation {
	return &vfs.PathOperation{Root: root, Start: start, Path: path, FollowFinalSymlink: true}
}

// NoFollow returns pop without final symlink following.
func NoFollow(pop *vfs.PathOperation) *vfs.PathOperation {
	p := *pop
	p.FollowFinalSymlink = false
	return &p
}

// Seq returns an IOSequence over b.
func Seq(b []byte) usermem.IOSequence {
	s, err := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	if err != nil {
		panic(err)
	}
	return s
}

// Write writes b at the file offset.
func Write(ctx context.Context, fd *vfs.FileDescription, b []byte) (int64, error) {
	return fd.Write(ctx, Seq(b), vfs.WriteOptions{})
}

// Read reads up to n bytes at the file offset.
func Read(ctx context.Context, fd *vfs.FileDescription, n int) ([]byte, error) {
	b := make([]byte, n)
	c, err := fd.Read(ctx, Seq(b), vfs.ReadOptions{})
	return b[:c], err
}

// ReadDir returns the names of a directory's entries, "." and ".."
// included, in readdir order.
func ReadDir(ctx context.Context, fd *vfs.FileDescription) ([]string, error) {
	var names []string
	err := fd.IterDirents(ctx, func(d vfs.Dirent) bool {
		names = append(names, d.Name)
		return true
	})
	return names, err
}
