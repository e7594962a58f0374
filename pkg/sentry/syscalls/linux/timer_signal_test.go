package linux

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"carapace.dev/carapace/pkg/abi/linux"
	"carapace.dev/carapace/pkg/hostarch"
	"carapace.dev/carapace/pkg/sentry/fsimpl/signalfd"
	"carapace.dev/carapace/pkg/sentry/kernel"
	"carapace.dev/carapace/pkg/waiter"
	"golang.org/x/sys/unix"
)

func putSigevent(task *kernel.Task, addr hostarch.Addr, value uint64, signo, notify, tid int32) {
	b := make([]byte, sizeOfSigevent)
	binary.LittleEndian.PutUint64(b[0:], value)
	binary.LittleEndian.PutUint32(b[8:], uint32(signo))
	binary.LittleEndian.PutUint32(b[12:], uint32(notify))
	binary.LittleEndian.PutUint32(b[16:], uint32(tid))
	task.CopyOut(addr, b)
}

func putItimerspec(task *kernel.Task, addr hostarch.Addr, interval, value time.Duration) {
	its := linux.Itimerspec{Interval: linux.NsecToTimespec(int64(interval)), Value: linux.NsecToTimespec(int64(value))}
	b := make([]byte, linux.SizeOfItimerspec)
	its.MarshalBytes(b)
	task.CopyOut(addr, b)
}

func blockSignals(t *testing.T, task *kernel.Task, sigs ...linux.Signal) {
	task.SetSignalMask(linux.MakeSignalSet(sigs...))
}

func readSiginfo(task *kernel.Task, addr hostarch.Addr) linux.SignalInfo {
	var info linux.SignalInfo
	b := make([]byte, linux.SizeOfSignalInfo)
	task.CopyIn(addr, b)
	info.UnmarshalBytes(b)
	return info
}

func putSigset(task *kernel.Task, addr hostarch.Addr, sigs ...linux.Signal) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(linux.MakeSignalSet(sigs...)))
	task.CopyOut(addr, b[:])
}

func putTimespec(task *kernel.Task, addr hostarch.Addr, sec, nsec int64) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], uint64(sec))
	binary.LittleEndian.PutUint64(b[8:], uint64(nsec))
	task.CopyOut(addr, b[:])
}

func TestPosixTimerSignalsWithOverrun(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	sev, idp, its, set, info, ts := buf, buf+64, buf+128, buf+192, buf+256, buf+512
	blockSignals(t, task, linux.SIGUSR1)
	putSigevent(task, sev, 77, int32(linux.SIGUSR1), linux.SIGEV_SIGNAL, 0)
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_CREATE, args(linux.CLOCK_MONOTONIC, uintptr(sev), uintptr(idp))); err != nil {
		t.Fatal(err)
	}
	var idb [4]byte
	task.CopyIn(idp, idb[:])
	id := uintptr(binary.LittleEndian.Uint32(idb[:]))
	putItimerspec(task, its, time.Millisecond, time.Millisecond)
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_SETTIME, args(id, 0, uintptr(its), 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	putSigset(task, set, linux.SIGUSR1)
	putTimespec(task, ts, 5, 0)
	sig, err := task.ExecuteSyscall(linux.SYS_RT_SIGTIMEDWAIT, args(uintptr(set), uintptr(info), uintptr(ts), 8))
	if err != nil || sig != uintptr(linux.SIGUSR1) {
		t.Fatalf("sigtimedwait = %d, %v", sig, err)
	}
	si := readSiginfo(task, info)
	if si.Code != linux.SI_TIMER || si.Value() != 77 || si.TimerID() != int32(id) || si.Overrun() <= 0 {
		t.Fatalf("siginfo code %d value %d timer %d overrun %d", si.Code, si.Value(), si.TimerID(), si.Overrun())
	}
	if n, err := task.ExecuteSyscall(linux.SYS_TIMER_GETOVERRUN, args(id)); err != nil || int32(n) != si.Overrun() {
		t.Fatalf("timer_getoverrun = %d, %v; want %d", n, err, si.Overrun())
	}
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_GETTIME, args(id, uintptr(its))); err != nil {
		t.Fatal(err)
	}
	var cur linux.Itimerspec
	b := make([]byte, linux.SizeOfItimerspec)
	task.CopyIn(its, b)
	cur.UnmarshalBytes(b)
	if cur.Interval.ToDuration() != time.Millisecond || cur.Value.ToDuration() <= 0 {
		t.Fatalf("timer_gettime = %+v", cur)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_DELETE, args(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_GETTIME, args(id, uintptr(its))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("gettime of a deleted timer = %v", err)
	}
}

