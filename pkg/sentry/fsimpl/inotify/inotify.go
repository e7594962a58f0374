// Package inotify owns inotify instances (inotify(7)): the file that
// inotify_init1(2) returns, its watches (inotify_add_watch(2),
// inotify_rm_watch(2)) and its queue of events, read as struct
// inotify_event records. The vfs reports the events of its operations to
// the watches (vfs.Watch); this package only queues and reads them.
package inotify

import (
	"context"
	"encoding/binary"
	"sync"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

const (
	// eventHeaderSize is sizeof(struct inotify_event) without the name.
	eventHeaderSize = 16
	// MaxQueuedEvents is /proc/sys/fs/inotify/max_queued_events: past
	// it, one IN_Q_OVERFLOW event stands for every event lost.
	MaxQueuedEvents = 16384
	// settableMask is what inotify_add_watch(2) accepts.
	settableMask = unix.IN_ALL_EVENTS | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW |
		unix.IN_EXCL_UNLINK | unix.IN_MASK_ADD | unix.IN_ONESHOT | inMaskCreate
	// inMaskCreate is IN_MASK_CREATE (Linux 4.18): fail if the inode is
	// already watched.
	inMaskCreate = 0x10000000
)

// event is one queued event.
type event struct {
	wd     int32
	mask   uint32
	cookie uint32
	name   string
}

// size is the event's length as read(2) returns it: the name NUL-padded
// to a multiple of the header size, as Linux pads it.
func (e *event) size() int {
	if e.name == "" {
		return eventHeaderSize
	}
	n := len(e.name) + 1
	n = (n + eventHeaderSize - 1) / eventHeaderSize * eventHeaderSize
	return eventHeaderSize + n
}

func (e *event) nameLen() int { return e.size() - eventHeaderSize }

// Instance is an inotify file.
type Instance struct {
	vfs.FileDescriptionDefaults
	v     *vfs.VirtualFilesystem
	queue waiter.Queue

	mu      sync.Mutex
	events  []event
	head    int
	bytes   int // total size of queued events
	nextWD  int32
	byWD    map[int32]*vfs.Watch
	byInode map[vfs.Inode]*vfs.Watch
}

// New returns a new inotify file; flags are inotify_init1(2)'s (IN_NONBLOCK
// and IN_CLOEXEC, the latter for the caller's descriptor).
func New(ctx context.Context, v *vfs.VirtualFilesystem, flags uint32) (*vfs.FileDescription, error) {
	if flags&^uint32(unix.IN_NONBLOCK|unix.IN_CLOEXEC) != 0 {
		return nil, unix.EINVAL
	}
	in := &Instance{v: v, nextWD: 1, byWD: make(map[int32]*vfs.Watch), byInode: make(map[vfs.Inode]*vfs.Watch)}
	vd := v.NewAnonVirtualDentry("inotify")
	defer vd.DecRef(ctx)
	status := uint32(unix.O_RDONLY)
	if flags&unix.IN_NONBLOCK != 0 {
		status |= unix.O_NONBLOCK
	}
	return vfs.NewFileDescription(in, status, vd), nil
}

// FromFile returns the instance behind fd, or nil.
func FromFile(fd *vfs.FileDescription) *Instance {
	in, _ := fd.Impl().(*Instance)
	return in
}

// AddWatch is inotify_add_watch(2) on the file vd names (the caller
// resolved it, following a final symlink unless IN_DONT_FOLLOW, and
// checked read permission). It returns the watch descriptor.
func (in *Instance) AddWatch(vd vfs.VirtualDentry, mask uint32) (int32, error) {
	if mask&^uint32(settableMask) != 0 || mask&unix.IN_ALL_EVENTS == 0 {
		return 0, unix.EINVAL
	}
	if mask&unix.IN_MASK_ADD != 0 && mask&inMaskCreate != 0 {
		return 0, unix.EINVAL
	}
	ino := vd.Dentry().Inode()
	if mask&unix.IN_ONLYDIR != 0 && ino.Mode()&unix.S_IFMT != unix.S_IFDIR {
		return 0, unix.ENOTDIR
	}
	// Only these flags stay in the watch's mask.
	keep := mask & (unix.IN_ALL_EVENTS | unix.IN_EXCL_UNLINK | unix.IN_ONESHOT)
	in.mu.Lock()
	defer in.mu.Unlock()
	if w, ok := in.byInode[ino]; ok {
		if mask&inMaskCreate != 0 {
			return 0, unix.EEXIST
		}
		if mask&unix.IN_MASK_ADD != 0 {
			keep |= w.Mask()
		}
		w.SetMask(keep)
		return w.WD(), nil
	}
	wd := in.nextWD
	in.nextWD++
	w := in.v.AddWatch(vd, in, wd, keep)
	in.byWD[wd] = w
	in.byInode[ino] = w
	return wd, nil
}

// RmWatch is inotify_rm_watch(2): EINVAL for an unknown descriptor.
func (in *Instance) RmWatch(ctx context.Context, wd int32) error {
	in.mu.Lock()
	w, ok := in.byWD[wd]
	if ok {
		in.forgetLocked(w)
	}
	in.mu.Unlock()
	if !ok {
		return unix.EINVAL
	}
	if in.v.RemoveWatch(ctx, w) {
		in.enqueue(event{wd: wd, mask: unix.IN_IGNORED})
	}
	return nil
}

func (in *Instance) forgetLocked(w *vfs.Watch) {
	delete(in.byWD, w.WD())
	if in.byInode[w.Inode()] == w {
		delete(in.byInode, w.Inode())
	}
}

// QueueEvent implements vfs.WatchOwner.
func (in *Instance) QueueEvent(w *vfs.Watch, mask, cookie uint32, name string) {
	in.enqueue(event{wd: w.WD(), mask: mask, cookie: cookie, name: name})
}

// WatchRemoved implements vfs.WatchOwner.
func (in *Instance) WatchRemoved(w *vfs.Watch) {
	in.mu.Lock()
	in.forgetLocked(w)
	in.mu.Unlock()
	in.enqueue(event{wd: w.WD(), mask: unix.IN_IGNORED})
}

// enqueue adds e unless it repeats the newest queued event (inotify(7):
// identical successive events coalesce), or the queue is full.
func (in *Instance) enqueue(e event) {
	in.mu.Lock()
	if n := len(in.events); n > in.head && in.events[n-1] == e {
		in.mu.Unlock()
		return
	}
	if len(in.events)-in.head >= MaxQueuedEvents {
		e = event{wd: -1, mask: unix.IN_Q_OVERFLOW}
		if in.events[len(in.events)-1] == e {
			in.mu.Unlock()
			return
		}
	}
	in.events = append(in.events, e)
	in.bytes += e.size()
	in.mu.Unlock()
	in.queue.Notify(waiter.ReadableEvents)
}

// Read implements vfs.FileDescriptionImpl: as many whole events as fit;
// EINVAL if not even the first does.
func (in *Instance) Read(ctx context.Context, _ *vfs.FileDescription, dst usermem.IOSequence, _ vfs.ReadOptions) (int64, error) {
	room := dst.NumBytes()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.head == len(in.events) {
		return 0, unix.EAGAIN
	}
	var buf []byte
	i := in.head
	for ; i < len(in.events); i++ {
		e := &in.events[i]
		if int64(len(buf)+e.size()) > room {
			break
		}
		buf = appendEvent(buf, e)
	}
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	n, err := dst.CopyOut(ctx, buf)
	if n < len(buf) {
		// Nothing is consumed by a read that faulted.
		if err == nil {
			err = unix.EFAULT
		}
		return 0, err
	}
	for j := in.head; j < i; j++ {
		in.bytes -= in.events[j].size()
		in.events[j] = event{}
	}
	in.head = i
	if in.head == len(in.events) {
		in.events, in.head = in.events[:0], 0
	}
	return int64(n), nil
}

func appendEvent(b []byte, e *event) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(e.wd))
	b = binary.LittleEndian.AppendUint32(b, e.mask)
	b = binary.LittleEndian.AppendUint32(b, e.cookie)
	b = binary.LittleEndian.AppendUint32(b, uint32(e.nameLen()))
	if e.name != "" {
		b = append(b, e.name...)
		for pad := e.nameLen() - len(e.name); pad > 0; pad-- {
			b = append(b, 0)
		}
	}
	return b
}

