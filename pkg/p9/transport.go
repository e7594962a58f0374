package p9

import (
	"encoding/binary"
	"fmt"
	"os"

	"carapace.dev/carapace/pkg/unet"
	"golang.org/x/sys/unix"
)

// DefaultMSize is the message size both ends propose: 1 MiB of payload plus
// the largest header.
const DefaultMSize = 1<<20 + 64

// packetMSize caps msize on seqpacket sockets, where a whole message must fit
// the socket send buffer (net.core.wmem_default is 208 KiB on common hosts).
const packetMSize = 64<<10 + 64

// maxMSizeFor returns the largest msize usable on sock.
func maxMSizeFor(sock *unet.Socket) uint32 {
	if sock.Packet() {
		return packetMSize
	}
	return DefaultMSize
}

// minMSize is the smallest msize accepted: enough for any fixed-size message
// and a few path components.
const minMSize = 4096

// readRaw reads one whole message into buf (whose length bounds the message
// size) and returns its type, tag, body (aliasing buf) and any host file
// attached (at most one; extra descriptors are closed by unet).
func readRaw(s *unet.Socket, buf []byte) (MsgType, Tag, []byte, *os.File, error) {
	var fds []int
	var size int
	if s.Packet() {
		n, got, err := s.Recv([][]byte{buf}, 1)
		if err != nil {
			return 0, 0, nil, nil, err
		}
		fds = got
		if n < HeaderSize || int(binary.LittleEndian.Uint32(buf)) != n {
			closeFDs(fds)
			return 0, 0, nil, nil, fmt.Errorf("%w: packet of %d bytes has size field %d", ErrMalformed, n, sizeField(buf[:n]))
		}
		size = n
	} else {
		got, err := s.ReadFull(buf[:HeaderSize], 1)
		if err != nil {
			return 0, 0, nil, nil, err
		}
		fds = got
		size = int(binary.LittleEndian.Uint32(buf))
		if size < HeaderSize || size > len(buf) {
			closeFDs(fds)
			return 0, 0, nil, nil, fmt.Errorf("%w: message size %d outside [%d, %d]", ErrMalformed, size, HeaderSize, len(buf))
		}
		if _, err := s.ReadFull(buf[HeaderSize:size], 0); err != nil {
			closeFDs(fds)
			return 0, 0, nil, nil, err
		}
	}
	var f *os.File
	if len(fds) == 1 {
		f = os.NewFile(uintptr(fds[0]), "p9-donated")
	}
	return MsgType(buf[4]), Tag(binary.LittleEndian.Uint16(buf[5:])), buf[HeaderSize:size], f, nil
}

func sizeField(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	return int(binary.LittleEndian.Uint32(b))
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// writeRaw sends the encoded message msg, attaching f if not nil.
func writeRaw(s *unet.Socket, msg []byte, f *os.File) error {
	var fds []int
	if f != nil {
		fds = []int{int(f.Fd())}
	}
	_, err := s.Send([][]byte{msg}, fds)
	return err
}

// frameReader splits a stream of messages read with as few recvmsg calls as
// possible: each read takes whatever the socket holds, so pipelined requests
// and a message's header and body cost one system call, not two or three.
// It is for the server side only: any descriptor a client attaches is closed,
// since a buffered read cannot tell which message a descriptor came with.
type frameReader struct {
	buf        []byte // len(buf) bounds a message
	start, end int    // unconsumed bytes are buf[start:end]
}

// next returns the next whole message (its body aliasing r.buf), reading from
// s as needed. limit is the negotiated msize.
func (r *frameReader) next(s *unet.Socket, limit uint32) (MsgType, Tag, []byte, error) {
	limit = min(limit, uint32(len(r.buf)))
	if s.Packet() {
		// A packet is exactly one message: no buffering to do.
		t, tag, body, f, err := readRaw(s, r.buf[:limit])
		if f != nil {
			f.Close()
		}
		r.start, r.end = 0, 0
		return t, tag, body, err
	}
	if err := r.fill(s, HeaderSize); err != nil {
		return 0, 0, nil, err
	}
	size := int(binary.LittleEndian.Uint32(r.buf[r.start:]))
	if size < HeaderSize || size > int(limit) {
		return 0, 0, nil, fmt.Errorf("%w: message size %d outside [%d, %d]", ErrMalformed, size, HeaderSize, limit)
	}
	if err := r.fill(s, size); err != nil {
		return 0, 0, nil, err
	}
	msg := r.buf[r.start : r.start+size]
	r.start += size
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	return MsgType(msg[4]), Tag(binary.LittleEndian.Uint16(msg[5:])), msg[HeaderSize:], nil
}

// fill makes at least n unconsumed bytes available.
func (r *frameReader) fill(s *unet.Socket, n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.start+n > len(r.buf) {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	for r.end-r.start < n {
		// No room for descriptors: the kernel discards any sent.
		got, _, err := s.Recv([][]byte{r.buf[r.end:]}, 0)
		if err != nil {
			return err
		}
		r.end += got
	}
	return nil
}

// swap gives the reader buf (len at least that of its current buffer) and
// returns the old one, so that the last message returned by next stays valid
// in the old buffer while reading goes on in the new one.
func (r *frameReader) swap(buf []byte) []byte {
	old := r.buf
	r.end = copy(buf, old[r.start:r.end])
	r.start = 0
	r.buf = buf
	return old
}