func TestPosixTimerArguments(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	sev, idp, its := buf, buf+64, buf+128
	create := func(clock uintptr, sevp hostarch.Addr) error {
		_, err := task.ExecuteSyscall(linux.SYS_TIMER_CREATE, args(clock, uintptr(sevp), uintptr(idp)))
		return err
	}
	putSigevent(task, sev, 0, 1000, linux.SIGEV_SIGNAL, 0)
	if err := create(linux.CLOCK_MONOTONIC, sev); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("signal 1000: %v", err)
	}
	putSigevent(task, sev, 0, int32(linux.SIGUSR1), linux.SIGEV_SIGNAL, 0)
	if err := create(9999, sev); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("clock 9999: %v", err)
	}
	if err := create(linux.CLOCK_MONOTONIC_RAW, sev); !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("raw clock: %v", err)
	}
	putSigevent(task, sev, 0, int32(linux.SIGUSR1), linux.SIGEV_THREAD_ID, 4242)
	if err := create(linux.CLOCK_MONOTONIC, sev); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("foreign thread: %v", err)
	}
	putSigevent(task, sev, 0, int32(linux.SIGUSR1), 77, 0)
	if err := create(linux.CLOCK_MONOTONIC, sev); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad notify: %v", err)
	}
	if err := create(linux.CLOCK_MONOTONIC, 8); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("bad sigevent pointer: %v", err)
	}
	// SIGEV_NONE counts without signalling; NULL sigevent works too.
	putSigevent(task, sev, 0, 0, linux.SIGEV_NONE, 0)
	if err := create(linux.CLOCK_REALTIME, sev); err != nil {
		t.Fatal(err)
	}
	var idb [4]byte
	task.CopyIn(idp, idb[:])
	id := uintptr(binary.LittleEndian.Uint32(idb[:]))
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_SETTIME, args(id, 0, 0, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("NULL new_value: %v", err)
	}
	putTimespec(task, its, 0, 0)
	putTimespec(task, its+16, 0, 2e9)
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_SETTIME, args(id, 0, uintptr(its), 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("tv_nsec 2e9: %v", err)
	}
	// An absolute time in the past expires at once; SIGEV_NONE keeps quiet.
	putItimerspec(task, its, 0, time.Second)
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_SETTIME, args(id, linux.TIMER_ABSTIME, uintptr(its), 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if p := task.PendingSignals(); p != 0 {
		t.Fatalf("SIGEV_NONE timer left signals %#x", p)
	}
	putItimerspec(task, its, 0, 100*time.Second)
	task.ExecuteSyscall(linux.SYS_TIMER_SETTIME, args(id, 0, uintptr(its), 0))
	task.ExecuteSyscall(linux.SYS_TIMER_GETTIME, args(id, uintptr(its)))
	b := make([]byte, linux.SizeOfItimerspec)
	task.CopyIn(its, b)
	var cur linux.Itimerspec
	cur.UnmarshalBytes(b)
	if cur.Value.Sec < 98 {
		t.Fatalf("remaining %v", cur.Value)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_TIMER_DELETE, args(123456)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("delete of an unknown timer: %v", err)
	}
	if err := create(linux.CLOCK_MONOTONIC, 0); err != nil {
		t.Fatalf("NULL sigevent: %v", err)
	}
}

func TestSigtimedwaitAndSigqueue(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	set, info, ts := buf, buf+64, buf+512
	blockSignals(t, task, linux.SIGUSR2)
	putSigset(task, set, linux.SIGUSR2)
	putTimespec(task, ts, 0, 1e6)
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGTIMEDWAIT, args(uintptr(set), 0, uintptr(ts), 8)); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("timeout: %v", err)
	}
	putTimespec(task, ts, 0, -1)
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGTIMEDWAIT, args(uintptr(set), 0, uintptr(ts), 8)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad timeout: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGTIMEDWAIT, args(uintptr(set), 0, 0, 4)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad sigset size: %v", err)
	}
	// sigqueue to self carries a value.
	q := linux.SignalInfo{Code: linux.SI_QUEUE}
	q.SetValue(4242)
	b := make([]byte, linux.SizeOfSignalInfo)
	q.MarshalBytes(b)
	task.CopyOut(info, b)
	pid := uintptr(task.ThreadGroup().ID())
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGQUEUEINFO, args(pid, uintptr(linux.SIGUSR2), uintptr(info))); err != nil {
		t.Fatal(err)
	}
	// A waiter that sleeps is woken by a signal arriving later.
	done := make(chan uintptr, 1)
	putTimespec(task, ts, 5, 0)
	sig, err := task.ExecuteSyscall(linux.SYS_RT_SIGTIMEDWAIT, args(uintptr(set), uintptr(info+128), uintptr(ts), 8))
	got := readSiginfo(task, info+128)
	if err != nil || sig != uintptr(linux.SIGUSR2) || got.Value() != 4242 || got.Code != linux.SI_QUEUE {
		t.Fatalf("sigtimedwait = %d, %v", sig, err)
	}
	go func() {
		s, err := task.ExecuteSyscall(linux.SYS_RT_SIGTIMEDWAIT, args(uintptr(set), 0, uintptr(ts), 8))
		if err != nil {
			t.Errorf("waiting sigtimedwait: %v", err)
		}
		done <- s
	}()
	time.Sleep(10 * time.Millisecond)
	task.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGUSR2), Code: linux.SI_USER})
	select {
	case s := <-done:
		if s != uintptr(linux.SIGUSR2) {
			t.Fatalf("woken with %d", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sigtimedwait not woken")
	}
	// Forging SI_USER for another process is EPERM; unknown pids ESRCH.
	q.Code = linux.SI_USER
	q.MarshalBytes(b)
	task.CopyOut(info, b)
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGQUEUEINFO, args(pid+100, uintptr(linux.SIGUSR2), uintptr(info))); !errors.Is(err, unix.EPERM) {
		t.Fatalf("forged SI_USER: %v", err)
	}
	q.Code = linux.SI_QUEUE
	q.MarshalBytes(b)
	task.CopyOut(info, b)
	if _, err := task.ExecuteSyscall(linux.SYS_RT_SIGQUEUEINFO, args(pid+100, uintptr(linux.SIGUSR2), uintptr(info))); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("unknown pid: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_RT_TGSIGQUEUEINFO, args(0, pid, uintptr(linux.SIGUSR2), uintptr(info))); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("tgid 0: %v", err)
	}
}

