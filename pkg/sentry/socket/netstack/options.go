package netstack

import (
	"bytes"
	"encoding/binary"
	"time"

	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/transport/tcp"
	"carapace.dev/carapace/pkg/tcpip/transport/udp"
	"golang.org/x/sys/unix"
)

// Linux's floors for SO_SNDBUF and SO_RCVBUF (after doubling) and the
// ceiling of the TCP keepalive settings, in seconds.
const (
	minSndBuf      = 4608
	minRcvBuf      = 2304
	maxTCPKeepIdle = 32767
	maxTCPKeepCnt  = 127
	tcpCANameMax   = 16
)

// congestionControls are the TCP_CONGESTION names pkg/tcpip implements.
var congestionControls = map[string]int{"reno": tcpip.CongestionReno, "cubic": tcpip.CongestionCubic}

func intBytes(v int) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, uint32(int32(v)))
	return b
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// truncate cuts an option value to the caller's buffer, as Linux copies
// min(optlen, size) bytes of an integer option.
func truncate(b []byte, optLen int) ([]byte, error) {
	if optLen < 0 {
		return nil, unix.EINVAL
	}
	if optLen < len(b) {
		return b[:optLen], nil
	}
	return b, nil
}

// readInt decodes an integer option value. Linux requires a whole int at
// SOL_SOCKET and IPPROTO_TCP but takes a single byte at SOL_IP.
func readInt(opt []byte, allowByte bool) (int, error) {
	switch {
	case len(opt) >= 4:
		return int(int32(binary.LittleEndian.Uint32(opt))), nil
	case allowByte && len(opt) >= 1:
		return int(opt[0]), nil
	}
	return 0, unix.EINVAL
}

func encodeTimeval(d time.Duration) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, uint64(d/time.Second))
	binary.LittleEndian.PutUint64(b[8:], uint64(d%time.Second/time.Microsecond))
	return b
}

// decodeTimeval reads SO_RCVTIMEO/SO_SNDTIMEO's struct timeval; Linux
// rejects tv_usec outside [0, 1000000) with EDOM and takes a negative
// tv_sec as zero (no timeout).
func decodeTimeval(opt []byte) (time.Duration, error) {
	if len(opt) < 16 {
		return 0, unix.EINVAL
	}
	sec := int64(binary.LittleEndian.Uint64(opt))
	usec := int64(binary.LittleEndian.Uint64(opt[8:]))
	if usec < 0 || usec >= 1000000 {
		return 0, unix.EDOM
	}
	if sec < 0 {
		return 0, nil
	}
	if sec > int64(time.Duration(1<<62)/time.Second) {
		return 0, nil
	}
	return time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond, nil
}

// epInt reads an endpoint-kept option, with ENOPROTOOPT for endpoints
// that do not have it.
func epInt(ep tcpip.Endpoint, o tcpip.SockOpt) ([]byte, error) {
	v, err := ep.GetSockOpt(o)
	if err != nil {
		return nil, errnoOf(err)
	}
	return intBytes(v), nil
}

// GetSockOpt implements socket.Socket.
func (s *sock) GetSockOpt(t *kernel.Task, level, name int, optLen int) ([]byte, error) {
	if optLen < 0 {
		return nil, unix.EINVAL
	}
	b, err := s.getSockOpt(level, name)
	if err != nil {
		return nil, err
	}
	return truncate(b, optLen)
}

