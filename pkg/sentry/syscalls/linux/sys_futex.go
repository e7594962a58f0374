package linux

import (
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

// Futex implements futex(2): WAIT, WAKE, their BITSET forms, REQUEUE,
// CMP_REQUEUE, WAKE_OP, the PI locks (LOCK_PI, LOCK_PI2, TRYLOCK_PI,
// UNLOCK_PI) and the condition-variable pair WAIT_REQUEUE_PI and
// CMP_REQUEUE_PI, private or shared.
func Futex(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr := args[0].Pointer()
	op := args[1].Int()
	val := args[2].Uint()
	cmd := op & linux.FUTEX_CMD_MASK
	private := op&linux.FUTEX_PRIVATE_FLAG != 0
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
		return futexWaitFor(t, addr, private, val, bitset, timeout)
	case linux.FUTEX_WAKE, linux.FUTEX_WAKE_BITSET:
		bitset := uint32(linux.FUTEX_BITSET_MATCH_ANY)
		if cmd == linux.FUTEX_WAKE_BITSET {
			bitset = args[5].Uint()
		}
		n, err := t.FutexWake(addr, private, int(val&0x7fffffff), bitset)
		return uintptr(n), err
	case linux.FUTEX_REQUEUE, linux.FUTEX_CMP_REQUEUE:
		// Both counts are ints to Linux: negative ones are EINVAL.
		nWake, nRequeue := int32(val), args[3].Int()
		if nWake < 0 || nRequeue < 0 {
			return 0, unix.EINVAL
		}
		n, err := t.FutexRequeue(addr, args[4].Pointer(), private, int(nWake), int(nRequeue), cmd == linux.FUTEX_CMP_REQUEUE, args[5].Uint())
		return uintptr(n), err
	case linux.FUTEX_LOCK_PI, linux.FUTEX_LOCK_PI2, linux.FUTEX_TRYLOCK_PI:
		var deadline time.Time
		if tsAddr := args[3].Pointer(); tsAddr != 0 && cmd != linux.FUTEX_TRYLOCK_PI {
			ts, err := copyInTimespec(t, tsAddr)
			if err != nil {
				return 0, err
			}
			if !ts.Valid() {
				return 0, unix.EINVAL
			}
			// An absolute time: CLOCK_REALTIME for LOCK_PI, the monotonic
			// clock for LOCK_PI2 unless FUTEX_CLOCK_REALTIME.
			clock := int32(linux.CLOCK_REALTIME)
			if cmd == linux.FUTEX_LOCK_PI2 && op&linux.FUTEX_CLOCK_REALTIME == 0 {
				clock = linux.CLOCK_MONOTONIC
			}
			now, err := clockNow(t, clock)
			if err != nil {
				return 0, err
			}
			deadline = time.Now().Add(time.Duration(ts.ToNsec() - now))
			if !deadline.After(time.Now()) {
				deadline = time.Now().Add(1) // already passed: one try
			}
		}
		return 0, t.FutexLockPI(addr, private, cmd == linux.FUTEX_TRYLOCK_PI, deadline)
	case linux.FUTEX_UNLOCK_PI:
		return 0, t.FutexUnlockPI(addr, private)
	case linux.FUTEX_WAIT_REQUEUE_PI:
		var deadline time.Time
		if tsAddr := args[3].Pointer(); tsAddr != 0 {
			d, err := futexDeadline(t, tsAddr, op)
			if err != nil {
				return 0, err
			}
			deadline = d
		}
		return 0, t.FutexWaitRequeuePI(addr, args[4].Pointer(), private, val, deadline)
	case linux.FUTEX_CMP_REQUEUE_PI:
		// Exactly one waiter may be woken: the one given the lock.
		nWake, nRequeue := int32(val), args[3].Int()
		if nWake != 1 || nRequeue < 0 {
			return 0, unix.EINVAL
		}
		n, err := t.FutexCmpRequeuePI(addr, args[4].Pointer(), private, int(nRequeue), args[5].Uint())
		return uintptr(n), err
	case linux.FUTEX_WAKE_OP:
		// The fourth argument is the second count, not a timeout.
		nWake, nWake2 := int32(val), args[3].Int()
		if nWake < 0 || nWake2 < 0 {
			return 0, unix.EINVAL
		}
		n, err := t.FutexWakeOp(addr, args[4].Pointer(), private, int(nWake), int(nWake2), args[5].Uint())
		return uintptr(n), err
	}
	return 0, unix.ENOSYS
}

// futexDeadline reads an absolute futex timeout (CLOCK_MONOTONIC, or
// CLOCK_REALTIME with FUTEX_CLOCK_REALTIME in op) as a wall-clock
// deadline; one already passed still allows a single try.
func futexDeadline(t *kernel.Task, tsAddr hostarch.Addr, op int32) (time.Time, error) {
	ts, err := copyInTimespec(t, tsAddr)
	if err != nil {
		return time.Time{}, err
	}
	if !ts.Valid() {
		return time.Time{}, unix.EINVAL
	}
	clock := int32(linux.CLOCK_MONOTONIC)
	if op&linux.FUTEX_CLOCK_REALTIME != 0 {
		clock = linux.CLOCK_REALTIME
	}
	now, err := clockNow(t, clock)
	if err != nil {
		return time.Time{}, err
	}
	deadline := time.Now().Add(time.Duration(ts.ToNsec() - now))
	if !deadline.After(time.Now()) {
		deadline = time.Now().Add(1)
	}
	return deadline, nil
}

// futexWaitFor is FUTEX_WAIT with a relative timeout (< 0: none). A timed
// wait cut short by a signal resumes, if no handler runs, until the same
// deadline (Linux's restart block); an untimed one simply restarts.
func futexWaitFor(t *kernel.Task, addr hostarch.Addr, private bool, val, bitset uint32, timeout time.Duration) (uintptr, error) {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	err := t.FutexWait(addr, private, val, bitset, timeout)
	if err == linux.ERESTARTSYS && timeout >= 0 {
		t.SetRestartBlock(func(t *kernel.Task) (uintptr, error) {
			return futexWaitFor(t, addr, private, val, bitset, max(time.Until(deadline), 0))
		})
		return 0, linux.ERESTART_RESTARTBLOCK
	}
	return 0, err
}
