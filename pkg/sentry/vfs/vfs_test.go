package vfs_test

import (
	"fmt"
	"strings"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"golang.org/x/sys/unix"
)

func TestCreateWriteReadStat(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "hello")
	got, err := e.readFile("/f")
	if err != nil || got != "hello" {
		t.Fatalf("read = %q, %v", got, err)
	}
	st, err := e.stat("/f")
	e.must(err)
	if st.Size != 5 || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o777 != 0o644 || st.Nlink != 1 {
		t.Errorf("stat = size %d mode %o nlink %d", st.Size, st.Mode, st.Nlink)
	}
	_, err = e.open("/f", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	wantErr(t, "O_EXCL on existing", err, unix.EEXIST)

	fd, err := e.open("/f", unix.O_WRONLY|unix.O_APPEND, 0)
	e.must(err)
	_, err = vfstest.Write(e.ctx, fd, []byte(" world"))
	e.must(err)
	fd.DecRef(e.ctx)
	if got, _ := e.readFile("/f"); got != "hello world" {
		t.Errorf("after append: %q", got)
	}
	fd, err = e.open("/f", unix.O_WRONLY|unix.O_TRUNC, 0)
	e.must(err)
	fd.DecRef(e.ctx)
	if st, _ := e.stat("/f"); st.Size != 0 {
		t.Errorf("O_TRUNC left size %d", st.Size)
	}
	_, err = e.open("/f", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	wantErr(t, "O_DIRECTORY on file", err, unix.ENOTDIR)
	e.must(e.mkdir("/d", 0o755))
	_, err = e.open("/d", unix.O_WRONLY, 0)
	wantErr(t, "open dir for writing", err, unix.EISDIR)
	_, err = e.open("/d", unix.O_CREAT|unix.O_RDONLY, 0o644)
	wantErr(t, "O_CREAT on existing dir", err, unix.EISDIR)
	_, err = e.open("/d", unix.O_CREAT|unix.O_DIRECTORY, 0o644)
	wantErr(t, "O_CREAT|O_DIRECTORY", err, unix.EINVAL)
	_, err = e.open("/missing/x", unix.O_RDONLY, 0)
	wantErr(t, "missing parent", err, unix.ENOENT)
	_, err = e.open("/f/x", unix.O_RDONLY, 0)
	wantErr(t, "file as directory", err, unix.ENOTDIR)
}

func TestSymlinks(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/d", 0o755))
	e.writeFile("/d/f", "data")
	e.must(e.symlink("d/f", "/rel"))
	e.must(e.symlink("/d", "/abs"))
	e.must(e.symlink("loop2", "/loop1"))
	e.must(e.symlink("loop1", "/loop2"))
	e.must(e.symlink("nowhere", "/dangling"))

	if got, err := e.readFile("/rel"); err != nil || got != "data" {
		t.Errorf("through relative link: %q %v", got, err)
	}
	if got, err := e.readFile("/abs/f"); err != nil || got != "data" {
		t.Errorf("through absolute link: %q %v", got, err)
	}
	st, err := e.lstat("/rel")
	e.must(err)
	if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Size != 3 {
		t.Errorf("lstat of link: mode %o size %d", st.Mode, st.Size)
	}
	_, err = e.open("/rel", unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	wantErr(t, "O_NOFOLLOW final symlink", err, unix.ELOOP)
	if got, err := e.readFile("/abs/../abs/f"); err != nil || got != "data" {
		t.Errorf("O_NOFOLLOW does not apply to earlier components: %q %v", got, err)
	}
	_, err = e.stat("/loop1")
	wantErr(t, "symlink loop", err, unix.ELOOP)
	_, err = e.stat("/dangling")
	wantErr(t, "dangling", err, unix.ENOENT)
	target, err := e.vfs.ReadlinkAt(e.ctx, e.creds, e.pop("/abs"))
	if err != nil || target != "/d" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	_, err = e.vfs.ReadlinkAt(e.ctx, e.creds, e.pop("/d"))
	wantErr(t, "readlink of a directory", err, unix.EINVAL)

	// O_CREAT follows a dangling symlink and creates its target.
	fd, err := e.open("/dangling", unix.O_CREAT|unix.O_WRONLY, 0o600)
	e.must(err)
	fd.DecRef(e.ctx)
	if _, err := e.stat("/nowhere"); err != nil {
		t.Errorf("O_CREAT through dangling symlink did not create target: %v", err)
	}
	_, err = e.open("/abs", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o600)
	wantErr(t, "O_CREAT|O_EXCL on symlink", err, unix.EEXIST)

	// A chain of 40 links resolves, 41 does not.
	e.writeFile("/t0", "end")
	for i := 1; i <= 41; i++ {
		e.must(e.symlink(fmt.Sprintf("t%d", i-1), fmt.Sprintf("/t%d", i)))
	}
	if got, err := e.readFile("/t40"); err != nil || got != "end" {
		t.Errorf("40 links: %q %v", got, err)
	}
	_, err = e.readFile("/t41")
	wantErr(t, "41 links", err, unix.ELOOP)
}

func TestTrailingSlashes(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/d", 0o755))
	e.writeFile("/f", "x")
	e.must(e.symlink("d", "/ld"))
	e.must(e.symlink("f", "/lf"))
	_, err := e.stat("/f/")
	wantErr(t, "file/", err, unix.ENOTDIR)
	_, err = e.stat("/d/")
	wantErr(t, "dir/", err, nil)
	_, err = e.stat("/d//")
	wantErr(t, "dir//", err, nil)
	st, err := e.lstat("/ld/")
	e.must(err)
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("lstat(link-to-dir/) must follow the link, got mode %o", st.Mode)
	}
	_, err = e.lstat("/lf/")
	wantErr(t, "lstat(link-to-file/)", err, unix.ENOTDIR)
	wantErr(t, "mkdir new/", e.mkdir("/new/", 0o755), nil)
	_, err = e.open("/g/", unix.O_CREAT|unix.O_WRONLY, 0o644)
	wantErr(t, "O_CREAT name/", err, unix.EISDIR)
	wantErr(t, "unlink file/", e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/f/")), unix.ENOTDIR)
	wantErr(t, "rmdir dir/", e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/new/")), nil)
	wantErr(t, "mknod x/", e.vfs.MknodAt(e.ctx, e.creds, e.pop("/x/"), &vfs.MknodOptions{Mode: unix.S_IFREG | 0o644}), unix.ENOENT)
}

func TestDotDotStaysInRoot(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/jail", 0o755))
	e.must(e.mkdir("/jail/sub", 0o755))
	e.writeFile("/secret", "outside")
	e.writeFile("/jail/secret", "inside")
	e.must(e.symlink("/secret", "/jail/sub/abs"))
	if got, _ := e.readFile("/../../secret"); got != "outside" {
		t.Errorf(".. above / must stay at /: %q", got)
	}
	jail, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/jail"), nil)
	e.must(err)
	defer jail.DecRef(e.ctx)
	je := *e
	je.root = jail
	for _, p := range []string{"/../secret", "../../secret", "sub/../../../secret", "/sub/abs"} {
		got, err := je.readFile(p)
		if err != nil || got != "inside" {
			t.Errorf("chrooted %q = %q, %v; want the jail's file", p, got, err)
		}
	}
	cwd, err := e.vfs.PathnameForGetcwd(e.ctx, jail, jail)
	if err != nil || cwd != "/" {
		t.Errorf("getcwd at chroot root = %q, %v", cwd, err)
	}
	sub, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/jail/sub"), nil)
	e.must(err)
	defer sub.DecRef(e.ctx)
	if p, _ := e.vfs.PathnameForGetcwd(e.ctx, jail, sub); p != "/sub" {
		t.Errorf("getcwd in jail = %q", p)
	}
	if p, _ := e.vfs.PathnameForGetcwd(e.ctx, e.root, sub); p != "/jail/sub" {
		t.Errorf("getcwd = %q", p)
	}
	if p, _ := e.vfs.PathnameForGetcwd(e.ctx, sub, e.root); !strings.HasPrefix(p, "(unreachable)") {
		t.Errorf("getcwd outside root = %q", p)
	}
}

func TestNameLimits(t *testing.T) {
	e := newEnv(t)
	_, err := e.stat("/" + strings.Repeat("a", 255))
	wantErr(t, "255-byte name", err, unix.ENOENT)
	_, err = e.stat("/" + strings.Repeat("a", 256))
	wantErr(t, "256-byte name", err, unix.ENAMETOOLONG)
	wantErr(t, "mkdir 256-byte name", e.mkdir("/"+strings.Repeat("b", 256), 0o755), unix.ENAMETOOLONG)
	_, err = e.stat(strings.Repeat("/a", 2048))
	wantErr(t, "4096-byte path", err, unix.ENAMETOOLONG)
	_, err = e.stat("")
	wantErr(t, "empty path", err, unix.ENOENT)
}

func TestEmptyPathAndOPath(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "abc")
	e.must(e.symlink("f", "/l"))
	fd, err := e.vfs.OpenAt(e.ctx, e.creds, vfstest.NoFollow(e.pop("/l")), &vfs.OpenOptions{Flags: unix.O_PATH | unix.O_NOFOLLOW})
	e.must(err)
	defer fd.DecRef(e.ctx)
	_, err = vfstest.Read(e.ctx, fd, 10)
	wantErr(t, "read on O_PATH", err, unix.EBADF)
	pop := &vfs.PathOperation{Root: e.root, Start: fd.VirtualDentry(), AllowEmptyPath: true}
	st, err := e.vfs.StatAt(e.ctx, e.creds, pop, &vfs.StatOptions{})
	e.must(err)
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("AT_EMPTY_PATH on O_PATH symlink fd: mode %o", st.Mode)
	}
}

func TestResolveFlags(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/base", 0o755))
	e.must(e.mkdir("/base/d", 0o755))
	e.must(e.mkdir("/base/mnt", 0o755))
	e.writeFile("/base/f", "in")
	e.writeFile("/f", "out")
	e.must(e.symlink("/f", "/base/abs"))
	e.must(e.symlink("f", "/base/rel"))
	_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/base/mnt"), "tmpfs", &vfs.MountOptions{})
	e.must(err)
	e.writeFile("/base/mnt/m", "mounted")
	base, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/base"), nil)
	e.must(err)
	defer base.DecRef(e.ctx)
	mntRoot, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/base/mnt"), nil)
	e.must(err)
	defer mntRoot.DecRef(e.ctx)
	read := func(start vfs.VirtualDentry, path string, resolve uint64) (string, error) {
		pop := vfstest.PopAt(e.root, start, path)
		pop.Resolve = resolve
		fd, err := e.vfs.OpenAt(e.ctx, e.creds, pop, &vfs.OpenOptions{Flags: unix.O_RDONLY})
		if err != nil {
			return "", err
		}
		defer fd.DecRef(e.ctx)
		b, err := vfstest.Read(e.ctx, fd, 100)
		return string(b), err
	}
	for _, c := range []struct {
		start   vfs.VirtualDentry
		path    string
		resolve uint64
		want    string
		err     error
	}{
		{base, "d/../f", linux.RESOLVE_BENEATH, "in", nil},
		{base, "../f", linux.RESOLVE_BENEATH, "", unix.EXDEV},
		{base, "/f", linux.RESOLVE_BENEATH, "", unix.EXDEV},
		{base, "abs", linux.RESOLVE_BENEATH, "", unix.EXDEV},
		{base, "rel", linux.RESOLVE_BENEATH, "in", nil},
		{base, "../f", linux.RESOLVE_IN_ROOT, "in", nil},
		{base, "/f", linux.RESOLVE_IN_ROOT, "in", nil},
		{base, "abs", linux.RESOLVE_IN_ROOT, "in", nil},
		{base, "rel", linux.RESOLVE_NO_SYMLINKS, "", unix.ELOOP},
		{base, "f", linux.RESOLVE_NO_SYMLINKS, "in", nil},
		{base, "mnt/m", linux.RESOLVE_NO_XDEV, "", unix.EXDEV},
		{base, "mnt/m", 0, "mounted", nil},
		{mntRoot, "../f", linux.RESOLVE_NO_XDEV, "", unix.EXDEV},
		{mntRoot, "../f", 0, "in", nil},
		{base, "f", linux.RESOLVE_IN_ROOT | linux.RESOLVE_BENEATH, "", unix.EINVAL},
	} {
		got, err := read(c.start, c.path, c.resolve)
		wantErr(t, fmt.Sprintf("%q resolve=%#x", c.path, c.resolve), err, c.err)
		if err == nil && got != c.want {
			t.Errorf("%q resolve=%#x read %q, want %q", c.path, c.resolve, got, c.want)
		}
	}
}

func TestMounts(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/mnt", 0o755))
	e.writeFile("/mnt/under", "hidden")
	rootSt, _ := e.stat("/")
	m, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/mnt"), "tmpfs", &vfs.MountOptions{})
	e.must(err)
	_, err = e.stat("/mnt/under")
	wantErr(t, "file under a mount is hidden", err, unix.ENOENT)
	e.writeFile("/mnt/over", "on top")
	st, err := e.stat("/mnt/over")
	e.must(err)
	if st.Dev_minor == rootSt.Dev_minor {
		t.Errorf("mounted tmpfs shares st_dev with the root")
	}
	up, err := e.stat("/mnt/..")
	e.must(err)
	if up.Ino != rootSt.Ino || up.Dev_minor != rootSt.Dev_minor {
		t.Errorf("/mnt/.. is not /")
	}
	wantErr(t, "rmdir mount point", e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/mnt")), unix.EBUSY)
	e.must(e.mkdir("/mnt/sub", 0o755))
	sub, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/mnt/sub"), nil)
	e.must(err)
	if p, err := e.vfs.PathnameForGetcwd(e.ctx, e.root, sub); p != "/mnt/sub" || err != nil {
		t.Errorf("getcwd across a mount = %q %v", p, err)
	}
	e.must(e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/mnt/sub")))
	_, err = e.vfs.PathnameForGetcwd(e.ctx, e.root, sub)
	wantErr(t, "getcwd in removed dir", err, unix.ENOENT)
	_, err = e.vfs.OpenAt(e.ctx, e.creds, vfstest.PopAt(e.root, sub, "new"), &vfs.OpenOptions{Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644})
	wantErr(t, "create in removed cwd", err, unix.ENOENT)
	sub.DecRef(e.ctx)
	wantErr(t, "rename across mounts", e.vfs.RenameAt(e.ctx, e.creds, e.pop("/mnt/over"), e.pop("/over"), &vfs.RenameOptions{}), unix.EXDEV)
	wantErr(t, "link across mounts", e.vfs.LinkAt(e.ctx, e.creds, e.pop("/mnt/over"), e.pop("/over")), unix.EXDEV)

	fd, err := e.open("/mnt/over", unix.O_RDONLY, 0)
	e.must(err)
	wantErr(t, "umount busy", e.vfs.UmountAt(e.ctx, e.creds, e.pop("/mnt"), &vfs.UmountOptions{}), unix.EBUSY)
	fd.DecRef(e.ctx)
	wantErr(t, "umount non-root", e.vfs.UmountAt(e.ctx, e.creds, e.pop("/mnt/over"), &vfs.UmountOptions{}), unix.EINVAL)
	wantErr(t, "umount", e.vfs.UmountAt(e.ctx, e.creds, e.pop("/mnt"), &vfs.UmountOptions{}), nil)
	if got, err := e.readFile("/mnt/under"); got != "hidden" || err != nil {
		t.Errorf("after umount: %q %v", got, err)
	}
	_ = m

	// Stacked mounts: the later hides the earlier; unmounting reveals it.
	_, err = e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/mnt"), "tmpfs", &vfs.MountOptions{})
	e.must(err)
	e.writeFile("/mnt/first", "1")
	_, err = e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/mnt"), "tmpfs", &vfs.MountOptions{})
	e.must(err)
	_, err = e.stat("/mnt/first")
	wantErr(t, "stacked mount hides the first", err, unix.ENOENT)
	e.must(e.vfs.UmountAt(e.ctx, e.creds, e.pop("/mnt"), &vfs.UmountOptions{}))
	_, err = e.stat("/mnt/first")
	wantErr(t, "first mount visible again", err, nil)

	// Detach works while busy; open files keep working.
	fd, err = e.open("/mnt/first", unix.O_RDONLY, 0)
	e.must(err)
	e.must(e.vfs.UmountAt(e.ctx, e.creds, e.pop("/mnt"), &vfs.UmountOptions{Detach: true}))
	if b, err := vfstest.Read(e.ctx, fd, 10); err != nil || string(b) != "1" {
		t.Errorf("read after lazy umount: %q %v", b, err)
	}
	fd.DecRef(e.ctx)

	wantErr(t, "unprivileged mount", func() error {
		_, err := e.vfs.MountAt(e.ctx, user(1000, 1000), "", e.pop("/mnt"), "tmpfs", &vfs.MountOptions{})
		return err
	}(), unix.EPERM)
	wantErr(t, "unknown type", func() error {
		_, err := e.vfs.MountAt(e.ctx, e.creds, "", e.pop("/mnt"), "nosuchfs", &vfs.MountOptions{})
		return err
	}(), unix.ENODEV)
	wantErr(t, "umount /", e.vfs.UmountAt(e.ctx, e.creds, e.pop("/"), &vfs.UmountOptions{}), unix.EINVAL)
}

func TestBindMountsAndReadOnly(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/src", 0o755))
	e.must(e.mkdir("/src/sub", 0o755))
	e.writeFile("/src/sub/f", "shared")
	e.must(e.mkdir("/dst", 0o755))
	e.must(e.mkdir("/ro", 0o755))
	_, err := e.vfs.BindAt(e.ctx, e.creds, e.pop("/src/sub"), e.pop("/dst"), false)
	e.must(err)
	_, err = e.vfs.BindAt(e.ctx, e.creds, e.pop("/src"), e.pop("/ro"), true)
	e.must(err)
	if got, _ := e.readFile("/dst/f"); got != "shared" {
		t.Errorf("bind mount content %q", got)
	}
	e.writeFile("/dst/g", "via bind")
	if got, _ := e.readFile("/src/sub/g"); got != "via bind" {
		t.Errorf("write through bind not visible at source: %q", got)
	}
	up, _ := e.stat("/dst/..")
	rootSt, _ := e.stat("/")
	if up.Ino != rootSt.Ino {
		t.Errorf("/dst/.. must be / (the mount point's parent), not the source's parent")
	}
	if got, _ := e.readFile("/ro/sub/f"); got != "shared" {
		t.Errorf("read-only bind content %q", got)
	}
	_, err = e.open("/ro/sub/f", unix.O_WRONLY, 0)
	wantErr(t, "open for write on ro mount", err, unix.EROFS)
	wantErr(t, "create on ro mount", e.create("/ro/new", 0o644), unix.EROFS)
	wantErr(t, "mkdir on ro mount", e.mkdir("/ro/newdir", 0o755), unix.EROFS)
	wantErr(t, "mkdir existing on ro mount", e.mkdir("/ro/sub", 0o755), unix.EEXIST)
	wantErr(t, "unlink on ro mount", e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/ro/sub/f")), unix.EROFS)
	wantErr(t, "chmod on ro mount", e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/ro/sub/f"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600}), unix.EROFS)
	wantErr(t, "access W_OK on ro mount", e.vfs.AccessAt(e.ctx, e.creds, e.pop("/ro/sub/f"), vfs.MayWrite), unix.EROFS)
	sfs, err := e.vfs.StatFSAt(e.ctx, e.creds, e.pop("/ro"))
	e.must(err)
	if sfs.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("statfs on ro mount lacks ST_RDONLY")
	}
}

func TestPermissions(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/root-only", 0o700))
	e.must(e.mkdir("/pub", 0o755))
	e.writeFile("/pub/secret", "s")
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/pub/secret"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o640}))
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/pub/secret"), &vfs.SetStatOptions{Mask: unix.STATX_GID, GID: 50}))
	e.writeFile("/pub/script", "#!")
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/pub/script"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o644}))

	u := e.as(user(1000, 1000))
	member := e.as(user(1001, 1001, 50))
	_, err := u.stat("/root-only/x")
	wantErr(t, "search denied", err, unix.EACCES)
	wantErr(t, "create in 0755 root dir", u.create("/pub/mine", 0o644), unix.EACCES)
	_, err = u.readFile("/pub/secret")
	wantErr(t, "other reads 0640", err, unix.EACCES)
	if got, err := member.readFile("/pub/secret"); err != nil || got != "s" {
		t.Errorf("supplementary group member read: %q %v", got, err)
	}
	_, err = member.open("/pub/secret", unix.O_WRONLY, 0)
	wantErr(t, "group write on 0640", err, unix.EACCES)

	// Capabilities: DAC_READ_SEARCH reads and searches, no writes.
	rs := user(1000, 1000)
	rs.EffectiveCaps = auth.CapabilitySetOf(auth.CAP_DAC_READ_SEARCH)
	ers := e.as(rs)
	if _, err := ers.readFile("/pub/secret"); err != nil {
		t.Errorf("CAP_DAC_READ_SEARCH read: %v", err)
	}
	_, err = ers.stat("/root-only")
	wantErr(t, "CAP_DAC_READ_SEARCH stat", err, nil)
	_, err = ers.open("/pub/secret", unix.O_WRONLY, 0)
	wantErr(t, "CAP_DAC_READ_SEARCH write", err, unix.EACCES)
	ov := user(1000, 1000)
	ov.EffectiveCaps = auth.CapabilitySetOf(auth.CAP_DAC_OVERRIDE)
	eov := e.as(ov)
	_, err = eov.open("/pub/secret", unix.O_WRONLY, 0)
	wantErr(t, "CAP_DAC_OVERRIDE write", err, nil)
	wantErr(t, "CAP_DAC_OVERRIDE exec without x bits", eov.vfs.AccessAt(e.ctx, ov, e.pop("/pub/script"), vfs.MayExec), unix.EACCES)
	wantErr(t, "root exec without x bits", e.vfs.AccessAt(e.ctx, e.creds, e.pop("/pub/script"), vfs.MayExec), unix.EACCES)
	wantErr(t, "access R_OK", u.vfs.AccessAt(e.ctx, u.creds, e.pop("/pub/script"), vfs.MayRead), nil)

	// chmod and chown rules.
	e.must(e.mkdir("/home", 0o777))
	u.writeFile("/home/u", "x")
	wantErr(t, "chmod by non-owner", member.vfs.SetStatAt(e.ctx, member.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o777}), unix.EPERM)
	wantErr(t, "chmod by owner", u.vfs.SetStatAt(e.ctx, u.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o600}), nil)
	wantErr(t, "chown to other uid", u.vfs.SetStatAt(e.ctx, u.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_UID, UID: 0}), unix.EPERM)
	wantErr(t, "chgrp to non-member group", u.vfs.SetStatAt(e.ctx, u.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_GID, GID: 50}), unix.EPERM)
	u2 := e.as(user(1000, 1000, 60))
	wantErr(t, "chgrp to member group", u2.vfs.SetStatAt(e.ctx, u2.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_GID, GID: 60}), nil)
	// chmod by a non-member of the file's group drops S_ISGID.
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_GID, GID: 70}))
	e.must(u.vfs.SetStatAt(e.ctx, u.creds, e.pop("/home/u"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o2755}))
	if st, _ := e.stat("/home/u"); st.Mode&unix.S_ISGID != 0 {
		t.Errorf("S_ISGID kept by chmod from a non-member: %o", st.Mode)
	}
	// utimes: explicit times need ownership, UTIME_NOW needs write access.
	now := &vfs.SetStatOptions{Mask: unix.STATX_ATIME | unix.STATX_MTIME, Atime: unix.Timespec{Nsec: unix.UTIME_NOW}, Mtime: unix.Timespec{Nsec: unix.UTIME_NOW}}
	wantErr(t, "utimes NOW without write", member.vfs.SetStatAt(e.ctx, member.creds, e.pop("/home/u"), now), unix.EACCES)
	explicit := &vfs.SetStatOptions{Mask: unix.STATX_MTIME | unix.STATX_ATIME, Mtime: unix.Timespec{Sec: 1000}, Atime: unix.Timespec{Nsec: unix.UTIME_OMIT}}
	wantErr(t, "utimes explicit by non-owner", member.vfs.SetStatAt(e.ctx, member.creds, e.pop("/home/u"), explicit), unix.EPERM)
	before, _ := e.stat("/home/u")
	e.must(u.vfs.SetStatAt(e.ctx, u.creds, e.pop("/home/u"), explicit))
	st, _ := e.stat("/home/u")
	if st.Mtime.Sec != 1000 || st.Atime != before.Atime {
		t.Errorf("utimes: mtime %v atime %v (before %v)", st.Mtime, st.Atime, before.Atime)
	}
}

