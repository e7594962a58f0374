package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"

	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/stack"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/usermem"
	"golang.org/x/sys/unix"
)

// Interface describes one NIC the way ioctls and netlink report it.
type Interface struct {
	Index   int32
	Name    string
	Flags   uint32 // IFF_*
	MTU     uint32
	Type    uint16 // ARPHRD_*
	HWAddr  tcpip.LinkAddress
	Address []tcpip.AddressWithPrefix
	// Stats are the interface's packet counters.
	Stats stack.NICStats
}

// Interfaces lists the stack's NICs in index order.
func Interfaces(s *stack.Stack) []Interface {
	var out []Interface
	for _, n := range s.NICs() {
		link := n.LinkEndpoint()
		i := Interface{Index: int32(n.ID()), Name: n.Name(), MTU: link.MTU(), HWAddr: link.LinkAddress(),
			Address: n.Addresses(), Flags: unix.IFF_UP | unix.IFF_RUNNING | unix.IFF_LOWER_UP, Stats: n.Stats()}
		if link.Capabilities()&stack.CapabilityLoopback != 0 {
			i.Flags |= unix.IFF_LOOPBACK
			i.Type = unix.ARPHRD_LOOPBACK
		} else {
			i.Flags |= unix.IFF_BROADCAST | unix.IFF_MULTICAST
			i.Type = unix.ARPHRD_ETHER
		}
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b Interface) int { return int(a.Index - b.Index) })
	return out
}

// ifreqSize is sizeof(struct ifreq); ifconfSize is sizeof(struct ifconf).
const (
	ifreqSize  = 40
	ifconfSize = 16
)

// Ioctl implements vfs.FileDescriptionImpl.
func (s *sock) Ioctl(ctx context.Context, _ *vfs.FileDescription, io usermem.IO, sysno uintptr, args [6]uintptr) (uintptr, error) {
	req, arg := args[1], hostarch.Addr(args[2])
	ep := s.endpoint()
	switch req {
	case unix.SIOCINQ, unix.SIOCOUTQ:
		if st, ok := tcpState(ep); ok && st == tcp.StateListen {
			return 0, unix.EINVAL
		}
		o := tcpip.ReceiveQueueSizeOption
		if req == unix.SIOCOUTQ {
			o = tcpip.SendQueueSizeOption
		}
		v, terr := ep.GetSockOpt(o)
		if terr != nil {
			return 0, errnoOf(terr)
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(v))
		_, err := io.CopyOut(ctx, arg, b[:], usermem.IOOpts{})
		return 0, err
	}
	return InterfaceIoctl(ctx, s.p.stack, io, req, arg)
}

// InterfaceIoctl answers the SIOCGIF* interface queries any socket can
// make (netdevice(7)), from the stack's NICs. ENOTTY means req is not one
// of them.
func InterfaceIoctl(ctx context.Context, st *stack.Stack, io usermem.IO, req uintptr, arg hostarch.Addr) (uintptr, error) {
	if req == unix.SIOCGIFCONF {
		return 0, ifconf(ctx, st, io, arg)
	}
	switch req {
	case unix.SIOCGIFFLAGS, unix.SIOCGIFADDR, unix.SIOCGIFINDEX, unix.SIOCGIFNAME, unix.SIOCGIFMTU,
		unix.SIOCGIFNETMASK, unix.SIOCGIFHWADDR, unix.SIOCGIFBRDADDR:
	default:
		return 0, unix.ENOTTY
	}
	var ifr [ifreqSize]byte
	if _, err := io.CopyIn(ctx, arg, ifr[:], usermem.IOOpts{}); err != nil {
		return 0, err
	}
	var iface *Interface
	ifs := Interfaces(st)
	if req == unix.SIOCGIFNAME {
		idx := int32(binary.LittleEndian.Uint32(ifr[16:]))
		for i := range ifs {
			if ifs[i].Index == idx {
				iface = &ifs[i]
			}
		}
	} else {
		name := ifr[:16]
		if n := bytes.IndexByte(name, 0); n >= 0 {
			name = name[:n]
		}
		for i := range ifs {
			if ifs[i].Name == string(name) {
				iface = &ifs[i]
			}
		}
	}
	if iface == nil {
		return 0, unix.ENODEV
	}
	data := ifr[16:]
	clear(data)
	switch req {
	case unix.SIOCGIFNAME:
		clear(ifr[:16])
		copy(ifr[:15], iface.Name)
	case unix.SIOCGIFFLAGS:
		binary.LittleEndian.PutUint16(data, uint16(iface.Flags))
	case unix.SIOCGIFINDEX:
		binary.LittleEndian.PutUint32(data, uint32(iface.Index))
	case unix.SIOCGIFMTU:
		binary.LittleEndian.PutUint32(data, iface.MTU)
	case unix.SIOCGIFHWADDR:
		binary.LittleEndian.PutUint16(data, iface.Type)
		copy(data[2:], iface.HWAddr[:])
	case unix.SIOCGIFADDR, unix.SIOCGIFNETMASK, unix.SIOCGIFBRDADDR:
		a, ok := firstIPv4(iface)
		if !ok {
			return 0, unix.EADDRNOTAVAIL
		}
		v := a.Address
		switch req {
		case unix.SIOCGIFNETMASK:
			v = netmask4(a.PrefixLen)
		case unix.SIOCGIFBRDADDR:
			v = a.Subnet().Broadcast()
		}
		copy(data, encodeInet(tcpip.FullAddress{Addr: v}))
	}
	_, err := io.CopyOut(ctx, arg, ifr[:], usermem.IOOpts{})
	return 0, err
}

func firstIPv4(i *Interface) (tcpip.AddressWithPrefix, bool) {
	for _, a := range i.Address {
		if a.Address.Len() == 4 {
			return a, true
		}
	}
	return tcpip.AddressWithPrefix{}, false
}

func netmask4(prefix int) tcpip.Address {
	m := uint32(0)
	if prefix > 0 {
		m = ^uint32(0) << (32 - min(prefix, 32))
	}
	return tcpip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

// ifconf is SIOCGIFCONF: one struct ifreq per IPv4 address; a NULL
// buffer asks only for the length needed.
func ifconf(ctx context.Context, st *stack.Stack, io usermem.IO, arg hostarch.Addr) error {
	var ifc [ifconfSize]byte
	if _, err := io.CopyIn(ctx, arg, ifc[:], usermem.IOOpts{}); err != nil {
		return err
	}
	room := int(int32(binary.LittleEndian.Uint32(ifc[:])))
	buf := hostarch.Addr(binary.LittleEndian.Uint64(ifc[8:]))
	var out []byte
	for _, i := range Interfaces(st) {
		for _, a := range i.Address {
			if a.Address.Len() != 4 {
				continue
			}
			var r [ifreqSize]byte
			copy(r[:15], i.Name)
			copy(r[16:], encodeInet(tcpip.FullAddress{Addr: a.Address}))
			out = append(out, r[:]...)
		}
	}
	if buf == 0 {
		binary.LittleEndian.PutUint32(ifc[:], uint32(len(out)))
	} else {
		if room < 0 {
			return unix.EINVAL
		}
		n := min(len(out), room/ifreqSize*ifreqSize)
		if _, err := io.CopyOut(ctx, buf, out[:n], usermem.IOOpts{}); err != nil {
			return err
		}
		binary.LittleEndian.PutUint32(ifc[:], uint32(n))
	}
	_, err := io.CopyOut(ctx, arg, ifc[:4], usermem.IOOpts{})
	return err
}
