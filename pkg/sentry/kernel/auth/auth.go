// Package auth owns the credentials of sandboxed tasks: user and group IDs,
// supplementary groups and capability sets, and the permission questions
// other packages ask of them (is this task in that group, does it hold that
// capability). Credentials are immutable once shared: a task that changes
// its IDs installs a modified copy, so readers need no lock.
package auth

import (
	"context"
	"slices"
)

// UID is a user ID as the sandbox sees it.
type UID uint32

// GID is a group ID as the sandbox sees it.
type GID uint32

const (
	// RootUID is the superuser.
	RootUID UID = 0
	// RootGID is the superuser's group.
	RootGID GID = 0
	// NoID is (uid_t)-1: "leave unchanged" in setresuid/chown.
	NoID = ^uint32(0)
	// OverflowUID is shown for IDs without a mapping (/proc/sys/kernel/overflowuid).
	OverflowUID UID = 65534
	// OverflowGID likewise for groups.
	OverflowGID GID = 65534
)

// Capability is a Linux capability number (capabilities(7)).
type Capability int

// The capabilities the Sentry checks; numbering is the kernel's.
const (
	CAP_CHOWN            Capability = 0
	CAP_DAC_OVERRIDE     Capability = 1
	CAP_DAC_READ_SEARCH  Capability = 2
	CAP_FOWNER           Capability = 3
	CAP_FSETID           Capability = 4
	CAP_KILL             Capability = 5
	CAP_SETGID           Capability = 6
	CAP_SETUID           Capability = 7
	CAP_SETPCAP          Capability = 8
	CAP_NET_BIND_SERVICE Capability = 10
	CAP_NET_ADMIN        Capability = 12
	CAP_NET_RAW          Capability = 13
	CAP_IPC_LOCK         Capability = 14
	CAP_SYS_CHROOT       Capability = 18
	CAP_SYS_PTRACE       Capability = 19
	CAP_SYS_ADMIN        Capability = 21
	CAP_SYS_NICE         Capability = 23
	CAP_SYS_RESOURCE     Capability = 24
	CAP_MKNOD            Capability = 27
	CAP_AUDIT_WRITE      Capability = 29
	CAP_SETFCAP          Capability = 31
	CAP_LAST_CAP         Capability = 40 // CAP_CHECKPOINT_RESTORE
)

// CapabilitySet is a bit set of capabilities, bit n for capability n.
type CapabilitySet uint64

// AllCapabilities holds every capability up to CAP_LAST_CAP.
const AllCapabilities CapabilitySet = 1<<(CAP_LAST_CAP+1) - 1

// CapabilitySetOf returns the set holding only c.
func CapabilitySetOf(c Capability) CapabilitySet { return 1 << uint(c) }

// Has reports whether c is in s.
func (s CapabilitySet) Has(c Capability) bool { return s&CapabilitySetOf(c) != 0 }

// Credentials are one task's identity. Treat a shared value as read-only;
// change a Fork()ed copy and install that.
type Credentials struct {
	RealUID, EffectiveUID, SavedUID, FilesystemUID UID
	RealGID, EffectiveGID, SavedGID, FilesystemGID GID
	// ExtraGIDs are the supplementary groups, sorted, without duplicates.
	ExtraGIDs []GID

	PermittedCaps   CapabilitySet
	InheritableCaps CapabilitySet
	EffectiveCaps   CapabilitySet
	BoundingCaps    CapabilitySet
	AmbientCaps     CapabilitySet
	// KeepCaps is PR_SET_KEEPCAPS.
	KeepCaps bool
}

// NewRoot returns the credentials of the sandbox's initial root process:
// uid and gid 0 with every capability (the OCI spec may narrow them).
func NewRoot() *Credentials {
	return &Credentials{
		PermittedCaps: AllCapabilities,
		EffectiveCaps: AllCapabilities,
		BoundingCaps:  AllCapabilities,
	}
}

// NewUser returns credentials for an unprivileged uid/gid with the given
// supplementary groups and no capabilities.
func NewUser(uid UID, gid GID, extra []GID) *Credentials {
	c := &Credentials{
		RealUID: uid, EffectiveUID: uid, SavedUID: uid, FilesystemUID: uid,
		RealGID: gid, EffectiveGID: gid, SavedGID: gid, FilesystemGID: gid,
		BoundingCaps: AllCapabilities,
	}
	c.SetExtraGIDs(extra)
	return c
}

// Fork returns a deep copy for modification.
func (c *Credentials) Fork() *Credentials {
	n := *c
	n.ExtraGIDs = slices.Clone(c.ExtraGIDs)
	return &n
}

// SetExtraGIDs replaces the supplementary groups, sorting and deduplicating.
func (c *Credentials) SetExtraGIDs(gids []GID) {
	c.ExtraGIDs = slices.Compact(slices.Sorted(slices.Values(gids)))
}

// HasCapability reports whether c's effective set holds cap.
func (c *Credentials) HasCapability(cap Capability) bool { return c.EffectiveCaps.Has(cap) }

// InGroup reports whether gid is c's filesystem group or a supplementary
// group, the test file permission checks use.
func (c *Credentials) InGroup(gid GID) bool {
	if c.FilesystemGID == gid {
		return true
	}
	_, found := slices.BinarySearch(c.ExtraGIDs, gid)
	return found
}

type contextKey int

const credentialsKey contextKey = 0

// ContextWithCredentials returns ctx carrying creds, for code run outside a
// task (boot, tests).
func ContextWithCredentials(ctx context.Context, creds *Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey, creds)
}

// CredentialsFromContext returns the credentials of whoever ctx runs for: a
// task answers with its own (a Task's Value method answers the key
// CredentialsKey()), other contexts with what ContextWithCredentials put
// there. It returns nil if there are none.
func CredentialsFromContext(ctx context.Context) *Credentials {
	c, _ := ctx.Value(credentialsKey).(*Credentials)
	return c
}

// CredentialsKey is the context.Value key a Task answers with its credentials.
func CredentialsKey() any { return credentialsKey }
