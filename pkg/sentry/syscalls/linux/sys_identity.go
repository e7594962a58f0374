package linux

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// changeCreds applies fn to a copy of the task's credentials and installs
// the copy if fn succeeds. Credentials are per thread, as in Linux; the C
// library makes every thread of a process call set*id.
func changeCreds(t *kernel.Task, fn func(c *auth.Credentials) error) (uintptr, error) {
	c := t.Credentials().Fork()
	if err := fn(c); err != nil {
		return 0, err
	}
	t.SetCredentials(c)
	return 0, nil
}

func id32(a arch.SyscallArgument) uint32 { return uint32(a.Value) }

// Setuid implements setuid(2).
func Setuid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return changeCreds(t, func(c *auth.Credentials) error { return c.SetUID(auth.UID(id32(args[0]))) })
}

// Setgid implements setgid(2).
func Setgid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return changeCreds(t, func(c *auth.Credentials) error { return c.SetGID(auth.GID(id32(args[0]))) })
}

// Setreuid implements setreuid(2).
func Setreuid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return changeCreds(t, func(c *auth.Credentials) error { return c.SetREUID(id32(args[0]), id32(args[1])) })
}

// Setregid implements setregid(2).
func Setregid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return changeCreds(t, func(c *auth.Credentials) error { return c.SetREGID(id32(args[0]), id32(args[1])) })
}

// Setresuid implements setresuid(2).
func Setresuid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return changeCreds(t, func(c *auth.Credentials) error {
		return c.SetRESUID(id32(args[0]), id32(args[1]), id32(args[2]))
	})
}

// Setresgid implements setresgid(2).
func Setresgid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	return changeCreds(t, func(c *auth.Credentials) error {
		return c.SetRESGID(id32(args[0]), id32(args[1]), id32(args[2]))
	})
}

// Setfsuid implements setfsuid(2): it always returns the previous ID.
func Setfsuid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	c := t.Credentials().Fork()
	old := c.SetFSUID(id32(args[0]))
	t.SetCredentials(c)
	return uintptr(old), nil
}

// Setfsgid implements setfsgid(2).
func Setfsgid(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	c := t.Credentials().Fork()
	old := c.SetFSGID(id32(args[0]))
	t.SetCredentials(c)
	return uintptr(old), nil
}

// Getgroups implements getgroups(2).
func Getgroups(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	size := args[0].Int()
	if size < 0 {
		return 0, unix.EINVAL
	}
	groups := t.Credentials().ExtraGIDs
	if size == 0 {
		return uintptr(len(groups)), nil
	}
	if int(size) < len(groups) {
		return 0, unix.EINVAL
	}
	b := make([]byte, 4*len(groups))
	for i, g := range groups {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(g))
	}
	if _, err := t.CopyOut(args[1].Pointer(), b); err != nil {
		return 0, unix.EFAULT
	}
	return uintptr(len(groups)), nil
}

// Setgroups implements setgroups(2).
func Setgroups(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if !t.Credentials().HasCapability(auth.CAP_SETGID) {
		return 0, unix.EPERM
	}
	size := args[0].Int()
	if size < 0 || size > auth.NGroupsMax {
		return 0, unix.EINVAL
	}
	gids := make([]auth.GID, size)
	if size > 0 {
		b := make([]byte, 4*size)
		if _, err := t.CopyIn(args[1].Pointer(), b); err != nil {
			return 0, unix.EFAULT
		}
		for i := range gids {
			gids[i] = auth.GID(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	return changeCreds(t, func(c *auth.Credentials) error { return c.SetGroups(gids) })
}

// Capability header versions (linux/capability.h) and how many 32-bit
// data structs each carries.
const (
	capVersion1 = 0x19980330
	capVersion2 = 0x20071026
	capVersion3 = 0x20080522
)

// capHeader reads a cap_user_header_t. For an unknown version Linux
// writes back the version it prefers and fails with EINVAL.
func capHeader(t *kernel.Task, args arch.SyscallArguments) (words int, pid int32, err error) {
	var b [8]byte
	if _, err := t.CopyIn(args[0].Pointer(), b[:]); err != nil {
		return 0, 0, unix.EFAULT
	}
	switch binary.LittleEndian.Uint32(b[:4]) {
	case capVersion1:
		words = 1
	case capVersion2, capVersion3:
		words = 2
	default:
		binary.LittleEndian.PutUint32(b[:4], capVersion3)
		if _, err := t.CopyOut(args[0].Pointer(), b[:4]); err != nil {
			return 0, 0, unix.EFAULT
		}
		return 0, 0, unix.EINVAL
	}
	return words, int32(binary.LittleEndian.Uint32(b[4:])), nil
}

// Capget implements capget(2).
func Capget(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	words, pid, err := capHeader(t, args)
	data := args[1].Pointer()
	if data == 0 {
		// A NULL data pointer probes the version: it never fails with
		// EINVAL, the preferred version having been written back.
		if err == unix.EINVAL {
			return 0, nil
		}
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	if pid < 0 {
		return 0, unix.EINVAL
	}
	target := t
	if pid != 0 && kernel.ThreadID(pid) != t.GetTID() {
		if target = t.LookupTask(kernel.ThreadID(pid)); target == nil {
			return 0, unix.ESRCH
		}
	}
	caps := target.Credentials().Caps()
	var b [24]byte
	for i := 0; i < words; i++ {
		shift := 32 * uint(i)
		binary.LittleEndian.PutUint32(b[12*i:], uint32(caps.Effective>>shift))
		binary.LittleEndian.PutUint32(b[12*i+4:], uint32(caps.Permitted>>shift))
		binary.LittleEndian.PutUint32(b[12*i+8:], uint32(caps.Inheritable>>shift))
	}
	if _, err := t.CopyOut(data, b[:12*words]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Capset implements capset(2): only the caller's own sets may change.
func Capset(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	words, pid, err := capHeader(t, args)
	if err != nil {
		return 0, err
	}
	if pid != 0 && kernel.ThreadID(pid) != t.GetTID() {
		return 0, unix.EPERM
	}
	var b [24]byte
	if _, err := t.CopyIn(args[1].Pointer(), b[:12*words]); err != nil {
		return 0, unix.EFAULT
	}
	var n auth.CapSets
	for i := 0; i < words; i++ {
		shift := 32 * uint(i)
		n.Effective |= auth.CapabilitySet(binary.LittleEndian.Uint32(b[12*i:])) << shift
		n.Permitted |= auth.CapabilitySet(binary.LittleEndian.Uint32(b[12*i+4:])) << shift
		n.Inheritable |= auth.CapabilitySet(binary.LittleEndian.Uint32(b[12*i+8:])) << shift
	}
	return changeCreds(t, func(c *auth.Credentials) error { return c.SetCaps(n) })
}
