package auth

import "golang.org/x/sys/unix"

// This file holds the rules of the set*id(2) family and capset(2): each
// method changes a Fork()ed copy in place and returns the errno Linux
// gives, leaving c untouched on error.

// NGroupsMax is the most supplementary groups setgroups accepts.
const NGroupsMax = 65536

// fsCapabilities are the capabilities a filesystem UID change moves
// between 0 and non-zero turns off or on (capabilities(7)).
var fsCapabilities = CapabilitySetOf(CAP_CHOWN) | CapabilitySetOf(CAP_DAC_OVERRIDE) |
	CapabilitySetOf(CAP_DAC_READ_SEARCH) | CapabilitySetOf(CAP_FOWNER) |
	CapabilitySetOf(CAP_FSETID) | CapabilitySetOf(9 /* CAP_LINUX_IMMUTABLE */) |
	CapabilitySetOf(32 /* CAP_MAC_OVERRIDE */) | CapabilitySetOf(CAP_MKNOD)

func validID(id uint32) bool { return id != NoID }

// isOneOf reports whether id equals one of ids.
func isOneOf[T comparable](id T, ids ...T) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// fixupCapsAfterUIDChange applies "Effect of user ID changes on
// capabilities" of capabilities(7), given the UIDs before the change.
func (c *Credentials) fixupCapsAfterUIDChange(oldR, oldE, oldS, oldFS UID) {
	anyRootBefore := oldR == RootUID || oldE == RootUID || oldS == RootUID
	allNonRootNow := c.RealUID != RootUID && c.EffectiveUID != RootUID && c.SavedUID != RootUID
	if anyRootBefore && allNonRootNow {
		if !c.KeepCaps {
			c.PermittedCaps = 0
			c.EffectiveCaps = 0
		}
		c.AmbientCaps = 0
	}
	if oldE == RootUID && c.EffectiveUID != RootUID {
		c.EffectiveCaps = 0
	}
	if oldE != RootUID && c.EffectiveUID == RootUID {
		c.EffectiveCaps = c.PermittedCaps
	}
	c.fixupFSCaps(oldFS)
}

// fixupFSCaps applies the filesystem-UID rule alone (setfsuid).
func (c *Credentials) fixupFSCaps(oldFS UID) {
	if oldFS == RootUID && c.FilesystemUID != RootUID {
		c.EffectiveCaps &^= fsCapabilities
	}
	if oldFS != RootUID && c.FilesystemUID == RootUID {
		c.EffectiveCaps |= c.PermittedCaps & fsCapabilities
	}
}

// SetUID implements setuid(2).
func (c *Credentials) SetUID(uid UID) error {
	if !validID(uint32(uid)) {
		return unix.EINVAL
	}
	oldR, oldE, oldS, oldFS := c.RealUID, c.EffectiveUID, c.SavedUID, c.FilesystemUID
	switch {
	case c.HasCapability(CAP_SETUID):
		c.RealUID, c.SavedUID = uid, uid
	case uid == c.RealUID || uid == c.SavedUID:
	default:
		return unix.EPERM
	}
	c.EffectiveUID, c.FilesystemUID = uid, uid
	c.fixupCapsAfterUIDChange(oldR, oldE, oldS, oldFS)
	return nil
}

// SetREUID implements setreuid(2); NoID leaves an ID unchanged.
func (c *Credentials) SetREUID(r, e uint32) error {
	priv := c.HasCapability(CAP_SETUID)
	oldR, oldE, oldS, oldFS := c.RealUID, c.EffectiveUID, c.SavedUID, c.FilesystemUID
	newR, newE := oldR, oldE
	if validID(r) {
		newR = UID(r)
		if !priv && !isOneOf(newR, oldR, oldE) {
			return unix.EPERM
		}
	}
	if validID(e) {
		newE = UID(e)
		if !priv && !isOneOf(newE, oldR, oldE, oldS) {
			return unix.EPERM
		}
	}
	// The saved ID follows the effective one when the real ID is set or
	// the effective one moves away from the old real ID.
	if validID(r) || (validID(e) && newE != oldR) {
		c.SavedUID = newE
	}
	c.RealUID, c.EffectiveUID, c.FilesystemUID = newR, newE, newE
	c.fixupCapsAfterUIDChange(oldR, oldE, oldS, oldFS)
	return nil
}

