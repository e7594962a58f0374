package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"carapace.dev/carapace/pkg/log"
	"carapace.dev/carapace/pkg/sentry/socket/netlink"
	"golang.org/x/sys/unix"
)

// This file builds the network of `runsc do --network=sandbox`, where no
// CNI or Docker hook does: a veth pair whose inner end lives in the
// Sentry's network namespace and is then handed to netstack like any
// other interface (HandOffNetwork). The pair dies with that namespace,
// so a runsc killed before its cleanup leaves nothing behind once the
// Sentry is gone.

// VethInnerName is the inner end's name, as the sandbox sees it.
const VethInnerName = "eth0"

// vethPool is where the /30 subnets of the pairs come from: the upper
// half of IPv4 link-local space, which keeps clear of 169.254.169.254
// (cloud metadata services) and of anything a DHCP-less host picks in
// the lower half first. 8192 sandboxes may run at once.
var vethPool = netip.MustParsePrefix("169.254.128.0/17")

// vethLockPath serialises the choice of subnets among concurrent runsc
// processes (the kernel lets two interfaces carry one address, so it
// cannot arbitrate). flock locks die with their holder.
const vethLockPath = "/run/carapace-veth.lock"

// Veth is a pair made by CreateVeth.
type Veth struct {
	// HostName is the host end's interface name.
	HostName string
	// HostAddress and SandboxAddress are the two ends' addresses, in
	// one /30.
	HostAddress, SandboxAddress netip.Prefix
	// SandboxLinkLocal is the inner end's IPv6 link-local address.
	SandboxLinkLocal netip.Prefix
	hostIndex        int
}

