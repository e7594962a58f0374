package gofer_test

import (
	"testing"

	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// A socket bound in a Gofer-served tree leaves a socket file on the host,
// but 9P carries no endpoints: connecting by that path is refused.
func TestBoundEndpointOverGofer(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.must(e.v.MknodAt(e.ctx, e.creds, e.pop("/s"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o755, Endpoint: struct{}{}}))
	var hs unix.Stat_t
	e.must(unix.Lstat(e.hostPath("s"), &hs))
	if hs.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatalf("host file mode %o, want a socket", hs.Mode)
	}
	if _, err := e.v.BoundEndpointAt(e.ctx, e.creds, e.pop("/s")); err != unix.ECONNREFUSED {
		t.Errorf("BoundEndpointAt = %v, want ECONNREFUSED", err)
	}
}
