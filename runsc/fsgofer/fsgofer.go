// Package fsgofer is the Gofer's 9P2000.L server: it serves the container
// root and each bind mount of the OCI spec to the Sentry over pkg/p9.
//
// Confinement does not depend on the caller's namespaces: every file is held
// as an O_PATH|O_NOFOLLOW descriptor, and every name is resolved from its
// parent directory's descriptor one component at a time with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) (falling
// back to openat(O_NOFOLLOW) on kernels without openat2). Names containing
// '/', "." and ".." are refused, so ".." is never walked here (the Sentry
// resolves it) and a symlink is only ever read, never followed. Operations
// that need a real open descriptor re-open the entry by (parent fd, name)
// with O_NOFOLLOW and check that the inode is the one the fid names.
//
// Read-only mounts are enforced here (EROFS). For regular files Open donates
// a host descriptor to the Sentry (SCM_RIGHTS on Rlopen/Rlcreate) so that
// reads and writes skip 9P.
//
// Host syscalls used (for the Gofer's seccomp allowlist, beyond the Go
// runtime's own): openat, openat2, close, fcntl (F_DUPFD_CLOEXEC, F_OFD_SETLK,
// F_OFD_GETLK), newfstatat, fstat, fstatfs, fchmodat2, fchmod, fchownat,
// fchown, utimensat, ftruncate, pread64, pwrite64, lseek, getdents64, mkdirat,
// symlinkat, mknodat, linkat, renameat, unlinkat, readlinkat, fsync,
// fdatasync, fgetxattr, fsetxattr, flistxattr, sendmsg, recvmsg, shutdown,
// getsockopt (SO_TYPE).
package fsgofer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// Mount is one tree served by the Gofer.
type Mount struct {
	// HostPath is the absolute path of the tree's root in the Gofer's mount
	// namespace. It is trusted: it comes from the runtime, not the sandbox.
	// It may name a directory or, for a file bind mount, a regular file.
	HostPath string
	// ReadOnly makes every mutating operation fail with EROFS.
	ReadOnly bool
}

// Serve serves mounts[i] on conns[i] until every connection is closed by the
// Sentry or ctx is cancelled. It owns the sockets and closes them. It returns
// the errors from opening the mounts or serving the connections.
//
// `runsc gofer` wraps each inherited socket descriptor with unet.NewSocket
// (stream or seqpacket; stream allows the larger 1 MiB msize), builds one
// Mount per tree (the root first, then each OCI bind mount, in the order the
// Sentry attaches them), finishes its own confinement (pivot_root, capability
// drop, seccomp) and then calls Serve. The Sentry attaches with the name "/"
// (or "") on each connection.
func Serve(ctx context.Context, conns []*unet.Socket, mounts []Mount) error {
	attachers, err := OpenMounts(mounts)
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return err
	}
	return ServeAttachers(ctx, conns, attachers)
}

// OpenMounts opens the root of every mount, so that a Gofer can do it
// before confining itself to an empty root and serve afterwards.
func OpenMounts(mounts []Mount) ([]*Attacher, error) {
	attachers := make([]*Attacher, 0, len(mounts))
	for _, m := range mounts {
		a, err := NewAttacher(m)
		if err != nil {
			for _, a := range attachers {
				a.Close()
			}
			return nil, err
		}
		attachers = append(attachers, a)
	}
	return attachers, nil
}

// ServeAttachers serves attachers[i] on conns[i] until every connection is
// closed or ctx is cancelled; it owns and closes both.
func ServeAttachers(ctx context.Context, conns []*unet.Socket, attachers []*Attacher) error {
	defer func() {
		for _, a := range attachers {
			a.Close()
		}
	}()
	if len(conns) != len(attachers) {
		for _, c := range conns {
			c.Close()
		}
		return fmt.Errorf("fsgofer: %d connections for %d mounts", len(conns), len(attachers))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := p9.NewServer(attachers[i]).Handle(ctx, conns[i]); err != nil {
				errs[i] = fmt.Errorf("fsgofer: serving %s: %w", attachers[i].mount.HostPath, err)
			}
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Attacher is the p9.Attacher of one mount.
type Attacher struct {
	mount  Mount
	rootFD int
	// rootDirFD and rootName locate a regular-file root (a file bind
	// mount) for reopening: by the time files are opened the Gofer has
	// pivoted into an empty root where HostPath no longer resolves.
	// rootDirFD is -1 for a directory root.
	rootDirFD int
	rootName  string
	// renameMu serialises renames (writers) against every use of a file's
	// (parent, name) (readers).
	renameMu sync.RWMutex

	// live holds every open file so a rename can update the (parent, name)
	// of all fids naming the moved entry.
	liveMu sync.Mutex
	live   map[*file]struct{}
}

func (a *Attacher) register(f *file) {
	a.liveMu.Lock()
	a.live[f] = struct{}{}
	a.liveMu.Unlock()
}

func (a *Attacher) unregister(f *file) {
	a.liveMu.Lock()
	delete(a.live, f)
	a.liveMu.Unlock()
}

// moved records that entry oldName of the directory (oldDev, oldIno) is now
// newName in newDir. The caller holds renameMu for writing.
func (a *Attacher) moved(oldDev, oldIno uint64, oldName string, newDir *file, newName string) {
	a.liveMu.Lock()
	defer a.liveMu.Unlock()
	for f := range a.live {
		if f.parentFD < 0 || f.parentDev != oldDev || f.parentIno != oldIno || f.name != oldName {
			continue
		}
		pfd, err := dupFD(newDir.fd)
		if err != nil {
			continue // this fid keeps its stale name: reopen reports ESTALE
		}
		unix.Close(f.parentFD)
		f.parentFD, f.parentDev, f.parentIno, f.name = pfd, newDir.dev, newDir.ino, newName
	}
}

// NewAttacher opens the root of m. The caller must Close it when no server
// uses it any more.
func NewAttacher(m Mount) (*Attacher, error) {
	fd, err := unix.Open(m.HostPath, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fsgofer: opening mount root %q: %w", m.HostPath, err)
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fsgofer: stat mount root %q: %w", m.HostPath, err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFDIR && t != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("fsgofer: mount root %q is neither a directory nor a regular file: %w", m.HostPath, unix.EINVAL)
	}
	a := &Attacher{mount: m, rootFD: fd, rootDirFD: -1, live: make(map[*file]struct{})}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		dir, name := filepath.Split(filepath.Clean(m.HostPath))
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("fsgofer: opening the directory of mount root %q: %w", m.HostPath, err)
		}
		a.rootDirFD, a.rootName = dfd, name
	}
	return a, nil
}

// Close releases the root descriptors.
func (a *Attacher) Close() error {
	if a.rootDirFD >= 0 {
		unix.Close(a.rootDirFD)
	}
	return unix.Close(a.rootFD)
}

// Attach implements p9.Attacher. Each mount is its own tree, so the only
// attach names are "" and "/".
func (a *Attacher) Attach(name string, uid p9.UID) (p9.File, error) {
	if name != "" && name != "/" {
		return nil, unix.ENOENT
	}
	fd, err := dupFD(a.rootFD)
	if err != nil {
		return nil, err
	}
	f, err := newFile(a, fd, nil, "")
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return f, nil
}

func dupFD(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("fsgofer: dup: %w", err)
	}
	return nfd, nil
}

func fstat(fd int, st *unix.Stat_t) error {
	return unix.Fstatat(fd, "", st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}
