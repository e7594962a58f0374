package linux

import (
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

func TestMountUmountSyscalls(t *testing.T) {
	task, _ := newTask(t)
	call := func(nr uintptr, a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(nr, args(a...)) }
	mnt := cstr(t, task, 0, "/mnt")
	tmpfsName := cstr(t, task, 64, "tmpfs")
	file := cstr(t, task, 128, "/mnt/f")
	bind := cstr(t, task, 192, "/bind")
	bindFile := cstr(t, task, 256, "/bind/f")
	if _, err := call(linux.SYS_MKDIR, mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := call(linux.SYS_MKDIR, bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := call(linux.SYS_MOUNT, 0, mnt, tmpfsName, 0, 0); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	fd, err := call(linux.SYS_OPEN, file, linux.O_CREAT|linux.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("create in the new tmpfs: %v", err)
	}
	call(linux.SYS_CLOSE, fd)
	if _, err := call(linux.SYS_MOUNT, mnt, bind, 0, unix.MS_BIND, 0); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if _, err := call(linux.SYS_ACCESS, bindFile, 0); err != nil {
		t.Errorf("file through the bind mount: %v", err)
	}
	if _, err := call(linux.SYS_MOUNT, 0, bind, 0, unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, 0); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	if _, err := call(linux.SYS_OPEN, bindFile, linux.O_WRONLY); !errors.Is(err, unix.EROFS) {
		t.Errorf("write open through the read-only bind: %v", err)
	}
	if fd, err := call(linux.SYS_OPEN, file, linux.O_WRONLY); err != nil {
		t.Errorf("the original mount stays writable: %v", err)
	} else {
		call(linux.SYS_CLOSE, fd)
	}
	if _, err := call(linux.SYS_MOUNT, 0, mnt, 0, unix.MS_PRIVATE|unix.MS_REC, 0); err != nil {
		t.Errorf("MS_PRIVATE: %v", err)
	}
	if _, err := call(linux.SYS_MOUNT, 0, mnt, cstr(t, task, 320, "nosuchfs"), 0, 0); !errors.Is(err, unix.ENODEV) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := call(linux.SYS_UMOUNT2, mnt, 0x100); !errors.Is(err, unix.EINVAL) {
		t.Errorf("umount2 bad flags: %v", err)
	}
	if _, err := call(linux.SYS_UMOUNT2, bind, 0); err != nil {
		t.Fatalf("umount bind: %v", err)
	}
	if _, err := call(linux.SYS_ACCESS, bindFile, 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("after umount: %v", err)
	}
	if _, err := call(linux.SYS_UMOUNT2, mnt, 0); err != nil {
		t.Fatalf("umount tmpfs: %v", err)
	}
	if _, err := call(linux.SYS_ACCESS, file, 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("tmpfs file after umount: %v", err)
	}
	if _, err := call(linux.SYS_UMOUNT2, mnt, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("umount of a non-mount: %v", err)
	}
}
