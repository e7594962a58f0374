package vfs_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// fakeEndpoint stands in for a unix socket's bound endpoint.
type fakeEndpoint struct{ name string }

func TestBoundEndpointAt(t *testing.T) {
	e := newEnv(t)
	ep := &fakeEndpoint{"server"}
	e.must(e.mkdir("/d", 0o777))
	e.must(e.vfs.MknodAt(e.ctx, e.creds, e.pop("/d/sock"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o755, Endpoint: ep}))
	e.must(e.symlink("d/sock", "/link"))

	for _, p := range []string{"/d/sock", "/link", "/d/../d/sock"} {
		got, err := e.vfs.BoundEndpointAt(e.ctx, e.creds, vfstest.NoFollow(e.pop(p)))
		if err != nil || got != vfs.BoundEndpoint(ep) {
			t.Errorf("BoundEndpointAt(%q) = %v, %v; want the stored endpoint", p, got, err)
		}
	}

	// Write permission on the socket file is what connect(2) needs.
	_, err := e.vfs.BoundEndpointAt(e.ctx, user(1000, 1000), e.pop("/d/sock"))
	wantErr(t, "connect without write permission", err, unix.EACCES)
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/d/sock"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o777}))
	if got, err := e.vfs.BoundEndpointAt(e.ctx, user(1000, 1000), e.pop("/d/sock")); err != nil || got != vfs.BoundEndpoint(ep) {
		t.Errorf("after chmod 777: %v, %v", got, err)
	}

	// Not a socket, a socket without an endpoint, nothing at all.
	e.writeFile("/file", "")
	_, err = e.vfs.BoundEndpointAt(e.ctx, e.creds, e.pop("/file"))
	wantErr(t, "regular file", err, unix.ECONNREFUSED)
	e.must(e.vfs.MknodAt(e.ctx, e.creds, e.pop("/plain"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o755}))
	_, err = e.vfs.BoundEndpointAt(e.ctx, e.creds, e.pop("/plain"))
	wantErr(t, "socket file without endpoint", err, unix.ECONNREFUSED)
	_, err = e.vfs.BoundEndpointAt(e.ctx, e.creds, e.pop("/missing"))
	wantErr(t, "missing", err, unix.ENOENT)
	_, err = e.vfs.BoundEndpointAt(e.ctx, e.creds, e.pop("/d"))
	wantErr(t, "directory", err, unix.ECONNREFUSED)

	// A second bind to the name fails; the socket layer maps EEXIST to
	// EADDRINUSE.
	wantErr(t, "bind twice", e.vfs.MknodAt(e.ctx, e.creds, e.pop("/d/sock"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o755, Endpoint: ep}), unix.EEXIST)
	wantErr(t, "endpoint on a non-socket", e.vfs.MknodAt(e.ctx, e.creds, e.pop("/x"), &vfs.MknodOptions{Mode: unix.S_IFIFO | 0o755, Endpoint: ep}), unix.EINVAL)

	// The endpoint follows the inode through rename and goes with unlink.
	e.must(e.vfs.RenameAt(e.ctx, e.creds, e.pop("/d/sock"), e.pop("/moved"), &vfs.RenameOptions{}))
	if got, err := e.vfs.BoundEndpointAt(e.ctx, e.creds, e.pop("/moved")); err != nil || got != vfs.BoundEndpoint(ep) {
		t.Errorf("after rename: %v, %v", got, err)
	}
	e.must(e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/moved")))
	_, err = e.vfs.BoundEndpointAt(e.ctx, e.creds, e.pop("/moved"))
	wantErr(t, "after unlink", err, unix.ENOENT)
}
