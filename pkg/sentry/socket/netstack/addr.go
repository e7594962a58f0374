package netstack

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/tcpip"
	"golang.org/x/sys/unix"
)

// Sizes of struct sockaddr_in and sockaddr_in6; SIN6_LEN_RFC2133 is the
// shorter sockaddr_in6 (without sin6_scope_id) that Linux still accepts.
const (
	sockaddrInSize      = 16
	sockaddrIn6Size     = 28
	sockaddrIn6RFC2133  = 24
	sockaddrFamilyBytes = 2
)

// addrFamily reads sa_family, the host-order first field of every
// sockaddr; ok is false when the buffer is too short to hold it.
func addrFamily(b []byte) (int, bool) {
	if len(b) < sockaddrFamilyBytes {
		return 0, false
	}
	return int(binary.LittleEndian.Uint16(b)), true
}

// isV4Mapped reports an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
func isV4Mapped(a tcpip.Address) bool {
	if a.Len() != 16 {
		return false
	}
	b := a.As16()
	for _, c := range b[:10] {
		if c != 0 {
			return false
		}
	}
	return b[10] == 0xff && b[11] == 0xff
}

// unmapV4 returns the IPv4 address inside a mapped IPv6 one.
func unmapV4(a tcpip.Address) tcpip.Address {
	b := a.As16()
	return tcpip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
}

// mapV4 returns ::ffff:a.b.c.d for an IPv4 address; the zero Address
// (unbound) stays zero, so getsockname of an unbound socket shows ::.
func mapV4(a tcpip.Address) tcpip.Address {
	if a.Len() != 4 {
		return a
	}
	v := a.As4()
	return tcpip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v[0], 13: v[1], 14: v[2], 15: v[3]})
}

// parseInet decodes a sockaddr_in (the caller has checked the family).
func parseInet(b []byte) (tcpip.FullAddress, error) {
	if len(b) < sockaddrInSize {
		return tcpip.FullAddress{}, unix.EINVAL
	}
	return tcpip.FullAddress{
		Port: binary.BigEndian.Uint16(b[2:]),
		Addr: tcpip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}),
	}, nil
}

// parseInet6 decodes a sockaddr_in6. A link-local address's scope id
// names the interface, which is the NIC id in this stack.
func parseInet6(b []byte) (tcpip.FullAddress, error) {
	if len(b) < sockaddrIn6RFC2133 {
		return tcpip.FullAddress{}, unix.EINVAL
	}
	var a [16]byte
	copy(a[:], b[8:24])
	fa := tcpip.FullAddress{Port: binary.BigEndian.Uint16(b[2:]), Addr: tcpip.AddrFrom16(a)}
	if len(b) >= sockaddrIn6Size && a[0] == 0xfe && a[1]&0xc0 == 0x80 {
		fa.NIC = tcpip.NICID(int32(binary.LittleEndian.Uint32(b[24:])))
	}
	return fa, nil
}

// encodeInet builds a sockaddr_in.
func encodeInet(a tcpip.FullAddress) []byte {
	b := make([]byte, sockaddrInSize)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], a.Port)
	if a.Addr.Len() == 4 {
		a.Addr.CopyTo(b[4:8])
	}
	return b
}

// encodeInet6 builds a sockaddr_in6; IPv4 addresses appear mapped, as an
// AF_INET6 socket reports its IPv4 peers.
func encodeInet6(a tcpip.FullAddress) []byte {
	b := make([]byte, sockaddrIn6Size)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], a.Port)
	addr := mapV4(a.Addr)
	if addr.Len() == 16 {
		addr.CopyTo(b[8:24])
		if v := addr.As16(); v[0] == 0xfe && v[1]&0xc0 == 0x80 {
			binary.LittleEndian.PutUint32(b[24:], uint32(a.NIC))
		}
	}
	return b
}

// encodeAddr builds the sockaddr of family for a.
func encodeAddr(family int, a tcpip.FullAddress) []byte {
	if family == unix.AF_INET6 {
		return encodeInet6(a)
	}
	return encodeInet(a)
}
