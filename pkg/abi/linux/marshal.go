package linux

import (
	"encoding/binary"
	"unsafe"
)

// le is the byte order of every amd64 ABI struct.
var le = binary.LittleEndian

// Marshaler is implemented by pointers to the ABI structs of this package.
// The encodings are the C layouts byte for byte, padding included (as zeros),
// so they can be copied to and from application memory directly.
//
// MarshalBytes writes SizeBytes bytes at the start of dst and returns the
// rest of dst; UnmarshalBytes reads SizeBytes bytes from the start of src and
// returns the rest of src, so arrays (iovecs, pollfds, epoll events) can be
// walked without slicing arithmetic. Both panic if the buffer is shorter than
// SizeBytes, like encoding/binary: sizing the buffer is the caller's job and
// a short one is a bug, not bad input. Neither allocates.
type Marshaler interface {
	SizeBytes() int
	MarshalBytes(dst []byte) []byte
	UnmarshalBytes(src []byte) []byte
}

// unsafePointer converts a pointer to a struct made only of uint64-sized
// fields so it can be walked as an array. Kept in one place so the unsafe
// use is easy to audit; the layout tests pin the offsets it relies on.
func unsafePointer[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }
