package linux

import (
	"crypto/rand"
	"encoding/binary"
	"runtime"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/arch"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"golang.org/x/sys/unix"
)

func le64(b []byte) uint64     { return binary.LittleEndian.Uint64(b) }
func put64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

// The uname(2) identity of the sandbox.
const (
	unameSysname = "Linux"
	unameRelease = "4.4.0"
	unameVersion = "#1 SMP Sun Jan 10 15:06:54 PST 2016"
	unameMachine = "x86_64"
)

// Uname implements uname(2).
func Uname(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	var u linux.Utsname
	hostname, domainname := t.UTSNames()
	linux.SetUtsField(&u.Sysname, unameSysname)
	linux.SetUtsField(&u.Nodename, hostname)
	linux.SetUtsField(&u.Release, unameRelease)
	linux.SetUtsField(&u.Version, unameVersion)
	linux.SetUtsField(&u.Machine, unameMachine)
	linux.SetUtsField(&u.Domainname, domainname)
	var b [linux.SizeOfUtsname]byte
	u.MarshalBytes(b[:])
	if _, err := t.CopyOut(args[0].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// getrandom(2) flags.
const (
	grndNonblock = 1
	grndRandom   = 2
	grndInsecure = 4
	// maxGetrandom is the most one call returns (Linux: 32 MiB - 1).
	maxGetrandom = 1<<25 - 1
)

// Getrandom implements getrandom(2) from the Sentry's own CSPRNG, which
// never blocks once the host has booted.
func Getrandom(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	flags := args[2].Uint()
	if flags&^(grndNonblock|grndRandom|grndInsecure) != 0 || flags&(grndRandom|grndInsecure) == grndRandom|grndInsecure {
		return 0, unix.EINVAL
	}
	n := min(args[1].SizeT(), maxGetrandom)
	addr := args[0].Pointer()
	var buf [256]byte
	done := uint(0)
	for done < n {
		chunk := buf[:min(n-done, uint(len(buf)))]
		rand.Read(chunk)
		c, err := t.CopyOut(addr+hostarch.Addr(done), chunk)
		done += uint(c)
		if err != nil {
			if done > 0 {
				break
			}
			return 0, unix.EFAULT
		}
	}
	return uintptr(done), nil
}

// clockNow reads clock id as the task sees it.
func clockNow(t *kernel.Task, id int32) (int64, error) {
	k := t.Kernel()
	switch id {
	case linux.CLOCK_REALTIME, linux.CLOCK_REALTIME_COARSE, linux.CLOCK_REALTIME_ALARM:
		return k.RealtimeNow().UnixNano(), nil
	case linux.CLOCK_MONOTONIC, linux.CLOCK_MONOTONIC_COARSE, linux.CLOCK_MONOTONIC_RAW,
		linux.CLOCK_BOOTTIME, linux.CLOCK_BOOTTIME_ALARM:
		return int64(k.MonotonicNow()), nil
	case linux.CLOCK_PROCESS_CPUTIME_ID:
		return int64(t.ThreadGroup().CPUUsage().Total()), nil
	case linux.CLOCK_THREAD_CPUTIME_ID:
		return int64(t.CPUUsage().Total()), nil
	}
	return 0, unix.EINVAL
}

func copyOutTimespec(t *kernel.Task, addr hostarch.Addr, ns int64) error {
	ts := linux.NsecToTimespec(ns)
	var b [linux.SizeOfTimespec]byte
	ts.MarshalBytes(b[:])
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

func copyInTimespec(t *kernel.Task, addr hostarch.Addr) (linux.Timespec, error) {
	var b [linux.SizeOfTimespec]byte
	var ts linux.Timespec
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return ts, unix.EFAULT
	}
	ts.UnmarshalBytes(b[:])
	return ts, nil
}

// ClockGettime implements clock_gettime(2).
func ClockGettime(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	ns, err := clockNow(t, args[0].Int())
	if err != nil {
		return 0, err
	}
	return 0, copyOutTimespec(t, args[1].Pointer(), ns)
}

// ClockGetres implements clock_getres(2): 1ns for the fine clocks, a
// tick for the coarse ones.
func ClockGetres(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	id := args[0].Int()
	if _, err := clockNow(t, id); err != nil {
		return 0, err
	}
	res := int64(1)
	if id == linux.CLOCK_REALTIME_COARSE || id == linux.CLOCK_MONOTONIC_COARSE {
		res = int64(time.Second / 100)
	}
	if addr := args[1].Pointer(); addr != 0 {
		return 0, copyOutTimespec(t, addr, res)
	}
	return 0, nil
}

// Gettimeofday implements gettimeofday(2) (the timezone is UTC).
func Gettimeofday(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	if addr := args[0].Pointer(); addr != 0 {
		tv := linux.NsecToTimeval(t.Kernel().RealtimeNow().UnixNano())
		var b [linux.SizeOfTimeval]byte
		tv.MarshalBytes(b[:])
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	if addr := args[1].Pointer(); addr != 0 {
		var b [8]byte
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return 0, nil
}

// Time implements time(2).
func Time(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	now := t.Kernel().RealtimeNow().Unix()
	if addr := args[0].Pointer(); addr != 0 {
		var b [8]byte
		put64(b[:], uint64(now))
		if _, err := t.CopyOut(addr, b[:]); err != nil {
			return 0, unix.EFAULT
		}
	}
	return uintptr(now), nil
}

// sleepUntil blocks until the clock reads deadline (ns); on a signal it
// arranges for restart_syscall to continue the sleep and, if rem is set,
// reports the time left.
func sleepFor(t *kernel.Task, d time.Duration, rem hostarch.Addr) (uintptr, error) {
	deadline := time.Now().Add(d)
	left, err := t.BlockTimeout(nil, d)
	if err == unix.ETIMEDOUT {
		return 0, nil
	}
	if err != nil {
		if rem != 0 {
			if cerr := copyOutTimespec(t, rem, int64(left)); cerr != nil {
				return 0, cerr
			}
		}
		t.SetRestartBlock(func(t *kernel.Task) (uintptr, error) {
			return sleepFor(t, time.Until(deadline), rem)
		})
		return 0, linux.ERESTART_RESTARTBLOCK
	}
	return 0, nil
}

// Nanosleep implements nanosleep(2).
func Nanosleep(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	ts, err := copyInTimespec(t, args[0].Pointer())
	if err != nil {
		return 0, err
	}
	if !ts.Valid() {
		return 0, unix.EINVAL
	}
	return sleepFor(t, ts.ToDuration(), args[1].Pointer())
}

// ClockNanosleep implements clock_nanosleep(2).
func ClockNanosleep(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	id := args[0].Int()
	flags := args[1].Int()
	if id == linux.CLOCK_THREAD_CPUTIME_ID {
		return 0, unix.EINVAL
	}
	now, err := clockNow(t, id)
	if err != nil {
		return 0, err
	}
	ts, err := copyInTimespec(t, args[2].Pointer())
	if err != nil {
		return 0, err
	}
	if !ts.Valid() {
		return 0, unix.EINVAL
	}
	d := ts.ToDuration()
	rem := args[3].Pointer()
	if flags&linux.TIMER_ABSTIME != 0 {
		d = time.Duration(ts.ToNsec() - now)
		rem = 0 // absolute sleeps report nothing
	}
	if d <= 0 {
		return 0, nil
	}
	return sleepFor(t, d, rem)
}

// RestartSyscall implements restart_syscall(2).
func RestartSyscall(t *kernel.Task, _ arch.SyscallArguments) (uintptr, error) {
	fn := t.RestartBlock()
	if fn == nil {
		return 0, unix.EINTR
	}
	return fn(t)
}

// SchedYield implements sched_yield(2).
func SchedYield(*kernel.Task, arch.SyscallArguments) (uintptr, error) {
	runtime.Gosched()
	return 0, nil
}

// Sysinfo implements sysinfo(2) with the sandbox's figures. Uptime is
// rounded up: a sandbox that has started has been up, as Linux's never
// reads 0 once init runs.
func Sysinfo(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	k := t.Kernel()
	total := k.TotalMemory()
	used := k.MemoryFile().UsedBytes()
	free := uint64(0)
	if total > used {
		free = total - used
	}
	si := linux.Sysinfo{
		Uptime: int64((k.MonotonicNow() + time.Second - 1) / time.Second), TotalRAM: total, FreeRAM: free,
		Procs: uint16(min(k.TaskCount(), 65535)), MemUnit: 1,
	}
	var b [linux.SizeOfSysinfo]byte
	si.MarshalBytes(b[:])
	if _, err := t.CopyOut(args[0].Pointer(), b[:]); err != nil {
		return 0, unix.EFAULT
	}
	return 0, nil
}

// Alarm implements alarm(2): it returns the seconds the previous alarm
// had left, rounded up as Linux does.
func Alarm(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	old, _ := t.ThreadGroup().SetRealTimer(time.Duration(args[0].Uint())*time.Second, 0)
	return uintptr((old + time.Second - 1) / time.Second), nil
}

func timevalToDuration(b []byte) (time.Duration, error) {
	sec, usec := int64(le64(b)), int64(le64(b[8:]))
	if sec < 0 || usec < 0 || usec >= 1e6 {
		return 0, unix.EINVAL
	}
	return time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond, nil
}

func putTimeval(b []byte, d time.Duration) {
	sec, usec := uint64(d/time.Second), uint64((d%time.Second)/time.Microsecond)
	for i := 0; i < 8; i++ {
		b[i] = byte(sec >> (8 * i))
		b[8+i] = byte(usec >> (8 * i))
	}
}

func copyOutItimerval(t *kernel.Task, addr hostarch.Addr, value, interval time.Duration) error {
	var b [32]byte
	putTimeval(b[0:], interval)
	putTimeval(b[16:], value)
	if _, err := t.CopyOut(addr, b[:]); err != nil {
		return unix.EFAULT
	}
	return nil
}

// Setitimer implements setitimer(2): ITIMER_REAL on the monotonic clock,
// ITIMER_VIRTUAL and ITIMER_PROF on the process's CPU time.
func Setitimer(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	which := args[0].Int()
	if which != linux.ITIMER_REAL && which != linux.ITIMER_VIRTUAL && which != linux.ITIMER_PROF {
		return 0, unix.EINVAL
	}
	var value, interval time.Duration
	if a := args[1].Pointer(); a != 0 {
		var b [32]byte
		if _, err := t.CopyIn(a, b[:]); err != nil {
			return 0, unix.EFAULT
		}
		var err error
		if interval, err = timevalToDuration(b[0:]); err != nil {
			return 0, err
		}
		if value, err = timevalToDuration(b[16:]); err != nil {
			return 0, err
		}
	}
	var oldValue, oldInterval time.Duration
	if which == linux.ITIMER_REAL {
		oldValue, oldInterval = t.ThreadGroup().SetRealTimer(value, interval)
	} else {
		oldValue, oldInterval = t.ThreadGroup().SetCPUTimer(which, value, interval)
	}
	if a := args[2].Pointer(); a != 0 {
		return 0, copyOutItimerval(t, a, oldValue, oldInterval)
	}
	return 0, nil
}

// Getitimer implements getitimer(2).
func Getitimer(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	var value, interval time.Duration
	switch which := args[0].Int(); which {
	case linux.ITIMER_REAL:
		value, interval = t.ThreadGroup().RealTimer()
	case linux.ITIMER_VIRTUAL, linux.ITIMER_PROF:
		value, interval = t.ThreadGroup().CPUTimer(which)
	default:
		return 0, unix.EINVAL
	}
	return 0, copyOutItimerval(t, args[1].Pointer(), value, interval)
}

// ClockSettime implements clock_settime(2). Only CLOCK_REALTIME is
// settable in Linux; the sandbox shares the host's clock and does not let
// it be stepped, so even a caller with CAP_SYS_TIME gets EPERM.
func ClockSettime(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	id := args[0].Int()
	if _, err := clockNow(t, id); err != nil {
		return 0, err
	}
	ts, err := copyInTimespec(t, args[1].Pointer())
	if err != nil {
		return 0, err
	}
	if id != linux.CLOCK_REALTIME || !ts.Valid() {
		return 0, unix.EINVAL
	}
	return 0, unix.EPERM
}

// Settimeofday implements settimeofday(2) with clock_settime's rules; a
// NULL time (only the obsolete timezone) is accepted and ignored.
func Settimeofday(t *kernel.Task, args arch.SyscallArguments) (uintptr, error) {
	addr := args[0].Pointer()
	if addr == 0 {
		return 0, nil
	}
	var b [linux.SizeOfTimeval]byte
	if _, err := t.CopyIn(addr, b[:]); err != nil {
		return 0, unix.EFAULT
	}
	var tv linux.Timeval
	tv.UnmarshalBytes(b[:])
	if !tv.Valid() {
		return 0, unix.EINVAL
	}
	return 0, unix.EPERM
}