func (s *sock) getSockOpt(level, name int) ([]byte, error) {
	ep := s.endpoint()
	switch level {
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_TYPE:
			return intBytes(s.stype), nil
		case unix.SO_DOMAIN:
			return intBytes(s.family), nil
		case unix.SO_PROTOCOL:
			return intBytes(s.protocol), nil
		case unix.SO_ERROR:
			return intBytes(int(errnoValue(ep.LastError()))), nil
		case unix.SO_ACCEPTCONN:
			st, ok := tcpState(ep)
			return intBytes(boolInt(ok && s.stream() && st == tcp.StateListen)), nil
		case unix.SO_REUSEADDR:
			return epIntOrZero(ep, tcpip.ReuseAddressOption), nil
		case unix.SO_REUSEPORT:
			return epIntOrZero(ep, tcpip.ReusePortOption), nil
		case unix.SO_SNDBUF:
			return epInt(ep, tcpip.SendBufferSizeOption)
		case unix.SO_RCVBUF:
			return epInt(ep, tcpip.ReceiveBufferSizeOption)
		case unix.SO_TIMESTAMP:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.timestamp)), nil
		case unix.SO_KEEPALIVE:
			if s.stream() {
				return epInt(ep, tcpip.KeepaliveEnabledOption)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.keepalive)), nil
		case unix.SO_BROADCAST:
			if s.stream() {
				s.mu.Lock()
				defer s.mu.Unlock()
				return intBytes(boolInt(s.opts.broadcast)), nil
			}
			return epIntOrZero(ep, tcpip.BroadcastOption), nil
		case unix.SO_LINGER:
			s.mu.Lock()
			l := s.opts.linger
			s.mu.Unlock()
			b := make([]byte, 8)
			binary.LittleEndian.PutUint32(b, uint32(l.Onoff))
			binary.LittleEndian.PutUint32(b[4:], uint32(l.Linger))
			return b, nil
		case unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
			s.mu.Lock()
			d := s.opts.rcvTimeo
			if name == unix.SO_SNDTIMEO {
				d = s.opts.sndTimeo
			}
			s.mu.Unlock()
			return encodeTimeval(d), nil
		case unix.SO_OOBINLINE:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.oobInline)), nil
		case unix.SO_RCVLOWAT, unix.SO_SNDLOWAT:
			return intBytes(1), nil
		}
	case unix.IPPROTO_TCP:
		if !s.stream() {
			return nil, unix.ENOPROTOOPT
		}
		switch name {
		case unix.TCP_NODELAY:
			return epInt(ep, tcpip.NoDelayOption)
		case unix.TCP_CORK:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.cork)), nil
		case unix.TCP_QUICKACK:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(!s.opts.quickAck)), nil
		case unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL:
			o := tcpip.KeepaliveIdleOption
			if name == unix.TCP_KEEPINTVL {
				o = tcpip.KeepaliveIntervalOption
			}
			v, err := ep.GetSockOpt(o)
			if err != nil {
				return nil, errnoOf(err)
			}
			return intBytes(v / 1000), nil
		case unix.TCP_KEEPCNT:
			return epInt(ep, tcpip.KeepaliveCountOption)
		case unix.TCP_MAXSEG:
			return epInt(ep, tcpip.MaxSegOption)
		case unix.TCP_CONGESTION:
			b := make([]byte, tcpCANameMax)
			v, _ := ep.GetSockOpt(tcpip.CongestionControlOption)
			for name, n := range congestionControls {
				if n == v {
					copy(b, name)
				}
			}
			return b, nil
		case unix.TCP_INFO:
			return s.tcpInfo(ep), nil
		}
	case unix.IPPROTO_IP:
		switch name {
		case unix.IP_TTL:
			return epInt(ep, tcpip.TTLOption)
		case unix.IP_TOS:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(s.opts.tos), nil
		case unix.IP_RECVERR:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.recvErr)), nil
		}
	case unix.IPPROTO_IPV6:
		if s.family != unix.AF_INET6 {
			return nil, unix.ENOPROTOOPT
		}
		switch name {
		case unix.IPV6_V6ONLY:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.v6only)), nil
		case unix.IPV6_UNICAST_HOPS:
			return epInt(ep, tcpip.TTLOption)
		case unix.IPV6_TCLASS:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(s.opts.tclass), nil
		case unix.IPV6_RECVERR:
			s.mu.Lock()
			defer s.mu.Unlock()
			return intBytes(boolInt(s.opts.recvErr)), nil
		}
	}
	return nil, unix.ENOPROTOOPT
}

// epIntOrZero reads an option an endpoint may not keep (SO_REUSEADDR on
// a ping socket), reporting it off.
func epIntOrZero(ep tcpip.Endpoint, o tcpip.SockOpt) []byte {
	v, err := ep.GetSockOpt(o)
	if err != nil {
		v = 0
	}
	return intBytes(v)
}

func errnoValue(err *tcpip.Error) unix.Errno {
	if err == nil {
		return 0
	}
	return err.Errno()
}

