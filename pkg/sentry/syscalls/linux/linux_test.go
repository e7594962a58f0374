package linux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/kerneltest"
	"carapace.dev/carapace/pkg/sentry/mm"
	"carapace.dev/carapace/pkg/sentry/pgalloc"
	"golang.org/x/sys/unix"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// staticTrue builds (once) a tiny static program that the loader can map;
// the platform-less tests never run it.
func staticTrue(t testing.TB) string {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "syscalls-test")
		if buildErr != nil {
			return
		}
		src := filepath.Join(buildDir, "t.c")
		os.WriteFile(src, []byte("int main(){return 0;}\n"), 0o644)
		out, err := exec.Command("gcc", "-static", "-O1", "-o", filepath.Join(buildDir, "t"), src).CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Skipf("cannot build a static program with gcc (Debian packages gcc, libc6-dev): %v", buildErr)
	}
	return filepath.Join(buildDir, "t")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// newTask returns the (unstarted) init task of a platform-less kernel,
// with stdout captured.
func newTask(t testing.TB) (*kernel.Task, *bytes.Buffer) {
	mf, err := pgalloc.New("syscalls-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mf.Close() })
	k, err := kernel.New(kernel.Config{MemoryFile: mf, Syscalls: Table(), Hostname: "sandbox"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out bytes.Buffer
	fdt := kernel.NewFDTable()
	stdout := kerneltest.NewWriterFile(k.VFS(), &out)
	fdt.NewFD(1, 1024, stdout, kernel.FDFlags{})
	stdout.DecRef(ctx)
	path := staticTrue(t)
	root, err := kerneltest.NewRoot(ctx, k.VFS(), mf, path)
	if err != nil {
		t.Fatal(err)
	}
	defer root.DecRef(ctx)
	tg, err := k.CreateProcess(ctx, kernel.CreateProcessArgs{
		Filename: path, Argv: []string{"t"}, FDTable: fdt, Root: root, Umask: 0o022,
	})
	if err != nil {
		t.Fatal(err)
	}
	task := tg.Leader()
	t.Cleanup(func() {
		task.MemoryManager().DecUsers(ctx)
		task.FDTable().DecRef(ctx)
		task.FSContext().DecRef(ctx)
	})
	return task, &out
}

func args(vals ...uintptr) arch.SyscallArguments {
	var a arch.SyscallArguments
	for i, v := range vals {
		a[i].Value = v
	}
	return a
}

// scratch maps a page for syscall buffers.
func scratch(t *testing.T, task *kernel.Task) hostarch.Addr {
	a, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, linux.PROT_READ|linux.PROT_WRITE, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	return hostarch.Addr(a)
}

func TestIdentitySyscalls(t *testing.T) {
	task, _ := newTask(t)
	for _, c := range []struct {
		nr   uintptr
		want uintptr
	}{
		{linux.SYS_GETPID, 1}, {linux.SYS_GETTID, 1}, {linux.SYS_GETPPID, 0},
		{linux.SYS_GETUID, 0}, {linux.SYS_GETEGID, 0},
	} {
		if got, err := task.ExecuteSyscall(c.nr, args()); err != nil || got != c.want {
			t.Errorf("%s = %d, %v; want %d", linux.SyscallName(c.nr), got, err, c.want)
		}
	}
	buf := scratch(t, task)
	if _, err := task.ExecuteSyscall(linux.SYS_UNAME, args(uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	var u linux.Utsname
	b := make([]byte, linux.SizeOfUtsname)
	task.CopyIn(buf, b)
	u.UnmarshalBytes(b)
	got := []string{linux.UtsFieldString(&u.Sysname), linux.UtsFieldString(&u.Nodename), linux.UtsFieldString(&u.Release),
		linux.UtsFieldString(&u.Version), linux.UtsFieldString(&u.Machine)}
	want := []string{"Linux", "sandbox", "4.4.0", "#1 SMP Sun Jan 10 15:06:54 PST 2016", "x86_64"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("uname %q, want %q", got, want)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_UNAME, args(8)); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("uname(bad pointer): %v", err)
	}
}

func TestUnimplementedIsENOSYS(t *testing.T) {
	task, _ := newTask(t)
	for _, nr := range []uintptr{linux.SYS_IO_SETUP, linux.SYS_RSEQ, 100000} {
		if _, err := task.ExecuteSyscall(nr, args()); !errors.Is(err, unix.ENOSYS) {
			t.Errorf("syscall %d: %v, want ENOSYS", nr, err)
		}
	}
}

func TestWriteAndArchPrctl(t *testing.T) {
	task, out := newTask(t)
	buf := scratch(t, task)
	task.CopyOut(buf, []byte("hello\n"))
	if n, err := task.ExecuteSyscall(linux.SYS_WRITE, args(1, uintptr(buf), 6)); err != nil || n != 6 {
		t.Fatalf("write = %d, %v", n, err)
	}
	if out.String() != "hello\n" {
		t.Fatalf("stdout got %q", out.String())
	}
	if _, err := task.ExecuteSyscall(linux.SYS_WRITE, args(7, uintptr(buf), 6)); !errors.Is(err, unix.EBADF) {
		t.Fatalf("write to a closed fd: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_WRITE, args(1, 16, 6)); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("write from a bad pointer: %v", err)
	}
	// writev gathers.
	iov := make([]byte, 32)
	binary.LittleEndian.PutUint64(iov[0:], uint64(buf))
	binary.LittleEndian.PutUint64(iov[8:], 2)
	binary.LittleEndian.PutUint64(iov[16:], uint64(buf+2))
	binary.LittleEndian.PutUint64(iov[24:], 4)
	task.CopyOut(buf+100, iov)
	if n, err := task.ExecuteSyscall(linux.SYS_WRITEV, args(1, uintptr(buf+100), 2)); err != nil || n != 6 || out.String() != "hello\nhello\n" {
		t.Fatalf("writev = %d, %v, out %q", n, err, out.String())
	}
	// dup + close.
	fd, err := task.ExecuteSyscall(linux.SYS_DUP, args(1))
	if err != nil || fd != 0 {
		t.Fatalf("dup(1) = %d, %v; want 0", fd, err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_CLOSE, args(fd)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_CLOSE, args(fd)); !errors.Is(err, unix.EBADF) {
		t.Fatalf("double close: %v", err)
	}
	// arch_prctl round trip.
	if _, err := task.ExecuteSyscall(linux.SYS_ARCH_PRCTL, args(linux.ARCH_SET_FS, 0x12345000)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_ARCH_PRCTL, args(linux.ARCH_GET_FS, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	task.CopyIn(buf, b)
	if binary.LittleEndian.Uint64(b) != 0x12345000 || task.Arch().TLS() != 0x12345000 {
		t.Fatalf("fs base %#x / %#x", binary.LittleEndian.Uint64(b), task.Arch().TLS())
	}
	if _, err := task.ExecuteSyscall(linux.SYS_ARCH_PRCTL, args(linux.ARCH_SET_FS, 1<<60)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("non-canonical fs: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_ARCH_PRCTL, args(0x9999, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad arch_prctl code: %v", err)
	}
}

func TestMemorySyscalls(t *testing.T) {
	task, _ := newTask(t)
	brk0, _ := task.ExecuteSyscall(linux.SYS_BRK, args(0))
	if brk0 == 0 {
		t.Fatal("brk(0) = 0")
	}
	if got, _ := task.ExecuteSyscall(linux.SYS_BRK, args(brk0+10000)); got != brk0+10000 {
		t.Fatalf("brk grow = %#x", got)
	}
	if _, err := task.CopyOut(hostarch.Addr(brk0+9000), []byte("x")); err != nil {
		t.Fatalf("heap not writable: %v", err)
	}
	for _, c := range []struct {
		a    arch.SyscallArguments
		want unix.Errno
	}{
		{args(0, 0, 3, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0), unix.EINVAL},          // zero length
		{args(0, 4096, 3, linux.MAP_ANONYMOUS, ^uintptr(0), 0), unix.EINVAL},                         // no type
		{args(1, 4096, 3, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS|linux.MAP_FIXED, 0, 0), unix.EINVAL}, // unaligned fixed
		{args(0, 4096, 0x100, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, 0, 0), unix.EINVAL},             // bad prot
		{args(0, 4096, 3, linux.MAP_PRIVATE, 99, 0), unix.EBADF},                                     // bad fd
		{args(0, 1<<63, 3, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, 0, 0), unix.ENOMEM},
	} {
		if _, err := task.ExecuteSyscall(linux.SYS_MMAP, c.a); !errors.Is(err, c.want) {
			t.Errorf("mmap%v: %v, want %v", c.a, err, c.want)
		}
	}
	a := scratch(t, task)
	if _, err := task.ExecuteSyscall(linux.SYS_MPROTECT, args(uintptr(a), 4096, linux.PROT_READ)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.CopyOut(a, []byte("x")); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("write after mprotect(PROT_READ): %v", err)
	}
	na, err := task.ExecuteSyscall(linux.SYS_MREMAP, args(uintptr(a), 4096, 8192, linux.MREMAP_MAYMOVE))
	if err != nil || na == 0 {
		t.Fatalf("mremap: %#x %v", na, err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MUNMAP, args(na, 8192)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MADVISE, args(na, 4096, linux.MADV_DONTNEED)); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("madvise on unmapped: %v", err)
	}
}

func TestSignalSyscalls(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	act := linux.Sigaction{Handler: 0x401000, Flags: linux.SA_SIGINFO | linux.SA_RESTORER, Restorer: 0x402000,
		Mask: linux.MakeSignalSet(linux.SIGUSR1, linux.SIGKILL)}
	b := make([]byte, linux.SizeOfSigaction)
	act.MarshalBytes(b)
	task.CopyOut(buf, b)
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGACTION, args(uintptr(linux.SIGSEGV), uintptr(buf), 0, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGACTION, args(uintptr(linux.SIGSEGV), 0, uintptr(buf+64), 8)); err != nil {
		t.Fatal(err)
	}
	task.CopyIn(buf+64, b)
	var got linux.Sigaction
	got.UnmarshalBytes(b)
	want := act
	want.Mask = linux.MakeSignalSet(linux.SIGUSR1) // SIGKILL cannot be masked
	if got != want {
		t.Fatalf("sigaction read back %+v, want %+v", got, want)
	}
	for _, a := range []arch.SyscallArguments{
		args(uintptr(linux.SIGKILL), uintptr(buf), 0, 8),
		args(0, 0, 0, 8), args(65, 0, 0, 8),
		args(uintptr(linux.SIGSEGV), 0, 0, 4),
	} {
		if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGACTION, a); !errors.Is(err, unix.EINVAL) {
			t.Errorf("rt_sigaction%v: %v, want EINVAL", a, err)
		}
	}
	// sigprocmask: block USR1 and KILL; KILL stays unblocked.
	set := make([]byte, 8)
	binary.LittleEndian.PutUint64(set, uint64(linux.MakeSignalSet(linux.SIGUSR1, linux.SIGKILL)))
	task.CopyOut(buf, set)
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGPROCMASK, args(linux.SIG_BLOCK, uintptr(buf), 0, 8)); err != nil {
		t.Fatal(err)
	}
	if m := task.SignalMask(); m != linux.MakeSignalSet(linux.SIGUSR1) {
		t.Fatalf("mask %#x", m)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGPROCMASK, args(7, uintptr(buf), 0, 8)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad how: %v", err)
	}
}

func TestTimeAndRandom(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	if _, err := task.ExecuteSyscall(linux.SYS_CLOCK_GETTIME, args(linux.CLOCK_MONOTONIC, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_CLOCK_GETTIME, args(99, uintptr(buf))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad clock: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_CLOCK_GETTIME, args(linux.CLOCK_REALTIME, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	task.CopyIn(buf, b)
	var ts linux.Timespec
	ts.UnmarshalBytes(b)
	if d := ts.Sec - timeNowUnix(); d < -2 || d > 2 {
		t.Fatalf("realtime %d s differs from the host by %d s", ts.Sec, d)
	}
	n, err := task.ExecuteSyscall(linux.SYS_GETRANDOM, args(uintptr(buf), 64, 0))
	if err != nil || n != 64 {
		t.Fatalf("getrandom = %d, %v", n, err)
	}
	r := make([]byte, 64)
	task.CopyIn(buf, r)
	if bytes.Equal(r, make([]byte, 64)) {
		t.Fatal("getrandom left zeroes")
	}
	if _, err := task.ExecuteSyscall(linux.SYS_GETRANDOM, args(uintptr(buf), 64, 0x80)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad getrandom flags: %v", err)
	}
	// A short sleep completes; a bad timespec is EINVAL.
	binary.LittleEndian.PutUint64(b[0:], 0)
	binary.LittleEndian.PutUint64(b[8:], 1000)
	task.CopyOut(buf, b)
	if _, err := task.ExecuteSyscall(linux.SYS_NANOSLEEP, args(uintptr(buf), 0)); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[8:], 2e9)
	task.CopyOut(buf, b)
	if _, err := task.ExecuteSyscall(linux.SYS_NANOSLEEP, args(uintptr(buf), 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad timespec: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SYSINFO, args(uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	si := make([]byte, linux.SizeOfSysinfo)
	task.CopyIn(buf, si)
	var info linux.Sysinfo
	info.UnmarshalBytes(si)
	if info.TotalRAM == 0 || info.Procs != 1 || info.MemUnit != 1 {
		t.Fatalf("sysinfo %+v", info)
	}
	// rlimits.
	if _, err := task.ExecuteSyscall(linux.SYS_PRLIMIT64, args(0, linux.RLIMIT_NOFILE, 0, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	var rl linux.Rlimit
	task.CopyIn(buf, b)
	rl.UnmarshalBytes(b)
	if rl.Cur != 1024 {
		t.Fatalf("RLIMIT_NOFILE %+v", rl)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_GETRLIMIT, args(99, uintptr(buf))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad resource: %v", err)
	}
}

func TestDispatchDoesNotAllocate(t *testing.T) {
	task, _ := newTask(t)
	a := args()
	allocs := testing.AllocsPerRun(1000, func() {
		task.ExecuteSyscall(linux.SYS_GETPID, a)
	})
	if allocs != 0 {
		t.Fatalf("getpid dispatch allocates %v times per call", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		task.ExecuteSyscall(linux.SYS_IO_SETUP, a) // unimplemented, already logged
	})
	if allocs != 0 {
		t.Fatalf("ENOSYS dispatch allocates %v times per call", allocs)
	}
}

func BenchmarkDispatchGetpid(b *testing.B) {
	task, _ := newTask(b)
	a := args()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		task.ExecuteSyscall(linux.SYS_GETPID, a)
	}
}

func TestMmapFile(t *testing.T) {
	task, _ := newTask(t)
	ctx := context.Background()
	data := make([]byte, 2*4096)
	copy(data, "page0")
	copy(data[4096:], "page1")
	f := createFile(t, task, "/data", data)
	defer f.DecRef(ctx)
	fd, err := task.FDTable().NewFD(3, 1024, f, kernel.FDFlags{})
	if err != nil {
		t.Fatal(err)
	}
	rw := uintptr(linux.PROT_READ | linux.PROT_WRITE)
	shared, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, rw, linux.MAP_SHARED, uintptr(fd), 4096))
	if err != nil {
		t.Fatalf("shared file mmap: %v", err)
	}
	private, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, rw, linux.MAP_PRIVATE, uintptr(fd), 4096))
	if err != nil {
		t.Fatalf("private file mmap: %v", err)
	}
	b := make([]byte, 5)
	task.CopyIn(hostarch.Addr(private), b)
	if string(b) != "page1" {
		t.Fatalf("private mapping at offset 4096 reads %q", b)
	}
	// /proc/[pid]/maps names file mappings by their path.
	named := 0
	for _, m := range task.MemoryManager().Mappings() {
		if m.Range.Start == hostarch.Addr(shared) || m.Range.Start == hostarch.Addr(private) {
			if m.Hint != "/data" {
				t.Errorf("mapping at %v is named %q, want /data", m.Range.Start, m.Hint)
			}
			named++
		}
	}
	if named != 2 {
		t.Errorf("found %d of the 2 file mappings", named)
	}
	task.CopyOut(hostarch.Addr(shared), []byte("SHARE"))
	task.CopyOut(hostarch.Addr(private), []byte("PRIVA"))
	readAt(t, f, b, 4096)
	if string(b) != "SHARE" {
		t.Fatalf("file holds %q after writes through both mappings, want the shared one", b)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, rw, linux.MAP_SHARED, 1, 0)); !errors.Is(err, unix.EACCES) {
		t.Fatalf("mmap of a write-only file: %v, want EACCES", err)
	}
	var pfds [8]byte
	if _, err := task.ExecuteSyscall(linux.SYS_PIPE, args(uintptr(page(t, task)))); err != nil {
		t.Fatal(err)
	}
	task.CopyIn(page(t, task), pfds[:])
	if _, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, uintptr(linux.PROT_READ), linux.MAP_SHARED, uintptr(binary.LittleEndian.Uint32(pfds[:])), 0)); !errors.Is(err, unix.ENODEV) {
		t.Fatalf("mmap of a pipe: %v, want ENODEV", err)
	}
	// Beyond the end of the object: SIGBUS on access.
	beyond, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, rw, linux.MAP_SHARED, uintptr(fd), 8192))
	if err != nil {
		t.Fatal(err)
	}
	ferr := task.MemoryManager().HandleFault(task, hostarch.Addr(beyond), hostarch.Read)
	var fe *mm.FaultError
	if !errors.As(ferr, &fe) || fe.Signo != int32(unix.SIGBUS) {
		t.Fatalf("fault beyond EOF: %v, want SIGBUS", ferr)
	}
}

func TestProcessGroups(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	if g, _ := call(linux.SYS_GETPGRP); g != 1 {
		t.Fatalf("init's pgrp %d", g)
	}
	if s, _ := call(linux.SYS_GETSID, 0); s != 1 {
		t.Fatalf("init's sid %d", s)
	}
	if _, err := call(linux.SYS_SETSID); !errors.Is(err, unix.EPERM) {
		t.Fatalf("setsid by a group leader: %v", err)
	}
	child, err := call(linux.SYS_FORK)
	if err != nil || child != 2 {
		t.Fatalf("fork = %d, %v", child, err)
	}
	if g, _ := call(linux.SYS_GETPGID, child); g != 1 {
		t.Fatalf("child's pgid %d, want the parent's", g)
	}
	if _, err := call(linux.SYS_SETPGID, child, 0); err != nil {
		t.Fatalf("setpgid(child, 0): %v", err)
	}
	if g, _ := call(linux.SYS_GETPGID, child); g != child {
		t.Fatalf("child's pgid %d after setpgid", g)
	}
	if _, err := call(linux.SYS_SETPGID, 0, 77); !errors.Is(err, unix.EPERM) {
		t.Fatalf("setpgid to a missing group: %v", err)
	}
	if _, err := call(linux.SYS_KILL, neg(child), 0); err != nil {
		t.Fatalf("kill(-pgid, 0): %v", err)
	}
	if _, err := call(linux.SYS_KILL, neg(55), 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("kill of an empty group: %v", err)
	}
	// wait4 selects by group: none of the caller's group, one in the child's.
	if _, err := call(linux.SYS_WAIT4, 0, 0, linux.WNOHANG, 0); !errors.Is(err, unix.ECHILD) {
		t.Fatalf("wait4(0) with the child in another group: %v", err)
	}
	if pid, err := call(linux.SYS_WAIT4, neg(child), 0, linux.WNOHANG, 0); err != nil || pid != 0 {
		t.Fatalf("wait4(-pgid, WNOHANG) = %d, %v; want 0 (child alive)", pid, err)
	}
	if _, err := call(linux.SYS_WAIT4, 99, 0, linux.WNOHANG, 0); !errors.Is(err, unix.ECHILD) {
		t.Fatalf("wait4 of a non-child: %v", err)
	}
	if _, err := call(linux.SYS_WAIT4, ^uintptr(0), 0, 0x100, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("wait4 with bad options: %v", err)
	}
}

func TestMsyncMincoreMlock(t *testing.T) {
	task, _ := newTask(t)
	a := scratch(t, task)
	vec := a + 2048
	task.CopyOut(a, []byte{1}) // touch it
	if _, err := task.ExecuteSyscall(linux.SYS_MINCORE, args(uintptr(a), 4096, uintptr(vec))); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	task.CopyIn(vec, b)
	if b[0] != 1 {
		t.Fatalf("mincore of a touched page = %d", b[0])
	}
	fresh, _ := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 8192, linux.PROT_READ, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
	if _, err := task.ExecuteSyscall(linux.SYS_MINCORE, args(fresh, 8192, uintptr(vec))); err != nil {
		t.Fatal(err)
	}
	b = make([]byte, 2)
	task.CopyIn(vec, b)
	if b[0] != 0 || b[1] != 0 {
		t.Fatalf("mincore of untouched pages = %v", b)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MINCORE, args(fresh+1, 4096, uintptr(vec))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("unaligned mincore: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MSYNC, args(uintptr(a), 4096, linux.MS_SYNC)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MSYNC, args(uintptr(a), 4096, linux.MS_SYNC|linux.MS_ASYNC)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("msync with both flags: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MSYNC, args(0x70000000, 4096, linux.MS_SYNC)); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("msync of unmapped memory: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MLOCK, args(uintptr(a)+5, 100)); err != nil {
		t.Fatalf("mlock: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_MLOCKALL, args(0x100)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("mlockall bad flags: %v", err)
	}
}
