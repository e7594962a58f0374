package devpts_test

import (
	"errors"
	"testing"
	"unsafe"

	"carapace.dev/carapace/pkg/sentry/vfs/vfstest"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// FuzzLineDiscipline feeds arbitrary terminal settings and master input
// (both come from the sandboxed program) through the line discipline:
// nothing may panic, buffers stay bounded, and readiness agrees with what
// a read returns.
func FuzzLineDiscipline(f *testing.F) {
	f.Add(uint32(unix.ICRNL), uint32(unix.OPOST|unix.ONLCR), uint32(unix.ISIG|unix.ICANON|unix.ECHO|unix.ECHOE|unix.ECHOCTL|unix.ECHOKE|unix.IEXTEN), []byte("ab\x7fc\x15d\x17e\n\x03\x04"))
	f.Add(uint32(unix.ISTRIP|unix.INLCR), uint32(0), uint32(0), []byte("\xff\x00\n\r raw bytes"))
	f.Add(uint32(unix.IGNCR), uint32(unix.OPOST|unix.OCRNL), uint32(unix.ICANON|unix.ECHOK|unix.ECHONL), make([]byte, 9000))
	f.Fuzz(func(t *testing.T, iflag, oflag, lflag uint32, input []byte) {
		e := newEnv(t)
		m, r := e.pair()
		var tm unix.Termios
		tb := unsafe.Slice((*byte)(unsafe.Pointer(&tm)), 36)
		if err := e.ioctl(r, unix.TCGETS, tb); err != nil {
			t.Fatal(err)
		}
		tm.Iflag, tm.Oflag, tm.Lflag = iflag, oflag, lflag
		if err := e.ioctl(r, unix.TCSETS, tb); err != nil {
			t.Fatal(err)
		}
		for round := 0; len(input) > 0 && round < 100; round++ {
			n, err := vfstest.Write(e.ctx, m, input)
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("master write: %v", err)
			}
			input = input[n:]
			for _, fd := range []struct {
				name     string
				readable bool
				read     func() ([]byte, error)
			}{
				{"replica", r.Readiness(waiter.EventIn) != 0, func() ([]byte, error) { return vfstest.Read(e.ctx, r, 1<<14) }},
				{"master", m.Readiness(waiter.EventIn) != 0, func() ([]byte, error) { return vfstest.Read(e.ctx, m, 1<<14) }},
			} {
				b, err := fd.read()
				if fd.readable && errors.Is(err, unix.EAGAIN) {
					t.Fatalf("%s readable but read says EAGAIN", fd.name)
				}
				if len(b) > 1<<14 {
					t.Fatalf("%s read %d bytes", fd.name, len(b))
				}
			}
		}
	})
}
