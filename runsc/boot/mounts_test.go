package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/fsgofer"
	"carapace.dev/carapace/runsc/specutils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// serve starts an in-process Gofer over the spec's trees and returns the
// Sentry's sockets.
func serve(t *testing.T, mounts []specutils.GoferMount) []*unet.Socket {
	t.Helper()
	var sentry, gofers []*unet.Socket
	var fm []fsgofer.Mount
	for _, m := range mounts {
		a, b, err := unet.SocketPair(false)
		if err != nil {
			t.Fatal(err)
		}
		sentry, gofers = append(sentry, a), append(gofers, b)
		fm = append(fm, fsgofer.Mount{HostPath: m.HostPath, ReadOnly: m.ReadOnly})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fsgofer.Serve(ctx, gofers, fm) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return sentry
}

type sandboxFS struct {
	mf    *pgalloc.MemoryFile
	ctx   context.Context
	creds *auth.Credentials
	v     *vfs.VirtualFilesystem
	root  vfs.VirtualDentry
}

func build(t *testing.T, spec *specs.Spec, overlay bool) *sandboxFS {
	t.Helper()
	mf, err := pgalloc.New("boot-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	v, err := NewVFS()
	if err != nil {
		t.Fatal(err)
	}
	creds := auth.NewRoot()
	ctx := auth.ContextWithCredentials(context.Background(), creds)
	gm := specutils.GoferMounts(spec, "/", overlay)
	mntns, err := BuildMounts(ctx, v, creds, &MountConfig{
		Spec: spec, GoferMounts: gm, GoferSockets: serve(t, gm), Overlay: overlay, MemoryFile: mf,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &sandboxFS{mf: mf, ctx: ctx, creds: creds, v: v, root: mntns.Root()}
	t.Cleanup(func() { s.root.DecRef(ctx) })
	return s
}

func (s *sandboxFS) read(t *testing.T, p string) (string, error) {
	t.Helper()
	fd, err := s.v.OpenAt(s.ctx, s.creds, vfstest.Pop(s.root, p), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		return "", err
	}
	defer fd.DecRef(s.ctx)
	b, err := vfstest.Read(s.ctx, fd, 4096)
	return string(b), err
}

func (s *sandboxFS) write(p, data string) error {
	fd, err := s.v.OpenAt(s.ctx, s.creds, vfstest.Pop(s.root, p), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC, Mode: 0o644})
	if err != nil {
		return err
	}
	defer fd.DecRef(s.ctx)
	_, err = vfstest.Write(s.ctx, fd, []byte(data))
	return err
}

func testSpec(t *testing.T) (*specs.Spec, string, string) {
	root, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello"), []byte("from the image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "note"), []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := specutils.Default([]string{"/bin/true"}, "/")
	spec.Root = &specs.Root{Path: root}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=1777"}},
		specs.Mount{Destination: "/srv/data", Source: data, Type: "bind"},
		specs.Mount{Destination: "/ro", Source: data, Type: "bind", Options: []string{"ro"}},
	)
	return spec, root, data
}

func TestOverlayRootOverTheGofer(t *testing.T) {
	spec, root, data := testSpec(t)
	s := build(t, spec, true)
	if got, err := s.read(t, "/hello"); err != nil || got != "from the image" {
		t.Fatalf("reading the image through gofer+overlay: %q, %v", got, err)
	}
	// Writes land in memory; the host image is untouched.
	if err := s.write("/hello", "changed in the sandbox"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.read(t, "/hello"); got != "changed in the sandbox" {
		t.Fatalf("sandbox reads back %q", got)
	}
	if host, _ := os.ReadFile(filepath.Join(root, "hello")); string(host) != "from the image" {
		t.Fatalf("the overlay wrote through to the host: %q", host)
	}
	before := s.mf.UsedBytes()
	if err := s.write("/new", "x"); err != nil {
		t.Fatal(err)
	}
	// The upper layer's data lives in the sandbox's memory file, where the
	// memory manager can map it and limits can count it.
	if s.mf.UsedBytes() <= before {
		t.Errorf("writing to the overlay did not use the sandbox's memory file (%d -> %d bytes)", before, s.mf.UsedBytes())
	}
	if _, err := os.Stat(filepath.Join(root, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file created in the sandbox appeared on the host: %v", err)
	}
	// /dev is the Sentry's own.
	if got, err := s.read(t, "/dev/zero"); err != nil || len(got) == 0 || got[0] != 0 {
		t.Fatalf("/dev/zero: %q, %v", got, err)
	}
	if err := s.write("/dev/null", "gone"); err != nil {
		t.Fatalf("/dev/null: %v", err)
	}
	// A tmpfs mount, created even though the image has no /tmp.
	if err := s.write("/tmp/scratch", "t"); err != nil {
		t.Fatal(err)
	}
	// Bind mounts: read-write writes to the host, read-only refuses.
	if got, err := s.read(t, "/srv/data/note"); err != nil || got != "bound" {
		t.Fatalf("bind mount: %q, %v", got, err)
	}
	if err := s.write("/srv/data/out", "to host"); err != nil {
		t.Fatal(err)
	}
	if host, err := os.ReadFile(filepath.Join(data, "out")); err != nil || string(host) != "to host" {
		t.Fatalf("rw bind mount did not reach the host: %q, %v", host, err)
	}
	if err := s.write("/ro/out2", "no"); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to a ro bind mount = %v, want EROFS", err)
	}
}

func TestRootWithoutOverlay(t *testing.T) {
	spec, root, _ := testSpec(t)
	spec.Mounts = nil
	s := build(t, spec, false)
	if err := s.write("/direct", "written through"); err != nil {
		t.Fatal(err)
	}
	if host, err := os.ReadFile(filepath.Join(root, "direct")); err != nil || string(host) != "written through" {
		t.Fatalf("without overlay the write should reach the host: %q, %v", host, err)
	}
	spec.Root.Readonly = true
	ro := build(t, spec, false)
	if err := ro.write("/refused", "x"); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to a read-only root = %v, want EROFS", err)
	}
}

func TestHostRootReadable(t *testing.T) {
	// What `runsc do` mounts: the host's own root, read-only under the overlay.
	spec := specutils.Default([]string{"/bin/true"}, "/")
	spec.Root = &specs.Root{Path: "/", Readonly: false}
	spec.Mounts = nil
	s := build(t, spec, true)
	got, err := s.read(t, "/etc/passwd")
	if err != nil || len(got) == 0 {
		t.Fatalf("/etc/passwd through the gofer: %d bytes, %v", len(got), err)
	}
	elf, err := s.read(t, "/bin/true")
	if err != nil || len(elf) < 4 || elf[:4] != "\x7fELF" {
		t.Fatalf("/bin/true through the gofer: %q, %v", elf[:min(len(elf), 4)], err)
	}
}
