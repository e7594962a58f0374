package linux

import (
	"encoding/binary"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/sentry/kernel/auth"
	"golang.org/x/sys/unix"
)

// schedTarget resolves the pid argument of the sched_* calls: 0 is the
// caller, a negative pid EINVAL, an unknown one ESRCH.
func schedTarget(t *kernel.Task, pid int32) (*kernel.Task, error) {
	switch {
	case pid < 0:
		return nil, unix.EINVAL
	case pid == 0:
		return t, nil
	}
	o := t.LookupTask(kernel.ThreadID(pid))
	if o == nil {
		return nil, unix.ESRCH
	}
	return o, nil
}

// priorityRange is sched_get_priority_min/max's answer for policy.
func priorityRange(policy int32) (lo, hi int32, err error) {
	switch policy {
	case linux.SCHED_FIFO, linux.SCHED_RR:
		return 1, 99, nil
	case linux.SCHED_NORMAL, linux.SCHED_BATCH, linux.SCHED_IDLE:
		return 0, 0, nil
	}
	return 0, 0, unix.EINVAL
}

// SchedGetPriorityMax implements sched_get_priority_max(2).
func SchedGetPriorityMax(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	_, hi, err := priorityRange(args[0].Int())
	return uintptr(hi), err
}

// SchedGetPriorityMin implements sched_get_priority_min(2).
func SchedGetPriorityMin(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	lo, _, err := priorityRange(args[0].Int())
	return uintptr(lo), err
}

// SchedGetscheduler implements sched_getscheduler(2).
func SchedGetscheduler(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	p, _ := o.Scheduler()
	return uintptr(p), nil
}

