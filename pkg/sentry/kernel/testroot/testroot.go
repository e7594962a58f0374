// Package testroot builds the root filesystem kernel tests run programs
// from: a tmpfs holding copies of host files. It depends on the VFS and
// tmpfs only, so the kernel's own internal tests can use it (kerneltest,
// which also wires kernel-level pieces, cannot be imported by them).
package testroot

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// NewRoot mounts a tmpfs as a new mount namespace of v and copies each
// host file of hostFiles to the same path in it (parents created 0755,
// files keeping their permission bits), with the ELF interpreter of
// those that name one. It returns the namespace's root
// with a reference the caller must drop.
func NewRoot(ctx context.Context, v *vfs.VirtualFilesystem, mf *pgalloc.MemoryFile, hostFiles ...string) (vfs.VirtualDentry, error) {
	if !slices.Contains(v.FilesystemTypes(), tmpfs.Name) {
		if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
			return vfs.VirtualDentry{}, err
		}
	}
	creds := auth.NewRoot()
	mode := uint32(0o755)
	ns, err := v.NewMountNamespace(ctx, creds, "test-root", tmpfs.Name, &vfs.MountOptions{
		GetFilesystemOptions: vfs.GetFilesystemOptions{InternalData: &tmpfs.InternalData{MemoryFile: mf, RootMode: &mode}},
	})
	if err != nil {
		return vfs.VirtualDentry{}, fmt.Errorf("mounting the test root: %w", err)
	}
	root := ns.Root()
	for _, hf := range hostFiles {
		files := []string{hf}
		if interp := elfInterpreter(hf); interp != "" {
			files = append(files, interp)
		}
		for _, f := range files {
			if err := CopyIn(ctx, v, root, f, f); err != nil {
				root.DecRef(ctx)
				return vfs.VirtualDentry{}, err
			}
		}
	}
	return root, nil
}

// elfInterpreter returns the PT_INTERP path of an ELF file, or "".
func elfInterpreter(p string) string {
	f, err := elf.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			b, err := io.ReadAll(prog.Open())
			if err != nil {
				return ""
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

// CopyIn copies the host file hostPath to path p under root, creating
// missing parent directories.
func CopyIn(ctx context.Context, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, hostPath, p string) error {
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return err
	}
	st, err := os.Stat(hostPath)
	if err != nil {
		return err
	}
	creds := auth.NewRoot()
	dir := path.Dir(p)
	for i := 1; i <= len(dir); i++ {
		if i == len(dir) || dir[i] == '/' {
			err := v.MkdirAt(ctx, creds, &vfs.PathOperation{Root: root, Start: root, Path: dir[:i]}, &vfs.MkdirOptions{Mode: 0o755})
			if err != nil && err != unix.EEXIST {
				return fmt.Errorf("mkdir %q: %w", dir[:i], err)
			}
		}
	}
	fd, err := v.OpenAt(ctx, creds, &vfs.PathOperation{Root: root, Start: root, Path: p},
		&vfs.OpenOptions{Flags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, Mode: uint32(st.Mode().Perm())})
	if err != nil {
		return fmt.Errorf("creating %q: %w", p, err)
	}
	defer fd.DecRef(ctx)
	src, err := usermem.BytesSequence(&usermem.BytesIO{Bytes: data}, 0, int64(len(data)), usermem.IOOpts{})
	if err != nil {
		return err
	}
	for src.NumBytes() > 0 {
		n, err := fd.Write(ctx, src, vfs.WriteOptions{})
		if err != nil {
			return fmt.Errorf("writing %q: %w", p, err)
		}
		src = src.DropFirst(n)
	}
	return nil
}
