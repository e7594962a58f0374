package devpts_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/sentry/fsimpl/devpts"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// mountDevpts mounts a devpts with data as its options.
func mountDevpts(t *testing.T, data string) (*vfs.VirtualFilesystem, vfs.VirtualDentry, error) {
	t.Helper()
	v := vfs.New()
	if err := v.RegisterFilesystemType(devpts.Name, devpts.FilesystemType{}); err != nil {
		t.Fatal(err)
	}
	ns, err := v.NewMountNamespace(context.Background(), auth.NewRoot(), "", devpts.Name,
		&vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{Data: data}})
	if err != nil {
		return nil, vfs.VirtualDentry{}, err
	}
	root := ns.Root()
	t.Cleanup(func() { root.DecRef(context.Background()) })
	return v, root, nil
}

// openPTY opens ptmx as creds and unlocks the pty; it returns the master
// and the replica's name.
func openPTY(t *testing.T, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, creds *auth.Credentials) (*vfs.FileDescription, string) {
	t.Helper()
	ctx := auth.ContextWithCredentials(context.Background(), creds)
	m, err := v.OpenAt(ctx, creds, vfstest.Pop(root, "/ptmx"), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	if err != nil {
		t.Fatalf("open ptmx as uid %d: %v", creds.FilesystemUID, err)
	}
	t.Cleanup(func() { m.DecRef(ctx) })
	b := make([]byte, 4)
	if _, err := m.Ioctl(ctx, &usermem.BytesIO{Bytes: b}, unix.SYS_IOCTL, [6]uintptr{0, unix.TIOCGPTN, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ioctl(ctx, &usermem.BytesIO{Bytes: make([]byte, 4)}, unix.SYS_IOCTL, [6]uintptr{0, unix.TIOCSPTLCK, 0}); err != nil {
		t.Fatal(err)
	}
	return m, "/" + itoa(binary.LittleEndian.Uint32(b))
}

func statOf(t *testing.T, v *vfs.VirtualFilesystem, root vfs.VirtualDentry, name string) vfs.Statx {
	t.Helper()
	st, err := v.StatAt(context.Background(), auth.NewRoot(), vfstest.Pop(root, name), &vfs.StatOptions{Mask: unix.STATX_BASIC_STATS})
	if err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	return st
}

func TestPTYOwnedByOpener(t *testing.T) {
	v, root, err := mountDevpts(t, "")
	if err != nil {
		t.Fatal(err)
	}
	user := auth.NewUser(1000, 1000, nil)
	_, name := openPTY(t, v, root, user)
	st := statOf(t, v, root, name)
	if st.Uid != 1000 || st.Gid != 1000 || st.Mode != unix.S_IFCHR|0o600 {
		t.Errorf("pty of uid 1000: uid %d gid %d mode %#o; want 1000 1000 crw-------", st.Uid, st.Gid, st.Mode)
	}
	// Its owner may reopen it; another user may not.
	ctx := context.Background()
	r, err := v.OpenAt(ctx, user, vfstest.Pop(root, name), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	if err != nil {
		t.Fatalf("owner reopening its pty: %v", err)
	}
	r.DecRef(ctx)
	if _, err := v.OpenAt(ctx, auth.NewUser(1001, 1001, nil), vfstest.Pop(root, name), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY}); !errors.Is(err, unix.EACCES) {
		t.Errorf("another user opening a 0600 pty: %v, want EACCES", err)
	}
	if st := statOf(t, v, root, "/ptmx"); st.Mode != unix.S_IFCHR|0o666 || st.Uid != 0 {
		t.Errorf("ptmx: uid %d mode %#o", st.Uid, st.Mode)
	}
}

func TestMountOptionsSetOwnerAndModes(t *testing.T) {
	v, root, err := mountDevpts(t, "newinstance,gid=5,mode=0620,ptmxmode=0600")
	if err != nil {
		t.Fatal(err)
	}
	user := auth.NewUser(1000, 1000, []auth.GID{5})
	_, name := openPTY(t, v, root, auth.NewRoot())
	st := statOf(t, v, root, name)
	if st.Uid != 0 || st.Gid != 5 || st.Mode != unix.S_IFCHR|0o620 {
		t.Errorf("pty with gid=5,mode=0620: uid %d gid %d mode %#o", st.Uid, st.Gid, st.Mode)
	}
	if st := statOf(t, v, root, "/ptmx"); st.Mode != unix.S_IFCHR|0o600 {
		t.Errorf("ptmx with ptmxmode=0600: mode %#o", st.Mode)
	}
	ctx := context.Background()
	if _, err := v.OpenAt(ctx, user, vfstest.Pop(root, "/ptmx"), &vfs.OpenOptions{Flags: unix.O_RDWR}); !errors.Is(err, unix.EACCES) {
		t.Errorf("uid 1000 opening a 0600 ptmx: %v, want EACCES", err)
	}
	// chown and chmod, as runc and grantpt do: then the user may open it.
	if err := v.SetStatAt(ctx, auth.NewRoot(), vfstest.Pop(root, name), &vfs.SetStatOptions{Mask: unix.STATX_UID | unix.STATX_MODE, UID: 1000, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if st := statOf(t, v, root, name); st.Uid != 1000 || st.Gid != 5 || st.Mode != unix.S_IFCHR|0o600 {
		t.Errorf("after chown/chmod: uid %d gid %d mode %#o", st.Uid, st.Gid, st.Mode)
	}
	r, err := v.OpenAt(ctx, user, vfstest.Pop(root, name), &vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_NOCTTY})
	if err != nil {
		t.Fatalf("new owner opening the pty: %v", err)
	}
	r.DecRef(ctx)

	v2, root2, err := mountDevpts(t, "uid=7,gid=8,mode=0640,max=1")
	if err != nil {
		t.Fatal(err)
	}
	_, name2 := openPTY(t, v2, root2, user)
	if st := statOf(t, v2, root2, name2); st.Uid != 7 || st.Gid != 8 || st.Mode != unix.S_IFCHR|0o640 {
		t.Errorf("pty with uid=7,gid=8,mode=0640: uid %d gid %d mode %#o", st.Uid, st.Gid, st.Mode)
	}
	if _, err := v2.OpenAt(ctx, auth.NewRoot(), vfstest.Pop(root2, "/ptmx"), &vfs.OpenOptions{Flags: unix.O_RDWR}); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("second pty with max=1: %v, want ENOSPC", err)
	}
}

func TestMountOptionsRejectBogus(t *testing.T) {
	for _, data := range []string{"mode=9", "uid=x", "gid=-1", "bogus", "size=1", "mode"} {
		if _, _, err := mountDevpts(t, data); !errors.Is(err, unix.EINVAL) {
			t.Errorf("mount with %q: %v, want EINVAL", data, err)
		}
	}
	if got := devpts.MountData([]string{"nosuid", "newinstance", "ptmxmode=0666", "mode=620", "gid=5", "noexec"}); got != "newinstance,ptmxmode=0666,mode=620,gid=5" {
		t.Errorf("MountData = %q", got)
	}
}

func FuzzMountOptions(f *testing.F) {
	for _, s := range []string{"", "newinstance,gid=5,mode=620,ptmxmode=666", "max=99999999999", "uid=", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		v := vfs.New()
		v.RegisterFilesystemType(devpts.Name, devpts.FilesystemType{})
		ns, err := v.NewMountNamespace(context.Background(), auth.NewRoot(), "", devpts.Name,
			&vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{Data: data}})
		if err != nil {
			if !errors.Is(err, unix.EINVAL) {
				t.Fatalf("mount with %q: %v, want EINVAL or success", data, err)
			}
			return
		}
		root := ns.Root()
		root.DecRef(context.Background())
	})
}
