package overlay_test

import (
	"context"
	"fmt"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/overlay"
	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// Overlay names forgotten by the bounded dentry cache come back as they
// were: copied-up data, removed names, inode numbers.
func TestOverlayDentryEviction(t *testing.T) {
	const limit, n = 16, 200
	ctx := context.Background()
	creds := auth.NewRoot()
	ctx = auth.ContextWithCredentials(ctx, creds)
	v := vfs.New()
	for name, ft := range map[string]vfs.FilesystemType{tmpfs.Name: tmpfs.FilesystemType{}, overlay.Name: overlay.FilesystemType{}} {
		if err := v.RegisterFilesystemType(name, ft); err != nil {
			t.Fatal(err)
		}
	}
	layer := func() vfs.VirtualDentry {
		ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ns.Root()
	}
	lower, upper := layer(), layer()
	defer lower.DecRef(ctx)
	defer upper.DecRef(ctx)
	write := func(root vfs.VirtualDentry, p, data string, flags uint32) {
		t.Helper()
		fd, err := v.OpenAt(ctx, creds, vfstest.Pop(root, p), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY | flags, Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		defer fd.DecRef(ctx)
		if _, err := vfstest.Write(ctx, fd, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		write(lower, fmt.Sprint("/f", i), fmt.Sprint("lower", i), 0)
	}
	ns, err := v.NewMountNamespace(ctx, creds, "", overlay.Name, &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		InternalData: &overlay.Options{Lower: lower, Upper: upper, DentryCacheLimit: limit}}})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	defer root.DecRef(ctx)
	stat := func(p string) (vfs.Statx, error) {
		return v.StatAt(ctx, creds, vfstest.Pop(root, p), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	}
	inos := make([]uint64, n)
	for i := range inos {
		st, err := stat(fmt.Sprint("/f", i))
		if err != nil {
			t.Fatal(err)
		}
		inos[i] = st.Ino
	}
	// Change every third file (copy-up), remove every seventh, make new
	// ones, then walk everything again twice.
	for i := 0; i < n; i++ {
		switch {
		case i%7 == 0:
			if err := v.UnlinkAt(ctx, creds, vfstest.Pop(root, fmt.Sprint("/f", i))); err != nil {
				t.Fatal(err)
			}
		case i%3 == 0:
			write(root, fmt.Sprint("/f", i), fmt.Sprint("upper", i), unix.O_TRUNC)
		}
		write(root, fmt.Sprint("/new", i), fmt.Sprint("new", i), 0)
	}
	if c := root.Mount().Filesystem().CachedDentries(); c > limit {
		t.Errorf("%d cached overlay dentries, limit %d", c, limit)
	}
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < n; i++ {
			p := fmt.Sprint("/f", i)
			st, err := stat(p)
			if i%7 == 0 {
				if err != unix.ENOENT {
					t.Fatalf("%s: removed name came back: %v", p, err)
				}
				continue
			}
			if err != nil || st.Ino != inos[i] {
				t.Fatalf("%s: ino %d err %v, was %d", p, st.Ino, err, inos[i])
			}
			want := fmt.Sprint("lower", i)
			if i%3 == 0 {
				want = fmt.Sprint("upper", i)
			}
			fd, err := v.OpenAt(ctx, creds, vfstest.Pop(root, p), &vfs.OpenOptions{Flags: unix.O_RDONLY})
			if err != nil {
				t.Fatal(err)
			}
			got, err := vfstest.Read(ctx, fd, 64)
			fd.DecRef(ctx)
			if err != nil || string(got) != want {
				t.Fatalf("%s reads %q, want %q", p, got, want)
			}
		}
	}
	names, err := readDirNames(ctx, v, creds, root)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + n + n - (n+6)/7; len(names) != want {
		t.Errorf("readdir: %d entries, want %d", len(names), want)
	}
}

func readDirNames(ctx context.Context, v *vfs.VirtualFilesystem, creds *auth.Credentials, root vfs.VirtualDentry) ([]string, error) {
	fd, err := v.OpenAt(ctx, creds, vfstest.Pop(root, "/"), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		return nil, err
	}
	defer fd.DecRef(ctx)
	return vfstest.ReadDir(ctx, fd)
}
