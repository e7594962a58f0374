package linux

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// createFile makes path in the task's root holding data and returns it
// open read-write.
func createFile(t *testing.T, task *kernel.Task, path string, data []byte) *vfs.FileDescription {
	t.Helper()
	root := task.FSContext().Root()
	defer root.DecRef(task)
	f, err := task.Kernel().VFS().OpenAt(task, task.Credentials(), &vfs.PathOperation{Root: root, Start: root, Path: path},
		&vfs.OpenOptions{Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o644})
	if err != nil {
		t.Fatalf("creating %s: %v", path, err)
	}
	src, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: data}, 0, int64(len(data)), usermem.IOOpts{})
	if n, err := f.PWrite(task, src, 0, vfs.WriteOptions{}); err != nil || n != int64(len(data)) {
		t.Fatalf("writing %s: %d, %v", path, n, err)
	}
	return f
}

func readAt(t *testing.T, f *vfs.FileDescription, b []byte, off int64) {
	t.Helper()
	dst, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: b}, 0, int64(len(b)), usermem.IOOpts{})
	if _, err := f.PRead(context.Background(), dst, off, vfs.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
}

// page returns a page of the task's memory for syscall arguments,
// mapped on first use.
func page(t *testing.T, task *kernel.Task) hostarch.Addr {
	t.Helper()
	if a, ok := pages[task]; ok {
		return a
	}
	a, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4*4096, uintptr(linux.PROT_READ|linux.PROT_WRITE), linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
	if err != nil {
		t.Fatal(err)
	}
	pages[task] = hostarch.Addr(a)
	t.Cleanup(func() { delete(pages, task) })
	return hostarch.Addr(a)
}

var pages = map[*kernel.Task]hostarch.Addr{}

// cstr writes s NUL-terminated at off in the scratch page.
func cstr(t *testing.T, task *kernel.Task, off int, s string) uintptr {
	a := page(t, task) + hostarch.Addr(off)
	task.CopyOut(a, append([]byte(s), 0))
	return uintptr(a)
}

func TestOpenReadWriteSeekStat(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	buf := page(t, task) + 2048
	path := cstr(t, task, 0, "/tmpfile")
	if _, err := call(linux.SYS_OPEN, path, linux.O_RDONLY); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("open of a missing file: %v", err)
	}
	call(linux.SYS_UMASK, 0o027)
	fd, err := call(linux.SYS_OPENAT, uintptr(0xffffff9c), path, linux.O_RDWR|linux.O_CREAT|linux.O_EXCL|linux.O_CLOEXEC, 0o666)
	if err != nil {
		t.Fatalf("openat O_CREAT: %v", err)
	}
	if fd != 0 {
		t.Fatalf("first free descriptor is %d, want 0", fd)
	}
	if _, err := call(linux.SYS_OPEN, path, linux.O_RDWR|linux.O_CREAT|linux.O_EXCL, 0o666); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if fl, _ := call(linux.SYS_FCNTL, fd, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Fatalf("F_GETFD = %d, want FD_CLOEXEC", fl)
	}
	task.CopyOut(buf, []byte("hello world"))
	if n, err := call(linux.SYS_WRITE, fd, uintptr(buf), 11); err != nil || n != 11 {
		t.Fatalf("write = %d, %v", n, err)
	}
	if off, err := call(linux.SYS_LSEEK, fd, 6, linux.SEEK_SET); err != nil || off != 6 {
		t.Fatalf("lseek = %d, %v", off, err)
	}
	if _, err := call(linux.SYS_LSEEK, fd, 0, 7); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("lseek with a bad whence: %v", err)
	}
	if n, err := call(linux.SYS_READ, fd, uintptr(buf+100), 100); err != nil || n != 5 {
		t.Fatalf("read = %d, %v", n, err)
	}
	got := make([]byte, 5)
	task.CopyIn(buf+100, got)
	if string(got) != "world" {
		t.Fatalf("read %q", got)
	}
	if n, err := call(linux.SYS_PREAD64, fd, uintptr(buf+100), 5, 0); err != nil || n != 5 {
		t.Fatalf("pread64 = %d, %v", n, err)
	}
	task.CopyIn(buf+100, got)
	if string(got) != "hello" {
		t.Fatalf("pread64 read %q", got)
	}
	// stat and fstat agree; the umask applied to the mode.
	st := make([]byte, linux.SizeOfStat)
	if _, err := call(linux.SYS_STAT, path, uintptr(buf+200)); err != nil {
		t.Fatalf("stat: %v", err)
	}
	task.CopyIn(buf+200, st)
	var s linux.Stat
	s.UnmarshalBytes(st)
	if s.Mode != unix.S_IFREG|0o640 || s.Size != 11 || s.Nlink != 1 {
		t.Fatalf("stat: mode %o size %d nlink %d, want regular 0640, 11 bytes, 1 link", s.Mode, s.Size, s.Nlink)
	}
	if _, err := call(linux.SYS_FSTAT, fd, uintptr(buf+200)); err != nil {
		t.Fatalf("fstat: %v", err)
	}
	var fs linux.Stat
	task.CopyIn(buf+200, st)
	fs.UnmarshalBytes(st)
	if fs.Ino != s.Ino || fs.Dev != s.Dev {
		t.Fatalf("fstat names inode %d/%d, stat %d/%d", fs.Dev, fs.Ino, s.Dev, s.Ino)
	}
	if _, err := call(linux.SYS_NEWFSTATAT, fd, cstr(t, task, 1024, ""), uintptr(buf+200), linux.AT_EMPTY_PATH); err != nil {
		t.Fatalf("newfstatat AT_EMPTY_PATH: %v", err)
	}
	if _, err := call(linux.SYS_NEWFSTATAT, fd, cstr(t, task, 1024, ""), uintptr(buf+200), 0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("newfstatat of an empty path: %v", err)
	}
	if _, err := call(linux.SYS_FSTAT, 99, uintptr(buf+200)); !errors.Is(err, unix.EBADF) {
		t.Fatalf("fstat of a closed fd: %v", err)
	}
	if _, err := call(linux.SYS_ACCESS, path, linux.R_OK|linux.W_OK); err != nil {
		t.Fatalf("access R_OK|W_OK as root: %v", err)
	}
	if _, err := call(linux.SYS_ACCESS, path, linux.X_OK); !errors.Is(err, unix.EACCES) {
		t.Fatalf("access X_OK of a 0640 file: %v", err)
	}
	if _, err := call(linux.SYS_CLOSE, fd); err != nil {
		t.Fatal(err)
	}
	if _, err := call(linux.SYS_CLOSE, fd); !errors.Is(err, unix.EBADF) {
		t.Fatalf("second close: %v", err)
	}
}

