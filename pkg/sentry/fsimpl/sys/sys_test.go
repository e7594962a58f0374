package sys_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/sys"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

type env struct {
	t     *testing.T
	ctx   context.Context
	v     *vfs.VirtualFilesystem
	creds *auth.Credentials
	root  vfs.VirtualDentry
}

// newEnv mounts a sysfs for ncpus CPUs as the root of a mount namespace.
func newEnv(t *testing.T, ncpus int) *env {
	v := vfs.New()
	if err := v.RegisterFilesystemType(sys.Name, sys.FilesystemType{CPUs: ncpus}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	creds := auth.NewRoot()
	ns, err := v.NewMountNamespace(ctx, creds, "sysfs", sys.Name, &vfs.MountOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(ctx) })
	return &env{t: t, ctx: ctx, v: v, creds: creds, root: root}
}

func (e *env) pop(p string) *vfs.PathOperation {
	return &vfs.PathOperation{Root: e.root, Start: e.root, Path: p, FollowFinalSymlink: true}
}

func (e *env) read(p string) (string, error) {
	f, err := e.v.OpenAt(e.ctx, e.creds, e.pop(p), &vfs.OpenOptions{Flags: unix.O_RDONLY})
	if err != nil {
		return "", err
	}
	defer f.DecRef(e.ctx)
	var out []byte
	for {
		b := make([]byte, 3) // small reads exercise the offset
		dst, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, 3, usermem.IOOpts{})
		n, err := f.Read(e.ctx, dst, vfs.ReadOptions{})
		if err != nil {
			return "", err
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, b[:n]...)
	}
}

func (e *env) list(p string) []string {
	f, err := e.v.OpenAt(e.ctx, e.creds, e.pop(p), &vfs.OpenOptions{Flags: unix.O_RDONLY | unix.O_DIRECTORY})
	if err != nil {
		e.t.Fatalf("opening %s: %v", p, err)
	}
	defer f.DecRef(e.ctx)
	var names []string
	f.IterDirents(e.ctx, func(d vfs.Dirent) bool { names = append(names, d.Name); return true })
	return names
}

func TestCPUFiles(t *testing.T) {
	for _, n := range []int{1, 4} {
		e := newEnv(t, n)
		want := "0\n"
		if n > 1 {
			want = fmt.Sprintf("0-%d\n", n-1)
		}
		for _, f := range []string{"online", "possible", "present"} {
			if got, err := e.read("/devices/system/cpu/" + f); err != nil || got != want {
				t.Errorf("%d CPUs: %s = %q, %v; want %q", n, f, got, err, want)
			}
		}
		names := e.list("/devices/system/cpu")
		for i := range n {
			if !slices.Contains(names, fmt.Sprintf("cpu%d", i)) {
				t.Errorf("%d CPUs: no cpu%d in %q", n, i, names)
			}
		}
		if slices.Contains(names, fmt.Sprintf("cpu%d", n)) {
			t.Errorf("%d CPUs: cpu%d listed", n, n)
		}
	}
}

func TestTree(t *testing.T) {
	e := newEnv(t, 2)
	if got, err := e.read("/kernel/mm/transparent_hugepage/enabled"); err != nil || got != "always [madvise] never\n" {
		t.Errorf("thp enabled = %q, %v", got, err)
	}
	if got, err := e.read("/devices/system/cpu/kernel_max"); err != nil || got != "8191\n" {
		t.Errorf("kernel_max = %q, %v", got, err)
	}
	for _, d := range []string{"/fs/cgroup", "/class/net"} {
		if names := e.list(d); !slices.Equal(names, []string{".", ".."}) {
			t.Errorf("%s = %q, want empty", d, names)
		}
	}
	if _, err := e.read("/nope"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing file: %v", err)
	}
	// The tree is fixed: nothing may be created.
	err := e.v.MkdirAt(e.ctx, e.creds, e.pop("/fs/new"), &vfs.MkdirOptions{Mode: 0o755})
	if err == nil {
		t.Errorf("mkdir in sysfs succeeded")
	}
	st, err := e.v.StatFSAt(e.ctx, e.creds, e.pop("/"))
	if err != nil || st.Type != 0x62656572 {
		t.Errorf("statfs = %#x, %v", st.Type, err)
	}
}
