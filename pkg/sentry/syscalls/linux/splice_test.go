package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

func TestSpliceTeeVmsplice(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	buf := page(t, task)
	mkpipe := func(flags uintptr) (r, w uintptr) {
		t.Helper()
		if _, err := call(linux.SYS_PIPE2, uintptr(buf), flags); err != nil {
			t.Fatalf("pipe2: %v", err)
		}
		var b [8]byte
		task.CopyIn(buf, b[:])
		return uintptr(binary.LittleEndian.Uint32(b[:])), uintptr(binary.LittleEndian.Uint32(b[4:]))
	}
	data := make([]byte, 3000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	createFile(t, task, "/src", data).DecRef(task)
	src, err := call(linux.SYS_OPEN, cstr(t, task, 512, "/src"), linux.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := call(linux.SYS_OPEN, cstr(t, task, 512, "/dst"), linux.O_RDWR|linux.O_CREAT, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	offAddr := buf + 1024
	setOff := func(v int64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		task.CopyOut(offAddr, b[:])
	}
	getOff := func() int64 {
		var b [8]byte
		task.CopyIn(offAddr, b[:])
		return int64(binary.LittleEndian.Uint64(b[:]))
	}

	r, w := mkpipe(0)
	// File (at an explicit offset) into the pipe, pipe into the file.
	setOff(10)
	if n, err := call(linux.SYS_SPLICE, src, uintptr(offAddr), w, 0, 500, 0); err != nil || n != 500 {
		t.Fatalf("splice file→pipe = %d, %v", n, err)
	}
	if got := getOff(); got != 510 {
		t.Errorf("in offset %d, want 510", got)
	}
	if pos, _ := call(linux.SYS_LSEEK, src, 0, linux.SEEK_CUR); pos != 0 {
		t.Errorf("file offset moved to %d", pos)
	}
	if n, err := call(linux.SYS_SPLICE, r, 0, dst, 0, 1000, 0); err != nil || n != 500 {
		t.Fatalf("splice pipe→file = %d, %v", n, err)
	}
	got := make([]byte, 500)
	call(linux.SYS_PREAD64, dst, uintptr(buf+2048), 500, 0)
	task.CopyIn(buf+2048, got)
	if !bytes.Equal(got, data[10:510]) {
		t.Errorf("spliced bytes differ")
	}

	// Errors.
	for _, c := range []struct {
		what string
		a    []uintptr
		want unix.Errno
	}{
		{"no pipe", []uintptr{src, 0, dst, 0, 10, 0}, unix.EINVAL},
		{"bad flags", []uintptr{src, 0, w, 0, 10, 0x100}, unix.EINVAL},
		{"offset on a pipe", []uintptr{r, uintptr(offAddr), dst, 0, 10, 0}, unix.ESPIPE},
		{"write end as input", []uintptr{w, 0, dst, 0, 10, 0}, unix.EBADF},
		{"empty pipe, nonblocking", []uintptr{r, 0, dst, 0, 10, spliceFNonblock}, unix.EAGAIN},
	} {
		if _, err := call(linux.SYS_SPLICE, c.a...); !errors.Is(err, c.want) {
			t.Errorf("splice %s: %v, want %v", c.what, err, c.want)
		}
	}

	// tee copies without consuming; splice between pipes moves.
	r2, w2 := mkpipe(0)
	task.CopyOut(buf+200, []byte("hello"))
	call(linux.SYS_WRITE, w, uintptr(buf+200), 5)
	if n, err := call(linux.SYS_TEE, r, w2, 100, 0); err != nil || n != 5 {
		t.Fatalf("tee = %d, %v", n, err)
	}
	if _, err := call(linux.SYS_TEE, r, w, 1, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("tee onto the same pipe: %v", err)
	}
	if _, err := call(linux.SYS_TEE, r, dst, 1, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("tee to a file: %v", err)
	}
	if n, err := call(linux.SYS_SPLICE, r2, 0, w, 0, 100, 0); err != nil || n != 5 {
		t.Fatalf("splice pipe→pipe = %d, %v", n, err)
	}
	if n, _ := call(linux.SYS_READ, r, uintptr(buf+300), 64); n != 10 {
		t.Fatalf("read %d bytes after tee and splice, want 10", n)
	}
	out := make([]byte, 10)
	task.CopyIn(buf+300, out)
	if string(out) != "hellohello" {
		t.Errorf("pipe holds %q", out)
	}
	if _, err := call(linux.SYS_TEE, r, w2, 1, spliceFNonblock); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("tee of an empty pipe, nonblocking: %v", err)
	}

	// vmsplice: user memory into the pipe.
	task.CopyOut(buf+400, []byte("vmsplice!"))
	var iov [16]byte
	binary.LittleEndian.PutUint64(iov[:], uint64(buf+400))
	binary.LittleEndian.PutUint64(iov[8:], 9)
	task.CopyOut(buf+450, iov[:])
	if n, err := call(linux.SYS_VMSPLICE, w, uintptr(buf+450), 1, 0); err != nil || n != 9 {
		t.Fatalf("vmsplice = %d, %v", n, err)
	}
	if n, _ := call(linux.SYS_READ, r, uintptr(buf+300), 64); n != 9 {
		t.Fatalf("read %d after vmsplice", n)
	}
	if _, err := call(linux.SYS_VMSPLICE, dst, uintptr(buf+450), 1, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("vmsplice to a file: %v", err)
	}

	// Every writer gone: splice reads EOF.
	call(linux.SYS_CLOSE, w)
	if n, err := call(linux.SYS_SPLICE, r, 0, dst, 0, 10, 0); err != nil || n != 0 {
		t.Errorf("splice at EOF = %d, %v", n, err)
	}
	// No reader: EPIPE.
	call(linux.SYS_CLOSE, r2)
	if _, err := call(linux.SYS_SPLICE, src, 0, w2, 0, 10, 0); !errors.Is(err, unix.EPIPE) {
		t.Errorf("splice into a pipe without readers: %v", err)
	}
}