func TestDirectories(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	buf := page(t, task) + 2048
	if _, err := call(linux.SYS_MKDIR, cstr(t, task, 0, "/d"), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	if _, err := call(linux.SYS_MKDIR, cstr(t, task, 0, "/d"), 0o755); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second mkdir: %v", err)
	}
	if _, err := call(linux.SYS_CHDIR, cstr(t, task, 0, "/d")); err != nil {
		t.Fatalf("chdir: %v", err)
	}
	n, err := call(linux.SYS_GETCWD, uintptr(buf), 100)
	got := make([]byte, n)
	task.CopyIn(buf, got)
	if err != nil || string(got) != "/d\x00" {
		t.Fatalf("getcwd = %q, %v", got, err)
	}
	if _, err := call(linux.SYS_GETCWD, uintptr(buf), 2); !errors.Is(err, unix.ERANGE) {
		t.Fatalf("getcwd into a short buffer: %v", err)
	}
	// Relative paths start at the cwd.
	fd, err := call(linux.SYS_OPEN, cstr(t, task, 0, "f"), linux.O_WRONLY|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatalf("relative create: %v", err)
	}
	call(linux.SYS_CLOSE, fd)
	if _, err := call(linux.SYS_ACCESS, cstr(t, task, 0, "/d/f"), linux.F_OK); err != nil {
		t.Fatalf("file created relative to the cwd is not at /d/f: %v", err)
	}
	if _, err := call(linux.SYS_RENAME, cstr(t, task, 0, "f"), cstr(t, task, 100, "g")); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if _, err := call(linux.SYS_SYMLINK, cstr(t, task, 0, "g"), cstr(t, task, 100, "link")); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	n, err = call(linux.SYS_READLINK, cstr(t, task, 0, "link"), uintptr(buf), 100)
	got = make([]byte, n)
	task.CopyIn(buf, got)
	if err != nil || string(got) != "g" {
		t.Fatalf("readlink = %q, %v", got, err)
	}
	dfd, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/d"), linux.O_RDONLY|linux.O_DIRECTORY)
	if err != nil {
		t.Fatalf("open O_DIRECTORY: %v", err)
	}
	n, err = call(linux.SYS_GETDENTS64, dfd, uintptr(buf), 1024)
	if err != nil {
		t.Fatalf("getdents64: %v", err)
	}
	raw := make([]byte, n)
	task.CopyIn(buf, raw)
	names := map[string]uint8{}
	for len(raw) > 0 {
		var d linux.Dirent64
		d.UnmarshalBytes(raw)
		name := raw[linux.SizeOfDirent64Header:d.Reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		names[string(name)] = d.Type
		raw = raw[d.Reclen:]
	}
	if len(names) != 4 || names["g"] != unix.DT_REG || names["link"] != unix.DT_LNK || names["."] != unix.DT_DIR {
		t.Fatalf("getdents64 entries %v", names)
	}
	if n, err := call(linux.SYS_GETDENTS64, dfd, uintptr(buf), 1024); err != nil || n != 0 {
		t.Fatalf("getdents64 at the end = %d, %v", n, err)
	}
	if _, err := call(linux.SYS_OPENAT, dfd, cstr(t, task, 0, "g"), linux.O_RDONLY|linux.O_DIRECTORY); !errors.Is(err, unix.ENOTDIR) {
		t.Fatalf("O_DIRECTORY on a file: %v", err)
	}
	if _, err := call(linux.SYS_OPENAT, dfd, cstr(t, task, 0, "link"), linux.O_RDONLY|linux.O_NOFOLLOW); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("O_NOFOLLOW on a symlink: %v", err)
	}
	if _, err := call(linux.SYS_RMDIR, cstr(t, task, 0, "/d")); !errors.Is(err, unix.ENOTEMPTY) {
		t.Fatalf("rmdir of a non-empty directory: %v", err)
	}
	for _, name := range []string{"g", "link"} {
		if _, err := call(linux.SYS_UNLINKAT, dfd, cstr(t, task, 0, name), 0); err != nil {
			t.Fatalf("unlinkat %s: %v", name, err)
		}
	}
	if _, err := call(linux.SYS_FCHDIR, dfd); err != nil {
		t.Fatalf("fchdir: %v", err)
	}
	if _, err := call(linux.SYS_UNLINKAT, uintptr(0xffffff9c), cstr(t, task, 0, "/d"), linux.AT_REMOVEDIR); err != nil {
		t.Fatalf("unlinkat AT_REMOVEDIR: %v", err)
	}
	if _, err := call(linux.SYS_GETCWD, uintptr(buf), 100); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("getcwd in a removed directory: %v", err)
	}
	if _, err := call(linux.SYS_LSEEK, dfd, 0, linux.SEEK_SET); err != nil {
		t.Fatalf("lseek: %v", err)
	}
	if _, err := call(linux.SYS_GETDENTS64, dfd, uintptr(buf), 1024); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("getdents64 of a removed directory: %v, want ENOENT", err)
	}
}