// SetRESUID implements setresuid(2); NoID leaves an ID unchanged.
func (c *Credentials) SetRESUID(r, e, s uint32) error {
	oldR, oldE, oldS, oldFS := c.RealUID, c.EffectiveUID, c.SavedUID, c.FilesystemUID
	if !c.HasCapability(CAP_SETUID) {
		for _, id := range []uint32{r, e, s} {
			if validID(id) && !isOneOf(UID(id), oldR, oldE, oldS) {
				return unix.EPERM
			}
		}
	}
	if validID(r) {
		c.RealUID = UID(r)
	}
	if validID(e) {
		c.EffectiveUID = UID(e)
	}
	if validID(s) {
		c.SavedUID = UID(s)
	}
	c.FilesystemUID = c.EffectiveUID
	c.fixupCapsAfterUIDChange(oldR, oldE, oldS, oldFS)
	return nil
}

// SetFSUID implements setfsuid(2): it returns the previous filesystem UID
// whether or not the change was allowed, as Linux does.
func (c *Credentials) SetFSUID(uid uint32) (old UID) {
	old = c.FilesystemUID
	if !validID(uid) {
		return old
	}
	id := UID(uid)
	if c.HasCapability(CAP_SETUID) || isOneOf(id, c.RealUID, c.EffectiveUID, c.SavedUID, c.FilesystemUID) {
		c.FilesystemUID = id
		c.fixupFSCaps(old)
	}
	return old
}

// SetGID implements setgid(2).
func (c *Credentials) SetGID(gid GID) error {
	if !validID(uint32(gid)) {
		return unix.EINVAL
	}
	switch {
	case c.HasCapability(CAP_SETGID):
		c.RealGID, c.SavedGID = gid, gid
	case gid == c.RealGID || gid == c.SavedGID:
	default:
		return unix.EPERM
	}
	c.EffectiveGID, c.FilesystemGID = gid, gid
	return nil
}

// SetREGID implements setregid(2).
func (c *Credentials) SetREGID(r, e uint32) error {
	priv := c.HasCapability(CAP_SETGID)
	oldR, oldE, oldS := c.RealGID, c.EffectiveGID, c.SavedGID
	newR, newE := oldR, oldE
	if validID(r) {
		newR = GID(r)
		if !priv && !isOneOf(newR, oldR, oldE) {
			return unix.EPERM
		}
	}
	if validID(e) {
		newE = GID(e)
		if !priv && !isOneOf(newE, oldR, oldE, oldS) {
			return unix.EPERM
		}
	}
	if validID(r) || (validID(e) && newE != oldR) {
		c.SavedGID = newE
	}
	c.RealGID, c.EffectiveGID, c.FilesystemGID = newR, newE, newE
	return nil
}

// SetRESGID implements setresgid(2).
func (c *Credentials) SetRESGID(r, e, s uint32) error {
	if !c.HasCapability(CAP_SETGID) {
		for _, id := range []uint32{r, e, s} {
			if validID(id) && !isOneOf(GID(id), c.RealGID, c.EffectiveGID, c.SavedGID) {
				return unix.EPERM
			}
		}
	}
	if validID(r) {
		c.RealGID = GID(r)
	}
	if validID(e) {
		c.EffectiveGID = GID(e)
	}
	if validID(s) {
		c.SavedGID = GID(s)
	}
	c.FilesystemGID = c.EffectiveGID
	return nil
}

// SetFSGID implements setfsgid(2), returning the previous filesystem GID.
func (c *Credentials) SetFSGID(gid uint32) (old GID) {
	old = c.FilesystemGID
	if !validID(gid) {
		return old
	}
	id := GID(gid)
	if c.HasCapability(CAP_SETGID) || isOneOf(id, c.RealGID, c.EffectiveGID, c.SavedGID, c.FilesystemGID) {
		c.FilesystemGID = id
	}
	return old
}

// SetGroups implements setgroups(2).
func (c *Credentials) SetGroups(gids []GID) error {
	if !c.HasCapability(CAP_SETGID) {
		return unix.EPERM
	}
	if len(gids) > NGroupsMax {
		return unix.EINVAL
	}
	c.SetExtraGIDs(gids)
	return nil
}

// CapSets are the three sets capget/capset exchange.
type CapSets struct {
	Effective, Permitted, Inheritable CapabilitySet
}

// Caps returns c's capget view.
func (c *Credentials) Caps() CapSets {
	return CapSets{Effective: c.EffectiveCaps, Permitted: c.PermittedCaps, Inheritable: c.InheritableCaps}
}

