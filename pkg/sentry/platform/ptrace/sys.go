package ptrace

import (
	"unsafe"

	"carapace.dev/carapace/pkg/sentry/arch"
	"golang.org/x/sys/unix"
)

// Requests and options not (or not uniformly) named by x/sys/unix.
const (
	ptraceSysemu    = 31
	ptraceEventStop = 128
	ntX86XState     = 0x202
	syscallStopSig  = unix.SIGTRAP | 0x80 // with PTRACE_O_TRACESYSGOOD
	traceOptions    = unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACESYSGOOD
)

// ptrace issues one ptrace request. Requests never block, so the cheaper
// raw syscall is used; it returns the errno (0 on success).
func ptrace(req int, tid int, addr, data uintptr) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), addr, data, 0, 0)
	return e
}

func getRegs(tid int, r *arch.Registers) unix.Errno {
	return ptrace(unix.PTRACE_GETREGS, tid, 0, uintptr(unsafe.Pointer(r)))
}

func setRegs(tid int, r *arch.Registers) unix.Errno {
	return ptrace(unix.PTRACE_SETREGS, tid, 0, uintptr(unsafe.Pointer(r)))
}

// getFP reads the thread's FP state into buf (XSAVE via the NT_X86_XSTATE
// regset, else FXSAVE via GETFPREGS); it returns the bytes the kernel wrote.
func getFP(tid int, buf []byte) (int, unix.Errno) {
	if !arch.UsesXSAVE() {
		return len(buf), ptrace(unix.PTRACE_GETFPREGS, tid, 0, uintptr(unsafe.Pointer(&buf[0])))
	}
	iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	e := ptrace(unix.PTRACE_GETREGSET, tid, ntX86XState, uintptr(unsafe.Pointer(&iov)))
	return int(iov.Len), e
}

func setFP(tid int, buf []byte) unix.Errno {
	if !arch.UsesXSAVE() {
		return ptrace(unix.PTRACE_SETFPREGS, tid, 0, uintptr(unsafe.Pointer(&buf[0])))
	}
	iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	return ptrace(unix.PTRACE_SETREGSET, tid, ntX86XState, uintptr(unsafe.Pointer(&iov)))
}

// wait waits for a state change of tid, which this thread traces.
func wait(tid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(tid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		return ws, err
	}
}

func gettid() int {
	t, _, _ := unix.RawSyscall(unix.SYS_GETTID, 0, 0, 0)
	return int(t)
}