func TestPipeDupFcntl(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	buf := page(t, task)
	if _, err := call(linux.SYS_PIPE2, uintptr(buf), linux.O_NONBLOCK); err != nil {
		t.Fatalf("pipe2: %v", err)
	}
	var b [8]byte
	task.CopyIn(buf, b[:])
	r, w := uintptr(binary.LittleEndian.Uint32(b[:])), uintptr(binary.LittleEndian.Uint32(b[4:]))
	if r != 0 || w != 2 {
		t.Fatalf("pipe fds %d, %d; want 0 and 2 (1 is stdout)", r, w)
	}
	if _, err := call(linux.SYS_READ, r, uintptr(buf+100), 10); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of an empty non-blocking pipe: %v", err)
	}
	if fl, _ := call(linux.SYS_FCNTL, r, linux.F_GETFL); fl&linux.O_NONBLOCK == 0 {
		t.Fatalf("F_GETFL %#o lacks O_NONBLOCK", fl)
	}
	d, err := call(linux.SYS_FCNTL, w, linux.F_DUPFD_CLOEXEC, 10)
	if err != nil || d != 10 {
		t.Fatalf("F_DUPFD_CLOEXEC = %d, %v", d, err)
	}
	if fl, _ := call(linux.SYS_FCNTL, d, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Fatalf("dup's F_GETFD %d", fl)
	}
	call(linux.SYS_CLOSE, w)
	task.CopyOut(buf+200, []byte("xyz"))
	if n, err := call(linux.SYS_WRITE, d, uintptr(buf+200), 3); err != nil || n != 3 {
		t.Fatalf("write through the dup = %d, %v", n, err)
	}
	if n, err := call(linux.SYS_READ, r, uintptr(buf+100), 10); err != nil || n != 3 {
		t.Fatalf("read = %d, %v", n, err)
	}
	if _, err := call(linux.SYS_DUP2, d, 5); err != nil {
		t.Fatal(err)
	}
	call(linux.SYS_CLOSE, d)
	call(linux.SYS_CLOSE, 5)
	// Every writer gone: EOF.
	if n, err := call(linux.SYS_READ, r, uintptr(buf+100), 10); err != nil || n != 0 {
		t.Fatalf("read after the writers closed = %d, %v", n, err)
	}
	if _, err := call(linux.SYS_IOCTL, r, linux.TCGETS, uintptr(buf+300)); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("TCGETS on a pipe: %v", err)
	}
	if _, err := call(linux.SYS_IOCTL, r, linux.FIOCLEX); err != nil {
		t.Fatal(err)
	}
	if fl, _ := call(linux.SYS_FCNTL, r, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Fatalf("FIOCLEX did not set close-on-exec")
	}
}

func TestForkCopiesAndCloneFilesShares(t *testing.T) {
	task, _ := newTask(t)
	fdt := task.FDTable()
	forked := fdt.Fork()
	defer forked.DecRef(task)
	if _, err := forked.NewFD(0, 1024, fdt.GetFile(1), kernel.FDFlags{}); err != nil {
		t.Fatal(err)
	}
	// fdt.GetFile's reference is the test's to drop; the table took its own.
	if f := fdt.GetFile(0); f != nil {
		f.DecRef(task)
		t.Fatalf("a descriptor opened in the forked table appeared in the parent's")
	}
	fsc := task.FSContext()
	copied := fsc.Fork()
	defer copied.DecRef(task)
	copied.SwapUmask(0o077)
	if fsc.Umask() == 0o077 {
		t.Fatalf("a forked fs context shares its umask")
	}
}

// pipeFDs makes a pipe with flags and returns its read and write ends.
func pipeFDs(t *testing.T, task *kernel.Task, flags uintptr) (uintptr, uintptr) {
	t.Helper()
	buf := page(t, task) + 4000
	if _, err := task.ExecuteSyscall(linux.SYS_PIPE2, args(uintptr(buf), flags)); err != nil {
		t.Fatalf("pipe2: %v", err)
	}
	var b [8]byte
	task.CopyIn(buf, b[:])
	return uintptr(binary.LittleEndian.Uint32(b[:])), uintptr(binary.LittleEndian.Uint32(b[4:]))
}

func TestBlockingReadWaitsForData(t *testing.T) {
	task, _ := newTask(t)
	r, w := pipeFDs(t, task, 0)
	buf := page(t, task)
	type result struct {
		n   uintptr
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := task.ExecuteSyscall(linux.SYS_READ, args(r, uintptr(buf), 10))
		done <- result{n, err}
	}()
	// The writer goes straight to the file, not through the task, which
	// is busy in read.
	wf := task.FDTable().GetFile(int32(w))
	defer wf.DecRef(task)
	src, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: []byte("abc")}, 0, 3, usermem.IOOpts{})
	if _, err := wf.Write(task, src, vfs.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.n != 3 {
		t.Fatalf("blocking read = %d, %v; want the 3 bytes written", res.n, res.err)
	}
	got := make([]byte, 3)
	task.CopyIn(buf, got)
	if string(got) != "abc" {
		t.Fatalf("read %q", got)
	}
}

func TestBlockingReadInterruptedBySignal(t *testing.T) {
	task, _ := newTask(t)
	r, _ := pipeFDs(t, task, 0)
	// A handler, so the signal interrupts rather than kills.
	if _, err := task.SigAction(linux.SIGUSR1, &linux.Sigaction{Handler: 0x1000, Flags: linux.SA_RESTORER, Restorer: 0x2000}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := task.ExecuteSyscall(linux.SYS_READ, args(r, uintptr(page(t, task)), 10))
		done <- err
	}()
	if err := task.SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGUSR1), Code: linux.SI_USER}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, linux.ERESTARTSYS) {
		t.Fatalf("read interrupted by a handled signal: %v, want ERESTARTSYS", err)
	}
}

