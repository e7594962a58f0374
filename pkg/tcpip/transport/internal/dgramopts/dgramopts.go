// Package dgramopts owns the socket options the datagram transports (UDP
// and ICMP echo) share: TTL, TOS, receive timestamps and the buffer
// sizes, with Linux's bounds. Each endpoint keeps one Options under its
// own lock and offers it every option before handling its own.
package dgramopts

import (
	"carapace.dev/carapace/pkg/tcpip"
	"carapace.dev/carapace/pkg/tcpip/header"
)

// DefaultBufferSize is Linux's net.core.{r,w}mem_default.
const DefaultBufferSize = 212992

// Bounds of SO_RCVBUF/SO_SNDBUF after doubling by the socket layer.
const (
	MinBufferSize = 4096
	MaxBufferSize = 4 << 20
)

// Options are the shared options of one datagram endpoint. TTL 0 means
// the default (IPv4DefaultTTL as reported, the route's as sent).
type Options struct {
	TTL        uint8
	TOS        uint8
	Timestamps bool
	RcvBufSize int
	SndBufSize int
}

// New returns options with both buffers at rcv and snd bytes.
func New(rcv, snd int) Options { return Options{RcvBufSize: rcv, SndBufSize: snd} }

// Set applies opt if it is one of the shared options, and reports
// whether it was; an out-of-range TTL or TOS is ErrInvalidOptionValue.
func (o *Options) Set(opt tcpip.SockOpt, v int) (bool, *tcpip.Error) {
	switch opt {
	case tcpip.TimestampOption:
		o.Timestamps = v != 0
	case tcpip.TOSOption:
		if v < 0 || v > 255 {
			return true, tcpip.ErrInvalidOptionValue
		}
		o.TOS = uint8(v)
	case tcpip.TTLOption:
		if v < 0 || v > 255 {
			return true, tcpip.ErrInvalidOptionValue
		}
		o.TTL = uint8(v)
	case tcpip.ReceiveBufferSizeOption:
		o.RcvBufSize = min(max(v, MinBufferSize), MaxBufferSize)
	case tcpip.SendBufferSizeOption:
		o.SndBufSize = min(max(v, MinBufferSize), MaxBufferSize)
	default:
		return false, nil
	}
	return true, nil
}

// Get returns opt's value if it is one of the shared options, and
// reports whether it was.
func (o *Options) Get(opt tcpip.SockOpt) (int, bool) {
	switch opt {
	case tcpip.TimestampOption:
		if o.Timestamps {
			return 1, true
		}
		return 0, true
	case tcpip.TOSOption:
		return int(o.TOS), true
	case tcpip.TTLOption:
		if o.TTL == 0 {
			return header.IPv4DefaultTTL, true
		}
		return int(o.TTL), true
	case tcpip.ReceiveBufferSizeOption:
		return o.RcvBufSize, true
	case tcpip.SendBufferSizeOption:
		return o.SndBufSize, true
	}
	return 0, false
}
