// Package kerneltest builds what kernel and syscall tests need from the
// VFS without a Gofer: a tmpfs root holding copies of host files, and
// files that write to a Go io.Writer (a test's captured stdout).
package kerneltest

import (
	"context"
	"io"

	"carapace.dev/carapace/pkg/sentry/kernel/testroot"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// NewRoot mounts a tmpfs as a new mount namespace of v and copies each
// host file of hostFiles (and the ELF interpreter of those that name one)
// to the same path in it; see testroot.NewRoot.
func NewRoot(ctx context.Context, v *vfs.VirtualFilesystem, mf *pgalloc.MemoryFile, hostFiles ...string) (vfs.VirtualDentry, error) {
	return testroot.NewRoot(ctx, v, mf, hostFiles...)
}

// CopyIn copies the host file hostPath to path p under root, creating
// missing parent directories.
func CopyIn(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, hostPath, p string) error {
	return testroot.CopyIn(ctx, v, root, hostPath, p)
}

// writerFile is a write-only file whose data goes to w.
type writerFile struct {
	vfs.FileDescriptionDefaults
	w io.Writer
}

// Write implements vfs.FileDescriptionImpl.
func (f *writerFile) Write(ctx context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	buf := make([]byte, src.NumBytes())
	n, err := src.CopyIn(ctx, buf)
	if n > 0 {
		if _, werr := f.w.Write(buf[:n]); werr != nil {
			return 0, unix.EIO
		}
	}
	if n == 0 && err != nil {
		return 0, err
	}
	return int64(n), nil
}

// Readiness implements waiter.Waitable: always writable.
func (f *writerFile) Readiness(mask waiter.EventMask) waiter.EventMask {
	return mask & waiter.EventOut
}

// NewWriterFile returns a write-only file description (one reference)
// whose writes go to w.
func NewWriterFile(v *vfs.VirtualFilesystem, w io.Writer) *vfs.FileDescription {
	vd := v.NewAnonVirtualDentry("[test-writer]")
	defer vd.DecRef(context.Background())
	return vfs.NewFileDescription(&writerFile{w: w}, unix.O_WRONLY, vd)
}
