package p9

import (
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// File is what a server exposes for one fid. The server framework validates
// names, fid states and message bounds before calling these methods, and
// serialises nothing else: methods may be called concurrently on the same File
// (e.g. two reads on one open fid) and must be safe for that.
//
// Every name passed in has been checked by ValidName. Errors should wrap a
// unix.Errno, which is sent to the client in Rlerror (EIO otherwise).
type File interface {
	// Walk resolves names (possibly none, for a clone) one component at a
	// time from this file. It returns the QIDs of the components it resolved
	// and, only if all of them were, the new File. Failing on the first name
	// is an error; failing later returns the shorter QID list and a nil File.
	Walk(names []string) ([]QID, File, error)
	GetAttr(mask AttrMask) (QID, AttrMask, Attr, error)
	SetAttr(valid SetAttrMask, attr SetAttr) error
	// Open prepares the file for ReadAt/WriteAt/Readdir with flags. It may
	// return a host file to donate to the client; the server closes it after
	// sending.
	Open(flags OpenFlags) (donate *os.File, qid QID, iounit uint32, err error)
	ReadAt(p []byte, offset uint64) (int, error)
	WriteAt(p []byte, offset uint64) (int, error)
	// Create makes and opens name in this directory. The returned File
	// replaces this one on the fid (the server closes the directory file).
	Create(name string, flags OpenFlags, mode uint32, uid UID, gid GID) (newFile File, donate *os.File, qid QID, iounit uint32, err error)
	Mkdir(name string, mode uint32, uid UID, gid GID) (QID, error)
	Symlink(name, target string, uid UID, gid GID) (QID, error)
	Mknod(name string, mode, major, minor uint32, uid UID, gid GID) (QID, error)
	// Link makes name in this directory a hard link to target.
	Link(target File, name string) error
	// Rename moves this file to newName in newDir.
	Rename(newDir File, newName string) error
	RenameAt(oldName string, newDir File, newName string) error
	UnlinkAt(name string, flags uint32) error
	// Remove unlinks this file itself (Tremove).
	Remove() error
	Readlink() (string, error)
	// Readdir returns entries of an open directory starting at cookie offset
	// (0 is the start). The server encodes as many as fit in count bytes.
	Readdir(offset uint64, count uint32) ([]Dirent, error)
	StatFS() (FSStat, error)
	FSync(datasync bool) error
	GetXattr(name string) ([]byte, error)
	ListXattr() ([]string, error)
	SetXattr(name string, value []byte, flags uint32) error
	Lock(l Lock) (status uint8, err error)
	GetLock(l Lock) (Lock, error)
	// Close releases the file once its last fid is gone.
	Close() error
}

// XattrRemover is implemented by Files that can remove an extended
// attribute (removexattr(2)); a server whose File lacks it answers a
// removal with EOPNOTSUPP.
type XattrRemover interface {
	RemoveXattr(name string) error
}

// XattrRemove is a Txattrcreate flag of this implementation (no Linux
// XATTR_* value uses the bit): with AttrSize 0, clunking the fid removes
// the attribute instead of setting it. 9P2000.L has no removal request,
// and Linux's own convention (a zero-length value) cannot be told apart
// from setting an empty value.
const XattrRemove uint32 = 1 << 31

// Attacher produces the root File for a Tattach.
type Attacher interface {
	Attach(attachName string, uid UID) (File, error)
}

// MaxXattrSize bounds an extended attribute value (XATTR_SIZE_MAX).
const MaxXattrSize = 64 << 10

// ValidName reports whether name is a single path component a client may
// name: not empty, not "." or "..", no '/' and no NUL.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= 255 &&
		!strings.ContainsAny(name, "/\x00")
}

func checkName(name string) error {
	if !ValidName(name) {
		return unix.EINVAL
	}
	return nil
}
