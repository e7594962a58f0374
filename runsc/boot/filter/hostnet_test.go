package filter

import (
	"testing"

	"carapace.dev/carapace/pkg/bpf"
	"carapace.dev/carapace/pkg/seccomp"
	"golang.org/x/sys/unix"
)

// TestHostNetworkPolicy: the host socket calls are allowed only with
// HostNetwork, and even then only the narrow forms hostinet makes.
func TestHostNetworkPolicy(t *testing.T) {
	host := Options{MemoryFDs: []int{testMemFD}, HostNetwork: true}
	hp, err := seccomp.Compile(All(host), SeccompOptions(host))
	if err != nil {
		t.Fatal(err)
	}
	sp := compiled(t)
	const nbce = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	for _, tc := range []struct {
		name       string
		d          *bpf.SeccompData
		wantHost   seccomp.Action
		wantSandbx seccomp.Action
	}{
		{"tcp socket", call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|nbce, unix.IPPROTO_TCP), allowed, killed},
		{"udp6 socket", call(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM|nbce, unix.IPPROTO_UDP), allowed, killed},
		{"ping socket", call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM|nbce, unix.IPPROTO_ICMP), allowed, killed},
		{"blocking socket", call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP), killed, killed},
		{"raw socket", call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_RAW|nbce, unix.IPPROTO_ICMP), killed, killed},
		{"packet socket", call(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_DGRAM|nbce, 0), killed, killed},
		{"netlink route socket", call(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|nbce, unix.NETLINK_ROUTE), allowed, killed},
		{"netlink audit socket", call(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW|nbce, unix.NETLINK_AUDIT), killed, killed},
		{"NETLINK_ADD_MEMBERSHIP", call(unix.SYS_SETSOCKOPT, 5, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP), killed, killed},
		{"bind", call(unix.SYS_BIND, 5), allowed, killed},
		{"connect", call(unix.SYS_CONNECT, 5), allowed, killed},
		{"listen", call(unix.SYS_LISTEN, 5, 128), allowed, killed},
		{"accept4 non-blocking", call(unix.SYS_ACCEPT4, 5, 0, 0, nbce), allowed, killed},
		{"accept4 blocking", call(unix.SYS_ACCEPT4, 5, 0, 0, 0), killed, killed},
		{"TCP_NODELAY", call(unix.SYS_SETSOCKOPT, 5, unix.IPPROTO_TCP, unix.TCP_NODELAY), allowed, killed},
		{"SO_BINDTODEVICE", call(unix.SYS_SETSOCKOPT, 5, unix.SOL_SOCKET, unix.SO_BINDTODEVICE), killed, killed},
		{"IP_TRANSPARENT", call(unix.SYS_SETSOCKOPT, 5, unix.IPPROTO_IP, unix.IP_TRANSPARENT), killed, killed},
		{"SO_ERROR", call(unix.SYS_GETSOCKOPT, 5, unix.SOL_SOCKET, unix.SO_ERROR), allowed, killed},
		{"IP_PKTINFO", call(unix.SYS_SETSOCKOPT, 5, unix.IPPROTO_IP, unix.IP_PKTINFO), allowed, killed},
		{"IPV6_RECVHOPLIMIT", call(unix.SYS_SETSOCKOPT, 5, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT), allowed, killed},
		{"SO_TIMESTAMPNS", call(unix.SYS_SETSOCKOPT, 5, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS), allowed, killed},
		{"recvmsg MSG_ERRQUEUE", call(unix.SYS_RECVMSG, 5, 0, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT), allowed, allowed},
		{"IP_OPTIONS", call(unix.SYS_SETSOCKOPT, 5, unix.IPPROTO_IP, unix.IP_OPTIONS), killed, killed},
		{"SIOCOUTQ", call(unix.SYS_IOCTL, 5, unix.SIOCOUTQ), allowed, killed},
		{"SIOCSIFFLAGS", call(unix.SYS_IOCTL, 5, unix.SIOCSIFFLAGS), killed, killed},
	} {
		if got := seccomp.Action(hp.RunSeccomp(tc.d)); got != tc.wantHost {
			t.Errorf("--network=host: %s: %v, want %v", tc.name, got, tc.wantHost)
		}
		if got := seccomp.Action(sp.RunSeccomp(tc.d)); got != tc.wantSandbx {
			t.Errorf("--network=sandbox: %s: %v, want %v", tc.name, got, tc.wantSandbx)
		}
	}
}
