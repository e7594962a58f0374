package linux

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/vfs"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

// pollAlways are reported whether asked for or not (poll(2)).
const pollAlways = waiter.EventErr | waiter.EventHUp

// pollState is one poll/select call: the files it watches, with an
// entry on each that wakes the one channel the task waits on.
type pollState struct {
	files   []*vfs.FileDescription
	entries []waiter.Entry
	ch      chan struct{}
}

func newPollState(n int) *pollState {
	return &pollState{files: make([]*vfs.FileDescription, n), entries: make([]waiter.Entry, n), ch: make(chan struct{}, 1)}
}

// watch takes file i (fd) and registers interest in mask; it reports
// false when fd is not open.
func (ps *pollState) watch(t *kernel.Task, i int, fd int32, mask waiter.EventMask) bool {
	f, err := getFile(t, fd)
	if err != nil {
		return false
	}
	ps.files[i] = f
	ps.entries[i].Init(waiter.ChannelListener(ps.ch), mask|pollAlways)
	if f.EventRegister(&ps.entries[i]) != nil {
		// A file that cannot notify is treated as always ready by its
		// Readiness; nothing to wait for.
		ps.entries[i].Listener = nil
	}
	return true
}

func (ps *pollState) release(t *kernel.Task) {
	for i, f := range ps.files {
		if f == nil {
			continue
		}
		if ps.entries[i].Listener != nil {
			f.EventUnregister(&ps.entries[i])
		}
		f.DecRef(t)
	}
}

// wait blocks until a watched file may have changed, the deadline passes
// (ok false), or a signal arrives (error). A zero deadline waits forever.
func (ps *pollState) wait(t *kernel.Task, deadline time.Time) (bool, error) {
	if deadline.IsZero() {
		return true, t.Block(ps.ch)
	}
	left := time.Until(deadline)
	if left <= 0 {
		return false, nil
	}
	_, err := t.BlockTimeout(ps.ch, left)
	if err == unix.ETIMEDOUT {
		return false, nil
	}
	return true, err
}

// doPoll implements poll's loop over pfds (revents filled in).
func doPoll(t *kernel.Task, pfds []linux.Pollfd, deadline time.Time, nowait bool) (int, error) {
	ps := newPollState(len(pfds))
	defer ps.release(t)
	valid := make([]bool, len(pfds))
	for i := range pfds {
		if pfds[i].Fd >= 0 {
			valid[i] = ps.watch(t, i, pfds[i].Fd, waiter.EventMask(uint16(pfds[i].Events)))
		}
	}
	for {
		n := 0
		for i := range pfds {
			p := &pfds[i]
			p.Revents = 0
			switch {
			case p.Fd < 0:
				continue
			case !valid[i]:
				p.Revents = int16(waiter.EventNVal)
			default:
				mask := waiter.EventMask(uint16(p.Events)) | pollAlways
				p.Revents = int16(ps.files[i].Readiness(mask) & mask)
			}
			if p.Revents != 0 {
				n++
			}
		}
		if n > 0 || nowait {
			return n, nil
		}
		ok, err := ps.wait(t, deadline)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, nil
		}
	}
}

func pollfds(t *kernel.Task, addr hostarch.Addr, nfds uint64) ([]linux.Pollfd, []byte, error) {
	if nfds > fdLimit(t) || nfds > 1<<20 {
		return nil, nil, unix.EINVAL
	}
	raw := make([]byte, int(nfds)*linux.SizeOfPollfd)
	if _, err := t.CopyIn(addr, raw); err != nil && nfds > 0 {
		return nil, nil, unix.EFAULT
	}
	pfds := make([]linux.Pollfd, nfds)
	b := raw
	for i := range pfds {
		b = pfds[i].UnmarshalBytes(b)
	}
	return pfds, raw, nil
}

func copyOutPollfds(t *kernel.Task, addr hostarch.Addr, pfds []linux.Pollfd, raw []byte) error {
	b := raw
	for i := range pfds {
		b = pfds[i].MarshalBytes(b)
	}
	if _, err := t.CopyOut(addr, raw); err != nil && len(raw) > 0 {
		return unix.EFAULT
	}
	return nil
}

