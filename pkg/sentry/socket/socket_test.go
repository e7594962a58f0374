package socket

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func timeval(sec, usec int64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(sec))
	return binary.LittleEndian.AppendUint64(b, uint64(usec))
}

func TestTimeoutOptions(t *testing.T) {
	var o TimeoutOptions
	for _, c := range []struct {
		opt  []byte
		want time.Duration
		err  error
	}{
		{timeval(1, 500000), 1500 * time.Millisecond, nil},
		{timeval(0, 0), 0, nil},
		{timeval(-5, 0), 0, nil},
		{timeval(0, 1000000), 0, unix.EDOM},
		{timeval(0, -1), 0, unix.EDOM},
		{make([]byte, 8), 0, unix.EINVAL},
	} {
		o.recv.Store(int64(time.Hour))
		ok, err := o.SetTimeoutOpt(unix.SOL_SOCKET, unix.SO_RCVTIMEO_OLD, c.opt)
		if !ok || !errors.Is(err, c.err) && !(err == nil && c.err == nil) {
			t.Errorf("set %x: ok %v err %v, want %v", c.opt, ok, err, c.err)
			continue
		}
		recv, _ := o.Timeouts()
		if c.err == nil && recv != c.want {
			t.Errorf("set %x: timeout %v, want %v", c.opt, recv, c.want)
		}
		if c.err != nil && recv != time.Hour {
			t.Errorf("a rejected value changed the timeout to %v", recv)
		}
	}
	o.SetTimeoutOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO_OLD, timeval(2, 250))
	v, ok := o.GetTimeoutOpt(unix.SOL_SOCKET, unix.SO_SNDTIMEO_OLD)
	if !ok || binary.LittleEndian.Uint64(v) != 2 || binary.LittleEndian.Uint64(v[8:]) != 250 {
		t.Errorf("SO_SNDTIMEO reads back %x", v)
	}
	if ok, _ := o.SetTimeoutOpt(unix.SOL_SOCKET, unix.SO_SNDBUF, nil); ok {
		t.Error("SO_SNDBUF taken as a timeout")
	}
}

func TestBufferSizeFromOpt(t *testing.T) {
	for in, want := range map[int32]int64{1: MinBufferSize, 10000: 20000, -1: MinBufferSize, 1 << 30: MaxBufferSize} {
		if got := BufferSizeFromOpt(in); got != want {
			t.Errorf("BufferSizeFromOpt(%d) = %d, want %d", in, got, want)
		}
	}
}
