package tcp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
	"carapace.dev/carapace/pkg/tcpip/link/fdbased"
	"carapace.dev/carapace/pkg/tcpip/network/arp"
	"carapace.dev/carapace/pkg/tcpip/network/ipv4"
	"carapace.dev/carapace/pkg/tcpip/stack"
)

// linuxPeer is our stack on one end of a veth pair whose other end is the
// host kernel's. Our end lives in a network namespace of its own, so the
// host (which may forward packets) never sees its traffic as transit.
type linuxPeer struct {
	s        *stack.Stack
	hostIP   string
	stackIP  string
	stackMAC tcpip.LinkAddress
}

func runIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

func newLinuxPeer(t *testing.T) *linuxPeer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a veth pair and a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
	pid := os.Getpid()
	ns := fmt.Sprintf("h7tcp%d", pid)
	hostIf, stackIf := fmt.Sprintf("h7h%d", pid), fmt.Sprintf("h7s%d", pid)
	subnet := fmt.Sprintf("10.%d.%d", 150+pid%50, (pid/50)%250)
	runIP(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	runIP(t, "link", "add", hostIf, "type", "veth", "peer", "name", stackIf, "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostIf).Run() })
	runIP(t, "addr", "add", subnet+".1/24", "dev", hostIf)
	runIP(t, "link", "set", hostIf, "up")
	runIP(t, "-n", ns, "link", "set", stackIf, "up")

	fd, mac := openPacketSocketIn(t, "/run/netns/"+ns, stackIf)
	l, err := fdbased.New(fdbased.Options{FD: fd, MTU: 1500, Address: mac, Ethernet: true})
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{NewProtocol},
	})
	t.Cleanup(func() { l.Close(); unix.Close(fd) })
	if err := s.CreateNIC(1, "eth0", l); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddress(1, ipv4.ProtocolNumber, tcpip.AddressWithPrefix{Address: tcpip.ParseAddress(subnet + ".2"), PrefixLen: 24}); err != nil {
		t.Fatal(err)
	}
	return &linuxPeer{s: s, hostIP: subnet + ".1", stackIP: subnet + ".2", stackMAC: mac}
}

// openPacketSocketIn opens an AF_PACKET socket on interface ifName of the
// network namespace at nsPath. The socket keeps its namespace; the thread
// that entered the namespace is never unlocked, so Go retires it.
func openPacketSocketIn(t *testing.T, nsPath, ifName string) (int, tcpip.LinkAddress) {
	type result struct {
		fd  int
		mac tcpip.LinkAddress
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ch <- func() result {
			nsFD, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return result{err: fmt.Errorf("open %s: %w", nsPath, err)}
			}
			defer unix.Close(nsFD)
			if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
				return result{err: fmt.Errorf("setns: %w", err)}
			}
			ifc, err := net.InterfaceByName(ifName)
			if err != nil {
				return result{err: err}
			}
			proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
			if err != nil {
				return result{err: fmt.Errorf("socket(AF_PACKET): %w", err)}
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifc.Index}); err != nil {
				unix.Close(fd)
				return result{err: fmt.Errorf("bind(AF_PACKET): %w", err)}
			}
			return result{fd: fd, mac: tcpip.LinkAddress(ifc.HardwareAddr)}
		}()
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("packet socket in %s: %v", nsPath, r.err)
	}
	return r.fd, r.mac
}

// linuxTCPInfo is the kernel's TCP_INFO for c, with the window scale
// bitfields that x/sys/unix leaves out (byte 6 of struct tcp_info:
// tcpi_snd_wscale in the low nibble, tcpi_rcv_wscale in the high one).
func linuxTCPInfo(t *testing.T, c *net.TCPConn) (info unix.TCPInfo, sndWS, rcvWS uint8) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var gerr error
	raw.Control(func(fd uintptr) {
		var p *unix.TCPInfo
		p, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if gerr == nil {
			info = *p
			ws := (*[8]byte)(unsafe.Pointer(p))[6]
			sndWS, rcvWS = ws&0xf, ws>>4
		}
	})
	if gerr != nil {
		t.Fatalf("TCP_INFO: %v", gerr)
	}
	return info, sndWS, rcvWS
}

