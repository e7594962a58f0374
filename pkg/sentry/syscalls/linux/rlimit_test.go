package linux

import (
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
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