func copyInSchedParam(t *kernel.Task, a arch.SyscallArgument) (int32, error) {
	if a.Pointer() == 0 {
		return 0, unix.EINVAL
	}
	var b [4]byte
	if _, err := t.CopyIn(a.Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return int32(binary.LittleEndian.Uint32(b[:])), nil
}

// setScheduler checks and applies a policy: real-time policies need
// CAP_SYS_NICE (RLIMIT_RTPRIO is 0 in the sandbox), and so does changing
// another user's task.
func setScheduler(t, o *kernel.Task, policy, prio int32) error {
	lo, hi, err := priorityRange(policy)
	if err != nil {
		return err
	}
	if prio < lo || prio > hi {
		return unix.EINVAL
	}
	c := t.Credentials()
	if !c.HasCapability(auth.CAP_SYS_NICE) {
		if oc := o.Credentials(); c.EffectiveUID != oc.RealUID && c.EffectiveUID != oc.EffectiveUID {
			return unix.EPERM
		}
		if hi > 0 {
			return unix.EPERM
		}
	}
	o.SetScheduler(policy, prio)
	return nil
}

// SchedSetscheduler implements sched_setscheduler(2).
func SchedSetscheduler(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	policy := args[1].Int()
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	prio, err := copyInSchedParam(t, args[2])
	if err != nil {
		return 0, err
	}
	return 0, setScheduler(t, o, policy&^linux.SCHED_RESET_ON_FORK, prio)
}

// SchedSetparam implements sched_setparam(2).
func SchedSetparam(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	prio, err := copyInSchedParam(t, args[1])
	if err != nil {
		return 0, err
	}
	policy, _ := o.Scheduler()
	return 0, setScheduler(t, o, policy, prio)
}

// SchedGetparam implements sched_getparam(2).
func SchedGetparam(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if args[1].Pointer() == 0 {
		return 0, unix.EINVAL
	}
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	_, prio := o.Scheduler()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(prio))
	if _, err := t.CopyOut(args[1].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// SchedRrGetInterval implements sched_rr_get_interval(2): Linux's default
// round-robin quantum, 100ms, for SCHED_RR, and 0 ("no fixed slice") for
// the others.
func SchedRrGetInterval(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	var ns int64
	if p, _ := o.Scheduler(); p == linux.SCHED_RR {
		ns = 100_000_000
	}
	return 0, copyOutTimespec(t, args[1].Pointer(), ns)
}

// SchedSetaffinity implements sched_setaffinity(2). Only the first 64
// CPUs exist for the Sentry; a mask naming none of them is EINVAL.
func SchedSetaffinity(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	o, err := schedTarget(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	size := args[1].Uint64()
	n := min(size, 8)
	var b [8]byte
	if _, err := t.CopyIn(args[2].Pointer(), b[:n]); err != nil {
		return 0, unix.EFAULT
	}
	mask := binary.LittleEndian.Uint64(b[:]) & kernel.AllCPUs()
	if mask == 0 {
		return 0, unix.EINVAL
	}
	c := t.Credentials()
	if oc := o.Credentials(); !c.HasCapability(auth.CAP_SYS_NICE) && c.EffectiveUID != oc.RealUID && c.EffectiveUID != oc.EffectiveUID {
		return 0, unix.EPERM
	}
	o.SetCPUMask(mask)
	return 0, nil
}

// priorityTargets returns the tasks getpriority/setpriority address.
func priorityTargets(t *kernel.Task, which, who int32) ([]*kernel.Task, error) {
	if who < 0 {
		return nil, unix.ESRCH
	}
	switch which {
	case linux.PRIO_PROCESS:
		if who == 0 {
			return []*kernel.Task{t}, nil
		}
		if o := t.LookupTask(kernel.ThreadID(who)); o != nil {
			return []*kernel.Task{o}, nil
		}
		return nil, unix.ESRCH
	case linux.PRIO_PGRP, linux.PRIO_USER:
		pgid, ok := t.RootIDOf(kernel.ThreadID(who))
		if which == linux.PRIO_PGRP && who == 0 {
			pgid, ok = t.ThreadGroup().ProcessGroupID(), true
		}
		if which == linux.PRIO_PGRP && !ok {
			return nil, unix.ESRCH
		}
		uid := auth.UID(who)
		if which == linux.PRIO_USER && who == 0 {
			uid = t.Credentials().RealUID
		}
		var out []*kernel.Task
		for _, tg := range t.PIDNamespace().ThreadGroups() {
			if which == linux.PRIO_PGRP && tg.ProcessGroupID() != pgid {
				continue
			}
			for _, o := range tg.Tasks() {
				if which == linux.PRIO_USER && o.Credentials().RealUID != uid {
					continue
				}
				out = append(out, o)
			}
		}
		if len(out) == 0 {
			return nil, unix.ESRCH
		}
		return out, nil
	}
	return nil, unix.EINVAL
}

// Getpriority implements getpriority(2): the raw syscall returns 20-nice
// of the highest-priority target (the C library turns it back into nice).
func Getpriority(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	targets, err := priorityTargets(t, args[0].Int(), args[1].Int())
	if err != nil {
		return 0, err
	}
	best := int32(20)
	for _, o := range targets {
		best = min(best, o.Nice())
	}
	return uintptr(20 - best), nil
}

// Setpriority implements setpriority(2). Raising priority (lowering nice)
// needs CAP_SYS_NICE (EACCES otherwise, RLIMIT_NICE being 0); changing
// another user's task needs it too (EPERM).
func Setpriority(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	targets, err := priorityTargets(t, args[0].Int(), args[1].Int())
	if err != nil {
		return 0, err
	}
	nice := min(max(args[2].Int(), -20), 19)
	c := t.Credentials()
	priv := c.HasCapability(auth.CAP_SYS_NICE)
	var firstErr error
	for _, o := range targets {
		oc := o.Credentials()
		switch {
		case !priv && c.EffectiveUID != oc.RealUID && c.EffectiveUID != oc.EffectiveUID:
			firstErr = unix.EPERM
		case !priv && nice < o.Nice():
			firstErr = unix.EACCES
		default:
			o.SetNice(nice)
		}
	}
	return 0, firstErr
}
