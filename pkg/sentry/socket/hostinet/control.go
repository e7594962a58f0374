package hostinet

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/sentry/socket"
	"golang.org/x/sys/unix"
)

// Control messages of host sockets. Nothing the host kernel writes into
// a control buffer reaches the application as it is: recvControl walks
// the host's cmsgs, keeps only an allowlist of (level, type) pairs whose
// data has exactly the size Linux gives them, and rebuilds each one
// field by field. sendControl does the same for what the application
// sends, with the range checks Linux makes, so the host sees only
// well-formed messages it would accept from anyone.

// Sizes of the structures carried (amd64).
const (
	cmsgHeaderSize   = 16 // struct cmsghdr
	timevalSize      = 16
	inPktinfoSize    = 12 // struct in_pktinfo
	in6PktinfoSize   = 20 // struct in6_pktinfo
	sockExtErrSize   = 16 // struct sock_extended_err
	sockaddrInSize   = 16
	sockaddrIn6Size  = 28
	recvControlSpace = 512 // room for every allowed message at once
)

func cmsgAlign(n int) int { return (n + 7) &^ 7 }

// nextCmsg splits the first message off a control buffer the host
// filled; ok is false at the end or at a header that does not fit. (A
// plain function, not a callback or an iterator holding the buffer, so a
// buffer on the caller's stack stays there.)
func nextCmsg(b []byte) (level, typ int32, data, rest []byte, ok bool) {
	if len(b) < cmsgHeaderSize {
		return 0, 0, nil, nil, false
	}
	l := binary.LittleEndian.Uint64(b)
	if l < cmsgHeaderSize || l > uint64(len(b)) {
		return 0, 0, nil, nil, false
	}
	level, typ, data = int32(binary.LittleEndian.Uint32(b[8:])), int32(binary.LittleEndian.Uint32(b[12:])), b[cmsgHeaderSize:l]
	if next := cmsgAlign(int(l)); next < len(b) {
		rest = b[next:]
	}
	return level, typ, data, rest, true
}

func u32(b []byte) uint32       { return binary.LittleEndian.Uint32(b) }
func putU32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

// rebuildSockaddr copies the family, port and address of an offender
// address (sockaddr_in or sockaddr_in6, or AF_UNSPEC when the error has
// none) into a zeroed buffer of the same size.
func rebuildSockaddr(src []byte) []byte {
	out := make([]byte, len(src))
	switch binary.LittleEndian.Uint16(src) {
	case unix.AF_INET:
		if len(src) >= sockaddrInSize {
			copy(out[:8], src[:8]) // family, port, address
		}
	case unix.AF_INET6:
		if len(src) >= sockaddrIn6Size {
			copy(out, src[:sockaddrIn6Size]) // family, port, flowinfo, address, scope
		}
	}
	return out
}

// recvControl rebuilds the allowed messages of a host control buffer.
func recvControl(b []byte) []socket.ControlMessage {
	var out []socket.ControlMessage
	for {
		level, typ, data, rest, ok := nextCmsg(b)
		if !ok {
			return out
		}
		b = rest
		var rebuilt []byte
		switch {
		case level == unix.SOL_SOCKET && (typ == unix.SO_TIMESTAMP_OLD || typ == unix.SO_TIMESTAMPNS_OLD):
			// struct timeval or timespec: seconds, then µs or ns.
			if len(data) != timevalSize {
				continue
			}
			rebuilt = make([]byte, timevalSize)
			binary.LittleEndian.PutUint64(rebuilt, binary.LittleEndian.Uint64(data))
			binary.LittleEndian.PutUint64(rebuilt[8:], binary.LittleEndian.Uint64(data[8:]))
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO:
			if len(data) != inPktinfoSize {
				continue
			}
			rebuilt = make([]byte, inPktinfoSize)
			putU32(rebuilt, u32(data))      // ipi_ifindex
			copy(rebuilt[4:8], data[4:8])   // ipi_spec_dst
			copy(rebuilt[8:12], data[8:12]) // ipi_addr
		case level == unix.IPPROTO_IP && typ == unix.IP_TTL,
			level == unix.IPPROTO_IPV6 && (typ == unix.IPV6_HOPLIMIT || typ == unix.IPV6_TCLASS):
			if len(data) != 4 {
				continue
			}
			rebuilt = make([]byte, 4)
			putU32(rebuilt, u32(data))
		case level == unix.IPPROTO_IP && typ == unix.IP_TOS:
			if len(data) != 1 {
				continue
			}
			rebuilt = []byte{data[0]}
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO:
			if len(data) != in6PktinfoSize {
				continue
			}
			rebuilt = make([]byte, in6PktinfoSize)
			copy(rebuilt, data[:16])             // ipi6_addr
			putU32(rebuilt[16:], u32(data[16:])) // ipi6_ifindex
		case level == unix.IPPROTO_IP && typ == unix.IP_RECVERR,
			level == unix.IPPROTO_IPV6 && typ == unix.IPV6_RECVERR:
			// struct sock_extended_err and the offender's address.
			want := sockExtErrSize + sockaddrInSize
			if level == unix.IPPROTO_IPV6 {
				want = sockExtErrSize + sockaddrIn6Size
			}
			if len(data) != want {
				continue
			}
			rebuilt = make([]byte, 0, want)
			var ee [sockExtErrSize]byte
			putU32(ee[:], u32(data))                        // ee_errno
			ee[4], ee[5], ee[6] = data[4], data[5], data[6] // origin, type, code
			putU32(ee[8:], u32(data[8:]))                   // ee_info
			putU32(ee[12:], u32(data[12:]))                 // ee_data
			rebuilt = append(rebuilt, ee[:]...)
			rebuilt = append(rebuilt, rebuildSockaddr(data[sockExtErrSize:])...)
		default:
			continue
		}
		out = append(out, socket.ControlMessage{Level: level, Type: typ, Data: rebuilt})
	}
}

