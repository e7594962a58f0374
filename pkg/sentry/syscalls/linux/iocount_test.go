package linux

import (
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
)

func TestIOCountsFollowReadAndWrite(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	buf := page(t, task) + 2048
	fd, err := call(linux.SYS_OPENAT, uintptr(0xffffff9c), cstr(t, task, 0, "/iocount"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatalf("openat: %v", err)
	}
	defer call(linux.SYS_CLOSE, fd)
	c := task.IOCounts()
	r0, w0, sr0, sw0 := c.ReadBytes.Load(), c.WriteBytes.Load(), c.ReadCalls.Load(), c.WriteCalls.Load()

	task.CopyOut(buf, []byte("hello world"))
	if n, err := call(linux.SYS_WRITE, fd, uintptr(buf), 11); err != nil || n != 11 {
		t.Fatalf("write = %d, %v", n, err)
	}
	if n, err := call(linux.SYS_PREAD64, fd, uintptr(buf+100), 5, 0); err != nil || n != 5 {
		t.Fatalf("pread64 = %d, %v", n, err)
	}
	// At EOF: no bytes, but the call counts, as on Linux.
	if n, err := call(linux.SYS_READ, fd, uintptr(buf+100), 100); err != nil || n != 0 {
		t.Fatalf("read at EOF = %d, %v", n, err)
	}
	// A bad descriptor never reaches the file: not counted.
	call(linux.SYS_READ, 999, uintptr(buf+100), 100)

	if got := c.ReadBytes.Load() - r0; got != 5 {
		t.Errorf("rchar grew by %d, want 5", got)
	}
	if got := c.WriteBytes.Load() - w0; got != 11 {
		t.Errorf("wchar grew by %d, want 11", got)
	}
	if got := c.ReadCalls.Load() - sr0; got != 2 {
		t.Errorf("syscr grew by %d, want 2", got)
	}
	if got := c.WriteCalls.Load() - sw0; got != 1 {
		t.Errorf("syscw grew by %d, want 1", got)
	}

	// sendfile of several internal chunks is one read and one write.
	const size = 200 << 10
	if _, err := call(linux.SYS_FTRUNCATE, fd, size); err != nil {
		t.Fatalf("ftruncate: %v", err)
	}
	out, err := call(linux.SYS_OPENAT, uintptr(0xffffff9c), cstr(t, task, 0, "/iocount.out"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatalf("openat: %v", err)
	}
	defer call(linux.SYS_CLOSE, out)
	r0, w0, sr0, sw0 = c.ReadBytes.Load(), c.WriteBytes.Load(), c.ReadCalls.Load(), c.WriteCalls.Load()
	task.CopyOut(buf, make([]byte, 8)) // offset 0
	if n, err := call(linux.SYS_SENDFILE, out, fd, uintptr(buf), size); err != nil || n != size {
		t.Fatalf("sendfile = %d, %v", n, err)
	}
	if dr, dw, dsr, dsw := c.ReadBytes.Load()-r0, c.WriteBytes.Load()-w0, c.ReadCalls.Load()-sr0, c.WriteCalls.Load()-sw0; dr != size || dw != size || dsr != 1 || dsw != 1 {
		t.Errorf("sendfile counted rchar+%d wchar+%d syscr+%d syscw+%d, want %d %d 1 1", dr, dw, dsr, dsw, size, size)
	}
}

func BenchmarkPread64Counted(b *testing.B) {
	task, _ := newTask(b)
	a, err := task.ExecuteSyscall(linux.SYS_MMAP, args(0, 4096, linux.PROT_READ|linux.PROT_WRITE, linux.MAP_PRIVATE|linux.MAP_ANONYMOUS, ^uintptr(0), 0))
	if err != nil {
		b.Fatal(err)
	}
	task.CopyOut(hostarch.Addr(a), append([]byte("/iobench"), 0))
	fd, err := task.ExecuteSyscall(linux.SYS_OPENAT, args(uintptr(0xffffff9c), a, linux.O_RDWR|linux.O_CREAT, 0o644))
	if err != nil {
		b.Fatal(err)
	}
	defer task.ExecuteSyscall(linux.SYS_CLOSE, args(fd))
	task.ExecuteSyscall(linux.SYS_PWRITE64, args(fd, a+64, 64, 0))
	b.ReportAllocs()
	for b.Loop() {
		task.ExecuteSyscall(linux.SYS_PREAD64, args(fd, a+128, 64, 0))
	}
}