// stringArray writes a NULL-terminated array of string pointers at off
// in the scratch page (strings after it) and returns its address.
func stringArray(t *testing.T, task *kernel.Task, off int, ss ...string) uintptr {
	base := page(t, task) + hostarch.Addr(off)
	strOff := off + 8*(len(ss)+1)
	ptrs := make([]byte, 8*(len(ss)+1))
	for i, s := range ss {
		binary.LittleEndian.PutUint64(ptrs[8*i:], uint64(cstr(t, task, strOff, s)))
		strOff += len(s) + 1
	}
	task.CopyOut(base, ptrs)
	return uintptr(base)
}

func TestExecveClosesCloseOnExecFiles(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	kept, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/kept"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/closed"), linux.O_RDWR|linux.O_CREAT|linux.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	path := staticTrue(t)
	if _, err := call(linux.SYS_EXECVE, cstr(t, task, 0, "/nonexistent"), stringArray(t, task, 1024, "x"), 0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("execve of a missing file: %v", err)
	}
	if _, err := call(linux.SYS_EXECVE, cstr(t, task, 0, "/kept"), stringArray(t, task, 1024, "x"), 0); !errors.Is(err, unix.EACCES) {
		t.Fatalf("execve of a non-executable file: %v, want EACCES", err)
	}
	if _, err := call(linux.SYS_EXECVE, cstr(t, task, 0, "/"), stringArray(t, task, 1024, "x"), 0); !errors.Is(err, unix.EACCES) {
		t.Fatalf("execve of a directory: %v, want EACCES", err)
	}
	if _, err := call(linux.SYS_EXECVE, cstr(t, task, 0, path), stringArray(t, task, 1024, "t", "arg"), 0); !errors.Is(err, kernel.ErrNoSyscallReturn) {
		t.Fatalf("execve: %v", err)
	}
	if f := task.FDTable().GetFile(int32(closed)); f != nil {
		f.DecRef(task)
		t.Fatalf("close-on-exec descriptor %d survived execve", closed)
	}
	f := task.FDTable().GetFile(int32(kept))
	if f == nil {
		t.Fatalf("descriptor %d without close-on-exec was closed by execve", kept)
	}
	f.DecRef(task)
}

func TestCloneFSSharesAndForkCopies(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	shared, err := call(linux.SYS_CLONE, linux.CLONE_FS|uintptr(unix.SIGCHLD), 0, 0, 0, 0)
	if err != nil {
		t.Fatalf("clone(CLONE_FS): %v", err)
	}
	forked, err := call(linux.SYS_FORK)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := call(linux.SYS_UMASK, 0o077)
	k := task.Kernel()
	if got := k.TaskWithID(kernel.ThreadID(shared)).FSContext().Umask(); got != 0o077 {
		t.Fatalf("CLONE_FS child's umask %#o after the parent set 077", got)
	}
	if got := k.TaskWithID(kernel.ThreadID(forked)).FSContext().Umask(); got != uint32(old) {
		t.Fatalf("forked child's umask %#o, want the %#o it was forked with", got, old)
	}
	if _, err := call(linux.SYS_MKDIR, cstr(t, task, 0, "/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := call(linux.SYS_CHDIR, cstr(t, task, 0, "/sub")); err != nil {
		t.Fatal(err)
	}
	cwdName := func(tid uintptr) string {
		c := k.TaskWithID(kernel.ThreadID(tid)).FSContext().WorkingDirectory()
		defer c.DecRef(task)
		return c.Dentry().Name()
	}
	if cwdName(shared) != "sub" || cwdName(forked) == "sub" {
		t.Fatalf("after the parent's chdir: CLONE_FS child in %q, forked child in %q", cwdName(shared), cwdName(forked))
	}
}

func TestXattrs(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	fd, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/x"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	path, name, val, out := cstr(t, task, 0, "/x"), cstr(t, task, 100, "user.colour"), cstr(t, task, 200, "blue"), page(t, task)+1024
	if _, err := call(linux.SYS_GETXATTR, path, name, uintptr(out), 100); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattr of a missing attribute: %v", err)
	}
	if _, err := call(linux.SYS_SETXATTR, path, name, val, 4, 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	if _, err := call(linux.SYS_SETXATTR, path, name, val, 4, unix.XATTR_CREATE); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("setxattr XATTR_CREATE of an existing attribute: %v", err)
	}
	if n, err := call(linux.SYS_FGETXATTR, fd, name, 0, 0); err != nil || n != 4 {
		t.Fatalf("fgetxattr size probe = %d, %v", n, err)
	}
	if _, err := call(linux.SYS_LGETXATTR, path, name, uintptr(out), 2); !errors.Is(err, unix.ERANGE) {
		t.Fatalf("lgetxattr into a short buffer: %v", err)
	}
	n, err := call(linux.SYS_GETXATTR, path, name, uintptr(out), 100)
	got := make([]byte, n)
	task.CopyIn(out, got)
	if err != nil || string(got) != "blue" {
		t.Fatalf("getxattr = %q, %v", got, err)
	}
	n, err = call(linux.SYS_LISTXATTR, path, uintptr(out), 100)
	got = make([]byte, n)
	task.CopyIn(out, got)
	if err != nil || string(got) != "user.colour\x00" {
		t.Fatalf("listxattr = %q, %v", got, err)
	}
	if _, err := call(linux.SYS_FREMOVEXATTR, fd, name); err != nil {
		t.Fatalf("fremovexattr: %v", err)
	}
	if _, err := call(linux.SYS_REMOVEXATTR, path, name); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("second removexattr: %v", err)
	}
	if _, err := call(linux.SYS_GETXATTR, path, cstr(t, task, 300, ""), uintptr(out), 100); !errors.Is(err, unix.ERANGE) {
		t.Fatalf("getxattr of an empty name: %v", err)
	}
}

func writePollfds(task *kernel.Task, addr hostarch.Addr, pfds ...linux.Pollfd) {
	b := make([]byte, len(pfds)*linux.SizeOfPollfd)
	rest := b
	for i := range pfds {
		rest = pfds[i].MarshalBytes(rest)
	}
	task.CopyOut(addr, b)
}

