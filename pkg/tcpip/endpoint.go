package tcpip

import (
	"io"
	"time"
)

// SockOpt names an integer-valued socket option.
type SockOpt int

// Socket options understood by endpoints. Durations are in milliseconds;
// booleans are 0 or 1.
const (
	ReuseAddressOption      SockOpt = iota + 1 // SO_REUSEADDR
	ReusePortOption                            // SO_REUSEPORT
	BroadcastOption                            // SO_BROADCAST
	SendBufferSizeOption                       // SO_SNDBUF (bytes)
	ReceiveBufferSizeOption                    // SO_RCVBUF (bytes)
	ReceiveQueueSizeOption                     // FIONREAD (get only)
	SendQueueSizeOption                        // TIOCOUTQ (get only)
	TTLOption                                  // IP_TTL
	KeepaliveEnabledOption                     // SO_KEEPALIVE
	KeepaliveIdleOption                        // TCP_KEEPIDLE (ms)
	KeepaliveIntervalOption                    // TCP_KEEPINTVL (ms)
	KeepaliveCountOption                       // TCP_KEEPCNT
	NoDelayOption                              // TCP_NODELAY
	MaxSegOption                               // TCP_MAXSEG
	TCPStateOption                             // TCP_INFO's state (get only)
	AcceptQueueSizeOption                      // established connections not yet accepted (get only)
	TOSOption                                  // IP_TOS / IPV6_TCLASS byte of outgoing packets
	TimestampOption                            // SO_TIMESTAMP: datagrams record their arrival time
	CongestionControlOption                    // TCP_CONGESTION: CongestionReno or CongestionCubic
)

// TCPInfo is a TCP connection's state as getsockopt(TCP_INFO) reports it.
type TCPInfo struct {
	// RTO is the current retransmission timeout; RTT and RTTVar the
	// smoothed round-trip time and its variation (RFC 6298).
	RTO, RTT, RTTVar time.Duration
	// SndMSS and RcvMSS are the segment sizes sent and expected.
	SndMSS, RcvMSS int
	// SndCwnd is the congestion window in segments, SndSsthresh the
	// slow-start threshold in segments.
	SndCwnd, SndSsthresh int
	// Unacked counts segments in flight.
	Unacked int
	// Retransmits counts consecutive timeouts of the oldest segment;
	// TotalRetrans every segment sent again.
	Retransmits, TotalRetrans int
	// Options are Linux's TCPI_OPT_* bits; SndWScale and RcvWScale the
	// window shifts in use.
	Options              uint8
	SndWScale, RcvWScale uint8
}

// TCPInfoer is implemented by TCP endpoints.
type TCPInfoer interface {
	TCPInfo() TCPInfo
}

// Congestion control algorithms, the values of CongestionControlOption.
const (
	CongestionReno  = 0
	CongestionCubic = 1
)

// ReadOptions modify Read.
type ReadOptions struct {
	// Peek leaves the data queued (MSG_PEEK).
	Peek bool
}

// ReadResult describes a completed Read.
type ReadResult struct {
	// Count is how many bytes were written to the destination.
	Count int
	// Total is the size of the datagram read (for MSG_TRUNC); for streams it
	// equals Count.
	Total int
	// RemoteAddr is the datagram's source or the stream's peer.
	RemoteAddr FullAddress
	// Timestamp is a datagram's arrival time, with TimestampOption set
	// before it arrived; zero otherwise.
	Timestamp time.Time
}

// WriteOptions modify Write.
type WriteOptions struct {
	// To sends a datagram to this address instead of the connected peer.
	To *FullAddress
	// More asks a stream to hold a partial segment for more data (MSG_MORE).
	More bool
}

// Endpoint is a transport endpoint: what a socket is built on. Every call
// is non-blocking; a caller that must wait registers on the endpoint's
// WaitQueue and retries when Readiness changes.
type Endpoint interface {
	// Close releases the endpoint; a connected stream is closed gracefully.
	Close()
	// Abort closes the endpoint, resetting a stream connection.
	Abort()
	// Read moves queued data into dst. Streams copy as much as dst accepts
	// (a short write from dst stops the copy); datagrams consume one whole
	// datagram even if dst takes only part of it.
	Read(dst io.Writer, opts ReadOptions) (ReadResult, *Error)
	// Write takes data from src. Streams take as much as the send buffer
	// has room for; datagrams read src to EOF and send one datagram.
	Write(src io.Reader, opts WriteOptions) (int64, *Error)
	// Bind assigns the local address.
	Bind(addr FullAddress) *Error
	// Connect connects a stream (returning ErrConnectStarted while the
	// handshake runs) or sets a datagram endpoint's default peer.
	Connect(addr FullAddress) *Error
	// Listen makes a stream endpoint accept connections.
	Listen(backlog int) *Error
	// Accept returns an established connection from the accept queue.
	Accept() (Endpoint, FullAddress, *Error)
	// Shutdown closes one or both directions.
	Shutdown(flags ShutdownFlags) *Error
	// LocalAddress is getsockname.
	LocalAddress() (FullAddress, *Error)
	// RemoteAddress is getpeername.
	RemoteAddress() (FullAddress, *Error)
	// SetSockOpt sets an integer option.
	SetSockOpt(opt SockOpt, v int) *Error
	// GetSockOpt reads an integer option.
	GetSockOpt(opt SockOpt) (int, *Error)
	// LastError returns and clears the pending error (SO_ERROR).
	LastError() *Error
	// Readiness returns the events in mask that are currently true.
	Readiness(mask EventMask) EventMask
	// WaitQueue is where readiness changes are signalled.
	WaitQueue() *WaitQueue
}

// LenReader is an io.Reader that knows how many bytes it has left. Stream
// endpoints use it to size their buffers to the write.
type LenReader interface {
	io.Reader
	Len() int
}

// SliceWriter is an io.Writer over a fixed buffer: it accepts up to the
// buffer's free space and reports io.ErrShortWrite past that, which is how
// a bounded user buffer limits a Read.
type SliceWriter struct {
	Buf []byte
	N   int
}

// Write implements io.Writer.
func (w *SliceWriter) Write(p []byte) (int, error) {
	n := copy(w.Buf[w.N:], p)
	w.N += n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// Bytes returns what has been written.
func (w *SliceWriter) Bytes() []byte { return w.Buf[:w.N] }