// Ioctl implements vfs.FileDescriptionImpl: FIONREAD is the bytes a read
// could return.
func (in *Instance) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, _ uintptr, args [6]uintptr) (uintptr, error) {
	if args[1] != linux.FIONREAD {
		return 0, unix.ENOTTY
	}
	in.mu.Lock()
	n := in.bytes
	in.mu.Unlock()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(n))
	if _, err := io.CopyOut(ctx, hostarch.Addr(args[2]), b[:], usermem.IOOpts{}); err != nil {
		return 0, err
	}
	return 0, nil
}

// Readiness implements waiter.Waitable.
func (in *Instance) Readiness(mask waiter.EventMask) waiter.EventMask {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.head < len(in.events) {
		return mask & waiter.ReadableEvents
	}
	return 0
}

// EventRegister implements waiter.Waitable.
func (in *Instance) EventRegister(e *waiter.Entry) error {
	in.queue.EventRegister(e)
	return nil
}

// EventUnregister implements waiter.Waitable.
func (in *Instance) EventUnregister(e *waiter.Entry) { in.queue.EventUnregister(e) }

// Release implements vfs.FileDescriptionImpl: the watches end with the
// instance.
func (in *Instance) Release(ctx context.Context) {
	in.mu.Lock()
	ws := make([]*vfs.Watch, 0, len(in.byWD))
	for _, w := range in.byWD {
		ws = append(ws, w)
	}
	in.byWD, in.byInode = map[int32]*vfs.Watch{}, map[vfs.Inode]*vfs.Watch{}
	in.mu.Unlock()
	for _, w := range ws {
		in.v.RemoveWatch(ctx, w)
	}
}
