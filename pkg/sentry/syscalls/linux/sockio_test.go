package linux

import (
	"encoding/binary"
	"errors"
	"testing"

	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// read(2) and write(2) on a socket honour SO_RCVTIMEO and SO_SNDTIMEO as
// recv(2) and send(2) do: EAGAIN once the timeout passes with nothing
// moved, the count when part was.
func TestReadWriteHonourSocketTimeouts(t *testing.T) {
	s := newSockTasks(t, 1)[0]
	a, b := s.pair(unix.SOCK_STREAM)
	tv := binary.LittleEndian.AppendUint64(nil, 0)
	tv = binary.LittleEndian.AppendUint64(tv, 20000) // 20ms
	s.put(0, tv)
	s.must(linux.SYS_SETSOCKOPT, b, unix.SOL_SOCKET, unix.SO_RCVTIMEO, s.at(0), 16)
	if _, err := s.call(linux.SYS_READ, b, s.at(100), 6); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read past SO_RCVTIMEO: %v, want EAGAIN", err)
	}
	// readv goes the same way.
	iov := binary.LittleEndian.AppendUint64(nil, uint64(s.at(100)))
	iov = binary.LittleEndian.AppendUint64(iov, 6)
	s.put(32, iov)
	if _, err := s.call(linux.SYS_READV, b, s.at(32), 1); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("readv past SO_RCVTIMEO: %v, want EAGAIN", err)
	}
	// A full send buffer: the write takes what fits, then gives up at
	// the timeout with the partial count; the next one gets EAGAIN.
	s.putU32(16, 4608)
	s.must(linux.SYS_SETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_SNDBUF, s.at(16), 4)
	s.must(linux.SYS_SETSOCKOPT, a, unix.SOL_SOCKET, unix.SO_SNDTIMEO, s.at(0), 16)
	n, err := s.call(linux.SYS_WRITE, a, s.at(4096), 4096*4)
	if err != nil || n == 0 || n >= 4096*4 {
		t.Fatalf("write into a small send buffer = %d, %v; want a partial count", n, err)
	}
	if _, err := s.call(linux.SYS_WRITE, a, s.at(4096), 4096); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("write to a full socket past SO_SNDTIMEO: %v, want EAGAIN", err)
	}
}
