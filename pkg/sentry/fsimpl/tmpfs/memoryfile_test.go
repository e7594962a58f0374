package tmpfs_test

import (
	"context"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/tmpfs"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

// A tmpfs mounted without a memory file (mount(2) inside the sandbox)
// keeps its data in the VFS's memory file, the one the platform maps:
// after it stores a page, that file's next allocation lies beyond it.
func TestMountUsesTheVFSMemoryFile(t *testing.T) {
	ctx := context.Background()
	mf, err := pgalloc.New("tmpfs-vfs-mf")
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	v := vfs.New()
	v.SetMemoryFile(mf)
	if err := v.RegisterFilesystemType(tmpfs.Name, tmpfs.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "", tmpfs.Name, &vfs.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	defer root.DecRef(ctx)
	fd, err := v.OpenAt(ctx, creds, vfstest.Pop(root, "/f"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_RDWR, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	defer fd.DecRef(ctx)
	if n, err := vfstest.Write(ctx, fd, make([]byte, 4096)); n != 4096 || err != nil {
		t.Fatalf("write = %d, %v", n, err)
	}
	fr, err := mf.Allocate(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.DecRef(fr)
	if fr.Start == 0 {
		t.Errorf("the file's page is not in the VFS's memory file (its first page was still free)")
	}
}
