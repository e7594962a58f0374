package gofer

import "carapace.dev/carapace/pkg/sentry/vfs"

// LiveInodes is the number of inodes fs holds (each with a fid on the
// Gofer).
func LiveInodes(fs *vfs.Filesystem) int {
	g := fs.Impl().(*filesystem)
	g.liveMu.Lock()
	defer g.liveMu.Unlock()
	return len(g.live)
}
