// Package pipe owns pipes (pipe(7)) and FIFOs (fifo(7)): the bounded byte
// buffer shared by a read end and a write end, its atomicity, EOF, EPIPE and
// readiness rules, packet mode (O_DIRECT), the open semantics of named
// FIFOs, and the small filesystem that anonymous pipes live in.
//
// Reads and writes never block here: they return EAGAIN and the caller
// waits on the file's readiness (see pkg/waiter). Only FIFO open, which
// must wait for a peer, blocks, through the context's waiter.Blocker.
package pipe

import (
	"context"
	"slices"
	"sync"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

const (
	// AtomicIOBytes is PIPE_BUF: writes up to this size are never
	// interleaved with other writes.
	AtomicIOBytes = 4096
	// DefaultPipeSize is a new pipe's capacity (16 pages).
	DefaultPipeSize = 16 * hostarch.PageSize
	// MinPipeSize is the smallest capacity F_SETPIPE_SZ sets.
	MinPipeSize = hostarch.PageSize
	// MaxPipeSize is /proc/sys/fs/pipe-max-size.
	MaxPipeSize = 1 << 20
)

// segment is a run of buffered bytes written the same way: a packet
// (written in O_DIRECT mode, read whole or truncated) or stream bytes.
type segment struct {
	n      int
	packet bool
}

// Pipe is the shared state of one pipe or FIFO.
type Pipe struct {
	queue waiter.Queue

	mu sync.Mutex
	// buf[off:] holds the buffered bytes; segs[segHead:] describes them
	// in order.
	buf     []byte
	off     int
	segs    []segment
	segHead int
	size    int // buffered bytes
	max     int // capacity

	readers, writers int
	// hadWriter is set once any writer has opened, so that a FIFO reader
	// that never saw one does not report POLLHUP.
	hadWriter bool
	// Open counters let a blocking FIFO open wait for a peer's open even
	// if the peer has already closed again.
	rOpens, wOpens uint64
	openQueue      waiter.Queue
	// id orders pipes for locking two at once.
	id uint64
}

// NewPipe returns an empty pipe with the default capacity and no ends.
func NewPipe() *Pipe {
	return &Pipe{max: DefaultPipeSize, id: pipeIDs.Add(1)}
}

// free returns the space left. Call with mu held.
func (p *Pipe) free() int { return p.max - p.size }

// readiness of one end. Call with mu held.
func (p *Pipe) readinessLocked(reader, writer bool, mask waiter.EventMask) waiter.EventMask {
	var r waiter.EventMask
	if reader {
		if p.size > 0 {
			r |= waiter.ReadableEvents
		}
		if p.writers == 0 && p.hadWriter {
			r |= waiter.EventHUp
		}
	}
	if writer {
		if p.free() >= AtomicIOBytes || (p.free() > 0 && p.max < AtomicIOBytes) {
			r |= waiter.WritableEvents
		}
		if p.readers == 0 {
			r |= waiter.EventErr
		}
	}
	return r & (mask | waiter.EventErr | waiter.EventHUp)
}

// read copies buffered bytes to dst. In packet mode a packet is consumed
// whole: bytes beyond len(dst) are discarded (pipe(2), O_DIRECT).
func (p *Pipe) read(ctx context.Context, dst usermem.IOSequence) (int64, error) {
	want := dst.NumBytes()
	if want == 0 {
		return 0, nil
	}
	p.mu.Lock()
	if p.size == 0 {
		writers := p.writers
		p.mu.Unlock()
		if writers == 0 {
			return 0, nil // EOF
		}
		return 0, unix.EAGAIN
	}
	var done int64
	var err error
	for p.segHead < len(p.segs) && done < want {
		s := &p.segs[p.segHead]
		if s.packet && done > 0 {
			break // one packet per read
		}
		n := min(int64(s.n), want-done)
		c, cerr := dst.CopyOut(ctx, p.buf[p.off:p.off+int(n)])
		dst = dst.DropFirst(int64(c))
		done += int64(c)
		consumed := c
		if s.packet && cerr == nil {
			consumed = s.n // the rest of the packet is discarded
		}
		p.consume(consumed)
		if cerr != nil {
			err = cerr
			break
		}
		if s.packet {
			break
		}
	}
	p.mu.Unlock()
	if done > 0 {
		p.queue.Notify(waiter.WritableEvents)
		return done, nil
	}
	return 0, err
}

// consume drops n bytes from the head. Call with mu held.
func (p *Pipe) consume(n int) {
	p.off += n
	p.size -= n
	for n > 0 {
		s := &p.segs[p.segHead]
		if s.n > n {
			s.n -= n
			break
		}
		n -= s.n
		p.segHead++
	}
	if p.size == 0 {
		// Reuse the buffers from the start; keep their capacity.
		p.buf, p.off = p.buf[:0], 0
		p.segs, p.segHead = p.segs[:0], 0
	} else if p.segHead > 64 && p.segHead > len(p.segs)/2 {
		m := copy(p.segs, p.segs[p.segHead:])
		p.segs, p.segHead = p.segs[:m], 0
	}
}

// write appends src. Writes of at most PIPE_BUF go in whole or not at all;
// larger ones may be partial. EPIPE when nobody can read.
func (p *Pipe) write(ctx context.Context, src usermem.IOSequence, packet bool) (int64, error) {
	total := src.NumBytes()
	p.mu.Lock()
	if p.readers == 0 {
		p.mu.Unlock()
		return 0, unix.EPIPE
	}
	if total == 0 {
		p.mu.Unlock()
		return 0, nil
	}
	free := int64(p.free())
	if free == 0 || (total <= AtomicIOBytes && free < total) {
		p.mu.Unlock()
		return 0, unix.EAGAIN
	}
	n := min(total, free)
	if p.off > 0 && len(p.buf)+int(n) > cap(p.buf) {
		// Slide the live bytes to the front before growing.
		m := copy(p.buf, p.buf[p.off:])
		p.buf, p.off = p.buf[:m], 0
	}
	start := len(p.buf)
	p.buf = slices.Grow(p.buf, int(n))[:start+int(n)]
	c, err := src.CopyIn(ctx, p.buf[start:])
	p.buf = p.buf[:start+c]
	if c > 0 {
		p.size += c
		if packet {
			// Packets are at most PIPE_BUF long; larger writes split.
			for left := c; left > 0; left -= AtomicIOBytes {
				p.segs = append(p.segs, segment{n: min(left, AtomicIOBytes), packet: true})
			}
		} else if l := len(p.segs); l > p.segHead && !p.segs[l-1].packet {
			p.segs[l-1].n += c
		} else {
			p.segs = append(p.segs, segment{n: c})
		}
	}
	p.mu.Unlock()
	if c > 0 {
		p.queue.Notify(waiter.ReadableEvents)
		return int64(c), nil
	}
	return 0, err
}

// Size returns the capacity (F_GETPIPE_SZ).
func (p *Pipe) Size() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(p.max)
}