func TestSignalfd(t *testing.T) {
	task, _ := newTask(t)
	buf := scratch(t, task)
	set := buf
	blockSignals(t, task, linux.SIGUSR1, linux.SIGUSR2)
	putSigset(task, set, linux.SIGUSR1)
	if _, err := task.ExecuteSyscall(linux.SYS_SIGNALFD4, args(^uintptr(0), uintptr(set), 8, 0x1)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("bad flags: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_SIGNALFD4, args(1, uintptr(set), 8, 0)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("not a signalfd: %v", err)
	}
	fd, err := task.ExecuteSyscall(linux.SYS_SIGNALFD4, args(^uintptr(0), uintptr(set), 8, unix.SFD_NONBLOCK))
	if err != nil {
		t.Fatal(err)
	}
	f, _ := getFile(task, int32(fd))
	defer f.DecRef(task)
	if r := f.Readiness(waiter.EventIn); r != 0 {
		t.Fatalf("readable with nothing pending: %v", r)
	}
	rd := buf + 128
	if _, err := task.ExecuteSyscall(linux.SYS_READ, args(fd, uintptr(rd), 128)); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("empty read: %v", err)
	}
	if _, err := task.ExecuteSyscall(linux.SYS_READ, args(fd, uintptr(rd), 8)); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("short read: %v", err)
	}
	task.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGUSR2), Code: linux.SI_USER})
	if r := f.Readiness(waiter.EventIn); r != 0 {
		t.Fatal("readable for a signal outside the mask")
	}
	killer := linux.SignalInfo{Signo: int32(linux.SIGUSR1), Code: linux.SI_USER}
	killer.SetPid(77)
	task.ThreadGroup().SendSignal(&killer)
	if r := f.Readiness(waiter.EventIn); r == 0 {
		t.Fatal("not readable with SIGUSR1 pending")
	}
	if n, err := task.ExecuteSyscall(linux.SYS_READ, args(fd, uintptr(rd), 256)); err != nil || n != signalfd.SizeOfSiginfo {
		t.Fatalf("read = %d, %v", n, err)
	}
	b := make([]byte, 16)
	task.CopyIn(rd, b)
	if signo, pid := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[12:]); signo != uint32(linux.SIGUSR1) || pid != 77 {
		t.Fatalf("ssi_signo %d ssi_pid %d", signo, pid)
	}
	if task.PendingSignals().Contains(linux.SIGUSR1) {
		t.Fatal("read left the signal pending")
	}
	// Changing the mask reaches the pending SIGUSR2.
	putSigset(task, set, linux.SIGUSR2)
	if got, err := task.ExecuteSyscall(linux.SYS_SIGNALFD, args(fd, uintptr(set), 8)); err != nil || got != fd {
		t.Fatalf("signalfd(fd) = %d, %v", got, err)
	}
	if n, err := task.ExecuteSyscall(linux.SYS_READ, args(fd, uintptr(rd), 128)); err != nil || n != 128 {
		t.Fatalf("read after mask change = %d, %v", n, err)
	}
}

func TestSignalfdEncodesTimerAndChild(t *testing.T) {
	var info linux.SignalInfo
	info.Signo, info.Code = int32(linux.SIGALRM), linux.SI_TIMER
	info.SetTimerID(3)
	info.SetOverrun(9)
	info.SetValue(0x1_0000_0005)
	b := make([]byte, signalfd.SizeOfSiginfo)
	signalfd.Encode(&info, b)
	le := binary.LittleEndian
	if le.Uint32(b[24:]) != 3 || le.Uint32(b[32:]) != 9 || le.Uint32(b[44:]) != 5 || le.Uint64(b[48:]) != 0x1_0000_0005 {
		t.Fatalf("timer record %v", b[:56])
	}
	info = linux.SignalInfo{Signo: int32(linux.SIGCHLD), Code: linux.CLD_EXITED}
	info.SetPid(12)
	info.SetStatus(3)
	signalfd.Encode(&info, b)
	if le.Uint32(b[12:]) != 12 || le.Uint32(b[40:]) != 3 || le.Uint32(b[24:]) != 0 {
		t.Fatalf("child record %v", b[:56])
	}
}