// TestLinuxClientThroughSynCookies has the host kernel connect to our
// listener while every SYN is answered with a cookie: the kernel must
// accept our SYN-ACK's encoded timestamp, echo it, and both sides must
// end up with window scaling, SACK and timestamps, moving megabytes with
// windows above 64 KiB.
func TestLinuxClientThroughSynCookies(t *testing.T) {
	lp := newLinuxPeer(t)
	proto := protoOf(lp.s)
	proto.cookiesAlways.Store(true)
	ln := newEP(t, lp.s)
	if err := ln.Bind(tcpip.FullAddress{Port: 80}); err != nil {
		t.Fatal(err)
	}
	if err := ln.Listen(8); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	up := pattern(4 << 20)
	down := pattern(3 << 20)
	type clientResult struct {
		conn *net.TCPConn
		got  []byte
		err  error
	}
	done := make(chan clientResult, 1)
	go func() {
		c, err := net.DialTimeout("tcp", lp.stackIP+":80", 10*time.Second)
		if err != nil {
			done <- clientResult{err: err}
			return
		}
		tc := c.(*net.TCPConn)
		tc.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := tc.Write(up); err != nil {
			done <- clientResult{conn: tc, err: fmt.Errorf("write: %w", err)}
			return
		}
		got := make([]byte, len(down))
		_, err = io.ReadFull(tc, got)
		done <- clientResult{conn: tc, got: got, err: err}
	}()

	var sep tcpip.Endpoint
	waitFor(t, ln, tcpip.EventIn, func() bool {
		var err *tcpip.Error
		sep, _, err = ln.Accept()
		return err == nil
	})
	s := sep.(*endpoint)
	defer s.Close()
	if q, _ := listenerCounts(ln); q != 0 {
		t.Fatalf("%d connections went through the SYN queue despite cookiesAlways", q)
	}
	var got bytes.Buffer
	readFull(t, s, len(up), &got)
	if !bytes.Equal(got.Bytes(), up) {
		t.Fatalf("Linux -> us: %d of %d bytes, mismatched", got.Len(), len(up))
	}
	writeFull(t, s, down)
	r := <-done
	if r.conn != nil {
		defer r.conn.Close()
	}
	if r.err != nil {
		t.Fatalf("Linux client: %v", r.err)
	}
	if !bytes.Equal(r.got, down) {
		t.Fatal("us -> Linux: data mismatched")
	}

	s.mu.Lock()
	tsOK, sackOK, wsOK, sndWS, rcvWS, sndWnd, iss, irs, id := s.tsOK, s.sackOK, s.wsOK, s.sndWS, s.rcvWS, s.sndWnd, s.iss, s.irs, s.id
	s.mu.Unlock()
	info, linuxSndWS, linuxRcvWS := linuxTCPInfo(t, r.conn)
	negotiated := header.TCPOptions{HasWS: wsOK, WindowScale: sndWS, SACKPermitted: sackOK}
	bits := encodeCookieOpts(&negotiated)
	if _, ok := proto.checkCookie(id, irs, iss, bits); !ok {
		t.Fatalf("our ISN %#x is not a cookie for options %#x", iss, bits)
	}
	if !tsOK || !sackOK || !wsOK || rcvWS == 0 || sndWS == 0 {
		t.Fatalf("our side: ts %v sack %v ws %v (snd %d rcv %d)", tsOK, sackOK, wsOK, sndWS, rcvWS)
	}
	const tcpiOptTimestamps, tcpiOptSACK, tcpiOptWscale = 1, 2, 4
	if want := uint8(tcpiOptTimestamps | tcpiOptSACK | tcpiOptWscale); info.Options&want != want {
		t.Fatalf("Linux's tcpi_options %#x lack timestamps/SACK/window scaling", info.Options)
	}
	if linuxSndWS != rcvWS || linuxRcvWS != sndWS {
		t.Fatalf("window scales disagree: Linux snd %d rcv %d, ours snd %d rcv %d", linuxSndWS, linuxRcvWS, sndWS, rcvWS)
	}
	// Windows above 64 KiB both ways: only scaling can express them.
	if info.Snd_wnd <= 0xffff || sndWnd <= 0xffff {
		t.Fatalf("windows: Linux sees ours as %d, we see Linux's as %d", info.Snd_wnd, sndWnd)
	}
}
