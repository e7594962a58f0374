package linux

import (
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

func TestAddressSpaceLimits(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	setlimit := func(r int, cur, max uint64) error {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], cur)
		binary.LittleEndian.PutUint64(b[8:], max)
		task.CopyOut(buf, b[:])
		_, err := task.ExecuteSyscall(linux.SYS_SETRLIMIT, args(uintptr(r), uintptr(buf)))
		return err
	}
	mmap := func(length uintptr, prot uintptr) error {
		_, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, length, prot, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
		return err
	}
	used := task.MemoryManager().VirtualSize()
	if err := setlimit(linux.RLIMIT_AS, used+(1<<20), linux.RLIM_INFINITY); err != nil {
		t.Fatal(err)
	}
	if err := mmap(2<<20, linux.PROT_READ); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("mmap past RLIMIT_AS: %v", err)
	}
	if err := mmap(512<<10, linux.PROT_READ); err != nil {
		t.Fatalf("mmap within RLIMIT_AS: %v", err)
	}
	setlimit(linux.RLIMIT_AS, linux.RLIM_INFINITY, linux.RLIM_INFINITY)
	// RLIMIT_DATA counts private writable memory and the heap only.
	if err := setlimit(linux.RLIMIT_DATA, 1<<20, linux.RLIM_INFINITY); err != nil {
		t.Fatal(err)
	}
	if err := mmap(64<<20, linux.PROT_READ|linux.PROT_WRITE); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("writable mmap past RLIMIT_DATA: %v", err)
	}
	if err := mmap(64<<20, linux.PROT_READ); err != nil {
		t.Fatalf("read-only mapping counted as data: %v", err)
	}
	cur, _ := task.ExecuteSyscall(linux.SYS_BRK, args(0))
	if got, _ := task.ExecuteSyscall(linux.SYS_BRK, args(cur+(64<<20))); got != cur {
		t.Fatalf("brk past RLIMIT_DATA moved the break to %#x", got)
	}
	setlimit(linux.RLIMIT_DATA, linux.RLIM_INFINITY, linux.RLIM_INFINITY)
	if got, _ := task.ExecuteSyscall(linux.SYS_BRK, args(cur+(64<<20))); got != cur+(64<<20) {
		t.Fatalf("brk without a limit = %#x", got)
	}
}

func TestNprocLimit(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], 1)
	binary.LittleEndian.PutUint64(b[8:], 1)
	task.CopyOut(buf, b[:])
	if _, err := task.ExecuteSyscall(linux.SYS_SETRLIMIT, args(linux.RLIMIT_NPROC, uintptr(buf))); err != nil {
		t.Fatal(err)
	}
	// Root is exempt; an ordinary user at the limit gets EAGAIN.
	tid, err := task.ExecuteSyscall(linux.SYS_FORK, args())
	if err != nil {
		t.Fatalf("root fork at the limit: %v", err)
	}
	releaseChild(t, task, tid)
	task.ExecuteSyscall(linux.SYS_SETRESUID, args(1000, 1000, 1000))
	if _, err := task.ExecuteSyscall(linux.SYS_FORK, args()); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("fork past RLIMIT_NPROC: %v", err)
	}
}

// RLIMIT_FSIZE bounds writes and growth of regular files: a write is cut
// at the limit, and one starting at it fails with EFBIG and SIGXFSZ, as do
// ftruncate and fallocate past it; shrinking and pipes are not limited.
func TestFsizeLimit(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	fd, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/fsize"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := cstr(t, task, 256, "0123456789abcdef")
	xfsz := linux.SignalSetOf(linux.Signal(unix.SIGXFSZ))
	// Blocked, so it stays pending where the test can see it.
	task.SetSignalMask(xfsz)
	pending := func() bool { return task.PendingSignals()&xfsz != 0 }
	var lim [16]byte
	binary.LittleEndian.PutUint64(lim[:], 10)
	binary.LittleEndian.PutUint64(lim[8:], linux.RLIM_INFINITY)
	task.CopyOut(page(t, task)+512, lim[:])
	if _, err := call(linux.SYS_SETRLIMIT, linux.RLIMIT_FSIZE, uintptr(page(t, task)+512)); err != nil {
		t.Fatal(err)
	}
	if n, err := call(linux.SYS_WRITE, fd, data, 16); err != nil || n != 10 {
		t.Fatalf("write across the limit = %d, %v; want 10", n, err)
	}
	if pending() {
		t.Fatalf("SIGXFSZ after a write that was only cut short")
	}
	if _, err := call(linux.SYS_WRITE, fd, data, 1); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("write at the limit: %v, want EFBIG", err)
	}
	if !pending() {
		t.Fatalf("no SIGXFSZ after EFBIG")
	}
	if n, err := call(linux.SYS_PWRITE64, fd, data, 16, 4); err != nil || n != 6 {
		t.Fatalf("pwrite across the limit = %d, %v; want 6", n, err)
	}
	if _, err := call(linux.SYS_FTRUNCATE, fd, 11); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("ftruncate past the limit: %v, want EFBIG", err)
	}
	if _, err := call(linux.SYS_FALLOCATE, fd, 0, 0, 11); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("fallocate past the limit: %v, want EFBIG", err)
	}
	if _, err := call(linux.SYS_FALLOCATE, fd, 1 /* FALLOC_FL_KEEP_SIZE */, 0, 4096); err != nil {
		t.Fatalf("fallocate keeping the size: %v", err)
	}
	if _, err := call(linux.SYS_FTRUNCATE, fd, 4); err != nil {
		t.Fatalf("shrinking: %v", err)
	}
	if _, err := call(linux.SYS_TRUNCATE, cstr(t, task, 0, "/fsize"), 20); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("truncate past the limit: %v, want EFBIG", err)
	}
	// sendfile is cut at the limit before reading, so the input keeps
	// what was not copied.
	srcFile := createFile(t, task, "/fsize-src", []byte("0123456789abcdef")) // not through the limit
	inFD, err := task.FDTable().NewFD(0, 1024, srcFile, kernel.FDFlags{})
	srcFile.DecRef(task)
	if err != nil {
		t.Fatal(err)
	}
	in := uintptr(inFD)
	if _, err := call(linux.SYS_LSEEK, fd, 0, linux.SEEK_SET); err != nil {
		t.Fatal(err)
	}
	if n, err := call(linux.SYS_SENDFILE, fd, in, 0, 16); err != nil || n != 10 {
		t.Fatalf("sendfile across the limit = %d, %v; want 10", n, err)
	}
	if pos, err := call(linux.SYS_LSEEK, in, 0, linux.SEEK_CUR); err != nil || pos != 10 {
		t.Fatalf("source offset after a cut sendfile = %d, %v; want 10", pos, err)
	}
	if _, err := call(linux.SYS_SENDFILE, fd, in, 0, 6); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("sendfile at the limit: %v, want EFBIG", err)
	}
	if pos, _ := call(linux.SYS_LSEEK, in, 0, linux.SEEK_CUR); pos != 10 {
		t.Fatalf("a refused sendfile consumed input: source offset %d", pos)
	}
	// Pipes are not files with a size.
	if _, err := call(linux.SYS_PIPE, uintptr(page(t, task)+1024)); err != nil {
		t.Fatal(err)
	}
	var p [8]byte
	task.CopyIn(page(t, task)+1024, p[:])
	if n, err := call(linux.SYS_WRITE, uintptr(binary.LittleEndian.Uint32(p[4:])), data, 16); err != nil || n != 16 {
		t.Fatalf("pipe write under RLIMIT_FSIZE = %d, %v; want 16", n, err)
	}
}

