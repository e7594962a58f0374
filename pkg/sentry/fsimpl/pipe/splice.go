package pipe

import (
	"context"
	"sync/atomic"

	"carapace.dev/carapace/pkg/usermem"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// pipeIDs orders pipes for locking two at once (splice and tee between
// pipes).
var pipeIDs atomic.Uint64

// lockTwo locks a and b (distinct) in a global order.
func lockTwo(a, b *Pipe) {
	if a.id < b.id {
		a.mu.Lock()
		b.mu.Lock()
	} else {
		b.mu.Lock()
		a.mu.Lock()
	}
}

// appendLocked adds bytes as stream data. Call with mu held and room
// checked.
func (p *Pipe) appendLocked(b []byte) {
	if p.off > 0 && len(p.buf)+len(b) > cap(p.buf) {
		m := copy(p.buf, p.buf[p.off:])
		p.buf, p.off = p.buf[:m], 0
	}
	p.buf = append(p.buf, b...)
	p.size += len(b)
	if l := len(p.segs); l > p.segHead && !p.segs[l-1].packet {
		p.segs[l-1].n += len(b)
	} else {
		p.segs = append(p.segs, segment{n: len(b)})
	}
}

// transfer is splice (consume) or tee (keep) between two pipes: up to
// count bytes, limited by what src holds and dst has room for. It
// returns 0 with no error when src is empty and has no writer, EAGAIN
// when it must wait (src empty, dst full), EPIPE when dst has no reader.
func transfer(src, dst *Pipe, count int64, consume bool) (int64, error) {
	if src == dst {
		return 0, unix.EINVAL
	}
	lockTwo(src, dst)
	var n int
	var err error
	switch {
	case dst.readers == 0:
		err = unix.EPIPE
	case src.size == 0:
		if src.writers > 0 {
			err = unix.EAGAIN
		}
	case dst.free() == 0:
		err = unix.EAGAIN
	default:
		n = int(min(count, int64(src.size), int64(dst.free())))
		dst.appendLocked(src.buf[src.off : src.off+n])
		if consume {
			src.consume(n)
		}
	}
	src.mu.Unlock()
	dst.mu.Unlock()
	if n > 0 {
		dst.queue.Notify(waiter.ReadableEvents)
		if consume {
			src.queue.Notify(waiter.WritableEvents)
		}
	}
	return int64(n), err
}

// Splice moves up to count buffered bytes from src to dst (splice(2)
// between two pipes). Packet boundaries are not kept.
func Splice(src, dst *Pipe, count int64) (int64, error) {
	return transfer(src, dst, count, true)
}

// Tee copies up to count buffered bytes of src to dst, leaving them in src
// (tee(2)).
func Tee(src, dst *Pipe, count int64) (int64, error) {
	return transfer(src, dst, count, false)
}

// Peek copies buffered bytes to dst without consuming them: splice(2)
// from a pipe to a file consumes (Consume) only what the file took. Like
// a read, it returns 0 at EOF and EAGAIN when empty with writers.
func (p *Pipe) Peek(ctx context.Context, dst usermem.IOSequence) (int64, error) {
	want := dst.NumBytes()
	if want == 0 {
		return 0, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size == 0 {
		if p.writers == 0 {
			return 0, nil
		}
		return 0, unix.EAGAIN
	}
	n, err := dst.CopyOut(ctx, p.buf[p.off:p.off+int(min(want, int64(p.size)))])
	if n > 0 {
		return int64(n), nil
	}
	return 0, err
}

// Consume drops the first n buffered bytes (at most what is buffered).
func (p *Pipe) Consume(n int64) {
	p.mu.Lock()
	n = min(n, int64(p.size))
	if n > 0 {
		p.consume(int(n))
	}
	p.mu.Unlock()
	if n > 0 {
		p.queue.Notify(waiter.WritableEvents)
	}
}

// Room returns how many bytes a write could add now.
func (p *Pipe) Room() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(p.free())
}

// WriteBytes appends b (up to the room there is) as stream data, for
// splice(2) into a pipe from a file already read into memory. EPIPE when
// nobody can read, EAGAIN when full.
func (p *Pipe) WriteBytes(b []byte) (int64, error) {
	p.mu.Lock()
	if p.readers == 0 {
		p.mu.Unlock()
		return 0, unix.EPIPE
	}
	n := min(len(b), p.free())
	if n == 0 {
		p.mu.Unlock()
		if len(b) == 0 {
			return 0, nil
		}
		return 0, unix.EAGAIN
	}
	p.appendLocked(b[:n])
	p.mu.Unlock()
	p.queue.Notify(waiter.ReadableEvents)
	return int64(n), nil
}
