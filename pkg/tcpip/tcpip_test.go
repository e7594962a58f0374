package tcpip

import (
	"io"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAddressesAndSubnets(t *testing.T) {
	a := ParseAddress("192.168.10.77")
	if a.Len() != 4 || a.String() != "192.168.10.77" || a.Unspecified() {
		t.Fatalf("parsed %v", a)
	}
	s := NewSubnet(a, 20)
	if s.ID().String() != "192.168.0.0" || s.Broadcast().String() != "192.168.15.255" || !s.Contains(ParseAddress("192.168.15.1")) || s.Contains(ParseAddress("192.168.16.1")) {
		t.Fatalf("subnet %v bcast %v", s, s.Broadcast())
	}
	if s.Contains(ParseAddress("::1")) {
		t.Fatal("IPv4 subnet contains an IPv6 address")
	}
	six := ParseAddress("fe80::1:2")
	if six.Len() != 16 || !NewSubnet(six, 64).Contains(ParseAddress("fe80::ffff")) || six.IsMulticast() {
		t.Fatal("ipv6 subnet")
	}
	if !ParseAddress("0.0.0.0").Unspecified() || !ParseAddress("255.255.255.255").IsBroadcast() || !ParseAddress("224.0.0.1").IsMulticast() || !ParseAddress("::1").IsLoopback() {
		t.Fatal("classification")
	}
	if ParseAddress("bogus").Len() != 0 || AddrFromSlice([]byte{1, 2, 3}).Len() != 0 {
		t.Fatal("bad input must give the zero Address")
	}
	m := map[Address]int{ParseAddress("1.2.3.4"): 1}
	if m[AddrFrom4([4]byte{1, 2, 3, 4})] != 1 {
		t.Fatal("addresses are not usable as map keys")
	}
	if l := ParseLinkAddress("02:00:5e:10:00:ff"); l.String() != "02:00:5e:10:00:ff" {
		t.Fatalf("link address %v", l)
	}
}

func TestErrnos(t *testing.T) {
	cases := map[*Error]unix.Errno{ErrWouldBlock: unix.EAGAIN, ErrConnectionRefused: unix.ECONNREFUSED, ErrPortInUse: unix.EADDRINUSE,
		ErrConnectStarted: unix.EINPROGRESS, ErrClosedForReceive: 0, ErrTimeout: unix.ETIMEDOUT}
	for e, want := range cases {
		if e.Errno() != want {
			t.Errorf("%v -> %v, want %v", e, e.Errno(), want)
		}
	}
}

func TestWaitQueue(t *testing.T) {
	var q WaitQueue
	var got []EventMask
	in := &WaitEntry{Callback: func(m EventMask) { got = append(got, m) }}
	out, ch := NewChannelEntry()
	q.EventRegister(in, EventIn)
	q.EventRegister(out, EventOut)
	q.Notify(EventIn | EventHUp)
	if len(got) != 1 || got[0] != EventIn || len(ch) != 0 {
		t.Fatalf("got %v, out signalled %d", got, len(ch))
	}
	q.Notify(EventOut)
	q.Notify(EventOut) // coalesces in the channel
	if len(ch) != 1 {
		t.Fatal("channel entry not signalled")
	}
	q.EventUnregister(in)
	q.EventUnregister(in)
	q.Notify(EventIn)
	if len(got) != 1 {
		t.Fatal("unregistered entry called")
	}
}

func TestSliceWriter(t *testing.T) {
	w := &SliceWriter{Buf: make([]byte, 4)}
	if n, err := w.Write([]byte("ab")); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := w.Write([]byte("cdef")); n != 2 || err != io.ErrShortWrite || string(w.Bytes()) != "abcd" {
		t.Fatal(n, err, string(w.Bytes()))
	}
}

func TestManualClockStopAndReset(t *testing.T) {
	c := NewManualClock()
	fired := 0
	tm := c.AfterFunc(10, func() { fired++ })
	c.Advance(5)
	tm.Reset(10)
	c.Advance(9)
	if fired != 0 {
		t.Fatal("fired before reset deadline")
	}
	c.Advance(1)
	if fired != 1 || tm.Stop() {
		t.Fatalf("fired %d", fired)
	}
	if _, ok := c.NextDeadline(); ok {
		t.Fatal("timer still pending")
	}
}
