package unet

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openFDCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

func pair(t *testing.T, packet bool) (*Socket, *Socket) {
	t.Helper()
	a, b, err := SocketPair(packet)
	if err != nil {
		t.Fatalf("SocketPair: %v", err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func tempFile(t *testing.T, content string) int {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "unet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestSendRecvWithFD(t *testing.T) {
	for _, packet := range []bool{false, true} {
		a, b := pair(t, packet)
		fd := tempFile(t, "hello fd")
		if _, err := a.Send([][]byte{[]byte("abc"), []byte("def")}, []int{fd}); err != nil {
			t.Fatalf("packet=%v Send: %v", packet, err)
		}
		buf := make([]byte, 6)
		n, fds, err := b.Recv([][]byte{buf}, 1)
		if err != nil || n != 6 || string(buf) != "abcdef" || len(fds) != 1 {
			t.Fatalf("packet=%v Recv = %d %q %v %v", packet, n, buf[:n], fds, err)
		}
		got := make([]byte, 8)
		if _, err := unix.Pread(fds[0], got, 0); err != nil || string(got) != "hello fd" {
			t.Fatalf("received fd reads %q, %v", got, err)
		}
		if flags, _ := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("received fd not close-on-exec")
		}
		unix.Close(fds[0])
	}
}

func TestExcessFDsClosed(t *testing.T) {
	a, b := pair(t, true)
	fd := tempFile(t, "x")
	before := openFDCount(t)
	if _, err := a.Send([][]byte{[]byte("m")}, []int{fd, fd, fd, fd}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_, fds, err := b.Recv([][]byte{buf}, 1)
	if err != nil || len(fds) != 1 {
		t.Fatalf("Recv: fds=%v err=%v", fds, err)
	}
	unix.Close(fds[0])
	if after := openFDCount(t); after != before {
		t.Fatalf("fd count %d -> %d: excess fds leaked", before, after)
	}
	// Zero wanted: all closed.
	if _, err := a.Send([][]byte{[]byte("m")}, []int{fd, fd}); err != nil {
		t.Fatal(err)
	}
	if _, fds, err := b.Recv([][]byte{buf}, 0); err != nil || fds != nil {
		t.Fatalf("Recv: fds=%v err=%v", fds, err)
	}
	if after := openFDCount(t); after != before {
		t.Fatalf("fd count %d -> %d with maxFDs=0", before, after)
	}
}

func TestTruncatedPacketClosesFDs(t *testing.T) {
	a, b := pair(t, true)
	fd := tempFile(t, "x")
	before := openFDCount(t)
	if _, err := a.Send([][]byte{[]byte("too long for buffer")}, []int{fd}); err != nil {
		t.Fatal(err)
	}
	_, fds, err := b.Recv([][]byte{make([]byte, 4)}, 1)
	if !errors.Is(err, unix.EMSGSIZE) || fds != nil {
		t.Fatalf("Recv truncated: fds=%v err=%v, want EMSGSIZE", fds, err)
	}
	if after := openFDCount(t); after != before {
		t.Fatalf("fd count %d -> %d after truncated message", before, after)
	}
}

func TestTooManyFDsToSend(t *testing.T) {
	a, _ := pair(t, true)
	fds := make([]int, MaxFDs+1)
	if _, err := a.Send([][]byte{[]byte("m")}, fds); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Send %d fds: %v, want EINVAL", len(fds), err)
	}
}

func TestStreamReadFull(t *testing.T) {
	a, b := pair(t, false)
	fd := tempFile(t, "x")
	big := bytes.Repeat([]byte("0123456789"), 100000) // larger than the socket buffer
	done := make(chan error, 1)
	go func() {
		_, err := a.Send([][]byte{big}, []int{fd})
		done <- err
	}()
	got := make([]byte, len(big))
	fds, err := b.ReadFull(got, 1)
	if err != nil || len(fds) != 1 || !bytes.Equal(got, big) {
		t.Fatalf("ReadFull: fds=%v err=%v equal=%v", fds, err, bytes.Equal(got, big))
	}
	unix.Close(fds[0])
	if err := <-done; err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestShutdownWakesBlockedRecv(t *testing.T) {
	for _, packet := range []bool{false, true} {
		a, _ := pair(t, packet)
		errc := make(chan error, 1)
		go func() {
			_, _, err := a.Recv([][]byte{make([]byte, 8)}, 0)
			errc <- err
		}()
		time.Sleep(10 * time.Millisecond)
		if err := a.Shutdown(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked Recv returned %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Recv not woken by Shutdown")
		}
	}
}

func TestCloseWakesBlockedRecvAndPeerSeesEOF(t *testing.T) {
	a, b := pair(t, false)
	errc := make(chan error, 1)
	go func() {
		_, _, err := a.Recv([][]byte{make([]byte, 8)}, 0)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	a.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if _, _, err := b.Recv([][]byte{make([]byte, 8)}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("peer Recv: %v, want ErrClosed", err)
	}
	if _, err := b.Send([][]byte{[]byte("x")}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send to closed peer: %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewSocketRejectsNonSocket(t *testing.T) {
	fd := tempFile(t, "x")
	dup, _ := unix.Dup(fd)
	if _, err := NewSocket(dup); err == nil {
		t.Fatal("NewSocket accepted a regular file")
	}
	if _, err := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); err == nil {
		t.Fatal("NewSocket did not close the rejected fd")
	}
}

func TestRelease(t *testing.T) {
	a, b := pair(t, true)
	fd, err := a.Release()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if n, _, err := b.Recv([][]byte{buf}, 0); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("Recv after Release: %q %v", buf[:n], err)
	}
}