func readPollfds(task *kernel.Task, addr hostarch.Addr, n int) []linux.Pollfd {
	b := make([]byte, n*linux.SizeOfPollfd)
	task.CopyIn(addr, b)
	out := make([]linux.Pollfd, n)
	rest := b
	for i := range out {
		rest = out[i].UnmarshalBytes(rest)
	}
	return out
}

func TestPollSelectEpoll(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	r, w := pipeFDs(t, task, linux.O_NONBLOCK)
	buf := page(t, task)
	writePollfds(task, buf,
		linux.Pollfd{Fd: int32(r), Events: int16(unix.POLLIN)},
		linux.Pollfd{Fd: int32(w), Events: int16(unix.POLLOUT)},
		linux.Pollfd{Fd: 99, Events: int16(unix.POLLIN)},
		linux.Pollfd{Fd: -1, Events: int16(unix.POLLIN)})
	n, err := call(linux.SYS_POLL, uintptr(buf), 4, 0)
	got := readPollfds(task, buf, 4)
	if err != nil || n != 2 || got[0].Revents != 0 || got[1].Revents != int16(unix.POLLOUT) || got[2].Revents != int16(unix.POLLNVAL) || got[3].Revents != 0 {
		t.Fatalf("poll = %d, %v, %+v", n, err, got)
	}

	ep, err := call(linux.SYS_EPOLL_CREATE1, unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatalf("epoll_create1: %v", err)
	}
	ev := buf + 512
	var b [12]byte
	binary.LittleEndian.PutUint32(b[0:], unix.EPOLLIN)
	binary.LittleEndian.PutUint64(b[4:], 0x1234_5678_9abc)
	task.CopyOut(ev, b[:])
	if _, err := call(linux.SYS_EPOLL_CTL, ep, unix.EPOLL_CTL_ADD, r, uintptr(ev)); err != nil {
		t.Fatalf("epoll_ctl ADD: %v", err)
	}
	if _, err := call(linux.SYS_EPOLL_CTL, ep, unix.EPOLL_CTL_ADD, r, uintptr(ev)); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second epoll_ctl ADD: %v", err)
	}
	if n, err := call(linux.SYS_EPOLL_WAIT, ep, uintptr(buf+1024), 8, 0); err != nil || n != 0 {
		t.Fatalf("epoll_wait with nothing ready = %d, %v", n, err)
	}
	// Regular files and directories are always ready: epoll refuses them.
	for _, p := range []string{"/epoll-regular", "/"} {
		flags := uintptr(linux.O_RDONLY | linux.O_CREAT)
		if p == "/" {
			flags = linux.O_RDONLY | linux.O_DIRECTORY
		}
		fd, err := call(linux.SYS_OPEN, cstr(t, task, 2048, p), flags, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := call(linux.SYS_EPOLL_CTL, ep, unix.EPOLL_CTL_ADD, fd, uintptr(ev)); !errors.Is(err, unix.EPERM) {
			t.Errorf("epoll_ctl ADD of %s: %v, want EPERM", p, err)
		}
	}

	// A blocking poll wakes when the pipe gets data.
	writePollfds(task, buf, linux.Pollfd{Fd: int32(r), Events: int16(unix.POLLIN)})
	done := make(chan error, 1)
	go func() {
		_, err := call(linux.SYS_POLL, uintptr(buf), 1, ^uintptr(0))
		done <- err
	}()
	wf := task.FDTable().GetFile(int32(w))
	src, _ := usermem.BytesSequence(&usermem.BytesIO{Bytes: []byte("!")}, 0, 1, usermem.IOOpts{})
	if _, err := wf.Write(task, src, vfs.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	wf.DecRef(task)
	if err := <-done; err != nil {
		t.Fatalf("blocking poll: %v", err)
	}
	if got := readPollfds(task, buf, 1); got[0].Revents != int16(unix.POLLIN) {
		t.Fatalf("poll revents %#x after a write, want POLLIN", got[0].Revents)
	}

	n, err = call(linux.SYS_EPOLL_WAIT, ep, uintptr(buf+1024), 8, ^uintptr(0))
	task.CopyIn(buf+1024, b[:])
	if err != nil || n != 1 || binary.LittleEndian.Uint32(b[:]) != unix.EPOLLIN || binary.LittleEndian.Uint64(b[4:]) != 0x1234_5678_9abc {
		t.Fatalf("epoll_wait = %d, %v, event %x", n, err, b)
	}

	// select: r readable, w writable; fd sets are whole longs.
	sets := buf + 2048
	var rs, ws [8]byte
	rs[r/8] |= 1 << (r % 8)
	ws[w/8] |= 1 << (w % 8)
	task.CopyOut(sets, rs[:])
	task.CopyOut(sets+8, ws[:])
	tv := sets + 64
	task.CopyOut(tv, make([]byte, 16))
	n, err = call(linux.SYS_SELECT, w+1, uintptr(sets), uintptr(sets+8), 0, uintptr(tv))
	task.CopyIn(sets, rs[:])
	if err != nil || n != 2 || rs[r/8]&(1<<(r%8)) == 0 {
		t.Fatalf("select = %d, %v, read set %x", n, err, rs)
	}
	wide := buf + 3000
	var wb [16]byte
	wb[r/8] |= 1 << (r % 8)
	task.CopyOut(wide, wb[:])
	if _, err := call(linux.SYS_SELECT, 100, uintptr(wide), 0, 0, uintptr(tv)); err != nil {
		t.Fatalf("select over closed descriptors not in the set: %v", err)
	}
	rs = [8]byte{}
	rs[7] = 0x80 // fd 63, not open
	task.CopyOut(sets, rs[:])
	if _, err := call(linux.SYS_SELECT, 64, uintptr(sets), 0, 0, uintptr(tv)); !errors.Is(err, unix.EBADF) {
		t.Fatalf("select on a closed descriptor: %v, want EBADF", err)
	}
}

func TestSendfileAndCopyFileRange(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	createFile(t, task, "/src", []byte("0123456789")).DecRef(task)
	in, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/src"), linux.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	r, w := pipeFDs(t, task, linux.O_NONBLOCK)
	buf := page(t, task) + 1024
	offAddr := page(t, task) + 512
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 3)
	task.CopyOut(offAddr, b[:])
	if n, err := call(linux.SYS_SENDFILE, w, in, uintptr(offAddr), 4); err != nil || n != 4 {
		t.Fatalf("sendfile = %d, %v", n, err)
	}
	task.CopyIn(offAddr, b[:])
	if off := binary.LittleEndian.Uint64(b[:]); off != 7 {
		t.Fatalf("sendfile left the offset at %d, want 7", off)
	}
	if pos, _ := call(linux.SYS_LSEEK, in, 0, linux.SEEK_CUR); pos != 0 {
		t.Fatalf("sendfile with an offset moved the file offset to %d", pos)
	}
	n, _ := call(linux.SYS_READ, r, uintptr(buf), 100)
	got := make([]byte, n)
	task.CopyIn(buf, got)
	if string(got) != "3456" {
		t.Fatalf("pipe holds %q after sendfile", got)
	}
	out, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/dst"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := call(linux.SYS_COPY_FILE_RANGE, in, 0, out, 0, 100, 0); err != nil || n != 10 {
		t.Fatalf("copy_file_range = %d, %v", n, err)
	}
	if pos, _ := call(linux.SYS_LSEEK, out, 0, linux.SEEK_CUR); pos != 10 {
		t.Fatalf("copy_file_range left the output offset at %d, want 10", pos)
	}
	n, _ = call(linux.SYS_PREAD64, out, uintptr(buf), 100, 0)
	got = make([]byte, n)
	task.CopyIn(buf, got)
	if string(got) != "0123456789" {
		t.Fatalf("copy holds %q", got)
	}
	if _, err := call(linux.SYS_COPY_FILE_RANGE, in, 0, w, 0, 1, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("copy_file_range to a pipe: %v, want EINVAL", err)
	}
}

