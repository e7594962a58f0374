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
	lim := t.tg.fsizeCur.Load()
	if lim == linux.RLIM_INFINITY || n <= 0 || lim > 1<<62 {
		return n, nil
	}
	if off < 0 || uint64(off) >= lim {
		t.SendSignal(&linux.SignalInfo{Signo: int32(unix.SIGXFSZ), Code: linux.SI_KERNEL})
		return 0, unix.EFBIG
	}
	return min(n, int64(lim)-off), nil
}

// LimitSize applies RLIMIT_FSIZE to growing a regular file to size bytes
// (truncate(2), fallocate(2)): past the limit the task gets SIGXFSZ and
// the call fails with EFBIG; nothing is done in part.
func (t *Task) LimitSize(size int64) error {
	lim := t.tg.fsizeCur.Load()
	if lim == linux.RLIM_INFINITY || size <= 0 || lim > 1<<62 || size <= int64(lim) {
		return nil
	}
	t.SendSignal(&linux.SignalInfo{Signo: int32(unix.SIGXFSZ), Code: linux.SI_KERNEL})
	return unix.EFBIG
}

// FileSizeLimited reports whether RLIMIT_FSIZE is set (not infinite): the
// write path's lock-free check before it works out a write's offset.
func (t *Task) FileSizeLimited() bool {
	return t.tg.fsizeCur.Load() != linux.RLIM_INFINITY
}
