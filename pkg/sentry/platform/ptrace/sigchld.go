package ptrace

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the kernel's struct sigaction on amd64.
type kernelSigaction struct {
	Handler  uint64
	Flags    uint64
	Restorer uint64
	Mask     uint64
}

const saNoCLDStop = 0x1

var quietSIGCHLDOnce sync.Once

// quietSIGCHLD adds SA_NOCLDSTOP to the Sentry's SIGCHLD action (keeping
// the Go runtime's handler). Every ptrace stop of every stub thread would
// otherwise send the tracer a SIGCHLD, and running the runtime's signal
// handler for it costs microseconds per application syscall. Child exits
// still raise SIGCHLD; only stop/continue notifications are dropped, which
// nothing in the Sentry uses (wait4 still reports stops).
func quietSIGCHLD() {
	quietSIGCHLDOnce.Do(func() {
		var act kernelSigaction
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGCHLD), 0, uintptr(unsafe.Pointer(&act)), 8, 0, 0); e != 0 {
			return
		}
		if act.Handler == 0 || act.Handler == 1 { // SIG_DFL or SIG_IGN: nothing runs, leave it
			return
		}
		act.Flags |= saNoCLDStop
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGCHLD), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	})
}
