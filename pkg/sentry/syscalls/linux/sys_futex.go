package linux

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

// Futex implements futex(2): WAIT, WAKE, their BITSET forms, REQUEUE and
// CMP_REQUEUE. PI futexes and WAKE_OP are not implemented (ENOSYS).
func Futex(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr := args[0].Pointer()
	op := args[1].Int()
	val := args[2].Uint()
	cmd := op & linux.FUTEX_CMD_MASK
	switch cmd {
	case linux.FUTEX_WAIT, linux.FUTEX_WAIT_BITSET:
		bitset := uint32(linux.FUTEX_BITSET_MATCH_ANY)
		if cmd == linux.FUTEX_WAIT_BITSET {
			bitset = args[5].Uint()
		}
		timeout := time.Duration(-1)
		if tsAddr := args[3].Pointer(); tsAddr != 0 {
			ts, err := copyInTimespec(t, tsAddr)
			if err != nil {
				return 0, err
			}
			if !ts.Valid() {
				return 0, unix.EINVAL
			}
			timeout = ts.ToDuration()
			if cmd == linux.FUTEX_WAIT_BITSET {
				// The BITSET form takes an absolute time.
				clock := int32(linux.CLOCK_MONOTONIC)
				if op&linux.FUTEX_CLOCK_REALTIME != 0 {
					clock = linux.CLOCK_REALTIME
				}
				now, err := clockNow(t, clock)
				if err != nil {
					return 0, err
				}
				timeout = max(time.Duration(ts.ToNsec()-now), 0)
			}
		}
		return 0, t.FutexWait(addr, val, bitset, timeout)
	case linux.FUTEX_WAKE, linux.FUTEX_WAKE_BITSET:
		bitset := uint32(linux.FUTEX_BITSET_MATCH_ANY)
		if cmd == linux.FUTEX_WAKE_BITSET {
			bitset = args[5].Uint()
		}
		n, err := t.FutexWake(addr, int(max(val, 0)&0x7fffffff), bitset)
		return uintptr(n), err
	case linux.FUTEX_REQUEUE, linux.FUTEX_CMP_REQUEUE:
		nWake := int(val & 0x7fffffff)
		nRequeue := int(args[3].Uint() & 0x7fffffff)
		n, err := t.FutexRequeue(addr, args[4].Pointer(), nWake, nRequeue, cmd == linux.FUTEX_CMP_REQUEUE, args[5].Uint())
		return uintptr(n), err
	}
	return 0, unix.ENOSYS
}
