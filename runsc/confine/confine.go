// Package confine narrows what a runsc sandbox process (the Gofer, the
// Sentry) can reach on the host once it holds the descriptors it needs: an
// empty, read-only root in place of the host's filesystem view, a reduced
// capability set, and no_new_privs. Capabilities and no_new_privs are
// per-thread attributes in Linux, so they are applied to every thread of
// the Go runtime at once (syscall.AllThreadsSyscall; runsc has no cgo).
package confine

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PivotToEmptyRoot replaces the calling process's root with an empty,
// read-only tmpfs and detaches the old root, so no host path resolves any
// more; descriptors opened before keep working. The process must be alone
// in a mount namespace of its own (CLONE_NEWNS), or it would change the
// host's mounts.
func PivotToEmptyRoot() error {
	// Nothing done here may propagate back to the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// The new root must be a mount point; /proc exists on every Linux
	// host, and covering it in this private namespace hides nothing that
	// matters once the old root is gone.
	const newRoot = "/proc"
	if err := unix.Mount("runsc-root", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,nr_inodes=2,mode=0555"); err != nil {
		return fmt.Errorf("mounting the empty root: %w", err)
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("entering the empty root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one at
	// "."; detaching "." then leaves only the new root (pivot_root(2)).
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to the new root: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("making the empty root read-only: %w", err)
	}
	return nil
}

// lastCap is the highest capability number this code knows of
// (CAP_CHECKPOINT_RESTORE); the kernel may know fewer.
const lastCap = 40

// DropCapabilities leaves every thread with exactly the capabilities in
// keep (as effective and permitted; none inheritable or ambient) and drops
// the rest from the bounding set, so they cannot come back through exec.
func DropCapabilities(keep ...int) error {
	var keepMask uint64
	for _, c := range keep {
		if c < 0 || c > lastCap {
			return fmt.Errorf("capability %d out of range", c)
		}
		keepMask |= 1 << uint(c)
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	for c := 0; c <= lastCap; c++ {
		if keepMask&(1<<uint(c)) != 0 {
			continue
		}
		// EINVAL: the running kernel does not know this capability.
		if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0].Effective, data[0].Permitted = uint32(keepMask), uint32(keepMask)
	data[1].Effective, data[1].Permitted = uint32(keepMask>>32), uint32(keepMask>>32)
	if err := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// SetNoNewPrivs makes execve unable to grant privileges (setuid bits, file
// capabilities) to this process or its children; seccomp filters need it.
func SetNoNewPrivs() error {
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return nil
}

func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall(trap, a1, a2, a3)
	if errno != 0 {
		return errno
	}
	return nil
}
