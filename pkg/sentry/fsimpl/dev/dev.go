// Package dev owns /dev: a tmpfs populated with the standard device nodes
// and the drivers of the memory devices behind them (null(4), zero(4),
// full(4), random(4)/urandom(4)), /dev/console (the container's terminal,
// console.go), the /dev/tty node, the pts and shm mount
// points, and the usual symlinks (fd, stdin …, ptmx), as runc's default
// devices (OCI runtime spec, "Default Devices") and Docker's /dev/shm.
package dev

import (
	"context"
	"crypto/rand"
	"fmt"

	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// Name is the filesystem type name of /dev.
const Name = "devtmpfs"

// memDevMajor is the major number of the memory devices (MEM_MAJOR).
const memDevMajor = 1

// ttyMajor and ttyMinor are /dev/tty's number (TTYAUX_MAJOR, 0): the
// caller's controlling terminal. Its driver belongs to the kernel, which
// knows controlling terminals; until one is registered, opening it fails
// with ENXIO, which is what Linux answers a process without one.
const (
	ttyMajor = 5
	ttyMinor = 0
)

// Minor numbers of the memory devices (Documentation/admin-guide/devices).
const (
	nullMinor    = 3
	zeroMinor    = 5
	fullMinor    = 7
	randomMinor  = 8
	urandomMinor = 9
)

type memDevice struct{ minor uint32 }

// Open implements vfs.Device.
func (d memDevice) Open(context.Context, vfs.VirtualDentry, uint32) (vfs.FileDescriptionImpl, error) {
	return &memFile{minor: d.minor}, nil
}

// Register installs the memory device drivers and the devtmpfs type.
func Register(v *vfs.VirtualFilesystem) error {
	for _, m := range []uint32{nullMinor, zeroMinor, fullMinor, randomMinor, urandomMinor} {
		if err := v.RegisterDevice(vfs.CharDevice, memDevMajor, m, memDevice{m}); err != nil {
			return fmt.Errorf("registering memory device 1:%d: %w", m, err)
		}
	}
	if err := v.RegisterDevice(vfs.CharDevice, ttyMajor, consoleMinor, &console{}); err != nil {
		return fmt.Errorf("registering /dev/console: %w", err)
	}
	return v.RegisterFilesystemType(Name, FilesystemType{})
}

// FilesystemType builds a populated /dev.
type FilesystemType struct{}

// Name implements vfs.FilesystemType.
func (FilesystemType) Name() string { return Name }

// node is one entry /dev starts with.
type node struct {
	name   string
	major  uint32
	mode   uint32
	minor  uint32
	target string
}

var nodes = []node{
	{name: "null", mode: unix.S_IFCHR | 0o666, major: memDevMajor, minor: nullMinor},
	{name: "zero", mode: unix.S_IFCHR | 0o666, major: memDevMajor, minor: zeroMinor},
	{name: "full", mode: unix.S_IFCHR | 0o666, major: memDevMajor, minor: fullMinor},
	{name: "random", mode: unix.S_IFCHR | 0o666, major: memDevMajor, minor: randomMinor},
	{name: "urandom", mode: unix.S_IFCHR | 0o666, major: memDevMajor, minor: urandomMinor},
	{name: "tty", mode: unix.S_IFCHR | 0o666, major: ttyMajor, minor: ttyMinor},
	{name: "console", mode: unix.S_IFCHR | 0o600, major: ttyMajor, minor: consoleMinor},
	{name: "pts", mode: unix.S_IFDIR | 0o755},
	{name: "shm", mode: unix.S_IFDIR | 0o1777},
	{name: "fd", mode: unix.S_IFLNK, target: "/proc/self/fd"},
	{name: "stdin", mode: unix.S_IFLNK, target: "/proc/self/fd/0"},
	{name: "stdout", mode: unix.S_IFLNK, target: "/proc/self/fd/1"},
	{name: "stderr", mode: unix.S_IFLNK, target: "/proc/self/fd/2"},
	{name: "ptmx", mode: unix.S_IFLNK, target: "pts/ptmx"},
}

// GetFilesystem implements vfs.FilesystemType: a tmpfs (mode 0755) holding
// the nodes above.
func (FilesystemType) GetFilesystem(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, source string, opts vfs.GetFilesystemOptions) (*vfs.Filesystem, *vfs.Dentry, error) {
	mode := uint32(0o755)
	fs, root, err := tmpfs.FilesystemType{}.GetFilesystem(ctx, v, creds, source, vfs.GetFilesystemOptions{
		InternalData: &tmpfs.InternalData{RootMode: &mode},
	})
	if err != nil {
		return nil, nil, err
	}
	// Populate through a private mount, with root's credentials so that
	// device nodes may be made whoever mounts /dev.
	fs.IncRef()
	root.IncRef()
	m := v.NewDisconnectedMount(fs, root)
	vd := vfs.MakeVirtualDentry(m, root)
	vd.IncRef()
	defer vd.DecRef(ctx)
	defer m.DecRef(ctx)
	rootCreds := auth.NewRoot()
	for _, n := range nodes {
		pop := &vfs.PathOperation{Root: vd, Start: vd, Path: n.name}
		switch n.mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = v.MkdirAt(ctx, rootCreds, pop, &vfs.MkdirOptions{Mode: n.mode})
		case unix.S_IFLNK:
			err = v.SymlinkAt(ctx, rootCreds, pop, n.target)
		default:
			err = v.MknodAt(ctx, rootCreds, pop, &vfs.MknodOptions{Mode: n.mode, DevMajor: n.major, DevMinor: n.minor})
		}
		if err != nil {
			fs.DecRef(ctx)
			root.DecRef(ctx)
			return nil, nil, fmt.Errorf("populating /dev/%s: %w", n.name, err)
		}
	}
	return fs, root, nil
}