func BenchmarkPipeWriteRead(b *testing.B) {
	task, _ := newTask(b)
	buf, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, uintptr(linux.PROT_READ|linux.PROT_WRITE), linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_PIPE2, args(buf, 0)); err != nil {
		b.Fatal(err)
	}
	var fds [8]byte
	task.CopyIn(hostarch.Addr(buf), fds[:])
	r, w := uintptr(binary.LittleEndian.Uint32(fds[:])), uintptr(binary.LittleEndian.Uint32(fds[4:]))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		task.ExecuteSyscall(linux.SYS_WRITE, args(w, buf+64, 64))
		task.ExecuteSyscall(linux.SYS_READ, args(r, buf+128, 64))
	}
}

func TestEventfdTimerfdMemfd(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	buf := page(t, task)
	efd, err := call(linux.SYS_EVENTFD2, 5, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatalf("eventfd2: %v", err)
	}
	if fl, _ := call(linux.SYS_FCNTL, efd, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Fatal("EFD_CLOEXEC not applied to the descriptor")
	}
	var b [8]byte
	if n, err := call(linux.SYS_READ, efd, uintptr(buf), 8); err != nil || n != 8 {
		t.Fatalf("eventfd read = %d, %v", n, err)
	}
	task.CopyIn(buf, b[:])
	if binary.LittleEndian.Uint64(b[:]) != 5 {
		t.Fatalf("eventfd counter %d, want 5", binary.LittleEndian.Uint64(b[:]))
	}
	if _, err := call(linux.SYS_READ, efd, uintptr(buf), 8); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read of a zero non-blocking eventfd: %v", err)
	}

	tfd, err := call(linux.SYS_TIMERFD_CREATE, unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK)
	if err != nil {
		t.Fatalf("timerfd_create: %v", err)
	}
	// Armed 1ns from now, relative: it expires at once, and a blocking
	// poll sees it.
	its := make([]byte, 32)
	binary.LittleEndian.PutUint64(its[24:], 1)
	task.CopyOut(buf+64, its)
	if _, err := call(linux.SYS_TIMERFD_SETTIME, tfd, 0, uintptr(buf+64), 0); err != nil {
		t.Fatalf("timerfd_settime: %v", err)
	}
	writePollfds(task, buf+256, linux.Pollfd{Fd: int32(tfd), Events: int16(unix.POLLIN)})
	if n, err := call(linux.SYS_POLL, uintptr(buf+256), 1, ^uintptr(0)); err != nil || n != 1 {
		t.Fatalf("poll on an expiring timerfd = %d, %v", n, err)
	}
	if n, err := call(linux.SYS_READ, tfd, uintptr(buf), 8); err != nil || n != 8 {
		t.Fatalf("timerfd read = %d, %v", n, err)
	}
	if _, err := call(linux.SYS_TIMERFD_GETTIME, efd, uintptr(buf)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("timerfd_gettime on an eventfd: %v", err)
	}

	mfd, err := call(linux.SYS_MEMFD_CREATE, cstr(t, task, 512, "scratch"), unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	if _, err := call(linux.SYS_FTRUNCATE, mfd, 4096); err != nil {
		t.Fatalf("ftruncate of a memfd: %v", err)
	}
	if _, err := call(linux.SYS_FCNTL, mfd, linux.F_ADD_SEALS, linux.F_SEAL_GROW); err != nil {
		t.Fatalf("F_ADD_SEALS: %v", err)
	}
	if s, err := call(linux.SYS_FCNTL, mfd, linux.F_GET_SEALS); err != nil || s != linux.F_SEAL_GROW {
		t.Fatalf("F_GET_SEALS = %#x, %v", s, err)
	}
	if _, err := call(linux.SYS_FTRUNCATE, mfd, 8192); !errors.Is(err, unix.EPERM) {
		t.Fatalf("growing a F_SEAL_GROW memfd: %v, want EPERM", err)
	}
	m, err := call(linux.SYS_MMAP, 0, 4096, uintptr(linux.PROT_READ|linux.PROT_WRITE), linux.MAP_SHARED, mfd, 0)
	if err != nil {
		t.Fatalf("mmap of a memfd: %v", err)
	}
	task.CopyOut(hostarch.Addr(m), []byte("shared"))
	if n, err := call(linux.SYS_PREAD64, mfd, uintptr(buf), 6, 0); err != nil || n != 6 {
		t.Fatalf("pread of the memfd = %d, %v", n, err)
	}
	got := make([]byte, 6)
	task.CopyIn(buf, got)
	if string(got) != "shared" {
		t.Fatalf("memfd holds %q after a write through its shared mapping", got)
	}
}

