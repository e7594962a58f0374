package tmpfs

import (
	"context"
	"fmt"
	"sync"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"golang.org/x/sys/unix"
)

// memfd_create(2) files are unlinked tmpfs files named "memfd:NAME" on a
// tmpfs instance mounted nowhere, with file seals (F_ADD_SEALS/F_GET_SEALS)
// that the regular file paths enforce.

// memfdNameMax is the longest name memfd_create accepts (249 bytes: 255
// less the "memfd:" prefix).
const memfdNameMax = 249

// allSeals are the seals F_ADD_SEALS knows.
const allSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE

// MemfdFS makes memfds for one VirtualFilesystem.
type MemfdFS struct {
	v    *vfs.VirtualFilesystem
	root vfs.VirtualDentry
	// mu makes create-then-unlink of a name atomic with respect to other
	// memfds of the same name.
	mu sync.Mutex
}

// NewMemfdFS returns a memfd maker whose files live in mf (nil: the
// process-wide memory file).
func NewMemfdFS(ctx context.Context, v *vfs.VirtualFilesystem, mf *pgalloc.MemoryFile) (*MemfdFS, error) {
	mode := uint32(0o777)
	vfsfs, root, err := FilesystemType{}.GetFilesystem(ctx, v, auth.NewRoot(), "memfd", vfs.GetFilesystemOptions{
		InternalData: &InternalData{MemoryFile: mf, RootMode: &mode}})
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	m := v.NewDisconnectedMount(vfsfs, root)
	return &MemfdFS{v: v, root: vfs.MakeVirtualDentry(m, root)}, nil
}

// Release drops the maker; memfds still open keep their filesystem.
func (m *MemfdFS) Release(ctx context.Context) { m.root.Mount().DecRef(ctx) }

// Create is memfd_create(2): flags may hold MFD_CLOEXEC (applied by the
// caller to the descriptor) and MFD_ALLOW_SEALING; without it the file
// carries F_SEAL_SEAL. The file is owned by creds' filesystem IDs.
func (m *MemfdFS) Create(ctx context.Context, creds *auth.Credentials, name string, flags uint32) (*vfs.FileDescription, error) {
	if flags&^uint32(unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING) != 0 {
		return nil, unix.EINVAL
	}
	if len(name) > memfdNameMax {
		return nil, unix.EINVAL
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			// A name is only a label, but it becomes a path component.
			return nil, unix.EINVAL
		}
	}
	// Create as root, then give the file to the caller: the memfd
	// directory is not the caller's to be checked against.
	root := auth.NewRoot()
	pop := &vfs.PathOperation{Root: m.root, Start: m.root, Path: "memfd:" + name}
	m.mu.Lock()
	fd, err := m.v.OpenAt(ctx, root, pop, &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o777})
	if err == nil {
		err = m.v.UnlinkAt(ctx, root, pop)
		if err != nil {
			fd.DecRef(ctx)
		}
	}
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	i := fd.Inode().(*inode)
	i.uid.Store(uint32(creds.FilesystemUID))
	i.gid.Store(uint32(creds.FilesystemGID))
	if flags&unix.MFD_ALLOW_SEALING != 0 {
		i.data.mu.Lock()
		i.data.seals = 0
		i.data.mu.Unlock()
	}
	return fd, nil
}

// sealsAllowSizeLocked refuses a size change the seals forbid. d.mu held.
func (d *regularData) sealsAllowSizeLocked(size int64) error {
	if size < d.size && d.seals&unix.F_SEAL_SHRINK != 0 {
		return unix.EPERM
	}
	if size > d.size && d.seals&unix.F_SEAL_GROW != 0 {
		return unix.EPERM
	}
	return nil
}

// regularDataOf returns the data of fd's file if it is a tmpfs regular
// file (sealing applies to those only).
func regularDataOf(fd *vfs.FileDescription) (*regularData, bool) {
	f, ok := fd.Impl().(*regularFile)
	if !ok {
		return nil, false
	}
	return f.inode.data, true
}

// AddSeals is fcntl(F_ADD_SEALS): EINVAL for files that cannot be sealed
// or unknown seals, EPERM when the file is sealed against sealing or not
// open for writing, EBUSY for F_SEAL_WRITE while shared writable mappings
// exist.
func AddSeals(fd *vfs.FileDescription, seals uint32) error {
	d, ok := regularDataOf(fd)
	if !ok || seals&^allSeals != 0 {
		return unix.EINVAL
	}
	if !fd.IsWritable() {
		return unix.EPERM
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seals&unix.F_SEAL_SEAL != 0 {
		return unix.EPERM
	}
	if seals&unix.F_SEAL_WRITE != 0 && d.seals&unix.F_SEAL_WRITE == 0 {
		for _, mp := range d.mappings {
			if mp.writable {
				return unix.EBUSY
			}
		}
	}
	d.seals |= seals
	return nil
}

// GetSeals is fcntl(F_GET_SEALS); EINVAL for files that cannot be sealed.
func GetSeals(fd *vfs.FileDescription) (uint32, error) {
	d, ok := regularDataOf(fd)
	if !ok {
		return 0, unix.EINVAL
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.seals, nil
}
