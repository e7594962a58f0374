package linux

import (
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

func TestSetresuidAndGroups(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	groups := make([]byte, 12)
	for i, g := range []uint32{300, 100, 200} {
		binary.LittleEndian.PutUint32(groups[4*i:], g)
	}
	task.CopyOut(buf, groups)
	if _, err := task.ExecuteSyscall(linux.SYS_SETGROUPS, args(3, uintptr(buf))); err != nil {
		t.Fatalf("setgroups: %v", err)
	}
	if n, err := task.ExecuteSyscall(linux.SYS_GETGROUPS, args(0, 0)); err != nil || n != 3 {
		t.Fatalf("getgroups(0) = %d, %v", n, err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_GETGROUPS, args(2, uintptr(buf))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("getgroups(too small) = %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_GETGROUPS, args(^uintptr(0), uintptr(buf))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("getgroups(-1) = %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETUID, args(0xffffffff)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("setuid(-1) = %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETRESUID, args(1000, 1000, 1000)); err != nil {
		t.Fatal(err)
	}
	if uid, _ := task.ExecuteSyscall(linux.SYS_GETEUID, args()); uid != 1000 {
		t.Fatalf("euid = %d", uid)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETUID, args(1001)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged setuid(other) = %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SETGROUPS, args(0, 0)); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged setgroups = %v", err)
	}
	// Capabilities went with uid 0.
	hdr := make([]byte, 8)
	binary.LittleEndian.PutUint32(hdr, capVersion3)
	task.CopyOut(buf, hdr)
	if _, err := task.ExecuteSyscall(linux.SYS_CAPGET, args(uintptr(buf), uintptr(buf+64))); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 24)
	task.CopyIn(buf+64, data)
	for i, b := range data {
		if b != 0 {
			t.Fatalf("capability byte %d = %#x after dropping root", i, b)
		}
	}
}

func TestCapgetVersionProbe(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	task.CopyOut(buf, make([]byte, 8)) // version 0
	if _, err := task.ExecuteSyscall(linux.SYS_CAPGET, args(uintptr(buf), 0)); err != nil {
		t.Fatalf("probe: %v", err)
	}
	hdr := make([]byte, 8)
	task.CopyIn(buf, hdr)
	if v := binary.LittleEndian.Uint32(hdr); v != capVersion3 {
		t.Fatalf("preferred version %#x", v)
	}
	task.CopyOut(buf, make([]byte, 8))
	if _, err := task.ExecuteSyscall(linux.SYS_CAPGET, args(uintptr(buf), uintptr(buf+64))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad version with data = %v", err)
	}
	binary.LittleEndian.PutUint32(hdr, capVersion1)
	binary.LittleEndian.PutUint32(hdr[4:], 999)
	task.CopyOut(buf, hdr)
	if _, err := task.ExecuteSyscall(linux.SYS_CAPSET, args(uintptr(buf), uintptr(buf+64))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("capset of another pid = %v", err)
	}
	// v1 carries the low 32 capabilities: effective = permitted = CAP_KILL.
	binary.LittleEndian.PutUint32(hdr[4:], 0)
	task.CopyOut(buf, hdr)
	d := make([]byte, 12)
	binary.LittleEndian.PutUint32(d, 1<<5)
	binary.LittleEndian.PutUint32(d[4:], 1<<5)
	task.CopyOut(buf+64, d)
	if _, err := task.ExecuteSyscall(linux.SYS_CAPSET, args(uintptr(buf), uintptr(buf+64))); err != nil {
		t.Fatal(err)
	}
	if c := task.Credentials(); c.PermittedCaps != 1<<5 || c.EffectiveCaps != 1<<5 {
		t.Fatalf("caps %x %x", c.PermittedCaps, c.EffectiveCaps)
	}
	binary.LittleEndian.PutUint32(d[4:], 1<<6)
	task.CopyOut(buf+64, d)
	if _, err := task.ExecuteSyscall(linux.SYS_CAPSET, args(uintptr(buf), uintptr(buf+64))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("gaining a capability = %v", err)
	}
}

func TestPrctlProcessAttributes(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	pr := func(a ...uintptr) (uintptr, error) { return task.ExecuteSyscall(linux.SYS_PRCTL, args(a...)) }
	if v, err := pr(linux.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || v != 0 {
		t.Fatalf("get nnp = %d %v", v, err)
	}
	if _, err := pr(linux.PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("clearing nnp = %v", err)
	}
	if _, err := pr(linux.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := pr(linux.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); v != 1 {
		t.Fatal("nnp not set")
	}
	if _, err := pr(linux.PR_SET_DUMPABLE, 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := pr(linux.PR_GET_DUMPABLE); v != 0 {
		t.Fatalf("dumpable = %d", v)
	}
	if _, err := pr(linux.PR_SET_PDEATHSIG, 1000); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad pdeathsig = %v", err)
	}
	pr(linux.PR_SET_PDEATHSIG, uintptr(unix.SIGUSR1))
	pr(linux.PR_GET_PDEATHSIG, uintptr(buf))
	b := make([]byte, 4)
	task.CopyIn(buf, b)
	if binary.LittleEndian.Uint32(b) != uint32(unix.SIGUSR1) {
		t.Fatalf("pdeathsig = %v", b)
	}
	if v, _ := pr(linux.PR_CAPBSET_READ, 21); v != 1 {
		t.Fatal("root lacks CAP_SYS_ADMIN in the bounding set")
	}
	if _, err := pr(linux.PR_CAPBSET_READ, 64); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad cap = %v", err)
	}
	if _, err := pr(linux.PR_CAPBSET_DROP, 21); err != nil {
		t.Fatal(err)
	}
	if v, _ := pr(linux.PR_CAPBSET_READ, 21); v != 0 {
		t.Fatal("drop had no effect")
	}
	if _, err := pr(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, 0, 0, 0); !errors.Is(err, unix.EPERM) {
		t.Fatalf("ambient raise without inheritable = %v", err)
	}
	if _, err := pr(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("clear all with a cap = %v", err)
	}
	if _, err := pr(linux.PR_SET_KEEPCAPS, 2); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("keepcaps 2 = %v", err)
	}
	pr(linux.PR_SET_KEEPCAPS, 1)
	if v, _ := pr(linux.PR_GET_KEEPCAPS); v != 1 {
		t.Fatal("keepcaps not set")
	}
}