// Poll implements poll(2).
func Poll(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr, nfds, ms := args[0].Pointer(), args[1].Uint64()&0xffffffff, args[2].Int()
	pfds, raw, err := pollfds(t, addr, nfds)
	if err != nil {
		return 0, err
	}
	var deadline time.Time
	if ms > 0 {
		deadline = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	n, err := doPoll(t, pfds, deadline, ms == 0)
	if err != nil {
		if ms > 0 {
			// A timed poll resumes with the time left, unless a
			// handler runs (EINTR), as in Linux.
			t.SetRestartBlock(func(t *kernel.Task) (uintptr, error) {
				return pollUntil(t, addr, nfds, deadline)
			})
			return 0, linux.ERESTART_RESTARTBLOCK
		}
		return 0, linux.ERESTARTNOHAND
	}
	return uintptr(n), copyOutPollfds(t, addr, pfds, raw)
}

// pollUntil is the restart of a timed poll interrupted before deadline.
func pollUntil(t *kernel.Task, addr hostarch.Addr, nfds uint64, deadline time.Time) (uintptr, error) {
	pfds, raw, err := pollfds(t, addr, nfds)
	if err != nil {
		return 0, err
	}
	expired := !deadline.After(time.Now())
	if expired {
		deadline = time.Time{}
	}
	n, err := doPoll(t, pfds, deadline, expired)
	if err != nil {
		t.SetRestartBlock(func(t *kernel.Task) (uintptr, error) {
			return pollUntil(t, addr, nfds, deadline)
		})
		return 0, linux.ERESTART_RESTARTBLOCK
	}
	return uintptr(n), copyOutPollfds(t, addr, pfds, raw)
}

// copyInSigmask reads ppoll's/pselect6's optional temporary mask.
func copyInSigmask(t *kernel.Task, addr hostarch.Addr, size uint64) (linux.SignalSet, bool, error) {
	if addr == 0 {
		return 0, false, nil
	}
	if size != linux.SizeOfSignalSet {
		return 0, false, unix.EINVAL
	}
	var b [8]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, false, unix.EFAULT
	}
	return linux.SignalSet(le64(b[:])), true, nil
}

// timeoutArg reads an optional timespec: a zero deadline means none;
// nowait reports a zero timeout.
func timeoutArg(t *kernel.Task, addr hostarch.Addr) (deadline time.Time, nowait bool, err error) {
	if addr == 0 {
		return time.Time{}, false, nil
	}
	ts, err := copyInTimespec(t, addr)
	if err != nil {
		return time.Time{}, false, err
	}
	if !ts.Valid() {
		return time.Time{}, false, unix.EINVAL
	}
	d := ts.ToDuration()
	if d == 0 {
		return time.Time{}, true, nil
	}
	return time.Now().Add(d), false, nil
}

// Ppoll implements ppoll(2).
func Ppoll(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr, nfds := args[0].Pointer(), args[1].Uint64()&0xffffffff
	deadline, nowait, err := timeoutArg(t, args[2].Pointer())
	if err != nil {
		return 0, err
	}
	mask, haveMask, err := copyInSigmask(t, args[3].Pointer(), args[4].Uint64())
	if err != nil {
		return 0, err
	}
	pfds, raw, err := pollfds(t, addr, nfds)
	if err != nil {
		return 0, err
	}
	if haveMask {
		t.SetTemporarySignalMask(mask)
	}
	n, err := doPoll(t, pfds, deadline, nowait)
	if err != nil {
		// The temporary mask stays for the handler to return from.
		return 0, linux.ERESTARTNOHAND
	}
	t.RestoreTemporarySignalMask()
	if ts := args[2].Pointer(); ts != 0 && !deadline.IsZero() {
		copyOutTimespec(t, ts, max(int64(time.Until(deadline)), 0))
	}
	return uintptr(n), copyOutPollfds(t, addr, pfds, raw)
}

// fdSet is a select(2) descriptor set read from the application.
type fdSet []byte

func (s fdSet) has(fd int) bool { return s != nil && s[fd/8]&(1<<(fd%8)) != 0 }
func (s fdSet) set(fd int)      { s[fd/8] |= 1 << (fd % 8) }

func copyInFDSet(t *kernel.Task, addr hostarch.Addr, nfds int) (fdSet, error) {
	if addr == 0 {
		return nil, nil
	}
	// Whole longs, as the kernel reads them.
	b := make(fdSet, (nfds+63)/64*8)
	if _, err := t.CopyIn(addr, b); err != nil {
		return nil, unix.EFAULT
	}
	return b, nil
}

const (
	selectIn  = waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr
	selectOut = waiter.WritableEvents | waiter.EventErr
	selectEx  = waiter.EventPri
)

