// Package fdbased is a link endpoint on a host file descriptor that
// carries one packet per read and write: an AF_PACKET socket bound to an
// interface (how the sandbox reaches its veth), a tap or tun device, or a
// SOCK_SEQPACKET socketpair in tests. Receive and send are batched with
// recvmmsg(2) and sendmmsg(2).
package fdbased

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// Options configure an Endpoint.
type Options struct {
	// FD carries packets; the caller keeps ownership and closes it after
	// Close returns.
	FD int
	// MTU is the network-layer MTU.
	MTU uint32
	// Address is the link address (for Ethernet framing).
	Address tcpip.LinkAddress
	// Ethernet says frames carry Ethernet II headers (AF_PACKET with
	// SOCK_RAW, tap). Otherwise packets are bare IP (tun) and the protocol
	// is taken from the IP version.
	Ethernet bool
	// BatchSize is how many packets one recvmmsg/sendmmsg moves (default 32).
	BatchSize int
	// SendQueue is the number of packets queued for sending (default 1024).
	SendQueue int
}

// Stats count link traffic.
type Stats struct {
	RxPackets, TxPackets, TxDropped, RxErrors, TxErrors atomic.Uint64
}

// Endpoint is an fd-based link.
type Endpoint struct {
	opts   Options
	wakeFD int
	sendQ  chan []byte
	done   chan struct{}
	wg     sync.WaitGroup
	start  sync.Once
	close  sync.Once
	disp   atomic.Pointer[stack.NetworkDispatcher]
	// auxData is set when the FD delivers PACKET_AUXDATA.
	auxData bool
	// Stats are the link's counters.
	Stats Stats
}