// memFile is an open memory device.
type memFile struct {
	vfs.FileDescriptionDefaults
	minor uint32
}

var zeros [4096]byte

// fill copies zeros or random bytes to all of dst.
func fill(ctx context.Context, dst usermem.IOSequence, random bool) (int64, error) {
	var buf [4096]byte
	var done int64
	for dst.NumBytes() > 0 {
		n := min(int64(len(buf)), dst.NumBytes())
		src := zeros[:n]
		if random {
			rand.Read(buf[:n])
			src = buf[:n]
		}
		c, err := dst.CopyOut(ctx, src)
		done += int64(c)
		if err != nil {
			if done > 0 {
				return done, nil
			}
			return 0, err
		}
		dst = dst.DropFirst(int64(c))
	}
	return done, nil
}

// Read implements vfs.FileDescriptionImpl.
func (f *memFile) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	switch f.minor {
	case nullMinor:
		return 0, nil
	case randomMinor, urandomMinor:
		return fill(ctx, dst, true)
	default:
		return fill(ctx, dst, false)
	}
}

// PRead implements vfs.FileDescriptionImpl.
func (f *memFile) PRead(ctx context.Context, fd *vfs.FileDescription, dst usermem.IOSequence, _ int64, opts vfs.ReadOptions) (int64, error) {
	return f.Read(ctx, fd, dst, opts)
}

// Write implements vfs.FileDescriptionImpl: everything is swallowed, except
// by /dev/full, which is always full.
func (f *memFile) Write(_ context.Context, _ *vfs.FileDescription, src usermem.IOSequence, _ vfs.WriteOptions) (int64, error) {
	if f.minor == fullMinor {
		return 0, unix.ENOSPC
	}
	return src.NumBytes(), nil
}

// PWrite implements vfs.FileDescriptionImpl.
func (f *memFile) PWrite(ctx context.Context, fd *vfs.FileDescription, src usermem.IOSequence, _ int64, opts vfs.WriteOptions) (int64, error) {
	return f.Write(ctx, fd, src, opts)
}

// Seek implements vfs.FileDescriptionImpl: these devices have no position;
// lseek succeeds and reports 0.
func (f *memFile) Seek(context.Context, *vfs.FileDescription, int64, int32) (int64, error) {
	return 0, nil
}