func TestWaitid(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	info := page(t, task)
	if _, err := call(linux.SYS_WAITID, linux.P_ALL, 0, uintptr(info), linux.WEXITED); !errors.Is(err, unix.ECHILD) {
		t.Fatalf("waitid with no children: %v, want ECHILD", err)
	}
	if _, err := call(linux.SYS_WAITID, linux.P_ALL, 0, uintptr(info), linux.WNOHANG); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("waitid without WEXITED/WSTOPPED/WCONTINUED: %v, want EINVAL", err)
	}
	child, err := call(linux.SYS_FORK)
	if err != nil {
		t.Fatal(err)
	}
	task.CopyOut(info, []byte{0xff, 0xff, 0xff, 0xff})
	if _, err := call(linux.SYS_WAITID, linux.P_PID, child, uintptr(info), linux.WEXITED|linux.WNOHANG); err != nil {
		t.Fatalf("waitid WNOHANG on a live child: %v", err)
	}
	var b [4]byte
	task.CopyIn(info, b[:])
	if b != [4]byte{} {
		t.Fatalf("waitid WNOHANG with nothing to report left si_signo %x, want zeroed", b)
	}
	if _, err := call(linux.SYS_WAITID, linux.P_PGID, 12345, uintptr(info), linux.WEXITED|linux.WNOHANG); !errors.Is(err, unix.ECHILD) {
		t.Fatalf("waitid on an empty process group: %v, want ECHILD", err)
	}
}

func TestRecordLocksAndFlock(t *testing.T) {
	task, _ := newTask(t)
	call := func(tk *kernel.Task, nr uintptr, a ...uintptr) (uintptr, error) {
		return tk.ExecuteSyscall(nr, args(a...))
	}
	fd, err := call(task, linux.SYS_OPEN, cstr(t, task, 0, "/locked"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fl := page(t, task) + 1024
	setFlock := func(typ int16) {
		var b [32]byte
		binary.LittleEndian.PutUint16(b[0:], uint16(typ))
		binary.LittleEndian.PutUint64(b[16:], 10) // bytes [0, 10)
		task.CopyOut(fl, b[:])
	}
	setFlock(linux.F_WRLCK)
	if _, err := call(task, linux.SYS_FCNTL, fd, linux.F_SETLK, uintptr(fl)); err != nil {
		t.Fatalf("F_SETLK: %v", err)
	}
	dup, _ := call(task, linux.SYS_DUP, fd)
	cpid, err := call(task, linux.SYS_FORK)
	if err != nil {
		t.Fatal(err)
	}
	child := task.Kernel().TaskWithID(kernel.ThreadID(cpid))
	// The child's memory is a copy: the flock struct is there too.
	if _, err := call(child, linux.SYS_FCNTL, fd, linux.F_SETLK, uintptr(fl)); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("F_SETLK over another process's lock: %v, want EAGAIN", err)
	}
	if _, err := call(child, linux.SYS_FCNTL, fd, linux.F_GETLK, uintptr(fl)); err != nil {
		t.Fatalf("F_GETLK: %v", err)
	}
	var b [32]byte
	child.CopyIn(fl, b[:])
	if typ, pid := int16(binary.LittleEndian.Uint16(b[:])), binary.LittleEndian.Uint32(b[24:]); typ != linux.F_WRLCK || pid != 1 {
		t.Fatalf("F_GETLK reports type %d pid %d, want F_WRLCK held by 1", typ, pid)
	}
	// Closing any descriptor of the file drops the process's locks.
	if _, err := call(task, linux.SYS_CLOSE, dup); err != nil {
		t.Fatal(err)
	}
	setFlock(linux.F_WRLCK)
	task.CopyIn(fl, b[:])
	child.CopyOut(fl, b[:])
	if _, err := call(child, linux.SYS_FCNTL, fd, linux.F_SETLK, uintptr(fl)); err != nil {
		t.Fatalf("F_SETLK after the holder closed a descriptor: %v", err)
	}

	if _, err := call(task, linux.SYS_FLOCK, fd, unix.LOCK_EX); err != nil {
		t.Fatalf("flock LOCK_EX: %v", err)
	}
	other, err := call(task, linux.SYS_OPEN, cstr(t, task, 0, "/locked"), linux.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(task, linux.SYS_FLOCK, other, unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("flock LOCK_SH|LOCK_NB against LOCK_EX of another open file: %v", err)
	}
	if _, err := call(task, linux.SYS_FLOCK, fd, unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := call(task, linux.SYS_FLOCK, other, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatalf("flock after the unlock: %v", err)
	}
	if _, err := call(task, linux.SYS_FLOCK, other, 99); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("flock with a bad operation: %v", err)
	}
}

func TestCloseRangeOpenat2AndSIGPIPE(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	r, w := pipeFDs(t, task, 0)
	if _, err := call(linux.SYS_CLOSE_RANGE, r, r, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		t.Fatalf("close_range CLOEXEC: %v", err)
	}
	if fl, _ := call(linux.SYS_FCNTL, r, linux.F_GETFD); fl != linux.FD_CLOEXEC {
		t.Fatal("CLOSE_RANGE_CLOEXEC did not mark the descriptor")
	}
	if _, err := call(linux.SYS_CLOSE_RANGE, 5, 4, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("close_range first > last: %v", err)
	}
	if _, err := call(linux.SYS_CLOSE_RANGE, r, r, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := call(linux.SYS_FCNTL, r, linux.F_GETFD); !errors.Is(err, unix.EBADF) {
		t.Fatalf("descriptor open after close_range: %v", err)
	}
	// The read end is gone: EPIPE and SIGPIPE.
	if _, err := call(linux.SYS_WRITE, w, uintptr(page(t, task)), 1); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("write without readers: %v, want EPIPE", err)
	}
	if !task.PendingSignals().Contains(linux.SIGPIPE) {
		t.Fatal("write without readers did not raise SIGPIPE")
	}

	if _, err := call(linux.SYS_MKDIR, cstr(t, task, 0, "/jail"), 0o755); err != nil {
		t.Fatal(err)
	}
	dfd, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/jail"), linux.O_RDONLY|linux.O_DIRECTORY)
	if err != nil {
		t.Fatal(err)
	}
	how := page(t, task) + 2048
	putHow := func(flags, mode, resolve uint64) {
		var b [24]byte
		binary.LittleEndian.PutUint64(b[0:], flags)
		binary.LittleEndian.PutUint64(b[8:], mode)
		binary.LittleEndian.PutUint64(b[16:], resolve)
		task.CopyOut(how, b[:])
	}
	putHow(linux.O_RDONLY, 0, linux.RESOLVE_BENEATH)
	if _, err := call(linux.SYS_OPENAT2, dfd, cstr(t, task, 0, "../"), uintptr(how), 24); !errors.Is(err, unix.EXDEV) {
		t.Fatalf("openat2 RESOLVE_BENEATH escaping: %v, want EXDEV", err)
	}
	putHow(linux.O_RDWR|linux.O_CREAT, 0o600, 0)
	fd, err := call(linux.SYS_OPENAT2, dfd, cstr(t, task, 0, "f"), uintptr(how), 24)
	if err != nil {
		t.Fatalf("openat2 O_CREAT: %v", err)
	}
	call(linux.SYS_CLOSE, fd)
	putHow(linux.O_RDONLY, 0, linux.RESOLVE_IN_ROOT)
	if fd, err := call(linux.SYS_OPENAT2, dfd, cstr(t, task, 0, "/f"), uintptr(how), 24); err != nil {
		t.Fatalf("openat2 RESOLVE_IN_ROOT of /f: %v", err)
	} else {
		call(linux.SYS_CLOSE, fd)
	}
	putHow(linux.O_RDONLY, 0o600, 0)
	if _, err := call(linux.SYS_OPENAT2, dfd, cstr(t, task, 0, "f"), uintptr(how), 24); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("openat2 with a mode but no O_CREAT: %v", err)
	}
	if _, err := call(linux.SYS_OPENAT2, dfd, cstr(t, task, 0, "f"), uintptr(how), 16); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("openat2 with a short struct: %v", err)
	}
}