// sendControl checks the messages of a sendmsg on a datagram socket of
// family and encodes them for the host. As on Linux, a stream socket
// ignores them; IPPROTO_IP messages are IP_PKTINFO, IP_TOS (an int or a
// byte, 0-255) and IP_TTL (1-255); IPPROTO_IPV6 ones, on an AF_INET6
// socket, IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS (-1-255). Any other
// type of those levels is EINVAL (unknown to Linux, or not forwarded);
// other levels are ignored.
func sendControl(family, stype int, msgs []socket.ControlMessage) ([]byte, error) {
	if stype == unix.SOCK_STREAM || len(msgs) == 0 {
		return nil, nil
	}
	var out []byte
	add := func(level, typ int32, data []byte) {
		var h [cmsgHeaderSize]byte
		binary.LittleEndian.PutUint64(h[:], uint64(cmsgHeaderSize+len(data)))
		putU32(h[8:], uint32(level))
		putU32(h[12:], uint32(typ))
		out = append(out, h[:]...)
		out = append(out, data...)
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	intIn := func(data []byte, lo, hi int32) ([]byte, bool) {
		if len(data) != 4 {
			return nil, false
		}
		v := int32(u32(data))
		if v < lo || v > hi {
			return nil, false
		}
		b := make([]byte, 4)
		putU32(b, uint32(v))
		return b, true
	}
	for _, m := range msgs {
		switch {
		case m.Level == unix.IPPROTO_IP:
			switch m.Type {
			case unix.IP_PKTINFO:
				if len(m.Data) != inPktinfoSize {
					return nil, unix.EINVAL
				}
				b := make([]byte, inPktinfoSize)
				putU32(b, u32(m.Data))
				copy(b[4:], m.Data[4:12])
				add(m.Level, m.Type, b)
			case unix.IP_TOS:
				var v int32
				switch len(m.Data) {
				case 4:
					v = int32(u32(m.Data))
				case 1:
					v = int32(m.Data[0])
				default:
					return nil, unix.EINVAL
				}
				if v < 0 || v > 255 {
					return nil, unix.EINVAL
				}
				b := make([]byte, 4)
				putU32(b, uint32(v))
				add(m.Level, m.Type, b)
			case unix.IP_TTL:
				b, ok := intIn(m.Data, 1, 255)
				if !ok {
					return nil, unix.EINVAL
				}
				add(m.Level, m.Type, b)
			default:
				return nil, unix.EINVAL
			}
		case m.Level == unix.IPPROTO_IPV6 && family == unix.AF_INET6:
			switch m.Type {
			case unix.IPV6_PKTINFO:
				if len(m.Data) < in6PktinfoSize {
					return nil, unix.EINVAL
				}
				b := make([]byte, in6PktinfoSize)
				copy(b, m.Data[:16])
				putU32(b[16:], u32(m.Data[16:]))
				add(m.Level, m.Type, b)
			case unix.IPV6_HOPLIMIT, unix.IPV6_TCLASS:
				b, ok := intIn(m.Data, -1, 255)
				if !ok {
					return nil, unix.EINVAL
				}
				add(m.Level, m.Type, b)
			default:
				return nil, unix.EINVAL
			}
		}
	}
	return out, nil
}