func TestStickyAndSetgidDirectories(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/tmp", 0o777))
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/tmp"), &vfs.SetStatOptions{Mask: unix.STATX_MODE, Mode: 0o1777}))
	a, b := e.as(user(1000, 1000)), e.as(user(1001, 1001))
	a.writeFile("/tmp/a", "a")
	wantErr(t, "other user unlinks in sticky dir", b.vfs.UnlinkAt(e.ctx, b.creds, e.pop("/tmp/a")), unix.EPERM)
	wantErr(t, "other user renames away in sticky dir", b.vfs.RenameAt(e.ctx, b.creds, e.pop("/tmp/a"), e.pop("/tmp/b"), &vfs.RenameOptions{}), unix.EPERM)
	b.writeFile("/tmp/bfile", "b")
	wantErr(t, "rename over other's file in sticky dir", a.vfs.RenameAt(e.ctx, a.creds, e.pop("/tmp/a"), e.pop("/tmp/bfile"), &vfs.RenameOptions{}), unix.EPERM)
	wantErr(t, "owner unlinks in sticky dir", a.vfs.UnlinkAt(e.ctx, a.creds, e.pop("/tmp/a")), nil)
	wantErr(t, "root unlinks in sticky dir", e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/tmp/bfile")), nil)

	e.must(e.mkdir("/shared", 0o777))
	e.must(e.vfs.SetStatAt(e.ctx, e.creds, e.pop("/shared"), &vfs.SetStatOptions{Mask: unix.STATX_GID | unix.STATX_MODE, GID: 50, Mode: 0o2777}))
	a.writeFile("/shared/f", "x")
	e.must(a.mkdir("/shared/d", 0o755))
	f, _ := e.stat("/shared/f")
	d, _ := e.stat("/shared/d")
	if f.Gid != 50 || d.Gid != 50 {
		t.Errorf("setgid dir: file gid %d, dir gid %d; want 50", f.Gid, d.Gid)
	}
	if d.Mode&unix.S_ISGID == 0 {
		t.Errorf("subdirectory of setgid dir lacks S_ISGID: %o", d.Mode)
	}
	if f.Uid != 1000 {
		t.Errorf("file uid %d, want creator's 1000", f.Uid)
	}
	// A non-member may not create a set-group-ID file for the group.
	e.must(a.vfs.MknodAt(e.ctx, a.creds, e.pop("/shared/sg"), &vfs.MknodOptions{Mode: unix.S_IFREG | 0o2755}))
	if sg, _ := e.stat("/shared/sg"); sg.Mode&unix.S_ISGID != 0 {
		t.Errorf("non-member created a setgid file: %o", sg.Mode)
	}
}

func TestRename(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/a", 0o755))
	e.must(e.mkdir("/a/b", 0o755))
	e.must(e.mkdir("/c", 0o755))
	e.writeFile("/f", "F")
	e.writeFile("/g", "G")
	ren := func(from, to string, flags uint32) error {
		return e.vfs.RenameAt(e.ctx, e.creds, e.pop(from), e.pop(to), &vfs.RenameOptions{Flags: flags})
	}
	wantErr(t, "dir into itself", ren("/a", "/a/b/x", 0), unix.EINVAL)
	wantErr(t, "dir onto its child", ren("/a", "/a/b", 0), unix.EINVAL)
	wantErr(t, "NOREPLACE onto existing", ren("/f", "/g", linux.RENAME_NOREPLACE), unix.EEXIST)
	wantErr(t, "NOREPLACE|EXCHANGE", ren("/f", "/g", linux.RENAME_NOREPLACE|linux.RENAME_EXCHANGE), unix.EINVAL)
	wantErr(t, "EXCHANGE with missing", ren("/f", "/nope", linux.RENAME_EXCHANGE), unix.ENOENT)
	wantErr(t, "EXCHANGE", ren("/f", "/g", linux.RENAME_EXCHANGE), nil)
	if f, _ := e.readFile("/f"); f != "G" {
		t.Errorf("after exchange /f = %q", f)
	}
	wantErr(t, "file over dir", ren("/f", "/c", 0), unix.EISDIR)
	wantErr(t, "dir over file", ren("/c", "/f", 0), unix.ENOTDIR)
	e.writeFile("/a/b/x", "")
	wantErr(t, "dir over non-empty dir", ren("/c", "/a", 0), unix.ENOTEMPTY)
	wantErr(t, "replace file", ren("/f", "/g", 0), nil)
	if g, _ := e.readFile("/g"); g != "G" {
		t.Errorf("after replace /g = %q", g)
	}
	_, err := e.stat("/f")
	wantErr(t, "old name gone", err, unix.ENOENT)
	wantErr(t, "missing source", ren("/f", "/h", 0), unix.ENOENT)
	wantErr(t, "rename .", ren("/a/.", "/z", 0), unix.EBUSY)

	// Moving a directory moves the ".." link count.
	rootBefore, _ := e.stat("/")
	cBefore, _ := e.stat("/c")
	wantErr(t, "move dir", ren("/a/b", "/c/b", 0), nil)
	rootAfter, _ := e.stat("/")
	cAfter, _ := e.stat("/c")
	aAfter, _ := e.stat("/a")
	if cAfter.Nlink != cBefore.Nlink+1 || aAfter.Nlink != 2 || rootAfter.Nlink != rootBefore.Nlink {
		t.Errorf("nlinks after dir move: /c %d→%d, /a %d", cBefore.Nlink, cAfter.Nlink, aAfter.Nlink)
	}
	if _, err := e.stat("/c/b/x"); err != nil {
		t.Errorf("moved subtree: %v", err)
	}
	// Hard links to one file: rename is a no-op.
	e.must(e.vfs.LinkAt(e.ctx, e.creds, e.pop("/g"), e.pop("/g2")))
	wantErr(t, "rename onto own hard link", ren("/g", "/g2", 0), nil)
	if _, err := e.stat("/g"); err != nil {
		t.Errorf("rename onto hard link removed source: %v", err)
	}
	// An open directory that was renamed reports its new path.
	d, err := e.vfs.GetDentryAt(e.ctx, e.creds, e.pop("/c/b"), nil)
	e.must(err)
	defer d.DecRef(e.ctx)
	e.must(ren("/c", "/renamed", 0))
	if p, _ := e.vfs.PathnameForGetcwd(e.ctx, e.root, d); p != "/renamed/b" {
		t.Errorf("getcwd after rename = %q", p)
	}
}

func TestUnlinkRmdirLink(t *testing.T) {
	e := newEnv(t)
	e.must(e.mkdir("/d", 0o755))
	e.writeFile("/d/f", "keep")
	wantErr(t, "rmdir non-empty", e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/d")), unix.ENOTEMPTY)
	wantErr(t, "unlink dir", e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/d")), unix.EISDIR)
	wantErr(t, "rmdir file", e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/d/f")), unix.ENOTDIR)
	wantErr(t, "rmdir .", e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/d/.")), unix.EINVAL)
	wantErr(t, "rmdir ..", e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/d/..")), unix.ENOTEMPTY)
	wantErr(t, "link dir", e.vfs.LinkAt(e.ctx, e.creds, e.pop("/d"), e.pop("/d2")), unix.EPERM)
	e.must(e.vfs.LinkAt(e.ctx, e.creds, e.pop("/d/f"), e.pop("/h")))
	wantErr(t, "link onto existing", e.vfs.LinkAt(e.ctx, e.creds, e.pop("/d/f"), e.pop("/h")), unix.EEXIST)
	st, _ := e.stat("/h")
	if st.Nlink != 2 {
		t.Errorf("nlink after link = %d", st.Nlink)
	}
	fd, err := e.open("/d/f", unix.O_RDWR, 0)
	e.must(err)
	defer fd.DecRef(e.ctx)
	e.must(e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/d/f")))
	e.must(e.vfs.UnlinkAt(e.ctx, e.creds, e.pop("/h")))
	fst, err := fd.Stat(e.ctx, vfs.StatOptions{})
	e.must(err)
	if fst.Nlink != 0 {
		t.Errorf("nlink of fully unlinked open file = %d", fst.Nlink)
	}
	if b, err := vfstest.Read(e.ctx, fd, 10); string(b) != "keep" || err != nil {
		t.Errorf("read after unlink: %q %v", b, err)
	}
	if p, _ := e.vfs.PathnameWithDeleted(e.ctx, e.root, fd.VirtualDentry()); p != "/d/f (deleted)" {
		t.Errorf("PathnameWithDeleted = %q", p)
	}
	e.must(e.vfs.RmdirAt(e.ctx, e.creds, e.pop("/d")))
	_, err = e.stat("/d")
	wantErr(t, "stat removed dir", err, unix.ENOENT)
}

func TestMknodAndSockets(t *testing.T) {
	e := newEnv(t)
	e.must(e.vfs.MknodAt(e.ctx, e.creds, e.pop("/sock"), &vfs.MknodOptions{Mode: unix.S_IFSOCK | 0o755}))
	_, err := e.open("/sock", unix.O_RDONLY, 0)
	wantErr(t, "open socket inode", err, unix.ENXIO)
	e.must(e.vfs.MknodAt(e.ctx, e.creds, e.pop("/chr"), &vfs.MknodOptions{Mode: unix.S_IFCHR | 0o666, DevMajor: 250, DevMinor: 1}))
	st, _ := e.stat("/chr")
	if st.Rdev_major != 250 || st.Rdev_minor != 1 || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("device node stat: %d:%d mode %o", st.Rdev_major, st.Rdev_minor, st.Mode)
	}
	_, err = e.open("/chr", unix.O_RDONLY, 0)
	wantErr(t, "open unregistered device", err, unix.ENXIO)
	wantErr(t, "mknod chr unprivileged", e.vfs.MknodAt(e.ctx, user(1, 1), e.pop("/chr2"), &vfs.MknodOptions{Mode: unix.S_IFCHR | 0o666}), unix.EPERM)
	wantErr(t, "mknod dir", e.vfs.MknodAt(e.ctx, e.creds, e.pop("/dd"), &vfs.MknodOptions{Mode: unix.S_IFDIR | 0o666}), unix.EPERM)
	wantErr(t, "mknod existing", e.vfs.MknodAt(e.ctx, e.creds, e.pop("/sock"), &vfs.MknodOptions{Mode: unix.S_IFIFO | 0o666}), unix.EEXIST)
}

func TestXattrs(t *testing.T) {
	e := newEnv(t)
	e.writeFile("/f", "")
	e.must(e.symlink("f", "/l"))
	p := e.pop("/f")
	e.must(e.vfs.SetXattrAt(e.ctx, e.creds, p, "user.a", "1", 0))
	e.must(e.vfs.SetXattrAt(e.ctx, e.creds, p, "trusted.t", "2", 0))
	wantErr(t, "XATTR_CREATE existing", e.vfs.SetXattrAt(e.ctx, e.creds, p, "user.a", "x", unix.XATTR_CREATE), unix.EEXIST)
	wantErr(t, "XATTR_REPLACE missing", e.vfs.SetXattrAt(e.ctx, e.creds, p, "user.b", "x", unix.XATTR_REPLACE), unix.ENODATA)
	wantErr(t, "unknown namespace", e.vfs.SetXattrAt(e.ctx, e.creds, p, "bogus.x", "x", 0), unix.EOPNOTSUPP)
	wantErr(t, "user.* on symlink", e.vfs.SetXattrAt(e.ctx, e.creds, vfstest.NoFollow(e.pop("/l")), "user.a", "x", 0), unix.EPERM)
	if v, err := e.vfs.GetXattrAt(e.ctx, e.creds, p, "user.a"); v != "1" || err != nil {
		t.Errorf("get user.a = %q %v", v, err)
	}
	names, _ := e.vfs.ListXattrAt(e.ctx, e.creds, p)
	if strings.Join(names, ",") != "trusted.t,user.a" {
		t.Errorf("root list = %v", names)
	}
	u := user(1000, 1000)
	names, _ = e.vfs.ListXattrAt(e.ctx, u, p)
	if strings.Join(names, ",") != "user.a" {
		t.Errorf("user list = %v", names)
	}
	_, err := e.vfs.GetXattrAt(e.ctx, u, p, "trusted.t")
	wantErr(t, "user reads trusted.*", err, unix.ENODATA)
	wantErr(t, "user writes user.* without write permission", e.vfs.SetXattrAt(e.ctx, u, p, "user.z", "1", 0), unix.EACCES)
	e.must(e.vfs.RemoveXattrAt(e.ctx, e.creds, p, "user.a"))
	_, err = e.vfs.GetXattrAt(e.ctx, e.creds, p, "user.a")
	wantErr(t, "removed xattr", err, unix.ENODATA)
}