// SetCaps implements capset(2) on the caller's own credentials.
func (c *Credentials) SetCaps(n CapSets) error {
	n.Effective &= AllCapabilities
	n.Permitted &= AllCapabilities
	n.Inheritable &= AllCapabilities
	// Without CAP_SETPCAP, inheritable may only gain what is permitted.
	if !c.HasCapability(CAP_SETPCAP) && n.Inheritable&^(c.InheritableCaps|c.PermittedCaps) != 0 {
		return unix.EPERM
	}
	// Nobody may add to inheritable beyond the bounding set.
	if n.Inheritable&^(c.InheritableCaps|c.BoundingCaps) != 0 {
		return unix.EPERM
	}
	if n.Permitted&^c.PermittedCaps != 0 {
		return unix.EPERM
	}
	if n.Effective&^n.Permitted != 0 {
		return unix.EPERM
	}
	c.EffectiveCaps, c.PermittedCaps, c.InheritableCaps = n.Effective, n.Permitted, n.Inheritable
	// An ambient capability must stay permitted and inheritable.
	c.AmbientCaps &= c.PermittedCaps & c.InheritableCaps
	return nil
}

// DropBoundingCap implements PR_CAPBSET_DROP.
func (c *Credentials) DropBoundingCap(cap Capability) error {
	if cap < 0 || cap > CAP_LAST_CAP {
		return unix.EINVAL
	}
	if !c.HasCapability(CAP_SETPCAP) {
		return unix.EPERM
	}
	c.BoundingCaps &^= CapabilitySetOf(cap)
	return nil
}

// RaiseAmbientCap implements PR_CAP_AMBIENT_RAISE.
func (c *Credentials) RaiseAmbientCap(cap Capability) error {
	if cap < 0 || cap > CAP_LAST_CAP {
		return unix.EINVAL
	}
	if !c.PermittedCaps.Has(cap) || !c.InheritableCaps.Has(cap) {
		return unix.EPERM
	}
	c.AmbientCaps |= CapabilitySetOf(cap)
	return nil
}

// ExecFile is what execve(2) learns of the program file for the new
// credentials: its set-user-ID and set-group-ID bits (already ignored by
// the caller on a nosuid mount) and owner.
type ExecFile struct {
	SetUID bool
	UID    UID
	SetGID bool
	GID    GID
}

// ForExec returns the credentials a program runs with after execve(2)
// of a file without set-ID bits or file capabilities; see ForExecOf.
func (c *Credentials) ForExec() *Credentials {
	n, _ := c.ForExecOf(ExecFile{}, false)
	return n
}

// ForExecOf returns the credentials after execve(2) of file (execve(2),
// capabilities(7) "Transformation of capabilities during execve"), and
// whether the exec is secure (AT_SECURE): a set-ID change, or a
// non-root real user gaining capabilities. With noNewPrivs a set-ID or
// capability gain is refused: the effective IDs fall back to the real
// ones and the permitted set cannot grow. PR_SET_KEEPCAPS is reset.
func (c *Credentials) ForExecOf(file ExecFile, noNewPrivs bool) (*Credentials, bool) {
	n := c.Fork()
	n.KeepCaps = false
	if file.SetUID {
		n.EffectiveUID = file.UID
	}
	if file.SetGID {
		n.EffectiveGID = file.GID
	}
	// Linux compares the new effective IDs with the old real ones.
	isSetID := n.EffectiveUID != c.RealUID || n.EffectiveGID != c.RealGID
	ambient := c.AmbientCaps
	if isSetID {
		ambient = 0
	}
	// Without file capabilities: P' = pA', except that root (by either
	// UID) gets the legacy full file sets, P' = B | I.
	permitted := ambient
	if n.EffectiveUID == RootUID || n.RealUID == RootUID {
		permitted |= c.BoundingCaps | c.InheritableCaps
	}
	// Only an effective root makes the permitted set effective.
	effective := n.EffectiveUID == RootUID
	if noNewPrivs && (isSetID || permitted&^c.PermittedCaps != 0) {
		n.EffectiveUID, n.EffectiveGID = n.RealUID, n.RealGID
		// Like Linux, the effective bit chosen above stays.
		permitted &= c.PermittedCaps
	}
	ambient &= permitted & c.InheritableCaps
	n.PermittedCaps, n.AmbientCaps = permitted, ambient
	if effective {
		n.EffectiveCaps = permitted
	} else {
		n.EffectiveCaps = ambient
	}
	// The saved and filesystem IDs follow the effective ones.
	n.SavedUID, n.SavedGID = n.EffectiveUID, n.EffectiveGID
	n.FilesystemUID, n.FilesystemGID = n.EffectiveUID, n.EffectiveGID
	secure := isSetID || (n.RealUID != RootUID && (effective || permitted&^ambient != 0))
	return n, secure
}
