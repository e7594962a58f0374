package fsgofer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/p9"
	"carapace.dev/carapace/pkg/unet"
	"carapace.dev/carapace/runsc/config"
	"carapace.dev/carapace/runsc/sandbox"
	"carapace.dev/carapace/runsc/specutils"
	"carapace.dev/carapace/runsc/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestConfinedGoferXattrs drives every xattr operation through a Gofer
// running under its real seccomp filter, on a read-write bind mount (the
// Sentry reaches it without an overlay, so removexattr goes to the host).
// A syscall missing from SeccompRules kills the Gofer, which shows up as
// the connection failing.
func TestConfinedGoferXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starting a confined gofer needs root (mount namespaces, pivot_root)")
	}
	data := t.TempDir()
	target := filepath.Join(data, "f")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(target, "user.probe", []byte("1"), 0); err != nil {
		t.Skipf("the test directory's filesystem has no user xattrs: %v", err)
	}
	if err := unix.Removexattr(target, "user.probe"); err != nil {
		t.Fatal(err)
	}
	bin, err := testutil.BuildRunsc(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec := specutils.Default([]string{"/bin/true"}, "/")
	spec.Root = &specs.Root{Path: t.TempDir()}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/data", Source: data, Type: "bind"})
	g, err := sandbox.StartGofer(bin, config.Default(), spec, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill()
	if len(g.SentryEnds) != 2 {
		t.Fatalf("%d sentry ends, want 2", len(g.SentryEnds))
	}
	fd, err := unix.Dup(int(g.SentryEnds[1].Fd()))
	if err != nil {
		t.Fatal(err)
	}
	sock, err := unet.NewSocket(fd)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	c, err := p9.NewClient(sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, _, err := c.Attach(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, f, err := root.Walk(ctx, []string{"f"})
	if err != nil {
		t.Fatal(err)
	}

	// Without an open descriptor (the Gofer reopens for metadata) …
	if err := f.SetXattr(ctx, "user.a", []byte("va"), 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	if err := f.RemoveXattr(ctx, "user.a"); err != nil {
		t.Fatalf("removexattr: %v", err)
	}
	if _, err := unix.Getxattr(target, "user.a", nil); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("host getxattr after removexattr through the gofer = %v, want ENODATA", err)
	}
	if err := f.RemoveXattr(ctx, "user.a"); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("second removexattr = %v, want ENODATA", err)
	}
	// … and on an open file.
	if _, _, donated, err := f.Open(ctx, p9.OpenFlags(unix.O_RDWR)); err != nil {
		t.Fatalf("open: %v", err)
	} else if donated != nil {
		donated.Close()
	}
	if err := f.SetXattr(ctx, "user.b", []byte("vb"), 0); err != nil {
		t.Fatalf("setxattr on an open file: %v", err)
	}
	if v, err := f.GetXattr(ctx, "user.b"); err != nil || string(v) != "vb" {
		t.Fatalf("getxattr = %q, %v", v, err)
	}
	if err := f.RemoveXattr(ctx, "user.b"); err != nil {
		t.Fatalf("removexattr on an open file: %v", err)
	}
	if _, err := f.GetXattr(ctx, "user.b"); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattr after removexattr = %v, want ENODATA", err)
	}
	// The Gofer is still alive and serving.
	if _, _, _, err := f.GetAttr(ctx, p9.AttrMode|p9.AttrSize); err != nil {
		t.Fatalf("the gofer stopped serving after removexattr: %v", err)
	}
	f.Close(ctx)
	root.Close(ctx)
}
