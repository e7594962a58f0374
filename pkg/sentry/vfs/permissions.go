package vfs

import (
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// AccessTypes is a set of MayRead/MayWrite/MayExec.
type AccessTypes uint8

// Access types, bit values of access(2)'s mode.
const (
	MayExec  AccessTypes = 1
	MayWrite AccessTypes = 2
	MayRead  AccessTypes = 4
)

// GenericCheckPermissions decides whether creds may access a file of the
// given mode and owner, per the owner/group/other classes of inode(7) and
// the CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH overrides of capabilities(7).
func GenericCheckPermissions(creds *auth.Credentials, ats AccessTypes, mode uint32, uid auth.UID, gid auth.GID) error {
	var perms uint32
	switch {
	case creds.FilesystemUID == uid:
		perms = (mode >> 6) & 7
	case creds.InGroup(gid):
		perms = (mode >> 3) & 7
	default:
		perms = mode & 7
	}
	if uint32(ats)&perms == uint32(ats) {
		return nil
	}
	isDir := mode&unix.S_IFMT == unix.S_IFDIR
	if creds.HasCapability(auth.CAP_DAC_OVERRIDE) {
		// Execute is granted only where someone could execute (any x bit)
		// or on a directory (search).
		if ats&MayExec == 0 || isDir || mode&0o111 != 0 {
			return nil
		}
	}
	if creds.HasCapability(auth.CAP_DAC_READ_SEARCH) {
		if ats&MayWrite == 0 && (ats&MayExec == 0 || isDir) {
			return nil
		}
	}
	return unix.EACCES
}

func checkInodePermissions(creds *auth.Credentials, ino Inode, ats AccessTypes) error {
	uid, gid := ino.Owner()
	return GenericCheckPermissions(creds, ats, ino.Mode(), uid, gid)
}

// canActAsOwner reports whether creds own the file or hold CAP_FOWNER.
func canActAsOwner(creds *auth.Credentials, uid auth.UID) bool {
	return creds.FilesystemUID == uid || creds.HasCapability(auth.CAP_FOWNER)
}

// mayDelete checks that creds may remove or rename away child from dir:
// write and search on dir, and the sticky-bit rule (only the file's owner,
// the directory's owner or CAP_FOWNER).
func mayDelete(creds *auth.Credentials, dir, child Inode) error {
	if err := checkInodePermissions(creds, dir, MayWrite|MayExec); err != nil {
		return err
	}
	if dir.Mode()&unix.S_ISVTX != 0 {
		duid, _ := dir.Owner()
		cuid, _ := child.Owner()
		if creds.FilesystemUID != duid && !canActAsOwner(creds, cuid) {
			return unix.EPERM
		}
	}
	return nil
}

// MayOpen converts open(2) flags to the access they need.
func accessFromOpenFlags(flags uint32) AccessTypes {
	var ats AccessTypes
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		ats = MayRead
	case unix.O_WRONLY:
		ats = MayWrite
	default:
		ats = MayRead | MayWrite
	}
	if flags&unix.O_TRUNC != 0 {
		ats |= MayWrite
	}
	return ats
}