// New makes an endpoint; its goroutines start on Attach.
func New(o Options) (*Endpoint, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	if o.SendQueue <= 0 {
		o.SendQueue = 1024
	}
	if o.MTU == 0 {
		return nil, fmt.Errorf("fdbased: MTU must be set")
	}
	if err := unix.SetNonblock(o.FD, true); err != nil {
		return nil, fmt.Errorf("fdbased: set non-blocking on fd %d: %w", o.FD, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fdbased: eventfd: %w", err)
	}
	// On an AF_PACKET socket, ask for each packet's tpacket_auxdata: it
	// says when the sending kernel left the checksum to offload. Done
	// here, before the Sentry's seccomp filter is installed.
	aux := o.Ethernet && unix.SetsockoptInt(o.FD, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1) == nil
	return &Endpoint{opts: o, wakeFD: wake, auxData: aux, sendQ: make(chan []byte, o.SendQueue), done: make(chan struct{})}, nil
}

// MTU implements stack.LinkEndpoint.
func (e *Endpoint) MTU() uint32 { return e.opts.MTU }

// MaxHeaderLength implements stack.LinkEndpoint.
func (e *Endpoint) MaxHeaderLength() int {
	if e.opts.Ethernet {
		return header.EthernetMinimumSize
	}
	return 0
}

// LinkAddress implements stack.LinkEndpoint.
func (e *Endpoint) LinkAddress() tcpip.LinkAddress { return e.opts.Address }

// Capabilities implements stack.LinkEndpoint.
func (e *Endpoint) Capabilities() stack.LinkCapabilities {
	if e.opts.Ethernet {
		return stack.CapabilityResolutionRequired
	}
	return 0
}

// Attach implements stack.LinkEndpoint and starts the I/O goroutines.
func (e *Endpoint) Attach(d stack.NetworkDispatcher) {
	e.disp.Store(&d)
	e.start.Do(func() {
		e.wg.Add(2)
		go e.readLoop()
		go e.writeLoop()
	})
}

// Close stops the goroutines. It does not close Options.FD.
func (e *Endpoint) Close() {
	e.close.Do(func() {
		close(e.done)
		var one [8]byte
		one[0] = 1
		unix.Write(e.wakeFD, one[:])
		e.wg.Wait()
		unix.Close(e.wakeFD)
	})
}

// WritePacket implements stack.LinkEndpoint. Packets are queued for the
// writer goroutine; a full queue drops, as a full device queue would.
func (e *Endpoint) WritePacket(remote tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) *tcpip.Error {
	if e.opts.Ethernet {
		h := pkt.Header.Prepend(header.EthernetMinimumSize)
		if h == nil {
			return tcpip.ErrNoBufferSpace
		}
		header.Ethernet(h).Encode(header.EthernetFields{Src: e.opts.Address, Dst: remote, Type: proto})
	}
	select {
	case e.sendQ <- pkt.Flatten():
	case <-e.done:
		return tcpip.ErrClosedForSend
	default:
		e.Stats.TxDropped.Add(1)
	}
	return nil
}

// wait polls the fd for events alongside the wake eventfd; it returns
// false once the endpoint is closing.
func (e *Endpoint) wait(events int16) bool {
	fds := []unix.PollFd{{Fd: int32(e.opts.FD), Events: events}, {Fd: int32(e.wakeFD), Events: unix.POLLIN}}
	for {
		select {
		case <-e.done:
			return false
		default:
		}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if fds[1].Revents != 0 {
			return false
		}
		return err == nil
	}
}

func mmsg(trap uintptr, fd int, msgs []unix.Mmsghdr) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

func (e *Endpoint) readLoop() {
	defer e.wg.Done()
	// A packet socket on a veth sees the peer kernel's GSO packets before
	// segmentation, up to 64 KiB whatever the MTU; the stack takes such
	// oversized segments as they are.
	size := max(int(e.opts.MTU), maxGSOPacket) + e.MaxHeaderLength()
	n := e.opts.BatchSize
	bufs := make([][]byte, n)
	iovs := make([]unix.Iovec, n)
	msgs := make([]unix.Mmsghdr, n)
	fresh := func(i int) {
		bufs[i] = make([]byte, size)
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(size)
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.Iovlen = 1
	}
	for i := range bufs {
		fresh(i)
	}
	var ctrl []byte
	if e.auxData {
		ctrl = make([]byte, n*auxCmsgSpace)
		for i := range msgs {
			msgs[i].Hdr.Control = &ctrl[i*auxCmsgSpace]
		}
	}
	for {
		select {
		case <-e.done:
			return
		default:
		}
		if ctrl != nil {
			for i := range msgs {
				msgs[i].Hdr.SetControllen(auxCmsgSpace)
			}
		}
		got, errno := mmsg(unix.SYS_RECVMMSG, e.opts.FD, msgs)
		if errno == 0 && got == 0 {
			return // end of file: the peer or device went away
		}
		if errno == unix.EAGAIN || errno == unix.EINTR {
			if !e.wait(unix.POLLIN) {
				return
			}
			continue
		}
		if errno != 0 {
			e.Stats.RxErrors.Add(1)
			if !e.wait(unix.POLLIN) {
				return
			}
			continue
		}
		for i := 0; i < got; i++ {
			l := int(msgs[i].Len)
			if msgs[i].Hdr.Flags&unix.MSG_TRUNC == 0 && l > 0 {
				trusted := false
				if ctrl != nil {
					trusted = checksumNotReady(ctrl[i*auxCmsgSpace : i*auxCmsgSpace+int(min(msgs[i].Hdr.Controllen, auxCmsgSpace))])
				}
				// The stack keeps views of delivered packets, so it gets
				// a copy of just the packet and the slot stays.
				e.deliver(append([]byte(nil), bufs[i][:l]...), trusted)
			}
			msgs[i].Len, msgs[i].Hdr.Flags = 0, 0
		}
	}
}

// maxGSOPacket is the largest packet the kernel hands a packet socket.
const maxGSOPacket = 65536

// auxCmsgSpace is CMSG_SPACE(sizeof(struct tpacket_auxdata)).
const auxCmsgSpace = 16 + 24

// checksumNotReady reads a PACKET_AUXDATA control message and reports
// TP_STATUS_CSUMNOTREADY: the packet came from this host's kernel with
// its transport checksum left to hardware that never ran.
func checksumNotReady(c []byte) bool {
	if len(c) < 16+4 {
		return false
	}
	l := binary.LittleEndian.Uint64(c)
	level := int32(binary.LittleEndian.Uint32(c[8:]))
	typ := int32(binary.LittleEndian.Uint32(c[12:]))
	if l < 16+4 || level != unix.SOL_PACKET || typ != unix.PACKET_AUXDATA {
		return false
	}
	return binary.LittleEndian.Uint32(c[16:])&unix.TP_STATUS_CSUMNOTREADY != 0
}

func (e *Endpoint) deliver(b []byte, checksumTrusted bool) {
	d := e.disp.Load()
	if d == nil {
		return
	}
	e.Stats.RxPackets.Add(1)
	var src tcpip.LinkAddress
	var proto tcpip.NetworkProtocolNumber
	if e.opts.Ethernet {
		eth, ok := header.ParseEthernet(b)
		if !ok {
			return
		}
		dst := eth.DestinationAddress()
		if dst != e.opts.Address && dst[0]&1 == 0 {
			return // unicast for someone else (promiscuous socket)
		}
		if eth.SourceAddress() == e.opts.Address {
			// What the host kernel itself sent on the device, which a
			// packet socket also sees.
			return
		}
		src, proto = eth.SourceAddress(), eth.Type()
		b = b[header.EthernetMinimumSize:]
	} else {
		switch b[0] >> 4 {
		case 4:
			proto = header.EthertypeIPv4
		case 6:
			proto = header.EthertypeIPv6
		default:
			return
		}
	}
	pkt := stack.NewInboundPacket(b)
	pkt.TransportChecksumTrusted = checksumTrusted
	(*d).DeliverNetworkPacket(src, proto, pkt)
}

func (e *Endpoint) writeLoop() {
	defer e.wg.Done()
	n := e.opts.BatchSize
	batch := make([][]byte, 0, n)
	iovs := make([]unix.Iovec, n)
	msgs := make([]unix.Mmsghdr, n)
	for {
		select {
		case p := <-e.sendQ:
			batch = append(batch[:0], p)
			if len(p) == 0 {
				continue
			}
		case <-e.done:
			return
		}
	more:
		for len(batch) < n {
			select {
			case p := <-e.sendQ:
				if len(p) > 0 {
					batch = append(batch, p)
				}
			default:
				break more
			}
		}
		for i, p := range batch {
			iovs[i].Base = &p[0]
			iovs[i].SetLen(len(p))
			msgs[i].Hdr.Iov = &iovs[i]
			msgs[i].Hdr.Iovlen = 1
		}
		pending := msgs[:len(batch)]
		for len(pending) > 0 {
			sent, errno := mmsg(unix.SYS_SENDMMSG, e.opts.FD, pending)
			switch {
			case errno == unix.EAGAIN || errno == unix.ENOBUFS:
				if !e.wait(unix.POLLOUT) {
					return
				}
			case errno == unix.EINTR:
			case errno != 0:
				// One bad packet (e.g. EMSGSIZE) must not wedge the rest.
				e.Stats.TxErrors.Add(1)
				pending = pending[1:]
			default:
				e.Stats.TxPackets.Add(uint64(sent))
				pending = pending[sent:]
			}
		}
		for i := range batch {
			batch[i] = nil
		}
	}
}