func TestAlarmAndItimerReal(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	if left, _ := call(linux.SYS_ALARM, 100); left != 0 {
		t.Fatalf("first alarm returned %d, want 0", left)
	}
	if left, _ := call(linux.SYS_ALARM, 0); left != 100 {
		t.Fatalf("alarm(0) after alarm(100) returned %d, want 100", left)
	}
	if _, err := task.SigAction(linux.SIGALRM, &linux.Sigaction{Handler: 0x1000, Flags: linux.SA_RESTORER, Restorer: 0x2000}); err != nil {
		t.Fatal(err)
	}
	itv := page(t, task)
	var b [32]byte
	binary.LittleEndian.PutUint64(b[24:], 1000) // it_value: 1ms, no interval
	task.CopyOut(itv, b[:])
	if _, err := call(linux.SYS_SETITIMER, linux.ITIMER_REAL, uintptr(itv), 0); err != nil {
		t.Fatalf("setitimer: %v", err)
	}
	// pause returns once the timer's SIGALRM is pending.
	if _, err := call(linux.SYS_PAUSE); !errors.Is(err, linux.ERESTARTNOHAND) {
		t.Fatalf("pause: %v", err)
	}
	if !task.PendingSignals().Contains(linux.SIGALRM) {
		t.Fatal("ITIMER_REAL expired without SIGALRM")
	}
	if _, err := call(linux.SYS_GETITIMER, linux.ITIMER_REAL, uintptr(itv)); err != nil {
		t.Fatal(err)
	}
	task.CopyIn(itv, b[:])
	if b != [32]byte{} {
		t.Fatalf("expired one-shot timer reads %x, want disarmed", b)
	}
	if _, err := call(linux.SYS_SETITIMER, 3, uintptr(itv), 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("setitimer(3): %v, want EINVAL", err)
	}
	// ITIMER_VIRTUAL runs on CPU time, which an unstarted task never
	// gets: armed, it keeps its whole value.
	var tv [32]byte
	tv[16] = 5 // it_value.tv_sec = 5
	task.CopyOut(itv, tv[:])
	if _, err := call(linux.SYS_SETITIMER, linux.ITIMER_VIRTUAL, uintptr(itv), 0); err != nil {
		t.Fatalf("setitimer(ITIMER_VIRTUAL): %v", err)
	}
	if _, err := call(linux.SYS_GETITIMER, linux.ITIMER_VIRTUAL, uintptr(itv)); err != nil {
		t.Fatal(err)
	}
	task.CopyIn(itv, tv[:])
	if tv[16] != 4 && tv[16] != 5 {
		t.Fatalf("ITIMER_VIRTUAL reads %x", tv)
	}
	call(linux.SYS_SETITIMER, linux.ITIMER_VIRTUAL, uintptr(itv+64), 0)
}
