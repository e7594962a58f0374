// Package buffer provides the byte containers packets travel in: View, a
// slice that is consumed from the front as headers are parsed (no copy on
// receive), Prependable, a buffer headers are pushed onto back to front
// as a packet descends the stack, and Chunk, a reference-counted buffer
// recycled through a pool, which TCP's send queue keeps its data in so
// that loopback segments can share it instead of copying.
package buffer

// View is a window onto packet bytes. Parsing trims it rather than copying.
type View []byte

// NewView allocates a zeroed View of n bytes.
func NewView(n int) View { return make(View, n) }

// TrimFront drops the first n bytes (all of them if n is larger).
func (v *View) TrimFront(n int) {
	if n > len(*v) {
		n = len(*v)
	}
	*v = (*v)[n:]
}

// CapLength truncates to at most n bytes.
func (v *View) CapLength(n int) {
	if n < len(*v) {
		*v = (*v)[:n:n]
	}
}

// Prependable is a buffer filled from the end: each Prepend returns space
// immediately before what was prepended last.
type Prependable struct {
	buf   []byte
	start int
}

// NewPrependable reserves room for size bytes of headers.
func NewPrependable(size int) Prependable {
	return Prependable{buf: make([]byte, size), start: size}
}

// Prepend returns n bytes of fresh space at the front, or nil if the
// reserved room is exhausted.
func (p *Prependable) Prepend(n int) []byte {
	if n > p.start {
		return nil
	}
	p.start -= n
	return p.buf[p.start : p.start+n]
}

// View returns the bytes prepended so far.
func (p *Prependable) View() View { return p.buf[p.start:] }

// UsedLength is the number of bytes prepended.
func (p *Prependable) UsedLength() int { return len(p.buf) - p.start }

// AvailableLength is the room left.
func (p *Prependable) AvailableLength() int { return p.start }

// VectorisedView is a sequence of Views read as one: a packet assembled
// from a header buffer and a payload without copying them together.
type VectorisedView struct {
	views []View
	size  int
}

// NewVectorisedView builds a VectorisedView from views.
func NewVectorisedView(views ...View) VectorisedView {
	vv := VectorisedView{}
	for _, v := range views {
		vv.Append(v)
	}
	return vv
}

// Append adds v at the end; empty views are skipped.
func (vv *VectorisedView) Append(v View) {
	if len(v) == 0 {
		return
	}
	vv.views = append(vv.views, v)
	vv.size += len(v)
}

// Size is the total byte count.
func (vv *VectorisedView) Size() int { return vv.size }

// Views returns the underlying views.
func (vv *VectorisedView) Views() []View { return vv.views }

// TrimFront drops n bytes from the front.
func (vv *VectorisedView) TrimFront(n int) {
	for n > 0 && len(vv.views) > 0 {
		if n < len(vv.views[0]) {
			vv.views[0] = vv.views[0][n:]
			vv.size -= n
			return
		}
		n -= len(vv.views[0])
		vv.size -= len(vv.views[0])
		vv.views = vv.views[1:]
	}
}

// CopyTo copies as much as fits into dst and returns the count.
func (vv *VectorisedView) CopyTo(dst []byte) int {
	n := 0
	for _, v := range vv.views {
		if n >= len(dst) {
			break
		}
		n += copy(dst[n:], v)
	}
	return n
}

// ToView returns the contents as one View, copying only if there is more
// than one piece.
func (vv *VectorisedView) ToView() View {
	if len(vv.views) == 1 {
		return vv.views[0]
	}
	out := make(View, vv.size)
	vv.CopyTo(out)
	return out
}