// tcpInfo builds the leading fields of struct tcp_info (linux/tcp.h)
// that the stack can answer: state, options, RTO, MSS and RTT.
func (s *sock) tcpInfo(ep tcpip.Endpoint) []byte {
	b := make([]byte, 104) // through tcpi_total_retrans
	st, _ := tcpState(ep)
	b[0] = linuxTCPState(st)
	ti, ok := ep.(tcpip.TCPInfoer)
	if !ok {
		mss, _ := ep.GetSockOpt(tcpip.MaxSegOption)
		binary.LittleEndian.PutUint32(b[16:], uint32(mss)) // tcpi_snd_mss
		binary.LittleEndian.PutUint32(b[20:], uint32(mss)) // tcpi_rcv_mss
		return b
	}
	i := ti.TCPInfo()
	usec := func(d time.Duration) uint32 { return uint32(d / time.Microsecond) }
	b[2] = uint8(min(i.Retransmits, 255)) // tcpi_retransmits
	b[5] = i.Options
	b[6] = i.SndWScale&0xf | i.RcvWScale<<4
	put := func(off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	put(8, usec(i.RTO))
	put(16, uint32(i.SndMSS))
	put(20, uint32(i.RcvMSS))
	put(24, uint32(i.Unacked))
	put(68, usec(i.RTT))
	put(72, usec(i.RTTVar))
	put(76, uint32(min(i.SndSsthresh, 0x7fffffff)))
	put(80, uint32(i.SndCwnd))
	put(84, uint32(i.SndMSS)) // tcpi_advmss
	put(88, 3)                // tcpi_reordering: Linux's initial value
	put(100, uint32(i.TotalRetrans))
	return b
}

// linuxTCPState maps a connection state to Linux's TCP_* numbering.
func linuxTCPState(st tcp.State) byte {
	switch st {
	case tcp.StateEstablished:
		return 1
	case tcp.StateSynSent:
		return 2
	case tcp.StateSynRcvd:
		return 3
	case tcp.StateFinWait1:
		return 4
	case tcp.StateFinWait2:
		return 5
	case tcp.StateTimeWait:
		return 6
	case tcp.StateCloseWait:
		return 8
	case tcp.StateLastAck:
		return 9
	case tcp.StateListen:
		return 10
	case tcp.StateClosing:
		return 11
	}
	return 7 // TCP_CLOSE
}

// SetSockOpt implements socket.Socket.
func (s *sock) SetSockOpt(t *kernel.Task, level, name int, opt []byte) error {
	ep := s.endpoint()
	switch level {
	case unix.SOL_SOCKET:
		switch name {
		case unix.SO_RCVTIMEO, unix.SO_SNDTIMEO:
			d, err := decodeTimeval(opt)
			if err != nil {
				return err
			}
			s.mu.Lock()
			if name == unix.SO_RCVTIMEO {
				s.opts.rcvTimeo = d
			} else {
				s.opts.sndTimeo = d
			}
			s.mu.Unlock()
			return nil
		case unix.SO_LINGER:
			if len(opt) < 8 {
				return unix.EINVAL
			}
			s.mu.Lock()
			s.opts.linger = unix.Linger{Onoff: int32(binary.LittleEndian.Uint32(opt)), Linger: int32(binary.LittleEndian.Uint32(opt[4:]))}
			if s.opts.linger.Onoff != 0 {
				s.opts.linger.Onoff = 1
			}
			s.mu.Unlock()
			return nil
		}
		v, err := readInt(opt, false)
		if err != nil {
			return err
		}
		switch name {
		case unix.SO_REUSEADDR:
			return setEp(ep, tcpip.ReuseAddressOption, boolInt(v != 0), true)
		case unix.SO_REUSEPORT:
			return setEp(ep, tcpip.ReusePortOption, boolInt(v != 0), true)
		case unix.SO_SNDBUF:
			return setEp(ep, tcpip.SendBufferSizeOption, max(clampDouble(v), minSndBuf), false)
		case unix.SO_RCVBUF:
			return setEp(ep, tcpip.ReceiveBufferSizeOption, max(clampDouble(v), minRcvBuf), false)
		case unix.SO_TIMESTAMP:
			s.mu.Lock()
			s.opts.timestamp = v != 0
			if !s.stream() {
				// Datagrams note their arrival time from now on.
				s.ep.SetSockOpt(tcpip.TimestampOption, boolInt(v != 0))
				if s.v4 != nil {
					s.v4.SetSockOpt(tcpip.TimestampOption, boolInt(v != 0))
				}
			}
			s.mu.Unlock()
			return nil
		case unix.SO_KEEPALIVE:
			if s.stream() {
				return setEp(ep, tcpip.KeepaliveEnabledOption, boolInt(v != 0), false)
			}
			s.mu.Lock()
			s.opts.keepalive = v != 0
			s.mu.Unlock()
			return nil
		case unix.SO_BROADCAST:
			if s.stream() || s.trans != udp.ProtocolNumber {
				s.mu.Lock()
				s.opts.broadcast = v != 0
				s.mu.Unlock()
				return nil
			}
			return setEp(ep, tcpip.BroadcastOption, boolInt(v != 0), false)
		case unix.SO_OOBINLINE:
			s.mu.Lock()
			s.opts.oobInline = v != 0
			s.mu.Unlock()
			return nil
		case unix.SO_RCVLOWAT, unix.SO_SNDLOWAT:
			return nil
		}
	case unix.IPPROTO_TCP:
		if !s.stream() {
			return unix.ENOPROTOOPT
		}
		if name == unix.TCP_CONGESTION {
			// The name ends at its first NUL, as strncpy_from_user reads it.
			if i := bytes.IndexByte(opt, 0); i >= 0 {
				opt = opt[:i]
			}
			cc, ok := congestionControls[string(opt)]
			if !ok {
				return unix.ENOENT
			}
			return errnoOf(ep.SetSockOpt(tcpip.CongestionControlOption, cc))
		}
		v, err := readInt(opt, false)
		if err != nil {
			return err
		}
		switch name {
		case unix.TCP_NODELAY:
			return setEp(ep, tcpip.NoDelayOption, boolInt(v != 0), false)
		case unix.TCP_CORK:
			s.mu.Lock()
			was := s.opts.cork
			s.opts.cork = v != 0
			s.mu.Unlock()
			if was && v == 0 {
				// Uncorking pushes out what was held back: a moment of
				// TCP_NODELAY sends the partial segment.
				nd, _ := ep.GetSockOpt(tcpip.NoDelayOption)
				ep.SetSockOpt(tcpip.NoDelayOption, 1)
				ep.SetSockOpt(tcpip.NoDelayOption, nd)
			}
			return nil
		case unix.TCP_QUICKACK:
			s.mu.Lock()
			s.opts.quickAck = v == 0
			s.mu.Unlock()
			return nil
		case unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL:
			if v < 1 || v > maxTCPKeepIdle {
				return unix.EINVAL
			}
			o := tcpip.KeepaliveIdleOption
			if name == unix.TCP_KEEPINTVL {
				o = tcpip.KeepaliveIntervalOption
			}
			return setEp(ep, o, v*1000, false)
		case unix.TCP_KEEPCNT:
			if v < 1 || v > maxTCPKeepCnt {
				return unix.EINVAL
			}
			return setEp(ep, tcpip.KeepaliveCountOption, v, false)
		case unix.TCP_MAXSEG:
			return setEp(ep, tcpip.MaxSegOption, v, false)
		}
	case unix.IPPROTO_IP:
		v, err := readInt(opt, true)
		if err != nil {
			return err
		}
		switch name {
		case unix.IP_TTL:
			if v == -1 {
				v = 0 // the default
			}
			if v < 0 || v > 255 {
				return unix.EINVAL
			}
			return setEp(ep, tcpip.TTLOption, v, false)
		case unix.IP_TOS:
			s.mu.Lock()
			s.opts.tos = v & 0xff
			s.pushTOSLocked()
			s.mu.Unlock()
			return nil
		case unix.IP_RECVERR:
			s.mu.Lock()
			s.opts.recvErr = v != 0
			s.mu.Unlock()
			return nil
		}
	case unix.IPPROTO_IPV6:
		if s.family != unix.AF_INET6 {
			return unix.ENOPROTOOPT
		}
		v, err := readInt(opt, false)
		if err != nil {
			return err
		}
		switch name {
		case unix.IPV6_V6ONLY:
			s.mu.Lock()
			defer s.mu.Unlock()
			if a, _ := s.ep.LocalAddress(); a.Port != 0 {
				return unix.EINVAL
			}
			s.opts.v6only = v != 0
			return nil
		case unix.IPV6_UNICAST_HOPS:
			if v == -1 {
				v = 0
			}
			if v < 0 || v > 255 {
				return unix.EINVAL
			}
			return setEp(ep, tcpip.TTLOption, v, false)
		case unix.IPV6_TCLASS:
			if v < -1 || v > 255 {
				return unix.EINVAL
			}
			s.mu.Lock()
			s.opts.tclass = max(v, 0)
			s.pushTOSLocked()
			s.mu.Unlock()
			return nil
		case unix.IPV6_RECVERR:
			s.mu.Lock()
			s.opts.recvErr = v != 0
			s.mu.Unlock()
			return nil
		}
	}
	return unix.ENOPROTOOPT
}

// clampDouble doubles a buffer size request as Linux does (to account
// for bookkeeping), without overflowing.
func clampDouble(v int) int {
	if v < 0 {
		return 0
	}
	if v > 1<<30 {
		return 1 << 31
	}
	return v * 2
}

// setEp sets an endpoint-kept option. Options an endpoint does not have
// are accepted silently when lenient (SO_REUSEADDR on a ping socket is
// harmless on Linux too).
func setEp(ep tcpip.Endpoint, o tcpip.SockOpt, v int, lenient bool) error {
	err := ep.SetSockOpt(o, v)
	if err == tcpip.ErrUnknownProtocolOption && lenient {
		return nil
	}
	return errnoOf(err)
}
