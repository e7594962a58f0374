// Package fragmentation reassembles IP datagrams from fragments (RFC 791
// §3.2, RFC 8200 §4.5) under memory, count and time limits. Overlapping
// fragments that disagree are treated as an attack: the whole datagram is
// discarded (RFC 5722), since they can be used to slip data past filters.
package fragmentation

import (
	"errors"
	"sort"
	"sync"
	"time"

	"carapace.dev/carapace/pkg/tcpip"
)

// Default limits.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMemoryLimit = 4 << 20
	// MaxFragments bounds fragments per datagram, so tiny fragments
	// cannot make reassembly quadratic.
	MaxFragments = 128
)

// Errors from Process. All mean the fragment (and, except for ErrTooBig
// on a fresh key, its datagram) was dropped.
var (
	ErrOverlap   = errors.New("fragmentation: overlapping fragment")
	ErrTooBig    = errors.New("fragmentation: datagram exceeds maximum size")
	ErrTooMany   = errors.New("fragmentation: too many fragments")
	ErrBadLength = errors.New("fragmentation: inconsistent datagram length")
)

// Key identifies a datagram being reassembled.
type Key struct {
	Src, Dst tcpip.Address
	ID       uint32
	Proto    uint8
}

type fragment struct {
	off  int
	data []byte
}

type datagram struct {
	key   Key
	frags []fragment
	size  int
	total int // -1 until the last fragment arrives
	timer tcpip.Timer
	seq   uint64
}

// Reassembler holds datagrams in progress.
type Reassembler struct {
	clock     tcpip.Clock
	timeout   time.Duration
	memLimit  int
	maxSize   int
	onTimeout func()

	mu   sync.Mutex
	used int
	seq  uint64
	dgs  map[Key]*datagram
}

// New makes a reassembler. maxSize is the largest datagram payload
// (65535-20 for IPv4); onTimeout, if set, is called per expired datagram.
func New(clock tcpip.Clock, timeout time.Duration, memLimit, maxSize int, onTimeout func()) *Reassembler {
	return &Reassembler{clock: clock, timeout: timeout, memLimit: memLimit, maxSize: maxSize, onTimeout: onTimeout, dgs: make(map[Key]*datagram)}
}

// InProgress is the number of datagrams being reassembled.
func (r *Reassembler) InProgress() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.dgs)
}

// MemoryUsed is the bytes held by incomplete datagrams.
func (r *Reassembler) MemoryUsed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

// Process adds the fragment at byte offset off; more is the more-fragments
// flag. When the datagram is complete it returns the reassembled payload.
// data is copied, so the caller's buffer may be reused.
func (r *Reassembler) Process(k Key, off int, more bool, data []byte) ([]byte, bool, error) {
	end := off + len(data)
	if end > r.maxSize {
		r.mu.Lock()
		r.dropLocked(k)
		r.mu.Unlock()
		return nil, false, ErrTooBig
	}
	if more && len(data)%8 != 0 {
		return nil, false, ErrBadLength
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dgs[k]
	if d == nil {
		r.seq++
		d = &datagram{key: k, total: -1, seq: r.seq}
		r.dgs[k] = d
		key := k
		d.timer = r.clock.AfterFunc(r.timeout, func() { r.expire(key, d) })
	}
	if !more {
		if (d.total >= 0 && d.total != end) || (d.total < 0 && d.maxEnd() > end) {
			r.dropLocked(k)
			return nil, false, ErrBadLength
		}
		d.total = end
	} else if d.total >= 0 && end > d.total {
		r.dropLocked(k)
		return nil, false, ErrBadLength
	}
	i := sort.Search(len(d.frags), func(i int) bool { return d.frags[i].off >= off })
	// Exact duplicates (a retransmitted fragment) are harmless; any other
	// overlap kills the datagram.
	if i < len(d.frags) && d.frags[i].off == off && len(d.frags[i].data) == len(data) && string(d.frags[i].data) == string(data) {
		return nil, false, nil
	}
	if (i > 0 && d.frags[i-1].off+len(d.frags[i-1].data) > off) || (i < len(d.frags) && d.frags[i].off < end) {
		r.dropLocked(k)
		return nil, false, ErrOverlap
	}
	if len(d.frags) >= MaxFragments {
		r.dropLocked(k)
		return nil, false, ErrTooMany
	}
	if len(data) == 0 && more {
		return nil, false, nil
	}
	c := append([]byte(nil), data...)
	d.frags = append(d.frags, fragment{})
	copy(d.frags[i+1:], d.frags[i:])
	d.frags[i] = fragment{off: off, data: c}
	d.size += len(c)
	r.used += len(c)
	for r.used > r.memLimit && len(r.dgs) > 0 {
		r.evictOldestLocked()
	}
	if r.dgs[k] != d || d.total < 0 || d.size != d.total {
		return nil, false, nil
	}
	// Sizes match and nothing overlaps, so the fragments tile [0, total).
	out := make([]byte, d.total)
	for _, f := range d.frags {
		copy(out[f.off:], f.data)
	}
	r.dropLocked(k)
	return out, true, nil
}

func (d *datagram) maxEnd() int {
	if len(d.frags) == 0 {
		return 0
	}
	f := d.frags[len(d.frags)-1]
	return f.off + len(f.data)
}

func (r *Reassembler) dropLocked(k Key) {
	d := r.dgs[k]
	if d == nil {
		return
	}
	d.timer.Stop()
	r.used -= d.size
	delete(r.dgs, k)
}

func (r *Reassembler) evictOldestLocked() {
	var oldest *datagram
	for _, d := range r.dgs {
		if oldest == nil || d.seq < oldest.seq {
			oldest = d
		}
	}
	if oldest != nil {
		r.dropLocked(oldest.key)
	}
}

func (r *Reassembler) expire(k Key, d *datagram) {
	r.mu.Lock()
	if r.dgs[k] != d {
		r.mu.Unlock()
		return
	}
	r.dropLocked(k)
	r.mu.Unlock()
	if r.onTimeout != nil {
		r.onTimeout()
	}
}
