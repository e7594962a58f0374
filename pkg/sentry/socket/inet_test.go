package socket

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestInetProtocol(t *testing.T) {
	for _, c := range []struct {
		family, stype, protocol int
		want                    int
		err                     error
	}{
		{unix.AF_INET, unix.SOCK_STREAM, 0, unix.IPPROTO_TCP, nil},
		{unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP, unix.IPPROTO_TCP, nil},
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP, 0, unix.EPROTONOSUPPORT},
		{unix.AF_INET, unix.SOCK_DGRAM, 0, unix.IPPROTO_UDP, nil},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP, unix.IPPROTO_UDP, nil},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, unix.IPPROTO_ICMP, nil},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, unix.IPPROTO_ICMPV6, nil},
		// Each family's ping protocol is its own.
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, 0, unix.EPROTONOSUPPORT},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, 0, unix.EPROTONOSUPPORT},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP, 0, unix.EPROTONOSUPPORT},
		{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP, 0, unix.EPERM},
		{unix.AF_INET, unix.SOCK_SEQPACKET, 0, 0, unix.ESOCKTNOSUPPORT},
	} {
		got, err := InetProtocol(c.family, c.stype, c.protocol)
		if got != c.want || err != c.err {
			t.Errorf("InetProtocol(%d, %d, %d) = %d, %v; want %d, %v", c.family, c.stype, c.protocol, got, err, c.want, c.err)
		}
	}
}
