package vfs

import (
	"context"
	"sync"
	"sync/atomic"
)

// DentryCacheLimiter is implemented by a FilesystemImpl whose inodes can
// be looked up again after the vfs forgets them (a 9P tree, an overlay),
// so that the names a long walk leaves behind (`find /`) need not stay
// cached forever. Filesystems whose dentries are their only copy of the
// tree (tmpfs) do not implement it.
type DentryCacheLimiter interface {
	// DentryCacheLimit is the number of unreferenced dentries the
	// filesystem keeps cached (asked once, when it is made); 0 keeps all.
	DentryCacheLimit() int
}

// DefaultDentryCacheLimit is a reasonable DentryCacheLimit. Each cached
// Gofer file costs the Gofer two or three host descriptors, and an
// overlay's cached names pin their lower Gofer files on top of the
// Gofer's own cache, so the two caches together must stay well inside
// the Gofer's RLIMIT_NOFILE.
const DefaultDentryCacheLimit = 1024

// dentryLRU holds a filesystem's unreferenced, still linked dentries,
// most recently released first. Eviction gives a dentry that was used
// again since it entered the list a second chance (the CLOCK rule), so a
// dentry walked through often costs one atomic store per walk, not a lock.
type dentryLRU struct {
	limit int

	mu         sync.Mutex
	head, tail *Dentry
	len        int
}

// lruLinks are a dentry's place in its filesystem's dentryLRU.
type lruLinks struct {
	prev, next *Dentry
	// inList is guarded by dentryLRU.mu; listed mirrors it for the
	// lock-free check on the DecRef path.
	inList     bool
	listed     atomic.Bool
	referenced atomic.Bool
}

func (l *dentryLRU) pushFrontLocked(d *Dentry) {
	d.lru.prev, d.lru.next = nil, l.head
	if l.head != nil {
		l.head.lru.prev = d
	} else {
		l.tail = d
	}
	l.head = d
	d.lru.inList = true
	d.lru.listed.Store(true)
	l.len++
}

func (l *dentryLRU) removeLocked(d *Dentry) {
	if d.lru.prev != nil {
		d.lru.prev.lru.next = d.lru.next
	} else {
		l.head = d.lru.next
	}
	if d.lru.next != nil {
		d.lru.next.lru.prev = d.lru.prev
	} else {
		l.tail = d.lru.prev
	}
	d.lru.prev, d.lru.next = nil, nil
	d.lru.inList = false
	d.lru.listed.Store(false)
	l.len--
}

// noteUnused records that d lost its last reference while linked.
func (fs *Filesystem) noteUnused(ctx context.Context, d *Dentry) {
	if d.lru.listed.Load() {
		d.lru.referenced.Store(true)
		return
	}
	l := &fs.lru
	l.mu.Lock()
	if !d.lru.inList {
		l.pushFrontLocked(d)
	}
	over := l.len > l.limit
	l.mu.Unlock()
	if over {
		fs.evict(ctx)
	}
}

// evict forgets unreferenced leaf dentries from the cold end of the list
// until it is within its limit, then releases their inodes.
func (fs *Filesystem) evict(ctx context.Context) {
	var release []Inode
	l := &fs.lru
	fs.treeMu.Lock()
	l.mu.Lock()
	// Evict a little below the limit so that the next few releases do
	// not each take the tree lock. Each dentry is looked at most twice
	// (a second chance), so the loop ends even if nothing can go.
	target := l.limit - l.limit/16
	for budget := 2 * l.len; l.len > target && budget > 0 && l.tail != nil; budget-- {
		d := l.tail
		l.removeLocked(d)
		if d.refs.Load() != 0 || d.dead.Load() || d.released || d.parent == nil {
			// In use again (it rejoins at its next release), or gone.
			continue
		}
		if d.lru.referenced.Swap(false) {
			l.pushFrontLocked(d)
			continue
		}
		if len(d.children) > 0 || d.mounts.Load() != 0 || d.watchers.Load() != 0 {
			// A directory goes once its cached children have (see
			// below); a mount point stays.
			continue
		}
		p := d.parent
		delete(p.children, d.name)
		d.parent = nil
		d.released = true
		release = append(release, d.inode)
		if p.refs.Load() == 0 && len(p.children) == 0 && !p.lru.inList && p.parent != nil && !p.dead.Load() {
			l.pushFrontLocked(p)
		}
	}
	l.mu.Unlock()
	fs.treeMu.Unlock()
	for _, ino := range release {
		ino.DecRef(ctx)
	}
}

// CachedDentries reports how many unreferenced dentries fs keeps cached
// (for tests and /proc-style statistics).
func (fs *Filesystem) CachedDentries() int {
	fs.lru.mu.Lock()
	defer fs.lru.mu.Unlock()
	return fs.lru.len
}
