package vfs

import (
	"context"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// BoundEndpoint is what bind(2) of an AF_UNIX socket leaves in the
// filesystem. It is opaque to the VFS: pkg/sentry/socket/unix defines what
// it is, stores it with MknodAt (MknodOptions.Endpoint) and gets it back
// with BoundEndpointAt.
type BoundEndpoint interface{}

// BoundEndpointInode is implemented by socket inodes that can hold the
// endpoint of the socket bound to their name. Filesystems whose socket
// files are not created by this VFS (a host directory served by the
// Gofer) return nil.
type BoundEndpointInode interface {
	BoundEndpoint() BoundEndpoint
}

// BoundEndpointAt is the path lookup of connect(2) and sendto(2) on an
// AF_UNIX socket (unix(7)): it resolves pop, following a final symlink,
// requires write permission on the socket file (EACCES otherwise) and
// returns the endpoint stored there. ECONNREFUSED means the file is not a
// socket or holds no endpoint; whether a stored endpoint still listens is
// the socket's business.
func (vfs *VirtualFilesystem) BoundEndpointAt(ctx context.Context, creds *auth.Credentials, pop *PathOperation) (BoundEndpoint, error) {
	p := *pop
	p.FollowFinalSymlink = true
	vd, err := vfs.GetDentryAt(ctx, creds, &p, nil)
	if err != nil {
		return nil, err
	}
	defer vd.DecRef(ctx)
	ino := vd.dentry.inode
	// Linux checks write permission before the file type (unix_find_bsd).
	if err := checkInodePermissions(creds, ino, MayWrite); err != nil {
		return nil, err
	}
	if ino.Mode()&unix.S_IFMT != unix.S_IFSOCK {
		return nil, unix.ECONNREFUSED
	}
	bi, ok := ino.(BoundEndpointInode)
	if !ok {
		return nil, unix.ECONNREFUSED
	}
	ep := bi.BoundEndpoint()
	if ep == nil {
		return nil, unix.ECONNREFUSED
	}
	return ep, nil
}