// doSelect implements select's loop; the sets are rewritten in place.
func doSelect(t *kernel.Task, nfds int, addrs [3]hostarch.Addr, deadline time.Time, nowait bool) (int, error) {
	if nfds < 0 || uint64(nfds) > fdLimit(t) {
		return 0, unix.EINVAL
	}
	var in [3]fdSet
	for i, a := range addrs {
		s, err := copyInFDSet(t, a, nfds)
		if err != nil {
			return 0, err
		}
		in[i] = s
	}
	masks := [3]waiter.EventMask{selectIn, selectOut, selectEx}
	var fds []int
	var want []waiter.EventMask
	for fd := 0; fd < nfds; fd++ {
		var m waiter.EventMask
		for i := range in {
			if in[i].has(fd) {
				m |= masks[i]
			}
		}
		if m != 0 {
			fds = append(fds, fd)
			want = append(want, m)
		}
	}
	ps := newPollState(len(fds))
	defer ps.release(t)
	for i, fd := range fds {
		if !ps.watch(t, i, int32(fd), want[i]) {
			return 0, unix.EBADF
		}
	}
	var out [3]fdSet
	for i := range in {
		if in[i] != nil {
			out[i] = make(fdSet, len(in[i]))
		}
	}
	for {
		n := 0
		for i, fd := range fds {
			ready := ps.files[i].Readiness(want[i])
			for j := range in {
				if in[j].has(fd) && ready&masks[j] != 0 {
					out[j].set(fd)
					n++
				}
			}
		}
		if n > 0 || nowait {
			for i, a := range addrs {
				if a != 0 {
					if _, err := t.CopyOut(a, out[i]); err != nil {
						return 0, unix.EFAULT
					}
				}
			}
			return n, nil
		}
		ok, err := ps.wait(t, deadline)
		if err != nil {
			return 0, err
		}
		if !ok {
			nowait = true
		}
	}
}

// Select implements select(2).
func Select(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	var deadline time.Time
	nowait := false
	tvAddr := args[4].Pointer()
	if tvAddr != 0 {
		var b [16]byte
		if _, err := t.CopyIn(tvAddr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		sec, usec := int64(le64(b[:])), int64(le64(b[8:]))
		if sec < 0 || usec < 0 || usec >= 1e6 {
			return 0, unix.EINVAL
		}
		d := time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond
		if d == 0 {
			nowait = true
		} else {
			deadline = time.Now().Add(d)
		}
	}
	n, err := doSelect(t, int(args[0].Int()), [3]hostarch.Addr{args[1].Pointer(), args[2].Pointer(), args[3].Pointer()}, deadline, nowait)
	if tvAddr != 0 {
		// Linux leaves the time not slept in the timeval (select(2),
		// NOTES); a read-only timeval is not an error.
		rem := remaining(deadline)
		var b [16]byte
		put64(b[:], uint64(rem/time.Second))
		put64(b[8:], uint64(rem%time.Second/time.Microsecond))
		_, _ = t.CopyOut(tvAddr, b[:])
	}
	if err == linux.ERESTARTSYS {
		return 0, linux.ERESTARTNOHAND
	}
	return uintptr(n), err
}

// remaining is the time left until deadline (zero: none or passed).
func remaining(deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return 0
	}
	return max(time.Until(deadline), 0)
}

// Pselect6 implements pselect6(2); its sixth argument points to
// {const sigset_t *ss; size_t ss_len}.
func Pselect6(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	deadline, nowait, err := timeoutArg(t, args[4].Pointer())
	if err != nil {
		return 0, err
	}
	var mask linux.SignalSet
	haveMask := false
	if a := args[5].Pointer(); a != 0 {
		var b [16]byte
		if _, err := t.CopyIn(a, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		if mask, haveMask, err = copyInSigmask(t, hostarch.Addr(le64(b[:])), le64(b[8:])); err != nil {
			return 0, err
		}
	}
	if haveMask {
		t.SetTemporarySignalMask(mask)
	}
	n, err := doSelect(t, int(args[0].Int()), [3]hostarch.Addr{args[1].Pointer(), args[2].Pointer(), args[3].Pointer()}, deadline, nowait)
	if a := args[4].Pointer(); a != 0 {
		// The raw syscall updates the timespec too (glibc hides it).
		rem := remaining(deadline)
		var b [16]byte
		put64(b[:], uint64(rem/time.Second))
		put64(b[8:], uint64(rem%time.Second))
		_, _ = t.CopyOut(a, b[:])
	}
	if err == linux.ERESTARTSYS {
		// The temporary mask stays for the handler to return from.
		return 0, linux.ERESTARTNOHAND
	}
	t.RestoreTemporarySignalMask()
	return uintptr(n), err
}
