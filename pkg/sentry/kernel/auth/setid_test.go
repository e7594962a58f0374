package auth

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRootSetUIDDropsEverything(t *testing.T) {
	c := NewRoot().Fork()
	if err := c.SetUID(65534); err != nil {
		t.Fatalf("SetUID: %v", err)
	}
	if c.RealUID != 65534 || c.EffectiveUID != 65534 || c.SavedUID != 65534 || c.FilesystemUID != 65534 {
		t.Fatalf("ids = %+v", c)
	}
	if c.PermittedCaps != 0 || c.EffectiveCaps != 0 {
		t.Fatalf("caps kept: permitted %x effective %x", c.PermittedCaps, c.EffectiveCaps)
	}
	if err := c.SetUID(0); !errors.Is(err, unix.EPERM) {
		t.Fatalf("SetUID(0) after drop = %v, want EPERM", err)
	}
}

func TestSetUIDInvalidIsEINVAL(t *testing.T) {
	c := NewRoot().Fork()
	if err := c.SetUID(UID(NoID)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("SetUID(-1) = %v, want EINVAL", err)
	}
	if err := c.SetGID(GID(NoID)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("SetGID(-1) = %v, want EINVAL", err)
	}
}

func TestSeteuidKeepsPermittedAndRegains(t *testing.T) {
	c := NewRoot().Fork()
	if err := c.SetREUID(NoID, 1000); err != nil {
		t.Fatal(err)
	}
	if c.EffectiveCaps != 0 || c.PermittedCaps != AllCapabilities {
		t.Fatalf("after seteuid(1000): eff %x perm %x", c.EffectiveCaps, c.PermittedCaps)
	}
	if c.SavedUID != 1000 {
		// setreuid(-1, e) with e != real sets saved to e.
		t.Fatalf("saved = %d, want 1000", c.SavedUID)
	}
	c = NewRoot().Fork()
	if err := c.SetRESUID(NoID, 1000, NoID); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRESUID(NoID, 0, NoID); err != nil {
		t.Fatalf("regaining euid 0: %v", err)
	}
	if c.EffectiveCaps != AllCapabilities {
		t.Fatalf("effective caps not restored: %x", c.EffectiveCaps)
	}
}

func TestKeepCapsKeepsPermitted(t *testing.T) {
	c := NewRoot().Fork()
	c.KeepCaps = true
	c.AmbientCaps = CapabilitySetOf(CAP_CHOWN)
	c.InheritableCaps = CapabilitySetOf(CAP_CHOWN)
	if err := c.SetRESUID(1000, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if c.PermittedCaps != AllCapabilities || c.EffectiveCaps != 0 || c.AmbientCaps != 0 {
		t.Fatalf("perm %x eff %x amb %x", c.PermittedCaps, c.EffectiveCaps, c.AmbientCaps)
	}
}

func TestUnprivilegedSetresuid(t *testing.T) {
	c := NewUser(1000, 1000, nil)
	c.SavedUID = 2000
	if err := c.SetRESUID(2000, NoID, 1000); err != nil {
		t.Fatalf("swap among own ids: %v", err)
	}
	if err := c.SetRESUID(NoID, 3000, NoID); !errors.Is(err, unix.EPERM) {
		t.Fatalf("foreign id = %v, want EPERM", err)
	}
	if err := c.SetREUID(3000, NoID); !errors.Is(err, unix.EPERM) {
		t.Fatalf("setreuid foreign = %v, want EPERM", err)
	}
	if err := c.SetGroups([]GID{5}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("setgroups = %v, want EPERM", err)
	}
}

func TestSetFSUIDReturnsPreviousAndTogglesFSCaps(t *testing.T) {
	c := NewRoot().Fork()
	if old := c.SetFSUID(1234); old != 0 {
		t.Fatalf("old = %d", old)
	}
	if c.EffectiveCaps.Has(CAP_DAC_OVERRIDE) || !c.EffectiveCaps.Has(CAP_SETUID) {
		t.Fatalf("fs caps not dropped alone: %x", c.EffectiveCaps)
	}
	if old := c.SetFSUID(NoID); old != 1234 {
		t.Fatalf("query = %d, want 1234", old)
	}
	c.SetFSUID(0)
	if !c.EffectiveCaps.Has(CAP_DAC_OVERRIDE) {
		t.Fatal("fs caps not restored")
	}
	u := NewUser(1000, 1000, nil)
	if old := u.SetFSUID(7); old != 1000 || u.FilesystemUID != 1000 {
		t.Fatalf("unprivileged setfsuid changed it: old %d now %d", old, u.FilesystemUID)
	}
}

func TestGIDFamily(t *testing.T) {
	c := NewRoot().Fork()
	if err := c.SetRESGID(10, 20, 30); err != nil {
		t.Fatal(err)
	}
	if c.RealGID != 10 || c.EffectiveGID != 20 || c.SavedGID != 30 || c.FilesystemGID != 20 {
		t.Fatalf("%+v", c)
	}
	if err := c.SetGID(40); err != nil || c.RealGID != 40 || c.SavedGID != 40 {
		t.Fatalf("SetGID: %v %+v", err, c)
	}
	if err := c.SetGroups(make([]GID, NGroupsMax+1)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("too many groups = %v", err)
	}
}

func TestSetCapsRules(t *testing.T) {
	c := NewUser(1000, 1000, nil)
	c.PermittedCaps = CapabilitySetOf(CAP_CHOWN) | CapabilitySetOf(CAP_KILL)
	if err := c.SetCaps(CapSets{Permitted: CapabilitySetOf(CAP_SETUID)}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("raising permitted = %v", err)
	}
	if err := c.SetCaps(CapSets{Permitted: CapabilitySetOf(CAP_CHOWN), Effective: CapabilitySetOf(CAP_KILL)}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("effective beyond permitted = %v", err)
	}
	if err := c.SetCaps(CapSets{Permitted: CapabilitySetOf(CAP_CHOWN), Inheritable: CapabilitySetOf(CAP_SETUID)}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("inheritable beyond permitted = %v", err)
	}
	if err := c.SetCaps(CapSets{Permitted: CapabilitySetOf(CAP_CHOWN), Effective: CapabilitySetOf(CAP_CHOWN), Inheritable: CapabilitySetOf(CAP_CHOWN)}); err != nil {
		t.Fatal(err)
	}
	if err := c.RaiseAmbientCap(CAP_CHOWN); err != nil {
		t.Fatal(err)
	}
	if err := c.RaiseAmbientCap(CAP_KILL); !errors.Is(err, unix.EPERM) {
		t.Fatalf("ambient of dropped cap = %v", err)
	}
	// Dropping from inheritable drops from ambient.
	if err := c.SetCaps(CapSets{Permitted: CapabilitySetOf(CAP_CHOWN)}); err != nil || c.AmbientCaps != 0 {
		t.Fatalf("ambient = %x, err %v", c.AmbientCaps, err)
	}
	if err := c.DropBoundingCap(CAP_CHOWN); !errors.Is(err, unix.EPERM) {
		t.Fatalf("unprivileged bounding drop = %v", err)
	}
	r := NewRoot().Fork()
	if err := r.DropBoundingCap(CAP_LAST_CAP + 1); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad cap = %v", err)
	}
	if err := r.DropBoundingCap(CAP_SYS_ADMIN); err != nil || r.BoundingCaps.Has(CAP_SYS_ADMIN) {
		t.Fatalf("drop: %v", err)
	}
	if x := r.ForExec(); x.PermittedCaps.Has(CAP_SYS_ADMIN) || !x.EffectiveCaps.Has(CAP_CHOWN) {
		t.Fatalf("exec caps: %x", x.PermittedCaps)
	}
}

