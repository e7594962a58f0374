package overlay_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

type fakeEndpoint struct{ id int }

func TestBoundEndpointInOverlay(t *testing.T) {
	e := newEnv(t)
	// A socket file of the lower layer (as on a host tree) holds nothing.
	e.must(e.v.MknodAt(e.ctx, e.creds, vfstest.Pop(e.lower, "/dir/hostsock"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o777}))
	e.lowerBefore = e.snapshot(e.lower)

	ep := &fakeEndpoint{1}
	// Binding inside a merged lower directory copies the directory up and
	// puts the socket in the upper layer.
	e.must(e.v.MknodAt(e.ctx, e.creds, e.pop("/dir/s"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o755, Endpoint: ep}))
	if got, err := e.v.BoundEndpointAt(e.ctx, e.creds, e.pop("/dir/s")); err != nil || got != vfs.BoundEndpoint(ep) {
		t.Fatalf("BoundEndpointAt = %v, %v", got, err)
	}
	if got, err := e.v.BoundEndpointAt(e.ctx, e.creds, vfstest.Pop(e.upper, "/dir/s")); err != nil || got != vfs.BoundEndpoint(ep) {
		t.Errorf("upper layer's inode does not hold the endpoint: %v, %v", got, err)
	}
	e.must(e.v.RenameAt(e.ctx, e.creds, e.pop("/dir/s"), e.pop("/empty/s2"), &vfs.RenameOptions{}))
	if got, err := e.v.BoundEndpointAt(e.ctx, e.creds, e.pop("/empty/s2")); err != nil || got != vfs.BoundEndpoint(ep) {
		t.Errorf("after rename: %v, %v", got, err)
	}

	_, err := e.v.BoundEndpointAt(e.ctx, e.creds, e.pop("/dir/hostsock"))
	if err != unix.ECONNREFUSED {
		t.Errorf("lower socket: %v, want ECONNREFUSED", err)
	}
	// Copy-up (chmod) of a lower socket does not invent an endpoint.
	e.must(e.v.SetStatAt(e.ctx, e.creds, e.pop("/dir/hostsock"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o700}))
	_, err = e.v.BoundEndpointAt(e.ctx, e.creds, e.pop("/dir/hostsock"))
	if err != unix.ECONNREFUSED {
		t.Errorf("copied-up socket: %v, want ECONNREFUSED", err)
	}
	_, err = e.v.BoundEndpointAt(e.ctx, e.creds, e.pop("/file"))
	if err != unix.ECONNREFUSED {
		t.Errorf("regular file: %v, want ECONNREFUSED", err)
	}
}
