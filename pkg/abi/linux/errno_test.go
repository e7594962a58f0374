package linux

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestErrnoNames(t *testing.T) {
	for e := unix.Errno(1); e <= MaxErrno; e++ {
		if e == 41 || e == 58 {
			continue // numbers Linux never assigned
		}
		if ErrnoName(e) == "" {
			t.Errorf("errno %d has no name", int(e))
		}
	}
	for e, want := range map[unix.Errno]string{
		EINVAL: "EINVAL", EWOULDBLOCK: "EAGAIN", EDEADLOCK: "EDEADLK",
		ENOTSUP: "EOPNOTSUPP", EHWPOISON: "EHWPOISON", ERESTARTSYS: "ERESTARTSYS",
		ERESTARTNOINTR: "ERESTARTNOINTR", ERESTARTNOHAND: "ERESTARTNOHAND",
		ERESTART_RESTARTBLOCK: "ERESTART_RESTARTBLOCK", 0: "", 41: "", 58: "", 134: "", 515: "", 4095: "",
	} {
		if got := ErrnoName(e); got != want {
			t.Errorf("ErrnoName(%d) = %q, want %q", int(e), got, want)
		}
	}
}

func TestRestartErrnos(t *testing.T) {
	for e, want := range map[unix.Errno]int{ERESTARTSYS: 512, ERESTARTNOINTR: 513, ERESTARTNOHAND: 514, ERESTART_RESTARTBLOCK: 516} {
		if int(e) != want {
			t.Errorf("%s = %d, want %d", ErrnoName(e), int(e), want)
		}
		if !IsRestartErrno(e) {
			t.Errorf("IsRestartErrno(%s) = false", ErrnoName(e))
		}
	}
	for _, e := range []unix.Errno{0, EINTR, EAGAIN, unix.ERESTART, 515, 517} {
		if IsRestartErrno(e) {
			t.Errorf("IsRestartErrno(%d) = true", int(e))
		}
	}
}

func BenchmarkErrnoName(b *testing.B) {
	for i := 0; i < b.N; i++ {
		_ = ErrnoName(unix.Errno(i & 0x3ff))
	}
}
