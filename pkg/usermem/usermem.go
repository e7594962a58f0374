// Package usermem owns the seam through which the Sentry reads and writes
// application memory: the IO interface an address space implements, and
// IOSequence, a scatter/gather list of application ranges that file and
// socket implementations copy into and out of without knowing whose memory
// it is.
package usermem

import (
	"context"

	"carapace.dev/carapace/pkg/hostarch"
	"golang.org/x/sys/unix"
)

// IOOpts modifies a copy.
type IOOpts struct {
	// IgnorePermissions copies even where the application's mapping would
	// not allow the access (ptrace PEEK/POKE, /proc/[pid]/mem, signal
	// frames on a read-only stack are not among them: Linux checks those).
	IgnorePermissions bool
}

// IO is an application address space as the Sentry sees it. Copies stop at
// the first byte that cannot be accessed and return the count done with
// EFAULT, as Linux's copy_to_user/copy_from_user do.
type IO interface {
	CopyOut(ctx context.Context, addr hostarch.Addr, src []byte, opts IOOpts) (int, error)
	CopyIn(ctx context.Context, addr hostarch.Addr, dst []byte, opts IOOpts) (int, error)
	ZeroOut(ctx context.Context, addr hostarch.Addr, n int64, opts IOOpts) (int64, error)
}

// IOSequence is an ordered list of application ranges in one IO, the shape
// of a readv/writev iovec array. The zero value is empty. Copying through it
// fills or drains the ranges in order; DropFirst advances past consumed
// bytes. Value semantics: methods never modify the receiver's ranges slice.
type IOSequence struct {
	IO    IO
	Opts  IOOpts
	first hostarch.AddrRange   // the current (possibly partly consumed) range
	rest  []hostarch.AddrRange // ranges after first, untouched
}

// BytesSequence returns an IOSequence over one range, the read(2)/write(2) case.
func BytesSequence(io IO, addr hostarch.Addr, length int64, opts IOOpts) (IOSequence, error) {
	r, ok := addr.ToRange(uint64(length))
	if length < 0 || !ok {
		return IOSequence{}, unix.EFAULT
	}
	return IOSequence{IO: io, Opts: opts, first: r}, nil
}

// RangesSequence returns an IOSequence over several ranges (readv/writev).
// The caller has already checked the total against MAX_RW_COUNT.
func RangesSequence(io IO, ranges []hostarch.AddrRange, opts IOOpts) IOSequence {
	s := IOSequence{IO: io, Opts: opts}
	if len(ranges) > 0 {
		s.first, s.rest = ranges[0], ranges[1:]
	}
	return s
}

// NumBytes is the total length of the remaining ranges.
func (s IOSequence) NumBytes() int64 {
	n := int64(s.first.Length())
	for _, r := range s.rest {
		n += int64(r.Length())
	}
	return n
}

// DropFirst returns s without its first n bytes.
func (s IOSequence) DropFirst(n int64) IOSequence {
	for n > 0 {
		l := int64(s.first.Length())
		if n < l {
			s.first.Start += hostarch.Addr(n)
			return s
		}
		n -= l
		if len(s.rest) == 0 {
			s.first = hostarch.AddrRange{}
			return s
		}
		s.first, s.rest = s.rest[0], s.rest[1:]
	}
	return s
}

// TakeFirst returns s limited to its first n bytes.
func (s IOSequence) TakeFirst(n int64) IOSequence {
	if n <= 0 {
		return IOSequence{IO: s.IO, Opts: s.Opts}
	}
	if int64(s.first.Length()) >= n {
		s.first.End = s.first.Start + hostarch.Addr(n)
		s.rest = nil
		return s
	}
	n -= int64(s.first.Length())
	for i, r := range s.rest {
		if int64(r.Length()) >= n {
			rest := make([]hostarch.AddrRange, i+1)
			copy(rest, s.rest[:i+1])
			rest[i].End = rest[i].Start + hostarch.Addr(n)
			s.rest = rest
			return s
		}
		n -= int64(r.Length())
	}
	return s
}

// CopyOut copies src into the sequence's ranges in order and returns the
// number of bytes copied; a short count comes with the error that stopped it.
func (s IOSequence) CopyOut(ctx context.Context, src []byte) (int, error) {
	done := 0
	for r := range s.ranges() {
		if done == len(src) {
			break
		}
		chunk := src[done:]
		if uint64(len(chunk)) > r.Length() {
			chunk = chunk[:r.Length()]
		}
		n, err := s.IO.CopyOut(ctx, r.Start, chunk, s.Opts)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// CopyIn fills dst from the sequence's ranges in order.
func (s IOSequence) CopyIn(ctx context.Context, dst []byte) (int, error) {
	done := 0
	for r := range s.ranges() {
		if done == len(dst) {
			break
		}
		chunk := dst[done:]
		if uint64(len(chunk)) > r.Length() {
			chunk = chunk[:r.Length()]
		}
		n, err := s.IO.CopyIn(ctx, r.Start, chunk, s.Opts)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// ranges yields the non-empty ranges of s.
func (s IOSequence) ranges() func(func(hostarch.AddrRange) bool) {
	return func(yield func(hostarch.AddrRange) bool) {
		if s.first.Length() > 0 && !yield(s.first) {
			return
		}
		for _, r := range s.rest {
			if r.Length() > 0 && !yield(r) {
				return
			}
		}
	}
}

// BytesIO is an IO over a plain byte slice at address 0, for tests and for
// the Sentry's own buffers. Accesses past its end fail with EFAULT.
type BytesIO struct {
	Bytes []byte
}

func (b *BytesIO) bounds(addr hostarch.Addr, n int) (int, int) {
	if uint64(addr) >= uint64(len(b.Bytes)) {
		return 0, 0
	}
	end := uint64(addr) + uint64(n)
	if end > uint64(len(b.Bytes)) || end < uint64(addr) {
		end = uint64(len(b.Bytes))
	}
	return int(addr), int(end)
}

// CopyOut implements IO.
func (b *BytesIO) CopyOut(_ context.Context, addr hostarch.Addr, src []byte, _ IOOpts) (int, error) {
	start, end := b.bounds(addr, len(src))
	n := copy(b.Bytes[start:end], src)
	if n < len(src) {
		return n, unix.EFAULT
	}
	return n, nil
}

// CopyIn implements IO.
func (b *BytesIO) CopyIn(_ context.Context, addr hostarch.Addr, dst []byte, _ IOOpts) (int, error) {
	start, end := b.bounds(addr, len(dst))
	n := copy(dst, b.Bytes[start:end])
	if n < len(dst) {
		return n, unix.EFAULT
	}
	return n, nil
}

// ZeroOut implements IO.
func (b *BytesIO) ZeroOut(_ context.Context, addr hostarch.Addr, n int64, _ IOOpts) (int64, error) {
	start, end := b.bounds(addr, int(n))
	clear(b.Bytes[start:end])
	if int64(end-start) < n {
		return int64(end - start), unix.EFAULT
	}
	return n, nil
}