func TestForExecOfUserKeepsAmbientOnly(t *testing.T) {
	c := NewUser(1000, 1000, nil)
	c.PermittedCaps = CapabilitySetOf(CAP_CHOWN) | CapabilitySetOf(CAP_KILL)
	c.InheritableCaps = CapabilitySetOf(CAP_CHOWN)
	c.AmbientCaps = CapabilitySetOf(CAP_CHOWN)
	c.KeepCaps = true
	x := c.ForExec()
	if x.PermittedCaps != CapabilitySetOf(CAP_CHOWN) || x.EffectiveCaps != CapabilitySetOf(CAP_CHOWN) || x.KeepCaps {
		t.Fatalf("%+v", x)
	}
}

func TestForExecOfSetuidRootByUser(t *testing.T) {
	c := NewUser(1000, 1000, nil)
	n, secure := c.ForExecOf(ExecFile{SetUID: true, UID: RootUID}, false)
	if n.RealUID != 1000 || n.EffectiveUID != RootUID || n.SavedUID != RootUID || n.FilesystemUID != RootUID {
		t.Fatalf("uids %d/%d/%d/%d", n.RealUID, n.EffectiveUID, n.SavedUID, n.FilesystemUID)
	}
	if n.PermittedCaps != AllCapabilities || n.EffectiveCaps != AllCapabilities || !secure {
		t.Fatalf("setuid-root exec: permitted %x effective %x secure %v", n.PermittedCaps, n.EffectiveCaps, secure)
	}
}

func TestForExecOfSetuidUserByRootAndSetgid(t *testing.T) {
	n, secure := NewRoot().ForExecOf(ExecFile{SetUID: true, UID: 1000, SetGID: true, GID: 50}, false)
	if n.EffectiveUID != 1000 || n.RealUID != RootUID || n.EffectiveGID != 50 || n.SavedGID != 50 {
		t.Fatalf("ids %+v", n)
	}
	// A real root keeps the permitted set, none of it effective.
	if n.PermittedCaps != AllCapabilities || n.EffectiveCaps != 0 || !secure {
		t.Fatalf("permitted %x effective %x secure %v", n.PermittedCaps, n.EffectiveCaps, secure)
	}
}

func TestForExecOfNoNewPrivsCannotGain(t *testing.T) {
	c := NewUser(1000, 1000, nil)
	c.EffectiveUID = 0 // a saved root, as after seteuid
	n, _ := c.ForExecOf(ExecFile{}, true)
	if n.EffectiveUID != 1000 || n.PermittedCaps != 0 || n.EffectiveCaps != 0 {
		t.Fatalf("no_new_privs exec gained: euid %d caps %x", n.EffectiveUID, n.PermittedCaps)
	}
	if p, secure := NewUser(1000, 1000, nil).ForExecOf(ExecFile{}, false); p.PermittedCaps != 0 || secure {
		t.Fatalf("plain user exec: caps %x secure %v", p.PermittedCaps, secure)
	}
}
