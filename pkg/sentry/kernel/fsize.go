package kernel

import (
	"carapace.dev/carapace/pkg/abi/linux"
	"golang.org/x/sys/unix"
)

// LimitWrite applies RLIMIT_FSIZE to a write of n bytes at offset off of
// a regular file (write(2), pwrite, truncate growing a file, copy and
// splice into files): it returns how many bytes may be written. Nothing
// may be written at or past the limit: then the task gets SIGXFSZ and the
// write fails with EFBIG, as Linux does.
func (t *Task) LimitWrite(off, n int64) (int64, error) {
	lim := t.tg.Limit(linux.RLIMIT_FSIZE).Cur
	if lim == linux.RLIM_INFINITY || n <= 0 || lim > 1<<62 {
		return n, nil
	}
	if off < 0 || uint64(off) >= lim {
		t.SendSignal(&linux.SignalInfo{Signo: int32(unix.SIGXFSZ), Code: linux.SI_KERNEL})
		return 0, unix.EFBIG
	}
	return min(n, int64(lim)-off), nil
}