// CreateVeth makes a veth pair for the Sentry with host pid sentryPid:
// the host end "vrs<pid>" stays in runsc's namespace, the inner end
// VethInnerName goes into the Sentry's. Both get addresses from a /30 of
// vethPool no other pair uses, both are up, and the inner side routes by
// default through the host end. Nothing routes the host end further
// (no NAT): the sandbox reaches the host, and only the host.
func CreateVeth(sentryPid int) (v *Veth, err error) {
	v = &Veth{HostName: "vrs" + strconv.Itoa(sentryPid)}
	if err := createVethPair(v.HostName, VethInnerName, sentryPid); err != nil {
		return nil, fmt.Errorf("creating veth %s: %w", v.HostName, err)
	}
	defer func() {
		if err != nil {
			v.Delete()
		}
	}()
	if v.hostIndex, err = linkIndex(v.HostName); err != nil {
		return nil, err
	}
	if err := v.addHostAddress(sentryPid); err != nil {
		return nil, err
	}
	if err := setLinkUp(v.hostIndex); err != nil {
		return nil, fmt.Errorf("bringing %s up: %w", v.HostName, err)
	}
	// fe80::a9fe:XXYY mirrors the IPv4 address, so it is unique too.
	a4 := v.SandboxAddress.Addr().As4()
	v.SandboxLinkLocal = netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 12: a4[0], 13: a4[1], 14: a4[2], 15: a4[3]}), 64)
	path := "/proc/" + strconv.Itoa(sentryPid) + "/ns/net"
	err = inNamespaces([]nsJoin{{flag: unix.CLONE_NEWNET, path: path}}, func() error {
		inner, err := linkIndex(VethInnerName)
		if err != nil {
			return err
		}
		if err := disableIPv6AddressGeneration(inner); err != nil {
			return fmt.Errorf("IPv6 address generation on %s: %w", VethInnerName, err)
		}
		if err := addAddress(inner, v.SandboxAddress); err != nil {
			return fmt.Errorf("address %s on %s: %w", v.SandboxAddress, VethInnerName, err)
		}
		if err := addAddress(inner, v.SandboxLinkLocal); err != nil {
			return fmt.Errorf("address %s on %s: %w", v.SandboxLinkLocal, VethInnerName, err)
		}
		if err := setLinkUp(inner); err != nil {
			return fmt.Errorf("bringing %s up: %w", VethInnerName, err)
		}
		if err := addDefaultRoute(inner, v.HostAddress.Addr()); err != nil {
			return fmt.Errorf("default route via %s: %w", v.HostAddress.Addr(), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Delete removes the pair (deleting one end deletes both). A pair already
// gone with its namespace is not an error.
func (v *Veth) Delete() error {
	if v.hostIndex == 0 {
		if i, err := linkIndex(v.HostName); err == nil {
			v.hostIndex = i
		} else {
			return nil
		}
	}
	msg := ifinfomsg(v.hostIndex, 0, 0)
	_, err := netlinkExchange(unix.RTM_DELLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, msg)
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting %s: %w", v.HostName, err)
	}
	return nil
}

// addHostAddress picks a /30 of vethPool that no interface of this
// namespace uses, starting from a place derived from pid so that
// concurrent sandboxes rarely even look at one another's, and puts its
// first host address on the host end.
func (v *Veth) addHostAddress(pid int) error {
	lock, err := os.OpenFile(vethLockPath, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("veth address lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("veth address lock: %w", err)
	}
	addrMsgs, err := netlinkDump(unix.RTM_GETADDR, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("reading addresses: %w", err)
	}
	used := make(map[netip.Prefix]bool)
	for _, m := range addrMsgs {
		if len(m.Payload) < 8 {
			continue
		}
		index := int(int32(binary.LittleEndian.Uint32(m.Payload[4:])))
		for _, a := range addressesOf(index, []netlink.Message{m}) {
			if a.Addr().Is4() {
				if p, err := a.Addr().Prefix(30); err == nil {
					used[p] = true
				}
			}
		}
	}
	subnet, ok := pickVethSubnet(pid, used)
	if !ok {
		return fmt.Errorf("all veth subnets of %s are in use", vethPool)
	}
	host := subnet.Addr().Next()
	v.HostAddress = netip.PrefixFrom(host, 30)
	v.SandboxAddress = netip.PrefixFrom(host.Next(), 30)
	if err := addAddress(v.hostIndex, v.HostAddress); err != nil {
		return fmt.Errorf("address %s on %s: %w", v.HostAddress, v.HostName, err)
	}
	log.Debugf("network: veth %s %s, sandbox %s", v.HostName, v.HostAddress, v.SandboxAddress)
	return nil
}

// pickVethSubnet returns the first /30 of vethPool not in used, looking
// from the start-th one (modulo their number) on.
func pickVethSubnet(start int, used map[netip.Prefix]bool) (netip.Prefix, bool) {
	subnets := 1 << (30 - vethPool.Bits())
	base := vethPool.Addr().As4()
	baseN := binary.BigEndian.Uint32(base[:])
	for i := 0; i < subnets; i++ {
		n := (start%subnets + i) % subnets
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], baseN+uint32(n)*4)
		if subnet := netip.PrefixFrom(netip.AddrFrom4(b), 30); !used[subnet] {
			return subnet, true
		}
	}
	return netip.Prefix{}, false
}

// nlAttr appends one netlink attribute (padded to 4 bytes) to b.
func nlAttr(b []byte, typ uint16, value []byte) []byte {
	var h [4]byte
	binary.LittleEndian.PutUint16(h[:], uint16(4+len(value)))
	binary.LittleEndian.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nlString(s string) []byte { return append([]byte(s), 0) }

func nlU32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// ifinfomsg is the 16-byte header of link requests.
func ifinfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[4:], uint32(index))
	binary.LittleEndian.PutUint32(b[8:], flags)
	binary.LittleEndian.PutUint32(b[12:], change)
	return b
}

// createVethPair asks for a veth whose peer is created directly in the
// network namespace of process pid.
func createVethPair(hostName, innerName string, pid int) error {
	peer := ifinfomsg(0, 0, 0)
	peer = nlAttr(peer, unix.IFLA_IFNAME, nlString(innerName))
	peer = nlAttr(peer, unix.IFLA_NET_NS_PID, nlU32(uint32(pid)))
	data := nlAttr(nil, 1 /* VETH_INFO_PEER */, peer)
	info := nlAttr(nil, unix.IFLA_INFO_KIND, nlString("veth"))
	info = nlAttr(info, unix.IFLA_INFO_DATA|unix.NLA_F_NESTED, data)
	msg := ifinfomsg(0, 0, 0)
	msg = nlAttr(msg, unix.IFLA_IFNAME, nlString(hostName))
	msg = nlAttr(msg, unix.IFLA_LINKINFO|unix.NLA_F_NESTED, info)
	_, err := netlinkExchange(unix.RTM_NEWLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg)
	return err
}

// disableIPv6AddressGeneration stops the kernel from giving an interface
// addresses of its own (IN6_ADDR_GEN_MODE_NONE): the inner end's
// addresses are exactly the ones handed to netstack, and the host kernel
// must not add one later that it would answer for.
func disableIPv6AddressGeneration(index int) error {
	inet6 := nlAttr(nil, unix.IFLA_INET6_ADDR_GEN_MODE, []byte{1 /* IN6_ADDR_GEN_MODE_NONE */})
	afSpec := nlAttr(nil, unix.AF_INET6, inet6)
	msg := nlAttr(ifinfomsg(index, 0, 0), unix.IFLA_AF_SPEC, afSpec)
	_, err := netlinkExchange(unix.RTM_NEWLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, msg)
	return err
}

// linkIndex is the index of the interface called name in the calling
// thread's network namespace.
func linkIndex(name string) (int, error) {
	msg := nlAttr(ifinfomsg(0, 0, 0), unix.IFLA_IFNAME, nlString(name))
	msgs, err := netlinkExchange(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, msg)
	if err != nil {
		return 0, fmt.Errorf("finding interface %s: %w", name, err)
	}
	for _, m := range msgs {
		if m.Type == unix.RTM_NEWLINK && len(m.Payload) >= 16 {
			return int(int32(binary.LittleEndian.Uint32(m.Payload[4:]))), nil
		}
	}
	return 0, fmt.Errorf("finding interface %s: no answer", name)
}

// setLinkUp sets IFF_UP on an interface.
func setLinkUp(index int) error {
	_, err := netlinkExchange(unix.RTM_NEWLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ifinfomsg(index, unix.IFF_UP, unix.IFF_UP))
	return err
}

// addAddress puts a on an interface; IPv6 ones skip duplicate address
// detection (they are unique by construction) so that they are usable
// at once.
func addAddress(index int, a netip.Prefix) error {
	fam, flags := byte(unix.AF_INET), byte(0)
	if a.Addr().Is6() {
		fam, flags = unix.AF_INET6, unix.IFA_F_NODAD
	}
	msg := make([]byte, 8)
	msg[0], msg[1], msg[2] = fam, byte(a.Bits()), flags
	binary.LittleEndian.PutUint32(msg[4:], uint32(index))
	ip := a.Addr().AsSlice()
	msg = nlAttr(msg, unix.IFA_LOCAL, ip)
	msg = nlAttr(msg, unix.IFA_ADDRESS, ip)
	_, err := netlinkExchange(unix.RTM_NEWADDR, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg)
	return err
}

// addDefaultRoute routes 0.0.0.0/0 of the main table through gw on an
// interface.
func addDefaultRoute(index int, gw netip.Addr) error {
	// rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
	msg := make([]byte, 12)
	msg[0], msg[4], msg[5], msg[6], msg[7] = unix.AF_INET, unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST
	msg = nlAttr(msg, unix.RTA_GATEWAY, gw.AsSlice())
	msg = nlAttr(msg, unix.RTA_OIF, nlU32(uint32(index)))
	_, err := netlinkExchange(unix.RTM_NEWROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, msg)
	return err
}