// fallocate(2) checks its arguments, then its mode, then the file, in
// Linux's order.
func TestFallocateErrors(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	fd, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/falloc"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/falloc"), linux.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := call(linux.SYS_OPEN, cstr(t, task, 0, "/"), linux.O_RDONLY|linux.O_DIRECTORY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call(linux.SYS_PIPE, uintptr(page(t, task)+1024)); err != nil {
		t.Fatal(err)
	}
	var p [8]byte
	task.CopyIn(page(t, task)+1024, p[:])
	pw := uintptr(binary.LittleEndian.Uint32(p[4:]))
	for _, c := range []struct {
		fd, mode, off, len uintptr
		want               unix.Errno
	}{
		{fd, 0, neg(1), 10, unix.EINVAL},
		{fd, 0, 0, 0, unix.EINVAL},
		{ro, 0, 0, 0, unix.EINVAL},         // arguments before the file
		{fd, 2, 0, 10, unix.EOPNOTSUPP},    // PUNCH_HOLE needs KEEP_SIZE
		{fd, 0x80, 0, 10, unix.EOPNOTSUPP}, // unknown mode bit
		{fd, 0x09, 0, 10, unix.EINVAL},     // COLLAPSE_RANGE with KEEP_SIZE
		{ro, 0, 0, 10, unix.EBADF},
		{pw, 0, 0, 10, unix.ESPIPE},
		{dir, 0, 0, 10, unix.EBADF}, // a directory cannot be open for writing
		{fd, 0, 1 << 62, 1 << 62, unix.EFBIG},
	} {
		if _, err := call(linux.SYS_FALLOCATE, c.fd, c.mode, c.off, c.len); !errors.Is(err, c.want) {
			t.Errorf("fallocate(fd %d, mode %#x, %d, %d) = %v, want %v", c.fd, c.mode, int64(c.off), int64(c.len), err, c.want)
		}
	}
	if _, err := call(linux.SYS_FALLOCATE, fd, 0, 0, 4096); err != nil {
		t.Errorf("fallocate: %v", err)
	}
}

// BenchmarkRegularFilePwrite is a 64-byte pwrite(2) to a tmpfs file
// through the syscall layer, without RLIMIT_FSIZE and with one set (which
// adds the limit check on each write).
func BenchmarkRegularFilePwrite(b *testing.B) {
	for _, limited := range []bool{false, true} {
		name := "unlimited"
		if limited {
			name = "fsize-limited"
		}
		b.Run(name, func(b *testing.B) {
			task, _ := newTask(b)
			buf, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, uintptr(linux.PROT_READ|linux.PROT_WRITE), linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
			if err != nil {
				b.Fatal(err)
			}
			task.CopyOut(hostarch.Addr(buf), append([]byte("/bench"), 0))
			fd, err := task.ExecuteSyscall(linux.SYS_OPEN, args(buf, linux.O_RDWR|linux.O_CREAT, 0o644))
			if err != nil {
				b.Fatal(err)
			}
			if limited {
				task.ThreadGroup().SetLimit(linux.RLIMIT_FSIZE, linux.Rlimit{Cur: 1 << 30, Max: linux.RLIM_INFINITY})
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := task.ExecuteSyscall(linux.SYS_PWRITE64, args(fd, buf+64, 64, 0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