// SetSize is F_SETPIPE_SZ: the capacity becomes size rounded up to a power
// of two pages; EBUSY if the buffered data would not fit, EINVAL/EPERM for
// sizes out of range.
func (p *Pipe) SetSize(size int64) (int64, error) {
	if size < 0 || size > 1<<31-1 {
		return 0, unix.EINVAL
	}
	if size > MaxPipeSize {
		return 0, unix.EPERM
	}
	n := int64(MinPipeSize)
	for n < size {
		n <<= 1
	}
	p.mu.Lock()
	if int64(p.size) > n {
		p.mu.Unlock()
		return 0, unix.EBUSY
	}
	grew := int(n) > p.max
	p.max = int(n)
	p.mu.Unlock()
	if grew {
		p.queue.Notify(waiter.WritableEvents)
	}
	return n, nil
}

// Queued returns the bytes buffered (FIONREAD).
func (p *Pipe) Queued() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(p.size)
}

// addEnds registers an open of the read and/or write end.
func (p *Pipe) addEnds(reader, writer bool) {
	p.mu.Lock()
	if reader {
		p.readers++
		p.rOpens++
	}
	if writer {
		p.writers++
		p.wOpens++
		p.hadWriter = true
	}
	p.mu.Unlock()
	p.openQueue.Notify(waiter.EventIn)
	// A writer's arrival makes a waiting reader's POLLHUP go away, and a
	// reader's arrival lets writers write again.
	p.queue.Notify(waiter.ReadableEvents | waiter.WritableEvents)
}

// dropEnds undoes addEnds when an end is closed.
func (p *Pipe) dropEnds(reader, writer bool) {
	p.mu.Lock()
	var ev waiter.EventMask
	if reader {
		p.readers--
		if p.readers == 0 {
			ev |= waiter.EventErr | waiter.WritableEvents
		}
	}
	if writer {
		p.writers--
		if p.writers == 0 {
			ev |= waiter.EventHUp | waiter.ReadableEvents
		}
	}
	p.mu.Unlock()
	if ev != 0 {
		p.queue.Notify(ev)
	}
}
