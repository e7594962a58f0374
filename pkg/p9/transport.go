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
